"""`trainer fit SHARDS... --stage esrnet|esrgan --out RUN/` (or `--pairs HR LR`): train one stage."""
from __future__ import annotations

from dataclasses import replace

import click

# config keys a command-line option sets (named in the one-line refusals on resume)
_OPTION_OF = {"data.batch_size": "--batch-size", "data.gt_size": "--gt-size", "data.num_workers": "--workers",
              "seed": "--seed", "scale": "--scale", "net.num_feat": "--num-feat", "net.num_block": "--num-block",
              "net.num_grow_ch": "--num-grow-ch"}


@click.command("fit")
@click.argument("shards", nargs=-1, required=False)
@click.option("--pairs", "pairs", nargs=2, type=click.Path(exists=True), default=None, metavar="HR LR",
              help="Paired data instead of SHARDS: HR and LR each a folder of images (paired by stem) or a BasicSR "
                   "LMDB folder.")
@click.option("--meta-info", type=click.Path(dir_okay=False, exists=True), default=None,
              help="meta_info file selecting the --pairs (Real-ESRGAN 'hr, lr' lines or BasicSR 'NAME ...').")
@click.option("--val-pairs", nargs=2, type=click.Path(exists=True), default=None, metavar="HR LR",
              help="Held-out paired data for validation (instead of --val).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Run folder (RUN/<stage>/ is written).")
