"""`degradekit data`: the named training datasets (DF2K, DIV2K, Flickr2K, OST): where they go, fetching them."""
from __future__ import annotations

import click

_NAMES = ["DF2K", "DIV2K", "Flickr2K", "OST"]


@click.group("data", context_settings={"help_option_names": ["-h", "--help"]})
def data():
    """Named datasets under the data root (--data-root, else $DEGRADEKIT_DATA, else ~/.cache/degradekit/data)."""


@data.command("fetch")
@click.argument("name", type=click.Choice(_NAMES, case_sensitive=False))
@click.option("--data-root", default=None, type=click.Path(file_okay=False),
              help="Data root [default: $DEGRADEKIT_DATA, else ~/.cache/degradekit/data].")
@click.option("--url", default=None,
              help="Download from this URL instead of the official one (a mirror); also $DEGRADEKIT_URL_<NAME>.")
@click.option("--keep", is_flag=True, help="Keep the archive in ROOT/.downloads after unpacking.")
@click.option("--force", is_flag=True, help="Fetch and unpack again even if the images are there.")
def fetch(name, data_root, url, keep, force):
    """Download the official archive(s) of NAME, resume partial downloads, verify and unpack them.

    DF2K = DIV2K + Flickr2K. Interrupted downloads resume when the command is run again (HTTP Range).
    Integrity: size, an archive test (zip CRCs / tar members) and sha256 (recorded by the first download
    in ROOT/.downloads/checksums.json and checked afterwards).
    """
    from degradekit.synth.fetch import FetchError, fetch_dataset
    from degradekit.synth.sources import DATASETS, data_root as _root

    canon = {n.lower(): n for n in DATASETS}[name.lower()]
    root = _root(data_root)
    try:
        dirs = fetch_dataset(canon, root, url=url, keep=keep, force=force, log=lambda s: click.echo(s, err=True))
    except FetchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{canon}: ready in {', '.join(str(d) for d in dirs)}; use `degradekit synth --src {canon} "
               f"--data-root {root}`")


@data.command("list")
@click.option("--data-root", default=None, type=click.Path(file_okay=False),
              help="Data root [default: $DEGRADEKIT_DATA, else ~/.cache/degradekit/data].")
def list_(data_root):
    """Show the datasets, their folders under the data root, whether present, and the official archives."""
    from degradekit.synth.fetch import ARCHIVES, archive_url
    from degradekit.synth.sources import DATASETS, data_root as _root

    root = _root(data_root)
    click.echo(f"data root: {root}")
    for name, folders in DATASETS.items():
        state = []
        for f in folders:
            d = root / f
            n = sum(1 for _ in d.rglob("*") if _.is_file()) if d.is_dir() else 0
            state.append(f"{f} ({n} files)" if n else f"{f} (missing)")
        click.echo(f"{name:9s} {'; '.join(state)}")
    click.echo("archives:")
    for a in ARCHIVES.values():
        click.echo(f"  {a.name:9s} {archive_url(a)}  -> {a.target}  ({a.page})")
