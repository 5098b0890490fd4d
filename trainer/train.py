"""The training loop (both stages), top to bottom: inputs and resume checks, setup, data, then per step G step,
D step, EMA, logging, validation and checkpoints. Run under ``torchrun`` for DDP (rank/world from the environment).

Stage esrnet: L1(G(lq), USM(gt)).  Stage esrgan: L1 + perceptual (targets USM(gt)) + GAN (D sees gt), D updated
after G each step, EMA of G after every step (spec/realesrgan-model.md section 4).

SIGINT/SIGTERM stop the run at a step boundary: the checkpoint always holds the weights, optimiser states and
data position of the same step, so a resumed run is bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from trainer import losses
from trainer.archs import RRDBNet, UNetDiscriminatorSN, VGG19Features, VGGStyleDiscriminator, resolve_vgg_weights
from trainer.checkpoint import (WeightError, fsync_dir, load_checkpoint, read_module_state, read_state,
                                save_checkpoint, save_weights)
from trainer.config import ConfigError, TrainConfig, config_from_dict, dump_config, validate
from trainer.data import DataPosition, ShardDataset, ShardError, expand_urls, iter_val_pairs
from trainer.metrics import psnr, ssim


class TrainingError(RuntimeError):
    """Training cannot continue (repeated non-finite losses, bad resume, ...); one-line message."""


class TrainingInterrupted(TrainingError):
    """SIGINT / SIGTERM: the last completed step was checkpointed (if any); ``signum`` gives the exit status."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class _Stop(BaseException):
    """Raised by the signal handler while the loop waits for a batch (no step in progress). A BaseException,
    so that no ``except Exception`` on the way (torch's DataLoader has one around its queue read) intercepts it."""


# Modules whose code runs in this process while a loader worker hands over a batch: its tensors arrive as
# shared-memory file descriptors that the worker's resource-sharer thread passes over a socket, with a handshake.
_HANDOVER_MODULES = frozenset({"multiprocessing.resource_sharer", "multiprocessing.reduction",
                               "torch.multiprocessing.reductions"})


def _in_handover(frame) -> bool:
    """True while the interrupted code is inside a loader worker's batch hand-over (see _HANDOVER_MODULES)."""
    while frame is not None:
        if frame.f_globals.get("__name__") in _HANDOVER_MODULES:
            return True
        frame = frame.f_back
    return False


class _Signals:
    """SIGINT/SIGTERM -> a stop request. While ``waiting`` (setup, or blocked on the loader) the handler raises
    _Stop at once; during a step it only records the signal and the loop stops after the step. Installed only in
    the main thread; the previous handlers come back on exit."""

    def __init__(self, immediate: bool) -> None:
        self.signum = 0
        self.waiting = True
        self.immediate = immediate        # False under DDP: ranks must stop at the same step
        self._old: dict[int, object] = {}

    def _handler(self, signum, frame) -> None:
        if not self.signum:
            self.signum = signum
            # the same (group) signal may end loader workers: torch's SIGCHLD check would then raise "worker
            # exited unexpectedly" in the middle of the step being finished; no batch is read after this one
            if signal.SIGCHLD not in self._old:
                self._old[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if self.waiting and self.immediate:
            if _in_handover(frame):
                # unwinding here would drop the socket mid-handshake and the worker would print a traceback
                # (ConnectionResetError in resource_sharer): only recorded; the loop stops as soon as this
                # batch has arrived, without using it (a second signal, outside the hand-over, stops at once)
                return
            self.waiting = False
            raise _Stop()

    def __enter__(self) -> "_Signals":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def _worker_signals(worker_id: int) -> None:
    """Loader workers leave SIGINT to the training process (a terminal's Ctrl-C reaches the whole group): the
    training process finishes its step, saves, then shuts the workers down."""
    signal.signal(signal.SIGINT, lambda s, f: None)


# Options that may change on resume (applied and recorded); every other config field must equal the checkpoint's.
RESUMABLE = frozenset({"stage.iters", "stage.optim.lr_g", "val_every", "save_every", "log_every", "val_images",
                       "precision", "channels_last", "compile", "max_nonfinite", "data.max_bad_samples"})


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resume_conflicts(saved: TrainConfig, new: TrainConfig) -> list[tuple[str, object, object]]:
    """(dotted key, saved value, new value) of every field that differs and may not change on resume."""
    a, b = _flat(saved.to_dict()), _flat(new.to_dict())
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if k not in RESUMABLE and a.get(k) != b.get(k)]


