"""degradekit.ops.resize: sizes, modes, and the properties that tell the modes apart."""

import numpy as np
import pytest

from degradekit.ops.resize import resize

MODES = ("area", "bilinear", "bicubic")


@pytest.fixture(scope="module")
def img():
    return np.random.default_rng(0).random((40, 60, 3), dtype=np.float32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(20, 30), (13, 7), (57, 91), (1, 1), (40, 61)])
def test_output_size_and_dtype(img, mode, size):
    out = resize(img, size, mode)
    assert out.shape == size + (3,) and out.dtype == np.float32 and out.flags.c_contiguous


@pytest.mark.parametrize("mode", MODES)
def test_constant_stays_constant(mode):
    c = np.full((33, 21, 3), 0.37, np.float32)
    for size in ((10, 9), (50, 70)):
        np.testing.assert_allclose(resize(c, size, mode), 0.37, atol=1e-6)


def test_integer_factor_area_is_block_mean_and_bilinear_half_is_2x2_mean(img):
    block = img.reshape(10, 4, 15, 4, 3).mean((1, 3))
    np.testing.assert_allclose(resize(img, (10, 15), "area"), block, atol=1e-6)
    # half-pixel centres: x2 bilinear samples halfway between two pixels -> mean of 2x2 blocks
    two = img.reshape(20, 2, 30, 2, 3).mean((1, 3))
    np.testing.assert_allclose(resize(img, (20, 30), "bilinear"), two, atol=1e-6)


def test_modes_differ_and_bicubic_overshoots(img):
    outs = {m: resize(img, (17, 23), m) for m in MODES}
    for a in MODES:
        for b in MODES:
            if a < b:
                assert np.abs(outs[a] - outs[b]).mean() > 1e-3
    # a step edge enlarged with bicubic rings outside [0, 1] (not clamped, as the reference)
    step = np.zeros((8, 8, 3), np.float32)
    step[:, 4:] = 1.0
    up = resize(step, (8, 32), "bicubic")
    assert up.min() < -0.01 and up.max() > 1.01
    lin = resize(step, (8, 32), "bilinear")
    assert lin.min() >= 0 and lin.max() <= 1
    # area-averaging keeps the mean when shrinking by a non-integer factor
    assert abs(resize(img, (17, 23), "area").mean() - img.mean()) < 2e-3


def test_same_size_is_a_copy(img):
    out = resize(img, (40, 60), "bicubic")
    np.testing.assert_array_equal(out, img)
    assert out is not img


@pytest.mark.parametrize("size, mode, match", [
    ((0, 5), "area", "height"), ((5, -1), "area", "width"), ((5.0, 5), "area", "height"),
    ((5,), "area", "size_hw"), ((5, 5), "nearest", "mode"),
])
def test_bad_arguments(img, size, mode, match):
    with pytest.raises(ValueError, match=match):
        resize(img, size, mode)
