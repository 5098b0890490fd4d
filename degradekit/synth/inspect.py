"""`degradekit inspect`: summarise a shard folder, draw parameter histograms and a sheet of pairs, verify.

Reading is streamed shard by shard; the histograms use at most ``max_records`` JSON records taken from shards
spread evenly over the dataset, so inspecting a terabyte dataset reads only what it draws.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .manifest import ManifestError, load_manifest
from .shards import SHARD_RE, ShardFormatError, iter_samples, verify_shard

__all__ = ["summarize", "collect_records", "pairs_sheet", "verify_dataset"]


def _spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them when k >= n)."""
    if k >= n:
        return list(range(n))
    return sorted({int(round(i * (n - 1) / max(k - 1, 1))) for i in range(k)})


def summarize(folder) -> dict:
    """Counts from the manifest (no shard is read)."""
    m = load_manifest(folder)
    files = m["sources"]["files"]
    return {
        "manifest": m["_path"],
        "shards": m["totals"]["shards"],
        "n_shards": m["n_shards"],
        "samples": m["totals"]["samples"],
        "pairs": m["totals"]["pairs"],
        "bytes": m["totals"]["bytes"],
        "variants": m["variants"],
        "sources": len(files),
        "skipped": len(m["skipped"]),
        "skipped_reasons": [s["reason"] for s in m["skipped"]],
        "scale": m["config"].get("scale"),
        "order": m["config"].get("order"),
        "seed": m["seed"],
        "patch": m["settings"]["patch"],
        "codec": m["settings"]["codec"],
        "tool_version": m["tool"]["version"],
        "part": m["part"],
    }


def _shard_paths(folder: Path, m: dict | None) -> list[Path]:
    if m is not None:
        return [folder / r["name"] for r in m["shards"]]
    return sorted(p for p in folder.iterdir() if SHARD_RE.match(p.name))


def collect_records(folder, *, max_records: int = 2000, n_pairs: int = 0, problems: list | None = None):
    """(params records, JSON records, pairs [(key, hr, lr0)]) from shards spread over the dataset.

    Missing or unreadable shards are passed over (one line each appended to ``problems``)."""
    folder = Path(folder)
    try:
        m = load_manifest(folder)
    except ManifestError:
        m = None
    paths = _shard_paths(folder, m)
    per = max(1, m["shard_size"] if m else 1000)
    n_shards = max(1, min(len(paths), -(-max_records // per) + 1))
    params, recs, pairs = [], [], []
    expected = min(max_records, m["totals"]["samples"]) if m else max_records
    pair_every = max(1, expected // max(n_pairs, 1))  # spread the drawn pairs over the records read
    for si in _spread(len(paths), n_shards):
        try:
            _read_shard(paths[si], params, recs, pairs, n_pairs, pair_every, max_records)
        except (ShardFormatError, OSError, ValueError, KeyError) as e:
            if problems is not None:
                problems.append(f"{paths[si]}: not read: {e}")
        if len(recs) >= max_records:
            break
    return params, recs, pairs


def _read_shard(path, params, recs, pairs, n_pairs, pair_every, max_records) -> None:
    from ..imageio import decode_png

    for key, fields in iter_samples(path):
        rec = json.loads(fields["json"])
        recs.append(rec)
        for v in rec["variants"]:
            params.append(v["params"])
        if n_pairs and len(pairs) < n_pairs and (len(recs) - 1) % pair_every == 0:
            hr_name = next(k for k in fields if k.startswith("hr."))
            lr_name = next(k for k in sorted(fields) if k.startswith("lr0."))
            pairs.append((key, decode_png(fields[hr_name]), decode_png(fields[lr_name])))
        if len(recs) >= max_records:
            return


def pairs_sheet(pairs, *, tile: int = 160, cols: int = 4) -> np.ndarray:
    """A sheet of (HR | LR enlarged with nearest neighbour) tiles, key written underneath. uint8 RGB."""
    from .. import drawing

    tiles = []
    for key, hr, lr in pairs:
        both = np.hstack([drawing.fit_tile(hr, tile), np.full((tile, 2, 3), 255, np.uint8), drawing.fit_tile(lr, tile)])
        tiles.append(drawing.labelled_tile(both, [f"{key}  HR {hr.shape[1]}x{hr.shape[0]} | "
                                                  f"LR {lr.shape[1]}x{lr.shape[0]}"], both.shape[1], 1))
    if not tiles:
        raise ValueError("no samples to draw")
    cols = min(cols, len(tiles))
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    title = drawing.title_bar(f"{len(pairs)} sample pairs (HR | LR0, nearest-neighbour enlarged)",
                              tiles[0].shape[1] * cols)
    return drawing.stack_rows([title, drawing.grid(tiles, cols)])


def verify_dataset(folder, *, log=None) -> list[str]:
    """Check every shard of the manifest (sha256, tar structure, sample count, keys) and that no shard is
    missing or extra. Returns the problems (empty = all good)."""
    folder = Path(folder)
    m = load_manifest(folder)
    problems = []
    listed = {r["name"] for r in m["shards"]}
    for p in sorted(folder.iterdir()):
        if SHARD_RE.match(p.name) and p.name not in listed:
            problems.append(f"{p}: shard not listed in the manifest")
    for r in m["shards"]:
        p = folder / r["name"]
        if not p.is_file():
            problems.append(f"{p}: missing")
            continue
        if p.stat().st_size != r["bytes"]:
            problems.append(f"{p}: {p.stat().st_size} bytes, the manifest says {r['bytes']}")
        ps = verify_shard(p, sha256=r["sha256"], samples=r["samples"], variants=m["variants"], first_index=r["first"])
        problems.extend(ps)
        if log:
            log(f"{r['name']}: {'ok' if not ps else 'BAD'}")
    if m["part"] is None:
        missing = set(range(m["n_shards"])) - {r["index"] for r in m["shards"]}
        if missing:
            problems.append(f"{folder}: {len(missing)} shard(s) of {m['n_shards']} not in the manifest")
    return problems
