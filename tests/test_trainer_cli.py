"""Every trainer subcommand through click's CliRunner, and one run on real `degradekit synth` output."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from click.testing import CliRunner

import cli
from test_trainer_fixtures import make_shards
from trainer.checkpoint import load_checkpoint, read_state

TINY = ["--num-feat", "8", "--num-block", "1", "--num-grow-ch", "4", "--batch-size", "2", "--gt-size", "32",
        "--workers", "0", "--no-tensorboard", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("cli") / "s", n=6, shard_size=3, hr_size=64)


def run(*args):
    return CliRunner().invoke(cli.trainer, [str(a) for a in args], catch_exceptions=False)


def test_help_of_every_subcommand():
    r = run("--help")
    assert r.exit_code == 0
    for name in ("fit", "infer", "interp", "export"):
        assert name in r.output
        sub = run(name, "--help")
        assert sub.exit_code == 0 and "Usage:" in sub.output and "--help" in sub.output


def test_fit_resume_infer_interp_export(shards, tmp_path):
    out = tmp_path / "run"
    r = run("fit", *shards, "--out", out, "--iters", "2", "--val", shards[1], "--val-every", "2", *TINY)
    assert r.exit_code == 0, r.output
    assert "done: stage esrnet step 2" in r.output and "val PSNR" in r.output
    d = out / "esrnet"
    assert (d / "checkpoints" / "step-0000002.pth").is_file() and (d / "config.toml").is_file()
    rows = [json.loads(x) for x in (d / "train.jsonl").read_text().splitlines()]
    assert any("val_psnr" in x for x in rows)
    # resume from the folder (latest checkpoint), more iterations
    r = run("fit", *shards, "--out", out, "--resume", d, "--iters", "3", *TINY)
    assert r.exit_code == 0, r.output
    assert load_checkpoint(d / "checkpoints" / "step-0000003.pth")["step"] == 3
    weights = d / "net_g_0000003.pth"

    # infer: 8-bit RGB, 16-bit, RGBA, gray; tiled; one broken file -> error but others written
    src = tmp_path / "in"
    src.mkdir()
    rgb = skimage.data.chelsea()[:40, :48]
    cv2.imwrite(str(src / "a.png"), rgb[..., ::-1])
    cv2.imwrite(str(src / "b16.png"), (rgb[..., ::-1].astype(np.uint16) * 257))
    cv2.imwrite(str(src / "c.png"), np.dstack([rgb[..., ::-1], np.full((40, 48), 128, np.uint8)]))
    cv2.imwrite(str(src / "d.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    r = run("infer", weights, src, "--out", tmp_path / "o", "--tile", "16", "--tile-overlap", "4")
    assert r.exit_code == 0, r.output
    a = cv2.imread(str(tmp_path / "o" / "a_out.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "o" / "b16_out.png"), cv2.IMREAD_UNCHANGED)
    c = cv2.imread(str(tmp_path / "o" / "c_out.png"), cv2.IMREAD_UNCHANGED)
    g = cv2.imread(str(tmp_path / "o" / "d_out.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (160, 192, 3) and b.dtype == np.uint16 and c.shape == (160, 192, 4) and g.shape == (160, 192)
    (src / "e.png").write_bytes(b"broken")
    r = run("infer", weights, src, "--out", tmp_path / "o2", "--outscale", "2")
    assert r.exit_code == 1 and "e.png: not a readable image" in r.output and "1 of 5 image(s) failed" in r.output
    assert cv2.imread(str(tmp_path / "o2" / "a_out.png")).shape == (80, 96, 3)

    # interp and export
    w2 = d / "net_g_0000002.pth"
    r = run("interp", w2, weights, "--alpha", "0.8", "--out", tmp_path / "mix.pth")
    assert r.exit_code == 0, r.output
    a2, a3, mix = read_state(w2), read_state(weights), read_state(tmp_path / "mix.pth")
    torch.testing.assert_close(mix["conv_last.weight"], 0.2 * a2["conv_last.weight"] + 0.8 * a3["conv_last.weight"])
    r = run("export", weights, "--safetensors", tmp_path / "g.safetensors", "--onnx", tmp_path / "g.onnx")
    assert r.exit_code == 0, r.output
    assert "onnxruntime vs torch max |diff|" in r.output or "not checked" in r.output
    st = read_state(tmp_path / "g.safetensors")
    assert all(torch.equal(st[k], a3[k]) for k in a3)
    assert run("export", weights).exit_code == 2


def test_fit_rejects_bad_input_before_work(shards, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\nbatch_sise = 3\n")
    r = run("fit", *shards, "--out", tmp_path / "r", "--config", cfg, *TINY)
    assert r.exit_code == 1 and "c.toml: data.batch_sise: unknown key" in r.output
    assert not (tmp_path / "r").exists()
    r = run("fit", tmp_path / "missing.tar", "--out", tmp_path / "r", *TINY)
    assert r.exit_code == 1 and "missing.tar: shard not found" in r.output
    assert not (tmp_path / "r").exists()
    r = run("fit", *shards, "--out", tmp_path / "r2", "--stage", "esrgan", "--iters", "1", *TINY,
            "--vgg-weights", tmp_path / "novgg.pth")
    assert r.exit_code == 1 and "novgg.pth: VGG19 weight file not found" in r.output
    assert not (tmp_path / "r2").exists()
    r = run("fit", *shards, "--out", tmp_path / "r3", "--scale", "2", "--iters", "1", *TINY)
    assert r.exit_code == 1 and "differs from the training scale 2" in r.output
    ok = run("fit", *shards, "--out", tmp_path / "r4", "--iters", "1", *TINY)
    assert ok.exit_code == 0, ok.output
    r = run("fit", *shards, "--out", tmp_path / "r4", "--iters", "1", *TINY)
    assert r.exit_code == 1 and "already holds checkpoints; continue with --resume" in r.output
    r = run("infer", tmp_path / "c.toml", shards[0], "--out", tmp_path / "o")
    assert r.exit_code == 1 and "c.toml: cannot read weight file" in r.output


def test_fit_on_real_degradekit_synth_output(tmp_path):
    pytest.importorskip("degradekit.synth")
    src = tmp_path / "photos"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), skimage.data.astronaut()[:192, :192, ::-1])
    cv2.imwrite(str(src / "c.png"), skimage.data.coffee()[:192, :192, ::-1])
    r = CliRunner().invoke(cli.degradekit, ["synth", "--src", str(src), "--out", str(tmp_path / "shards"),
                                            "--patch", "96", "--step", "96", "--shard-size", "4", "--workers", "1",
                                            "--variants", "2", "--progress", "none"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = run("fit", tmp_path / "shards", "--out", tmp_path / "run", "--iters", "2", *TINY)
    assert r.exit_code == 0, r.output
    ck = load_checkpoint(tmp_path / "run" / "esrnet" / "checkpoints" / "step-0000002.pth")
    assert ck["step"] == 2 and all(torch.isfinite(v).all() for v in ck["params"].values())


def test_infer_retries_with_smaller_tiles_when_out_of_memory(tmp_path, monkeypatch):
    import trainer.infer as ti
    from trainer.archs import RRDBNet
    from trainer.checkpoint import save_weights
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    save_weights(tmp_path / "g.pth", net.state_dict(), ema=net.state_dict())
    cv2.imwrite(str(tmp_path / "a.png"), skimage.data.chelsea()[:40, :48, ::-1])
    real, tiles = ti.upscale, []

    def flaky(*a, tile, **kw):
        tiles.append(tile)
        if tile == 0 or tile > 256:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*a, tile=tile, **kw)

    monkeypatch.setattr(ti, "upscale", flaky)
    r = run("infer", tmp_path / "g.pth", tmp_path / "a.png", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert tiles == [0, 512, 256] and "retrying with --tile 256" in r.output
    assert cv2.imread(str(tmp_path / "o" / "a_out.png")).shape == (160, 192, 3)


def _pair_folders(root, n=6, hr_size=64):
    from test_trainer_fixtures import make_samples
    (root / "hr").mkdir(parents=True)
    (root / "lr").mkdir()
    for key, f in make_samples(n, hr_size=hr_size, variants=1):
        (root / "hr" / f"{key}.png").write_bytes(f["hr.png"])
        (root / "lr" / f"{key}.png").write_bytes(f["lr0.png"])
    return root / "hr", root / "lr"


def test_fit_on_paired_folders_resume_and_validation(tmp_path):
    hr, lr = _pair_folders(tmp_path / "pairs")
    vhr, vlr = _pair_folders(tmp_path / "val", n=2)
    out = tmp_path / "run"
    r = run("fit", "--pairs", hr, lr, "--out", out, "--iters", "2", "--val-pairs", vhr, vlr, "--val-every", "2", *TINY)
    assert r.exit_code == 0, r.output
    assert "6 pair(s)" in r.output and "val PSNR" in r.output
    r = run("fit", "--pairs", hr, lr, "--out", out, "--iters", "3", "--resume", out / "esrnet", *TINY)
    assert r.exit_code == 0, r.output
    assert load_checkpoint(out / "esrnet" / "checkpoints" / "step-0000003.pth")["step"] == 3
    meta = tmp_path / "meta.txt"            # Real-ESRGAN's paired meta_info: a subset of the pairs
    meta.write_text("".join(f"{k}.png, {k}.png\n" for k in ("000000000", "000000001", "000000002")))
    r = run("fit", "--pairs", hr, lr, "--meta-info", meta, "--out", tmp_path / "m", "--iters", "1", *TINY)
    assert r.exit_code == 0 and "3 pair(s)" in r.output, r.output
    # bad input: one line, nothing written
    (lr / "000000004.png").unlink()
    r = run("fit", "--pairs", hr, lr, "--out", tmp_path / "bad", "--iters", "1", *TINY)
    assert r.exit_code == 1 and "000000004" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "bad").exists()
    r = run("fit", tmp_path / "x.tar", "--pairs", hr, lr, "--out", tmp_path / "bad", *TINY)
    assert r.exit_code == 2 and "give SHARDS or --pairs HR LR" in r.output
    r = run("fit", "--out", tmp_path / "bad", *TINY)
    assert r.exit_code == 2 and "give SHARDS or --pairs HR LR" in r.output
