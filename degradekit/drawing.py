"""Small raster drawing helpers for contact sheets and histograms (OpenCV only, no plotting library).

All images are uint8 HxWx3 RGB.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.35
LINE_H = 12
BG = (255, 255, 255)
FG = (20, 20, 20)
ACCENT = (40, 110, 200)


def fit_tile(img: np.ndarray, size: int) -> np.ndarray:
    """Scale `img` (HxWx3 uint8 or float in [0,1]) to fit a `size`x`size` tile, centred on white.

    Enlarging uses nearest neighbour (pixels stay visible), shrinking uses area averaging.
    """
    if img.dtype != np.uint8:
        img = np.clip(np.rint(np.asarray(img, np.float32) * 255.0), 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    f = size / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    interp = cv2.INTER_NEAREST if f >= 1 else cv2.INTER_AREA
    small = cv2.resize(img, (nw, nh), interpolation=interp)
    tile = np.full((size, size, 3), 255, np.uint8)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    tile[y0:y0 + nh, x0:x0 + nw] = small
    return tile


def heatmap(kernel: np.ndarray, size: int) -> np.ndarray:
    """A kernel (k x k float) as a `size`x`size` heat map (nearest-neighbour enlarged, 'inferno' colours).

    Negative lobes (sinc kernels) are shown relative to the minimum.
    """
    k = np.asarray(kernel, np.float64)
    lo, hi = float(k.min()), float(k.max())
    norm = (k - lo) / (hi - lo) if hi > lo else np.zeros_like(k)
    u8 = np.clip(np.rint(norm * 255), 0, 255).astype(np.uint8)
    colored = cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO)[..., ::-1]  # BGR -> RGB
    return fit_tile(np.ascontiguousarray(colored), size)


def text_block(lines: Sequence[str], width: int, n_lines: int) -> np.ndarray:
    """White block `n_lines` text lines high with `lines` written in it (clipped to the width)."""
    block = np.full((n_lines * LINE_H + 4, width, 3), 255, np.uint8)
    for i, line in enumerate(list(lines)[:n_lines]):
        # clip long lines so they never spill into the next tile
        while line and cv2.getTextSize(line, FONT, FONT_SCALE, 1)[0][0] > width - 4:
            line = line[:-1]
        cv2.putText(block, line, (2, (i + 1) * LINE_H), FONT, FONT_SCALE, FG, 1, cv2.LINE_AA)
    return block


def labelled_tile(img: np.ndarray, lines: Sequence[str], size: int, n_lines: int) -> np.ndarray:
    """A tile with up to `n_lines` lines of text underneath, plus a 2 px gutter on the right."""
    col = np.vstack([img, text_block(lines, size, n_lines)])
    return np.hstack([col, np.full((col.shape[0], 2, 3), 255, np.uint8)])


def title_bar(text: str, width: int) -> np.ndarray:
    bar = np.full((18, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (3, 13), FONT, 0.45, FG, 1, cv2.LINE_AA)
    return bar


def pad_to_width(img: np.ndarray, width: int) -> np.ndarray:
    if img.shape[1] >= width:
        return img
    return np.hstack([img, np.full((img.shape[0], width - img.shape[1], 3), 255, np.uint8)])


def stack_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    return np.vstack([pad_to_width(r, width) for r in rows])


def grid(tiles: Sequence[np.ndarray], cols: int) -> np.ndarray:
    """Arrange equally sized tiles (HxWx3) in rows of `cols`."""
    rows = [np.hstack(list(tiles[i:i + cols])) for i in range(0, len(tiles), cols)]
    return stack_rows(rows)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000 or a < 0.01:
        return f"{v:.2g}"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def short_labels(labels: Sequence[str], width: int = 8) -> list[str]:
    """Bar labels cut to `width` characters; when that makes two equal ("bicubic_a50", "bicubic_a75"), both
    keep their head and tail instead ("bicu_a50", "bicu_a75")."""
    cut = [lab[:width] for lab in labels]
    dup = {c for c in cut if cut.count(c) > 1}
    half = width // 2
    return [lab[:half] + lab[-(width - half):] if c in dup and len(lab) > width else c
            for lab, c in zip(labels, cut)]


def histogram_panel(title: str, values: Sequence, width: int = 240, height: int = 150,
                    bins: int = 30) -> np.ndarray:
    """A bar chart of `values`: numeric values get a `bins`-bin histogram over [min, max], anything else
    (strings, booleans) gets one bar per distinct value. Title, count and axis ends are written on it."""
    panel = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(panel, title, (4, 12), FONT, FONT_SCALE, FG, 1, cv2.LINE_AA)
    x0, x1, y0, y1 = 6, width - 6, 20, height - 26
    vals = list(values)
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                  for v in vals)
    if numeric:
        arr = np.asarray(vals, np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        distinct = np.unique(arr)
        if distinct.size <= 16 and np.all(distinct == np.round(distinct)):
            labels = [_fmt(v) for v in distinct]          # few integer levels: one bar each
            counts = np.array([(arr == v).sum() for v in distinct])
        else:
            counts, _ = np.histogram(arr, bins=bins, range=(lo, hi if hi > lo else lo + 1))
            labels = None
        foot = f"n={arr.size}  min {_fmt(lo)}  max {_fmt(hi)}  mean {_fmt(float(arr.mean()))}"
    else:
        keys = sorted({str(v) for v in vals})
        counts = np.array([sum(str(v) == k for v in vals) for k in keys])
        labels = keys
        foot = f"n={len(vals)}"
    n = len(counts)
    bw = (x1 - x0) / max(n, 1)
    top = max(int(counts.max()) if n else 1, 1)
    for i, c in enumerate(counts):
        h = int(round((y1 - y0) * c / top))
        xa, xb = int(x0 + i * bw), int(x0 + (i + 1) * bw) - 1
        cv2.rectangle(panel, (xa, y1 - h), (max(xa, xb), y1), ACCENT, -1)
    cv2.line(panel, (x0, y1), (x1, y1), FG, 1)
    if labels is not None and n:
        step = max(1, math.ceil(n / max(1, (x1 - x0) // 28)))
        short = short_labels(labels)
        for i in range(0, n, step):
            lab = short[i]
            cv2.putText(panel, lab, (int(x0 + i * bw), y1 + 11), FONT, 0.3, FG, 1, cv2.LINE_AA)
    cv2.putText(panel, foot, (4, height - 4), FONT, 0.3, FG, 1, cv2.LINE_AA)
    return panel
