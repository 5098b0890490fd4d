"""BSRGAN's kernels against the published formulas (scipy pdf per tap, fspecial, interp2d-style shift) and
the nearest branch's sampling position (spec §4: a ramp lands at the block centre)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
from scipy.interpolate import RegularGridInterpolator
from scipy.stats import multivariate_normal

from degradekit.bsrgan.kernels import anisotropic_gaussian, fspecial_gaussian, nearest_kernel, shift_kernel
from degradekit.ops.blur import blur


def _aniso_ref(size, l1, l2, theta):
    """B:64-96 as written: V from the rotated unit vector, Sigma = V D V^-1, one pdf call per tap at
    [cx, cy] with centre size / 2 + 0.5."""
    v = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]) @ np.array([1.0, 0.0])
    V = np.array([[v[0], v[1]], [v[1], -v[0]]])
    sigma = V @ np.diag([l1, l2]) @ np.linalg.inv(V)
    centre = size / 2.0 + 0.5
    k = np.zeros((size, size))
    for y in range(size):
        for x in range(size):
            k[y, x] = multivariate_normal.pdf([x - centre + 1, y - centre + 1], mean=[0, 0], cov=sigma)
    return k / k.sum()


@pytest.mark.parametrize("size,l1,l2,theta", [(7, 2.8, 0.3, 0.4), (15, 7.9, 1.1, 2.5), (25, 0.05, 6.0, 1.2),
                                             (11, 3.0, 3.0, 0.0), (21, 0.7, 5.5, 3.1)])
def test_anisotropic_matches_published_pdf(size, l1, l2, theta):
    np.testing.assert_allclose(anisotropic_gaussian(size, l1, l2, theta), _aniso_ref(size, l1, l2, theta),
                               rtol=1e-9, atol=1e-15)


def test_anisotropic_lambdas_are_variances_along_theta():
    # a wide kernel's second moments recover Sigma: variance l1 along (cos, sin) in (x = column, y = row)
    k = anisotropic_gaussian(61, 6.0, 1.5, math.pi / 6)
    o = np.arange(61) - 30.0
    x, y = o[None, :], o[:, None]
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    along = ((c * x + s * y) ** 2 * k).sum()
    across = ((-s * x + c * y) ** 2 * k).sum()
    assert along == pytest.approx(6.0, rel=1e-6) and across == pytest.approx(1.5, rel=1e-6)
    assert np.allclose(k, k[::-1, ::-1])  # point symmetric: correlation == convolution


def _fspecial_ref(size, sigma):
    siz = (size - 1) / 2
    x, y = np.meshgrid(np.arange(-siz, siz + 1), np.arange(-siz, siz + 1))
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


@pytest.mark.parametrize("size,sigma", [(7, 2.8), (25, 0.3), (13, 1.0), (25, 2.4)])
def test_fspecial_matches_matlab_rule(size, sigma):
    k = fspecial_gaussian(size, sigma)
    np.testing.assert_allclose(k, _fspecial_ref(size, sigma), rtol=1e-12, atol=0)
    assert k.sum() == pytest.approx(1.0)


def test_fspecial_eps_rule_zeros_the_far_taps():
    k = fspecial_gaussian(25, 0.6)
    assert (k == 0).sum() > 0 and k[12, 12] > 0.4
    raw = np.exp(-(np.arange(-12, 13)[None] ** 2 + np.arange(-12, 13)[:, None] ** 2) / (2 * 0.36))
    assert ((raw < np.finfo(float).eps * raw.max()) == (k == 0)).all()


@pytest.mark.parametrize("sf", [2, 3, 4])
def test_shift_is_clamped_bilinear(sf):
    rng = np.random.default_rng(sf)
    k = rng.random((25, 25))
    d = (sf - 1) / 2
    g = np.arange(25.0)
    interp = RegularGridInterpolator((g, g), k, method="linear")
    t = np.clip(g + d, 0, 24)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    ref = interp(np.stack([yy.ravel(), xx.ravel()], 1)).reshape(25, 25)
    np.testing.assert_allclose(shift_kernel(k, sf), ref, atol=1e-12)


def test_nearest_branch_is_the_published_convolution():
    # our correlation with the flipped kernel == ndimage.convolve(shifted kernel, mode 'mirror')
    rng = np.random.default_rng(0)
    img = rng.random((40, 36, 3)).astype(np.float32)
    for sf, sigma in ((4, 1.7), (2, 0.4), (3, 1.0)):
        k = shift_kernel(fspecial_gaussian(25, sigma), sf)
        k /= k.sum()
        ref = ndi.convolve(img.astype(np.float64), k[..., None], mode="mirror")
        np.testing.assert_allclose(blur(img, nearest_kernel(sigma, sf)), ref, atol=2e-6)


@pytest.mark.parametrize("sf", [2, 3, 4])
def test_nearest_branch_samples_the_block_centre(sf):
    # ramp test (spec §4): LR pixel i lands on HR position sf*i + (sf-1)/2 (17.5 at i = 4, x4);
    # a correlation with the unflipped kernel would land sf - 1 px earlier (14.5)
    w = 64
    ramp = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :, None], (w, w, 3)).copy()
    out = blur(ramp, nearest_kernel(1.0, sf))[0::sf, 0::sf]
    i = np.arange(4, w // sf - 4)
    np.testing.assert_allclose(out[10, i, 0], sf * i + (sf - 1) / 2, atol=1e-3)
    if sf == 4:
        assert out[10, 4, 0] == pytest.approx(17.5, abs=1e-3)
        wrong = blur(ramp, np.ascontiguousarray(nearest_kernel(1.0, 4)[::-1, ::-1]))[0::4, 0::4]
        assert wrong[10, 4, 0] == pytest.approx(14.5, abs=1e-3)
