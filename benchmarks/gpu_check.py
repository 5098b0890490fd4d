"""The GPU path, ready to run: one script that measures what the CUDA code of `trainer` and KernelGAN does on a
CUDA machine and writes the figures as JSON (issue 10, "The GPU path, ready to run").

    python benchmarks/gpu_check.py --out gpu_check.json                # CUDA machine, < 8 minutes
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_smoke.json   # CPU, tiny sizes: checks that it works

Sections (each in its own subprocess with a timeout, so a hang or a crash costs one section, never the run):

* ``train/<config>/<stage>``: the full-size x4 training step (RRDBNet 23 blocks, batch 12, 256/64 crops; stage
  ``esrnet`` = L1 on USM(gt), stage ``esrgan`` = L1 + VGG19 perceptual + U-Net GAN and the D step, EMA) with the
  batch already on the device, in fp32 eager, bf16 + channels_last eager and bf16 + channels_last + torch.compile:
  it/s and peak memory. The step is the one in ``trainer.train.fit`` rebuilt from its public pieces (same losses,
  same order: G step with D frozen, D step on gt / detached output, EMA, schedulers); ``fit`` itself runs below.
* ``fit``: ``trainer fit`` itself (the command's code path: loader workers, autocast, channels_last, logging,
  checkpoint) on generated shards; its it/s against the step's gives the GPU idle time per step (loader keeping
  up when that is ~0).
* ``torchrun``: a 2-process ``trainer fit`` step through torchrun (NCCL) when 2 GPUs exist (gloo on CPU in
  ``--smoke``).
* ``infer/<fp16|fp32>``: ``trainer infer`` of a 1024x1024 photo with the full x4plus net (``--weights FILE``, else
  a random-init net of the same size: same time), the same photo twice (cold, warm), and fp16 vs fp32 agreement.
* ``kernelgan``: one KernelGAN kernel estimate on the device.

No network is needed: VGG19 gets random weights (same cost), shards and photos are generated. Needs the project's
dependencies (``pip install -e .``; on a bare CUDA image tomli-w and deflate may be missing: the JSON says so).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:          # runnable from a bare checkout (no `pip install -e .`)
    sys.path.insert(0, str(REPO))

# full size (the published x4 recipe) and the --smoke sizes (CPU, seconds)
FULL = {"num_feat": 64, "num_block": 23, "num_grow_ch": 32, "d_num_feat": 64, "batch": 12, "gt": 256,
        "warmup": 3, "steps": 15, "fit_iters": 60, "fit_log_every": 10, "infer_size": 1024, "kg_size": 256,
        "kg_iters": 3000}
SMOKE = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "d_num_feat": 8, "batch": 2, "gt": 32,
         "warmup": 1, "steps": 1, "fit_iters": 3, "fit_log_every": 1, "infer_size": 48, "kg_size": 64,
         "kg_iters": 10, "kg_channels": 8}
CONFIGS = {"fp32_eager": ("fp32", False, False), "bf16_cl_eager": ("bf16", True, False),
           "bf16_cl_compile": ("bf16", True, True)}


# ------------------------------------------------------------------------------------------------ workers
def _sizes(smoke: bool) -> dict:
    return SMOKE if smoke else FULL


def _sync(dev):
    import torch
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def worker_train(args) -> dict:
    """One training-step configuration on resident data: the step of trainer.train.fit, rebuilt from its parts."""
    import copy
    from contextlib import nullcontext

    import torch

    from trainer import losses
    from trainer.archs import RRDBNet, UNetDiscriminatorSN, VGG19Features
    from trainer.config import preset

    sz = _sizes(args.smoke)
    precision, channels_last, compile_ = CONFIGS[args.config]
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True       # as fit
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(dev)
    cfg = preset("realesrgan", args.stage)
    st, lo, op = cfg.stage, cfg.stage.loss, cfg.stage.optim
    torch.manual_seed(0)
    net_g = RRDBNet(scale=4, num_feat=sz["num_feat"], num_block=sz["num_block"], num_grow_ch=sz["num_grow_ch"])
    net_d = UNetDiscriminatorSN(num_feat=sz["d_num_feat"]) if st.gan else None
    net_g.to(dev)
    net_g_ema = copy.deepcopy(net_g).eval().requires_grad_(False)
    percep = None
    if lo.perceptual_weight > 0:
        percep = losses.PerceptualLoss(VGG19Features(), lo.layer_weights).to(dev)   # random VGG: same cost
    if net_d is not None:
        net_d.to(dev)
    mf = torch.channels_last if channels_last else torch.contiguous_format
    for m in (net_g, net_g_ema, net_d, percep):
        if m is not None:
            m.to(memory_format=mf)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=op.lr_g, betas=op.betas)
    sched_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, list(op.milestones), op.gamma)
    opt_d = sched_d = None
    if net_d is not None:
        opt_d = torch.optim.Adam(net_d.parameters(), lr=op.lr_d, betas=op.betas)
        sched_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, list(op.milestones), op.gamma)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = (lambda: torch.autocast(dev.type, dtype=amp_dtype)) if amp_dtype else nullcontext
    g_train, d_train = net_g, net_d
    if compile_:
        g_train = torch.compile(g_train)
        if d_train is not None:
            d_train = torch.compile(d_train)
    usm_needed = lo.usm_l1 or (percep is not None and lo.usm_perceptual)
    ctx = losses.USM_CONTEXT if usm_needed else 0
    gen = torch.Generator().manual_seed(1)
    b, gt_size = sz["batch"], sz["gt"]
    # uint8 batches as the loader yields them (gt with the USM context margin), resident on the device
    lq_u8 = torch.randint(0, 256, (b, 3, gt_size // 4, gt_size // 4), generator=gen, dtype=torch.uint8).to(dev)
    gt_u8 = torch.randint(0, 256, (b, 3, gt_size + 2 * ctx, gt_size + 2 * ctx), generator=gen,
                          dtype=torch.uint8).to(dev)
    decay = op.ema_decay

    def step():
        lq = lq_u8.float().div_(255).contiguous(memory_format=mf)
        gt_ctx = gt_u8.float().div_(255)
        if ctx:
            gt_usm = losses.usm_sharpen(gt_ctx, context=ctx).contiguous(memory_format=mf)
            gt = gt_ctx[..., ctx:-ctx, ctx:-ctx].contiguous(memory_format=mf)
        else:
            gt = gt_usm = gt_ctx.contiguous(memory_format=mf)
        l1_gt = gt_usm if lo.usm_l1 else gt
        percep_gt = gt_usm if lo.usm_perceptual else gt
        if net_d is not None:
            net_d.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        with autocast():
            output = g_train(lq)
            l_g = losses.l1(output, l1_gt) * lo.l1_weight
            if percep is not None:
                l_g = l_g + percep(output, percep_gt) * lo.perceptual_weight
            if net_d is not None:
                fake_pred = net_d(output)                   # fit's d_frozen: the uncompiled module
                real_pred = net_d(gt) if lo.gan_type == "ragan" else None
                l_g = l_g + losses.gan_loss_g(fake_pred.float(), None if real_pred is None else real_pred.float(),
                                              lo.gan_type) * lo.gan_weight
        ok = torch.isfinite(l_g.detach()).float().item()    # fit checks every step (a sync, kept)
        l_g.backward()
        opt_g.step()
        if net_d is not None:
            net_d.requires_grad_(True)
            opt_d.zero_grad(set_to_none=True)
            with autocast():
                real_pred = d_train(gt)
                fake_pred = d_train(output.detach())
                l_d_real, l_d_fake = losses.gan_loss_d(real_pred.float(), fake_pred.float(), lo.gan_type)
                l_d = l_d_real + l_d_fake
            ok = min(ok, torch.isfinite(l_d.detach()).float().item())
            l_d.backward()
            opt_d.step()
            sched_d.step()
        with torch.no_grad():
            for p_ema, p in zip(net_g_ema.parameters(), net_g.parameters()):
                p_ema.mul_(decay).add_(p.detach(), alpha=1 - decay)
        sched_g.step()
        return ok

    t0 = time.perf_counter()
    for _ in range(sz["warmup"]):
        step()
    _sync(dev)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    finite = 1.0
    for _ in range(sz["steps"]):
        finite = min(finite, step())
    _sync(dev)
    dt = time.perf_counter() - t0
    return {"it_s": round(sz["steps"] / dt, 4), "ms_per_step": round(1000 * dt / sz["steps"], 2),
            "peak_mem_mb": _peak_mem(dev), "warmup_s": round(t_warm, 2), "steps_timed": sz["steps"],
            "losses_finite": finite == 1.0, "precision": precision, "channels_last": channels_last,
            "compile": compile_, "stage": args.stage, "batch": b, "gt_size": gt_size,
            "G_params": sum(p.numel() for p in net_g.parameters())}


def _peak_mem(dev):
    """Peak allocated device memory (MiB); on CPU the process's peak RSS instead (labelled so)."""
    import torch
    if dev.type == "cuda":
        return round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    import resource
    return {"cpu_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def worker_kernelgan(args) -> dict:
    import numpy as np

    from degradekit.pool.kernelgan import KernelGANConfig, estimate_kernel

    sz = _sizes(args.smoke)
    img = _photo(sz["kg_size"])
    cfg = KernelGANConfig(iters=sz["kg_iters"], min_iters=min(400, sz["kg_iters"]),
                          stop_window=min(100, sz["kg_iters"]), retries=0 if args.smoke else 2,
                          channels=sz.get("kg_channels", 64))
    est = estimate_kernel(img, seed=0, cfg=cfg, device=args.device)
    k = np.asarray(est.kernel)
    return {"seconds": round(est.seconds, 2), "iters": int(est.schedule.get("iters_total", est.iters)),
            "kernel_shape": list(k.shape), "kernel_sum": round(float(k.sum()), 6), "image": sz["kg_size"]}


# ------------------------------------------------------------------------------------------------ helpers
def _photo(size: int):
    """A size x size uint8 RGB photo: scikit-image's astronaut resized (Lanczos) when available, else smooth
    structured noise (texture matters for timing only through nothing; for KernelGAN it needs edges)."""
    import cv2
    import numpy as np
    try:
        import skimage.data
        img = skimage.data.astronaut()
    except ImportError:
        rng = np.random.default_rng(0)
        img = cv2.GaussianBlur((rng.random((512, 512, 3)) * 255).astype(np.uint8), (0, 0), 3)
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LANCZOS4 if size > img.shape[0]
                      else cv2.INTER_AREA)


