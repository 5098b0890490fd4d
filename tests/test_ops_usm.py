"""degradekit.ops.usm: the unsharp mask vs the published implementation's output (tests/data/usm_astronaut.npz,
astronaut centre 400x400 crop from /work/shared/reference/usm.npz)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from degradekit.ops import usm as U
from degradekit.ops.usm import gaussian_taps, usm_sharpen

DATA = Path(__file__).parent / "data" / "usm_astronaut.npz"


def test_matches_reference_output():
    d = np.load(DATA)
    img = d["input_rgb_uint8"].astype(np.float32) / np.float32(255)
    out = usm_sharpen(img)
    err = np.abs(out - d["output_rgb_float32"])
    assert out.dtype == np.float32 and out.shape == img.shape
    assert err.mean() < 1e-5 and err.max() < 1e-3
    # and it really sharpens: the output differs from the input where there are edges
    assert np.abs(out - img).max() > 0.05


def test_sigma_rule_and_taps():
    g = gaussian_taps(51, 0.0)
    np.testing.assert_allclose(g, cv2.getGaussianKernel(51, 8.0).ravel(), rtol=1e-6)
    assert g.dtype == np.float32 and abs(g.sum() - 1) < 1e-6


def usm_ref(img, radius=51, sigma=0.0, weight=0.5, threshold=10):
    """Slow NumPy reference: dense separable correlation with reflect-101 padding in float64."""
    g = cv2.getGaussianKernel(radius, sigma, cv2.CV_64F).ravel()
    r = radius // 2

    def gblur(x):
        p = np.pad(x.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="reflect")
        h, w = x.shape[:2]
        v = sum(g[i] * p[i:i + h] for i in range(radius))
        return sum(g[j] * v[:, j:j + w] for j in range(radius))

    blur = gblur(img)
    res = img - blur
    mask = (np.abs(res) * 255 > threshold).astype(np.float64)
    soft = gblur(mask)
    return soft * np.clip(img + weight * res, 0, 1) + (1 - soft) * img


def test_small_image_and_other_parameters_vs_numpy():
    img = np.random.default_rng(0).random((19, 26, 3), dtype=np.float32) ** 2
    for kw in ({}, {"radius": 7, "sigma": 1.5, "weight": 0.8, "threshold": 3}):
        out = usm_sharpen(img, **kw)
        ref = usm_ref(img, **kw)
        err = np.abs(out - ref)
        # a few threshold flips are allowed (|res| * 255 within float32 rounding of the threshold)
        assert np.mean(err > 1e-5) < 0.01 and np.median(err) < 1e-6


def test_kernels_vs_numpy():
    rng = np.random.default_rng(1)
    img = rng.random(900, dtype=np.float32)
    blur = (img + rng.normal(0, 0.05, 900)).astype(np.float32)
    mask = np.empty(img.shape, np.uint8)
    U._threshold_mask(img, blur, np.float32(10), mask)
    np.testing.assert_array_equal(mask, (np.abs(img - blur) * np.float32(255) > 10).astype(np.uint8))
    soft = rng.random(900, dtype=np.float32)
    out = np.empty_like(img)
    U._usm_blend(img, blur, soft, np.float32(0.5), out)
    sharp = np.clip(img + np.float32(0.5) * (img - blur), 0, 1)
    np.testing.assert_allclose(out, soft * sharp + (np.float32(1) - soft) * img, atol=1e-7, rtol=0)


@pytest.mark.parametrize("kw, exc", [({"radius": 50}, ValueError), ({"radius": 1}, ValueError),
                                     ({"radius": 5.0}, TypeError), ({"sigma": -1.0}, ValueError),
                                     ({"threshold": -1}, ValueError)])
def test_bad_parameters(kw, exc):
    with pytest.raises(exc):
        usm_sharpen(np.zeros((8, 8, 3), np.float32), **kw)
