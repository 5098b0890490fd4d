"""Fine-tuning the released models (issue 10): `trainer fit --stage esrgan --init G.pth --init-d D.pth` loads both
strictly (D's spectral-norm u/v as stored), the published finetune options are the esrgan stage's own, and the
`esrgan` preset trains with ESRGAN's VGG-style discriminator and RaGAN. Files are made here at small size."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from torch.nn import functional as F

import cli
from test_trainer_fixtures import make_shards
from trainer.archs import RRDBNet, UNetDiscriminatorSN, VGGStyleDiscriminator
from trainer.checkpoint import load_checkpoint
from trainer.config import preset
from trainer.train import TrainingError, fit

pytestmark = pytest.mark.usefixtures("torch_one_thread")
TINY = ["--num-feat", "8", "--num-block", "1", "--num-grow-ch", "4", "--batch-size", "2", "--workers", "0",
        "--no-tensorboard", "--device", "cpu", "--log-every", "1"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("ft") / "s", n=8, shard_size=4, hr_size=128)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Released-format files at small size: G {"params_ema"}, U-Net D {"params"} (its u/v moved away from their
    initial draw by a few training-mode forwards), the same D bare and under params_ema, a VGG-style D."""
    d = tmp_path_factory.mktemp("ftw")
    torch.manual_seed(11)
    g = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    torch.save({"params_ema": g.state_dict()}, d / "G.pth")
    dn = UNetDiscriminatorSN(num_feat=8)
    with torch.no_grad():
        for _ in range(3):
            dn(torch.rand(2, 3, 32, 32))
    sd = dn.state_dict()
    torch.save({"params": sd}, d / "D.pth")
    torch.save(dict(sd), d / "D_bare.pth")
    torch.save({"params_ema": sd}, d / "D_ema.pth")
    torch.save({"params": UNetDiscriminatorSN(num_feat=16).state_dict()}, d / "D_wide.pth")
    vd = VGGStyleDiscriminator(num_feat=8, input_size=128)
    with torch.no_grad():
        vd(torch.rand(4, 3, 128, 128))          # BatchNorm running statistics away from 0 / 1
    torch.save({"params": vd.state_dict()}, d / "VD.pth")
    cfg = d / "gan.toml"                        # tiny D, no VGG19 file needed
    cfg.write_text("[net]\nd_num_feat = 8\n[stage.loss]\nperceptual_weight = 0.0\n")
    return d


def run(*args):
    return CliRunner().invoke(cli.trainer, [str(a) for a in args], catch_exceptions=False)


def _power_iterations(w: torch.Tensor, u: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.nn.utils.spectral_norm's training-mode update, n times (dim 0, eps 1e-12)."""
    m = w.reshape(w.shape[0], -1)
    v = None
    for _ in range(n):
        v = F.normalize(torch.mv(m.t(), u), dim=0, eps=1e-12)
        u = F.normalize(torch.mv(m, v), dim=0, eps=1e-12)
    return u, v


def test_init_d_loads_the_file_exactly_and_the_first_step_starts_from_its_u_v(shards, files, tmp_path):
    cfg = preset("realesrgan", "esrgan")
    cfg = replace(cfg, stage=replace(cfg.stage, iters=1, loss=replace(cfg.stage.loss, perceptual_weight=0.0),
                                     optim=replace(cfg.stage.optim, lr_d=1e-30)),   # D weights stay as loaded
                  net=replace(cfg.net, num_feat=8, num_block=1, num_grow_ch=4, d_num_feat=8),
                  data=replace(cfg.data, gt_size=32, batch_size=2, num_workers=0, shuffle_buffer=0),
                  log_every=1, save_every=1)
    fit(shards, cfg=cfg, out=tmp_path, init=str(files / "G.pth"), init_d=str(files / "D.pth"), tensorboard=False)
    ref = torch.load(files / "D.pth", weights_only=True)["params"]
    got = load_checkpoint(tmp_path / "esrgan" / "checkpoints" / "step-0000001.pth")["net_d"]
    assert sorted(got) == sorted(ref)
    for k in ref:
        if not k.endswith(("weight_u", "weight_v")):
            assert torch.equal(got[k], ref[k]), k           # weights, biases: the file's (lr_d 1e-30 step)
    # one step = 3 D forwards in training mode (G step: D(fake); D step: D(real), D(fake)), each one power
    # iteration on the file's weight_orig: u, v after the step follow from the file's u and no other start
    fresh = UNetDiscriminatorSN(num_feat=8).state_dict()
    for name in [k[:-len(".weight_u")] for k in ref if k.endswith(".weight_u")]:
        w = ref[f"{name}.weight_orig"]
        u3, v3 = _power_iterations(w, ref[f"{name}.weight_u"], 3)
        torch.testing.assert_close(got[f"{name}.weight_u"], u3, atol=1e-6, rtol=0)
        torch.testing.assert_close(got[f"{name}.weight_v"], v3, atol=1e-6, rtol=0)
        u_other, _ = _power_iterations(w, fresh[f"{name}.weight_u"], 3)
        assert (u_other - u3).abs().max() > 1e-3, name      # a re-drawn u would be visible here


def test_init_d_forms_and_misfits_through_the_cli(shards, files, tmp_path):
    base = ["fit", *shards, "--stage", "esrgan", "--config", files / "gan.toml", "--iters", "1", "--gt-size", "32",
            "--init", files / "G.pth", *TINY]
    for i, name in enumerate(("D.pth", "D_bare.pth", "D_ema.pth")):
        r = run(*base, "--out", tmp_path / f"ok{i}", "--init-d", files / name)
        assert r.exit_code == 0, r.output
        assert f"discriminator initialised from {files / name}" in r.output
    r = run(*base, "--out", tmp_path / "wide", "--init-d", files / "D_wide.pth")
    assert r.exit_code == 1 and "D_wide.pth: does not fit the configured discriminator" in r.output, r.output
    assert "size mismatch" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "wide").exists()                 # refused before any work
    r = run(*base, "--out", tmp_path / "vgg", "--init-d", files / "VD.pth")
    assert r.exit_code == 1 and "VD.pth: does not fit the configured discriminator (unet" in r.output, r.output
    r = run(*base, "--out", tmp_path / "g", "--init-d", files / "D.pth", "--num-feat", "16")
    assert r.exit_code == 1 and "G.pth: does not fit the configured generator" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    r = run("fit", *shards, "--out", tmp_path / "n", "--iters", "1", "--gt-size", "32", "--init-d", files / "D.pth",
            *TINY)
    assert r.exit_code == 1 and "--init-d needs a GAN stage" in r.output


