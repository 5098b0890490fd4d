"""Blur: 2-D correlation with a k x k kernel, reflect-101 borders (BasicSR ``filter2D`` / ``torch conv2d``).

Speed: OpenCV's ``filter2D`` costs ~k^2 per pixel for k <= 11 and switches to a DFT (constant ~8 ms at 400x400)
for larger float kernels. Many Real-ESRGAN kernels have a small numerical rank (isotropic Gaussians are rank 1;
generalized isotropic ones ~3.5 on average), so the kernel is split by SVD into rank-1 terms
``sum_r s_r u_r v_r^T`` and, where that is cheaper by a measured cost model, applied as a sum of separable
``cv2.sepFilter2D`` passes. Before that, outer rings of negligible weight are cropped (zero padding, or the
~1e-20 tails of a narrow Gaussian drawn at size 21). Dropped rings and dropped singular values each total at
most 5e-8 of the kernel's absolute sum; for images in [0, 1] that bounds the change by 5e-8 (rings) plus
k * 5e-8 <= 1e-6 (singular values, worst case) -- the size of float32 rounding in a dense 441-tap sum, which
the reference's own float32 conv2d has too (tested against a float64 NumPy correlation, atol 2e-6).

The analysis is cheap next to a small image's filter (100x100: ~5 us against a 40-70 us filter2D): the ring
masses are summed in Numba in the order of the NumPy formulation (so the crop is the same to the last bit; a
total within 1e-9 of the threshold defers to NumPy's own sum), no SVD is run where the cost model cannot choose
a split (k <= 5), and for k = 7..11 a lower bound on the singular value that decides (from 2x2 / 3x3 minors)
rules a split out before any SVD when it clearly exceeds the budget. Every shortcut gives the SVD's answer:
tests/test_ops_blur.py compares crops, paths and terms with the plain NumPy formulation kernel by kernel.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from numba import njit

from ._check import check_image

_SVD_TOL = 5e-8
_CROP_TOL = 5e-8
_BORDER = cv2.BORDER_REFLECT_101
# Kernel area at which OpenCV's float32 filter2D switches to its DFT path (measured: 11x11 direct, 13x13 DFT).
_DFT_AREA = 130


def _dense_cost(k: int) -> float:
    """Relative cost of one cv2.filter2D with a k x k kernel (ms at 400x400x3, measured on a Xeon core)."""
    return 0.03 * k * k if k * k < _DFT_AREA else 7.7


def _sep_cost(k: int, rank: int) -> float:
    """Relative cost of ``rank`` separable passes plus the (rank - 1) accumulations."""
    return rank * (0.75 + 0.07 * k) + (rank - 1) * 0.3


@functools.lru_cache(maxsize=64)
def _max_useful_rank(k: int) -> int:
    """The largest rank whose separable passes the cost model prefers to one dense filter2D (0: none).
    ``_sep_cost`` grows with the rank, so a kernel of numerical rank above this always takes filter2D."""
    r = 0
    while _sep_cost(k, r + 1) < _dense_cost(k):
        r += 1
    return r


def check_kernel(kernel: np.ndarray, name: str = "kernel") -> np.ndarray:
    """Return ``kernel`` as a float64 (k, k) array with k odd, or raise a one-line error."""
    if not isinstance(kernel, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(kernel).__name__}")
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"{name}: expected a square (k, k) array with k odd, got shape {kernel.shape}")
    if kernel.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float array, got dtype {kernel.dtype}")
    kernel = np.asarray(kernel, np.float64)
    # A finite sum means every tap is finite (inf + x is inf or NaN, NaN propagates); only an overflowing sum
    # of finite taps needs the elementwise test.
    if not math.isfinite(kernel.sum()) and not np.all(np.isfinite(kernel)):
        raise ValueError(f"{name}: contains NaN or inf")
    return kernel


@njit(cache=True, nogil=True)
def _crop_radius(a, thr):
    """Smallest r such that the |weight| of ``a`` (k, k) beyond Chebyshev radius r from the centre is <= thr.
    The same float64 sums in the same order as ``np.bincount`` (ring sums, raster order) and the reversed
    ``np.cumsum`` of the NumPy formulation, so the same r to the last bit."""
    k = a.shape[0]
    c = k // 2
    ring = np.zeros(c + 1)
    for i in range(k):
        di = abs(i - c)
        for j in range(k):
            dj = abs(j - c)
            ring[max(di, dj)] += abs(a[i, j])
    outside = np.zeros(c + 1)  # outside[r] = mass beyond radius r; outside[c] = 0
    s = 0.0
    for r in range(c - 1, -1, -1):
        s = ring[r + 1] if r == c - 1 else s + ring[r + 1]
        outside[r] = s
    for r in range(c + 1):
        if outside[r] <= thr:
            return r
    return c


@njit(cache=True, nogil=True)
def _abs_sum(a):
    s = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            s += abs(a[i, j])
    return s


@njit(cache=True, nogil=True)
def _rank_lower_bound_2(m, limit):
    """A lower bound on the 2nd singular value of ``m`` (k, k): by interlacing it is at least that of any 2x2
    submatrix M, which is ``|det M| / s1(M) >= |det M| / ||M||_F``. Max over all row and column pairs, returned
    as soon as it exceeds ``limit``."""
    k = m.shape[0]
    best = 0.0
    for i0 in range(k):
        for i1 in range(i0 + 1, k):
            for j0 in range(k):
                a = m[i0, j0]
                c = m[i1, j0]
                for j1 in range(j0 + 1, k):
                    b = m[i0, j1]
                    d = m[i1, j1]
                    f2 = a * a + b * b + c * c + d * d
                    if f2 > 0.0:
                        v = abs(a * d - b * c) / np.sqrt(f2)
                        if v > best:
                            best = v
                            if best > limit:
                                return best
    return best


@njit(cache=True, nogil=True)
def _rank_lower_bound_3(m, limit):
    """A lower bound on the 3rd singular value of ``m`` (k, k) from 3x3 submatrices M (rows and columns in
    arithmetic progressions): ``s3(M) = |det M| / (s1 s2) >= 2 |det M| / ||M||_F^2``; returned as soon as it
    exceeds ``limit``."""
    k = m.shape[0]
    best = 0.0
    for dr in range(1, (k - 1) // 2 + 1):
        for i in range(k - 2 * dr):
            for dc in range(1, (k - 1) // 2 + 1):
                for j in range(k - 2 * dc):
                    a = m[i, j]
                    b = m[i, j + dc]
                    c = m[i, j + 2 * dc]
                    d = m[i + dr, j]
                    e = m[i + dr, j + dc]
                    f = m[i + dr, j + 2 * dc]
                    g = m[i + 2 * dr, j]
                    h = m[i + 2 * dr, j + dc]
                    q = m[i + 2 * dr, j + 2 * dc]
                    f2 = a * a + b * b + c * c + d * d + e * e + f * f + g * g + h * h + q * q
                    if f2 > 0.0:
                        det = a * (e * q - f * h) - b * (d * q - f * g) + c * (d * h - e * g)
                        v = 2.0 * abs(det) / f2
                        if v > best:
                            best = v
                            if best > limit:
                                return best
    return best


def crop_negligible_border(kernel: np.ndarray, tol: float = _CROP_TOL) -> np.ndarray:
    """Drop the outer rings of an odd square kernel whose total |weight| is at most ``tol * sum(|kernel|)``.

    Zero padding (a sinc padded to 21x21) and the far tails of narrow kernels (a 21x21 Gaussian with sigma 1
    has rings of ~1e-22) change the correlation of a [0, 1] image by at most ``tol`` -- below float32
    resolution -- while costing as much as the kernel's real support. The kernel is not renormalised.
    """
    return _crop(kernel, tol)[0]


def _crop(kernel, tol):
    """crop_negligible_border, also returning ``sum(|kernel|)`` (NumPy's sum) of the result when it is the
    input and that sum was computed (else None)."""
    k = kernel.shape[0]
    c = k // 2
    if c == 0:
        return kernel, None
    r = int(_crop_radius_certain(kernel, tol))
    if r >= 0:  # decided without NumPy's sum (far from the threshold): the same r
        return (kernel[c - r:c + r + 1, c - r:c + r + 1], None) if r < c else (kernel, None)
    total = np.abs(kernel).sum()
    if total == 0.0:
        return kernel[c:c + 1, c:c + 1], None
    r = int(_crop_radius(kernel, tol * total))
    return (kernel[c - r:c + r + 1, c - r:c + r + 1], None) if r < c else (kernel, total)


@njit(cache=True, nogil=True)
def _crop_radius_certain(a, tol):
    """_crop_radius(a, tol * np.abs(a).sum()) where that is certain without NumPy's pairwise sum, else -1.

    The ring masses and the masses outside each radius are _crop_radius's (the same sums in the same order);
    only the total is a plain sequential sum here, within k^2 eps (relative) of NumPy's. A radius is returned
    only when its mass and the next smaller radius's lie beyond 1e-9 (relative) of the threshold, so both
    totals give it. -1 also for an all-zero or non-finite kernel (the NumPy path handles those)."""
    k = a.shape[0]
    c = k // 2
    ring = np.zeros(c + 1)
    total = 0.0
    for i in range(k):
        di = abs(i - c)
        for j in range(k):
            dj = abs(j - c)
            v = abs(a[i, j])
            ring[max(di, dj)] += v
            total += v
    if not (total > 0.0 and total < np.inf):
        return -1
    thr = tol * total
    lo = thr * (1.0 - 1e-9)
    hi = thr * (1.0 + 1e-9)
    s = 0.0
    prev = 0.0
    for r in range(c - 1, -1, -1):  # outside[r] = mass beyond r, non-decreasing as r falls; outside[c] = 0
        s = ring[r + 1] if r == c - 1 else s + ring[r + 1]
        if s > hi:
            # r + 1 is the answer if outside[r + 1] (prev) is certainly <= thr
            return r + 1 if prev < lo or prev == 0.0 else -1
        if s >= lo:
            return -1
        prev = s
    return 0  # outside[0] < lo: nothing is significant beyond the centre


def separable_terms(kernel: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Split a float64 (k, k) kernel into rank-1 terms ``[(col_r, row_r), ...]`` with
    ``kernel ~= sum_r outer(col_r, row_r)`` (float32 vectors), or return None when one dense ``filter2D`` is
    cheaper than the separable passes. Dropped singular values sum to at most ``_SVD_TOL * sum(|kernel|)``.
    """
    return _terms(kernel, None)


def _terms(kernel, absum):
    """separable_terms; ``absum`` is ``np.abs(kernel).sum()`` when the caller has it (else None)."""
    k = kernel.shape[0]
    if k == 1:
        return None
    rmax = _max_useful_rank(k)
    if rmax == 0:  # even rank 1 costs more than filter2D (k <= 5): the SVD cannot change the answer
        return None
    if rmax <= 2:
        # Cheap certificate that the numerical rank exceeds rmax (then filter2D, as the SVD would decide):
        # s_{rmax+1} <= tail[rmax]; LAPACK's singular values are accurate to ~k eps s1 <= k eps sum|K|, the
        # bound's own rounding to ~eps sum|K|: the margin 1e-11 sum|K| covers both, so the decision is the
        # SVD's. Kernels near the threshold fall through to the SVD.
        # The limit uses a sequential sum(|K|) (within k^2 eps of NumPy's), enlarged by 1e-9 relative.
        limit = (_SVD_TOL + 1e-11) * _abs_sum(kernel) * (1.0 + 1e-9)
        lb = _rank_lower_bound_2(kernel, limit) if rmax == 1 else _rank_lower_bound_3(kernel, limit)
        if lb > limit:
            return None
    if absum is None:
        absum = np.abs(kernel).sum()
    budget = _SVD_TOL * max(absum, 1e-300)
    u, s, vt = np.linalg.svd(kernel)
    # tail[r] = sum of the singular values that a rank-r split would drop.
    tail = np.concatenate([np.cumsum(s[::-1])[::-1], [0.0]])
    rank = int(np.argmax(tail <= budget))
    if rank == 0:  # the zero kernel
        rank = 1
    if _sep_cost(k, rank) >= _dense_cost(k):
        return None
    terms = []
    for r in range(rank):
        root = np.sqrt(s[r])
        terms.append(((u[:, r] * root).astype(np.float32), (vt[r] * root).astype(np.float32)))
    return terms


def blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate a float32 HxWx3 image with a float64 (k, k) kernel (k odd), channel by channel.

    ``out[y, x] = sum_{i,j} kernel[i, j] * img[y + i - c, x + j - c]``, c = (k - 1) / 2: correlation (the kernel
    is not flipped), as ``torch.nn.functional.conv2d`` in BasicSR's ``filter2D``. Borders are reflect-101
    (``dcb|abcd|cba``), repeated as often as needed, so images smaller than the kernel work too. Output float32,
    same shape; values may leave [0, 1] for kernels with negative taps (sinc).
    """
    img = check_image(img)
    kernel, absum = _crop(check_kernel(kernel), _CROP_TOL)
    terms = _terms(kernel, absum)
    if terms is None:
        return cv2.filter2D(img, -1, kernel.astype(np.float32), borderType=_BORDER)
    col, row = terms[0]
    out = cv2.sepFilter2D(img, -1, row, col, borderType=_BORDER)
    for col, row in terms[1:]:
        out += cv2.sepFilter2D(img, -1, row, col, borderType=_BORDER)
    return out
