"""AVIF (an AV1 intra frame in a HEIF container) through libavif (Pillow's build), in memory.

The encoder is fixed to libaom (``codec="aom"``) and to one thread: libavif would otherwise pick whichever AV1
encoder it was built with and use every core, and neither choice may change the bytes.
"""

from __future__ import annotations

import numpy as np

from ._check import check_image
from ._codec import check_int, pillow_roundtrip, quantize_rgb, to_float

ENCODER = "aom"


def avif(img: np.ndarray, quality: int, speed: int) -> np.ndarray:
    """AVIF-compress a float32 HxWx3 RGB image in [0, 1] and decode it again.

    ``q8 = round(clip(img, 0, 1) * 255)`` as uint8 RGB, ``PIL.Image.save(buf, "AVIF", quality=quality,
    speed=speed, codec="aom", max_threads=1)`` (Pillow's defaults otherwise: 4:2:0, full-range YUV, BT.601
    matrix), decoded by Pillow (libavif + dav1d). Returns the decode / 255, float32 HxWx3 RGB.

    ``quality``: int in [0, 100] (libavif's scale; 100 is not lossless at 4:2:0). ``speed``: int in [0, 10]
    (0 slowest and smallest; about 20x slower than 10 at 100x100).
    """
    img = check_image(img)
    quality = check_int(quality, "quality", 0, 100)
    speed = check_int(speed, "speed", 0, 10)
    from .codec_info import require

    require("avif")
    return to_float(pillow_roundtrip(quantize_rgb(img), "AVIF", quality=quality, speed=speed, codec=ENCODER,
                                     max_threads=1))
