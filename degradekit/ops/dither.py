"""Dithering: quantise each channel to ``levels`` values with an ordered (Bayer) or error-diffusion dither.

The output values are ``k / (levels - 1)``, k = 0 .. levels - 1 (float32); the input is clipped to [0, 1] first.

Ordered: ``k = floor(x (levels - 1) + (M[y mod n, x mod n] + 0.5) / n^2)``, M the n x n Bayer index matrix
(0 .. n^2 - 1; ``M_2n = [[4 M_n, 4 M_n + 2], [4 M_n + 3, 4 M_n + 1]]``) tiled from the image origin, so a flat
field at ``x (levels - 1) = k + f`` sets a fraction ~f of each tile to k + 1: the local mean is kept.

Error diffusion: pixels in raster order (every row left to right, not serpentine: the classical definition,
as Pillow's and chaiNNer's), each channel on its own, in float64: ``k = clip(floor(v (levels - 1) + 0.5), 0,
levels - 1)`` of the value v plus the error it received, and the error ``v - k / (levels - 1)`` handed to the
unvisited neighbours with the method's weights; the share that would leave the image is dropped. Weights (right
of the pixel on its row, then the rows below, left to right), each list over its divisor:

- floyd_steinberg /16: 7 | 3 5 1
- jarvis (Jarvis-Judice-Ninke) /48: 7 5 | 3 5 7 5 3 | 1 3 5 3 1
- stucki /42: 8 4 | 2 4 8 4 2 | 1 2 4 2 1
- atkinson /8: 1 1 | 1 1 1 | 1 (only 6/8 of the error is diffused, by design: higher contrast, lost detail
  in highlights and shadows)
- burkes /32: 8 4 | 2 4 8 4 2
- sierra (Sierra-3) /32: 5 3 | 2 4 5 4 2 | 2 3 2
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

from ._check import check_image

DITHER_METHODS = ("bayer2", "bayer4", "bayer8", "floyd_steinberg", "jarvis", "stucki", "atkinson", "burkes",
                  "sierra")


def _taps(rows, divisor):
    """[(dy, dx, weight)] from rows of numerators: row 0 starts right of the pixel, the others are centred."""
    out = []
    for dy, row in enumerate(rows):
        start = 1 if dy == 0 else -(len(row) // 2)
        out += [(dy, start + i, w / divisor) for i, w in enumerate(row)]
    return out


DIFFUSION = {
    "floyd_steinberg": _taps([[7], [3, 5, 1]], 16),
    "jarvis": _taps([[7, 5], [3, 5, 7, 5, 3], [1, 3, 5, 3, 1]], 48),
    "stucki": _taps([[8, 4], [2, 4, 8, 4, 2], [1, 2, 4, 2, 1]], 42),
    "atkinson": _taps([[1, 1], [1, 1, 1], [1]], 8),
    "burkes": _taps([[8, 4], [2, 4, 8, 4, 2]], 32),
    "sierra": _taps([[5, 3], [2, 4, 5, 4, 2], [2, 3, 2]], 32),
}


def bayer_matrix(n: int) -> np.ndarray:
    """The n x n Bayer index matrix (n a power of two), int64 values 0 .. n^2 - 1."""
    m = np.zeros((1, 1), np.int64)
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return m


def dither(img: np.ndarray, levels: int, method: str) -> np.ndarray:
    """Quantise a float32 HxWx3 image to ``levels`` (2..256) values per channel with ``method`` in
    ``DITHER_METHODS`` (ordered Bayer 2/4/8, or error diffusion). Returns float32 HxWx3 with values in
    ``{k / (levels - 1)}``.
    """
    img = check_image(img)
    if isinstance(levels, (bool, np.bool_)) or not isinstance(levels, (int, np.integer)):
        raise TypeError(f"levels: expected an int in 2..256, got {type(levels).__name__}")
    if not 2 <= levels <= 256:
        raise ValueError(f"levels: expected an int in 2..256, got {levels}")
    if method not in DITHER_METHODS:
        raise ValueError(f"method: expected one of {', '.join(DITHER_METHODS)}, got {method!r}")
    out = np.empty_like(img)
    top = int(levels) - 1
    if method.startswith("bayer"):
        _ordered(img, _thresholds(int(method[5:])), np.float32(top), out)
    else:
        dy, dx, w = _diffusion_arrays(method)
        _diffuse(img, dy, dx, w, float(top), out)
    return out


@functools.lru_cache(maxsize=None)
def _thresholds(n: int) -> np.ndarray:
    """(M + 0.5) / n^2 as float32 (n, n), cached read-only."""
    t = ((bayer_matrix(n) + 0.5) / (n * n)).astype(np.float32)
    t.flags.writeable = False
    return t


@functools.lru_cache(maxsize=None)
def _diffusion_arrays(method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The method's taps as (dy int64, dx int64, w float64) arrays, cached read-only."""
    taps = np.array(DIFFUSION[method], np.float64)
    arrays = (taps[:, 0].astype(np.int64), taps[:, 1].astype(np.int64), np.ascontiguousarray(taps[:, 2]))
    for a in arrays:
        a.flags.writeable = False
    return arrays


