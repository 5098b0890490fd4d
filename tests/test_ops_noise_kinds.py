"""degradekit.ops.noise_kinds: statistics, colour-space separation, Numba kernels vs NumPy references."""

import numpy as np
import pytest
from scipy import stats

from degradekit.ops import noise_kinds as NK
from degradekit.ops.noise import add_gaussian_noise, standard_normal
from degradekit.ops.noise_kinds import (SPACES, add_gaussian_noise_space, add_salt_pepper, add_speckle_noise,
                                        add_uniform_noise)

# BT.601 full range, written out independently of the module (float64).
RGB2YCC = np.array([[0.299, 0.587, 0.114],
                    [-0.168736, -0.331264, 0.5],
                    [0.5, -0.418688, -0.081312]])
YCC2RGB = np.linalg.inv(RGB2YCC)


def ycc(img):
    return img.astype(np.float64) @ RGB2YCC.T


@pytest.fixture(scope="module")
def mid():
    """Mid-range colours, far from 0 and 1 so that moderate noise never clips."""
    rng = np.random.default_rng(0)
    return (0.35 + 0.3 * rng.random((256, 256, 3))).astype(np.float32)


def test_uniform_variance_range_and_distribution(mid):
    a = 20.0
    d = (add_uniform_noise(mid, a, "rgb", 1).astype(np.float64) - mid) * 255
    assert np.abs(d).max() <= a + 1e-3
    assert abs(d.mean()) < 0.05 * a / np.sqrt(3)
    np.testing.assert_allclose(d.var(), a * a / 3, rtol=0.02)
    assert stats.kstest(d.ravel()[:20000] / a, "uniform", args=(-1, 2)).pvalue > 1e-3


@pytest.mark.parametrize("fn, arg", [(add_uniform_noise, 15.0), (add_gaussian_noise_space, 8.0),
                                     (add_speckle_noise, 12.0)])
def test_spaces_separate_components(mid, fn, arg):
    d = {s: ycc(fn(mid, arg, s, 5)) - ycc(mid) for s in SPACES}
    drgb = {s: fn(mid, arg, s, 5).astype(np.float64) - mid for s in SPACES}
    # luma: chroma unchanged to float precision; chroma: luma unchanged.
    assert np.abs(d["luma"][..., 1:]).max() < 2e-6 and d["luma"][..., 0].std() > 1e-3
    assert np.abs(d["chroma"][..., 0]).max() < 2e-6 and d["chroma"][..., 1:].std() > 1e-3
    # gray: one field in every channel (additive) or proportional to each channel (speckle).
    g = drgb["gray"]
    if fn is add_speckle_noise:
        np.testing.assert_allclose(g[..., 0] / mid[..., 0], g[..., 1] / mid[..., 1], atol=1e-5)
    else:
        np.testing.assert_allclose(g[..., 0], g[..., 1], atol=2e-7)
        np.testing.assert_allclose(drgb["luma"], g, atol=2e-7)  # additive noise on Y == gray noise
    # rgb: independent channels; chroma: independent Cb and Cr.
    c = np.corrcoef(drgb["rgb"].reshape(-1, 3).T)
    assert np.abs(c[np.triu_indices(3, 1)]).max() < 0.02
    assert abs(np.corrcoef(d["chroma"][..., 1].ravel(), d["chroma"][..., 2].ravel())[0, 1]) < 0.02


@pytest.mark.parametrize("space, comp", [("rgb", 0), ("luma", 0), ("chroma", 1), ("chroma", 2)])
def test_gaussian_std_per_component(mid, space, comp):
    sigma = 6.0
    out = add_gaussian_noise_space(mid, sigma, space, 9)
    d = (out.astype(np.float64) - mid) if space == "rgb" else (ycc(out) - ycc(mid))
    np.testing.assert_allclose(d[..., comp].std() * 255, sigma, rtol=0.02)


@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_rgb_and_gray_equal_the_existing_op(mid, gray):
    ours = add_gaussian_noise_space(mid, 7.5, "gray" if gray else "rgb", 123)
    np.testing.assert_array_equal(ours, add_gaussian_noise(mid, 7.5, gray, 123))


@pytest.mark.parametrize("space", ["rgb", "gray", "luma"])
def test_speckle_variance_grows_with_intensity_squared(space):
    levels = np.array([0.05, 0.1, 0.2, 0.4, 0.8])
    img = np.repeat(levels[:, None], 40000, axis=1).reshape(5, 200, 200).transpose(1, 0, 2).reshape(200, 1000)
    img = np.repeat(img[..., None], 3, axis=2).astype(np.float32)  # gray columns of 5 levels: Y = level
    sigma = 10.0
    d = add_speckle_noise(img, sigma, space, 2).astype(np.float64) - img
    std = np.array([d[:, i * 200:(i + 1) * 200, 0].std() for i in range(5)])
    np.testing.assert_allclose(std / levels, sigma / 255, rtol=0.03)  # std proportional to the intensity
    black = np.zeros((16, 16, 3), np.float32)
    np.testing.assert_array_equal(add_speckle_noise(black, 50.0, space, 3), black)


