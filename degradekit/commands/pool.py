"""`degradekit pool`: build RealSR kernel/noise pools from real photos (`pool build`), inspect them (`pool info`)."""
from __future__ import annotations

import json
import os

import click


@click.group("pool", context_settings={"help_option_names": ["-h", "--help"]})
def pool():
    """Kernel/noise pools (Ji et al., RealSR): KernelGAN kernels and flat-patch noise of real photos.

    \b
    degradekit pool build --src PHOTOS/ --out POOL/          estimate a pool (resumable)
    degradekit pool info POOL/                               counts, outliers, widths
    degradekit synth --pool POOL/ --preset realsr ...        degrade with it
    degradekit preview --pool POOL/ --out pool.png           look at its kernels and noise
    """


@pool.command("build", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--src", required=True, metavar="SRC",
              help="Photos of the source domain: a directory (recursive), a glob, a text file listing paths, "
                   "or `sample` (scikit-image's photos).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Pool folder (created or resumed).")
@click.option("--scale", type=click.Choice(["2", "4"]), default="4", show_default=True,
              help="4: x2 kernels and the x4 kernels composed from them; 2: x2 kernels only.")
@click.option("--iters", type=click.IntRange(50, 100000), default=3000, show_default=True,
              help="KernelGAN iterations per image at most (early stopping ends most runs after 650-1150).")
@click.option("--no-early-stop", is_flag=True, help="Always run --iters iterations.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Seed; each image's seed derives from it and the image's sha256.")
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="KernelGAN processes, one torch thread each [default: all cores; 1 with --device cuda].")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--shape", type=click.Choice(["spectral", "kernelgan"]), default="spectral", show_default=True,
              help="spectral: give each KernelGAN kernel the blur covariance (width, elongation, angle) fitted to "
                   "the photo's power spectrum, which KernelGAN alone does not recover; kernelgan: keep the "
                   "KernelGAN kernels as they are (the original method).")
@click.option("--no-kernels", is_flag=True, help="Skip KernelGAN (noise pool only).")
@click.option("--no-noise", is_flag=True, help="Skip the noise patches (kernel pool only).")
@click.option("--noise-var-max", type=click.FloatRange(0, None, min_open=True), default=20.0, show_default=True,
              help="Keep a patch when its gray variance (grey levels^2) is below this.")
@click.option("--noise-mean-min", type=click.FloatRange(0, 255, max_open=True), default=0.0, show_default=True,
              help="... and its gray mean above this (50 drops dark patches of phone photos).")
@click.option("--noise-patch", type=click.IntRange(8, 4096), default=256, show_default=True,
              help="Noise patch size and stride (px).")
