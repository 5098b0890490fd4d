"""The training loop (both stages), top to bottom: setup, data, then per step G step, D step, EMA, logging,
validation and checkpoints. Run under ``torchrun`` for DDP (rank/world from the environment).

Stage esrnet: L1(G(lq), USM(gt)).  Stage esrgan: L1 + perceptual (targets USM(gt)) + GAN (D sees gt), D updated
after G each step, EMA of G after every step (spec/realesrgan-model.md section 4).
"""
from __future__ import annotations

import copy
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from trainer import losses
from trainer.archs import RRDBNet, UNetDiscriminatorSN, VGG19Features, resolve_vgg_weights
from trainer.checkpoint import load_checkpoint, read_state, save_checkpoint, save_weights
from trainer.config import TrainConfig, dump_config, validate
from trainer.data import DataPosition, ShardDataset, expand_urls, iter_val_pairs
from trainer.metrics import psnr, ssim


class TrainingError(RuntimeError):
    """Training cannot continue (repeated non-finite losses, bad resume, ...); one-line message."""


def _fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _to_image(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) float [0, 1] -> uint8 (H, W, 3), rounded and clipped as the saved images are."""
    return (t.float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def validate_model(net: torch.nn.Module, urls: list[str], *, device: torch.device, scale: int,
                   save_dir: Path | None = None, save_images: int = 0, limit: int | None = None) -> dict:
    """PSNR/SSIM (Y, border = scale) of ``net`` on held-out pairs (variant lr0), plus bicubic for reference.
    Saves the first ``save_images`` outputs as PNG into ``save_dir``."""
    import cv2
    from trainer.infer import tiled_forward
    net.eval()
    rows = []
    for i, (key, hr, lr, s) in enumerate(iter_val_pairs(urls, limit)):
        if s != scale:
            raise TrainingError(f"validation sample {key}: scale {s} differs from the training scale {scale}")
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).to(device)
        y = tiled_forward(net, x, scale=scale, tile=512, tile_overlap=32, tile_pad=32)
        out = _to_image(y[0])
        bic = cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC)
        rows.append((psnr(out, hr, crop_border=scale), ssim(out, hr, crop_border=scale),
                     psnr(bic, hr, crop_border=scale)))
        if save_dir is not None and i < save_images:
            save_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(save_dir / f"{key.replace('/', '_')}.png"), out[..., ::-1])
    if not rows:
        raise TrainingError(f"validation shards {urls[:2]} contain no samples")
    a = np.array(rows)
    return {"val_psnr": float(a[:, 0].mean()), "val_ssim": float(a[:, 1].mean()),
            "val_psnr_bicubic": float(a[:, 2].mean()), "val_samples": len(rows)}


def fit(shards, *, cfg: TrainConfig, out: str | os.PathLike, val_shards=None, init: str | None = None,
        resume: str | None = None, vgg_weights: str | None = None, device: str | None = None,
        tensorboard: bool = True, val_limit: int | None = 100) -> dict:
    """Train one stage. Writes into ``out/<stage>/``: config.toml, train.jsonl, train.log, checkpoints/step-N.pth
    (full checkpoints), net_g_N.pth (release-style {params, params_ema}), net_g_ema.safetensors, val/, tb/.
    Returns a summary dict (step, last logged losses, last validation)."""
    validate(cfg)
    # inputs first: a bad path fails before anything is created
    urls = expand_urls(shards)
    val_urls = expand_urls(val_shards) if val_shards else None
    vgg_path = None
    if cfg.stage.loss.perceptual_weight > 0:
        try:
            vgg_path = resolve_vgg_weights(vgg_weights)
        except FileNotFoundError as e:
            raise TrainingError(str(e)) from None
    existing = sorted((Path(out) / cfg.stage.name / "checkpoints").glob("step-*.pth"))
    if existing and not resume:
        raise TrainingError(f"{existing[-1].parent}: already holds checkpoints; continue with --resume "
                            f"{Path(out) / cfg.stage.name} or choose another --out")
    # ------------------------------------------------------------------ distributed / device
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    ddp = world > 1
    if ddp and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() and device != "cpu" else "gloo",
                                init_method="env://")
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if cfg.precision == "fp16" and dev.type != "cuda":
        raise TrainingError("precision fp16 needs a CUDA device (use fp32 or bf16 on CPU)")
    master = rank == 0
    st, lo, op = cfg.stage, cfg.stage.loss, cfg.stage.optim
    run_dir = Path(out) / st.name
    if master:
        run_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(run_dir / "train.log", "a", encoding="utf-8") if master else None
    bar = None

    def log(msg: str) -> None:
        if not master:
            return
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        (bar.write(line, file=sys.stderr) if bar is not None else print(line, file=sys.stderr, flush=True))
        log_file.write(line + "\n")
        log_file.flush()

    # ------------------------------------------------------------------ networks, losses, optimisers
    torch.manual_seed(cfg.seed)          # network init only; nothing else draws from torch's global RNG
    net_g = RRDBNet(scale=cfg.scale, num_feat=cfg.net.num_feat, num_block=cfg.net.num_block,
                    num_grow_ch=cfg.net.num_grow_ch)
    net_d = (UNetDiscriminatorSN(num_feat=cfg.net.d_num_feat, skip_connection=cfg.net.d_skip_connection)
             if st.gan else None)
    if init and not resume:
        state = read_state(init)
        try:
            net_g.load_state_dict(state)
        except RuntimeError as e:
            raise TrainingError(f"{init}: does not fit the configured generator ({str(e).splitlines()[0]})") from None
        log(f"generator initialised from {init}")
    elif st.gan and not resume:
        log("warning: GAN stage without --init (the published recipe starts from the ESRNet EMA weights)")
    net_g.to(dev)
    net_g_ema = copy.deepcopy(net_g).eval().requires_grad_(False)
    percep = None
    if lo.perceptual_weight > 0:
        vgg = VGG19Features()
        try:
            vgg.load_torchvision(vgg_path)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        percep = losses.PerceptualLoss(vgg, lo.layer_weights).to(dev)
    if net_d is not None:
        net_d.to(dev)
    mf = torch.channels_last if cfg.channels_last else torch.contiguous_format
    net_g.to(memory_format=mf)
    net_g_ema.to(memory_format=mf)
    if net_d is not None:
        net_d.to(memory_format=mf)
    if percep is not None:
        percep.to(memory_format=mf)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=op.lr_g, betas=op.betas, weight_decay=op.weight_decay)
    sched_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, list(op.milestones), op.gamma)
    opt_d = sched_d = None
    if net_d is not None:
        opt_d = torch.optim.Adam(net_d.parameters(), lr=op.lr_d, betas=op.betas, weight_decay=op.weight_decay)
        sched_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, list(op.milestones), op.gamma)
    use_scaler = cfg.precision == "fp16"
    scaler_g = torch.amp.GradScaler("cuda", enabled=use_scaler)
    scaler_d = torch.amp.GradScaler("cuda", enabled=use_scaler)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
    autocast = (lambda: torch.autocast(dev.type, dtype=amp_dtype)) if amp_dtype else nullcontext

    # ------------------------------------------------------------------ resume
    step = 0
    nw = cfg.data.num_workers
    position = DataPosition.start(nw)
    if resume:
        ck = load_checkpoint(resume)
        if ck["config"]["stage"]["name"] != st.name or ck["config"]["scale"] != cfg.scale:
            raise TrainingError(f"{resume}: checkpoint is stage {ck['config']['stage']['name']} "
                                f"x{ck['config']['scale']}, not {st.name} x{cfg.scale}")
        net_g.load_state_dict(ck["params"])
        net_g_ema.load_state_dict(ck["params_ema"])
        opt_g.load_state_dict(ck["optim_g"])
        sched_g.load_state_dict(ck["sched_g"])
        scaler_g.load_state_dict(ck["scaler_g"])
        if net_d is not None:
            if ck.get("net_d") is None:
                raise TrainingError(f"{resume}: checkpoint has no discriminator")
            net_d.load_state_dict(ck["net_d"])
            opt_d.load_state_dict(ck["optim_d"])
            sched_d.load_state_dict(ck["sched_d"])
            scaler_d.load_state_dict(ck["scaler_d"])
        step = int(ck["step"])
        positions = ck["data_position"]
        if len(positions) != world:
            raise TrainingError(f"{resume}: saved with {len(positions)} process(es), now {world}; "
                                "resume with the same count")
        position = DataPosition.from_dict(positions[rank])
        if position.num_workers != nw:
            raise TrainingError(f"{resume}: saved with {position.num_workers} loader workers, now {nw}; "
                                "resume with the same --workers")
        torch.set_rng_state(ck["rng"]["torch"])
        log(f"resumed from {resume} at step {step}")
    g_train = net_g
    d_train = net_d
    if ddp:
        ids = [dev.index] if dev.type == "cuda" else None
        g_train = DDP(net_g, device_ids=ids)
        if net_d is not None:
            d_train = DDP(net_d, device_ids=ids)
    if cfg.compile:
        g_train = torch.compile(g_train)
        if d_train is not None:
            d_train = torch.compile(d_train)
    d_frozen = net_d                          # G step: gradients flow through D's module, D's weights frozen

    # ------------------------------------------------------------------ data
    usm_needed = lo.usm_l1 or (percep is not None and lo.usm_perceptual)
    ctx = losses.USM_CONTEXT if usm_needed else 0
    ds = ShardDataset(urls, gt_size=cfg.data.gt_size, scale=cfg.scale, seed=cfg.seed, rank=rank, world_size=world,
                      shuffle_buffer=cfg.data.shuffle_buffer, shuffle_shards=cfg.data.shuffle_shards,
                      hflip=cfg.data.use_hflip, rot=cfg.data.use_rot, context=ctx, position=position)
    loader = DataLoader(ds, batch_size=cfg.data.batch_size, num_workers=nw, pin_memory=dev.type == "cuda",
                        generator=torch.Generator().manual_seed(cfg.seed))
    batches = iter(loader)

    # ------------------------------------------------------------------ logging
    jsonl = open(run_dir / "train.jsonl", "a", encoding="utf-8") if master else None
    tb = None
    if master:
        (run_dir / "config.toml").write_text(dump_config(cfg), encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:
                log("tensorboard is not installed: TensorBoard logging is off (train.jsonl has the same numbers)")
        n_g = sum(p.numel() for p in net_g.parameters())
        log(f"stage {st.name} x{cfg.scale} | G {n_g:,} params | {len(urls)} shard(s) | batch {cfg.data.batch_size}"
            f" x {world} process(es) | {dev} {cfg.precision}{' channels_last' if cfg.channels_last else ''}"
            f"{' compiled' if cfg.compile else ''} | steps {step} -> {st.iters}")
        if sys.stderr.isatty():
            from tqdm import tqdm
            bar = tqdm(total=st.iters, initial=step, dynamic_ncols=True, unit="it", file=sys.stderr)

    def save(final: bool = False) -> Path | None:
        pos = position.to_dict()
        if ddp:
            all_pos = [None] * world
            dist.all_gather_object(all_pos, pos)
        else:
            all_pos = [pos]
        if not master:
            return None
        ck = {"params": net_g.state_dict(), "params_ema": net_g_ema.state_dict(),
              "net_d": net_d.state_dict() if net_d is not None else None,
              "optim_g": opt_g.state_dict(), "optim_d": opt_d.state_dict() if opt_d else None,
              "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict() if sched_d else None,
              "scaler_g": scaler_g.state_dict(), "scaler_d": scaler_d.state_dict(),
              "step": step, "data_position": all_pos, "config": cfg.to_dict(),
              "rng": {"torch": torch.get_rng_state()}}
        path = run_dir / "checkpoints" / f"step-{step:07d}.pth"
        save_checkpoint(path, ck)
        save_weights(run_dir / f"net_g_{step:07d}.pth", net_g.state_dict(), ema=net_g_ema.state_dict())
        save_weights(run_dir / "net_g_ema.safetensors", net_g.state_dict(), ema=net_g_ema.state_dict())
        log(f"saved {path}" + (" (final)" if final else ""))
        return path

    # ------------------------------------------------------------------ the loop
    summary: dict = {"step": step}
    sums: dict[str, float] = {}
    n_sum = 0
    nonfinite = 0
    t_log, step_log, t_start, step_start = time.time(), step, time.time(), step
    decay = op.ema_decay
    try:
        while step < st.iters:
            batch = next(batches)
            position.update(batch)
            lq = batch["lq"].to(dev, non_blocking=True).float().div_(255).contiguous(memory_format=mf)
            gt_ctx = batch["gt"].to(dev, non_blocking=True).float().div_(255)
            if ctx:
                gt_usm = losses.usm_sharpen(gt_ctx, context=ctx).contiguous(memory_format=mf)
                gt = gt_ctx[..., ctx:-ctx, ctx:-ctx].contiguous(memory_format=mf)
            else:
                gt = gt_usm = gt_ctx.contiguous(memory_format=mf)
            l1_gt = gt_usm if lo.usm_l1 else gt
            percep_gt = gt_usm if lo.usm_perceptual else gt
            step += 1

            # ---- G step
            if net_d is not None:
                net_d.requires_grad_(False)
            opt_g.zero_grad(set_to_none=True)
            logs = {}
            with autocast():
                output = g_train(lq)
                l_g = losses.l1(output, l1_gt) * lo.l1_weight
                logs["l_pix"] = l_g.detach()
                if percep is not None:
                    l_percep = percep(output, percep_gt) * lo.perceptual_weight
                    logs["l_percep"] = l_percep.detach()
                    l_g = l_g + l_percep
                if net_d is not None:
                    fake_pred = d_frozen(output)
                    real_pred = d_frozen(gt) if lo.gan_type == "ragan" else None
                    l_gan = losses.gan_loss_g(fake_pred.float(), None if real_pred is None else real_pred.float(),
                                              lo.gan_type) * lo.gan_weight
                    logs["l_g_gan"] = l_gan.detach()
                    l_g = l_g + l_gan
            ok = torch.isfinite(l_g.detach()).float()
            if ddp:                               # every rank skips together
                dist.all_reduce(ok, op=dist.ReduceOp.MIN)
            if ok.item() < 1:
                nonfinite += 1
                log(f"warning: non-finite generator loss at step {step} ({ {k: float(v) for k, v in logs.items()} }); "
                    f"step skipped ({nonfinite}/{cfg.max_nonfinite} in a row)")
                if nonfinite >= cfg.max_nonfinite:
                    raise TrainingError(f"{nonfinite} non-finite losses in a row at step {step}: stopping "
                                        "(lower the learning rate, use fp32/bf16, or check the data); last good "
                                        f"checkpoint in {run_dir / 'checkpoints'}")
                step -= 1
                continue
            scaler_g.scale(l_g).backward()
            scaler_g.step(opt_g)
            scaler_g.update()

            # ---- D step
            if net_d is not None:
                net_d.requires_grad_(True)
                opt_d.zero_grad(set_to_none=True)
                fake_in = output.detach()
                with autocast():
                    real_pred = d_train(gt)
                    fake_pred = d_train(fake_in)
                    l_d_real, l_d_fake = losses.gan_loss_d(real_pred.float(), fake_pred.float(), lo.gan_type)
                    l_d = l_d_real + l_d_fake
                logs["l_d_real"], logs["l_d_fake"] = l_d_real.detach(), l_d_fake.detach()
                logs["out_d_real"], logs["out_d_fake"] = real_pred.detach().mean(), fake_pred.detach().mean()
                ok_d = torch.isfinite(l_d.detach()).float()
                if ddp:
                    dist.all_reduce(ok_d, op=dist.ReduceOp.MIN)
                if ok_d.item() < 1:
                    log(f"warning: non-finite discriminator loss at step {step}; D step skipped")
                else:
                    scaler_d.scale(l_d).backward()
                    scaler_d.step(opt_d)
                    scaler_d.update()
                sched_d.step()
            nonfinite = 0

            # ---- EMA of G (parameters; RRDBNet has no buffers)
            with torch.no_grad():
                for p_ema, p in zip(net_g_ema.parameters(), net_g.parameters()):
                    p_ema.mul_(decay).add_(p.detach(), alpha=1 - decay)
            sched_g.step()

            # ---- logging
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n_sum += 1
            if step % cfg.log_every == 0 or step == st.iters:
                now = time.time()
                rate = (step - step_log) / max(now - t_log, 1e-9)
                row = {"step": step, "lr_g": sched_g.get_last_lr()[0], "it_s": round(rate, 4),
                       **{k: v / n_sum for k, v in sums.items()}}
                summary.update(row)
                if master:
                    jsonl.write(json.dumps(row) + "\n")
                    jsonl.flush()
                    if tb is not None:
                        for k, v in row.items():
                            if k != "step":
                                tb.add_scalar(f"train/{k}", v, step)
                    eta = (st.iters - step) / max((step - step_start) / max(now - t_start, 1e-9), 1e-9)
                    text = " ".join(f"{k} {v / n_sum:.4g}" for k, v in sums.items())
                    if bar is not None:
                        bar.set_postfix_str(text, refresh=False)
                    else:
                        log(f"step {step}/{st.iters} | {rate:.2f} it/s | ETA {_fmt_time(eta)} | {text}")
                sums, n_sum, t_log, step_log = {}, 0, now, step
            if bar is not None:
                bar.update(1)

            # ---- validation and checkpoints
            if val_urls and (step % cfg.val_every == 0 or step == st.iters):
                if master:
                    res = validate_model(net_g_ema, val_urls, device=dev, scale=cfg.scale,
                                         save_dir=run_dir / "val" / f"step-{step:07d}",
                                         save_images=cfg.val_images, limit=val_limit)
                    summary.update(res)
                    jsonl.write(json.dumps({"step": step, **res}) + "\n")
                    jsonl.flush()
                    if tb is not None:
                        for k, v in res.items():
                            tb.add_scalar(f"val/{k}", v, step)
                    log(f"validation step {step}: PSNR {res['val_psnr']:.3f} dB SSIM {res['val_ssim']:.4f} "
                        f"(bicubic {res['val_psnr_bicubic']:.3f} dB, {res['val_samples']} pairs)")
                if ddp:
                    dist.barrier()
            if step % cfg.save_every == 0 or step == st.iters:
                summary["checkpoint"] = str(save(final=step == st.iters))
    except KeyboardInterrupt:
        log(f"interrupted at step {step}: saving a checkpoint")
        summary["checkpoint"] = str(save())
        raise
    finally:
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()
        if jsonl is not None:
            jsonl.close()
        if log_file is not None:
            log_file.close()
        del batches
    summary["step"] = step
    summary["run_dir"] = str(run_dir)
    return summary
