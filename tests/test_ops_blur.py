"""degradekit.ops.blur: correlation with reflect-101 borders vs a direct NumPy reference."""

import numpy as np
import pytest

from degradekit.ops.blur import blur, crop_negligible_border, separable_terms


def correlate_ref(img, kernel):
    """Direct float64 correlation (kernel not flipped) with reflect-101 padding (np.pad 'reflect')."""
    k = kernel.shape[0]
    r = k // 2
    h, w, _ = img.shape
    p = np.pad(img.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="reflect")
    out = np.zeros((h, w, 3))
    for i in range(k):
        for j in range(k):
            out += kernel[i, j] * p[i:i + h, j:j + w]
    return out


def gaussian(k, sx, sy=None, theta=0.0):
    sy = sx if sy is None else sy
    c = np.arange(k) - k // 2
    xx, yy = np.meshgrid(c, c)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    cov_inv = np.linalg.inv(rot @ np.diag([sx ** 2, sy ** 2]) @ rot.T)
    p = np.stack([xx, yy], -1)
    q = np.einsum("...i,ij,...j->...", p, cov_inv, p)
    g = np.exp(-0.5 * q)
    return g / g.sum()


def generalized_iso(k, s, beta):
    c = np.arange(k) - k // 2
    xx, yy = np.meshgrid(c, c)
    g = np.exp(-0.5 * ((xx ** 2 + yy ** 2) / s ** 2) ** beta)
    return g / g.sum()


@pytest.fixture(scope="module")
def img():
    return np.random.default_rng(0).random((37, 53, 3), dtype=np.float32)


@pytest.mark.parametrize("k", [1, 3, 7, 11, 13, 21])
def test_random_asymmetric_kernel_matches_direct_correlation(img, k):
    kernel = np.random.default_rng(k).random((k, k))
    kernel /= kernel.sum()
    out = blur(img, kernel)
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_allclose(out, correlate_ref(img, kernel), atol=2e-6, rtol=0)


def test_correlation_not_convolution(img):
    # A one-sided kernel: correlation reads the right neighbour, convolution the left one.
    kernel = np.zeros((3, 3))
    kernel[1, 2] = 1.0
    out = blur(img, kernel)
    np.testing.assert_array_equal(out[:, :-1], img[:, 1:])
    np.testing.assert_array_equal(out[:, -1], img[:, -2])  # reflect-101: ...c d | c


@pytest.mark.parametrize("kernel, rank", [
    (gaussian(21, 2.5), 1),
    (gaussian(13, 1.0), 1),
    (generalized_iso(15, 1.0, 2.0), 2),
])
def test_low_rank_kernels_take_the_separable_path_and_stay_exact(img, kernel, rank):
    terms = separable_terms(kernel)
    assert terms is not None
    if rank is not None:
        assert len(terms) == rank
    np.testing.assert_allclose(blur(img, kernel), correlate_ref(img, kernel), atol=2e-6, rtol=0)


def test_asymmetric_low_rank_kernel_separable_path_is_correlation(img):
    rng = np.random.default_rng(5)
    kernel = np.outer(rng.random(15), rng.random(15)) + 0.3 * np.outer(rng.random(15), rng.random(15))
    kernel /= kernel.sum()
    assert separable_terms(kernel) is not None and len(separable_terms(kernel)) == 2
    np.testing.assert_allclose(blur(img, kernel), correlate_ref(img, kernel), atol=2e-6, rtol=0)


def test_rotated_anisotropic_and_full_rank_kernels(img):
    for kernel in (gaussian(21, 3.0, 0.6, 0.7), gaussian(9, 2.0, 0.3, -1.2)):
        np.testing.assert_allclose(blur(img, kernel), correlate_ref(img, kernel), atol=2e-6, rtol=0)
    assert separable_terms(np.random.default_rng(1).random((13, 13))) is None  # full rank: dense filter2D


@pytest.mark.parametrize("shape", [(3, 2, 3), (1, 1, 3), (1, 9, 3), (5, 1, 3)])
@pytest.mark.parametrize("k", [21, 9])
def test_images_smaller_than_the_kernel(shape, k):
    img = np.random.default_rng(2).random(shape, dtype=np.float32)
    for kernel in (gaussian(k, 3.0), np.random.default_rng(3).random((k, k)) / k ** 2):
        np.testing.assert_allclose(blur(img, kernel), correlate_ref(img, kernel), atol=5e-6, rtol=0)


def test_identity_and_constant_image():
    img = np.random.default_rng(4).random((16, 16, 3), dtype=np.float32)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    np.testing.assert_array_equal(blur(img, delta), img)
    const = np.full((20, 24, 3), 0.3, np.float32)
    np.testing.assert_allclose(blur(const, gaussian(21, 3.0)), const, atol=1e-6)


@pytest.mark.parametrize("kernel, err", [
    (np.ones((4, 4)), "k odd"),
    (np.ones((3, 5)), "k odd"),
    (np.ones(3), "k odd"),
    (np.full((3, 3), np.nan), "NaN"),
])
def test_bad_kernels_raise(kernel, err):
    with pytest.raises(ValueError, match=err):
        blur(np.zeros((8, 8, 3), np.float32), kernel)


def test_bad_images_raise():
    k = gaussian(3, 1.0)
    with pytest.raises(TypeError, match="float32"):
        blur(np.zeros((8, 8, 3), np.uint8), k)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        blur(np.zeros((8, 8), np.float32), k)
    with pytest.raises(ValueError, match="empty"):
        blur(np.zeros((0, 8, 3), np.float32), k)


def test_zero_padded_kernel_is_cropped_without_changing_the_result(img):
    small = np.random.default_rng(6).random((7, 7))
    small /= small.sum()
    padded = np.pad(small, 7)
    assert crop_negligible_border(padded).shape == (7, 7)
    np.testing.assert_array_equal(crop_negligible_border(padded), small)
    np.testing.assert_allclose(blur(img, padded), correlate_ref(img, small), atol=2e-6, rtol=0)
    off_centre = np.zeros((9, 9))
    off_centre[0, 4] = 1.0  # support touches the border: nothing to crop
    assert crop_negligible_border(off_centre).shape == (9, 9)
    assert crop_negligible_border(np.zeros((5, 5))).shape == (1, 1)
    # a narrow Gaussian drawn at 21x21 is cropped to its float32-relevant support, result unchanged
    narrow = gaussian(21, 0.8)
    assert crop_negligible_border(narrow).shape[0] < 11
    np.testing.assert_allclose(blur(img, narrow), correlate_ref(img, narrow), atol=2e-7, rtol=0)
    wide = gaussian(21, 3.0)
    assert crop_negligible_border(wide).shape == (21, 21)


def test_sinc_kernel_with_negative_taps(img):
    from scipy import special
    ax = np.arange(-6, 7.0)
    r = np.hypot(ax[:, None], ax[None, :])
    r[6, 6] = 1.0
    wc = 2.0
    k = wc * special.j1(wc * r) / (2 * np.pi * r)
    k[6, 6] = wc ** 2 / (4 * np.pi)
    k /= k.sum()
    assert k.min() < 0
    np.testing.assert_allclose(blur(img, k), correlate_ref(img, k), atol=2e-6, rtol=0)
