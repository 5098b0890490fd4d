"""Resampling with a choice of filter, either interpolating (OpenCV style) or antialiased (Pillow style).

Both modes use the pixel-centre convention of ``cv2.resize`` and Pillow: output pixel ``i`` of an axis of length
``out`` samples the input at ``src = (i + 0.5) * in / out - 0.5``. The image is filtered separably, the
intermediate stored as float32 (as Pillow's mode "F" and OpenCV do); nothing is clipped.

``antialias=False`` -- OpenCV conventions (Real-ESRGAN's resizes): every output pixel reads the filter's own
support around ``src`` (``2 * ceil(support)`` taps) whether enlarging or shrinking, so shrinking aliases; taps
beyond the image repeat the edge pixel (replicate); the weights are normalised to sum 1 (Keys' cubic and bilinear
already do; Lanczos as OpenCV's INTER_LANCZOS4 does). "bilinear", "bicubic_a75" and "lanczos4" are
``cv2.resize`` itself (INTER_LINEAR / INTER_CUBIC / INTER_LANCZOS4); the others run the same scheme in Numba.
A box of width 1 at ``src`` selects exactly one pixel, so "box" without antialias is nearest-neighbour.

``antialias=True`` -- Pillow conventions (``Image.resize`` in mode "F", the same weights and float64 sums): when
shrinking by ``s = in / out > 1`` the filter is stretched by ``s`` (support ``s * support``, argument divided by
``s``), so it low-passes before decimating; when enlarging it is the filter itself. The window is clamped to the
image and the weights renormalised over what is left (no padding). An axis whose size is unchanged is not
filtered (as Pillow), so every filter is the identity at factor 1 -- also the non-interpolating Mitchell/Gaussian.

Implementation: the taps of each axis are built once per (sizes, filter, mode) and cached. Antialiased: the
horizontal pass first, as Pillow, both passes by one vectorised Numba kernel (the horizontal one on the
``cv2.transpose``), float64 sums -- the same arithmetic as Pillow, so equal to its last bit or two. Interpolating:
float32 sums (as OpenCV); small images take the same two passes (vertical first when the height shrinks), large
ones a fused kernel that keeps no image-sized temporary (vertical first per output row when shrinking, a ring
of horizontally resampled rows when enlarging); the pass order changes results by float32 rounding only.

"nearest" is ``cv2.INTER_NEAREST_EXACT`` in both modes (``floor((i + 0.5) * in / out)``, Pillow's NEAREST and
torch's ``nearest-exact``, not OpenCV's legacy INTER_NEAREST which uses ``floor(i * in / out)``).

Filters (support in input pixels at factor 1): box (0.5; ``-0.5 < x <= 0.5`` as Pillow), bilinear (1),
hamming (1; Pillow's windowed sinc ``sinc(x) (0.54 + 0.46 cos(pi x))``), bicubic_a50 (2; Keys' cubic a = -0.5,
Pillow's BICUBIC; identical to catmull_rom, kept as a second name), bicubic_a75 (2; a = -0.75, OpenCV/torch),
mitchell (2; Mitchell-Netravali B = C = 1/3), lanczos3 (3), lanczos4 (4), gaussian (3; ``exp(-x^2 / (2 * 0.5^2))``,
the image-rs / fast_image_resize Gaussian).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from numba import njit

from ._check import check_image

FILTERS = ("nearest", "box", "bilinear", "hamming", "bicubic_a50", "bicubic_a75", "mitchell",
           "catmull_rom", "lanczos3", "lanczos4", "gaussian")

# Filters that cv2.resize computes with exactly the antialias=False scheme above.
_CV2 = {"bilinear": cv2.INTER_LINEAR, "bicubic_a75": cv2.INTER_CUBIC, "lanczos4": cv2.INTER_LANCZOS4}


# --------------------------------------------------------------------------------------------- filters
# Vectorised over float64 arrays of distances (tap centre minus sampling position, in filter units).

def _box(x):
    return ((x > -0.5) & (x <= 0.5)).astype(np.float64)


def _bilinear(x):
    return np.maximum(1.0 - np.abs(x), 0.0)


def _sinc(x):
    # np.sinc is sin(pi x) / (pi x); Pillow computes the same expression in double.
    return np.sinc(x)


def _hamming(x):
    ax = np.abs(x)
    # Pillow's constants are float literals (0.54f, 0.46f): keep them, the weights then agree to the last bit.
    w = _sinc(x) * (float(np.float32(0.54)) + float(np.float32(0.46)) * np.cos(np.pi * x))
    return np.where(ax >= 1.0, 0.0, w)


def _keys(a):
    def f(x):
        ax = np.abs(x)
        near = ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1.0
        far = (((ax - 5.0) * ax + 8.0) * ax - 4.0) * a
        return np.where(ax < 1.0, near, np.where(ax < 2.0, far, 0.0))
    return f


def _mitchell(x, b=1.0 / 3.0, c=1.0 / 3.0):
    ax = np.abs(x)
    near = ((12.0 - 9.0 * b - 6.0 * c) * ax ** 3 + (-18.0 + 12.0 * b + 6.0 * c) * ax ** 2 + (6.0 - 2.0 * b)) / 6.0
    far = ((-b - 6.0 * c) * ax ** 3 + (6.0 * b + 30.0 * c) * ax ** 2 + (-12.0 * b - 48.0 * c) * ax
           + (8.0 * b + 24.0 * c)) / 6.0
    return np.where(ax < 1.0, near, np.where(ax < 2.0, far, 0.0))


def _lanczos(a):
    def f(x):
        return np.where((x >= -a) & (x < a), _sinc(x) * _sinc(x / a), 0.0)
    return f


def _gaussian(x):
    return np.where(np.abs(x) < 3.0, np.exp(-2.0 * x * x), 0.0)  # sigma 0.5: exp(-x^2 / (2 * 0.25))


# name -> (filter function, support at factor 1)
_KERNELS = {
    "box": (_box, 0.5),
    "bilinear": (_bilinear, 1.0),
    "hamming": (_hamming, 1.0),
    "bicubic_a50": (_keys(-0.5), 2.0),
    "catmull_rom": (_keys(-0.5), 2.0),
    "bicubic_a75": (_keys(-0.75), 2.0),
    "mitchell": (_mitchell, 2.0),
    "lanczos3": (_lanczos(3.0), 3.0),
    "lanczos4": (_lanczos(4.0), 4.0),
    "gaussian": (_gaussian, 3.0),
}


# --------------------------------------------------------------------------------------------- weights

def _frozen(*arrays):
    for a in arrays:  # cached: shared between calls, so read-only
        a.flags.writeable = False
    return arrays


@functools.lru_cache(maxsize=512)
def interp_weights(n_in: int, n_out: int, filter: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV-style (antialias=False) taps of one axis: ``(idx, w, count)`` with idx int64 (n_out, K) input
    indices (clamped: replicated borders), w float64 (n_out, K) weights summing to 1 per row, count int64 (n_out,)
    all K. ``K = 2 * ceil(support)``, the taps ``floor(src) - ceil(support) + 1 .. floor(src) + ceil(support)``."""
    f, support = _KERNELS[filter]
    half = int(math.ceil(support))
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x0 = np.floor(src).astype(np.int64) - half + 1
    taps = x0[:, None] + np.arange(2 * half, dtype=np.int64)[None, :]
    w = f(taps - src[:, None])
    w /= w.sum(axis=1, keepdims=True)
    return _frozen(np.clip(taps, 0, n_in - 1), w, np.full(n_out, 2 * half, np.int64))


