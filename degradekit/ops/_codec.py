"""Shared pieces of the codec ops: argument checks and the fused uint8/uint16 <-> float32 conversions.

Every codec op quantises exactly as ``ops.jpeg`` does (``rint(clip(img, 0, 1) * 255)`` in float32, ties to even)
and returns the decode divided by the format's maximum (255, or 65535 for rgb48).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_RINT_MAGIC = np.float32(12582912.0)  # 1.5 * 2**23: (x + M) - M rounds half to even for 0 <= x < 2**22


def check_int(x, name: str, lo: int, hi: int) -> int:
    """``x`` as a Python int in [lo, hi], or a one-line TypeError / ValueError."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name}: expected an int in [{lo}, {hi}], got {type(x).__name__}")
    if not lo <= x <= hi:
        raise ValueError(f"{name}: expected an int in [{lo}, {hi}], got {x}")
    return int(x)


def check_choice(x, name: str, choices) -> str:
    """``x`` as one of ``choices`` (strings), or a one-line TypeError / ValueError listing them."""
    if not isinstance(x, str):
        raise TypeError(f"{name}: expected a str, one of {', '.join(map(repr, choices))}; got {type(x).__name__}")
    if x not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}; got {x!r}")
    return x


def quantize_rgb(img: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB = rint(clip(img, 0, 1) * 255); img float32 HxWx3, C-contiguous."""
    q8 = np.empty(img.shape, np.uint8)
    _quantize(img.reshape(-1), q8.reshape(-1))
    return q8


def to_float(dec: np.ndarray) -> np.ndarray:
    """float32 = dec / 255 (uint8) or dec / 65535 (uint16); dec HxWxC (any strides: it is copied if needed)."""
    dec = np.ascontiguousarray(dec)
    out = np.empty(dec.shape, np.float32)
    if dec.dtype == np.uint8:
        _u8_to_float(dec.reshape(-1), out.reshape(-1))
    else:
        _u16_to_float(dec.reshape(-1), out.reshape(-1))
    return out


# Fused single passes over the flat arrays (NumPy needs several passes and temporaries for each).

@njit(cache=True, nogil=True)
def _quantize(img, q8):
    for i in range(img.shape[0]):
        v = min(max(img[i], np.float32(0.0)), np.float32(1.0))
        q8[i] = np.uint8((v * np.float32(255.0) + _RINT_MAGIC) - _RINT_MAGIC)


@njit(cache=True, nogil=True)
def _u8_to_float(dec, out):
    for i in range(dec.shape[0]):
        out[i] = np.float32(dec[i]) / np.float32(255.0)


@njit(cache=True, nogil=True)
def _u16_to_float(dec, out):
    for i in range(dec.shape[0]):
        out[i] = np.float32(dec[i]) / np.float32(65535.0)


def pillow_roundtrip(q8: np.ndarray, fmt: str, **options) -> np.ndarray:
    """Encode uint8 HxWx3 RGB with Pillow's ``fmt`` writer (in memory) and decode it again: uint8 HxWx3 RGB."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(q8).save(buf, fmt, **options)
    buf.seek(0)
    with Image.open(buf, formats=[fmt]) as im:
        if im.mode != "RGB":  # pragma: no cover - the three writers keep RGB for an RGB input
            im = im.convert("RGB")
        dec = np.asarray(im)
    if dec.shape != q8.shape:  # pragma: no cover - a decoder failure on our own bytes
        raise RuntimeError(f"{fmt}: Pillow decoded a {dec.shape} image from its own {q8.shape} encode")
    return dec
