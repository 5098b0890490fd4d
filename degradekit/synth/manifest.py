"""``manifest.json``: what a shard folder holds and how it was made.

The manifest is deterministic (no timestamps, no host names): the same sources, settings and seed give the
same manifest whatever the worker count. A ``--part I/N`` run writes ``manifest.part-I-of-N.json`` instead;
``degradekit manifest merge`` joins the parts into ``manifest.json`` after checking that they agree.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..fsutil import atomic_write
from ..ops.codec_info import library_versions

__all__ = ["FORMAT", "ManifestError", "build_manifest", "write_manifest", "load_manifest", "merge_manifests",
           "manifest_name", "tool_version"]

FORMAT = "degradekit-shards/1"


class ManifestError(ValueError):
    """A manifest is unreadable or manifests disagree (one line)."""


def tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("degradekit")
    except Exception:  # pragma: no cover - running from a source tree without installation
        return "0+unknown"


def manifest_name(part: tuple[int, int] | None) -> str:
    return "manifest.json" if part is None else f"manifest.part-{part[0]}-of-{part[1]}.json"


def build_manifest(plan, source_set, rows: list[dict], part: tuple[int, int] | None, shard_ids: list[int]) -> dict:
    """The manifest dict of a run (or of one part of it)."""
    from .plan import sources_hash

    st = plan.settings
    per_source = plan.samples_per_source()
    rows = sorted(rows, key=lambda r: r["index"])
    return {
        "format": FORMAT,
        "tool": {"name": "degradekit", "version": tool_version()},
        "codecs": library_versions(),  # codec outputs depend on these; replay compares them
        "config": st.config_dict(),
        "seed": int(st.seed),
        "settings": st.to_dict(),
        "settings_sha256": st.digest(),
        "sources": {
            "spec": source_set.spec,
            "root": str(source_set.root),
            "count": len(plan.sources),
            "sha256": sources_hash(plan.sources),
            "files": [{"rel": s.rel, "path": s.path, "sha256": s.sha256, "bytes": s.bytes, "size": [s.h, s.w],
                       "copies": [[f, h, w] for f, h, w in plan.copies[i]], "samples": per_source[i]}
                      for i, s in enumerate(plan.sources)],
        },
        "skipped": [{"path": s.path, "rel": s.rel, "reason": s.reason} for s in plan.skipped],
        "n_samples": plan.n_samples,
        "n_shards": plan.n_shards,
        "shard_size": st.shard_size,
        "variants": st.variants,
        "part": list(part) if part else None,
        "part_shards": list(shard_ids) if part else None,
        "shards": rows,
        "totals": _totals(rows, st.variants),
    }


def _totals(rows, variants) -> dict:
    samples = sum(r["samples"] for r in rows)
    return {"shards": len(rows), "samples": samples, "pairs": samples * variants,
            "bytes": sum(r["bytes"] for r in rows)}


def write_manifest(out_dir, manifest: dict) -> Path:
    """Write atomically (temporary name + rename) as ``manifest.json`` / ``manifest.part-I-of-N.json``."""
    part = tuple(manifest["part"]) if manifest.get("part") else None
    path = Path(out_dir) / manifest_name(part)
    atomic_write(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


def load_manifest(path) -> dict:
    """Read a manifest file, or ``DIR/manifest.json``. Raises ManifestError."""
    p = Path(path)
    if p.is_dir():
        parts = sorted(p.glob("manifest.part-*-of-*.json"))
        if not (p / "manifest.json").exists() and len(parts) == 1:
            p = parts[0]  # a folder rendered with --part I/N
        elif not (p / "manifest.json").exists() and parts:
            raise ManifestError(f"{p}: no manifest.json but {len(parts)} part manifests; join them with "
                                f"`degradekit manifest merge {p} -o {p}`")
        else:
            p = p / "manifest.json"
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ManifestError(f"{p}: cannot read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{p}: not valid JSON: {e}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        fmt = m.get("format") if isinstance(m, dict) else None
        raise ManifestError(f"{p}: not a degradekit shard manifest (format {fmt!r})")
    m["_path"] = str(p)
    return m


_AGREE = ("format", "settings_sha256", "seed", "n_samples", "n_shards", "shard_size", "variants")


def merge_manifests(manifests: list[dict]) -> dict:
    """Join part manifests: they must agree on settings, seed, sources and tool version, their shard sets must
    be disjoint and together complete. Returns the merged manifest (``part`` None)."""
    if not manifests:
        raise ManifestError("no manifests to merge")
    first = manifests[0]
    for m in manifests[1:]:
        for k in _AGREE:
            if m.get(k) != first.get(k):
                raise ManifestError(f"{m['_path']}: {k} differs from {first['_path']} "
                                    f"({m.get(k)!r} vs {first.get(k)!r})")
        if m["sources"]["sha256"] != first["sources"]["sha256"]:
            raise ManifestError(f"{m['_path']}: sources hash differs from {first['_path']} (different input files)")
        if m["tool"]["version"] != first["tool"]["version"]:
            raise ManifestError(f"{m['_path']}: made by degradekit {m['tool']['version']}, "
                                f"{first['_path']} by {first['tool']['version']}")
        mc, fc = m.get("codecs") or {}, first.get("codecs") or {}
        if mc != fc:  # a codec's bytes depend on its library version: parts must come from the same libraries
            diff = ", ".join(f"{k} {fc.get(k)} vs {mc.get(k)}" for k in sorted(set(mc) | set(fc))
                             if mc.get(k) != fc.get(k))
            raise ManifestError(f"{m['_path']}: codec libraries differ from {first['_path']} ({diff})")
        if m["skipped"] != first["skipped"]:
            raise ManifestError(f"{m['_path']}: skipped inputs differ from {first['_path']}")
    seen: dict[int, str] = {}
    rows = []
    for m in manifests:
        for r in m["shards"]:
            if r["index"] in seen:
                raise ManifestError(f"{m['_path']}: shard {r['name']} is also in {seen[r['index']]}")
            seen[r["index"]] = m["_path"]
            rows.append(r)
    missing = sorted(set(range(first["n_shards"])) - set(seen))
    if missing:
        names = ", ".join(f"shard-{i:06d}.tar" for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ManifestError(f"incomplete: {len(missing)} of {first['n_shards']} shards are in no manifest ({names})")
    merged = {k: v for k, v in first.items() if not k.startswith("_")}
    merged["part"] = None
    merged["part_shards"] = None
    merged["shards"] = sorted(rows, key=lambda r: r["index"])
    merged["totals"] = _totals(merged["shards"], first["variants"])
    return merged
