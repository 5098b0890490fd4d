"""`degradekit synth`: render a photo collection into WebDataset shards of HR/LR pairs."""
from __future__ import annotations

import os
import sys

import click

_EXIT_DOC = "Exit status: 0 all inputs used, 3 finished but some inputs were skipped (listed in the manifest), " \
            "1 error (finished shards are kept), 2 bad options."


@click.command("synth", context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EXIT_DOC)
@click.option("--src", required=True, metavar="SRC",
              help="Photos: a directory (recursive), a glob, a text file listing paths, `sample` (scikit-image's "
                   "photos) or a dataset name: DF2K, DIV2K, Flickr2K, OST (under --data-root).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder for the shards.")
@click.option("--data-root", default=None, type=click.Path(file_okay=False),
              help="Root of the named datasets [default: $DEGRADEKIT_DATA, else ~/.cache/degradekit/data].")
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False),
              help="Degradation config (TOML); see `degradekit config show`.")
@click.option("--preset", "preset_name", default=None,
              help="Named degradation preset [default: realesrgan]: `realesrgan`, `realesrgan-x2`, `realworld`, "
                   "`realworld-x2` (the mixed codecs/filters vocabulary); `realsr` (with --pool) for the RealSR "
                   "pipeline of Ji et al.; `bsrgan`, `bsrgan-x2`, `bsrgan-x3`, `bsrgan-plus`, `bsrgan-plus-x2` "
                   "for the BSRGAN model.")
@click.option("--pool", "pool_path", default=None, type=click.Path(file_okay=False),
              help="Kernel/noise pool folder (`degradekit pool build`): used by --preset realsr, or by a config "
                   "whose kernel/noise pool_prob > 0.")
