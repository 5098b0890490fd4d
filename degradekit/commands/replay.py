"""`degradekit replay`: re-render one sample of a shard folder and report whether the bytes match."""
from __future__ import annotations

import click


@click.command("replay", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("key")
@click.option("--source", default=None, type=click.Path(dir_okay=False),
              help="The source image, if it moved since synthesis (its sha256 must still match).")
@click.option("--stored-hr", is_flag=True, help="Replay the LRs from the HR stored in the shard (no source needed).")
@click.option("--pool", "pool_path", default=None, type=click.Path(file_okay=False),
              help="Pool folder, if it moved since synthesis (its digest must still match).")
def replay(folder, key, source, stored_hr, pool_path):
    """Re-render sample KEY (e.g. 000000042 or 42) of the dataset in FOLDER from its JSON record and compare
    with the stored bytes: source sha256, HR crop, every LR's parameters and bytes. Exit status 0 when
    everything matches, 1 otherwise."""
    from degradekit.imageio import ImageError
    from degradekit.synth.manifest import ManifestError
    from degradekit.synth.replay import ReplayError, replay_sample

    try:
        rep = replay_sample(folder, key, source=source, use_stored_hr=stored_hr, pool_path=pool_path)
    except (ManifestError, ReplayError, ImageError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"sample {rep.key} ({rep.shard}):")
    for name, ok, detail in rep.checks:
        click.echo(f"  {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
    if not rep.ok:
        raise click.ClickException(f"sample {rep.key}: replay does not match the stored bytes")
    click.echo(f"sample {rep.key}: replay matches byte for byte")
