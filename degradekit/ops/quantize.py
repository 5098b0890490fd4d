"""Final quantisation of the float pipeline image to 8 bits (spec §3 step 9)."""

from __future__ import annotations

import numpy as np

from ._check import check_image


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Quantise a float32 HxWx3 image to uint8: ``clip(round(255 * x), 0, 255)``.

    ``round`` is round-half-to-even (``np.rint``), as ``torch.round`` in the reference; ``255 * x`` is computed
    in float32, as the reference does. Values outside [0, 1] (bicubic overshoot, sinc ringing) are clipped.
    This is the only 8-bit rounding of the Real-ESRGAN pipeline.

    Returns a C-contiguous uint8 array of the same shape.
    """
    img = check_image(img)
    y = img * np.float32(255.0)
    np.rint(y, out=y)
    np.clip(y, 0.0, 255.0, out=y)
    return y.astype(np.uint8)
