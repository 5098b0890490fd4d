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
float32 sums (as OpenCV); small images take the same two passes (vertical first when the height shrinks; 2-tap
filters then take the fused kernel), large ones a fused kernel that keeps no image-sized temporary (vertical
first per output row when shrinking, a ring of horizontally resampled rows when enlarging); the pass order changes
results by float32 rounding only (and the fused and two-pass routes give the same bits when shrinking). The fused kernels' horizontal
taps read a replicate-padded row at unsigned offsets (consecutive taps, no clamping or wrap-around tests), K = 2
and 4 unrolled per pixel, and the vertical taps are summed in one pass per row.

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


@functools.lru_cache(maxsize=512)
def _htaps(n_in: int, n_out: int, filter: str):
    """The interpolating taps of the horizontal axis in the layout of _hrow: ``(xb, xw, pad)`` with xb uint64
    (n_out,) the offset ``3 (x0_o + pad)`` of output pixel o's first tap in a row padded by ``pad`` replicated
    pixels on each side (x0_o = floor(src_o) - ceil(support) + 1: the taps are then consecutive pixels, the
    clamping of interp_weights done by the padding), and xw float32 (n_out, K) the weights of interp_weights as
    _taps rounds them."""
    _, w, _ = _taps(n_in, n_out, filter, False)
    k = w.shape[1]
    half = k // 2
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x0 = np.floor(src).astype(np.int64) - half + 1  # >= -half (src >= -0.5); x0 + k - 1 <= n_in - 1 + half
    pad = half + 1
    return _frozen((3 * (x0 + pad)).astype(np.uint64)) + (w, pad)


@njit(cache=True, nogil=True)
def _hrow(src, xb, xw, dst):
    """One row of the horizontal pass: ``dst[3 o + c] = sum_k xw[o, k] * src[xb[o] + 3 k + c]`` (taps in order,
    float32 sums) over a padded interleaved row ``src``. K = 2 and 4 unrolled: one offset and K weights loaded
    per pixel for its three values. Offsets unsigned, so no negative-index wrap-around test per load (measured,
    240 rows of 240 pixels, K = 4: 0.32 ms signed per value, 0.21 unsigned per value, 0.16 unsigned per pixel)."""
    nk = xw.shape[1]
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    u3 = np.uint64(3)
    u4 = np.uint64(4)
    u5 = np.uint64(5)
    if nk == 4:
        u6 = np.uint64(6)
        u7 = np.uint64(7)
        u8 = np.uint64(8)
        u9 = np.uint64(9)
        u10 = np.uint64(10)
        u11 = np.uint64(11)
        for o in range(xb.shape[0]):
            b = xb[o]
            w0 = xw[o, 0]
            w1 = xw[o, 1]
            w2 = xw[o, 2]
            w3 = xw[o, 3]
            dst[3 * o] = w0 * src[b] + w1 * src[b + u3] + w2 * src[b + u6] + w3 * src[b + u9]
            dst[3 * o + 1] = w0 * src[b + u1] + w1 * src[b + u4] + w2 * src[b + u7] + w3 * src[b + u10]
            dst[3 * o + 2] = w0 * src[b + u2] + w1 * src[b + u5] + w2 * src[b + u8] + w3 * src[b + u11]
    elif nk == 2:
        for o in range(xb.shape[0]):
            b = xb[o]
            w0 = xw[o, 0]
            w1 = xw[o, 1]
            dst[3 * o] = w0 * src[b] + w1 * src[b + u3]
            dst[3 * o + 1] = w0 * src[b + u1] + w1 * src[b + u4]
            dst[3 * o + 2] = w0 * src[b + u2] + w1 * src[b + u5]
    else:
        for o in range(xb.shape[0]):
            b = xb[o]
            wk = xw[o, 0]
            a0 = wk * src[b]
            a1 = wk * src[b + u1]
            a2 = wk * src[b + u2]
            for k in range(1, nk):
                b += u3
                wk = xw[o, k]
                a0 += wk * src[b]
                a1 += wk * src[b + u1]
                a2 += wk * src[b + u2]
            dst[3 * o] = a0
            dst[3 * o + 1] = a1
            dst[3 * o + 2] = a2


@njit(cache=True, nogil=True)
def _vrow(rows, idx, w, dst):
    """``dst[j] = sum_k w[k] * rows[idx[k], j]`` (taps in order, float32): K = 2 and 4 in one pass over the row
    (one store per value), others accumulated tap by tap. Vectorised (contiguous rows)."""
    n = dst.shape[0]
    nk = idx.shape[0]
    if nk == 4:
        a = rows[idx[0]]
        b = rows[idx[1]]
        c = rows[idx[2]]
        d = rows[idx[3]]
        w0 = w[0]
        w1 = w[1]
        w2 = w[2]
        w3 = w[3]
        for j in range(n):
            dst[j] = w0 * a[j] + w1 * b[j] + w2 * c[j] + w3 * d[j]
    elif nk == 2:
        a = rows[idx[0]]
        b = rows[idx[1]]
        w0 = w[0]
        w1 = w[1]
        for j in range(n):
            dst[j] = w0 * a[j] + w1 * b[j]
    else:
        wk = w[0]
        a = rows[idx[0]]
        for j in range(n):
            dst[j] = wk * a[j]
        for k in range(1, nk):
            wk = w[k]
            a = rows[idx[k]]
            for j in range(n):
                dst[j] += wk * a[j]


