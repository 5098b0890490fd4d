"""`degradekit manifest`: join the manifests of a dataset rendered in parts (`synth --part I/N`)."""
from __future__ import annotations

import json

import click


@click.group("manifest", context_settings={"help_option_names": ["-h", "--help"]})
def manifest():
    """Work with shard manifests (manifest.json)."""


@manifest.command("merge")
@click.argument("parts", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=True),
              help="Merged manifest file, or a folder (writes FOLDER/manifest.json).")
def merge(parts, output):
    """Join part manifests into one, after checking that they agree.

    PARTS are manifest.part-I-of-N.json files, or folders holding them. The parts must have the same
    settings, seed, sources hash and tool version, and their shards must be disjoint and together complete.
    """
    from pathlib import Path

    from degradekit.fsutil import atomic_write

    from degradekit.synth.manifest import ManifestError, load_manifest, merge_manifests, write_manifest

    files = []
    for p in parts:
        p = Path(p)
        if p.is_dir():
            found = sorted(p.glob("manifest.part-*-of-*.json"))
            if not found:
                raise click.ClickException(f"{p}: no manifest.part-I-of-N.json in this folder")
            files.extend(found)
        else:
            files.append(p)
    try:
        merged = merge_manifests([load_manifest(f) for f in files])
    except ManifestError as e:
        raise click.ClickException(str(e)) from None
    out = Path(output)
    folder = out if out.is_dir() else out.parent
    if not folder.is_dir():
        raise click.ClickException(f"-o {output}: the folder {folder} does not exist (create it first)")
    try:
        if out.is_dir():
            path = write_manifest(out, merged)
        else:
            atomic_write(out, json.dumps(merged, indent=1, sort_keys=True) + "\n")
            path = out
    except OSError as e:
        raise click.ClickException(f"{out}: cannot write the merged manifest: {e.strerror or e}") \
            from None
    t = merged["totals"]
    click.echo(f"merged {len(files)} manifests: {t['shards']} shards, {t['samples']} samples, {t['pairs']} pairs "
               f"-> {path}")