def _write_shards(folder: Path, n: int, gt: int, scale: int = 4, per_shard: int = 16) -> list[str]:
    """Contract-conformant shards (docs/design.md "Shards"): KEY.hr.png, KEY.json, KEY.lr0.png."""
    import io
    import tarfile

    import cv2
    import numpy as np
    from trainer.losses import USM_CONTEXT
    # the HR must hold the crop plus the USM context margin on every side (as synth's patches do)
    hr_size = -(-(gt + 2 * USM_CONTEXT) // scale) * scale
    big = _photo(max(4 * gt, 2 * hr_size))
    room = big.shape[0] - hr_size
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(0, n, per_shard):
        path = folder / f"shard-{s // per_shard:06d}.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(s, min(n, s + per_shard)):
                y, x = rng.integers(0, room + 1, 2)
                hr = np.ascontiguousarray(big[y:y + hr_size, x:x + hr_size])
                lr = cv2.resize(hr, (hr_size // scale, hr_size // scale), interpolation=cv2.INTER_AREA)
                key = f"{i:09d}"
                fields = {"hr.png": cv2.imencode(".png", hr[..., ::-1])[1].tobytes(),
                          "json": json.dumps({"key": key, "scale": scale}).encode(),
                          "lr0.png": cv2.imencode(".png", lr[..., ::-1])[1].tobytes()}
                for name in sorted(fields):
                    ti = tarfile.TarInfo(f"{key}.{name}")
                    ti.size, ti.mode = len(fields[name]), 0o644
                    tar.addfile(ti, io.BytesIO(fields[name]))
        paths.append(str(path))
    return paths


def _random_vgg(path: Path) -> None:
    import torch

    from trainer.archs import VGG19Features
    torch.save(VGG19Features().state_dict(), path)   # torchvision key layout, random weights


def fit_options(sz: dict, vgg: Path, device: str) -> list[str]:
    """The `trainer fit` options of the fit / torchrun sections (the GAN stage, bf16 + channels_last)."""
    return ["--stage", "esrgan", "--iters", str(sz["fit_iters"]), "--batch-size", str(sz["batch"]),
            "--gt-size", str(sz["gt"]), "--num-feat", str(sz["num_feat"]), "--num-block", str(sz["num_block"]),
            "--num-grow-ch", str(sz["num_grow_ch"]), "--vgg-weights", str(vgg), "--log-every",
            str(sz["fit_log_every"]), "--save-every", str(10 * sz["fit_iters"]), "--no-tensorboard",
            "--precision", "bf16", "--channels-last", "--device", device]


_RUNNER = """import sys
sys.path.insert(0, {repo!r})
from trainer.commands.{mod} import {cmd} as c
c.main(args=sys.argv[1:], prog_name="trainer {cmd}")
"""


def _runner(tmp: Path, mod: str, cmd: str) -> Path:
    """A script that runs one trainer subcommand without cli.py (which imports every degradekit command)."""
    p = tmp / f"run_{cmd}.py"
    p.write_text(_RUNNER.format(repo=str(REPO), mod=mod, cmd=cmd))
    return p


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> tuple[int | None, str, float]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1.0, timeout), env=env, cwd=REPO)
        return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, out + err, time.perf_counter() - t0


def _tail(text: str, n: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:])


