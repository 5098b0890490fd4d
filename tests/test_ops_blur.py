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


# --------------------------------------------------------------------------------------------- the fast analysis
# The crop and the separability decision take Numba shortcuts (ring sums, a certified total, 2x2 / 3x3 minor
# bounds on the singular values before any SVD). The realesrgan preset's bytes depend on them giving the plain
# NumPy formulation's answer, kernel by kernel: compared here with that formulation (the code before the
# shortcuts), bit for bit.

def _crop_reference(kernel, tol=5e-8):
    k = kernel.shape[0]
    c = k // 2
    a = np.abs(kernel)
    total = a.sum()
    if total == 0.0:
        return kernel[c:c + 1, c:c + 1]
    yy, xx = np.indices(a.shape)
    dist = np.maximum(np.abs(yy - c), np.abs(xx - c))
    ring = np.bincount(dist.ravel(), weights=a.ravel(), minlength=c + 1)
    outside = np.concatenate([np.cumsum(ring[::-1])[::-1][1:], [0.0]])
    r = int(np.argmax(outside <= tol * total))
    return kernel[c - r:c + r + 1, c - r:c + r + 1] if r < c else kernel


def _terms_reference(kernel):
    from degradekit.ops.blur import _dense_cost, _sep_cost
    k = kernel.shape[0]
    if k == 1:
        return None
    u, s, vt = np.linalg.svd(kernel)
    tail = np.concatenate([np.cumsum(s[::-1])[::-1], [0.0]])
    budget = 5e-8 * max(np.abs(kernel).sum(), 1e-300)
    rank = max(int(np.argmax(tail <= budget)), 1)
    if _sep_cost(k, rank) >= _dense_cost(k):
        return None
    return [((u[:, r] * np.sqrt(s[r])).astype(np.float32), (vt[r] * np.sqrt(s[r])).astype(np.float32))
            for r in range(rank)]


def _analysis_kernels():
    from degradekit.config import preset
    from degradekit.kernels import build_kernel
    from degradekit.ops import blur_kernels as bk
    from degradekit.pipeline import sample
    out = []
    for name in ("realesrgan", "realworld"):
        cfg = preset(name)
        for seed in range(60):
            p = sample(np.random.default_rng(seed), cfg)
            for st in p.stages:
                if st.blur is not None and getattr(st.blur, "kind", None) != "median":
                    out.append(build_kernel(st.blur, None))
            if p.final.sinc is not None:
                out.append(build_kernel(p.final.sinc, None))
    for v in np.linspace(1.0, 11.0, 21):
        out += [bk.box_kernel(v), bk.disk_kernel(v / 2), bk.motion_kernel(v, 37.0 * v), bk.motion_kernel(v, 0.0),
                bk.motion_kernel(v, 90.0)]
    rng = np.random.default_rng(7)
    for k in (3, 5, 7, 9, 11, 13, 15):
        for rank in (1, 2, 3):
            m = sum(np.outer(rng.random(k), rng.random(k)) for _ in range(rank))
            out += [m / m.sum(), np.pad(m / m.sum(), 2)]
            # a rank-1 kernel plus a perturbation near the SVD budget (5e-8 of sum |K|)
            e = np.outer(rng.standard_normal(k), rng.standard_normal(k))
            for scale in (1e-8, 5e-8, 1e-7):
                pert = m / m.sum() + scale * e / np.linalg.svd(e, compute_uv=False)[0]
                out.append(pert)
    out += [np.zeros((5, 5)), np.zeros((1, 1)), np.ones((1, 1)), -gaussian(9, 1.5)]
    return out


def test_fast_crop_and_separability_match_the_numpy_formulation():
    for kernel in _analysis_kernels():
        cropped = crop_negligible_border(kernel)
        ref = _crop_reference(kernel)
        assert cropped.shape == ref.shape
        np.testing.assert_array_equal(cropped, ref)
        terms, ref_terms = separable_terms(cropped), _terms_reference(ref)
        assert (terms is None) == (ref_terms is None)
        if terms is not None:
            assert len(terms) == len(ref_terms)
            for (c, r), (rc, rr) in zip(terms, ref_terms):
                np.testing.assert_array_equal(c, rc)
                np.testing.assert_array_equal(r, rr)


def test_crop_near_the_threshold_defers_to_numpy():
    from degradekit.ops.blur import _crop_radius_certain
    k = np.zeros((7, 7))
    k[3, 3] = 1.0
    k[0, 3] = 5e-8 / (1 - 5e-8)  # the outer ring's mass is exactly the threshold (up to rounding)
    assert _crop_radius_certain(k, 5e-8) == -1
    np.testing.assert_array_equal(crop_negligible_border(k), _crop_reference(k))
    k[0, 3] = 1e-3
    assert _crop_radius_certain(k, 5e-8) == 3  # clearly significant: decided without NumPy's sum
    k[0, 3] = 1e-12
    assert _crop_radius_certain(k, 5e-8) == 0


@pytest.mark.parametrize("k", [3, 7, 9, 11])
def test_rank_lower_bounds_do_not_exceed_the_singular_values(k):
    from degradekit.ops.blur import _abs_sum, _rank_lower_bound_2, _rank_lower_bound_3
    rng = np.random.default_rng(k)
    for _ in range(50):
        m = rng.standard_normal((k, k)) * (rng.random((k, k)) < 0.6)
        s = np.linalg.svd(m, compute_uv=False)
        assert _rank_lower_bound_2(m, np.inf) <= s[1] * (1 + 1e-12) + 1e-300
        assert _rank_lower_bound_3(m, np.inf) <= s[2] * (1 + 1e-12) + 1e-300
        assert _abs_sum(m) == pytest.approx(np.abs(m).sum(), rel=1e-13)
