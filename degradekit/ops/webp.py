"""Lossy WebP through libwebp (Pillow's build), encoded and decoded in memory."""

from __future__ import annotations

import numpy as np

from ._check import check_image
from ._codec import check_int, pillow_roundtrip, quantize_rgb, to_float

# libwebp's own default effort (cwebp -m 4); fixed so that quality is the only knob
METHOD = 4


def webp(img: np.ndarray, quality: int) -> np.ndarray:
    """WebP-compress (lossy) a float32 HxWx3 RGB image in [0, 1] and decode it again.

    ``q8 = round(clip(img, 0, 1) * 255)`` as uint8 RGB, ``PIL.Image.save(buf, "WEBP", quality=quality,
    method=4)`` (libwebp defaults otherwise: VP8 4:2:0, no sharp YUV), decoded by Pillow. Returns the decode
    / 255, float32 HxWx3 RGB. ``quality``: int in [1, 100].
    """
    img = check_image(img)
    quality = check_int(quality, "quality", 1, 100)
    from .codec_info import require

    require("webp")
    return to_float(pillow_roundtrip(quantize_rgb(img), "WEBP", quality=quality, method=METHOD))
