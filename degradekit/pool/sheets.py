"""Pictures of a pool for `degradekit preview --pool POOL/`: a kernel grid and a noise sheet (PNG)."""
from __future__ import annotations

import numpy as np

__all__ = ["kernel_grid", "noise_sheet", "kernel_grid_image", "noise_sheet_image"]

TILE = 96
MAX_TILES = 200


def kernel_grid_image(pool, *, tile: int = TILE, cols: int = 8, max_tiles: int = MAX_TILES) -> np.ndarray:
    """uint8 RGB contact sheet of the pool's kernels: every kernel (x2, and x4 when present) as a heat map
    labelled with its id, width (sigma major/minor, px) and orientation; outliers are marked."""
    from ..drawing import grid, heatmap, labelled_tile, stack_rows, title_bar
    from .kernelgan import kernel_moments

    rows = []
    meta = pool.meta
    outliers = set(meta.get("kernels", {}).get("outliers", []))
    for s in pool.scales:
        ids = [f"{b}@x{s}" for b in meta["kernels"]["ids"]][:max_tiles]
        tiles = []
        for kid in ids:
            k = pool.kernel(kid)
            m = kernel_moments(k)
            base = kid.rsplit("@", 1)[0]
            lines = [base[:20], f"x{s} {k.shape[0]}px s {m['sigma_major']:.2f}/{m['sigma_minor']:.2f}",
                     f"th {m['theta']:.0f}" + ("  OUTLIER" if base in outliers else "")]
            tiles.append(labelled_tile(heatmap(k, tile), lines, tile, 3))
        if tiles:
            n_use = len([i for i in ids if i.rsplit("@", 1)[0] not in outliers])
            rows.append(title_bar(f"x{s} kernels: {len(ids)} shown, {n_use} usable (outliers excluded from "
                                  f"sampling)", tile * cols))
            rows.append(grid(tiles, cols))
    if not rows:
        rows.append(title_bar(f"{pool.path}: no kernels", tile * cols))
    return stack_rows(rows)


def noise_sheet_image(pool, *, tile: int = 128, cols: int = 6, max_tiles: int = 60, gain: float = 8.0) -> np.ndarray:
    """uint8 RGB sheet of the noise pool: for each patch the zero-mean noise amplified `gain` times around
    mid-grey, labelled with its id and per-channel standard deviation (grey levels)."""
    from ..drawing import fit_tile, grid, labelled_tile, stack_rows, title_bar

    ids = list(pool.noise_ids())
    tiles = []
    for nid in ids[:max_tiles]:
        n = pool.noise(nid)
        crop = n[:tile, :tile]
        vis = np.clip(0.5 + gain * crop, 0, 1)
        sd = (n.std(axis=(0, 1)) * 255).tolist()
        src, _, pos = nid.rpartition("-y")
        lines = [src[:22], f"y{pos.replace('-x', ' x')}" if src else "", "sd " + "/".join(f"{v:.1f}" for v in sd)]
        tiles.append(labelled_tile(fit_tile(vis, tile), lines, tile, 3))
    head = title_bar(f"noise: {len(ids)} patches ({min(len(ids), max_tiles)} shown, {tile}px crops, x{gain:g} "
                     "around grey)", tile * cols)
    return stack_rows([head, grid(tiles, cols)] if tiles else [head])


def kernel_grid(pool, path) -> None:
    """Write :func:`kernel_grid_image` of `pool` to `path` (PNG)."""
    from ..imageio import write_png

    write_png(path, kernel_grid_image(pool))


def noise_sheet(pool, path) -> None:
    """Write :func:`noise_sheet_image` of `pool` to `path` (PNG)."""
    from ..imageio import write_png

    write_png(path, noise_sheet_image(pool))
