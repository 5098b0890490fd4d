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
_EXTRA_STEPS = ("halo", "color", "banding", "dither")
# a shuffled stage's order as one short word: B blur, R resize, H halo, N noise, C color, Q banding, D dither,
# J the compression step
_STEP_LETTERS = {"blur": "B", "resize": "R", "halo": "H", "noise": "N", "color": "C", "banding": "Q",
                 "dither": "D", "jpeg": "J"}


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
        if "jpeg_quality" in d or "compression" in d:
            # one codec panel per stage/final ("none" = skipped), qualities split by codec below
            c = d.get("compression")
            out[f"{prefix}codec"] = c["codec"] if c else ("none" if d.get("jpeg_quality") is None else "jpeg")
        if prefix.startswith("stage") and prefix.count(".") == 1:
            taken = "+".join(k for k in _EXTRA_STEPS if d.get(k) is not None)
            if taken:
                out[f"{prefix}extras"] = taken  # param_histograms adds "none" for the records without
        for k, v in d.items():
            if k == "compression" and isinstance(v, Mapping):
                for ck, cv in v.items():
                    if ck != "codec":
                        out[f"{prefix}{ck} ({v['codec']})"] = cv
            elif k == "steps" and isinstance(v, (list, tuple)):
                out[f"{prefix}order"] = "".join(_STEP_LETTERS[s] for s in v)
            elif isinstance(v, Mapping):
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
            elif k in ("size", "sigma") and kind in ("median", "speckle"):
                out[f"{prefix}{k} ({kind})"] = v  # not mixed with the Gaussian sizes/sigmas
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
    for k, v in columns.items():
        if k.endswith(".extras"):
            v.extend(["none"] * (len(records) - len(v)))
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
                              f"p = plateau; order: B blur R resize H halo N noise C color Q banding "
                              f"D dither J compression)", width * cols)]
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
    if kind == "box":
        return [f"box w={k['width']:.2f}"]
    if kind == "disk":
        return [f"disk r={k['radius']:.2f}"]
    if kind == "motion":
        return [f"motion l={k['length']:.1f}", f"angle {k['angle']:.0f} deg"]
    if kind == "median":
        return [f"median {k['size']}x{k['size']}"]
    lines = [f"{kind} k={k['size']}", f"s={k['sigma_x']:.2f}/{k['sigma_y']:.2f}"]
    extra = f"th={math.degrees(k['theta']):.0f}"
    if k.get("beta") is not None:
        extra += f" b={k['beta']:.2f}"
    return lines + [extra]


def _resampler_label(r: Mapping) -> str:
    if r.get("filter") is None:
        return r["mode"]
    return r["filter"] + (" aa" if r.get("antialias") else "")


def _codec_label(rec: Mapping) -> list[str]:
    """The compression step of a stage/final record: "q=Q" (JPEG 4:2:0) or the codec and its settings."""
    c = rec.get("compression")
    if c is None:
        q = rec.get("jpeg_quality")
        return [f"jpeg q={q}" if q is not None else "skipped"]
    codec = c["codec"]
    if codec == "jpeg":
        return [f"jpeg q={c['quality']} {c['subsampling']}"]
    if codec == "webp":
        return [f"webp q={c['quality']}"]
    if codec == "avif":
        return [f"avif q={c['quality']} speed {c['speed']}"]
    if codec == "jpeg2000":
        return [f"jpeg2000 1:{c['rate']:.1f}"]
    return [f"{codec} q={c['quality']}", f"{c['preset'] or '-'} {c['pix_fmt']}"]


def _noise_label(n: Mapping) -> list[str]:
    space = n.get("space") or ("gray" if n.get("gray") else "color")
    kind = n["kind"]
    if kind == "gaussian":
        return [f"gauss s={n['sigma']:.1f}", space]
    if kind == "poisson":
        return [f"poisson x{n['scale']:.2f}", space]
    if kind == "uniform":
        return [f"uniform a={n['amplitude']:.1f}", space]
    if kind == "speckle":
        return [f"speckle s={n['sigma']:.1f}", space]
    if kind == "salt_pepper":
        return [f"s&p {n['amount']:.4f}", f"salt {n['salt_ratio']:.2f} {space}"]
    return [f"pool {n.get('pool_id')}"]


def _extra_label(step: str, p: Mapping) -> list[str]:
    if step == "halo":
        return [f"halo a={p['amount']:.2f} r={p['radius']:.2f}", f"threshold {p['threshold']:.1f}"]
    if step == "color":
        return [f"b={p['brightness']:+.3f} c={p['contrast']:.3f}", f"sat={p['saturation']:.3f} g={p['gamma']:.3f}"]
    if step == "banding":
        return [f"banding {p['bits']} bits"]
    return [f"dither {p['method']}", f"{p['levels']} levels"]


_STEP_NAMES = ("blur", "resize", "noise", "jpeg") + _EXTRA_STEPS


def _stage_label(name: str, img: np.ndarray, params: Mapping) -> list[str]:
    """Text under a stage tile: the stage, its output size and its key parameters (the kind and its main
    settings for every kind)."""
    h, w = img.shape[:2]
    head = f"{name} {w}x{h}"
    stage_no = name.rstrip("0123456789")
    idx = int(name[len(stage_no):]) - 1 if name[len(stage_no):] else None
    if idx is not None and stage_no in _STEP_NAMES:
        st = params["stages"][idx]
        if stage_no == "blur":
            return [head] + _kernel_label(st.get("blur"))[:TEXT_LINES - 1]
        if stage_no == "resize":
            r = st["resize"]
            third = _resampler_label(r)
            if r.get("down_up") is not None:
                third += f" via x{r['down_up']['factor']:.2f} {_resampler_label(r['down_up'])}"
            return [head, f"{r['direction']} x{r['factor']:.2f}", third]
        if stage_no == "noise":
            n = st["noise"]
            return [head] + (_noise_label(n) if n is not None else ["skipped"])
        if stage_no == "jpeg":
            return [head] + _codec_label(st)
        p = st.get(stage_no)
        return [head] + (_extra_label(stage_no, p) if p is not None else ["skipped"])
    if name == "final":
        f = params["final"]
        order = "resize,sinc,jpeg" if f["resize_first"] else "jpeg,resize,sinc"
        if f.get("compression") is not None:
            order = order.replace("jpeg", f["compression"]["codec"])
        return [head, order, f"{_resampler_label(f)} {_codec_label(f)[0]}"]
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
            if kp is None or kp.kind == "median":
                continue  # a median filter has no kernel to draw
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
