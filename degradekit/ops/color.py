"""Colour jitter (opt-in): brightness, contrast, saturation and gamma in one fused Numba pass plus NumPy's power.

Off by default in every preset: a colour shift between HR and LR teaches a network to shift colours. The
formula, in float32 and in this order:

    a   = img * contrast + (0.5 * (1 - contrast) + brightness)      # contrast about mid-gray 0.5, then offset
    Y   = 0.299 a_R + 0.587 a_G + 0.114 a_B                          # BT.601 luma
    b   = a * saturation + Y * (1 - saturation)                      # saturation about the pixel's luma
    out = clip(b, 0, 1) ** gamma

Written as products and sums (not ``(img - 0.5) * c + 0.5``), so (0, 1, 1, 1) is the identity bit for bit on
[0, 1] inputs. Saturation is ``ImageEnhance.Color``'s blend with the luma image; gamma is skimage's
``adjust_gamma`` (values ** gamma, gamma < 1 brightens).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._check import check_finite_number, check_image


def color_jitter(img: np.ndarray, brightness: float, contrast: float, saturation: float,
                 gamma: float) -> np.ndarray:
    """Apply the formula above to a float32 HxWx3 image. brightness: additive offset in [-1, 1] (0 = none);
    contrast: >= 0 (1 = none, 0 = flat mid-gray); saturation: >= 0 (1 = none, 0 = gray); gamma: > 0 (1 =
    none). Returns float32 HxWx3 in [0, 1].
    """
    img = check_image(img)
    brightness = check_finite_number(brightness, "brightness")
    if not -1.0 <= brightness <= 1.0:
        raise ValueError(f"brightness: expected a number in [-1, 1], got {brightness}")
    contrast = check_finite_number(contrast, "contrast", lo=0.0)
    saturation = check_finite_number(saturation, "saturation", lo=0.0)
    gamma = check_finite_number(gamma, "gamma")
    if gamma <= 0.0:
        raise ValueError(f"gamma: expected > 0, got {gamma}")
    out = np.empty_like(img)
    offset = np.float32(0.5 * (1.0 - contrast) + brightness)
    _jitter(img.reshape(-1), np.float32(contrast), offset, np.float32(saturation), out.reshape(-1))
    if gamma != 1.0:  # NumPy's float32 power is vectorised (~5x a scalar powf loop in Numba)
        np.power(out, np.float32(gamma), out=out)
    return out


@njit(cache=True, nogil=True)
def _jitter(img, contrast, offset, saturation, out):
    """out = clip(a * saturation + Y(a) * (1 - saturation), 0, 1), a = img * contrast + offset, on flat float32
    RGB (3P); the gamma is applied by the wrapper."""
    wr = np.float32(0.299)
    wg = np.float32(0.587)
    wb = np.float32(0.114)
    keep = np.float32(1.0) - saturation
    lo = np.float32(0.0)
    hi = np.float32(1.0)
    for p in range(img.shape[0] // 3):
        r = img[3 * p] * contrast + offset
        g = img[3 * p + 1] * contrast + offset
        b = img[3 * p + 2] * contrast + offset
        y = (wr * r + wg * g + wb * b) * keep
        out[3 * p] = min(max(r * saturation + y, lo), hi)
        out[3 * p + 1] = min(max(g * saturation + y, lo), hi)
        out[3 * p + 2] = min(max(b * saturation + y, lo), hi)
