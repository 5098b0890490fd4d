"""`degradekit export`: a shard folder as paired image folders or BasicSR LMDB (for BasicSR, Real-ESRGAN,
traiNNer-redux, neosr)."""
from __future__ import annotations

import click


class _Variant(click.ParamType):
    name = "K|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "all":
            return value
        try:
            v = int(value)
        except ValueError:
            v = -1
        if v < 0:
            self.fail(f"{value!r}: give an LR variant index (0, 1, ...) or all", param, ctx)
        return v


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("shards", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["folders", "lmdb"]), required=True,
              help="folders: OUT/hr/KEY.png + OUT/lr/KEY.png + meta_info.txt; lmdb: OUT/hr.lmdb + OUT/lr.lmdb "
                   "(BasicSR layout).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder (new or empty; an interrupted export into it continues).")
@click.option("--variant", type=_Variant(), default=0, show_default=True,
              help="Which LR variant to pair with the HR, or all (every variant as its own pair KEY_vV).")
@click.option("--progress", type=click.Choice(["auto", "bar", "lines", "none"]), default="auto", show_default=True,
              help="Progress display on stderr.")
def export(shards, fmt, out, variant, progress):
    """Write the pairs of the shard folder SHARDS as image folders or LMDB that other SR trainers read.

    Pixels are the shard's own PNG bytes; each sample's JSON record goes to OUT/records.jsonl (so `degradekit
    replay OUT KEY` still works). Every shard is verified first as `inspect --verify` does; a bad shard is
    reported (BAD lines), left out, and the exit status is 1. Rerun the same command to finish a killed export."""
    from degradekit.progress import Progress
    from degradekit.synth.export import ExportError, export as run_export
    from degradekit.synth.manifest import ManifestError, load_manifest

    try:
        total = load_manifest(shards)["totals"]["samples"]
    except ManifestError:
        total = None
    bar = Progress(total, "export", mode="off" if progress == "none" else progress, unit="sample")
    try:
        s = run_export(shards, out, fmt=fmt, variant=variant, progress=bar,
                       log=lambda line: click.echo(line, err=True))
    except ExportError as e:
        raise click.ClickException(str(e)) from None
    finally:
        bar.close()
    where = ("OUT/hr, OUT/lr, meta_info.txt" if fmt == "folders" else "OUT/hr.lmdb, OUT/lr.lmdb").replace("OUT", out)
    click.echo(f"{out}: {s['pairs']} pairs from {s['samples']} samples ({where}, records.jsonl)"
               + (" -- resumed" if s["resumed"] else ""))
    if s["problems"]:
        raise click.ClickException(f"{len(s['problems'])} problem(s) in {shards}: the bad shard(s) were not exported")
