"""degradekit.ops.halo (oversharpen), degradekit.ops.banding (band), degradekit.ops.dither (dither)."""

import math

import cv2
import numpy as np
import pytest

from degradekit.ops import banding as B
from degradekit.ops import dither as D
from degradekit.ops import halo as H
from degradekit.ops.banding import band
from degradekit.ops.dither import DIFFUSION, DITHER_METHODS, bayer_matrix, dither
from degradekit.ops.halo import oversharpen
from degradekit.ops.quantize import to_uint8


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:228, 150:278]).astype(np.float32) / np.float32(255)


def step(lo=0.2, hi=0.8, shape=(24, 48)):
    img = np.full((*shape, 3), lo, np.float32)
    img[:, shape[1] // 2:] = hi
    return img


# --------------------------------------------------------------------------------------------- halo

@pytest.mark.parametrize("radius", [0.8, 1.5, 3.0])
def test_oversharpen_without_threshold_is_opencv_unsharp_mask(photo, radius):
    amount = 1.3
    k = 2 * math.ceil(3 * radius) + 1
    g = cv2.GaussianBlur(photo, (k, k), radius, borderType=cv2.BORDER_REFLECT_101)
    ref = np.clip(cv2.addWeighted(photo, 1 + amount, g, -amount, 0), 0, 1)
    np.testing.assert_allclose(oversharpen(photo, amount, radius, 0.0), ref, atol=2e-6)


def test_oversharpen_kernel_matches_numpy():
    rng = np.random.default_rng(1)
    img = rng.random(300, dtype=np.float32)
    blurred = rng.random(300, dtype=np.float32)
    out = np.empty_like(img)
    H._sharpen(img, blurred, np.float32(0.7), np.float32(40.0), out)
    r = img - blurred
    ref = np.clip(np.where(np.abs(r) * np.float32(255) > 40, img + np.float32(0.7) * r, img), 0, 1)
    np.testing.assert_array_equal(out, ref)


def test_halo_overshoot_grows_with_amount_and_width_with_radius():
    img = step(0.4, 0.6)
    over = [oversharpen(img, a, 2.0, 0.0)[:, 24:, 0].max() - 0.6 for a in (0.25, 0.5, 1.0)]
    under = [0.4 - oversharpen(img, a, 2.0, 0.0)[:, :24, 0].min() for a in (0.25, 0.5, 1.0)]
    assert 0 < over[0] < over[1] < over[2] and 0 < under[0] < under[1] < under[2]
    assert over[2] == pytest.approx(2 * over[1], rel=0.01)  # linear in amount (no clipping here)
    width = [(oversharpen(img, 1.0, r, 0.0)[0, 24:, 0] > 0.6 + 1e-3).sum() for r in (0.7, 1.5, 3.0)]
    assert width[0] < width[1] < width[2]


def test_threshold_suppresses_small_edges():
    img = np.full((24, 64, 3), 0.5, np.float32)
    img[:, 16:32] = 0.5 + 3 / 255  # a faint edge (3 levels)
    img[:, 48:] = 0.9  # a strong edge
    out = oversharpen(img, 2.0, 1.5, threshold=5.0)
    np.testing.assert_array_equal(out[:, :40], img[:, :40])  # faint edge untouched
    assert out[:, 48:].max() > 0.95 and out[:, 40:48].min() < 0.45  # strong edge: both halos
    assert not np.array_equal(oversharpen(img, 2.0, 1.5, threshold=0.0)[:, :40], img[:, :40])


def test_oversharpen_radius_zero_and_clip():
    img = step(0.05, 0.95)
    np.testing.assert_array_equal(oversharpen(img, 3.0, 0.0, 0.0), img)
    out = oversharpen(img, 5.0, 2.0, 0.0)
    assert out.min() == 0.0 and out.max() == 1.0


@pytest.mark.parametrize("args, err", [((-1.0, 1.0, 0.0), "amount: expected >= 0"),
                                       ((1.0, -1.0, 0.0), "radius: expected >= 0"),
                                       ((1.0, 1.0, float("nan")), "threshold: expected a finite")])
def test_oversharpen_bad_arguments(args, err):
    with pytest.raises(ValueError, match=err):
        oversharpen(np.zeros((8, 8, 3), np.float32), *args)


# --------------------------------------------------------------------------------------------- banding

def ramp(h=8, w=1024):
    x = np.linspace(-0.05, 1.05, w, dtype=np.float32)
    return np.ascontiguousarray(np.broadcast_to(x[None, :, None], (h, w, 3)))


@pytest.mark.parametrize("bits", range(1, 9))
def test_band_gives_exactly_2_pow_bits_levels(bits):
    img = ramp()
    out = band(img, bits)
    levels = (1 << bits) - 1
    expected = np.arange(levels + 1, dtype=np.float32) / np.float32(levels)
    np.testing.assert_array_equal(np.unique(out), expected)
    inside = (img >= 0) & (img <= 1)
    assert np.abs(out - img)[inside].max() <= 0.5 / levels + 1e-6  # nearest level


def test_band_kernel_matches_numpy_and_8_bits_is_to_uint8(photo):
    for bits in (1, 3, 5, 8):
        lv = np.float32((1 << bits) - 1)
        np.testing.assert_array_equal(band(photo, bits), np.rint(np.clip(photo, 0, 1) * lv) / lv)
    np.testing.assert_array_equal(band(photo, 8), to_uint8(photo).astype(np.float32) / np.float32(255))
    out = np.empty(5, np.float32)
    B._band(np.array([0.5, 0.25, 0.75, -1.0, 2.0], np.float32), np.float32(2.0), out)  # ties to even
    np.testing.assert_array_equal(out, [0.5, 0.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize("bits", [0, 9, 4.0])
def test_band_bad_bits(bits):
    with pytest.raises((ValueError, TypeError), match="bits: expected an int in 1..8"):
        band(np.zeros((4, 4, 3), np.float32), bits)


# --------------------------------------------------------------------------------------------- dither

def smooth(h=96, w=96):
    y, x = np.mgrid[0:h, 0:w] / np.array([h - 1, w - 1])[:, None, None]
    return np.stack([x, y, 0.5 + 0.4 * np.sin(3 * x + 2 * y)], -1).astype(np.float32)


@pytest.mark.parametrize("method", DITHER_METHODS)
@pytest.mark.parametrize("levels", [2, 3, 7, 256])
def test_dither_uses_only_the_levels(photo, method, levels):
    out = dither(photo, levels, method)
    assert out.dtype == np.float32 and out.shape == photo.shape
    allowed = np.arange(levels, dtype=np.float32) / np.float32(levels - 1)
    assert np.isin(np.unique(out), allowed).all()
    assert np.abs(out - photo).max() <= 1.0 / (levels - 1) * (2.0 if levels > 2 else 1.0) + 1e-6


MEAN_TOL = {"atkinson": 0.08, "bayer2": 0.07}


@pytest.mark.parametrize("method, tol", [(m, MEAN_TOL.get(m, 0.03)) for m in DITHER_METHODS])
def test_dither_keeps_the_local_mean(method, tol):
    # Low-pass of the dithered image ~ low-pass of the input (2 levels: the hardest case). Atkinson drops a
    # quarter of each error, so its mean drifts in dark and light areas, and a 2x2 Bayer tile has only 5 tones
    # (mean error up to 1/8): looser bounds for those two.
    img = smooth()
    out = dither(img, 2, method)

    def low(a):
        return cv2.GaussianBlur(a, (0, 0), 3.0, borderType=cv2.BORDER_REFLECT_101)[8:-8, 8:-8]

    assert np.abs(low(out) - low(img)).mean() < tol
    plain = band(img, 1)  # without dither the mean is lost
    assert np.abs(low(plain) - low(img)).mean() > 0.15


@pytest.mark.parametrize("n", [2, 4, 8])
def test_bayer_matrix_and_flat_field_fractions(n):
    m = bayer_matrix(n)
    assert sorted(m.ravel()) == list(range(n * n))
    for j in range(n * n + 1):
        f = (j + 0.25) / (n * n) if j < n * n else 0.999
        img = np.full((4 * n, 4 * n, 3), (1 + f) / 3, np.float32)  # levels 4: x * 3 = 1 + f
        out = dither(img, 4, f"bayer{n}")
        up = (out == np.float32(2 / 3)).mean()
        assert np.isin(out, [np.float32(1 / 3), np.float32(2 / 3)]).all()
        # level 2 where (M + 0.5) / n^2 >= 1 - f: the j largest of the n^2 thresholds (all for f = 0.999)
        assert up == pytest.approx(j / (n * n) if j < n * n else 1.0)


def test_diffusion_weights():
    for name, taps in DIFFUSION.items():
        total = sum(w for _, _, w in taps)
        assert total == pytest.approx(0.75 if name == "atkinson" else 1.0, abs=1e-15)
        assert all(dy > 0 or dx > 0 for dy, dx, _ in taps)  # only pixels not yet visited
    fs = {(dy, dx): w * 16 for dy, dx, w in DIFFUSION["floyd_steinberg"]}
    assert fs == {(0, 1): 7, (1, -1): 3, (1, 0): 5, (1, 1): 1}


def diffuse_ref(img, levels, taps):
    """Slow pure-Python error diffusion (raster order, float64), written from the definition."""
    h, w, _ = img.shape
    top = levels - 1
    buf = [[[min(max(float(img[y, x, c]), 0.0), 1.0) for c in range(3)] for x in range(w)] for y in range(h)]
    out = np.zeros((h, w, 3), np.float32)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                v = buf[y][x][c]
                k = min(max(math.floor(v * top + 0.5), 0.0), top)
                q = k / top
                out[y, x, c] = q
                for dy, dx, wt in taps:
                    if y + dy < h and 0 <= x + dx < w:
                        buf[y + dy][x + dx][c] += (v - q) * wt
    return out


@pytest.mark.parametrize("method", [m for m in DITHER_METHODS if not m.startswith("bayer")])
@pytest.mark.parametrize("levels", [2, 5])
def test_error_diffusion_matches_python_reference_bit_for_bit(method, levels):
    img = (np.random.default_rng(3).random((13, 17, 3)) * 1.1 - 0.05).astype(np.float32)
    np.testing.assert_array_equal(dither(img, levels, method), diffuse_ref(img, levels, DIFFUSION[method]))


def test_ordered_kernel_matches_numpy(photo):
    for n in (2, 8):
        t = ((bayer_matrix(n) + 0.5) / (n * n)).astype(np.float32)
        h, w, _ = photo.shape
        tile = np.tile(t, (h // n + 1, w // n + 1))[:h, :w, None]
        ref = np.minimum(np.floor(np.clip(photo, 0, 1) * np.float32(6) + tile), 6) / np.float32(6)
        out = np.empty_like(photo)
        D._ordered(photo, t, np.float32(6), out)
        np.testing.assert_array_equal(out, ref.astype(np.float32))


@pytest.mark.parametrize("args, err", [((1, "bayer4"), "levels: expected an int in 2..256"),
                                       ((257, "bayer4"), "levels: expected an int in 2..256"),
                                       ((4, "bayer16"), "method: expected one of"),
                                       ((4.0, "bayer4"), "levels: expected an int")])
def test_dither_bad_arguments(args, err):
    with pytest.raises((ValueError, TypeError), match=err):
        dither(np.zeros((4, 4, 3), np.float32), *args)