@njit(cache=True, nogil=True)
def _pad_edges(row, p3, n):
    """Replicate the first and last pixel of the interleaved row ``row[p3:p3 + n]`` into the p3 values of
    padding on each side."""
    for j in range(p3):
        row[j] = row[p3 + j % 3]
        row[p3 + n + j] = row[p3 + n - 3 + j % 3]


@njit(cache=True, nogil=True)
def _resample_fused(img, yidx, yw, xb, xw, pad, col, out):
    """Both passes without image-sized temporaries, vertical first, one output row at a time: the K_y input rows
    summed into the padded row ``col`` (float32, (W_in + 2 pad) * 3, vectorised), then the horizontal taps
    (_hrow). img float32 (H_in, W_in * 3), yidx/yw (H_out, K_y) (as interp_weights gives them), xb/xw/pad as
    _htaps gives them, out float32 (H_out, W_out * 3). float32 sums, as OpenCV."""
    n = img.shape[1]
    p3 = 3 * pad
    mid = col[p3:p3 + n]  # a view: an index p3 + j would need a wrap-around test per value (no SIMD)
    for i in range(yidx.shape[0]):
        _vrow(img, yidx[i], yw[i], mid)
        _pad_edges(col, p3, n)
        _hrow(col, xb, xw, out[i])


@njit(cache=True, nogil=True)
def _resample_fused_ring(img, yidx, yw, xb, xw, pad, rowp, ring, slot_row, slots, out):
    """Both passes without image-sized temporaries, horizontal first (for enlarging): each input row is copied
    into the padded row ``rowp`` (float32, (W_in + 2 pad) * 3) and resampled horizontally once (_hrow), into
    ``ring`` (float32, (K_y, W_out * 3)) at slot ``row % K_y`` (the K_y consecutive rows that one output row
    reads never share a slot), then each output row sums its K_y ring rows (_vrow; ``slots`` int64 (K_y,)
    scratch). img float32 (H_in, W_in * 3); yidx/yw as interp_weights gives them, xb/xw/pad as _htaps;
    slot_row int64 (K_y,) filled with -1; out float32 (H_out, W_out * 3)."""
    nk = ring.shape[0]
    nin = img.shape[1]
    p3 = 3 * pad
    mid = rowp[p3:p3 + nin]
    for i in range(yidx.shape[0]):
        for k in range(yidx.shape[1]):
            row = yidx[i, k]
            s = row % nk
            if slot_row[s] != row:
                slot_row[s] = row
                mid[:] = img[row]
                _pad_edges(rowp, p3, nin)
                _hrow(rowp, xb, xw, ring[s])
        for k in range(yidx.shape[1]):
            slots[k] = yidx[i, k] % nk
        _vrow(ring, slots, yw[i], out[i])


def _interp_fused(img, size_hw, filter):
    """antialias=False, both axes changing: one fused Numba kernel, vertical first when the height shrinks,
    else horizontal first through a ring of rows. No image-sized temporaries: where fresh large allocations
    page-fault (measured on our shared machine), the transposes and intermediates of a two-pass route cost
    more than the arithmetic (400 -> 600 mitchell: 12 ms two-pass in the benchmark process vs ~3 ms fused)."""
    h, w = size_hw
    hin, win, _ = img.shape
    yi, yw, _ = _taps(hin, h, filter, False)
    xb, xw, pad = _htaps(win, w, filter)
    out = np.empty((h, w, 3), np.float32)
    flat = img.reshape(hin, win * 3)
    padded = np.empty((win + 2 * pad) * 3, np.float32)
    if h < hin:
        _resample_fused(flat, yi, yw, xb, xw, pad, padded, out.reshape(h, w * 3))
    else:
        k = yi.shape[1]
        _resample_fused_ring(flat, yi, yw, xb, xw, pad, padded, np.empty((k, w * 3), np.float32),
                             np.full(k, -1, np.int64), np.empty(k, np.int64), out.reshape(h, w * 3))
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
        # Large intermediates: the fused kernels. Small ones: the two vectorised passes, except a 2-tap filter
        # with a shrinking height, which the fused kernel does faster (measured, 100 -> 60, medians of 1000:
        # hamming fused 18 us, two-pass 22 us; mitchell fused 27 us, two-pass 25 us; 100 -> 150 mitchell
        # ring 88 us, two-pass 70 us).
        if (h * win if h < hin else hin * w) * 12 > _FUSED_BYTES or (h < hin and _KERNELS[filter][1] <= 1.0):
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
    if type(size_hw) is tuple and len(size_hw) == 2:  # the common call: two plain ints >= 1
        h, w = size_hw
        if type(h) is int and type(w) is int and h >= 1 and w >= 1:
            return h, w
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
