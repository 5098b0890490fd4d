"""Spectral blur shape (degradekit.pool.spectral): the fit against known blurs of synthetic power-law scenes
and of a real photo, its reliability flags, and the affine kernel warp."""
import math

import cv2
import numpy as np
import pytest

from degradekit.kernels import gaussian_kernel
from degradekit.pool.kernelgan import centroid, kernel_moments
from degradekit.pool.realsr import decimation_kernel
from degradekit.pool.spectral import shape_kernels, spectral_blur, warp_kernel_to_cov


def _power_law_scene(n=768, alpha=2.0, seed=0):
    """A gray scene with power spectrum 1/|f|^alpha and random phases (scale-invariant, isotropic), in [0, 1]."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(n)
    r = np.hypot(f[:, None], f[None, :])
    r[0, 0] = 1.0
    spec = r ** (-alpha / 2) * np.exp(2j * np.pi * rng.random((n, n)))
    spec[0, 0] = 0
    img = np.fft.ifft2(spec).real
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32)


def _blur_decimate(img, k, s):
    f = cv2.filter2D(img, -1, decimation_kernel(k, s).astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    return f[::s, ::s]


def _angle_err(a, b):
    d = abs(a - b) % 180
    return min(d, 180 - d)


@pytest.mark.parametrize("sx,sy,theta", [(2.0, 0.8, 35.0), (2.0, 0.8, 110.0), (1.6, 1.0, 160.0)])
def test_recovers_known_anisotropic_blur_of_a_power_law_scene(sx, sy, theta):
    scene = _power_law_scene()
    lr = _blur_decimate(scene, gaussian_kernel(21, sx, sy, math.radians(theta)), 2) * 255
    est = spectral_blur(lr, 2)
    assert est.reliable, est.why
    assert abs(est.alpha - 2.0) < 0.3  # the scene's exponent
    assert est.sigma_major == pytest.approx(sx, rel=0.1)
    assert est.sigma_minor == pytest.approx(sy, rel=0.25)
    assert _angle_err(est.theta, theta) < 6
    # the same blur seen at x4 has a quarter of the LR width; the HR covariance is scale^2 that of the LR
    c2 = np.array(est.cov)
    assert np.allclose(c2, 4 * np.array(est.cov_lr))


def test_round_blur_reads_round_and_no_blur_is_flagged_too_sharp():
    scene = _power_law_scene(seed=1)
    est = spectral_blur(_blur_decimate(scene, gaussian_kernel(21, 1.5, 1.5, 0.0), 2) * 255, 2)
    assert est.reliable and est.sigma_major / est.sigma_minor < 1.25
    assert est.sigma_major == pytest.approx(1.5, rel=0.12)
    sharp = scene[::4, ::4] * 255  # decimated without blur: nothing to measure
    est = spectral_blur(sharp, 4)
    assert not est.reliable and "too sharp" in est.why


def test_white_noise_is_not_a_power_law():
    noise = np.random.default_rng(3).normal(128, 20, (256, 256))
    est = spectral_blur(noise, 2)
    assert not est.reliable and "power-law exponent" in est.why


def test_input_checks():
    with pytest.raises(ValueError, match="both sides >= 32"):
        spectral_blur(np.zeros((20, 100, 3), np.uint8), 2)


def test_warp_round_gaussian_to_target_covariance():
    th = math.radians(35)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    cov = rot @ np.diag([2.0**2, 0.8**2]) @ rot.T
    w = warp_kernel_to_cov(gaussian_kernel(17, 1.3, 1.3, 0.0), cov)
    assert w.shape[0] % 2 == 1 and w.sum() == pytest.approx(1.0)
    mid = (w.shape[0] - 1) / 2
    assert np.allclose(centroid(w), (mid, mid), atol=1e-3)
    ref = gaussian_kernel(w.shape[0], 2.0, 0.8, th)  # gaussian_kernel and the warp share the angle convention
    assert np.abs(w - ref).max() < 2e-3
    # a non-Gaussian profile (a disk) keeps its shape class but takes the target covariance
    yy, xx = np.mgrid[-8:9, -8:9]
    disk = (yy**2 + xx**2 <= 25).astype(np.float64)
    disk /= disk.sum()
    wd = warp_kernel_to_cov(disk, cov)
    m = kernel_moments(wd)
    assert m["sigma_major"] == pytest.approx(2.0, rel=0.03) and m["sigma_minor"] == pytest.approx(0.8, rel=0.05)
    assert _angle_err(m["theta"], 35) < 1
    assert np.abs(wd - gaussian_kernel(wd.shape[0], 2.0, 0.8, th)).max() > 5e-3  # still a (sheared) disk


def test_shape_kernels_on_a_photo_recover_the_elongation_a_round_estimate_misses():
    """astronaut blurred with sigma 2.0/0.8 at 35 deg, x2: starting from a round kernel of about the right
    width (what KernelGAN gives), the spectral shape brings the elongation and the angle back, and
    re-degrading the HR with it matches the true LR far better."""
    from skimage import data

    hr = data.astronaut().astype(np.float32) / 255
    kt = gaussian_kernel(13, 2.0, 0.8, math.radians(35))
    lr = _blur_decimate(hr, kt, 2)
    lr8 = np.clip(np.rint(lr * 255), 0, 255).astype(np.uint8)
    round_k = gaussian_kernel(17, 1.4, 1.4, 0.0)
    k2, k4, rec = shape_kernels(lr8, round_k)
    assert rec["method"] == "spectral" and rec["spectral"]["reliable"]
    m = kernel_moments(k2)
    assert m["sigma_major"] == pytest.approx(2.0, rel=0.1)
    assert m["sigma_major"] / m["sigma_minor"] > 2.0  # true 2.5; KernelGAN alone: about 1.3
    assert _angle_err(m["theta"], 35) < 8
    m4 = kernel_moments(k4)
    assert m4["sigma_major"] == pytest.approx(2 * m["sigma_major"], rel=0.02)

    def psnr(k):
        d = _blur_decimate(hr, k, 2)[8:-8, 8:-8] - lr[8:-8, 8:-8]
        return 10 * math.log10(1 / float(np.mean(d.astype(np.float64) ** 2)))

    assert psnr(k2) > psnr(round_k) + 8


def test_sharp_photo_gets_the_floor_blur_not_kernelgans_wide_kernel():
    """A photo sharper than the fit can measure: the kernel is set to the narrowest blur the fit vouches for
    (0.25 LR px = 0.5 HR px at x2) instead of a wide KernelGAN estimate; a photo that is not a power law
    keeps the KernelGAN kernel."""
    scene = _power_law_scene(seed=2)
    sharp = np.clip(np.rint(scene[::2, ::2] * 255), 0, 255).astype(np.uint8)
    wide = gaussian_kernel(17, 1.4, 1.4, 0.0)
    k2, k4, rec = shape_kernels(np.repeat(sharp[..., None], 3, 2), wide)
    assert rec["method"] == "spectral" and "too sharp" in rec["floor"] and rec["spectral"]["sharp"]
    m = kernel_moments(k2)
    assert m["sigma_major"] == pytest.approx(0.5, rel=0.1) and m["sigma_minor"] == pytest.approx(0.5, rel=0.1)
    assert kernel_moments(k4)["sigma_major"] == pytest.approx(1.0, rel=0.1)
    noise = np.clip(np.random.default_rng(4).normal(128, 20, (128, 128, 3)), 0, 255).astype(np.uint8)
    k2, _, rec = shape_kernels(noise, wide)
    assert rec["method"] == "kernelgan" and "power-law" in rec["kept_kernelgan"] and np.array_equal(k2, wide)