@click.option("--order", type=click.IntRange(1, 16), default=None, help="Degradation order (overrides the config).")
@click.option("--scale", type=click.Choice(["1", "2", "3", "4"]), default=None,
              help="LR = HR // scale (overrides the config; 3: the bsrgan presets only).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="Global seed.")
@click.option("--patch", type=click.IntRange(21, 4096), default=400, show_default=True, help="HR crop size.")
@click.option("--step", type=click.IntRange(1, 4096), default=200, show_default=True, help="Crop step.")
@click.option("--min-size", type=click.IntRange(0, 100000), default=0, show_default=True,
              help="Skip sources / scaled copies whose shortest edge is below this (0: pad them by reflection; "
                   "images under 21 px are always skipped).")
@click.option("--multiscale", default=None, metavar="F,F,...",
              help="Lanczos copies of each source, e.g. 1,0.75,0.5,0.333 (1 = the original) [default: 1].")
@click.option("--shortest-edge", type=click.IntRange(21, 100000), default=None,
              help="Also a copy whose shortest edge is this many px (e.g. 400, as the reference).")
@click.option("--variants", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Independent LR draws per HR patch (KEY.lr0 ... KEY.lr{K-1}).")
@click.option("--shard-size", type=click.IntRange(1, 10**7), default=1000, show_default=True,
              help="Samples per shard.")
@click.option("--png-level", type=click.IntRange(0, 12), default=1, show_default=True,
              help="PNG compression level (docs/performance.md): 1 (Paeth filter + our Huffman-only deflate coder) "
                   "is the measured best trade-off; 0 stores the PNGs uncompressed (~1.7x bytes); 2-12 use "
                   "libdeflate (Up filter): a few % fewer bytes for several times the time.")
@click.option("--max-pixels", type=click.IntRange(1, None), default=100_000_000, show_default=True,
              help="Refuse source images larger than this (decompression bombs).")
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="Worker processes [default: all cores].")
@click.option("--part", default=None, metavar="I/N",
              help="Render only part I of N (1-based; a contiguous block of shards) for N machines; join the "
                   "manifests with `degradekit manifest merge`.")
@click.option("--strict", is_flag=True, help="Stop at the first unusable input instead of skipping it.")
@click.option("--progress", type=click.Choice(["auto", "bar", "lines", "none"]), default="auto", show_default=True,
              help="Progress display (auto: a bar on a terminal, plain lines otherwise).")
@click.option("--dry-run", is_flag=True,
              help="Scan the sources and print the sample / shard counts without writing anything.")
def synth(src, out, data_root, config_file, preset_name, pool_path, order, scale, seed, patch, step, min_size,
          multiscale, shortest_edge, variants, shard_size, png_level, max_pixels, workers, part, strict, progress,
          dry_run):
    """Render LR/HR training pairs from photos into WebDataset shards (OUT/shard-*.tar + OUT/manifest.json).

    Every LR can be regenerated exactly from its KEY.json (`degradekit replay`); shard bytes depend only on
    the sources, the settings and --seed, whatever --workers; a killed run resumes with the same command.

    \b
    degradekit synth --src sample --out shards/
    degradekit synth --order 2 --src DF2K --out shards/ --multiscale 1,0.75,0.5,0.333 --shortest-edge 400
    """
    from degradekit.synth.run import SynthError, parse_part, run_synth
    from degradekit.synth.sources import SourceError, resolve_sources

    settings = build_settings(config_file=config_file, preset_name=preset_name, pool_path=pool_path, order=order,
                              scale=scale,
                              seed=seed, patch=patch, step=step, min_size=min_size, multiscale=multiscale,
                              shortest_edge=shortest_edge, variants=variants, shard_size=shard_size,
                              png_level=png_level, max_pixels=max_pixels)
    try:
        part_t = parse_part(part)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--part") from None
    try:
        sources = resolve_sources(src, data_root_value=data_root)
    except SourceError as e:
        raise click.ClickException(str(e)) from None
    log = lambda s: click.echo(s, err=True)  # noqa: E731
    if dry_run:
        from degradekit.synth.run import part_shards, plan_dataset

        try:
            plan = plan_dataset(sources, settings, workers=workers, strict=strict, progress=progress, log=log)
        except SynthError as e:
            raise click.ClickException(str(e)) from None
        mine = part_shards(plan.n_shards, part_t)
        n = sum(len(plan.shard_range(i)) for i in mine)
        click.echo(f"dry run: {len(plan.sources)} sources used, {len(plan.skipped)} skipped; {plan.n_samples} "
                   f"samples in {plan.n_shards} shards of {settings.shard_size}; this "
                   f"{'part' if part_t else 'run'}: {len(mine)} shards, {n} samples, {n * settings.variants} pairs "
                   f"(HR {settings.patch}px, LR {settings.patch // settings.scale}px); nothing written")
        sys.exit(3 if plan.skipped else 0)
    from degradekit.synth.procs import interrupt_exit_code, sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():  # SIGTERM: the same clean-up as Ctrl-C (workers stopped, temporaries removed)
            res = run_synth(sources, settings, out, workers=workers, part=part_t, strict=strict,
                            progress=progress, log=log, pool_path=pool_path)
    except SynthError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt as e:
        code = interrupt_exit_code(e)
        click.echo(f"synth: {'terminated (SIGTERM)' if code == 143 else 'interrupted'}; complete shards in {out} "
                   f"are kept, run the same command to resume", err=True)
        sys.exit(code)
    m = res.manifest
    t = m["totals"]
    rate = res.pairs / res.seconds if res.seconds > 0 else 0.0
    what = f"part {part_t[0]}/{part_t[1]}: " if part_t else ""
    click.echo(f"synth: {what}{t['shards']} shards, {t['samples']} samples, {t['pairs']} pairs, "
               f"{t['bytes'] / 1e6:.1f} MB in {out} ({len(res.rendered)} rendered, {len(res.resumed)} already "
               f"complete); {res.pairs} pairs in {res.seconds:.1f} s ({rate:.1f} pairs/s); "
               f"{len(m['sources']['files'])} sources used, {len(m['skipped'])} skipped; "
               f"manifest {res.manifest_path}", err=True)
    if m["skipped"]:
        click.echo(f"synth: {len(m['skipped'])} input(s) skipped (see 'skipped' in {res.manifest_path}); "
                   f"exit status 3", err=True)
    sys.exit(res.exit_code)


def build_settings(*, config_file, preset_name, order, scale, seed, patch, step, min_size, multiscale,
                   shortest_edge, variants, shard_size, png_level, max_pixels, pool_path=None):
    """Validate options into Settings before any work; raises click.BadParameter / ClickException."""
    import dataclasses

    from degradekit.config import ConfigError, load_config, preset, stage_config, validate_config
    from degradekit.synth.plan import Settings
    from degradekit.synth.prepare import parse_multiscale

    if config_file and preset_name:
        raise click.UsageError("use --config or --preset, not both (a config file names its preset itself)")
    pipeline, pool_rec = "realesrgan", None
    from degradekit.bsrgan import is_bsrgan_toml  # (bsrgan) a TOML with pipeline = "bsrgan"

    if preset_name == "realsr":
        from degradekit.pool.realsr import realsr_preset

        if pool_path is None:
            raise click.UsageError("--preset realsr needs --pool POOL/ (build one with `degradekit pool build`)")
        if order is not None:
            raise click.UsageError("--order does not apply to --preset realsr (one blur + decimation + noise)")
        if scale in ("1", "3"):
            raise click.BadParameter("the realsr pipeline supports scale 2 or 4", param_hint="--scale")
        try:
            cfg = realsr_preset(int(scale or 4))
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        pipeline = "realsr"
    elif ((preset_name or "").startswith("bsrgan")  # --- bsrgan pipeline (owner: bsrgan)
          or (config_file and is_bsrgan_toml(config_file))):
        from degradekit.bsrgan import bsrgan_preset, load_bsrgan_config

        if order is not None:
            raise click.UsageError("--order does not apply to the bsrgan pipeline (BSRGAN shuffles its ops)")
        if pool_path is not None:
            raise click.UsageError("--pool is not used by the bsrgan pipeline")
        if scale == "1":
            raise click.BadParameter("the bsrgan pipeline supports scale 2, 3 or 4", param_hint="--scale")
        try:
            if config_file:
                cfg = load_bsrgan_config(config_file)
                cfg = cfg if scale is None else dataclasses.replace(cfg, scale=int(scale))
            else:
                cfg = bsrgan_preset(preset_name, None if scale is None else int(scale))
        except ValueError as e:
            raise click.ClickException(str(e) if config_file else f"--preset {preset_name}: {e}") from None
        pipeline = "bsrgan"  # --- end bsrgan
    else:
        if scale == "3":  # (bsrgan) x3 exists for the bsrgan presets only
            raise click.BadParameter("3 is available with the bsrgan presets only", param_hint="--scale")
        try:
            cfg = load_config(config_file) if config_file else preset(preset_name or "realesrgan")
            changes = {}
            if order is not None:
                changes["order"] = int(order)
            if scale is not None:
                changes["scale"] = int(scale)
            if changes:
                cfg = validate_config(dataclasses.replace(cfg, **changes), "--order/--scale")
            # before any work: the codecs it names are installed, and no intermediate image outgrows the bound
            from degradekit.config import check_size_bound

            where = config_file or f"--preset {preset_name or 'realesrgan'}"
            check_size_bound(validate_config(cfg, where), (patch, patch), where)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
        uses_pool = any((st.blur_prob > 0 and st.kernel.pool_prob > 0) or (st.noise_prob > 0 and st.noise.pool_prob > 0)
                        for st in (stage_config(cfg, i) for i in range(1, cfg.order + 1)))
        if uses_pool and pool_path is None:
            raise click.UsageError("the config draws kernels/noise from a pool (pool_prob > 0): give --pool POOL/")
        if pool_path is not None and not uses_pool:
            raise click.UsageError("--pool is given but the config never uses it: use --preset realsr, or set "
                                   "pool_prob > 0 in [stages.kernel] / [stages.noise]")
    if pool_path is not None:
        from pathlib import Path

        from degradekit.pool import Pool, PoolError

        try:
            pool = Pool.load(pool_path, scale=cfg.scale)
            if pipeline == "realsr":
                from degradekit.pool.realsr import check_pool_for

                check_pool_for(cfg, pool)
        except PoolError as e:
            raise click.ClickException(str(e)) from None
        pool_rec = {"path": str(Path(pool_path).resolve()), "sha256": pool.digest()}
    unit = cfg.scale * (2 if getattr(cfg, "cleanup", False) else 1)
    try:
        factors = parse_multiscale(multiscale)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--multiscale") from None
    if patch % unit:
        why = "the scale x 2 for the clean-up" if unit != cfg.scale else "the scale"
        raise click.BadParameter(f"{patch} is not a multiple of {unit} ({why}; LR = HR // scale must be exact)",
                                 param_hint="--patch")
    return Settings(config=cfg, seed=int(seed), patch=patch, step=step, min_size=min_size, multiscale=factors,
                    shortest_edge=shortest_edge, variants=variants, shard_size=shard_size,
                    png_level=png_level, max_pixels=max_pixels, pipeline=pipeline, pool=pool_rec)


if __name__ == "__main__":  # pragma: no cover
    synth(prog_name=os.path.basename(sys.argv[0]))