# ------------------------------------------------------------------------------------------------ sections
class Check:
    def __init__(self, args):
        self.args = args
        self.t0 = time.perf_counter()
        self.res: dict = {"mode": "smoke" if args.smoke else "full", "device": args.device, "sections": {}}
        self.tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))

    def left(self) -> float:
        return self.args.budget - (time.perf_counter() - self.t0)

    def record(self, name: str, value: dict) -> None:
        self.res["sections"][name] = value
        self.save()
        print(f"[{time.perf_counter() - self.t0:6.1f} s] {name}: {json.dumps(value)[:300]}", flush=True)

    def save(self) -> None:
        self.res["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        out = Path(self.args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(self.res, indent=1))
        os.replace(tmp, out)

    def worker(self, name: str, argv: list[str], timeout: float) -> dict | None:
        if self.left() < min(timeout, 20):
            self.record(name, {"skipped": f"time budget ({self.args.budget:.0f} s) spent"})
            return None
        if self.args.smoke:                  # CPU: in this process (no isolation needed, saves the imports)
            t0 = time.perf_counter()
            wargs = argparse.Namespace(smoke=True, device=self.args.device, worker=argv[0],
                                       config=argv[argv.index("--config") + 1] if "--config" in argv else None,
                                       stage=argv[argv.index("--stage") + 1] if "--stage" in argv else None)
            val = {"train": worker_train, "kernelgan": worker_kernelgan}[argv[0]](wargs)
            val["wall_s"] = round(time.perf_counter() - t0, 1)
            self.record(name, val)
            return val
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *argv, "--device", self.args.device]
        rc, out, dt = _run(cmd, min(timeout, self.left()))
        m = re.findall(r"^RESULT (.*)$", out, re.M)
        if rc == 0 and m:
            val = json.loads(m[-1])
            val["wall_s"] = round(dt, 1)
        else:
            val = {"error": "timed out" if rc is None else f"exit {rc}", "wall_s": round(dt, 1), "log": _tail(out)}
        self.record(name, val)
        return val if "error" not in val else None

    def env(self) -> None:
        import torch
        info = {"torch": torch.__version__, "python": sys.version.split()[0], "cuda_available":
                torch.cuda.is_available(), "cpu_count": os.cpu_count()}
        if torch.cuda.is_available():
            info.update(gpu=torch.cuda.get_device_name(0), gpu_count=torch.cuda.device_count(),
                        capability=list(torch.cuda.get_device_capability(0)),
                        bf16=torch.cuda.is_bf16_supported())
        missing = []
        for mod in ("tomli_w", "deflate", "safetensors", "cv2", "numba", "scipy", "click", "skimage"):
            try:
                __import__(mod)
            except ImportError:
                missing.append(mod)
        info["missing_modules"] = missing
        self.record("env", info)

    def train(self) -> None:
        """The eager configurations (minutes of compile come last, in train_compile, so they cannot starve the
        other sections of the budget)."""
        for cfg, stage, timeout in [("fp32_eager", "esrnet", 90), ("bf16_cl_eager", "esrnet", 90),
                                    ("fp32_eager", "esrgan", 100), ("bf16_cl_eager", "esrgan", 100)]:
            self.worker(f"train/{cfg}/{stage}", ["train", "--config", cfg, "--stage", stage], timeout)

    def train_compile(self) -> None:
        if not self.args.compile:
            self.record("train/bf16_cl_compile", {"skipped": "--no-compile (default with --smoke)"})
            return
        for stage, timeout in (("esrnet", 200), ("esrgan", 240)):
            self.worker(f"train/bf16_cl_compile/{stage}", ["train", "--config", "bf16_cl_compile", "--stage", stage],
                        timeout)

    def summary(self) -> None:
        sec = self.res["sections"]
        summary = {}
        for stage in ("esrnet", "esrgan"):
            base = sec.get(f"train/fp32_eager/{stage}", {}).get("it_s")
            for cfg in ("bf16_cl_eager", "bf16_cl_compile"):
                r = sec.get(f"train/{cfg}/{stage}", {}).get("it_s")
                if base and r:
                    summary[f"{stage}/{cfg}_vs_fp32_eager"] = round(r / base, 3)
            fast = [sec.get(f"train/{c}/{stage}", {}).get("it_s") for c in ("bf16_cl_eager", "bf16_cl_compile")]
            fast = [f for f in fast if f]
            if base and fast:
                summary[f"{stage}/fast_path_target_2x_met"] = max(fast) / base >= 2.0
        self.record("train/summary", summary)

    def fit(self) -> None:
        sz = _sizes(self.args.smoke)
        if self.left() < 30:
            self.record("fit", {"skipped": "time budget spent"})
            return
        need = (sz["fit_iters"] + 8) * sz["batch"]
        shards = _write_shards(self.tmp / "shards", min(need, 256), sz["gt"])
        vgg = self.tmp / "vgg19-random.pth"
        _random_vgg(vgg)
        workers = max(1, min(8, (os.cpu_count() or 2) - 2)) if not self.args.smoke else 1
        common = fit_options(sz, vgg, self.args.device)
        run_fit = _runner(self.tmp, "fit", "fit")
        out = self.tmp / "fit"
        rc, log, dt = _run([sys.executable, str(run_fit), *shards, "--out", str(out), "--workers", str(workers),
                            *common], min(150, self.left()))
        rows = []
        jl = out / "esrgan" / "train.jsonl"
        if jl.is_file():
            rows = [json.loads(x) for x in jl.read_text().splitlines() if x.strip()]
        rates = [r["it_s"] for r in rows if "it_s" in r][1:] or [r["it_s"] for r in rows if "it_s" in r]
        val = {"rc": rc, "wall_s": round(dt, 1), "workers": workers, "iters": sz["fit_iters"],
               "it_s_rows": rates, "ckpt_written": (out / "esrgan" / "net_g_ema.safetensors").is_file()}
        if rc != 0:
            val["log"] = _tail(log)
        if rates:
            fit_rate = sorted(rates)[len(rates) // 2]
            val["it_s_median"] = fit_rate
            pure = self.res["sections"].get("train/bf16_cl_eager/esrgan", {}).get("it_s")
            if pure:
                val["step_it_s_resident_data"] = pure
                val["gpu_idle_ms_per_step"] = round(max(0.0, 1000 / fit_rate - 1000 / pure), 2)
                val["loader_keeps_up"] = fit_rate >= 0.9 * pure
        self.record("fit", val)
        self._common_fit = (shards, common)

    def torchrun(self) -> None:
        import torch
        n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not self.args.smoke and n_gpu < 2:
            self.record("torchrun", {"skipped": f"{n_gpu} GPU(s): a 2-process step needs 2"})
            return
        if not hasattr(self, "_common_fit") or self.left() < 30:
            self.record("torchrun", {"skipped": "no fit section ran / time budget spent"})
            return
        shards, common = self._common_fit
        common = [c for c in common]
        i = common.index("--device")
        del common[i:i + 2]                      # fit picks cuda:LOCAL_RANK (or cpu) itself
        if self.args.smoke:
            common += ["--device", "cpu"]
        run_fit = _runner(self.tmp, "fit", "fit")
        out = self.tmp / "ddp"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        rc, log, dt = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            str(run_fit), *shards, "--out", str(out), "--workers", "1", *common],
                           min(180, self.left()), env=env)
        rows = []
        jl = out / "esrgan" / "train.jsonl"
        if jl.is_file():
            rows = [json.loads(x) for x in jl.read_text().splitlines() if x.strip()]
        rates = [r["it_s"] for r in rows if "it_s" in r]
        val = {"rc": rc, "wall_s": round(dt, 1), "processes": 2, "it_s_rows": rates,
               "backend": "nccl" if n_gpu >= 2 and not self.args.smoke else "gloo (cpu)"}
        if rc != 0:
            val["log"] = _tail(log)
        self.record("torchrun", val)

    def infer(self) -> None:
        import cv2
        import numpy as np
        import torch

        from trainer.archs import RRDBNet
        from trainer.checkpoint import save_weights
        sz = _sizes(self.args.smoke)
        if self.args.weights:
            weights, src = Path(self.args.weights), str(self.args.weights)
        else:
            torch.manual_seed(0)
            net = RRDBNet(scale=4, num_feat=sz["num_feat"], num_block=sz["num_block"], num_grow_ch=sz["num_grow_ch"])
            weights, src = self.tmp / "x4plus-random.pth", "random init, x4plus size"
            save_weights(weights, net.state_dict(), ema=net.state_dict())
        photos = self.tmp / "photos"
        photos.mkdir(exist_ok=True)
        img = _photo(sz["infer_size"])
        for name in ("a_cold.png", "b_warm.png"):
            cv2.imwrite(str(photos / name), img[..., ::-1])
        run_inf = _runner(self.tmp, "infer", "infer")
        outs = {}
        for prec in ("fp16", "fp32"):
            name = f"infer/{prec}"
            if self.left() < 20:
                self.record(name, {"skipped": "time budget spent"})
                continue
            flag = "--half" if prec == "fp16" else "--fp32"
            o = self.tmp / f"out_{prec}"
            rc, log, dt = _run([sys.executable, str(run_inf), str(weights), str(photos), "--out", str(o), flag,
                                "--device", self.args.device], min(150, self.left()))
            secs = [float(s) for s in re.findall(r"-> \d+x\d+, ([0-9.]+) s\)", log)]
            val = {"rc": rc, "wall_s": round(dt, 1), "image": f"{sz['infer_size']}x{sz['infer_size']}",
                   "weights": src, "seconds_per_image": secs}
            if "needs CUDA" in log:
                val["note"] = "fp16 needs CUDA: ran fp32"
            if rc != 0:
                val["log"] = _tail(log)
            if (o / "b_warm_out.png").is_file():
                outs[prec] = cv2.imread(str(o / "b_warm_out.png")).astype(np.int16)
                val["output"] = list(outs[prec].shape)
            self.record(name, val)
        if len(outs) == 2:
            d = np.abs(outs["fp16"] - outs["fp32"])
            self.record("infer/fp16_vs_fp32", {"max_grey_levels": int(d.max()), "mean": round(float(d.mean()), 4)})

    def kernelgan(self) -> None:
        self.worker("kernelgan", ["kernelgan"], 150)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="gpu_check.json", help="JSON file of figures (rewritten after each section)")
    ap.add_argument("--smoke", "--dry-run", dest="smoke", action="store_true",
                    help="tiny sizes (CPU): check that every section works")
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run (sections past it are "
                                                                "skipped; default 450 = 7.5 min)")
    ap.add_argument("--weights", default=None, help="RealESRGAN_x4plus .pth for the infer section")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="include the torch.compile configurations (default: on, off with --smoke)")
    ap.add_argument("--only", default=None, help="comma list of sections: env,train,fit,torchrun,infer,kernelgan,"
                                                 "train_compile,summary")
    ap.add_argument("--worker", default=None, choices=["train", "kernelgan"], help=argparse.SUPPRESS)
    ap.add_argument("--config", default="fp32_eager", help=argparse.SUPPRESS)
    ap.add_argument("--stage", default="esrnet", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args(argv)
    if args.device is None:
        import torch
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.worker:
        if args.smoke:
            import torch
            torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        res = {"train": worker_train, "kernelgan": worker_kernelgan}[args.worker](args)
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if rest:
        ap.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.compile is None:
        args.compile = not args.smoke
    if args.device.startswith("cuda") is False and not args.smoke:
        print("note: no CUDA device; running the full sizes on CPU will not finish in the budget "
              "(use --smoke)", file=sys.stderr)
    chk = Check(args)
    sections = (args.only or "env,train,fit,torchrun,infer,kernelgan,train_compile,summary").split(",")
    try:
        for name in sections:
            try:
                getattr(chk, name)()
            except Exception as e:  # noqa: BLE001 - a broken section is recorded, the next one still runs
                chk.record(name, {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})
        chk.save()
    finally:
        shutil.rmtree(chk.tmp, ignore_errors=True)
    print(f"wrote {args.out} ({chk.res['elapsed_s']} s)", flush=True)
    bad = [k for k, v in chk.res["sections"].items() if isinstance(v, dict) and ("error" in v or v.get("rc"))]
    if bad:
        print(f"sections with errors: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
