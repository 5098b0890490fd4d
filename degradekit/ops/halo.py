"""Oversharpening halos: a strong, hard-thresholded unsharp mask (what over-processed photos and upscaled web
images show: bright/dark fringes along edges).

``res = img - G(img)``, G a Gaussian of sigma ``radius`` px (``2 ceil(3 sigma) + 1`` taps, reflect-101 borders,
separable ``cv2.sepFilter2D``); ``out = clip(img + amount * res * [|res| * 255 > threshold], 0, 1)`` element-wise
(a hard threshold, not Real-ESRGAN's soft-blended mask: low-contrast texture is left alone while edges overshoot).
The residual, threshold, add and clip are one fused Numba loop.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit

from ._check import check_finite_number, check_image

_BORDER = cv2.BORDER_REFLECT_101


def gaussian_taps(sigma: float) -> np.ndarray:
    """The 1-D Gaussian of sigma ``sigma`` > 0 with ``2 ceil(3 sigma) + 1`` taps (>= 3), float32, sum 1."""
    k = max(3, 2 * math.ceil(3.0 * sigma) + 1)
    return cv2.getGaussianKernel(k, sigma, cv2.CV_64F).ravel().astype(np.float32)


def oversharpen(img: np.ndarray, amount: float, radius: float, threshold: float) -> np.ndarray:
    """Unsharp mask ``img + amount * (img - blur)`` where ``|img - blur| * 255 > threshold``, clipped to [0, 1].

    img: float32 HxWx3. amount: >= 0 (1 doubles the local contrast of edges). radius: Gaussian sigma in px, >= 0
    (0: no blur, no change but the clip). threshold: >= 0 on the 0-255 scale. Returns float32 HxWx3 in [0, 1].
    """
    img = check_image(img)
    amount = check_finite_number(amount, "amount", lo=0.0)
    radius = check_finite_number(radius, "radius", lo=0.0)
    threshold = check_finite_number(threshold, "threshold", lo=0.0)
    if radius == 0.0:
        return np.clip(img, 0.0, 1.0)
    g = gaussian_taps(radius)
    blurred = cv2.sepFilter2D(img, -1, g, g, borderType=_BORDER)
    out = np.empty_like(img)
    _sharpen(img.reshape(-1), blurred.reshape(-1), np.float32(amount), np.float32(threshold), out.reshape(-1))
    return out


@njit(cache=True, nogil=True)
def _sharpen(img, blurred, amount, threshold, out):
    """out = clip(x + amount * r if |r| * 255 > threshold else x, 0, 1), r = x - blurred; flat float32."""
    for i in range(img.shape[0]):
        x = img[i]
        r = x - blurred[i]
        if abs(r) * np.float32(255.0) > threshold:
            x = x + amount * r
        out[i] = min(max(x, np.float32(0.0)), np.float32(1.0))
