"""See what a degradation config does before a multi-day run.

- `contact_sheet`: one row per seed with the HR crop, the image after every stage, the final LR enlarged
  with nearest neighbour and the drawn kernels as heat maps, key parameters written under the tiles.
- `param_histograms`: a histogram of every drawn parameter over many sampled records.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from . import drawing
from .config import DegradeConfig
from .config import stage_config
from .kernels import build_kernel
from .pipeline import apply_stages, sample

TILE = 144
TEXT_LINES = 3

# Per-sample integers that are identifiers, not distributions worth a histogram.
_NOT_PLOTTED = ("seed", "pool_id", "u", "v")


def flatten_params(d: Mapping, prefix: str = "") -> dict[str, object]:
    """Flatten a params dict into dotted keys ("stages.0.blur.sigma_x" -> 1.3); lists are indexed.

    None values (parameters a kind does not have) are dropped.
    """
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_params(v, key + "."))
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
            for i, x in enumerate(v):
                out.update(flatten_params(x, f"{key}.{i}."))
        elif v is not None:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


_ABBREV = (("generalized_", "g"), ("plateau_", "p"))


def _plot_values(rec: Mapping) -> dict[str, object]:
    """The values of one record worth a histogram, under display names.

    Stage lists become "stage1", "stage2", ...; a kernel's beta is split by family ("beta (generalized)",
    "beta (plateau)") so the plateau spike at beta = 1 stays visible; sigma_y/theta only for anisotropic kernels;
    the resize factor only for up/down; kind names are abbreviated (g = generalized, p = plateau).
    """
    if rec.get("pipeline") == "bsrgan":  # (bsrgan) its own record layout, ops named by published op number
        from .bsrgan.preview import plot_values

        return plot_values(rec)

    def walk(d: Mapping, prefix: str, out: dict) -> None:
        kind = d.get("kind") if isinstance(d.get("kind"), str) else None
        for k, v in d.items():
            if isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.", out)
            elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
                for i, x in enumerate(v):
                    name = f"stage{i + 1}." if k == "stages" else f"{k}{i + 1}."
                    walk(x, prefix + name, out)
            elif v is None and k in ("blur", "sinc", "noise"):
                out[f"{prefix}{k}.kind"] = "none"  # a skipped step is a bar of its own
            elif v is None or isinstance(v, (list, tuple)) or k in _NOT_PLOTTED:
                continue
            elif kind is not None and k in ("sigma_y", "theta") and not kind.endswith("aniso"):
                continue
            elif k == "beta" and kind is not None:
                out[f"{prefix}beta ({kind.split('_')[0]})"] = v
            elif k == "factor" and d.get("direction") == "keep":
                continue
            elif k == "kind" and isinstance(v, str):
                for a, b in _ABBREV:
                    v = v.replace(a, b)
                out[prefix + k] = v
            else:
                out[prefix + k] = v

    out: dict[str, object] = {}
    walk(rec, "", out)
    return out


def param_histograms(records: Sequence[Mapping], *, cols: int = 4, width: int = 240,
                     height: int = 150) -> np.ndarray:
    """A grid of histograms, one per drawn parameter, over `records` (each a params dict as recorded).

    Numeric parameters get a binned histogram, categorical ones (kernel kind, resize mode, noise kind,
    gray, ...) one bar per value; parameters that never vary (scale, order, USM settings) are listed in a
    line at the top instead. Returns a uint8 HxWx3 RGB image.
    """
    columns: dict[str, list] = {}
    for rec in records:
        for k, v in _plot_values(rec).items():
            columns.setdefault(k, []).append(v)
    if not columns:
        raise ValueError("no parameters to plot")
    fixed = {k: v[0] for k, v in columns.items()
             if len(v) == len(records) and all(x == v[0] for x in v)}
    panels = [drawing.histogram_panel(k, v, width, height) for k, v in sorted(columns.items())
              if k not in fixed]
    if not panels:
        panels = [drawing.histogram_panel(k, v, width, height) for k, v in sorted(columns.items())]
    while len(panels) % cols:
        panels.append(np.full_like(panels[0], 255))
    const = "  ".join(f"{k}={v}" for k, v in sorted(fixed.items()))
    rows = [drawing.title_bar(f"{len(records)} sampled parameter records   (kinds: g = generalized, "
                              f"p = plateau)", width * cols)]
    if const:
        rows.append(drawing.text_block([f"constant: {const}"], width * cols, 1))
    return drawing.stack_rows(rows + [drawing.grid(panels, cols)])


def plot_param_histograms(records: Sequence[Mapping], path) -> None:
    """Write `param_histograms(records)` to a PNG file."""
    from .imageio import write_png

    write_png(path, param_histograms(records))


def _kernel_label(k: Mapping | None) -> list[str]:
    if k is None:
        return ["none"]
    kind = k["kind"]
    if kind == "sinc":
        return [f"sinc k={k['size']}", f"wc={k['omega_c']:.2f}"]
    if kind == "pool":
        return ["pool", str(k.get("pool_id"))]
    lines = [f"{kind} k={k['size']}", f"s={k['sigma_x']:.2f}/{k['sigma_y']:.2f}"]
    extra = f"th={math.degrees(k['theta']):.0f}"
    if k.get("beta") is not None:
        extra += f" b={k['beta']:.2f}"
    return lines + [extra]


def _stage_label(name: str, img: np.ndarray, params: Mapping) -> list[str]:
    """Text under a stage tile: the stage, its output size and its key parameters."""
    h, w = img.shape[:2]
    head = f"{name} {w}x{h}"
    stage_no = name.rstrip("0123456789")
    idx = int(name[len(stage_no):]) - 1 if name[len(stage_no):] else None
    if idx is not None and stage_no in ("blur", "resize", "noise", "jpeg"):
        st = params["stages"][idx]
        if stage_no == "blur":
            return [head] + _kernel_label(st.get("blur"))[:TEXT_LINES - 1]
        if stage_no == "resize":
            r = st["resize"]
            return [head, f"{r['direction']} x{r['factor']:.2f}", r["mode"]]
        if stage_no == "noise":
            n = st["noise"]
            if n["kind"] == "gaussian":
                return [head, f"gauss s={n['sigma']:.1f}", "gray" if n["gray"] else "color"]
            if n["kind"] == "poisson":
                return [head, f"poisson x{n['scale']:.2f}", "gray" if n["gray"] else "color"]
            return [head, f"pool {n.get('pool_id')}"]
        if stage_no == "jpeg":
            q = st.get("jpeg_quality")
            return [head, f"q={q}" if q is not None else "skipped"]
    if name == "final":
        f = params["final"]
        order = "resize,sinc,jpeg" if f["resize_first"] else "jpeg,resize,sinc"
        return [head, order, f"{f['mode']} q={f['jpeg_quality']}"]
    return [head]


def _never(name: str, config: DegradeConfig) -> bool:
    """True for a stage JPEG tile whose stage config has jpeg_prob 0 (Real-ESRGAN's stage 2)."""
    if name.startswith("jpeg"):
        return stage_config(config, int(name[4:])).jpeg_prob == 0
    return False


def lr_zoom(lr: np.ndarray, scale: int, tile: int) -> np.ndarray:
    """The LR enlarged `scale` times with nearest neighbour (HR size), centre crop of tile x tile, so LR pixels
    are seen at the HR tile's magnification. uint8 (tile, tile, 3); padded with white when smaller."""
    big = np.repeat(np.repeat(lr, scale, 0), scale, 1)
    h, w = big.shape[:2]
    y0, x0 = max(0, (h - tile) // 2), max(0, (w - tile) // 2)
    crop = big[y0:y0 + tile, x0:x0 + tile]
    out = np.full((tile, tile, 3), 255, np.uint8)
    out[:crop.shape[0], :crop.shape[1]] = crop
    return out


def contact_sheet(hr: np.ndarray, config: DegradeConfig, seeds: Iterable[int], *, pool=None,
                  tile: int = TILE) -> tuple[np.ndarray, list[dict]]:
    """Render a contact sheet: one row per seed.

    hr: uint8 HxWx3 RGB (the HR crop). Each row holds the HR, the image after every stage
    (blur1, resize1, noise1, jpeg1, blur2, ... , final), the final LR enlarged with nearest neighbour,
    and the drawn kernels as heat maps. Returns (sheet uint8 RGB, [params dict per seed]).
    """
    rows, records = [], []
    for seed in seeds:
        params = sample(np.random.default_rng(seed), config, pool)
        pd = params.to_dict()
        records.append(pd)
        stages = apply_stages(hr, params, pool)
        tiles = [drawing.labelled_tile(drawing.fit_tile(hr, tile),
                                       [f"HR {hr.shape[1]}x{hr.shape[0]}", f"seed {seed}"], tile,
                                       TEXT_LINES)]
        for name, img in stages:
            if name.startswith("final_") or _never(name, config):
                continue  # the final step is shown as one tile; steps the config never takes are left out
            tiles.append(drawing.labelled_tile(drawing.fit_tile(img, tile),
                                               _stage_label(name, img, pd), tile, TEXT_LINES))
        lr = stages[-1][1]
        tiles.append(drawing.labelled_tile(lr_zoom(lr, params.scale, tile),
                                           [f"LR {lr.shape[1]}x{lr.shape[0]}", f"x{params.scale} nearest,",
                                            "centre crop"], tile, TEXT_LINES))
        kernel_params = [(f"k{i + 1}", st.blur) for i, st in enumerate(params.stages)]
        kernel_params.append(("sinc", params.final.sinc))
        for name, kp in kernel_params:
            if kp is None:
                continue
            k = build_kernel(kp, pool)
            label = _kernel_label(kp.to_dict())
            tiles.append(drawing.labelled_tile(drawing.heatmap(k, tile),
                                               [f"{name}: {label[0]}"] + label[1:], tile, TEXT_LINES))
        rows.append(np.hstack(tiles))
    return drawing.stack_rows(rows), records


def params_table(records: Sequence[Mapping], seeds: Sequence[int]) -> str:
    """A plain-text table: one row per parameter, one column per seed."""
    flat = [flatten_params(r) for r in records]
    keys = sorted({k for f in flat for k in f})
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    head = ["parameter"] + [f"seed {s}" for s in seeds]
    body = [[k] + [cell(f.get(k, "-")) for f in flat] for k in keys]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
