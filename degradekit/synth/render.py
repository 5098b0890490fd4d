"""Rendering: one sample (HR crop + K degraded LRs + JSON record), one whole shard.

Memory per worker is bounded by one decoded source, one scaled copy of it and one shard member at a time:
sources are decoded when the sample stream reaches them (samples of one source are contiguous) and dropped
when it moves on; shard members are streamed into the tar file as they are produced.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from ..fsutil import atomic_write, read_regular
from ..imageio import decode_image, encode_image
from .plan import Plan, sample_seed, variant_seed
from .prepare import crop_patch, scaled
from .shards import ShardWriter, shard_name

__all__ = ["SourceChanged", "SourceCache", "render_sample", "render_shard", "sample_key", "hr_for_sample",
           "degrade_variants"]


class SourceChanged(RuntimeError):
    """A source file no longer matches the sha256 it had when the sample list was planned."""


def sample_key(index: int) -> str:
    return f"{index:09d}"


class SourceCache:
    """Holds the current source and scaled copy (the only large arrays a worker keeps)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.si = self.ci = None
        self.img = self.copy = None

    def get(self, si: int, ci: int, path_override=None) -> np.ndarray:
        if si != self.si:
            src = self.plan.sources[si]
            path = path_override or src.path
            try:
                data = read_regular(path)
            except OSError as e:  # gone, or replaced by a FIFO/device since the scan
                raise SourceChanged(f"{path}: cannot read the source any more: {e.strerror or e}") from None
            sha = hashlib.sha256(data).hexdigest()
            if sha != src.sha256:
                raise SourceChanged(f"{path}: sha256 {sha[:16]}... differs from the recorded {src.sha256[:16]}... "
                                    f"(the file changed since the sample list was made)")
            self.img = decode_image(data, path, max_pixels=self.plan.settings.max_pixels)
            self.si, self.ci, self.copy = si, None, None
        if ci != self.ci:
            _, hh, ww = self.plan.copies[si][ci]
            self.copy = scaled(self.img, hh, ww)
            self.ci = ci
        return self.copy


def hr_for_sample(plan: Plan, index: int, cache: SourceCache, path_override=None):
    """(HR patch uint8 PxPx3, record dict without variants) of sample ``index``."""
    st = plan.settings
    si, ci, y0, x0 = plan.locate(index)
    img = cache.get(si, ci, path_override)
    hr, box = crop_patch(img, y0, x0, st.patch)
    src = plan.sources[si]
    f, hh, ww = plan.copies[si][ci]
    rec = {
        "key": sample_key(index),
        "source": {"path": src.path, "rel": src.rel, "sha256": src.sha256},
        "multiscale": f,
        "resized": [hh, ww],
        "crop": list(box),
        "pad": [st.patch - (box[2] - box[0]), st.patch - (box[3] - box[1])],
        "scale": st.scale,
        "order": st.order,
        "seed": sample_seed(st.seed, index),
    }
    if st.pool is not None:
        rec["pool"] = st.pool
    if st.pipeline != "realesrgan":
        rec["pipeline"] = st.pipeline
    return hr, rec


def degrade_variants(settings, hr: np.ndarray, seeds, pool=None) -> list[tuple[np.ndarray, dict]]:
    """[(LR uint8, params dict)] for the variants drawn with ``seeds`` from one HR: the engine (its unsharp
    mask of the HR computed once for all of them) or the RealSR pool pipeline."""
    rngs = [np.random.default_rng(s) for s in seeds]
    if settings.pipeline == "realsr":
        from ..pool import realsr

        drawn = [realsr.sample_realsr(rng, settings.config, pool) for rng in rngs]
        return [(realsr.apply_realsr(hr, p, pool), p.to_dict()) for p in drawn]
    if settings.pipeline == "bsrgan":  # owner: bsrgan
        from .. import bsrgan

        drawn = [bsrgan.sample_bsrgan(rng, settings.config) for rng in rngs]
        return [(bsrgan.apply_bsrgan(hr, p), p.to_dict()) for p in drawn]
    from .. import pipeline

    drawn = [pipeline.sample(rng, settings.config, pool) for rng in rngs]
    return list(zip(pipeline.apply_variants(hr, drawn, pool), (p.to_dict() for p in drawn)))


