"""`degradekit replay`: re-render samples of a shard folder and report whether the bytes match."""
from __future__ import annotations

import click


@click.command("replay", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("keys", nargs=-1)
@click.option("--spread", type=click.IntRange(1, None), default=None,
              help="Instead of KEYS: replay this many samples spread evenly over the dataset.")
@click.option("--source", default=None, type=click.Path(dir_okay=False),
              help="The source image, if it moved since synthesis (its sha256 must still match; one KEY).")
@click.option("--stored-hr", is_flag=True, help="Replay the LRs from the HR stored in the shard (no source needed).")
@click.option("--pool", "pool_path", default=None, type=click.Path(file_okay=False),
              help="Pool folder, if it moved since synthesis (its digest must still match).")
def replay(folder, keys, spread, source, stored_hr, pool_path):
    """Re-render samples from their JSON records and check the bytes match.

    KEYS (e.g. 000000042 or 42) name samples of the dataset in FOLDER; each is re-rendered and compared
    with the stored bytes: source sha256, HR crop, every LR's parameters and bytes. Exit status 0 when
    everything matches, 1 otherwise."""
    from degradekit.imageio import ImageError
    from degradekit.pool import PoolError
    from degradekit.synth.manifest import ManifestError, load_manifest
    from degradekit.synth.replay import ReplayError, replay_sample

    if bool(keys) == bool(spread):
        raise click.UsageError("give sample KEYS or --spread N (not both)")
    if source and len(keys) != 1:
        raise click.UsageError("--source needs exactly one KEY")
    if spread:
        try:
            n = load_manifest(folder)["n_samples"]
        except ManifestError as e:
            raise click.ClickException(str(e)) from None
        keys = sorted({round(i * (n - 1) / max(spread - 1, 1)) for i in range(min(spread, n))})
    bad = []
    for key in keys:
        try:
            rep = replay_sample(folder, str(key), source=source, use_stored_hr=stored_hr, pool_path=pool_path)
        except (ManifestError, ReplayError, ImageError, PoolError) as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"sample {rep.key} ({rep.shard}):")
        for name, ok, detail in rep.checks:
            click.echo(f"  {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
        if rep.ok:
            click.echo(f"sample {rep.key}: replay matches byte for byte")
        else:
            bad.append(rep.key)
    if len(keys) > 1:
        click.echo(f"replayed {len(keys)} samples: {len(keys) - len(bad)} match, {len(bad)} differ")
    if bad:
        raise click.ClickException(f"sample(s) {', '.join(bad)}: replay does not match the stored bytes")
