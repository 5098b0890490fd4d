"""KernelGAN: the collapsed generator equals the layered one, the schedule fallback, determinism, kernel
post-processing and x4 composition, and a short run that recovers a known blur better than bicubic."""
import math

import cv2
import numpy as np
import pytest
import torch

from degradekit.kernels import gaussian_kernel
from degradekit.pool import kernelgan as kg
from degradekit.pool.realsr import decimation_kernel


def _nets(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    g, _ = kg._build_nets(kg.KernelGANConfig(), "cpu")
    return g.to(dtype)


def test_collapsed_forward_and_gradients_equal_layer_by_layer():
    g = _nets()
    x = torch.randn(3, 1, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    w = torch.randn(3, 1, 26, 26, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    a = g(x)
    b = g.forward_layers(x)
    assert a.shape == b.shape == (3, 1, 26, 26)
    scale = b.abs().max().item()
    assert (a - b).abs().max().item() <= 1e-6 * scale
    ga = torch.autograd.grad((a * w).sum(), list(g.parameters()))
    gb = torch.autograd.grad((b * w).sum(), list(g.parameters()))
    for u, v in zip(ga, gb):
        assert (u - v).abs().max().item() <= 1e-6 * max(v.abs().max().item(), 1e-12)
    # float32 as used in training: same to float32 precision
    g32 = _nets(torch.float32)
    x32 = x.float()
    ref = g32.forward_layers(x32)
    assert (g32(x32) - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()


def test_collapsed_kernel_is_the_impulse_response():
    g = _nets()
    k = g.collapsed_kernel()
    assert k.shape == (kg.G_KERNEL_SIZE, kg.G_KERNEL_SIZE) == (13, 13)
    # a delta at (r, c) of a stride-1 valid correlation reads K[r - i, c - j] at output (i, j)
    delta = torch.zeros(1, 1, 25, 25, dtype=torch.float64)
    delta[0, 0, 12, 12] = 1.0
    y = delta
    for layer in g.layers[:-1]:
        y = torch.nn.functional.conv2d(y, layer.weight)
    y = torch.nn.functional.conv2d(y, g.layers[-1].weight)  # stride 1 here: the full response
    assert torch.allclose(torch.flip(y[0, 0], (0, 1)), k, atol=1e-12)


def _hr(size=256):
    from skimage import data

    img = data.astronaut()
    return np.ascontiguousarray(img[80:80 + size, 120:120 + size])


def _degrade(hr_u8, k, s):
    f = cv2.filter2D(hr_u8.astype(np.float32) / 255, -1, decimation_kernel(k, s).astype(np.float32),
                     borderType=cv2.BORDER_REFLECT_101)
    return f[::s, ::s]


def _psnr(a, b, shave=6):
    a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return 10 * math.log10(1.0 / float(np.mean((a - b) ** 2)))


def _bicubic_x2():
    t = (np.arange(8) - 3.5) / 2
    at = np.abs(t)
    w = np.where(at <= 1, 1.5 * at**3 - 2.5 * at**2 + 1, np.where(at < 2, -0.5 * at**3 + 2.5 * at**2 - 4 * at + 2, 0))
    w /= w.sum()
    return np.pad(np.outer(w, w), ((1, 0), (1, 0)))  # centre at +0.5: the x2 pixel-centre grid


def test_short_run_recovers_known_kernel_better_than_bicubic():
    """128x128 LR made with a known anisotropic Gaussian: re-degrading the HR with the estimate matches the LR
    clearly better than bicubic does (a wrong generator/loss/post-processing lands near or below bicubic)."""
    torch.set_num_threads(1)
    hr = _hr(256)
    k_true = gaussian_kernel(13, 2.0, 0.8, math.radians(35))
    lr = _degrade(hr, k_true, 2)
    lr8 = np.clip(np.rint(lr * 255), 0, 255).astype(np.uint8)
    before = lr8.copy()
    est = kg.estimate_kernel(lr8, seed=0, cfg=kg.KernelGANConfig(iters=400, early_stop=False))
    assert np.array_equal(lr8, before)  # the input is never modified (the original adds noise in place)
    k = est.kernel
    assert k.shape[0] % 2 == 1 and abs(k.sum() - 1) < 1e-9 and k.min() >= 0
    cy, cx = kg.centroid(k)
    assert abs(cy - k.shape[0] // 2) < 0.02 and abs(cx - k.shape[1] // 2) < 0.02
    p_est = _psnr(_degrade(hr, k, 2), lr)
    b = cv2.filter2D(hr.astype(np.float32) / 255, -1, _bicubic_x2().astype(np.float32),
                     borderType=cv2.BORDER_REFLECT_101)[::2, ::2]
    p_bic = _psnr(b, lr)
    assert p_est > p_bic + 3.0, (p_est, p_bic)


def test_same_seed_same_kernel_and_fallback_schedule():
    img = _hr(96)
    cfg = kg.KernelGANConfig(iters=60, early_stop=False, fallback_iter=20, bic_threshold=0.0,
                             bic_decay_every=10)
    a = kg.estimate_kernel(img, seed=3, cfg=cfg)
    b = kg.estimate_kernel(img, seed=3, cfg=cfg)
    c = kg.estimate_kernel(img, seed=4, cfg=cfg)
    assert a.raw.tobytes() == b.raw.tobytes()
    assert a.raw.tobytes() != c.raw.tobytes()
    # bicubic loss can never go under 0 -> the original would never switch the constraints on
    assert a.schedule["forced_fallback"] is True and a.schedule["similar_at"] == 20
    assert a.schedule["constraints_at"] == 40  # two decays (5 -> 0.05 -> 5e-4 < 5e-3) after the fallback


def test_rejects_small_and_wrong_images():
    with pytest.raises(ValueError, match="at least 64x64"):
        kg.estimate_kernel(np.zeros((40, 80, 3), np.uint8), seed=0)
    with pytest.raises(ValueError, match="uint8"):
        kg.estimate_kernel(np.zeros((80, 80, 3), np.float32), seed=0)


def test_postprocess_centres_and_thresholds():
    # a symmetric kernel (already centred): only the thresholding acts
    raw = gaussian_kernel(13, 1.5, 1.5, 0.0) * 1.1
    v41 = np.sort(raw.ravel())[-41]
    k = kg.postprocess_kernel(raw)
    assert k.shape == (17, 17) and abs(k.sum() - 1) < 1e-12 and k.min() >= 0
    inner = k[2:-2, 2:-2]
    keep = raw > 0.75 * v41
    assert np.count_nonzero(inner) == np.count_nonzero(keep) < 60
    want = np.clip(raw - 0.75 * v41, 0, None)
    assert np.allclose(inner, want / want.sum(), atol=1e-12)
    # an off-centre kernel is moved (sub-pixel) so its centre of mass is the centre pixel
    raw = np.zeros((13, 13))
    raw[4:7, 5:9] = [[1, 2, 1, 0.5], [2, 4, 2, 1], [1, 2, 1, 0.5]]
    raw[12, 12] = -0.1  # negative values are dropped
    k = kg.postprocess_kernel(raw)
    assert k.shape == (17, 17) and abs(k.sum() - 1) < 1e-12 and k.min() >= 0
    cy, cx = kg.centroid(k)
    assert abs(cy - 8) < 2e-3 and abs(cx - 8) < 2e-3
    assert k[-3:, -3:].sum() < 1e-9


def test_moments_of_known_gaussian():
    for theta in (0, 35, 100):
        m = kg.kernel_moments(gaussian_kernel(21, 2.0, 0.8, math.radians(theta)))
        assert m["sigma_major"] == pytest.approx(2.0, abs=1e-3)
        assert m["sigma_minor"] == pytest.approx(0.8, abs=1e-3)
        assert m["theta"] == pytest.approx(theta, abs=0.01)


def test_x4_kernel_equals_two_x2_steps():
    """Blur k2 + decimate 2, twice == one blur with the composed k4 + decimate 4 (centred grids)."""
    rng = np.random.default_rng(0)
    x = rng.random((160, 160)).astype(np.float64)
    k2 = kg.postprocess_kernel(gaussian_kernel(13, 1.4, 0.7, 0.6))
    k4 = kg.kernel_x4_from_x2(k2)
    assert k4.shape[0] % 2 == 1 and abs(k4.sum() - 1) < 1e-12
    f = lambda im, k: cv2.filter2D(im, -1, k, borderType=cv2.BORDER_REFLECT_101)  # noqa: E731
    two = f(f(x, k2)[::2, ::2], k2)[::2, ::2]
    one = f(x, k4)[::4, ::4]
    inner = slice(8, -8)
    assert np.abs(two[inner, inner] - one[inner, inner]).max() < 2e-4
    cy, cx = kg.centroid(k4)
    assert abs(cy - k4.shape[0] // 2) < 2e-3 and abs(cx - k4.shape[1] // 2) < 2e-3


def test_quality_flags_outliers():
    good = kg.postprocess_kernel(gaussian_kernel(13, 1.5, 1.0, 0.3))
    raw = np.pad(gaussian_kernel(11, 1.5, 1.0, 0.3), 1)  # centred at 6 (expected 6.5): within tolerance
    q = kg.kernel_quality(raw, good, {"gan": 0.5}, texture=6.0)
    assert q["outlier"] == []
    flat = np.clip(np.rint(120 + np.random.default_rng(0).normal(0, 1, (96, 96, 3))), 0, 255).astype(np.uint8)
    assert kg.image_texture(flat) < kg.QUALITY_LIMITS["texture"] < kg.image_texture(_hr(96))
    q = kg.kernel_quality(raw, good, {"gan": 0.5}, texture=kg.image_texture(flat))
    assert len(q["outlier"]) == 1 and "too flat" in q["outlier"][0]
    wide = np.ones((13, 13)) / 169 * 1.6  # diverged: sums to 1.6, mass on the border
    q = kg.kernel_quality(wide, kg.postprocess_kernel(wide), {"gan": float("nan")})
    text = " | ".join(q["outlier"])
    assert "raw sum" in text and "edge mass" in text and "non-finite" in text