@click.option("--stage", type=click.Choice(["esrnet", "esrgan"]), default=None,
              help="esrnet: L1 only; esrgan: L1 + perceptual + GAN (start it from --init RUN/esrnet/net_g_N.pth) "
                   "[default: esrnet; with --resume the checkpoint's].")
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
@click.option("--init-d", "init_d", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Discriminator weights to start from (fine-tuning; params/params_ema/bare), loaded strictly.")
@click.option("--resume", type=click.Path(exists=True), default=None,
              help="Checkpoint (RUN/<stage>/checkpoints/step-N.pth) or its folder (latest one) to continue.")
@click.option("--force", is_flag=True, default=False,
              help="Resume from an older checkpoint: the later ones are moved to RUN/<stage>/superseded/.")
@click.option("--max-bad-samples", type=click.IntRange(min=0), default=None,
              help="Corrupt samples skipped over the run before it stops [default: 100].")
@click.option("--vgg-weights", type=click.Path(dir_okay=False), default=None,
              help="torchvision vgg19-dcbb9e9d.pth (else $DEGRADEKIT_VGG19, else the torch hub cache).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
              help="Autocast precision (CUDA).")
@click.option("--channels-last/--no-channels-last", default=None, help="channels_last memory format (CUDA).")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the networks.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of init, data order and augmentation.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... [default: cuda:LOCAL_RANK if available].")
@click.option("--tensorboard/--no-tensorboard", default=True, show_default=True, help="Write TensorBoard logs.")
def fit(shards, pairs, meta_info, val_pairs, out, stage, preset, config_path, scale, iters, batch_size, gt_size,
        workers, lr, num_feat, num_block, num_grow_ch, val_shards, val_every, save_every, log_every, init, init_d,
        resume, force, max_bad_samples, vgg_weights, precision, channels_last, compile_, seed, device, tensorboard):
    """Train Real-ESRNet (--stage esrnet) or Real-ESRGAN (--stage esrgan) on degradekit shards or paired images.

    SHARDS are tar files, folders of them, globs, brace ranges (shard-{000000..000009}.tar), pipe:CMD or
    http(s) URLs; or give --pairs HR LR. Multi-GPU: `torchrun --nproc_per_node N $(which trainer) fit ...`.
    Ctrl-C / SIGTERM save a checkpoint of the last completed step (exit 130 / 143).
    """
    from trainer.checkpoint import WeightError, load_checkpoint
    from trainer.config import ConfigError, config_from_dict, load_config, preset as make_preset, validate
    from trainer.data import ShardError
    from trainer.train import TrainingError, TrainingInterrupted, fit as run_fit, latest_checkpoint, resume_conflicts

    saved = None
    try:
        if bool(shards) == bool(pairs):
            raise click.UsageError("give SHARDS or --pairs HR LR (one of them)")
        if meta_info and not pairs:
            raise click.UsageError("--meta-info selects --pairs: give --pairs HR LR too")
        if val_shards and val_pairs:
            raise click.UsageError("give --val or --val-pairs, not both")
        if resume:
            rp = latest_checkpoint(resume)
            resume = str(rp)
            for opt, v in (("--config", config_path), ("--init", init), ("--init-d", init_d)):
                if v:
                    raise click.ClickException(f"{rp}: {opt} cannot be used with --resume (the checkpoint's config "
                                               "and weights are the truth; start a new run to change them)")
            saved = cfg = config_from_dict(load_checkpoint(rp)["config"], where=str(rp))
            stage = stage or cfg.stage.name
            if cfg.stage.name != stage:
                raise click.ClickException(f"{rp}: checkpoint is stage {cfg.stage.name}, not --stage {stage}")
            if preset and preset != cfg.preset:
                raise click.ClickException(f"{rp}: --preset {preset} cannot change on resume: the checkpoint was "
                                           f"trained with preset = {cfg.preset!r}")
        stage = stage or "esrnet"
        if not resume:
            cfg = (load_config(config_path, stage=stage, preset=preset) if config_path
                   else make_preset(preset or "realesrgan", stage))
        if cfg.stage.name != stage:
            raise click.ClickException(f"{config_path}: stage.name is {cfg.stage.name!r} but --stage is {stage}")
        st, data, net = cfg.stage, cfg.data, cfg.net
        if iters is not None:
            st = replace(st, iters=iters)
        if lr is not None:
            st = replace(st, optim=replace(st.optim, lr_g=lr))
        data = replace(data, **{k: v for k, v in (("batch_size", batch_size), ("gt_size", gt_size),
                                                   ("num_workers", workers), ("max_bad_samples", max_bad_samples))
                                if v is not None})
        net = replace(net, **{k: v for k, v in (("num_feat", num_feat), ("num_block", num_block),
                                                 ("num_grow_ch", num_grow_ch)) if v is not None})
        top = {k: v for k, v in (("scale", None if scale is None else int(scale)), ("val_every", val_every),
                                  ("save_every", save_every), ("log_every", log_every), ("precision", precision),
                                  ("channels_last", channels_last), ("compile", compile_), ("seed", seed))
               if v is not None}
        cfg = validate(replace(cfg, stage=st, data=data, net=net, **top), "options")
        if saved is not None:
            for key, old, new in resume_conflicts(saved, cfg):
                opt = _OPTION_OF.get(key)
                what = f"{opt} {new}" if opt else key
                raise click.ClickException(f"{resume}: {what} cannot change on resume: the checkpoint was trained "
                                           f"with {key} = {old!r} (start a new run, e.g. from its net_g_N.pth with "
                                           "--init, to change it)")
        src = val_src = None
        if pairs:
            from trainer.pairs import PairSource
            src = PairSource.open(*pairs, meta_info=meta_info)
        if val_pairs:
            from trainer.pairs import PairSource
            val_src = PairSource.open(*val_pairs)
        summary = run_fit(list(shards), cfg=cfg, out=out, val_shards=list(val_shards) or None, pairs=src,
                          val_pairs=val_src, init=init, init_d=init_d, resume=resume, force=force,
                          vgg_weights=vgg_weights, device=device, tensorboard=tensorboard)
    except TrainingInterrupted as e:
        click.echo(str(e), err=True)
        click.get_current_context().exit(128 + e.signum)
    except (ConfigError, ShardError, WeightError, TrainingError) as e:
        raise click.ClickException(str(e)) from None
    msg = f"done: stage {cfg.stage.name} step {summary['step']} -> {summary['run_dir']}"
    if "val_psnr" in summary:
        msg += f" | val PSNR {summary['val_psnr']:.3f} dB SSIM {summary['val_ssim']:.4f}"
    click.echo(msg)
