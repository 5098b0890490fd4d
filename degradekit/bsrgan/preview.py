"""`degradekit preview --preset bsrgan...`: the op sequence as labelled tiles, and flat values for `--stats`.

The contact sheet has one row per seed: the HR, the image after every op in the order drawn (skipped ops
included, labelled so), the final JPEG, the LR enlarged with nearest neighbour, and the drawn kernels
(blurs and the nearest branch's shifted kernel) as heat maps.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import drawing
from .apply import apply_bsrgan_stages, blur_kernel
from .config import BsrganConfig
from .kernels import nearest_kernel
from .params import Blur, BsrganParams, DownA, DownB, Jpeg, Noise, Poisson, Resize, Skip
from .sample import sample_bsrgan

__all__ = ["contact_sheet", "plot_values", "step_label"]

TILE = 144
TEXT_LINES = 3


def _corr_sd(cov) -> float:
    """Mean per-channel standard deviation of a correlated noise step, 0-255 scale."""
    return float(np.mean(np.sqrt(np.diag(np.asarray(cov)))) * 255)


def step_label(step, sf: int) -> list[str]:
    """Up to two text lines naming a step's drawn parameters."""
    if isinstance(step, Blur):
        if step.kind == "iso":
            return [f"iso k={step.size}", f"s={step.sigma:.2f}"]
        return [f"aniso k={step.size}", f"l={step.l1:.1f}/{step.l2:.1f} th={math.degrees(step.theta):.0f}"]
    if isinstance(step, DownA):
        if step.method == "cv2":
            return [f"cv2 1/{step.s1:.2f}" + (" (down-up)" if step.s1 > sf else ""), step.interp]
        return [f"nearest s={step.sigma:.2f}", f"1 px per {sf}x{sf} block"]
    if isinstance(step, DownB):
        return [f"to size at A / {sf}", step.interp]
    if isinstance(step, Noise):
        if step.branch == "correlated":
            return [f"{step.kind} correlated", f"sd~{_corr_sd(step.cov):.1f} (level-blind)"]
        return [f"{step.kind} {step.branch}", f"level={step.level}"]
    if isinstance(step, Jpeg):
        return [f"q={step.quality}"]
    if isinstance(step, Resize):
        return [f"{step.direction} x{step.factor:.2f}", step.interp]
    if isinstance(step, Poisson):
        return [f"poisson 10^{math.log10(step.vals):.2f}", "gray" if step.gray else "color"]
    assert isinstance(step, Skip)
    return ["skipped (no ISP model)" if step.what == "isp" else "skipped"]


def _tile_label(label: str, img: np.ndarray, p: BsrganParams) -> list[str]:
    h, w = img.shape[:2]
    if ":" in label:
        i = int(label.split(":")[0]) - 1
        return [f"{label} (op {p.order[i]}) {w}x{h}"] + step_label(p.steps[i], p.sf)
    head = f"{label} {w}x{h}"
    if label == "prehalve":
        return [head, "matlab bicubic AA" if p.prehalve.method == "matlab" else f"cv2 {p.prehalve.interp}",
                "then sf = 2"]
    if label == "final_resize":
        return [head, f"cv2 {p.final_interp}"]
    if label == "final_jpeg":
        return [head, f"q={p.final_quality}"]
    return [head]


