"""degradekit.ops.color.color_jitter: the documented formula, Pillow's saturation, skimage's gamma."""

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from skimage.exposure import adjust_gamma

from degradekit.ops import color as C
from degradekit.ops.color import color_jitter


@pytest.fixture(scope="module")
def photo_u8():
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:228, 150:278])


@pytest.fixture(scope="module")
def photo(photo_u8):
    return photo_u8.astype(np.float32) / np.float32(255)


def formula(img, b, c, s, g):
    a = img.astype(np.float64) * c + (0.5 * (1 - c) + b)
    y = a @ np.array([0.299, 0.587, 0.114])
    out = a * s + y[..., None] * (1 - s)
    return np.clip(out, 0, 1) ** g


def test_identity_is_exact(photo):
    np.testing.assert_array_equal(color_jitter(photo, 0.0, 1.0, 1.0, 1.0), photo)


@pytest.mark.parametrize("args", [(0.1, 1.2, 0.7, 0.9), (-0.2, 0.6, 1.5, 1.3), (0.0, 0.0, 1.0, 1.0),
                                  (0.05, 1.0, 0.0, 2.2), (0.3, 2.0, 2.0, 0.5)])
def test_kernel_matches_the_documented_formula(photo, args):
    np.testing.assert_allclose(color_jitter(photo, *args), formula(photo, *args), atol=2e-6)


@pytest.mark.parametrize("gamma", [0.5, 0.8, 1.25, 2.2])
def test_gamma_is_skimage_adjust_gamma(photo, gamma):
    np.testing.assert_allclose(color_jitter(photo, 0.0, 1.0, 1.0, gamma), adjust_gamma(photo, gamma), atol=1e-6)


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.3, 2.0])
def test_saturation_is_pillow_enhance_color(photo_u8, photo, factor):
    # Pillow works in uint8 (its luma rounded to an integer, the blend rounded): within 2.5 levels.
    ref = np.asarray(ImageEnhance.Color(Image.fromarray(photo_u8)).enhance(factor)).astype(np.float64) / 255
    np.testing.assert_allclose(color_jitter(photo, 0.0, 1.0, factor, 1.0), ref, atol=2.5 / 255)


def test_contrast_pivots_on_mid_gray_and_brightness_shifts():
    img = np.linspace(0.2, 0.8, 3 * 64, dtype=np.float32).reshape(8, 8, 3)
    img[0, 0] = 0.5
    out = color_jitter(img, 0.0, 1.7, 1.0, 1.0)
    np.testing.assert_array_equal(out[0, 0], 0.5)
    assert out.std() > img.std() * 1.6
    np.testing.assert_allclose(color_jitter(img, 0.0, 0.0, 1.0, 1.0), 0.5, atol=1e-7)  # contrast 0: flat
    np.testing.assert_allclose(color_jitter(img, 0.1, 1.0, 1.0, 1.0), img + 0.1, atol=1e-6)


def test_zero_saturation_is_gray_with_the_same_luma(photo):
    out = color_jitter(photo, 0.0, 1.0, 0.0, 1.0)
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-6)
    np.testing.assert_allclose(out[..., 0], photo @ np.array([0.299, 0.587, 0.114], np.float32), atol=1e-6)


def test_output_clipped():
    img = np.full((4, 4, 3), 0.9, np.float32)
    assert color_jitter(img, 0.5, 1.0, 1.0, 1.0).max() == 1.0
    assert color_jitter(img, -1.0, 1.0, 1.0, 0.5).min() == 0.0


def test_kernel_direct():
    img = np.array([0.1, 0.5, 0.9, 0.0, 1.0, 0.3], np.float32)
    out = np.empty_like(img)
    C._jitter(img, np.float32(1.5), np.float32(-0.2), np.float32(0.5), out)
    np.testing.assert_allclose(out, formula(img.reshape(1, 2, 3), 0.05, 1.5, 0.5, 1.0).ravel(), atol=1e-6)


@pytest.mark.parametrize("args, err", [((1.5, 1, 1, 1), "brightness: expected a number in \\[-1, 1\\]"),
                                       ((0, -1, 1, 1), "contrast: expected >= 0"),
                                       ((0, 1, -0.1, 1), "saturation: expected >= 0"),
                                       ((0, 1, 1, 0), "gamma: expected > 0"),
                                       ((0, 1, 1, "2"), "gamma: expected a number")])
def test_bad_arguments(args, err):
    with pytest.raises((ValueError, TypeError), match=err):
        color_jitter(np.zeros((4, 4, 3), np.float32), *args)
