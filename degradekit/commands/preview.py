"""`degradekit preview`: a contact sheet of what a config does to an image, or histograms of its draws."""
from __future__ import annotations

from pathlib import Path

import click


def _load_cfg(config_file, preset_name, scale, order):
    import dataclasses

    from degradekit.config import ConfigError, load_config, preset, validate_config

    from degradekit.bsrgan import bsrgan_preset, is_bsrgan_toml, load_bsrgan_config

    if is_bsrgan_toml(config_file) if config_file else preset_name.startswith("bsrgan"):  # (bsrgan) own config
        if order is not None:
            raise click.ClickException("--order does not apply to the bsrgan pipeline (BSRGAN shuffles its ops)")
        try:
            if config_file:
                cfg = load_bsrgan_config(config_file)
                return cfg if scale is None else dataclasses.replace(cfg, scale=scale)
            return bsrgan_preset(preset_name, scale)
        except ValueError as e:
            raise click.ClickException(str(e) if config_file else f"--preset {preset_name}: {e}") from None
    try:
        cfg = load_config(config_file) if config_file else preset(preset_name)
        # a preset is validated too: its codecs must be installed (one line here, not a traceback in sample)
        cfg = validate_config(cfg, config_file or f"--preset {preset_name}")
        changes = {k: v for k, v in (("scale", scale), ("order", order)) if v is not None}
        if changes:
            cfg = validate_config(dataclasses.replace(cfg, **changes), "command line")
    except (ConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    return cfg


def _center_crop(img, size: int):
    h, w = img.shape[:2]
    if size <= 0 or (h <= size and w <= size):
        return img
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return img[y0:y0 + min(size, h), x0:x0 + min(size, w)]


def _check_out(out: Path) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise click.ClickException(f"{out}: the folder {parent} does not exist")


@click.command("preview", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("img", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sample", "sample_name", default=None, metavar="NAME",
              help="Use a photo bundled with scikit-image instead of IMG (astronaut, coffee, chelsea, rocket, "
                   "motorcycle_left, ...).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="TOML degradation config (see `degradekit config show`).")
@click.option("--preset", "preset_name", default="realesrgan", show_default=True,
              help="Preset when no --config (realesrgan, realesrgan-x2, realworld, realworld-x2, bsrgan, "
                   "bsrgan-x2, bsrgan-x3, bsrgan-plus, bsrgan-plus-x2).")
@click.option("--scale", type=click.Choice(["1", "2", "3", "4"]), default=None,
              help="Override the config's scale (3: the bsrgan presets only).")
@click.option("--order", type=click.IntRange(1, 8), default=None, help="Override the config's order.")
@click.option("--seeds", type=click.IntRange(1, 64), default=4, show_default=True, help="Rows (one seed each).")
@click.option("--seed", "first_seed", type=click.IntRange(0), default=0, show_default=True,
              help="First seed; rows use SEED, SEED+1, ...")
@click.option("--crop", type=click.IntRange(0), default=400, show_default=True,
              help="Centre crop of the image used as HR (0: whole image).")
@click.option("--stats", type=click.IntRange(1, 1_000_000), default=None, metavar="N",
              help="Instead of a sheet: sample N parameter records and draw a histogram of each parameter.")
@click.option("--pool", "pool_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A kernel/noise pool: passed to the sampler, and without IMG/--stats its kernels and noise "
                   "patches are drawn as sheets.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("preview.png"),
              show_default=True, help="Output PNG.")
@click.option("--quiet", is_flag=True, help="Do not print the parameter table.")
def preview(img, sample_name, config_file, preset_name, scale, order, seeds, first_seed, crop, stats, pool_dir,
            out, quiet):
    """Show what a degradation config does, before a multi-day run.

    \b
    degradekit preview img.png --seeds 4 --out sheet.png     one row per seed: HR, every stage, LR, kernels
    degradekit preview --stats 10000 --out stats.png         histogram of every drawn parameter
    degradekit preview --pool POOL/ --out pool.png           the pool's kernels and noise patches
    """
    import numpy as np

    from degradekit import preview as pv
    from degradekit.imageio import ImageError, read_image, write_png

    cfg = _load_cfg(config_file, preset_name, None if scale is None else int(scale), order)
    _check_out(out)
    from degradekit.bsrgan import BsrganConfig

    bs = isinstance(cfg, BsrganConfig)  # (bsrgan) no pool, its own sampler and sheet
    if bs and pool_dir is not None:
        raise click.ClickException("--pool is not used by the bsrgan pipeline")
    pool = None
    if pool_dir is not None:
        from degradekit.pool import Pool, PoolError

        try:
            pool = Pool.load(pool_dir, scale=cfg.scale)
        except PoolError as e:
            raise click.ClickException(str(e)) from None
    from degradekit.pipeline import check_pool

    try:
        if not bs:
            check_pool(cfg, pool)  # before any work: a config that needs a pool gets one
    except ValueError as e:
        where = config_file or f"--preset {preset_name}"
        raise click.ClickException(f"{where}: {e}{'' if pool is not None else ' (add --pool POOL/)'}") from None

    if stats is not None:
        if img is not None or sample_name is not None:
            raise click.ClickException("--stats samples parameters only: give no IMG/--sample with it")
        from degradekit.pipeline import sample

        from degradekit.progress import Progress

        rng = np.random.default_rng(first_seed)
        prog = Progress(stats, "sampling", unit="record")
        records = []
        for i in range(stats):
            if bs:
                from degradekit.bsrgan.preview import plot_values
                from degradekit.bsrgan import sample_bsrgan

                records.append(plot_values(sample_bsrgan(rng, cfg)))
            else:
                records.append(sample(rng, cfg, pool).to_dict())
            if i % 1000 == 999 or i == stats - 1:
                prog.update(i + 1 - prog.n)
        prog.close()
        write_png(out, pv.param_histograms(records))
        click.echo(f"wrote {out}: histograms of {stats} parameter records")
        return

    if img is None and sample_name is None:
        if pool is None:
            raise click.ClickException("give an image (IMG), --sample NAME, --stats N or --pool POOL/")
        from degradekit.pool.sheets import kernel_grid, noise_sheet

        kpath = out.with_name(out.stem + "-kernels.png")
        npath = out.with_name(out.stem + "-noise.png")
        kernel_grid(pool, kpath)
        noise_sheet(pool, npath)
        click.echo(f"wrote {kpath} and {npath}")
        return
    if img is not None and sample_name is not None:
        raise click.ClickException("give either IMG or --sample, not both")

    if sample_name is not None:
        import skimage

        path = Path(skimage.__file__).parent / "data" / sample_name
        cands = [p for p in (path, path.with_suffix(".png"), path.with_suffix(".jpg")) if p.is_file()]
        if not cands:
            raise click.ClickException(f"--sample {sample_name}: no such photo in scikit-image's data folder")
        img = cands[0]
    try:
        hr = read_image(img)
    except ImageError as e:
        raise click.ClickException(str(e)) from None
    full_hw = hr.shape[:2]
    hr = np.ascontiguousarray(_center_crop(hr, crop))
    if min(hr.shape[:2]) < 21 or min(hr.shape[:2]) < 4 * cfg.scale:
        crop_note = f" (its crop is {hr.shape[1]}x{hr.shape[0]})" if hr.shape[:2] != full_hw else ""
        raise click.ClickException(f"{img}: {full_hw[1]}x{full_hw[0]} is too small{crop_note} (at least 21x21 px)")
    from degradekit.config import ConfigError, check_size_bound

    try:
        if not bs:
            check_size_bound(cfg, hr.shape[:2], config_file or f"--preset {preset_name}")
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    seed_list = list(range(first_seed, first_seed + seeds))
    if bs:
        from degradekit.bsrgan.preview import contact_sheet as bsrgan_sheet

        sheet, records = bsrgan_sheet(hr, cfg, seed_list)
    else:
        sheet, records = pv.contact_sheet(hr, cfg, seed_list, pool=pool)
    write_png(out, sheet)
    if not quiet:
        click.echo(pv.params_table(records, seed_list))
    click.echo(f"wrote {out}: {len(seed_list)} rows, {sheet.shape[1]}x{sheet.shape[0]} px")
