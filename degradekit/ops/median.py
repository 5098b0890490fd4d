"""Median blur on the float image, reflect-101 borders (``scipy.ndimage.median_filter(mode="mirror")``).

Sizes 3 and 5 go through ``cv2.medianBlur``, which is exact on float32 for those sizes (a sorting network)
and, run on a reflect-101-padded copy and cropped, never sees its own border rule. OpenCV's float path stops at
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
    if max(h, w) > 1:
        pad = cv2.copyMakeBorder(img, r, r, r, r, _BORDER)
    else:  # a single pixel: every reflection is the pixel itself
        pad = np.broadcast_to(img, (2 * r + 1, 2 * r + 1, 3)).copy()
    if size <= 5:
        return np.ascontiguousarray(cv2.medianBlur(pad, int(size))[r:r + h, r:r + w])
    out = np.empty_like(img)
    _median_filter(pad, int(size), out)
    return out


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