def build(src, out, scale, iters, no_early_stop, seed, workers, device, shape, no_kernels, no_noise,
          noise_var_max, noise_mean_min, noise_patch):
    """Estimate a kernel/noise pool from photos: one KernelGAN kernel per photo, its flat patches as noise.

    Writes OUT/kernels.npz, OUT/kernels/<id>.json (quality record per kernel), OUT/noise/*.png and
    OUT/pool.json. Interrupted runs resume: images already done are skipped. Unreadable photos are skipped
    and listed in pool.json with the reason.
    """
    from degradekit.pool import PoolError
    from degradekit.pool.build import BuildSettings, build_pool, list_sources
    from degradekit.pool.kernelgan import KernelGANConfig
    from degradekit.pool.noise import NoiseConfig

    if no_kernels and no_noise:
        raise click.UsageError("--no-kernels and --no-noise together leave nothing to build")
    try:
        kcfg = KernelGANConfig(iters=iters, early_stop=not no_early_stop, min_iters=min(600, iters))
        settings = BuildSettings(scale=int(scale), seed=seed, kernels=not no_kernels, noise=not no_noise,
                                 kernelgan=kcfg, noise_cfg=NoiseConfig(var_max=noise_var_max,
                                                                       mean_min=noise_mean_min, patch=noise_patch),
                                 device=device, shape=shape)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise click.ClickException("--device cuda: torch sees no CUDA device (this torch build: "
                                       f"{torch.__version__})")
    try:
        sources = list_sources(src)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if workers is None:
        workers = 1 if device == "cuda" else (os.cpu_count() or 1)
    from degradekit.synth.procs import interrupt_exit_code, sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():  # SIGTERM: like Ctrl-C (workers stopped, their temporaries removed)
            meta = build_pool(sources, out, settings, workers=workers, echo=lambda s: click.echo(s, err=True))
    except PoolError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt as e:
        code = interrupt_exit_code(e)
        click.echo(f"pool build: {'terminated (SIGTERM)' if code == 143 else 'interrupted'}; finished photos in "
                   f"{out} are kept, run the same command to resume", err=True)
        raise SystemExit(code) from None
    c = meta["counts"]
    click.echo(f"wrote {out}: {c['kernels_usable']} usable kernels ({c['outliers']} outliers), "
               f"{c['noise_patches']} noise patches, {c['sources_ok']} of {c['sources']} photos used")
    for r in meta["rejected"]:
        click.echo(f"  rejected {r['kind']} {r['item']}: {r['reason']}", err=True)
    if c["kernels_usable"] == 0 and c["noise_patches"] == 0:
        raise click.ClickException(f"{out}: the pool is empty (no usable kernel, no flat patch); see pool.json")


@pool.command("info", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("pool_dir", metavar="POOL", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print pool.json's counts and per-kernel records as JSON.")
def info(pool_dir, as_json):
    """Summarise a pool: counts, kernel widths/orientations, outliers, rejected photos."""
    from degradekit.pool import Pool, PoolError

    try:
        p = Pool.load(pool_dir, include_outliers=True)
    except PoolError as e:
        raise click.ClickException(str(e)) from None
    meta = p.meta
    rows = []
    for kid in meta["kernels"]["ids"]:
        try:
            rec = p.kernel_record(kid)  # type-checked
        except PoolError as e:
            raise click.ClickException(str(e)) from None
        q = rec["quality"]
        shape = rec.get("shape") or {"method": "kernelgan"}  # pools built before --shape existed
        rows.append({"id": kid, "sigma_major": q["sigma_major"], "sigma_minor": q["sigma_minor"],
                     "theta": q["theta"], "raw_sum": q["raw_sum"], "shape": shape["method"],
                     "shape_note": shape.get("kept_kernelgan") or shape.get("floor"), "outlier": q["outlier"]})
    if as_json:
        click.echo(json.dumps({"counts": meta.get("counts", {}), "digest": p.digest(), "kernels": rows,
                               "rejected": meta.get("rejected", [])}, indent=1))
        return
    c = {k: 0 for k in ("kernels", "outliers", "noise_patches", "sources_ok", "sources")}
    c.update(meta.get("counts", {}))
    click.echo(f"{pool_dir}: {c['kernels']} kernels ({c['outliers']} outliers) at "
               f"{', '.join('x%d' % s for s in meta['kernels']['scales']) or 'no scale'}; "
               f"{c['noise_patches']} noise patches; {c['sources_ok']}/{c['sources']} photos; sha256 {p.digest()[:16]}")
    for r in rows:
        flag = "  OUTLIER: " + "; ".join(r["outlier"]) if r["outlier"] else ""
        click.echo(f"  {r['id']}: sigma {r['sigma_major']:.2f}/{r['sigma_minor']:.2f} px, theta {r['theta']:.0f} deg, "
                   f"shape {r['shape']}{' (' + r['shape_note'] + ')' if r['shape_note'] else ''}, "
                   f"raw sum {r['raw_sum']:.3f}{flag}")
    for r in meta.get("rejected", []):
        if r["kind"] != "kernel":
            click.echo(f"  rejected {r['kind']} {r['item']}: {r['reason']}")
