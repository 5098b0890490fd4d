"""Median blur on the float image, reflect-101 borders (``scipy.ndimage.median_filter(mode="mirror")``).

Size 3 is a Numba loop of min/max on sorted column triples (below); size 5 goes through ``cv2.medianBlur``,
exact on float32 for that size (a sorting network), whose border rule is replicate, so the 2-px border strips
are then recomputed from small reflect-101 strips (no padded copy of the image is made). OpenCV's float path stops at 5 (larger sizes need 8-bit input, which would quantise
the image), so 7..15 run the Numba loop everywhere: per pixel and channel the k x k window is gathered through
reflect-101 index tables and its median found with Wirth's selection (expected O(k^2)), as SciPy does.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from numba import njit

from ._check import check_image

_SMALL_BYTES = 1 << 18  # images up to this size take the plain pad-filter-crop route for size 5

def median_blur(img: np.ndarray, size: int) -> np.ndarray:
    """Median of each ``size`` x ``size`` window (odd size 3..15), channel by channel, of a float32 HxWx3 image;
    borders reflect-101 (``dcb|abcd|cba``, repeated for images smaller than the window). Exact: each output
    value is one of the input values. Returns float32 HxWx3.
    """
    img = check_image(img)
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size: expected an odd int in 3..15, got {type(size).__name__}")
    if size < 3 or size > 15 or size % 2 == 0:
        raise ValueError(f"size: expected an odd int in 3..15, got {size}")
    r = int(size) // 2
    h, w, _ = img.shape
    ry, rx = _fold(h, r), _fold(w, r)
    if size == 3:
        out = np.empty_like(img)
        _median3(img.reshape(h, w * 3), _fold(h, 1), _fold(w, 1), out.reshape(h, w * 3))
        return out
    if size == 5 and img.nbytes <= _SMALL_BYTES:  # small: the padded copies come from the heap, cheap
        pad = cv2.copyMakeBorder(img, r, r, r, r, cv2.BORDER_REFLECT_101)
        return np.ascontiguousarray(cv2.medianBlur(pad, int(size))[r:r + h, r:r + w])
    if size == 5 and min(h, w) > 2 * r:
        return _cv2_median(img, int(size), r)
    out = np.empty_like(img)
    _median_rect(img, _fold(h, r), _fold(w, r), int(size), 0, h, 0, w, out)
    return out


def _cv2_median(img: np.ndarray, k: int, r: int) -> np.ndarray:
    """cv2.medianBlur with reflect-101 borders. medianBlur replicates the edge; instead of filtering a padded
    copy and cropping it (two more image-sized buffers: where fresh large allocations page-fault, that costs more
    than the filter), the image is filtered as is and the r-wide border strips are recomputed by medianBlur on
    small reflect-101 strips (3r rows around each edge, padded by r columns; the columns through the transpose:
    a k x k median commutes with it, and narrow column strips are ~10x slower per pixel in medianBlur)."""
    h, w, _ = img.shape
    out = cv2.medianBlur(img, k)
    out[:r], out[h - r:] = _edge_medians(img[_edge_rows(h, r)], k, r)
    left, right = _edge_medians(cv2.transpose(np.ascontiguousarray(img[:, _edge_rows(w, r)])), k, r)
    out[:, :r], out[:, w - r:] = cv2.transpose(left), cv2.transpose(right)
    return out


def _edge_rows(n: int, r: int) -> np.ndarray:
    """Positions -r..2r-1 and n-2r..n+r-1 folded into [0, n) by reflect-101 (n > 2r)."""
    fold = _fold(n, r)
    return np.concatenate([fold[:3 * r], fold[n - r:]])


def _edge_medians(rows: np.ndarray, k: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """rows: the 6r rows of _edge_rows, full width. Returns the reflect-101 medians of the first r and of the
    last r rows of the image (each (r, W, 3)), from the two 3r-row strips padded by r columns."""
    w = rows.shape[1]
    strips = cv2.copyMakeBorder(np.ascontiguousarray(rows), 0, 0, r, r, cv2.BORDER_REFLECT_101)
    first = cv2.medianBlur(np.ascontiguousarray(strips[:3 * r]), k)[r:2 * r, r:r + w]
    last = cv2.medianBlur(np.ascontiguousarray(strips[3 * r:]), k)[r:2 * r, r:r + w]
    return first, last


@functools.lru_cache(maxsize=256)
def _fold(n: int, r: int) -> np.ndarray:
    """Reflect-101 source index of positions -r .. n + r - 1 (``dcb|abcd|cba``, repeated as often as needed);
    cached, read-only."""
    idx = np.arange(-r, n + r, dtype=np.int64)
    if n == 1:
        idx = np.zeros_like(idx)
    else:
        period = 2 * (n - 1)
        idx %= period
        idx = np.where(idx >= n, period - idx, idx)
    idx.flags.writeable = False
    return idx


# Selects (``a if a < b else b``) rather than min()/max(): LLVM turns them into vector min/max; the builtins'
# NaN handling keeps the loops scalar. (NaN inputs: a NaN is then passed on or not, depending on position.)

@njit(cache=True, nogil=True, inline="always")
def _lo(a, b):
    return a if a < b else b


@njit(cache=True, nogil=True, inline="always")
def _hi(a, b):
    return b if a < b else a


@njit(cache=True, nogil=True, inline="always")
def _med3(a, b, c):
    return _hi(_lo(a, b), _lo(_hi(a, b), c))


@njit(cache=True, nogil=True)
def _median3(img, ry, rx, out):
    """3x3 median, reflect-101: each column triple is sorted once (lo <= mid <= hi), and the median of a window
    is med3(max of its 3 column minima, med3 of the medians, min of the maxima) -- exact (the classic
    decomposition), a few min/max per value, vectorised along the row. img/out flat rows (H, W * 3) float32;
    ry, rx: the reflect-101 rows/columns of positions -1 .. H / -1 .. W (see _fold)."""
    n = img.shape[1]
    lo = np.empty(n + 6, np.float32)  # flat column j at j + 3; one folded pixel (3 values) of padding each side
    md = np.empty(n + 6, np.float32)
    hi = np.empty(n + 6, np.float32)
    left = 3 * rx[0]
    right = 3 * rx[rx.shape[0] - 1]
    for y in range(img.shape[0]):
        a = img[ry[y]]
        b = img[ry[y + 1]]
        c = img[ry[y + 2]]
        for j in range(n):
            p = _lo(a[j], b[j])
            q = _hi(a[j], b[j])
            lo[j + 3] = _lo(p, c[j])
            hi[j + 3] = _hi(q, c[j])
            md[j + 3] = _hi(p, _lo(q, c[j]))
        for ch in range(3):
            lo[ch] = lo[left + 3 + ch]
            md[ch] = md[left + 3 + ch]
            hi[ch] = hi[left + 3 + ch]
            lo[n + 3 + ch] = lo[right + 3 + ch]
            md[n + 3 + ch] = md[right + 3 + ch]
            hi[n + 3 + ch] = hi[right + 3 + ch]
        o = out[y]
        for j in range(n):
            mx = _hi(_hi(lo[j], lo[j + 3]), lo[j + 6])
            mn = _lo(_lo(hi[j], hi[j + 3]), hi[j + 6])
            o[j] = _med3(mx, _med3(md[j], md[j + 3], md[j + 6]), mn)


@njit(cache=True, nogil=True)
def _select(a, k):
    """The k-th smallest of a[0:len(a)] (0-based), partially reordering a in place (Wirth's algorithm)."""
    lo = 0
    hi = a.shape[0] - 1
    while lo < hi:
        pivot = a[k]
        i = lo
        j = hi
        while True:
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return a[k]


@njit(cache=True, nogil=True)
def _median_rect(img, ry, rx, k, y0, y1, x0, x1, out):
    """out[y, x, c] = median of img[ry[y:y + k], rx[x:x + k], c] for y0 <= y < y1, x0 <= x < x1 (ry, rx: the
    reflect-101 source rows/columns of padded positions, see _fold). img, out float32 HxWx3."""
    n = k * k
    buf = np.empty(n, np.float32)
    for y in range(y0, y1):
        for x in range(x0, x1):
            for c in range(3):
                m = 0
                for i in range(k):
                    row = ry[y + i]
                    for j in range(k):
                        buf[m] = img[row, rx[x + j], c]
                        m += 1
                out[y, x, c] = _select(buf, n // 2)
