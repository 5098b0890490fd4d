"""USM target vs the reference data, loss formulas, metrics vs scikit-image, config strictness."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from torch.nn import functional as F

from trainer import losses
from trainer.archs import VGG19Features
from trainer.config import ConfigError, config_from_dict, dump_config, load_config, preset
from trainer.metrics import psnr, rgb_to_y, ssim

DATA = Path(__file__).parent / "data"

pytestmark = pytest.mark.usefixtures("torch_one_thread")



def _t(img_u8):
    return torch.from_numpy(img_u8.astype(np.float32) / 255).permute(2, 0, 1)[None]


def test_usm_matches_reference_crops():
    ref = np.load(DATA / "trainer_usm.npz")        # crops of spec usm.npz outputs (BasicSR USMSharp)
    astro = skimage.data.astronaut()[56:456, 56:456]
    coffee = skimage.data.coffee()[:, 100:500]
    out_a = losses.usm_sharpen(_t(astro))[0].permute(1, 2, 0).numpy()
    out_c = losses.usm_sharpen(_t(coffee))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out_a[:48, :48], ref["astronaut_out_tl"], atol=1e-4)
    np.testing.assert_allclose(out_a[176:224, 176:224], ref["astronaut_out_mid"], atol=1e-4)
    np.testing.assert_allclose(out_c[-48:, -48:], ref["coffee_out_br"], atol=1e-4)


def test_usm_with_context_equals_full_image_result():
    img = _t(skimage.data.chelsea()[:160, :200])
    full = losses.usm_sharpen(img)
    c = losses.USM_CONTEXT
    padded = F.pad(img, (c, c, c, c), mode="reflect")
    for y0, x0 in ((0, 0), (40, 77), (96, 136)):     # touching the border, inside, bottom-right corner
        win = padded[..., y0:y0 + 64 + 2 * c, x0:x0 + 64 + 2 * c]
        got = losses.usm_sharpen(win, context=c)
        torch.testing.assert_close(got, full[..., y0:y0 + 64, x0:x0 + 64], atol=1e-6, rtol=0)


def test_usm_formula_against_opencv():
    img = skimage.data.coffee()[:120, :150].astype(np.float32) / 255
    blur = cv2.GaussianBlur(img, (51, 51), 0, borderType=cv2.BORDER_REFLECT_101)
    res = img - blur
    soft = cv2.GaussianBlur((np.abs(res) * 255 > 10).astype(np.float32), (51, 51), 0, borderType=cv2.BORDER_REFLECT_101)
    expected = soft * np.clip(img + 0.5 * res, 0, 1) + (1 - soft) * img
    got = losses.usm_sharpen(torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() < 2e-3 and np.abs(got - expected).mean() < 1e-5


def test_gan_losses_formulas():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
    sp = F.softplus  # BCE-with-logits(x, 1) = softplus(-x), (x, 0) = softplus(x)
    torch.testing.assert_close(losses.gan_loss_g(fake, None, "vanilla"), sp(-fake).mean())
    lr_, lf = losses.gan_loss_d(real, fake, "vanilla")
    torch.testing.assert_close(lr_, sp(-real).mean())
    torch.testing.assert_close(lf, sp(fake).mean())
    torch.testing.assert_close(losses.gan_loss_g(fake, real, "ragan"),
                               (sp(real - fake.mean()).mean() + sp(-(fake - real.mean())).mean()) / 2)
    lr_, lf = losses.gan_loss_d(real, fake, "ragan")
    torch.testing.assert_close(lr_, 0.5 * sp(-(real - fake.mean())).mean())
    torch.testing.assert_close(lf, 0.5 * sp(fake - real.mean()).mean())


def test_perceptual_loss_weights_layers():
    torch.manual_seed(0)
    vgg = VGG19Features()
    pl = losses.PerceptualLoss(vgg, (0.1, 0.1, 1.0, 1.0, 1.0))
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    fa, fb = vgg(a), vgg(b)
    expected = sum(w * F.l1_loss(fa[n], fb[n]) for n, w in zip(losses.PERCEPTUAL_LAYERS, (0.1, 0.1, 1, 1, 1)))
    torch.testing.assert_close(pl(a, b), expected)
    a.requires_grad_(True)
    pl(a, b).backward()
    assert a.grad.abs().sum() > 0 and all(p.grad is None for p in vgg.parameters())


def test_metrics_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    a = skimage.data.astronaut()[:100, :120]
    b = np.clip(a + np.random.default_rng(0).normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    ya, yb = rgb_to_y(a)[4:-4, 4:-4], rgb_to_y(b)[4:-4, 4:-4]
    assert psnr(a, b, crop_border=4) == pytest.approx(peak_signal_noise_ratio(ya, yb, data_range=255), abs=1e-9)
    assert ssim(a, b, crop_border=4) == pytest.approx(structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255), abs=1e-7)
    assert ssim(a, a) == pytest.approx(1.0) and psnr(a, a) == float("inf")


def test_presets_are_the_published_settings():
    net = preset("realesrgan", "esrnet")
    op = net.stage.optim
    assert (op.lr_g, op.betas, op.ema_decay, net.stage.iters) == (2e-4, (0.9, 0.99), 0.999, 1_000_000)
    assert (net.data.batch_size, net.data.gt_size, net.net.num_block, net.stage.gan) == (12, 256, 23, False)
    gan = preset("realesrgan", "esrgan")
    lo = gan.stage.loss
    assert (lo.l1_weight, lo.perceptual_weight, lo.gan_weight, lo.gan_type) == (1, 1, 0.1, "vanilla")
    assert lo.usm_l1 and lo.usm_perceptual
    assert (gan.stage.optim.lr_g, gan.stage.optim.lr_d, gan.stage.iters) == (1e-4, 1e-4, 400_000)
    e = preset("esrgan", "esrgan").stage.loss
    assert (e.l1_weight, e.perceptual_weight, e.gan_weight, e.gan_type) == (0.01, 1.0, 0.005, "ragan")
    assert lo.layer_weights == (0.1, 0.1, 1.0, 1.0, 1.0)


def test_config_round_trip_and_strict_loading(tmp_path):
    cfg = preset("realesrgan", "esrgan")
    p = tmp_path / "c.toml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg
    p.write_text('preset = "realesrgan"\n[stage]\nname = "esrgan"\niters = 10\n[data]\nbatch_size = 2\n')
    c = load_config(p)
    assert c.stage.iters == 10 and c.data.batch_size == 2 and c.stage.loss.gan_weight == 0.1
    for text, msg in (("[data]\nbatch_sise = 2\n", r"c.toml: data.batch_sise: unknown key"),
                      ("[data]\nbatch_size = 'x'\n", r"data.batch_size: expected an integer"),
                      ("[data]\nbatch_size = 0\n", r"data.batch_size: must be >= 1"),
                      ("scale = 3\n", r"scale: must be 1, 2 or 4"),
                      ("[stage.optim]\nbetas = [0.9]\n", r"stage.optim.betas: expected 2 values"),
                      ("[stage.loss]\ngan_type = 'wgan'\n", r"gan_type"),
                      ("preset = 'srgan'\n", r"unknown preset"),
                      ("[data\n", r"not valid TOML")):
        p.write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_config(p)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="gt_size"):
        config_from_dict({"data": {"gt_size": 100}}, stage="esrgan")   # not a multiple of 4 x 8
