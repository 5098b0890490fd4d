"""The sample list, fixed before anything is rendered.

`scan_source` validates each source completely and measures its size (``imageio.check_image``: a full decode,
or for plain PNGs an inflate + checks without unfiltering; one image in memory at a time); `Plan` then enumerates every sample (source -> copy -> crop) as cumulative counts, so that a sample index
maps to (source, copy, crop origin) in O(log n) without materialising a list of all samples. Shard ``s`` holds
samples ``[s * shard_size, min((s + 1) * shard_size, n))``. Seeds come from (global seed, index, variant) only.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..fsutil import read_regular
from ..imageio import PNG_ENCODER, ImageError, check_image
from .prepare import MIN_KERNEL, crop_origins, plan_copies

__all__ = ["Settings", "SourceInfo", "Plan", "scan_source", "sample_seed", "variant_seed", "sources_hash"]


@dataclass(frozen=True)
class Settings:
    """Everything the bytes of the shards depend on (with the sources). Worker count and --part are not here."""
    config: object                      # DegradeConfig (or a RealsrConfig with a pool)
    seed: int = 0
    patch: int = 400
    step: int = 200
    min_size: int = 0
    multiscale: tuple[float, ...] = (1.0,)
    shortest_edge: int | None = None
    variants: int = 1
    shard_size: int = 1000
    codec: str = "png"
    png_level: int = 1
    max_pixels: int = 100_000_000
    png_encoder: str = PNG_ENCODER      # the bytes are reproducible for one encoder version
    pipeline: str = "realesrgan"        # "realesrgan" (degradekit.sample/apply) or "realsr" (pool pipeline)
    pool: dict | None = None            # {"path": str, "sha256": digest} when a pool is used

    @property
    def scale(self) -> int:
        return int(self.config.scale)

    @property
    def order(self) -> int | None:
        return getattr(self.config, "order", None)

    @property
    def effective_min_size(self) -> int:
        return max(int(self.min_size), MIN_KERNEL)

    def config_dict(self) -> dict:
        if self.pipeline in ("realsr", "bsrgan"):
            return self.config.to_dict() if hasattr(self.config, "to_dict") else asdict(self.config)
        from ..config import config_to_dict

        return config_to_dict(self.config)

    def to_dict(self) -> dict:
        """JSON form recorded in the manifest (and compared on resume / merge)."""
        return {
            "pipeline": self.pipeline,
            "config": self.config_dict(),
            "seed": int(self.seed),
            "patch": self.patch,
            "step": self.step,
            "min_size": self.min_size,
            "multiscale": list(self.multiscale),
            "shortest_edge": self.shortest_edge,
            "variants": self.variants,
            "shard_size": self.shard_size,
            "codec": self.codec,
            "png_level": self.png_level,
            "png_encoder": self.png_encoder,
            "max_pixels": self.max_pixels,
            "pool": self.pool,
        }

    def digest(self) -> str:
        """sha256 of the settings; the pool counts by its content digest, not by where it lives."""
        d = self.to_dict()
        if d["pool"] is not None:
            d["pool"] = {"sha256": d["pool"]["sha256"]}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SourceInfo:
    """One scanned source: usable (h, w set, reason None) or skipped (reason set)."""
    path: str
    rel: str
    bytes: int = 0
    sha256: str = ""
    h: int = 0
    w: int = 0
    mtime_ns: int = 0
    reason: str | None = None


def scan_source(path: str, rel: str, max_pixels: int, min_size: int) -> SourceInfo:
    """Read, hash and validate one source; a bad one comes back with ``reason`` (the ImageError text)."""
    try:
        st = os.stat(path)
        data = read_regular(path)  # a FIFO or device is refused without blocking
    except OSError as e:
        return SourceInfo(path, rel, reason=f"{path}: {e.strerror or e}")
    sha = hashlib.sha256(data).hexdigest()
    try:
        h, w = check_image(data, path, max_pixels=max_pixels)  # validates fully (plain PNGs: inflate only)
    except ImageError as e:
        return SourceInfo(path, rel, len(data), sha, mtime_ns=st.st_mtime_ns, reason=str(e))
    if min(h, w) < min_size:
        why = (f"too small for the largest blur kernel ({MIN_KERNEL} px)" if min_size == MIN_KERNEL
               else f"smaller than --min-size {min_size}")
        return SourceInfo(path, rel, len(data), sha, h, w, st.st_mtime_ns, reason=f"{path}: {w}x{h} is {why}")
    return SourceInfo(path, rel, len(data), sha, h, w, st.st_mtime_ns)


def sources_hash(sources) -> str:
    """sha256 over (relative path, file sha256) of every usable source: the same wherever the files live."""
    h = hashlib.sha256()
    for s in sources:
        # os.fsencode: lossless for any file name (undecodable bytes were surrogate-escaped), UTF-8 otherwise
        h.update(os.fsencode(s.rel) + f"\t{s.sha256}\n".encode())
    return h.hexdigest()


def _seed(*entropy: int) -> int:
    # SeedSequence mixes (global seed, index[, variant]) into independent streams; 63 bits fit any JSON int reader.
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def sample_seed(seed: int, index: int) -> int:
    """The seed recorded for a sample (global seed, sample index)."""
    return _seed(seed, index)


def variant_seed(seed: int, index: int, variant: int) -> int:
    """The seed of variant ``variant`` of sample ``index``: the LR is ``degrade(hr, config, variant_seed)``."""
    return _seed(seed, index, 1 + variant)  # 1 + : never collides with the 2-entropy sample_seed stream


@dataclass
class Plan:
    """Usable sources, their copies and the cumulative sample counts (all deterministic)."""
    settings: Settings
    sources: list[SourceInfo]
    skipped: list[SourceInfo] = field(default_factory=list)
    copies: list[list[tuple[float, int, int]]] = field(default_factory=list)
    _units: list[tuple[int, int]] = field(default_factory=list, repr=False)   # (source, copy) in order
    _starts: list[int] = field(default_factory=list, repr=False)              # first sample index of each unit
    n_samples: int = 0

    @classmethod
    def build(cls, settings: Settings, scanned: list[SourceInfo]) -> "Plan":
        st = settings
        usable = [s for s in scanned if s.reason is None]
        skipped = [s for s in scanned if s.reason is not None]
        plan = cls(st, usable, skipped)
        n = 0
        for si, s in enumerate(usable):
            cps = plan_copies(s.h, s.w, st.multiscale, st.shortest_edge, st.effective_min_size)
            plan.copies.append(cps)
            for ci, (_, hh, ww) in enumerate(cps):
                plan._units.append((si, ci))
                plan._starts.append(n)
                n += len(crop_origins(hh, st.patch, st.step)) * len(crop_origins(ww, st.patch, st.step))
        plan.n_samples = n
        return plan

    @property
    def n_shards(self) -> int:
        return -(-self.n_samples // self.settings.shard_size)

    def shard_range(self, shard: int) -> range:
        ss = self.settings.shard_size
        return range(shard * ss, min((shard + 1) * ss, self.n_samples))

    def locate(self, index: int) -> tuple[int, int, int, int]:
        """Sample index -> (source index, copy index, y0, x0)."""
        if not 0 <= index < self.n_samples:
            raise IndexError(f"sample {index} out of range (0..{self.n_samples - 1})")
        u = bisect.bisect_right(self._starts, index) - 1
        si, ci = self._units[u]
        _, hh, ww = self.copies[si][ci]
        ys = crop_origins(hh, self.settings.patch, self.settings.step)
        xs = crop_origins(ww, self.settings.patch, self.settings.step)
        k = index - self._starts[u]
        return si, ci, ys[k // len(xs)], xs[k % len(xs)]

    def samples_per_source(self) -> list[int]:
        out = [0] * len(self.sources)
        bounds = self._starts[1:] + [self.n_samples]
        for (si, _), a, b in zip(self._units, self._starts, bounds):
            out[si] += b - a
        return out