@functools.lru_cache(maxsize=512)
def antialias_weights(n_in: int, n_out: int, filter: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow-style (antialias=True) taps of one axis, as Pillow's ``precompute_coeffs``: ``(idx, w, count)``;
    row i uses the ``count[i]`` contiguous input pixels from ``idx[i, 0]`` (the window clamped to the image), the
    weights renormalised over them; the padding taps beyond ``count`` have weight 0."""
    f, support = _KERNELS[filter]
    scale = n_in / n_out
    fscale = max(scale, 1.0)
    sup = support * fscale
    ksize = int(math.ceil(sup)) * 2 + 1
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    # C's (int) cast truncates towards zero; negative starts are clamped to 0 right after, so trunc is enough.
    xmin = np.maximum(np.trunc(centre - sup + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(centre + sup + 0.5).astype(np.int64), n_in)
    count = xmax - xmin
    j = np.arange(ksize, dtype=np.int64)[None, :]
    taps = xmin[:, None] + j
    w = f((taps - centre[:, None] + 0.5) * (1.0 / fscale))
    w[j >= count[:, None]] = 0.0
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total != 0.0)
    return _frozen(np.minimum(taps, n_in - 1), w, count)


# --------------------------------------------------------------------------------------------- Numba passes

@njit(cache=True, nogil=True)
def _resample_cols(img, idx, w, count, acc, out):
    """Vertical pass on rows flattened to (Hin, W * 3): out[i] = sum_k w[i, k] * img[idx[i, k]], k < count[i],
    taps in order (as Pillow) into the row accumulator ``acc`` (length W * 3, dtype of the sum). out float32
    (Hout, W * 3)."""
    n = img.shape[1]
    for i in range(idx.shape[0]):
        wk = w[i, 0]
        row = idx[i, 0]
        for j in range(n):
            acc[j] = wk * img[row, j]
        for k in range(1, count[i]):
            wk = w[i, k]
            row = idx[i, k]
            for j in range(n):
                acc[j] += wk * img[row, j]
        for j in range(n):
            out[i, j] = acc[j]


@functools.lru_cache(maxsize=1024)
def _taps(n_in: int, n_out: int, filter: str, antialias: bool):
    """(idx, w, count) of one axis with w in the dtype of the sums: float64 (Pillow) / float32 (OpenCV)."""
    if antialias:
        return antialias_weights(n_in, n_out, filter)
    idx, w, count = interp_weights(n_in, n_out, filter)
    return _frozen(idx, w.astype(np.float32), count)


@njit(cache=True, nogil=True)
def _resample_fused(img, yidx, yw, xidx, xw, col, out):
    """Both passes without image-sized temporaries, vertical first, one output row at a time: the K_y input rows
    summed into ``col`` (float32, W_in * 3, vectorised), then the horizontal taps gathered from it.
    img float32 (H_in, W_in * 3), yidx/yw (H_out, K_y), xidx/xw (W_out, K_x) (taps as interp_weights gives
    them), out float32 (H_out, W_out * 3). float32 sums, as OpenCV."""
    n = img.shape[1]
    for i in range(yidx.shape[0]):
        wk = yw[i, 0]
        row = yidx[i, 0]
        for j in range(n):
            col[j] = wk * img[row, j]
        for k in range(1, yidx.shape[1]):
            wk = yw[i, k]
            row = yidx[i, k]
            for j in range(n):
                col[j] += wk * img[row, j]
        for o in range(xidx.shape[0]):
            x = 3 * xidx[o, 0]
            wk = xw[o, 0]
            a0 = wk * col[x]
            a1 = wk * col[x + 1]
            a2 = wk * col[x + 2]
            for k in range(1, xidx.shape[1]):
                x = 3 * xidx[o, k]
                wk = xw[o, k]
                a0 += wk * col[x]
                a1 += wk * col[x + 1]
                a2 += wk * col[x + 2]
            out[i, 3 * o] = a0
            out[i, 3 * o + 1] = a1
            out[i, 3 * o + 2] = a2


@njit(cache=True, nogil=True)
def _resample_fused_ring(img, yidx, yw, xidx, xw, ring, slot_row, acc, out):
    """Both passes without image-sized temporaries, horizontal first (for enlarging): each input row is
    resampled horizontally once, into ``ring`` (float32, (K_y, W_out * 3)) at slot ``row % K_y`` (the K_y
    consecutive rows that one output row reads never share a slot), then each output row sums its K_y ring
    rows into ``acc`` (float32, W_out * 3, vectorised). img float32 (H_in, W_in * 3); taps as interp_weights
    gives them; slot_row int64 (K_y,) filled with -1; out float32 (H_out, W_out * 3)."""
    nk = ring.shape[0]
    n = ring.shape[1]
    for i in range(yidx.shape[0]):
        for k in range(yidx.shape[1]):
            row = yidx[i, k]
            s = row % nk
            if slot_row[s] != row:
                slot_row[s] = row
                src = img[row]
                dst = ring[s]
                for o in range(xidx.shape[0]):
                    x = 3 * xidx[o, 0]
                    wk = xw[o, 0]
                    a0 = wk * src[x]
                    a1 = wk * src[x + 1]
                    a2 = wk * src[x + 2]
                    for t in range(1, xidx.shape[1]):
                        x = 3 * xidx[o, t]
                        wk = xw[o, t]
                        a0 += wk * src[x]
                        a1 += wk * src[x + 1]
                        a2 += wk * src[x + 2]
                    dst[3 * o] = a0
                    dst[3 * o + 1] = a1
                    dst[3 * o + 2] = a2
        wk = yw[i, 0]
        src = ring[yidx[i, 0] % nk]
        for j in range(n):
            acc[j] = wk * src[j]
        for k in range(1, yidx.shape[1]):
            wk = yw[i, k]
            src = ring[yidx[i, k] % nk]
            for j in range(n):
                acc[j] += wk * src[j]
        for j in range(n):
            out[i, j] = acc[j]


def _interp_fused(img, size_hw, filter):
    """antialias=False, both axes changing: one fused Numba kernel, vertical first when the height shrinks,
    else horizontal first through a ring of rows. No image-sized temporaries: where fresh large allocations
    page-fault (measured on our shared machine), the transposes and intermediates of a two-pass route cost
    more than the arithmetic (400 -> 600 mitchell: 12 ms two-pass in the benchmark process vs ~3 ms fused)."""
    h, w = size_hw
    hin, win, _ = img.shape
    yi, yw, _ = _taps(hin, h, filter, False)
    xi, xw, _ = _taps(win, w, filter, False)
    out = np.empty((h, w, 3), np.float32)
    flat = img.reshape(hin, win * 3)
    if h < hin:
        _resample_fused(flat, yi, yw, xi, xw, np.empty(win * 3, np.float32), out.reshape(h, w * 3))
    else:
        k = yi.shape[1]
        _resample_fused_ring(flat, yi, yw, xi, xw, np.empty((k, w * 3), np.float32), np.full(k, -1, np.int64),
                             np.empty(w * 3, np.float32), out.reshape(h, w * 3))
    return out


def _pass(img, n_out, filter, antialias):
    """Resample axis 0 of a float32 (N, M, 3) array to n_out."""
    idx, w, count = _taps(img.shape[0], n_out, filter, antialias)
    m = img.shape[1] * 3
    out = np.empty((n_out, img.shape[1], 3), np.float32)
    _resample_cols(img.reshape(img.shape[0], m), idx, w, count, np.empty(m, w.dtype), out.reshape(n_out, m))
    return out


def _pass_rows(img, n_out, filter, antialias):
    # The horizontal pass is the vertical one on the transposed image: cv2.transpose is ~0.03 ms at 100x400x3
    # and the contiguous pass vectorises, where a gathering loop does not. Same sums in the same order.
    h, w, _ = img.shape
    t = _pass(cv2.transpose(img).reshape(w, h, 3), n_out, filter, antialias)
    return cv2.transpose(t).reshape(h, n_out, 3)


# Intermediate size (bytes) above which the interpolating route takes the fused kernels: a large fresh array
# is a new mapping whose pages fault on first touch (costly on our VM); the two-pass route's vectorised passes
# win while its intermediates stay small (measured: 100 -> 150 two-pass 1.1x cv2, fused 2.2x; 400 -> 600
# two-pass 3-12 ms, fused 2 ms; loaded machine).
_FUSED_BYTES = 1 << 18


def _apply_separable(img, size_hw, filter, antialias):
    """Both passes (an axis of unchanged size is skipped). Antialiased: horizontal first (Pillow's order), two
    vectorised passes. Without antialias (no twin to match bit for bit): the vertical pass first when the height
    shrinks, and with large intermediates the fused kernels of _interp_fused (the pass order changes the result
    only by the float32 rounding of the intermediate)."""
    h, w = size_hw
    hin, win, _ = img.shape
    if not antialias and w != win and h != hin:
        if (h * win if h < hin else hin * w) * 12 > _FUSED_BYTES:
            return _interp_fused(img, size_hw, filter)
        if h < hin:
            return _pass_rows(_pass(img, h, filter, False), w, filter, False)
    cur = img
    if w != win:
        cur = _pass_rows(cur, w, filter, antialias)
    if h != hin:
        cur = _pass(cur, h, filter, antialias)
    return cur if cur is not img else img.copy()


# --------------------------------------------------------------------------------------------- public

def check_size(size_hw) -> tuple[int, int]:
    try:
        h, w = size_hw
    except (TypeError, ValueError):
        raise ValueError(f"size_hw: expected (height, width), got {size_hw!r}") from None
    for name, v in (("height", h), ("width", w)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"size_hw: {name} must be an int >= 1, got {v!r}")
    return int(h), int(w)


def resample(img: np.ndarray, size_hw: tuple[int, int], filter: str, antialias: bool) -> np.ndarray:
    """Resize a float32 HxWx3 image to ``size_hw = (height, width)`` (both >= 1) with ``filter`` in ``FILTERS``.

    antialias: False -> interpolating, the filter's fixed support, replicated borders (OpenCV / torch, as
    Real-ESRGAN's resizes); True -> the support is scaled by the factor when shrinking, the window clamped to the
    image and renormalised (Pillow / MATLAB). "nearest" ignores it. Returns float32 (height, width, 3), not
    clipped (cubic, Lanczos and Mitchell overshoot).
    """
    img = check_image(img)
    h, w = check_size(size_hw)
    if filter not in FILTERS:
        raise ValueError(f"filter: expected one of {', '.join(FILTERS)}, got {filter!r}")
    if not isinstance(antialias, (bool, np.bool_)):
        raise TypeError(f"antialias: expected a bool, got {type(antialias).__name__}")
    if (h, w) == img.shape[:2]:
        return img.copy()
    if filter == "nearest":
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST_EXACT).reshape(h, w, 3)
    if antialias:
        return _apply_separable(img, (h, w), filter, True)
    if filter in _CV2:
        return cv2.resize(img, (w, h), interpolation=_CV2[filter]).reshape(h, w, 3)
    return _apply_separable(img, (h, w), filter, False)  # float32 sums, as OpenCV
