"""Degradation operations: pure functions on float32 HxWx3 RGB images in [0, 1] (one module per operation).

- ``blur.blur(img, kernel)``: correlation, reflect-101 borders (OpenCV; rank-1 splits via SVD where cheaper).
- ``resize.resize(img, (h, w), mode)``: OpenCV area / bilinear / bicubic.
- ``noise.add_gaussian_noise``, ``noise.add_poisson_noise``, ``noise.add_noise_patch``: seeded, clipped (Numba).
- ``jpeg.jpeg(img, quality, subsampling="420")``: real libjpeg encode/decode (OpenCV).
- ``webp.webp``, ``avif.avif``, ``jpeg2000.jpeg2000`` (Pillow's libraries), ``video.video`` (still frames through
  FFmpeg's encoders via the optional PyAV), ``codec_info.available/require/library_versions``.
- ``usm.usm_sharpen(img)``: Real-ESRGAN's unsharp mask (OpenCV separable Gaussian + Numba masking).
- ``quantize.to_uint8(img)``: round(255 x), clipped -- the only 8-bit rounding.
"""

# The public functions are reached through their modules (``degradekit.ops.blur.blur``, as in docs/design.md);
# they are not re-exported here because ``blur``, ``resize`` and ``jpeg`` would shadow their own modules.
from . import blur, jpeg, noise, quantize, resize, usm  # noqa: E402,F401

__all__ = ["blur", "resize", "noise", "jpeg", "usm", "quantize"]