def render_sample(plan: Plan, index: int, cache: SourceCache, pool=None, timings=None) -> list[tuple[str, bytes]]:
    """Tar members ``[(name, bytes), ...]`` of one sample, in the stored order (sorted by name)."""
    st = plan.settings
    hr, rec = hr_for_sample(plan, index, cache)
    key = rec["key"]
    ext = st.codec
    t_enc, t_deg = 0.0, 0.0
    variants, members = [], []
    seeds = [variant_seed(st.seed, index, v) for v in range(st.variants)]
    t1 = time.process_time()
    rendered = degrade_variants(st, hr, seeds, pool)
    t_deg += time.process_time() - t1
    for v, (vs, (lr, params)) in enumerate(zip(seeds, rendered)):
        t1 = time.process_time()
        members.append((f"{key}.lr{v}.{ext}", encode_image(lr, st.codec, level=st.png_level)))
        t_enc += time.process_time() - t1
        variants.append({"seed": vs, "params": params})
    hr_store = hr
    if st.pipeline == "realsr":  # with the clean-up the training HR is the cleaned (halved) image
        from ..pool.realsr import hr_target

        hr_store = hr_target(hr, variants[0]["params"])
    elif st.pipeline == "bsrgan":  # bsrgan-plus with use_sharp: the published HR target is sharpened
        from ..bsrgan import hr_target as bsrgan_hr_target

        hr_store = bsrgan_hr_target(hr, variants[0]["params"])
    t1 = time.process_time()
    members.append((f"{key}.hr.{ext}", encode_image(hr_store, st.codec, level=st.png_level)))
    t_enc += time.process_time() - t1
    rec["variants"] = variants
    members.append((f"{key}.json", json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()))
    if timings is not None:
        timings["encode"] = timings.get("encode", 0.0) + t_enc
        timings["degrade"] = timings.get("degrade", 0.0) + t_deg
    return sorted(members, key=lambda m: m[0])


def render_shard(plan: Plan, shard: int, out_dir, pool=None, progress=None, timings=None) -> dict:
    """Render shard ``shard`` into ``out_dir`` (temporary name, renamed when complete); returns its manifest row.

    ``progress(n_pairs)`` is called after each sample. On any error the temporary file is removed.
    """
    from pathlib import Path

    path = Path(out_dir) / shard_name(shard)
    rng_ = plan.shard_range(shard)
    cache = SourceCache(plan)
    w = ShardWriter(path)
    try:
        for index in rng_:
            for name, data in render_sample(plan, index, cache, pool, timings):
                w.add(name, data)
            if progress is not None:
                progress(plan.settings.variants)
        size, sha = w.commit()
    except BaseException:
        w.abort()
        raise
    row = {"name": path.name, "index": shard, "first": rng_.start, "samples": len(rng_), "bytes": size,
           "sha256": sha}
    _write_sidecar(Path(out_dir), row)
    return row


def sidecar_path(out_dir, name: str):
    """``OUT/.degradekit/shards/NAME.json``: the manifest row of a finished shard, written right after it."""
    from pathlib import Path

    return Path(out_dir) / ".degradekit" / "shards" / (name + ".json")


def _write_sidecar(out_dir, row: dict) -> None:
    # Lets a resumed run take the rows of finished shards without re-reading them (terabytes on a big run).
    # Written after the shard's rename: a crash in between only costs re-hashing that one shard on resume.
    atomic_write(sidecar_path(out_dir, row["name"]), json.dumps(row, sort_keys=True), mkdir=True)
