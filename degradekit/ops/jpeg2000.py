"""JPEG 2000 through OpenJPEG (Pillow's build): one quality layer at a given compression ratio, in memory."""

from __future__ import annotations

import numpy as np

from ._check import check_finite_number, check_image
from ._codec import pillow_roundtrip, quantize_rgb, to_float


def jpeg2000(img: np.ndarray, rate: float) -> np.ndarray:
    """JPEG 2000-compress a float32 HxWx3 RGB image in [0, 1] and decode it again.

    ``q8 = round(clip(img, 0, 1) * 255)`` as uint8 RGB, written as a J2K codestream by ``PIL.Image.save(buf,
    "JPEG2000", no_jp2=True, quality_mode="rates", quality_layers=[rate], irreversible=True, mct=1)``: one
    layer truncated to ``raw size / rate`` bytes, the lossy 9/7 wavelet and the irreversible colour transform
    (what lossy JPEG 2000 files use; OpenJPEG defaults otherwise), decoded by Pillow. Returns the decode / 255,
    float32 HxWx3 RGB.

    ``rate``: compression ratio, a finite number >= 1 (1 = no truncation: only the 9/7 rounding is lost).
    """
    img = check_image(img)
    rate = check_finite_number(rate, "rate", lo=1.0)
    from .codec_info import require

    require("jpeg2000")
    return to_float(pillow_roundtrip(quantize_rgb(img), "JPEG2000", no_jp2=True, quality_mode="rates",
                                     quality_layers=[rate], irreversible=True, mct=1))
