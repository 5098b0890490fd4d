"""Source preparation: multiscale copies and crop enumeration (pure, deterministic, no I/O).

The reference (spec §1) trains on DF2K+OST at Lanczos scales 1, 0.75, 0.5, 1/3 plus a copy whose shortest edge
is 400, cut into 400x400 crops with step 200. Here:

- a *copy* of a source is ``(factor, h, w)``; factor 1 is the original. A scaled copy is
  ``int(h * f) x int(w * f)`` (PIL Lanczos, as the reference); the shortest-edge copy has its shortest edge
  exactly N and is only made when the source is larger than that (no upscaling).
- crop origins along an axis of length D for patch P and step S: ``0, S, 2S, ... <= D - P`` plus ``D - P`` when
  the last crop does not reach the border (so the border is always covered, the last crop flush with it).
  An axis shorter than P has the single origin 0 and the crop is padded to P by reflection (reflect-101,
  bottom/right, as spec §1), unless ``min_size`` drops the copy.
- samples are enumerated source by source (sorted), copy by copy, crop origins row-major.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ["parse_multiscale", "crop_origins", "plan_copies", "scaled", "crop_patch", "MIN_KERNEL"]

#: Smallest usable source edge: the largest blur kernel is 21x21 (spec §2).
MIN_KERNEL = 21


def parse_multiscale(text: str | None) -> tuple[float, ...]:
    """``"1,0.75,0.5,0.333"`` -> ``(1.0, 0.75, 0.5, 0.333)``; each factor in (0, 1], no duplicates."""
    if text is None or str(text).strip() == "":
        return (1.0,)
    out = []
    for tok in str(text).split(","):
        tok = tok.strip()
        try:
            if "/" in tok:  # allow 1/3
                a, b = tok.split("/")
                f = float(a) / float(b)
            else:
                f = float(tok)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"--multiscale: {tok!r} is not a number") from None
        if not (0.0 < f <= 1.0) or not math.isfinite(f):
            raise ValueError(f"--multiscale: {tok!r} must be in (0, 1]")
        if f in out:
            raise ValueError(f"--multiscale: {tok!r} appears twice")
        out.append(f)
    return tuple(out)


def crop_origins(length: int, patch: int, step: int) -> list[int]:
    """Crop start positions along one axis (see the module docstring). ``length >= 1``."""
    if length <= patch:
        return [0]
    pos = list(range(0, length - patch + 1, step))
    if pos[-1] + patch < length:
        pos.append(length - patch)
    return pos


def plan_copies(h: int, w: int, factors: tuple[float, ...], shortest_edge: int | None,
                min_size: int) -> list[tuple[float, int, int]]:
    """Copies ``(factor, h, w)`` of an ``h x w`` source; copies whose shortest edge is < ``min_size`` are left out."""
    copies = []
    for f in factors:
        hs, ws = (h, w) if f == 1.0 else (int(h * f), int(w * f))
        copies.append((float(f), hs, ws))
    if shortest_edge and min(h, w) > shortest_edge:
        f = shortest_edge / min(h, w)
        if h <= w:
            hs, ws = shortest_edge, int(w * f)
        else:
            hs, ws = int(h * f), shortest_edge
        if (hs, ws) not in [(c[1], c[2]) for c in copies]:
            copies.append((float(f), hs, ws))
    return [c for c in copies if min(c[1], c[2]) >= min_size]


def scaled(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Lanczos resize of uint8 HxWx3 to ``h x w`` (PIL, as the reference's multiscale script); identity if equal."""
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))


def crop_patch(img: np.ndarray, y0: int, x0: int, patch: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The ``patch x patch`` crop at (y0, x0), padded bottom/right by reflect-101 where the image is shorter.

    Returns the C-contiguous patch and the crop box ``(y0, x0, y1, x1)`` in image coordinates (before padding).
    """
    h, w = img.shape[:2]
    y1, x1 = min(y0 + patch, h), min(x0 + patch, w)
    crop = img[y0:y1, x0:x1]
    ph, pw = patch - (y1 - y0), patch - (x1 - x0)
    if ph or pw:
        # np.pad "reflect" is reflect-101 and repeats as needed for pads longer than the image.
        crop = np.pad(crop, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(crop.shape[:2]) > 1 else "edge")
    return np.ascontiguousarray(crop), (y0, x0, y1, x1)
