"""Banding: bit-depth reduction of each channel, no dither (posterised gradients, as in low-bit-depth
sources and aggressive palette conversions)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._check import check_image


def band(img: np.ndarray, bits: int) -> np.ndarray:
    """Round each channel of a float32 HxWx3 image to ``2^bits`` levels (bits 1..8):
    ``rint(clip(img, 0, 1) * L) / L``, L = 2^bits - 1 (round half to even, float32 arithmetic). bits = 8 gives
    the 8-bit values ``to_uint8(img) / 255``. Returns float32 HxWx3 with values in {k / L}.
    """
    img = check_image(img)
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits: expected an int in 1..8, got {type(bits).__name__}")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits: expected an int in 1..8, got {bits}")
    out = np.empty_like(img)
    _band(img.reshape(-1), np.float32((1 << int(bits)) - 1), out.reshape(-1))
    return out


_RINT_MAGIC = np.float32(12582912.0)  # 1.5 * 2**23: (v + M) - M rounds half to even for 0 <= v < 2**22


@njit(cache=True, nogil=True)
def _band(img, levels, out):
    """out = rint(clip(x, 0, 1) * levels) / levels; flat float32."""
    for i in range(img.shape[0]):
        v = min(max(img[i], np.float32(0.0)), np.float32(1.0)) * levels
        out[i] = ((v + _RINT_MAGIC) - _RINT_MAGIC) / levels