def test_chroma_speckle_keeps_neutral_grays_neutral():
    img = np.full((32, 32, 3), 0.4, np.float32)
    np.testing.assert_allclose(add_speckle_noise(img, 40.0, "chroma", 1), img, atol=1e-6)  # float32 Cb ~ 1e-8


@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize("amount, ratio", [(0.05, 0.5), (0.2, 0.1), (0.01, 1.0), (0.3, 0.0)])
def test_salt_pepper_fractions(mid, gray, amount, ratio):
    out = add_salt_pepper(mid, amount, ratio, gray, 11)
    salt, pepper = out == 1.0, out == 0.0
    kept = ~(salt | pepper)
    np.testing.assert_array_equal(out[kept], mid[kept])  # untouched values unchanged
    if gray:  # a hit pixel has all three channels set together
        assert np.all(salt.all(-1) == salt.any(-1)) and np.all(pepper.all(-1) == pepper.any(-1))
        salt, pepper = salt[..., 0], pepper[..., 0]
    n = salt.size
    for count, p in ((salt.sum() + pepper.sum(), amount), (salt.sum(), amount * ratio)):
        sd = np.sqrt(n * p * (1 - p))
        assert abs(count - n * p) <= 5 * sd + 1  # binomial, 5 sigma


def test_salt_pepper_channels_independent_when_not_gray(mid):
    out = add_salt_pepper(mid, 0.3, 0.5, False, 4)
    hit = (out == 0.0) | (out == 1.0)
    both = (hit[..., 0] & hit[..., 1]).mean()
    assert abs(both - 0.09) < 0.01  # P(hit)^2 for independent channels


def test_determinism_and_seed_dependence(mid):
    for fn, args in ((add_uniform_noise, (10.0, "chroma")), (add_speckle_noise, (10.0, "luma")),
                     (add_gaussian_noise_space, (5.0, "chroma")), (add_salt_pepper, (0.1, 0.5, True))):
        a, b, c = fn(mid, *args, seed=3), fn(mid, *args, seed=3), fn(mid, *args, seed=4)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_clipping():
    img = np.full((64, 64, 3), 0.98, np.float32)
    for s in SPACES:
        out = add_gaussian_noise_space(img, 30.0, s, 1)
        assert out.min() >= 0.0 and out.max() <= 1.0 and (out == 1.0).any()


# --------------------------------------------------------------------------------------------- kernels vs NumPy

def _ref(img, field, space, mul, add, speckle):
    """The slow route: to YCbCr (float64), perturb the component(s), back, clip."""
    x = img.astype(np.float64)
    h, w, _ = img.shape
    if space in ("rgb", "gray"):
        d = (mul * field.astype(np.float64) + add).reshape(h, w, -1)
        y = x + (d * x if speckle else d)
    else:
        q = ycc(x)
        comps = [0] if space == "luma" else [1, 2]
        d = (mul * field.astype(np.float64) + add).reshape(h, w, len(comps))
        q[..., comps] += d * q[..., comps] if speckle else d
        y = q @ YCC2RGB.T
    return np.clip(y, 0, 1)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("speckle", [False, True])
def test_numba_kernels_match_numpy(space, speckle):
    rng = np.random.default_rng(8)
    img = rng.random((13, 17, 3), dtype=np.float32)
    field = standard_normal(NK._field_size(13, 17, space), 5)
    out = NK._apply(img, field, space, 0.3, 0.01, speckle)
    np.testing.assert_allclose(out, _ref(img, field, space, 0.3, 0.01, speckle), atol=3e-6)


def test_salt_pepper_kernel_matches_numpy():
    rng = np.random.default_rng(2)
    img = (rng.random((9, 11, 3), dtype=np.float32) * 1.2 - 0.1).astype(np.float32)
    for gray in (False, True):
        u = rng.random(99 if gray else 297, dtype=np.float32)
        out = np.empty_like(img)
        NK._salt_pepper(img.reshape(-1), u, np.float32(0.1), np.float32(0.3), gray, out.reshape(-1))
        uu = np.repeat(u, 3) if gray else u
        ref = np.where(uu < 0.1, 1.0, np.where(uu < 0.3, 0.0, np.clip(img.reshape(-1), 0, 1)))
        np.testing.assert_array_equal(out.reshape(-1), ref.astype(np.float32))


@pytest.mark.parametrize("call, err", [
    (lambda im: add_uniform_noise(im, 5.0, "yuv", 1), "space: expected one of rgb, gray, luma, chroma"),
    (lambda im: add_uniform_noise(im, -1.0, "rgb", 1), "amplitude: expected >= 0"),
    (lambda im: add_speckle_noise(im, 1.0, "rgb", -2), "seed: expected a non-negative int"),
    (lambda im: add_gaussian_noise_space(im, float("nan"), "rgb", 1), "sigma: expected a finite"),
    (lambda im: add_salt_pepper(im, 1.5, 0.5, True, 1), "amount: expected a fraction"),
    (lambda im: add_salt_pepper(im, 0.1, 2.0, True, 1), "salt_ratio: expected a fraction"),
    (lambda im: add_salt_pepper(im, 0.1, 0.5, 1, 1), "gray: expected a bool"),
])
def test_bad_arguments(call, err):
    with pytest.raises((ValueError, TypeError), match=err) as e:
        call(np.zeros((8, 8, 3), np.float32))
    assert "\n" not in str(e.value)
