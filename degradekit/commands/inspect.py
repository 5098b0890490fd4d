"""`degradekit inspect`: what a shard folder holds; parameter histograms; a sheet of pairs; --verify."""
from __future__ import annotations

import json

import click


@click.command("inspect", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Where to write params.png and pairs.png [default: FOLDER/inspect].")
@click.option("--max-records", type=click.IntRange(1, None), default=2000, show_default=True,
              help="JSON records read for the histograms (from shards spread over the dataset).")
@click.option("--pairs", "n_pairs", type=click.IntRange(0, 256), default=16, show_default=True,
              help="Sample pairs on the sheet (0: no sheet).")
@click.option("--verify", is_flag=True,
              help="Check every shard: sha256 against the manifest, tar structure, members, sample counts.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(folder, out_dir, max_records, n_pairs, verify, as_json):
    """Summarise the dataset in FOLDER (counts from manifest.json), draw parameter histograms (params.png)
    and a sheet of sample pairs (pairs.png). With --verify, exit status 1 if any shard is damaged."""
    from pathlib import Path

    from degradekit.preview import plot_param_histograms
    from degradekit.synth.inspect import collect_records, pairs_sheet, summarize, verify_dataset
    from degradekit.synth.manifest import ManifestError

    try:
        s = summarize(folder)
    except ManifestError as e:
        raise click.ClickException(str(e)) from None
    out = Path(out_dir) if out_dir else Path(folder) / "inspect"
    read_problems: list[str] = []
    params, recs, pairs = collect_records(folder, max_records=max_records, n_pairs=n_pairs, problems=read_problems)
    for p in read_problems:
        click.echo(f"warning: {p}", err=True)
    s["records_read"] = len(recs)
    if recs:
        mult = {}
        for r in recs:
            mult[str(round(r["multiscale"], 4))] = mult.get(str(round(r["multiscale"], 4)), 0) + 1
        s["multiscale_counts"] = mult
        s["padded_samples"] = sum(1 for r in recs if any(r.get("pad", [0, 0])))
    out.mkdir(parents=True, exist_ok=True)
    if params:
        plot_param_histograms(params, out / "params.png")
        s["histograms"] = str(out / "params.png")
    if pairs:
        from degradekit.imageio import write_png

        write_png(out / "pairs.png", pairs_sheet(pairs))
        s["pairs_sheet"] = str(out / "pairs.png")
    problems = None
    if verify:
        problems = verify_dataset(folder)
        s["verify"] = {"ok": not problems, "problems": problems}
    if as_json:
        click.echo(json.dumps(s, indent=1, sort_keys=True))
    else:
        part = f" (part {s['part'][0]}/{s['part'][1]})" if s["part"] else ""
        click.echo(f"{folder}{part}: {s['shards']}/{s['n_shards']} shards, {s['samples']} samples, {s['pairs']} "
                   f"pairs ({s['variants']} per HR), {s['bytes'] / 1e6:.1f} MB, "
                   f"{s['bytes'] / max(s['pairs'], 1) / 1e3:.1f} kB per pair")
        click.echo(f"  x{s['scale']} order {s['order']}, patch {s['patch']}, seed {s['seed']}, codec {s['codec']}, "
                   f"degradekit {s['tool_version']}")
        click.echo(f"  {s['sources']} sources, {s['skipped']} skipped")
        for r in s["skipped_reasons"][:10]:
            click.echo(f"    skipped: {r}")
        if "multiscale_counts" in s:
            click.echo(f"  of {len(recs)} records read: multiscale {s['multiscale_counts']}, "
                       f"{s['padded_samples']} padded")
        if "histograms" in s:
            click.echo(f"  parameter histograms: {s['histograms']}")
        if "pairs_sheet" in s:
            click.echo(f"  sample pairs: {s['pairs_sheet']}")
        if problems is not None:
            if problems:
                for p in problems:
                    click.echo(f"  BAD {p}")
            else:
                click.echo(f"  verify: all {s['shards']} shards match the manifest (sha256, structure, counts)")
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) found in {folder}")
