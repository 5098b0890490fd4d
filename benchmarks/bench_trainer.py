"""Trainer benchmarks: the shard loader, the training step (through the real loop, `trainer.train.fit`), and
`trainer infer` on a 1024x1024 image.

    pytest benchmarks/bench_trainer.py --benchmark-only --benchmark-columns=min,median,mean,rounds

Training step: each run calls ``fit`` for a few iterations with ``log_every=1`` and reads the per-step rate from
train.jsonl; ``extra_info["step_s_median"]`` is the median step time after the warm-up steps (compile time
excluded). With CUDA: the full-size x4 ESRNet and ESRGAN steps (batch 12, 256/64 crops) in fp32 eager vs
bf16 + channels_last (+ torch.compile). On CPU (one thread): a reduced step (full-size RRDBNet, batch 2,
64/16 crops). Loader: pairs/s of one loader process (= per DataLoader worker) on 400->100 PNG samples with the
256/64 crop and USM context. The pytest-benchmark timing of a training case is the whole ``fit`` call.
"""
from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from trainer.archs import RRDBNet, VGG19Features
from trainer.config import preset
from trainer.data import ShardDataset, write_shard
from trainer.losses import USM_CONTEXT
from trainer.train import fit

CUDA = torch.cuda.is_available()


def _png(img):
    return cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()


@pytest.fixture(scope="module")
def shards400(tmp_path_factory):
    """2 shards x 24 samples: 400x400 HR crops of scikit-image photos, 100x100 LR (area), level-1 PNGs
    (degradekit synth's default)."""
    import skimage.data
    d = tmp_path_factory.mktemp("bench_shards")
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.rocket(), skimage.data.hubble_deep_field()]
    rng = np.random.default_rng(0)
    paths = []
    for s in range(2):
        samples = []
        for i in range(24):
            img = photos[i % len(photos)]
            y, x = rng.integers(0, img.shape[0] - 400 + 1), rng.integers(0, img.shape[1] - 400 + 1)
            hr = np.ascontiguousarray(img[y:y + 400, x:x + 400])
            lr = cv2.resize(hr, (100, 100), interpolation=cv2.INTER_AREA)
            key = f"{s * 24 + i:09d}"
            samples.append((key, {"hr.png": _png(hr), "lr0.png": _png(lr), "lr1.png": _png(lr),
                                  "json": json.dumps({"key": key, "scale": 4}).encode()}))
        p = d / f"shard-{s:06d}.tar"
        write_shard(p, samples)
        paths.append(str(p))
    return paths


@pytest.fixture(autouse=True)
def threads():
    n = torch.get_num_threads()
    if not CUDA:
        torch.set_num_threads(1)
    cv2.setNumThreads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("context", [0, USM_CONTEXT], ids=["no-usm-context", "usm-context"])
def test_loader_pairs_per_second(benchmark, shards400, context):
    n = 48

    def run():
        ds = ShardDataset(shards400, gt_size=256, context=context, shuffle_buffer=16, max_epochs=1)
        k = sum(1 for _ in ds)
        assert k == n

    benchmark.group = "trainer-loader"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["pairs_per_s_median"] = n / benchmark.stats.stats.median


def _fit_case(shards, tmp_path, *, stage, full, precision="fp32", channels_last=False, compile_=False, iters):
    cfg = preset("realesrgan", stage)
    if full:
        data = replace(cfg.data, gt_size=256, batch_size=12, num_workers=4)
        net = cfg.net
    else:
        data = replace(cfg.data, gt_size=64, batch_size=2, num_workers=0)
        net = cfg.net
    cfg = replace(cfg, stage=replace(cfg.stage, iters=iters), data=data, net=net, precision=precision,
                  channels_last=channels_last, compile=compile_, log_every=1, val_every=10 ** 9,
                  save_every=10 ** 9)
    vgg = None
    if stage == "esrgan":
        vgg = tmp_path / "vgg.pth"
        if not vgg.exists():
            torch.save(VGG19Features().state_dict(), vgg)    # random weights: same cost as the real ones
    out = tmp_path / f"{stage}-{precision}-{channels_last}-{compile_}"
    fit(shards, cfg=cfg, out=out, vgg_weights=vgg, tensorboard=False)
    rows = [json.loads(x) for x in (out / stage / "train.jsonl").read_text().splitlines()]
    return [1 / r["it_s"] for r in rows if r.get("it_s")]


