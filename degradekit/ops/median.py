"""Median blur on the float image, reflect-101 borders (``scipy.ndimage.median_filter(mode="mirror")``).

Sizes 3 and 5 go through ``cv2.medianBlur``, which is exact on float32 for those sizes (a sorting network);
its replicated border is replaced by recomputing the border strips from reflect-101-padded copies. OpenCV's float path stops at
5 (larger sizes need 8-bit input, which would quantise the image), so 7..15 run a Numba loop: per pixel and
channel the k x k window is copied and its median found with Wirth's selection (expected O(k^2)), which is what
SciPy does too.
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

from ._check import check_image

_BORDER = cv2.BORDER_REFLECT_101


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
    if size <= 5 and min(h, w) > 2 * r:
        return _cv2_median(img, int(size), r)
    out = np.empty_like(img)
    _median_filter(_reflect_pad(img, r), int(size), out)
    return out


def _reflect_pad(img: np.ndarray, r: int) -> np.ndarray:
    """Reflect-101 padding by r on both spatial axes (OpenCV repeats the reflection when r >= the size)."""
    if max(img.shape[0], img.shape[1]) > 1:
        return cv2.copyMakeBorder(img, r, r, r, r, _BORDER)
    return np.broadcast_to(img, (2 * r + 1, 2 * r + 1, 3)).copy()  # a single pixel: every reflection is itself


def _cv2_median(img: np.ndarray, k: int, r: int) -> np.ndarray:
    """cv2.medianBlur (exact on float32 for k = 3, 5) with reflect-101 borders. medianBlur replicates the
    edge; instead of filtering a padded copy and cropping it (two more image-sized buffers: on a machine where
    fresh large allocations page-fault, that alone costs more than the filter), the image is filtered as is and
    only the r-wide border strips are recomputed from small reflect-101-padded strips."""
    h, w, _ = img.shape
    out = cv2.medianBlur(img, k)
    out[:r], out[h - r:] = _edge_medians(img[_fold(h, r)], k, r)
    # Left and right: the same on the transposed columns (a k x k median commutes with transposition; narrow
    # column strips are ~10x slower per pixel in medianBlur than wide row strips).
    left, right = _edge_medians(cv2.transpose(np.ascontiguousarray(img[:, _fold(w, r)])), k, r)
    out[:, :r], out[:, w - r:] = cv2.transpose(left), cv2.transpose(right)
    return out


def _fold(n: int, r: int) -> np.ndarray:
    """Indices -r..2r-1 and n-2r..n+r-1 folded into [0, n) by reflect-101 (n > 2r: one fold suffices)."""
    idx = np.abs(np.concatenate([np.arange(-r, 2 * r), np.arange(n - 2 * r, n + r)]))
    return np.where(idx >= n, 2 * (n - 1) - idx, idx)


def _edge_medians(rows: np.ndarray, k: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """rows: the 6r rows picked by _fold (3r around each edge), full width. Returns the reflect-101 medians of
    the first r and of the last r rows of the image (each (r, W, 3)), the strips padded by r columns."""
    w = rows.shape[1]
    strips = cv2.copyMakeBorder(np.ascontiguousarray(rows), 0, 0, r, r, _BORDER)
    first = cv2.medianBlur(np.ascontiguousarray(strips[:3 * r]), k)[r:2 * r, r:r + w]
    last = cv2.medianBlur(np.ascontiguousarray(strips[3 * r:]), k)[r:2 * r, r:r + w]
    return first, last


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
def _median_filter(pad, k, out):
    """out[y, x, c] = median of pad[y:y + k, x:x + k, c]; pad float32 (H + k - 1, W + k - 1, 3), out (H, W, 3)."""
    n = k * k
    buf = np.empty(n, np.float32)
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            for c in range(3):
                m = 0
                for i in range(k):
                    for j in range(k):
                        buf[m] = pad[y + i, x + j, c]
                        m += 1
                out[y, x, c] = _select(buf, n // 2)
