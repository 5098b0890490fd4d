"""PSNR and SSIM as super-resolution papers report them (BasicSR conventions): on the Y channel of
ITU-R BT.601 YCbCr (16-235), 8-bit images, ``crop_border`` pixels (= scale) removed on each side.
"""
from __future__ import annotations

import cv2
import numpy as np


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """uint8/float (H, W, 3) RGB in 0-255 -> float64 (H, W) Y in [16, 235]."""
    x = img.astype(np.float64)
    return 16.0 + (x @ np.array([65.481, 128.553, 24.966])) / 255.0


def _prep(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel and a.ndim == 3:
        return rgb_to_y(a), rgb_to_y(b)
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB of two uint8 (H, W, 3) RGB images (peak 255)."""
    a, b = _prep(a, b, crop_border, y_channel)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    win = k @ k.T

    def f(x):  # 11x11 Gaussian window, 'valid' region only
        return cv2.filter2D(x, -1, win)[5:-5, 5:-5]

    mu_a, mu_b = f(a), f(b)
    s_aa = f(a * a) - mu_a ** 2
    s_bb = f(b * b) - mu_b ** 2
    s_ab = f(a * b) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (s_aa + s_bb + c2))
    return float(m.mean())


def ssim(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 .01, K2 .03) of two uint8 RGB images;
    on Y when ``y_channel``, else the mean over the three channels."""
    a, b = _prep(a, b, crop_border, y_channel)
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., c], b[..., c]) for c in range(a.shape[2])]))