CASES = ([("esrnet", "fp32", False, False), ("esrnet", "bf16", True, False), ("esrnet", "bf16", True, True),
          ("esrgan", "fp32", False, False), ("esrgan", "bf16", True, False), ("esrgan", "bf16", True, True)]
         if CUDA else [("esrnet", "fp32", False, False), ("esrgan", "fp32", False, False)])


@pytest.mark.parametrize(("stage", "precision", "channels_last", "compile_"), CASES,
                         ids=["-".join(map(str, c)) for c in CASES])
def test_training_step(benchmark, shards400, tmp_path, stage, precision, channels_last, compile_):
    iters, warm = (30, 10) if CUDA else (6, 2)
    times = []

    def run():
        times.append(_fit_case(shards400, tmp_path, stage=stage, full=CUDA, precision=precision,
                               channels_last=channels_last, compile_=compile_, iters=iters))

    benchmark.group = "trainer-step-" + ("cuda-full-x4-b12" if CUDA else "cpu-reduced-x4-b2-64")
    benchmark.pedantic(run, rounds=1, iterations=1)
    steps = times[-1][warm:]
    benchmark.extra_info["step_s_median"] = float(np.median(steps))
    benchmark.extra_info["steps_measured"] = len(steps)
    benchmark.extra_info["device"] = torch.cuda.get_device_name() if CUDA else "cpu, 1 thread"


@pytest.mark.parametrize("tile", [0, 512], ids=["untiled", "tile512"])
def test_infer_1024(benchmark, tile):
    """`trainer infer`'s upscale() on a 1024x1024 RGB image, x4, CPU: a tiny RRDBNet (num_feat 16, 1 block,
    grow 8) -- the full 23-block net needs ~35 TFLOP for this image, minutes on a CPU."""
    from trainer.infer import upscale
    import skimage.data
    torch.manual_seed(0)
    net = RRDBNet(scale=4, num_feat=16, num_block=1, num_grow_ch=8).eval()
    img = cv2.resize(skimage.data.astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)

    def run():
        out = upscale(net, img, scale=4, tile=tile, tile_overlap=32, tile_pad=10)
        assert out.shape == (4096, 4096, 3)

    benchmark.group = "trainer-infer-1024-x4-tiny"
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("durable", [False, True], ids=["torch.save", "save_checkpoint-fsync"])
def test_checkpoint_save_full_size(benchmark, tmp_path, durable):
    """Writing a full-size x4 ESRNet checkpoint (G, EMA and both Adam moments: 4 x 16.7M float32, ~268 MB):
    a bare ``torch.save`` to a path vs ``save_checkpoint`` (plain types, a file object, fsync, rename, fsync of
    the folder) -- the cost of durability per save."""
    from trainer.checkpoint import save_checkpoint
    torch.manual_seed(0)
    sd = RRDBNet().state_dict()
    ck = {"params": sd, "params_ema": {k: v.clone() for k, v in sd.items()},
          "optim_g": {"state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(v),
                                    "exp_avg_sq": torch.zeros_like(v)} for i, v in enumerate(sd.values())},
                      "param_groups": [{"lr": 2e-4, "params": list(range(len(sd)))}]},
          "step": 1, "config": {}, "data_position": [{"num_workers": 0, "workers": [[0, 1]], "next_worker": 0}]}
    path = tmp_path / "step-0000001.pth"

    def run():
        if durable:
            save_checkpoint(path, ck)
        else:
            torch.save(ck, path)

    benchmark.group = "trainer-checkpoint-save-full-x4"
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["mb"] = round(path.stat().st_size / 2 ** 20, 1)
