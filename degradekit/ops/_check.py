"""Input checks shared by the public op wrappers (checked once, at the public boundary)."""

from __future__ import annotations

import numpy as np


def check_image(img: np.ndarray, name: str = "img") -> np.ndarray:
    """Return ``img`` as a C-contiguous float32 HxWx3 array, or raise a one-line error.

    Values are not range-checked: after a bicubic resize or a sinc filter the pipeline legitimately carries
    values slightly outside [0, 1] (as the reference does).
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(img).__name__}")
    if img.dtype != np.float32:
        raise TypeError(f"{name}: expected dtype float32, got {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name}: expected shape (H, W, 3), got {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"{name}: empty image of shape {img.shape}")
    return np.ascontiguousarray(img)


def check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed}")
    return int(seed)


def check_finite_number(x, name: str, lo: float | None = None) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(x).__name__}")
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {x}")
    if lo is not None and x < lo:
        raise ValueError(f"{name}: expected >= {lo}, got {x}")
    return x