def _step_of(p: Path) -> int:
    try:
        return int(p.stem.split("-")[-1])
    except ValueError:
        return -1


def latest_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file as given, or the latest ``checkpoints/step-N.pth`` of a run folder."""
    p = Path(path)
    if p.is_dir():
        cands = sorted((p / "checkpoints").glob("step-*.pth"), key=_step_of) or sorted(p.glob("step-*.pth"),
                                                                                        key=_step_of)
        if not cands:
            raise TrainingError(f"{p}: no checkpoints/step-*.pth to resume from")
        return cands[-1]
    return p


def _load_error(e: Exception) -> str:
    """The informative line of a load_state_dict error (its first line only says 'Error(s) in loading')."""
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    detail = next((x for x in lines if not x.startswith("Error(s) in loading")), lines[0] if lines else str(e))
    return detail if len(detail) <= 300 else detail[:297] + "..."


def _write_lines(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _to_image(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) float [0, 1] -> uint8 (H, W, 3), rounded and clipped as the saved images are."""
    return (t.float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def validate_model(net: torch.nn.Module, urls, *, device: torch.device, scale: int,
                   save_dir: Path | None = None, save_images: int = 0, limit: int | None = None) -> dict:
    """PSNR/SSIM (Y, border = scale) of ``net`` on held-out pairs (variant lr0 of shards ``urls``, or the pairs
    of a ``trainer.pairs.PairSource``), plus bicubic for reference. Saves the first ``save_images`` outputs as PNG
    into ``save_dir``."""
    import cv2
    from trainer.infer import tiled_forward
    net.eval()
    rows = []
    if isinstance(urls, (list, tuple)):
        pairs = iter_val_pairs(urls, limit)
    else:
        from trainer.pairs import iter_val_pairs_from
        pairs = iter_val_pairs_from(urls, limit)
    for i, (key, hr, lr, s) in enumerate(pairs):
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
        raise TrainingError(f"validation data {urls[:2] if isinstance(urls, (list, tuple)) else urls} "
                            "contains no samples")
    a = np.array(rows)
    return {"val_psnr": float(a[:, 0].mean()), "val_ssim": float(a[:, 1].mean()),
            "val_psnr_bicubic": float(a[:, 2].mean()), "val_samples": len(rows)}


def _prepare_run_folder(run_dir: Path, ck_dir: Path, later: list[Path], resume, step: int, notes: list[str],
                        cfg: TrainConfig):
    """Create RUN/<stage>/, remove leftovers of a killed save, move superseded checkpoints (--force), drop
    train.jsonl rows after the resumed step, write config.toml; returns (train.log, train.jsonl) opened to append.
    OSErrors propagate (the caller words them)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    leftovers = [p for p in (*run_dir.glob("*.tmp"), *ck_dir.glob("*.tmp")) if p.is_file()]
    if (run_dir / ".staging").exists():
        leftovers += list((run_dir / ".staging").iterdir())
        shutil.rmtree(run_dir / ".staging", ignore_errors=True)
    for p in leftovers:
        p.unlink(missing_ok=True)
    if leftovers:
        notes.append(f"removed {len(leftovers)} file(s) of an interrupted save: "
                     + ", ".join(p.name for p in leftovers[:4]))
    if later:                         # --force: the later checkpoints are kept aside, never overwritten
        sup = run_dir / "superseded"
        sup.mkdir(exist_ok=True)
        for p in later:
            for f in (p, run_dir / f"net_g_{p.stem[5:]}.pth"):
                if f.is_file():
                    dst, i = sup / f.name, 1
                    while dst.exists():
                        dst, i = sup / f"{f.name}.{i}", i + 1
                    os.replace(f, dst)
        notes.append(f"moved {len(later)} later checkpoint(s) to {sup}")
    jsonl_path = run_dir / "train.jsonl"
    if resume and jsonl_path.is_file():     # rows after the checkpoint are re-done: drop them, no repeats
        keep, dropped = [], 0
        for line in jsonl_path.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                ok = int(json.loads(line)["step"]) <= step
            except (ValueError, KeyError, TypeError):
                ok = False            # a half-written last row of a killed run
            if ok:
                keep.append(line if line.endswith("\n") else line + "\n")
            else:
                dropped += 1
        if dropped:
            _write_lines(jsonl_path, keep)
            notes.append(f"train.jsonl: dropped {dropped} row(s) after step {step} (re-done from the checkpoint)")
    (run_dir / "config.toml").write_text(dump_config(cfg), encoding="utf-8")
    return (open(run_dir / "train.log", "a", encoding="utf-8"), open(run_dir / "train.jsonl", "a", encoding="utf-8"))


def fit(shards, *, cfg: TrainConfig, out: str | os.PathLike, val_shards=None, pairs=None, val_pairs=None,
        init: str | None = None, init_d: str | None = None, resume: str | None = None, force: bool = False,
        vgg_weights: str | None = None, device: str | None = None, tensorboard: bool = True,
        val_limit: int | None = 100) -> dict:
    """Train one stage. Writes into ``out/<stage>/``: config.toml, train.jsonl, train.log, checkpoints/step-N.pth
    (full checkpoints), net_g_N.pth (release-style {params, params_ema}), net_g_ema.safetensors, val/, tb/.
    ``pairs`` / ``val_pairs``: ``trainer.pairs.PairSource`` objects read instead of ``shards`` / ``val_shards``.
    ``init_d``: discriminator weights to start from (fine-tuning). ``force``: resume from an older checkpoint,
    moving the later ones to ``superseded/``. Returns a summary dict (step, last logged losses, last validation).
    Raises TrainingError (one line) for anything the user can fix, TrainingInterrupted after SIGINT/SIGTERM."""
    sig = _Signals(immediate=int(os.environ.get("WORLD_SIZE", "1")) <= 1)
    with sig:
        try:
            return _fit(shards, cfg=cfg, out=out, val_shards=val_shards, pairs=pairs, val_pairs=val_pairs, init=init,
                        init_d=init_d, resume=resume, force=force, vgg_weights=vgg_weights, device=device,
                        tensorboard=tensorboard, val_limit=val_limit, sig=sig)
        except _Stop:                     # during setup: no step was trained
            raise TrainingInterrupted(f"interrupted by {signal.Signals(sig.signum).name} before training "
                                      "started: nothing saved", sig.signum) from None


def _fit(shards, *, cfg, out, val_shards, pairs, val_pairs, init, init_d, resume, force, vgg_weights, device,
         tensorboard, val_limit, sig: _Signals) -> dict:
    validate(cfg)
    st, lo, op = cfg.stage, cfg.stage.loss, cfg.stage.optim
    # ------------------------------------------------------------------ inputs first: nothing is written on error
    urls = None if pairs is not None else expand_urls(shards)
    # what the data position points into: a different set on resume continues in another stream
    source = {"kind": "pairs", "count": len(pairs)} if pairs is not None else {"kind": "shards", "count": len(urls)}
    val_src = val_pairs if val_pairs is not None else (expand_urls(val_shards) if val_shards else None)
    vgg_path = None
    if lo.perceptual_weight > 0:
        try:
            vgg_path = resolve_vgg_weights(vgg_weights)
        except FileNotFoundError as e:
            raise TrainingError(str(e)) from None
    run_dir = Path(out) / st.name
    ck_dir = run_dir / "checkpoints"
    ck = saved_cfg = None
    later: list[Path] = []
    if resume:
        resume = latest_checkpoint(resume)
        if init or init_d:
            raise TrainingError(f"{resume}: --init/--init-d cannot be used with --resume (the checkpoint holds "
                                "the weights)")
        ck = load_checkpoint(resume)
        try:
            saved_cfg = config_from_dict(ck["config"], where=str(resume))
        except ConfigError as e:
            raise TrainingError(str(e)) from None
        if saved_cfg.stage.name != st.name or saved_cfg.scale != cfg.scale:
            raise TrainingError(f"{resume}: checkpoint is stage {saved_cfg.stage.name} x{saved_cfg.scale}, "
                                f"not {st.name} x{cfg.scale}")
        bad_keys = resume_conflicts(saved_cfg, cfg)
        if bad_keys:
            k, a, b = bad_keys[0]
            raise TrainingError(f"{resume}: {k} is {a!r} in the checkpoint, {b!r} now: it cannot change on resume")
        later = sorted((p for p in ck_dir.glob("step-*.pth") if _step_of(p) > int(ck["step"])), key=_step_of)
        if later and not force:
            raise TrainingError(f"{ck_dir}: holds later checkpoint(s) than step {int(ck['step'])} "
                                f"({', '.join(p.name for p in later[:3])}{', ...' if len(later) > 3 else ''}); "
                                "resume the latest, or pass --force to move them to "
                                f"{run_dir / 'superseded'} and continue from {Path(resume).name}")
    elif sorted(ck_dir.glob("step-*.pth")):
        raise TrainingError(f"{ck_dir}: already holds checkpoints; continue with --resume {run_dir} or choose "
                            "another --out")
    if init_d and not st.gan:
        raise TrainingError(f"{init_d}: --init-d needs a GAN stage (--stage esrgan)")
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
    notes: list[str] = []                 # said once the log is open

    # ------------------------------------------------------------------ networks (initial weights checked here)
    torch.manual_seed(cfg.seed)          # network init only; nothing else draws from torch's global RNG
    net_g = RRDBNet(scale=cfg.scale, num_feat=cfg.net.num_feat, num_block=cfg.net.num_block,
                    num_grow_ch=cfg.net.num_grow_ch)
    net_d = None
    if st.gan:
        net_d = (VGGStyleDiscriminator(num_feat=cfg.net.d_num_feat, input_size=cfg.data.gt_size)
                 if cfg.net.d_type == "vgg" else
                 UNetDiscriminatorSN(num_feat=cfg.net.d_num_feat, skip_connection=cfg.net.d_skip_connection))
    if init and not resume:
        state = read_state(init)
        try:
            net_g.load_state_dict(state)
        except RuntimeError as e:
            raise TrainingError(f"{init}: does not fit the configured generator ({_load_error(e)})") from None
        notes.append(f"generator initialised from {init}")
    elif st.gan and not resume:
        notes.append("warning: GAN stage without --init (the published recipe starts from the ESRNet EMA weights)")
    if init_d and not resume:
        state = read_module_state(init_d)
        try:                               # strict, with the file's spectral-norm u and v
            net_d.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise TrainingError(f"{init_d}: does not fit the configured discriminator ({cfg.net.d_type}, "
                                f"d_num_feat {cfg.net.d_num_feat}): {_load_error(e)}") from None
        notes.append(f"discriminator initialised from {init_d}")
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
    bad = 0                               # corrupt/mismatched samples skipped so far (whole run)
    nw = cfg.data.num_workers
    position = DataPosition.start(nw)
    if ck is not None:
        try:
            net_g.load_state_dict(ck["params"])
            net_g_ema.load_state_dict(ck["params_ema"])
            opt_g.load_state_dict(ck["optim_g"])
            sched_g.load_state_dict(ck["sched_g"])
            if ck["scaler_g"]:            # empty when saved by a disabled (non-fp16) scaler
                scaler_g.load_state_dict(ck["scaler_g"])
            if net_d is not None:
                if ck.get("net_d") is None:
                    raise TrainingError(f"{resume}: checkpoint has no discriminator")
                net_d.load_state_dict(ck["net_d"])
                opt_d.load_state_dict(ck["optim_d"])
                sched_d.load_state_dict(ck["sched_d"])
                if ck["scaler_d"]:
                    scaler_d.load_state_dict(ck["scaler_d"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise TrainingError(f"{resume}: does not fit its own config ({_load_error(e)})") from None
        step = int(ck["step"])
        bad = int(ck.get("bad_samples", 0))
        was = ck.get("data_source")
        if was and was != source:
            notes.append(f"warning: the checkpoint was trained on {was['count']} {was['kind']}, now {source['count']} "
                         f"{source['kind']}: the data position continues in a different stream (not bit-identical "
                         "to an uninterrupted run)")
        positions = ck["data_position"]
        if len(positions) != world:
            raise TrainingError(f"{resume}: saved with {len(positions)} process(es), now {world}; "
                                "resume with the same count")
        position = DataPosition.from_dict(positions[rank])
        if position.num_workers != nw:
            raise TrainingError(f"{resume}: saved with {position.num_workers} loader workers, now {nw}; "
                                "resume with the same --workers")
        torch.set_rng_state(ck["rng"]["torch"])
        old_lr = saved_cfg.stage.optim.lr_g
        if op.lr_g != old_lr:             # a new base lr; the decay of the milestones already passed is kept
            k = sum(c for m, c in sched_g.milestones.items() if m <= sched_g.last_epoch)
            for group in opt_g.param_groups:
                group["initial_lr"] = op.lr_g
                group["lr"] = op.lr_g * op.gamma ** k
            sched_g.base_lrs = [op.lr_g] * len(opt_g.param_groups)
            sched_g._last_lr = [g["lr"] for g in opt_g.param_groups]     # noqa: SLF001 - what get_last_lr reads
            notes.append(f"generator lr {old_lr:g} -> {op.lr_g:g} from step {step}"
                         + (f" (x {op.gamma:g}^{k} for the milestones passed)" if k else ""))
        notes.append(f"resumed from {resume} at step {step}")
        del ck                            # the weights now live in the networks
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

    # ------------------------------------------------------------------ run folder: tidy up, then log
    try:
        log_file, jsonl = _prepare_run_folder(run_dir, ck_dir, later, resume, step, notes, cfg) if master \
            else (None, None)
    except OSError as e:
        raise TrainingError(f"{e.filename or run_dir}: cannot prepare the run folder: {e.strerror or e}") from None
    bar = None
    log_failed = []

    def log(msg: str) -> None:
        if not master:
            return
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        (bar.write(line, file=sys.stderr) if bar is not None else print(line, file=sys.stderr, flush=True))
        if not log_failed:
            try:
                log_file.write(line + "\n")
                log_file.flush()
            except OSError as e:         # e.g. a full disk: keep training, the next checkpoint says it in one line
                log_failed.append(e)
                print(f"warning: {run_dir / 'train.log'}: cannot write ({e.strerror}); logging to the terminal only",
                      file=sys.stderr, flush=True)

    def write_row(row: dict) -> None:
        try:
            jsonl.write(json.dumps(row) + "\n")
            jsonl.flush()
        except OSError as e:
            log(f"warning: {run_dir / 'train.jsonl'}: cannot write row of step {row['step']} ({e.strerror})")

    for n in notes:
        log(n)

    # ------------------------------------------------------------------ data
    usm_needed = lo.usm_l1 or (percep is not None and lo.usm_perceptual)
    ctx = losses.USM_CONTEXT if usm_needed else 0
    ds_kw = dict(gt_size=cfg.data.gt_size, scale=cfg.scale, seed=cfg.seed, rank=rank, world_size=world,
                 shuffle_buffer=cfg.data.shuffle_buffer, shuffle_shards=cfg.data.shuffle_shards,
                 hflip=cfg.data.use_hflip, rot=cfg.data.use_rot, context=ctx, position=position)
    if pairs is not None:
        from trainer.pairs import PairDataset
        ds = PairDataset(pairs, **ds_kw)
    else:
        ds = ShardDataset(urls, **ds_kw)
    loader = DataLoader(ds, batch_size=cfg.data.batch_size, num_workers=nw, pin_memory=dev.type == "cuda",
                        generator=torch.Generator().manual_seed(cfg.seed),
                        worker_init_fn=_worker_signals if nw else None)
    batches = None

    # ------------------------------------------------------------------ logging
    tb = None
    if master:
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:
                log("tensorboard is not installed: TensorBoard logging is off (train.jsonl has the same numbers)")
        n_g = sum(p.numel() for p in net_g.parameters())
        src = f"{len(pairs)} pair(s)" if pairs is not None else f"{len(urls)} shard(s)"
        log(f"stage {st.name} x{cfg.scale} | G {n_g:,} params"
            + (f" | D {cfg.net.d_type}" if net_d is not None else "")
            + f" | {src} | batch {cfg.data.batch_size} x {world} process(es) | {dev} {cfg.precision}"
            f"{' channels_last' if cfg.channels_last else ''}{' compiled' if cfg.compile else ''}"
            f" | steps {step} -> {st.iters}")
        if sys.stderr.isatty():
            from tqdm import tqdm
            bar = tqdm(total=st.iters, initial=step, dynamic_ncols=True, unit="it", file=sys.stderr)

    last_saved = step                     # the step the newest checkpoint on disk holds

    def save(final: bool = False) -> Path | None:
        """Checkpoint the last completed step: stage every file (fsynced), then publish the weight files and the
        checkpoint last, so step-N.pth never exists without net_g_N.pth and no final name is ever partial."""
        nonlocal last_saved
        pos = position.to_dict()
        if ddp:
            all_pos = [None] * world
            dist.all_gather_object(all_pos, pos)
        else:
            all_pos = [pos]
        if not master:                    # wait for rank 0's files (and share its failure), then go on together
            box = [None]
            dist.broadcast_object_list(box, src=0)
            if box[0]:
                raise TrainingError(box[0])
            last_saved = step
            return None
        ckpt = {"params": net_g.state_dict(), "params_ema": net_g_ema.state_dict(),
                "net_d": net_d.state_dict() if net_d is not None else None,
                "optim_g": opt_g.state_dict(), "optim_d": opt_d.state_dict() if opt_d else None,
                "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict() if sched_d else None,
                "scaler_g": scaler_g.state_dict(), "scaler_d": scaler_d.state_dict(),
                "step": step, "data_position": all_pos, "config": cfg.to_dict(),
                "rng": {"torch": torch.get_rng_state()}, "bad_samples": bad, "data_source": source}
        name = f"{step:07d}"
        staging = run_dir / ".staging"
        path = ck_dir / f"step-{name}.pth"
        files = [("net_g_ema.safetensors", run_dir), (f"net_g_{name}.pth", run_dir), (path.name, ck_dir)]
        current = path
        try:
            staging.mkdir(exist_ok=True)
            save_checkpoint(staging / path.name, ckpt)
            ema = net_g_ema.state_dict()
            need = 2 * sum(v.numel() * v.element_size() for v in ema.values()) * 3 // 2 + (1 << 20)
            if shutil.disk_usage(staging).free < need:    # torch's path writer hides ENOSPC in a RuntimeError
                raise OSError(28, os.strerror(28))
            current = run_dir / files[1][0]
            save_weights(staging / files[1][0], net_g.state_dict(), ema=ema)
            current = run_dir / files[0][0]
            save_weights(staging / files[0][0], net_g.state_dict(), ema=ema)
            ck_dir.mkdir(exist_ok=True)
            for fname, folder in files:
                current = folder / fname
                os.replace(staging / fname, folder / fname)
            fsync_dir(run_dir)
            fsync_dir(ck_dir)
            staging.rmdir()
            last_saved = step
        except (OSError, WeightError, RuntimeError) as e:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(e, OSError):
                why = e.strerror or str(e)
            elif isinstance(e, WeightError):
                why = str(e).split("cannot write checkpoint: ", 1)[-1]
            else:
                why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            prev = ck_dir / f"step-{last_saved:07d}.pth"
            err = (f"{current}: cannot write checkpoint: {why}"
                   + (f" (last good checkpoint: {prev})" if prev.is_file() else ""))
            if ddp:
                dist.broadcast_object_list([err], src=0)
            raise TrainingError(err) from None
        if ddp:
            dist.broadcast_object_list([None], src=0)
        log(f"saved {path}" + (" (final)" if final else ""))
        return path

    def stop_saving() -> str:
        """Checkpoint the last completed step unless it is on disk already; a phrase for the message."""
        if step > last_saved:
            return f"saved {save()}"
        return f"checkpoint {ck_dir / f'step-{step:07d}.pth'}" if step else "nothing to save"

    # ------------------------------------------------------------------ the loop
    summary: dict = {"step": step}
    sums: dict[str, float] = {}
    n_sum = 0
    nonfinite = 0
    t_log, step_log, t_start, step_start = time.time(), step, time.time(), step
    decay = op.ema_decay
    try:
        try:
            batches = iter(loader)
            while step < st.iters:
                sig.waiting = True
                try:
                    batch = next(batches)
                except ShardError as e:          # fatal data error (PairError too): keep the work, one line
                    sig.waiting = False            # (under DDP only this rank knows: no collective save)
                    raise TrainingError(f"{e} ({stop_saving() if not ddp else 'last checkpoint: ' + str(ck_dir)})"
                                        ) from None
                sig.waiting = False
                if sig.signum and sig.immediate:  # arrived during the batch's hand-over: stop, batch unused
                    raise _Stop()
                skipped = int(batch["skipped"].sum()) if "skipped" in batch else 0
                if ddp:                          # every rank counts every rank's skips: they stop together
                    t = torch.tensor([skipped], dtype=torch.int64, device=dev)
                    dist.all_reduce(t)
                    skipped = int(t.item())
                if skipped:
                    msgs = [m for m in batch.get("skip_msg", []) if m]
                    for m in msgs:
                        log(f"warning: skipped a sample: {m}")
                    if bad + skipped > cfg.data.max_bad_samples:
                        raise TrainingError(
                            f"{bad + skipped} corrupt or mismatched samples skipped, more than "
                            f"data.max_bad_samples = {cfg.data.max_bad_samples}: stopping ({stop_saving()})"
                            + (f"; last: {msgs[-1]}" if msgs else ""))
                    bad += skipped
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
                        # RaGAN: D(real) first, as BasicSR's ESRGANModel (the order of the D forwards
                        # matters for spectral norm's power iteration and BatchNorm's running statistics)
                        real_pred = d_frozen(gt) if lo.gan_type == "ragan" else None
                        fake_pred = d_frozen(output)
                        l_gan = losses.gan_loss_g(fake_pred.float(),
                                                  None if real_pred is None else real_pred.float(),
                                                  lo.gan_type) * lo.gan_weight
                        logs["l_g_gan"] = l_gan.detach()
                        l_g = l_g + l_gan
                ok = torch.isfinite(l_g.detach()).float()
                if ddp:                               # every rank skips together
                    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
                if ok.item() < 1:
                    nonfinite += 1
                    log(f"warning: non-finite generator loss at step {step} "
                        f"({ {k: float(v) for k, v in logs.items()} }); "
                        f"step skipped ({nonfinite}/{cfg.max_nonfinite} in a row)")
                    step -= 1
                    if nonfinite >= cfg.max_nonfinite:
                        raise TrainingError(f"{nonfinite} non-finite losses in a row at step {step + 1}: "
                                            "stopping (lower the learning rate, use fp32/bf16, or check the "
                                            f"data); last good checkpoint in {ck_dir}")
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
                        l_d_real, l_d_fake = losses.gan_loss_d(real_pred.float(), fake_pred.float(),
                                                               lo.gan_type)
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
                           **{k: v / n_sum for k, v in sums.items()}, "bad_samples": bad}
                    summary.update(row)
                    if master:
                        write_row(row)
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
                if val_src and (step % cfg.val_every == 0 or step == st.iters):
                    if master:
                        res = validate_model(net_g_ema, val_src, device=dev, scale=cfg.scale,
                                             save_dir=run_dir / "val" / f"step-{step:07d}",
                                             save_images=cfg.val_images, limit=val_limit)
                        summary.update(res)
                        write_row({"step": step, **res})
                        if tb is not None:
                            for k, v in res.items():
                                tb.add_scalar(f"val/{k}", v, step)
                        log(f"validation step {step}: PSNR {res['val_psnr']:.3f} dB SSIM {res['val_ssim']:.4f} "
                            f"(bicubic {res['val_psnr_bicubic']:.3f} dB, {res['val_samples']} pairs)")
                    if ddp:
                        dist.barrier()
                if step % cfg.save_every == 0 or step == st.iters:
                    summary["checkpoint"] = str(save(final=step == st.iters))
                # ---- a signal during this step: stop here, at a step boundary
                stop_now = sig.signum
                if ddp:
                    t = torch.tensor([stop_now], dtype=torch.int64, device=dev)
                    dist.all_reduce(t, op=dist.ReduceOp.MAX)
                    stop_now = int(t.item())
                if stop_now and step < st.iters:
                    sig.signum = stop_now
                    raise _Stop()
            sig.waiting = False
        except _Stop:
            sig.waiting = False
            msg = (f"interrupted by {signal.Signals(sig.signum).name} at step {step}: {stop_saving()}"
                   + (f"; continue with --resume {run_dir}" if step else ""))
            log(msg)
            raise TrainingInterrupted(msg, sig.signum) from None
    finally:
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()
        if jsonl is not None:
            jsonl.close()
        if log_file is not None:
            log_file.close()
        del batches                        # shuts the loader workers down
    summary["step"] = step
    summary["run_dir"] = str(run_dir)
    return summary