def test_the_esrgan_stage_is_the_published_finetune_recipe():
    """Real-ESRGAN's options/finetune_realesrgan_x4plus.yml = train_realesrgan_x4plus.yml plus the two pretrained
    files: the same losses, optimisers and schedule, so `--init G --init-d D` is the whole difference."""
    c = preset("realesrgan", "esrgan")
    st, lo, op = c.stage, c.stage.loss, c.stage.optim
    assert (st.iters, st.gan, c.scale) == (400_000, True, 4)
    assert (c.net.num_feat, c.net.num_block, c.net.num_grow_ch) == (64, 23, 32)
    assert (c.net.d_type, c.net.d_num_feat, c.net.d_skip_connection) == ("unet", 64, True)
    assert (op.lr_g, op.lr_d, op.betas, op.weight_decay) == (1e-4, 1e-4, (0.9, 0.99), 0.0)
    assert (op.milestones, op.gamma, op.ema_decay) == ((400_000,), 0.5, 0.999)
    assert (lo.l1_weight, lo.perceptual_weight, lo.gan_weight, lo.gan_type) == (1.0, 1.0, 0.1, "vanilla")
    assert lo.layer_weights == (0.1, 0.1, 1.0, 1.0, 1.0)
    assert (lo.usm_l1, lo.usm_perceptual) == (True, True)     # l1_gt_usm, percep_gt_usm; D sees plain gt
    assert (c.data.gt_size, c.data.batch_size, c.data.shuffle_buffer) == (256, 12, 180)


def test_esrgan_preset_trains_with_the_vgg_discriminator_and_ragan_and_resumes_exactly(shards, files, tmp_path):
    c = preset("esrgan", "esrgan")
    assert (c.net.d_type, c.data.gt_size, c.stage.loss.gan_type) == ("vgg", 128, "ragan")
    assert c.stage.loss.layer_weights == (0.0, 0.0, 0.0, 0.0, 1.0)        # VGG54: conv5_4 before ReLU
    args = ["--preset", "esrgan", "--stage", "esrgan", "--config", files / "gan.toml", *TINY]
    r = run("fit", *shards, "--out", tmp_path / "bad", "--iters", "1", "--gt-size", "64", *args)
    assert r.exit_code == 1 and "128 or 256" in r.output and not (tmp_path / "bad").exists(), r.output
    r = run("fit", *shards, "--out", tmp_path / "a", "--iters", "2", "--init-d", files / "VD.pth", *args)
    assert r.exit_code == 0, r.output
    a = load_checkpoint(tmp_path / "a" / "esrgan" / "checkpoints" / "step-0000002.pth")
    assert sorted(a["net_d"]) == sorted(VGGStyleDiscriminator(num_feat=8).state_dict())
    assert a["config"]["net"]["d_type"] == "vgg" and a["config"]["stage"]["loss"]["gan_type"] == "ragan"
    vd = torch.load(files / "VD.pth", weights_only=True)["params"]
    assert not torch.equal(a["net_d"]["bn1_0.running_mean"], vd["bn1_0.running_mean"])    # trained on
    r = run("fit", *shards, "--out", tmp_path / "b", "--iters", "1", "--init-d", files / "VD.pth", *args)
    assert r.exit_code == 0, r.output
    r = run("fit", *shards, "--out", tmp_path / "b", "--iters", "2", "--resume", tmp_path / "b" / "esrgan", *TINY)
    assert r.exit_code == 0, r.output
    b = load_checkpoint(tmp_path / "b" / "esrgan" / "checkpoints" / "step-0000002.pth")
    for part in ("params", "params_ema", "net_d"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part


def test_init_d_with_resume_is_refused(shards, files, tmp_path):
    cfg = preset("realesrgan", "esrgan")
    cfg = replace(cfg, stage=replace(cfg.stage, loss=replace(cfg.stage.loss, perceptual_weight=0.0)))
    with pytest.raises(TrainingError, match="--init/--init-d cannot be used with --resume"):
        fit(shards, cfg=cfg, out=tmp_path, init_d=str(files / "D.pth"), resume=str(files / "D.pth"))
