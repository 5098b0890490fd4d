"""Noise pool: flat patches of real photos (Ji et al., RealSR), whose residual texture is the camera noise.

A patch of `patch` x `patch` pixels on a `stride` grid is kept when its gray (L = 0.299 R + 0.587 G + 0.114 B)
variance is below `var_max` (grey levels^2) and its mean above `mean_min`. Unlike the original, the last row
and column are covered too: when the image size is not a multiple of the stride, one more patch flush with the
bottom/right border is tested. Patches are stored as they are (RGB uint8); the per-channel mean is subtracted
when a patch is used (:func:`zero_mean`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseConfig", "FlatPatch", "patch_grid", "extract_flat_patches", "zero_mean"]


@dataclass(frozen=True)
class NoiseConfig:
    """Flat-patch thresholds. var_max: gray variance bound (exclusive); mean_min: gray mean bound
    (exclusive, 0 keeps everything but pure black; 50 drops dark patches of phone photos); patch and
    stride in pixels."""

    var_max: float = 20.0
    mean_min: float = 0.0
    patch: int = 256
    stride: int | None = None  # None: equal to patch (non-overlapping, as the original)

    def __post_init__(self):
        if not (self.var_max > 0):
            raise ValueError(f"noise var_max must be > 0, got {self.var_max}")
        if not (0 <= self.mean_min < 255):
            raise ValueError(f"noise mean_min must be in [0, 255), got {self.mean_min}")
        if not isinstance(self.patch, int) or self.patch < 8:
            raise ValueError(f"noise patch must be an integer >= 8, got {self.patch}")
        if self.stride is not None and (not isinstance(self.stride, int) or self.stride < 1):
            raise ValueError(f"noise stride must be a positive integer, got {self.stride}")

    @property
    def step(self) -> int:
        return self.patch if self.stride is None else self.stride


@dataclass(frozen=True)
class FlatPatch:
    """One kept patch: top-left (y, x), gray mean and variance, and the RGB uint8 pixels (p, p, 3)."""

    y: int
    x: int
    mean: float
    var: float
    pixels: np.ndarray


def patch_grid(n: int, patch: int, stride: int) -> list[int]:
    """Start offsets along one axis of length n: 0, stride, 2 stride, ... plus one patch flush with the end
    when the regular grid leaves a strip uncovered. Empty when n < patch."""
    if n < patch:
        return []
    starts = list(range(0, n - patch + 1, stride))
    if starts[-1] + patch < n:
        starts.append(n - patch)
    return starts


def gray(img: np.ndarray) -> np.ndarray:
    """float64 HxW luma (ITU-R 601, the PIL "L" weights) of a uint8 HxWx3 RGB image, 0-255."""
    f = img.astype(np.float64)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def extract_flat_patches(img: np.ndarray, cfg: NoiseConfig = NoiseConfig()) -> list[FlatPatch]:
    """Flat patches of one image, in raster order of their top-left corner.

    img: uint8 HxWx3 RGB at native resolution. Returns the kept patches (maybe none)."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"extract_flat_patches: expected uint8 HxWx3, got {img.dtype} {img.shape}")
    g = gray(img)
    p = cfg.patch
    out = []
    for y in patch_grid(img.shape[0], p, cfg.step):
        for x in patch_grid(img.shape[1], p, cfg.step):
            win = g[y:y + p, x:x + p]
            m = float(win.mean())
            v = float(win.var())
            if v < cfg.var_max and m > cfg.mean_min:
                out.append(FlatPatch(y, x, m, v, np.ascontiguousarray(img[y:y + p, x:x + p])))
    return out


def zero_mean(patch_uint8: np.ndarray) -> np.ndarray:
    """float32 HxWx3 noise in [0, 1] units: the patch / 255 minus its per-channel mean."""
    f = patch_uint8.astype(np.float64) / 255.0
    return (f - f.mean(axis=(0, 1), keepdims=True)).astype(np.float32)
