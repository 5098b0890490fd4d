"""The training loop: learning (beats bicubic), exact resume, non-finite handling, DDP equivalence, GAN stage."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from test_trainer_fixtures import TRAIN_ROWS, VAL_ROWS, make_shards
from trainer import losses
from trainer.checkpoint import load_checkpoint, read_state
from trainer.config import preset
from trainer.train import TrainingError, fit


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    return {"train": make_shards(d / "train", n=24, shard_size=8, hr_size=96, rows=TRAIN_ROWS),
            "val": make_shards(d / "val", n=6, shard_size=6, hr_size=96, rows=VAL_ROWS, seed=5)}


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    from trainer.archs import VGG19Features
    torch.manual_seed(3)
    p = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(VGG19Features().state_dict(), p)
    return p


def tiny(stage="esrnet", *, iters=4, lr=2e-3, ema=0.9, gt=32, batch=2, workers=0, buffer=4, **top):
    cfg = preset("realesrgan", stage)
    st = replace(cfg.stage, iters=iters, optim=replace(cfg.stage.optim, lr_g=lr, lr_d=lr, ema_decay=ema))
    return replace(cfg, stage=st, net=replace(cfg.net, num_feat=16, num_block=1, num_grow_ch=8, d_num_feat=8),
                   data=replace(cfg.data, gt_size=gt, batch_size=batch, num_workers=workers, shuffle_buffer=buffer),
                   **{"log_every": 1, "val_every": 10_000, "save_every": 10_000, **top})


def _losses(run: Path, stage: str) -> list[dict]:
    return [r for r in map(json.loads, (run / stage / "train.jsonl").read_text().splitlines()) if "l_pix" in r]


def test_tiny_generator_beats_bicubic_on_held_out_pairs(data, tmp_path):
    cfg = tiny(iters=400, gt=48, batch=8, lr=3e-3, buffer=16, log_every=100, val_every=400)
    cfg = replace(cfg, stage=replace(cfg.stage, loss=replace(cfg.stage.loss, usm_l1=False)))  # PSNR vs plain gt
    s = fit(data["train"], cfg=cfg, out=tmp_path, val_shards=data["val"], tensorboard=False)
    assert s["step"] == 400 and s["val_samples"] == 6
    assert s["val_psnr"] > s["val_psnr_bicubic"] + 0.3, s
    assert len(list((tmp_path / "esrnet" / "val" / "step-0000400").glob("*.png"))) == 4
    rows = _losses(tmp_path, "esrnet")
    assert rows[-1]["l_pix"] < rows[0]["l_pix"]
    log = (tmp_path / "esrnet" / "train.log").read_text()     # not a TTY: plain progress lines
    assert "step 200/400 |" in log and "it/s | ETA" in log and "validation step 400: PSNR" in log


def test_resume_gives_the_losses_and_weights_of_an_uninterrupted_run(data, tmp_path, vgg_file):
    cfg = tiny("esrgan", iters=5, workers=2)
    fit(data["train"], cfg=cfg, out=tmp_path / "a", vgg_weights=vgg_file, tensorboard=False)
    fit(data["train"], cfg=replace(cfg, stage=replace(cfg.stage, iters=3)), out=tmp_path / "b",
        vgg_weights=vgg_file, tensorboard=False)
    ck3 = tmp_path / "b" / "esrgan" / "checkpoints" / "step-0000003.pth"
    fit(data["train"], cfg=cfg, out=tmp_path / "b", resume=str(ck3), vgg_weights=vgg_file, tensorboard=False)
    la, lb = _losses(tmp_path / "a", "esrgan"), _losses(tmp_path / "b", "esrgan")
    assert [r["step"] for r in lb] == [1, 2, 3, 4, 5]
    keys = ("l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake")
    assert [[r[k] for k in keys] for r in la] == [[r[k] for k in keys] for r in lb]
    a = load_checkpoint(tmp_path / "a" / "esrgan" / "checkpoints" / "step-0000005.pth")
    b = load_checkpoint(tmp_path / "b" / "esrgan" / "checkpoints" / "step-0000005.pth")
    for part in ("params", "params_ema", "net_d"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert a["data_position"] == b["data_position"] and a["step"] == 5
    assert a["data_position"][0]["num_workers"] == 2
    # the checkpoint is itself a release-style weight file (params_ema preferred)
    ema = read_state(tmp_path / "a" / "esrgan" / "net_g_0000005.pth")
    assert all(torch.equal(ema[k], a["params_ema"][k]) for k in ema)


def test_non_finite_losses_are_skipped_then_stop(data, tmp_path, monkeypatch):
    real_l1, calls = losses.l1, {"n": 0}

    def flaky(pred, target):
        calls["n"] += 1
        out = real_l1(pred, target)
        return out * float("nan") if calls["n"] in (2, 3) else out

    monkeypatch.setattr(losses, "l1", flaky)
    import sys
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)    # as if tensorboard were not installed
    s = fit(data["train"], cfg=tiny(iters=4), out=tmp_path / "a", tensorboard=True)
    assert s["step"] == 4 and calls["n"] == 6
    log = (tmp_path / "a" / "esrnet" / "train.log").read_text()
    assert log.count("non-finite generator loss") == 2
    assert log.count("tensorboard is not installed") == 1 and not (tmp_path / "a" / "esrnet" / "tb").exists()
    ck = load_checkpoint(tmp_path / "a" / "esrnet" / "checkpoints" / "step-0000004.pth")
    assert all(torch.isfinite(v).all() for v in ck["params"].values())
    monkeypatch.setattr(losses, "l1", lambda p, t: real_l1(p, t) * float("nan"))
    with pytest.raises(TrainingError, match="3 non-finite losses in a row"):
        fit(data["train"], cfg=tiny(iters=4, max_nonfinite=3), out=tmp_path / "b", tensorboard=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, shards, out, cfg, vgg):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist
    try:
        fit(shards, cfg=cfg, out=out, device="cpu", vgg_weights=vgg, tensorboard=False)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_ddp_two_processes_equal_one_process_on_the_combined_batch(data, tmp_path, vgg_file):
    import torch.multiprocessing as mp
    one_shard = data["train"][:1]           # 8 samples; 2 ranks split it sample by sample
    base = tiny("esrgan", iters=2, batch=4, buffer=0, gt=32)     # G (L1 + perceptual + GAN) and D updates
    base = replace(base, data=replace(base.data, shuffle_shards=False))
    fit(one_shard, cfg=base, out=tmp_path / "single", vgg_weights=vgg_file, tensorboard=False)
    ddp_cfg = replace(base, data=replace(base.data, batch_size=2))
    mp.spawn(_ddp_worker, args=(2, _free_port(), one_shard, str(tmp_path / "ddp"), ddp_cfg, str(vgg_file)),
             nprocs=2, join=True)
    a = load_checkpoint(tmp_path / "single" / "esrgan" / "checkpoints" / "step-0000002.pth")
    b = load_checkpoint(tmp_path / "ddp" / "esrgan" / "checkpoints" / "step-0000002.pth")
    assert len(b["data_position"]) == 2
    for part in ("params", "params_ema", "net_d"):
        for k in a[part]:
            torch.testing.assert_close(b[part][k], a[part][k], atol=2e-6, rtol=0, msg=f"{part} {k}")
    # the update must be non-trivial for the comparison to mean anything
    torch.manual_seed(base.seed)
    from trainer.archs import RRDBNet
    fresh = RRDBNet(scale=4, num_feat=16, num_block=1, num_grow_ch=8).state_dict()
    assert max((a["params"][k] - fresh[k]).abs().max().item() for k in fresh) > 1e-3


def test_gan_stage_from_esrnet_weights_bf16_channels_last(data, tmp_path, vgg_file):
    fit(data["train"], cfg=tiny(iters=2), out=tmp_path, tensorboard=False)
    init = tmp_path / "esrnet" / "net_g_0000002.pth"
    cfg = tiny("esrgan", iters=2, precision="bf16", channels_last=True, val_every=2)
    cfg = replace(cfg, stage=replace(cfg.stage, loss=replace(cfg.stage.loss, gan_type="ragan")))
    s = fit(data["train"], cfg=cfg, out=tmp_path, init=str(init), vgg_weights=vgg_file, val_shards=data["val"],
            tensorboard=True)
    assert s["step"] == 2
    assert all(torch.isfinite(torch.tensor(s[k])) for k in ("l_pix", "l_percep", "l_g_gan", "l_d_real"))
    assert list((tmp_path / "esrgan" / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "esrgan" / "net_g_ema.safetensors").is_file()
    with pytest.raises(TrainingError, match="VGG19 weight file not found"):
        fit(data["train"], cfg=tiny("esrgan", iters=1), out=tmp_path / "x", vgg_weights=tmp_path / "none.pth",
            tensorboard=False)
