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
"""

from __future__ import annotations

import cv2
import numpy as np

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


def check_kernel(kernel: np.ndarray, name: str = "kernel") -> np.ndarray:
    """Return ``kernel`` as a float64 (k, k) array with k odd, or raise a one-line error."""
    if not isinstance(kernel, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(kernel).__name__}")
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"{name}: expected a square (k, k) array with k odd, got shape {kernel.shape}")
    if not np.issubdtype(kernel.dtype, np.floating):
        raise TypeError(f"{name}: expected a float array, got dtype {kernel.dtype}")
    kernel = np.asarray(kernel, np.float64)
    if not np.all(np.isfinite(kernel)):
        raise ValueError(f"{name}: contains NaN or inf")
    return kernel


def crop_negligible_border(kernel: np.ndarray, tol: float = _CROP_TOL) -> np.ndarray:
    """Drop the outer rings of an odd square kernel whose total |weight| is at most ``tol * sum(|kernel|)``.

    Zero padding (a sinc padded to 21x21) and the far tails of narrow kernels (a 21x21 Gaussian with sigma 1
    has rings of ~1e-22) change the correlation of a [0, 1] image by at most ``tol`` -- below float32
    resolution -- while costing as much as the kernel's real support. The kernel is not renormalised.
    """
    k = kernel.shape[0]
    c = k // 2
    a = np.abs(kernel)
    total = a.sum()
    if total == 0.0:
        return kernel[c:c + 1, c:c + 1]
    # ring[r] = |weight| at Chebyshev distance r from the centre
    yy, xx = np.indices(a.shape)
    dist = np.maximum(np.abs(yy - c), np.abs(xx - c))
    ring = np.bincount(dist.ravel(), weights=a.ravel(), minlength=c + 1)
    outside = np.concatenate([np.cumsum(ring[::-1])[::-1][1:], [0.0]])  # outside[r] = mass beyond radius r
    r = int(np.argmax(outside <= tol * total))
    return kernel[c - r:c + r + 1, c - r:c + r + 1] if r < c else kernel


def separable_terms(kernel: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Split a float64 (k, k) kernel into rank-1 terms ``[(col_r, row_r), ...]`` with
    ``kernel ~= sum_r outer(col_r, row_r)`` (float32 vectors), or return None when one dense ``filter2D`` is
    cheaper than the separable passes. Dropped singular values sum to at most ``_SVD_TOL * sum(|kernel|)``.
    """
    k = kernel.shape[0]
    if k == 1:
        return None
    u, s, vt = np.linalg.svd(kernel)
    # tail[r] = sum of the singular values that a rank-r split would drop.
    tail = np.concatenate([np.cumsum(s[::-1])[::-1], [0.0]])
    budget = _SVD_TOL * max(np.abs(kernel).sum(), 1e-300)
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
    kernel = crop_negligible_border(check_kernel(kernel))
    terms = separable_terms(kernel)
    if terms is None:
        return cv2.filter2D(img, -1, kernel.astype(np.float32), borderType=_BORDER)
    col, row = terms[0]
    out = cv2.sepFilter2D(img, -1, row, col, borderType=_BORDER)
    for col, row in terms[1:]:
        out += cv2.sepFilter2D(img, -1, row, col, borderType=_BORDER)
    return out
