"""Flat-patch noise extraction: exactly the flat patches of a constructed image, edge patches included."""
import numpy as np
import pytest

from degradekit.pool.noise import NoiseConfig, extract_flat_patches, gray, patch_grid, zero_mean


def test_patch_grid_covers_the_border():
    assert patch_grid(600, 256, 256) == [0, 256, 344]  # the last patch is flush with the bottom border
    assert patch_grid(512, 256, 256) == [0, 256]  # exact multiple: nothing added
    assert patch_grid(256, 256, 256) == [0]
    assert patch_grid(255, 256, 256) == []
    assert patch_grid(700, 256, 128) == [0, 128, 256, 384, 444]


def _constructed():
    """600 x 700 textured image (gray variance ~5000) with chosen 256 x 256 windows made flat."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (600, 700, 3)).astype(np.uint8)

    def flat(y, x, level, sd):
        img[y:y + 256, x:x + 256] = np.clip(np.rint(level + rng.normal(0, sd, (256, 256, 3))), 0, 255)

    flat(0, 0, 128, 1.0)  # regular grid patch: kept
    flat(256, 444, 200, 1.5)  # right-edge column patch (x = 700 - 256): kept only because edges are tested
    flat(344, 0, 30, 1.0)  # bottom-edge row patch, dark: kept with mean_min 0, dropped with mean_min 50
    flat(0, 256, 128, 8.0)  # too noisy: variance ~ 64 x (weights^2 sum) ~ 27 > 20
    return img


def test_keeps_exactly_the_flat_patches_including_edges():
    img = _constructed()
    kept = extract_flat_patches(img, NoiseConfig(var_max=20.0, mean_min=0.0, patch=256))
    assert [(p.y, p.x) for p in kept] == [(0, 0), (256, 444), (344, 0)]
    for p in kept:
        crop = img[p.y:p.y + 256, p.x:p.x + 256]
        assert np.array_equal(p.pixels, crop)
        g = gray(crop)
        assert p.mean == pytest.approx(g.mean()) and p.var == pytest.approx(g.var()) and p.var < 20
    dark_dropped = extract_flat_patches(img, NoiseConfig(var_max=20.0, mean_min=50.0, patch=256))
    assert [(p.y, p.x) for p in dark_dropped] == [(0, 0), (256, 444)]
    loose = extract_flat_patches(img, NoiseConfig(var_max=40.0, mean_min=0.0, patch=256))
    assert [(p.y, p.x) for p in loose] == [(0, 0), (0, 256), (256, 444), (344, 0)]


def test_gray_uses_luma_weights_and_thresholds_are_strict():
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 100
    assert np.allclose(gray(img), 29.9)
    # variance exactly at the bound is not "below" it
    img = np.zeros((8, 8, 3), np.uint8)
    img[::2] = 10  # gray 0 / 10 alternating rows: mean 5, variance 25
    img[1::2] = 0
    assert extract_flat_patches(img, NoiseConfig(var_max=25.0, patch=8)) == []
    assert len(extract_flat_patches(img, NoiseConfig(var_max=25.01, patch=8))) == 1


def test_small_image_has_no_patches_and_bad_config_rejected():
    assert extract_flat_patches(np.full((100, 300, 3), 128, np.uint8), NoiseConfig(patch=256)) == []
    with pytest.raises(ValueError, match="var_max"):
        NoiseConfig(var_max=0)
    with pytest.raises(ValueError, match="mean_min"):
        NoiseConfig(mean_min=300)
    with pytest.raises(ValueError, match="uint8"):
        extract_flat_patches(np.zeros((300, 300, 3), np.float32))


def test_zero_mean_per_channel():
    rng = np.random.default_rng(1)
    p = np.clip(rng.normal([40, 120, 220], 3, (64, 64, 3)), 0, 255).astype(np.uint8)
    z = zero_mean(p)
    assert z.dtype == np.float32 and z.shape == p.shape
    assert np.abs(z.mean(axis=(0, 1))).max() < 1e-6
    assert np.allclose(z.std(axis=(0, 1)), (p / 255.0).std(axis=(0, 1)), atol=1e-6)
