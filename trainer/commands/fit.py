"""`trainer fit SHARDS... --stage esrnet|esrgan --out RUN/`: train one stage."""
from __future__ import annotations

from dataclasses import replace

import click


@click.command("fit")
@click.argument("shards", nargs=-1, required=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Run folder (RUN/<stage>/ is written).")
@click.option("--stage", type=click.Choice(["esrnet", "esrgan"]), default="esrnet", show_default=True,
              help="esrnet: L1 only; esrgan: L1 + perceptual + GAN (start it from --init RUN/esrnet/net_g_N.pth).")
@click.option("--preset", type=click.Choice(["realesrgan", "esrgan"]), default=None,
              help="Published settings (default realesrgan; a --config file may name its own).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML file overriding the preset (unknown keys are rejected).")
@click.option("--scale", type=click.Choice(["1", "2", "4"]), default=None, help="Upscaling factor [default: 4].")
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Training iterations of this stage.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch per process.")
@click.option("--gt-size", type=click.IntRange(min=8), default=None, help="HR crop size (LR crop = gt-size / scale).")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Loader worker processes per process.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Generator learning rate.")
@click.option("--num-feat", type=click.IntRange(min=1), default=None, help="RRDBNet width (64 published).")
@click.option("--num-block", type=click.IntRange(min=1), default=None, help="RRDB blocks (23 published).")
@click.option("--num-grow-ch", type=click.IntRange(min=1), default=None, help="RDB growth channels (32 published).")
@click.option("--val", "val_shards", multiple=True, help="Held-out shards for validation (repeatable).")
@click.option("--val-every", type=click.IntRange(min=1), default=None, help="Validate every N steps.")
@click.option("--save-every", type=click.IntRange(min=1), default=None, help="Checkpoint every N steps.")
@click.option("--log-every", type=click.IntRange(min=1), default=None, help="Log every N steps.")
@click.option("--init", "init", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Generator weights to start from (params_ema/params/bare, .pth or .safetensors).")
@click.option("--resume", type=click.Path(exists=True), default=None,
              help="Checkpoint (RUN/<stage>/checkpoints/step-N.pth) or its folder (latest one) to continue.")
@click.option("--vgg-weights", type=click.Path(dir_okay=False), default=None,
              help="torchvision vgg19-dcbb9e9d.pth (else $DEGRADEKIT_VGG19, else the torch hub cache).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
              help="Autocast precision (CUDA).")
@click.option("--channels-last/--no-channels-last", default=None, help="channels_last memory format (CUDA).")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the networks.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of init, data order and augmentation.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... [default: cuda:LOCAL_RANK if available].")
@click.option("--tensorboard/--no-tensorboard", default=True, show_default=True, help="Write TensorBoard logs.")
def fit(shards, out, stage, preset, config_path, scale, iters, batch_size, gt_size, workers, lr, num_feat,
        num_block, num_grow_ch, val_shards, val_every, save_every, log_every, init, resume, vgg_weights, precision,
        channels_last, compile_, seed, device, tensorboard):
    """Train Real-ESRNet (--stage esrnet) or Real-ESRGAN (--stage esrgan) on degradekit shards.

    SHARDS are tar files, folders of them, globs, brace ranges (shard-{000000..000009}.tar), pipe:CMD or
    http(s) URLs. Multi-GPU: `torchrun --nproc_per_node N $(which trainer) fit ...`.
    """
    from pathlib import Path

    from trainer.checkpoint import WeightError, load_checkpoint
    from trainer.config import ConfigError, config_from_dict, load_config, preset as make_preset, validate
    from trainer.data import ShardError
    from trainer.train import TrainingError, fit as run_fit

    try:
        if resume:
            rp = Path(resume)
            if rp.is_dir():
                cands = sorted((rp / "checkpoints").glob("step-*.pth")) or sorted(rp.glob("step-*.pth"))
                if not cands:
                    raise click.ClickException(f"{rp}: no checkpoints/step-*.pth to resume from")
                rp = cands[-1]
            resume = str(rp)
            cfg = config_from_dict(load_checkpoint(rp)["config"], where=str(rp))
            if cfg.stage.name != stage:
                raise click.ClickException(f"{rp}: checkpoint is stage {cfg.stage.name}, not --stage {stage}")
        elif config_path:
            cfg = load_config(config_path, stage=stage)
            if preset and cfg.preset != preset:
                cfg = config_from_dict({**cfg.to_dict(), "preset": preset}, where=config_path, stage=stage)
        else:
            cfg = make_preset(preset or "realesrgan", stage)
        if cfg.stage.name != stage:
            raise click.ClickException(f"{config_path}: stage.name is {cfg.stage.name!r} but --stage is {stage}")
        st, data, net = cfg.stage, cfg.data, cfg.net
        if iters is not None:
            st = replace(st, iters=iters)
        if lr is not None:
            st = replace(st, optim=replace(st.optim, lr_g=lr))
        data = replace(data, **{k: v for k, v in (("batch_size", batch_size), ("gt_size", gt_size),
                                                   ("num_workers", workers)) if v is not None})
        net = replace(net, **{k: v for k, v in (("num_feat", num_feat), ("num_block", num_block),
                                                 ("num_grow_ch", num_grow_ch)) if v is not None})
        top = {k: v for k, v in (("scale", None if scale is None else int(scale)), ("val_every", val_every),
                                  ("save_every", save_every), ("log_every", log_every), ("precision", precision),
                                  ("channels_last", channels_last), ("compile", compile_), ("seed", seed))
               if v is not None}
        cfg = validate(replace(cfg, stage=st, data=data, net=net, **top), "options")
        summary = run_fit(list(shards), cfg=cfg, out=out, val_shards=list(val_shards) or None, init=init,
                          resume=resume, vgg_weights=vgg_weights, device=device, tensorboard=tensorboard)
    except (ConfigError, ShardError, WeightError, TrainingError) as e:
        raise click.ClickException(str(e)) from None
    msg = f"done: stage {cfg.stage.name} step {summary['step']} -> {summary['run_dir']}"
    if "val_psnr" in summary:
        msg += f" | val PSNR {summary['val_psnr']:.3f} dB SSIM {summary['val_ssim']:.4f}"
    click.echo(msg)