@njit(cache=True, nogil=True)
def _ordered(img, thresholds, top, out):
    """out = clip(floor(clip(x, 0, 1) * top + thresholds[y % n, x % n]), 0, top) / top; float32 HxWx3."""
    n = thresholds.shape[0]
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            t = thresholds[y % n, x % n]
            for c in range(3):
                v = min(max(img[y, x, c], np.float32(0.0)), np.float32(1.0))
                k = min(np.floor(v * top + t), top)
                out[y, x, c] = k / top


@njit(cache=True, nogil=True)
def _diffuse(img, dy, dx, w, top, out):
    """Error diffusion in raster order, float64 (see the module docstring); img/out float32 HxWx3, taps
    (dy, dx, w) with 0 <= dy < 3, |dx| <= 2 (and dx > 0 where dy = 0).

    The working values (clipped input plus the errors received, summed in the order they arrive) live in a
    ring of 3 rows padded by 2 columns on each side, so the taps need no bounds checks: a row enters the ring
    as the clipped input when it first receives errors, and errors sent into the padding or past the last row
    are never read (dropped)."""
    h, wd, _ = img.shape
    ring = np.zeros((3, wd + 4, 3), np.float64)
    ntaps = dy.shape[0]
    slot = np.empty(ntaps, np.int64)
    col = dx + 2
    err = np.empty(3, np.float64)
    for y in range(min(3, h)):
        _load_row(img, y, ring[y])
    for y in range(h):
        cur = ring[y % 3]
        for t in range(ntaps):
            slot[t] = (y + dy[t]) % 3  # once per row: integer modulo is slow
        for x in range(wd):
            for c in range(3):
                v = cur[x + 2, c]
                q = min(max(np.floor(v * top + 0.5), 0.0), top) / top
                out[y, x, c] = q
                err[c] = v - q
            for t in range(ntaps):
                dst = ring[slot[t], x + col[t]]
                wt = w[t]
                for c in range(3):
                    dst[c] += err[c] * wt
        if y + 3 < h:
            _load_row(img, y + 3, cur)  # row y is done: its slot takes row y + 3


@njit(cache=True, nogil=True, inline="always")
def _load_row(img, y, row):
    """row[2 + x] = clip(img[y, x], 0, 1) as float64; the padding zeroed."""
    wd = img.shape[1]
    for c in range(3):
        row[0, c] = 0.0
        row[1, c] = 0.0
        row[wd + 2, c] = 0.0
        row[wd + 3, c] = 0.0
    for x in range(wd):
        for c in range(3):
            row[x + 2, c] = min(max(np.float64(img[y, x, c]), 0.0), 1.0)
