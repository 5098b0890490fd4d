"""Inference: tiled forward with feathered overlap blending, and whole-image upscaling with 16-bit, alpha and
gray handling.

Tiling: the image is cut into near-equal cores of at most ``tile`` LR pixels (as the reference does); each core is
widened by ``tile_overlap / 2`` at internal edges, run with ``tile_pad`` extra pixels of context on every side (cut
away afterwards), and neighbouring outputs are blended with linear ramps across the shared ``tile_overlap`` band
(weights sum to one there). A pixel's value from a window equals the untiled value
whenever the net's receptive field fits in the context, so with ``tile_pad`` >= the receptive-field radius the
tiled result equals the untiled one up to float rounding; with real RRDBNets (receptive field of hundreds of pixels)
the ramps hide what little difference remains.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

_UNSHUFFLE = {4: 1, 2: 2, 1: 4}


class InferError(ValueError):
    """Bad inference input; ``str(e)`` is one line naming the file and the problem."""


def _windows(n: int, tile: int, overlap: int, mult: int) -> list[tuple[int, int]]:
    """Split [0, n) into ceil(n / tile) near-equal cores (boundaries on multiples of ``mult``) and widen each by
    overlap / 2 at internal edges: [(start, end), ...]. Neighbouring windows share a band of ``overlap`` px."""
    k = max(1, -(-n // tile))
    bounds = [min(n, round(i * n / k / mult) * mult) for i in range(k + 1)]
    bounds[-1] = n
    half = overlap // 2
    return [(max(b0 - half, 0) if i else 0, min(b1 + half, n) if i < k - 1 else n)
            for i, (b0, b1) in enumerate(zip(bounds[:-1], bounds[1:]))]


def _ramp(length: int, start: int, end: int, total: int, ramp: int) -> torch.Tensor:
    """1-D weights over [start, end) of a line of ``total`` px: linear ramps of ``ramp`` px at internal edges."""
    w = torch.ones(length)
    if ramp <= 0:
        return w
    r = (torch.arange(length, dtype=torch.float32) + 0.5) / ramp
    if start > 0:
        w = torch.minimum(w, r)
    if end < total:
        w = torch.minimum(w, r.flip(0))
    return w.clamp_(min=1e-4)


@torch.no_grad()
def tiled_forward(net: torch.nn.Module, x: torch.Tensor, *, scale: int, tile: int = 0, tile_overlap: int = 32,
                  tile_pad: int = 10) -> torch.Tensor:
    """Run ``net`` on x (1, C, H, W) [0, 1] -> (1, C', H*scale, W*scale) float32 on x's device.

    tile 0 (or a tile covering the image) = one pass. H and W must be divisible by the net's unshuffle factor
    (2 for x2, 4 for x1); ``upscale`` pads for you. tile, tile_overlap and tile_pad are rounded up to that factor
    (the overlap then narrowed below the tile if needed). ValueError when tile <= tile_overlap.
    """
    m = _UNSHUFFLE[scale]
    _, _, h, w = x.shape
    if h % m or w % m:
        raise ValueError(f"tiled_forward: {w}x{h} not divisible by {m} (x{scale})")
    if tile <= 0 or (h <= tile and w <= tile):
        return net(x).float()
    if tile_overlap >= tile:
        raise ValueError(f"tile {tile} must be larger than the tile overlap {tile_overlap}")
    rnd = lambda v: -(-v // m) * m  # noqa: E731 - round up to the unshuffle factor
    tile, tile_overlap, tile_pad = rnd(tile), rnd(tile_overlap) // (2 * m) * (2 * m), rnd(tile_pad)
    # rounding to the unshuffle factor must not turn a valid request into overlap >= tile: narrow the band
    tile_overlap = min(tile_overlap, (tile - 1) // (2 * m) * (2 * m))
    out = acc = None
    for y0, y1 in _windows(h, tile, tile_overlap, m):
        for x0, x1 in _windows(w, tile, tile_overlap, m):
            py0, px0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
            py1, px1 = min(y1 + tile_pad, h), min(x1 + tile_pad, w)
            y = net(x[:, :, py0:py1, px0:px1]).float()
            y = y[:, :, (y0 - py0) * scale:(y1 - py0) * scale, (x0 - px0) * scale:(x1 - px0) * scale]
            if out is None:
                out = torch.zeros(1, y.shape[1], h * scale, w * scale, device=y.device)
                acc = torch.zeros(1, 1, h * scale, w * scale, device=y.device)
            ramp = tile_overlap * scale
            wy = _ramp(y.shape[2], y0, y1, h, ramp)
            wx = _ramp(y.shape[3], x0, x1, w, ramp)
            wt = (wy[:, None] * wx[None, :]).to(y.device)[None, None]
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] += y * wt
            acc[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] += wt
    return out / acc


_EXIF_FIX = {  # EXIF orientation -> the transform that displays the image upright (as PIL's exif_transpose)
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


def read_image_any(path: str | os.PathLike) -> np.ndarray:
    """Read an image keeping depth and alpha: uint8 or uint16, (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA.
    EXIF orientation is applied. Raises InferError naming the file."""
    p = Path(path)
    try:
        if not stat.S_ISREG(os.stat(p).st_mode):      # a FIFO or device would block or never end
            raise InferError(f"{p}: not a regular file")
        data = np.fromfile(p, np.uint8)
    except OSError as e:
        raise InferError(f"{p}: cannot read ({e.strerror})") from None
    if data.size == 0:
        raise InferError(f"{p}: empty file")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:                            # e.g. a header claiming more pixels than OpenCV allows
        msg = next((x.split("error:", 1)[-1].strip() for x in str(e).splitlines() if "error:" in x), "")
        raise InferError(f"{p}: not a decodable image (OpenCV: {msg[:120] or 'decode failed'})") from None
    if img is None:
        # formats OpenCV lacks (or palette/CMYK oddities): Pillow, 8-bit RGB(A)
        try:
            from PIL import Image
            with Image.open(p) as im:
                im.load()
                im = im.convert("RGBA" if "A" in im.getbands() or im.mode == "P" else "RGB")
                return np.asarray(im).copy()
        except Exception as e:  # noqa: BLE001
            raise InferError(f"{p}: not a readable image ({type(e).__name__})") from None
    if img.dtype not in (np.uint8, np.uint16):
        if img.dtype == np.float32:
            img = (np.clip(img, 0, 1) * 65535).round().astype(np.uint16)
        else:
            raise InferError(f"{p}: unsupported sample type {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise InferError(f"{p}: unsupported image layout {img.shape} (need gray, RGB or RGBA)")
    if img.ndim == 3:
        img = img[..., [2, 1, 0, 3][: img.shape[2]]]       # BGR(A) -> RGB(A)
    try:
        from PIL import Image
        with Image.open(p) as im:
            orient = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - no EXIF readable: nothing to rotate
        orient = 1
    if orient in _EXIF_FIX:
        img = _EXIF_FIX[orient](img)
    return np.ascontiguousarray(img)


def upscale(net: torch.nn.Module, img: np.ndarray, *, scale: int, tile: int = 0, tile_overlap: int = 32,
            tile_pad: int = 10, pre_pad: int = 0, outscale: float | None = None, alpha: str = "bicubic",
            half: bool = False, device: torch.device | str = "cpu") -> np.ndarray:
    """Upscale an image array as read by ``read_image_any`` (same dtype/channels out).

    RGB goes through the net (reflect pre-pad ``pre_pad`` px, default 0 as Real-ESRGAN's inference command, and
    mod-pad for x2/x1, removed afterwards); gray is
    replicated to RGB and converted back; alpha is upscaled separately (``bicubic`` or ``net``). ``outscale``
    resizes the result (Lanczos) to ``outscale`` x the input size.
    """
    dev = torch.device(device)
    if img.dtype == np.uint16:
        peak = 65535.0
    elif img.dtype == np.uint8:
        peak = 255.0
    else:
        raise ValueError(f"upscale: expected uint8/uint16, got {img.dtype}")
    h, w = img.shape[:2]
    gray = img.ndim == 2
    rgb = np.repeat(img[..., None], 3, 2) if gray else img[..., :3]
    a = img[..., 3] if (not gray and img.shape[2] == 4) else None
    dtype = torch.float16 if half and dev.type == "cuda" else torch.float32

    def run(rgb_arr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(rgb_arr.astype(np.float32) / peak).permute(2, 0, 1)[None]
        m = _UNSHUFFLE[scale]
        ph, pw = pre_pad + (-(h + pre_pad) % m), pre_pad + (-(w + pre_pad) % m)
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        x = x.to(dev, dtype)
        y = tiled_forward(net, x, scale=scale, tile=tile, tile_overlap=tile_overlap, tile_pad=tile_pad)
        y = y[0, :, : h * scale, : w * scale].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()
        return y

    out = run(rgb)
    if gray:
        out = out @ np.array([0.299, 0.587, 0.114], np.float32)
    if a is not None:
        if alpha == "net":
            oa = run(np.repeat(a[..., None], 3, 2)).mean(axis=2)
        elif alpha == "bicubic":
            oa = np.clip(cv2.resize(a.astype(np.float32) / peak, (w * scale, h * scale),
                                    interpolation=cv2.INTER_CUBIC), 0, 1)
        else:
            raise ValueError(f"alpha must be 'bicubic' or 'net', got {alpha!r}")
        out = np.concatenate([out, oa[..., None]], axis=2)
    if outscale is not None and outscale != scale:
        size = (max(1, round(w * outscale)), max(1, round(h * outscale)))
        out = np.clip(cv2.resize(out, size, interpolation=cv2.INTER_LANCZOS4), 0, 1)
    res = np.round(out * peak).astype(img.dtype)
    return np.ascontiguousarray(res)


def write_image_any(path: str | os.PathLike, img: np.ndarray) -> None:
    """Write gray / RGB / RGBA, 8- or 16-bit (PNG keeps 16-bit) to a temp file, then rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    arr = img if img.ndim == 2 else img[..., [2, 1, 0, 3][: img.shape[2]]]
    ok, buf = cv2.imencode(p.suffix or ".png", np.ascontiguousarray(arr))
    if not ok:
        raise InferError(f"{p}: cannot encode as {p.suffix}")
    tmp = p.with_name(p.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, p)
    except BaseException:             # a full disk or Ctrl-C: no temporary left, an older output untouched
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