def contact_sheet(hr: np.ndarray, cfg: BsrganConfig, seeds: Iterable[int], *,
                  tile: int = TILE) -> tuple[np.ndarray, list[dict]]:
    """One row per seed (see the module doc). hr: uint8 HxWx3 RGB. Returns (sheet uint8 RGB, [params dict])."""
    from ..preview import lr_zoom

    rows, records = [], []
    for seed in seeds:
        p = sample_bsrgan(np.random.default_rng(seed), cfg)
        records.append(p.to_dict())
        stages = apply_bsrgan_stages(hr, p)
        tiles = [drawing.labelled_tile(drawing.fit_tile(hr, tile), [f"HR {hr.shape[1]}x{hr.shape[0]}",
                                                                    f"seed {seed}", f"{cfg.variant} x{cfg.scale}"],
                                       tile, TEXT_LINES)]
        for label, img in stages[1:-1]:
            tiles.append(drawing.labelled_tile(drawing.fit_tile(img, tile), _tile_label(label, img, p), tile,
                                               TEXT_LINES))
        lr = stages[-1][1]
        tiles.append(drawing.labelled_tile(lr_zoom(lr, p.scale, tile), [f"LR {lr.shape[1]}x{lr.shape[0]}",
                                                                        f"x{p.scale} nearest,", "centre crop"],
                                           tile, TEXT_LINES))
        for i, st in enumerate(p.steps):
            if isinstance(st, Blur):
                k = blur_kernel(st)
            elif isinstance(st, DownA) and st.method == "nearest":
                k = nearest_kernel(st.sigma, p.sf)
            else:
                continue
            tiles.append(drawing.labelled_tile(drawing.heatmap(k, tile), [f"kernel of {i + 1}:{st.op}"]
                                               + step_label(st, p.sf), tile, TEXT_LINES))
        rows.append(np.hstack(tiles))
    return drawing.stack_rows(rows), records


_NAMES = {"bsrgan": {0: "blur1", 1: "blur2", 2: "down_a", 3: "down_b", 4: "noise", 5: "jpeg"},
          "plus": {0: "blur1", 7: "blur2", 1: "resize1", 8: "resize2", 2: "noise1", 9: "noise2", 3: "poisson1",
                   10: "poisson2", 4: "speckle1", 11: "speckle2", 6: "jpeg"}}


def plot_values(params: BsrganParams | dict) -> dict[str, object]:
    """Flat {display name: value} of one draw for `preview.param_histograms`: ops are named by their published
    op number (blur1 = op 0, ...), not by their shuffled position; positions of the downsamples as "pos.*"."""
    p = BsrganParams.from_dict(params) if isinstance(params, dict) else params
    out: dict[str, object] = {"final.quality": p.final_quality}
    if p.variant == "bsrgan":
        out["prehalve"] = "none" if p.prehalve is None else (
            p.prehalve.method if p.prehalve.method == "matlab" else f"cv2 {p.prehalve.interp}")
        out["sf"] = p.sf
        out["pos.down_a"], out["pos.down_b"] = p.order.index(2) + 1, p.order.index(3) + 1
    else:
        out["shuffled"] = p.shuffled
        out["final.interp"] = p.final_interp
    for op, st in zip(p.order, p.steps):
        name = _NAMES[p.variant].get(op)
        if name is None:  # the ISP
            continue
        if isinstance(st, Skip):
            out[f"{name}.applied"] = False
            continue
        if name.startswith(("jpeg", "poisson", "speckle")):
            out[f"{name}.applied"] = True
        if isinstance(st, Blur):
            out[f"{name}.kind"], out[f"{name}.size"] = st.kind, st.size
            if st.kind == "iso":
                out[f"{name}.sigma (iso)"] = st.sigma
            else:
                out[f"{name}.l1"], out[f"{name}.l2"], out[f"{name}.theta"] = st.l1, st.l2, st.theta
        elif isinstance(st, DownA):
            out[f"{name}.method"] = st.method
            if st.method == "cv2":
                out[f"{name}.s1"], out[f"{name}.interp"] = st.s1, st.interp
                out["down_b.enlarges"] = st.s1 > p.sf
            else:
                out[f"{name}.sigma (nearest)"] = st.sigma
        elif isinstance(st, DownB):
            out[f"{name}.interp"] = st.interp
        elif isinstance(st, Noise):
            out[f"{name}.branch"] = st.branch
            out[f"{name}.level"] = st.level
            if st.cov is not None:
                out[f"{name}.corr sd"] = _corr_sd(st.cov)
        elif isinstance(st, Jpeg):
            out[f"{name}.quality"] = st.quality
        elif isinstance(st, Resize):
            out[f"{name}.direction"] = st.direction
            if st.direction != "keep":
                out[f"{name}.factor"] = st.factor
            out[f"{name}.interp"] = st.interp
        elif isinstance(st, Poisson):
            out[f"{name}.log10 vals"] = math.log10(st.vals)
            out[f"{name}.gray"] = st.gray
    return out
