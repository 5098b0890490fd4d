"""Degradation operations: pure functions on float32 HxWx3 RGB images in [0, 1] (one module per operation).

- ``blur.blur(img, kernel)``: correlation, reflect-101 borders (OpenCV; rank-1 splits via SVD where cheaper).
- ``resize.resize(img, (h, w), mode)``: OpenCV area / bilinear / bicubic.
- ``noise.add_gaussian_noise``, ``noise.add_poisson_noise``, ``noise.add_noise_patch``: seeded, clipped (Numba).
- ``jpeg.jpeg(img, quality)``: real libjpeg encode/decode (OpenCV).
- ``usm.usm_sharpen(img)``: Real-ESRGAN's unsharp mask (OpenCV separable Gaussian + Numba masking).
- ``quantize.to_uint8(img)``: round(255 x), clipped -- the only 8-bit rounding.
"""

from .blur import blur
from .jpeg import jpeg
from .noise import add_gaussian_noise, add_noise_patch, add_poisson_noise
from .quantize import to_uint8
from .resize import resize
from .usm import usm_sharpen

__all__ = [
    "blur",
    "resize",
    "add_gaussian_noise",
    "add_poisson_noise",
    "add_noise_patch",
    "jpeg",
    "usm_sharpen",
    "to_uint8",
]
