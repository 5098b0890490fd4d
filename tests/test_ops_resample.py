"""degradekit.ops.resample against Pillow (antialiased), OpenCV (interpolating) and a slow scalar reference.

Tolerances: Pillow mode "F" 2e-7 (the same float64 weights and sums; measured <= 1.2e-7, float32 rounding of the
intermediate); OpenCV 3e-6 for our Numba scheme run with OpenCV's filters (OpenCV uses float32 weights; measured
<= 2.5e-6 for Lanczos-4); the scalar float64 reference 1e-6.
"""

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from degradekit.ops import resample as R
from degradekit.ops.resample import FILTERS, antialias_weights, interp_weights, resample

SIZES = [(10, 17), (37, 20), (80, 111), (29, 61), (5, 3), (1, 1)]  # from 37x53: shrink, mixed, enlarge, tiny


@pytest.fixture(scope="module")
def img():
    return np.random.default_rng(0).random((37, 53, 3), dtype=np.float32)


PIL_FILTERS = {"box": Image.BOX, "bilinear": Image.BILINEAR, "hamming": Image.HAMMING,
               "bicubic_a50": Image.BICUBIC, "lanczos3": Image.LANCZOS, "nearest": Image.NEAREST}


def pil_resize(img, size, flt):
    h, w = size
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c]), "F").resize((w, h), flt))
                     for c in range(3)], -1)


@pytest.mark.parametrize("name", sorted(PIL_FILTERS))
@pytest.mark.parametrize("size", SIZES)
def test_antialiased_matches_pillow_mode_f(img, name, size):
    out = resample(img, size, name, True)
    assert out.dtype == np.float32 and out.shape == (*size, 3)
    np.testing.assert_allclose(out, pil_resize(img, size, PIL_FILTERS[name]), atol=2e-7, rtol=0)


CV2_FILTERS = {"bilinear": cv2.INTER_LINEAR, "bicubic_a75": cv2.INTER_CUBIC, "lanczos4": cv2.INTER_LANCZOS4}


@pytest.mark.parametrize("name", sorted(CV2_FILTERS))
@pytest.mark.parametrize("size", SIZES)
def test_interpolating_scheme_matches_opencv(img, name, size):
    # The Numba scheme that serves hamming, mitchell, lanczos3, ... without antialias, run with the filters that
    # OpenCV has: it must reproduce cv2.resize (replicated borders, fixed support, half-pixel centres).
    ours = R._apply_separable(img, size, name, False)
    ref = cv2.resize(img, size[::-1], interpolation=CV2_FILTERS[name])
    np.testing.assert_allclose(ours, ref, atol=3e-6, rtol=0)
    np.testing.assert_array_equal(resample(img, size, name, False), ref)


@pytest.mark.parametrize("size", SIZES)
def test_nearest_is_pixel_centred_in_both_modes(img, size):
    ref = pil_resize(img, size, Image.NEAREST)
    for aa in (False, True):
        np.testing.assert_array_equal(resample(img, size, "nearest", aa), ref)
    # A width-1 box without antialias selects exactly the pixel nearest-exact picks.
    np.testing.assert_array_equal(resample(img, size, "box", False), ref)


# --------------------------------------------------------------------------------------------- scalar reference

def _sinc(x):
    return 1.0 if x == 0.0 else math.sin(math.pi * x) / (math.pi * x)


def _cubic(a):
    def f(x):
        x = abs(x)
        if x < 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        if x < 2:
            return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
        return 0.0
    return f


def _mitchell(x):
    b = c = 1 / 3
    x = abs(x)
    if x < 1:
        return ((12 - 9 * b - 6 * c) * x ** 3 + (-18 + 12 * b + 6 * c) * x ** 2 + 6 - 2 * b) / 6
    if x < 2:
        return ((-b - 6 * c) * x ** 3 + (6 * b + 30 * c) * x ** 2 + (-12 * b - 48 * c) * x + 8 * b + 24 * c) / 6
    return 0.0


SCALAR = {  # name -> (f, support), written from the published formulas
    "box": (lambda x: 1.0 if -0.5 < x <= 0.5 else 0.0, 0.5),
    "bilinear": (lambda x: max(0.0, 1 - abs(x)), 1.0),
    "hamming": (lambda x: _sinc(x) * (0.54 + 0.46 * math.cos(math.pi * x)) if abs(x) < 1 else 0.0, 1.0),
    "bicubic_a50": (_cubic(-0.5), 2.0),
    "catmull_rom": (_cubic(-0.5), 2.0),
    "bicubic_a75": (_cubic(-0.75), 2.0),
    "mitchell": (_mitchell, 2.0),
    "lanczos3": (lambda x: _sinc(x) * _sinc(x / 3) if -3 <= x < 3 else 0.0, 3.0),
    "lanczos4": (lambda x: _sinc(x) * _sinc(x / 4) if -4 <= x < 4 else 0.0, 4.0),
    "gaussian": (lambda x: math.exp(-x * x / (2 * 0.25)) if abs(x) < 3 else 0.0, 3.0),
}


def ref_matrix(n_in, n_out, name, aa):
    """Dense (n_out, n_in) float64 resampling matrix of one axis, one output pixel at a time."""
    f, support = SCALAR[name]
    m = np.zeros((n_out, n_in))
    if n_in == n_out:
        return np.eye(n_in)
    s = n_in / n_out
    for i in range(n_out):
        if aa:  # Pillow: stretched filter, window of centres within (-sup, sup], no padding
            fs = max(s, 1.0)
            centre = (i + 0.5) * s
            for x in range(n_in):
                d = x + 0.5 - centre
                if -support * fs < d <= support * fs:
                    m[i, x] = f(d / fs)
        else:  # OpenCV: fixed taps around src, edge pixels repeated
            src = (i + 0.5) * s - 0.5
            h = math.ceil(support)
            for t in range(math.floor(src) - h + 1, math.floor(src) + h + 1):
                m[i, min(max(t, 0), n_in - 1)] += f(t - src)
        m[i] /= m[i].sum()
    return m


@pytest.mark.parametrize("name", [f for f in FILTERS if f != "nearest"])
@pytest.mark.parametrize("aa", [False, True])
@pytest.mark.parametrize("size", [(4, 7), (9, 11), (23, 30)])
def test_every_filter_matches_the_scalar_formula(name, aa, size):
    img = np.random.default_rng(1).random((9, 11, 3), dtype=np.float32)
    my, mx = ref_matrix(9, size[0], name, aa), ref_matrix(11, size[1], name, aa)
    ref = np.einsum("ij,jkc,lk->ilc", my, img.astype(np.float64), mx)
    np.testing.assert_allclose(resample(img, size, name, aa), ref, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------------------- properties

@pytest.mark.parametrize("name", [f for f in FILTERS if f != "nearest"])
@pytest.mark.parametrize("n_in, n_out", [(40, 10), (40, 13), (13, 40), (7, 7)])
def test_weights_sum_to_one(name, n_in, n_out):
    for weights in (interp_weights, antialias_weights):
        _, w, _ = weights(n_in, n_out, name)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("name", [f for f in FILTERS if f not in ("nearest", "box")])
@pytest.mark.parametrize("aa", [False, True])
def test_symmetric_filters_commute_with_a_mirror(img, name, aa):
    # Symmetric kernels and centred grids: resampling a mirrored image gives the mirrored result.
    out = resample(img, (15, 22), name, aa)
    # (5e-6: OpenCV's Lanczos-4 weights are float32)
    np.testing.assert_allclose(resample(img[::-1, ::-1].copy(), (15, 22), name, aa), out[::-1, ::-1], atol=5e-6)


@pytest.mark.parametrize("name", ["box", "bilinear", "hamming", "bicubic_a50", "catmull_rom", "bicubic_a75",
                                  "lanczos3", "lanczos4"])
def test_interpolating_filters_are_the_identity_at_factor_one(name):
    idx, w, _ = interp_weights(12, 12, name)
    m = np.zeros((12, 12))
    np.add.at(m, (np.repeat(np.arange(12), idx.shape[1]), idx.ravel()), w.ravel())
    np.testing.assert_allclose(m, np.eye(12), atol=1e-15)


@pytest.mark.parametrize("name", ["mitchell", "gaussian"])
def test_smoothing_filters_are_not_interpolating(name):
    # Mitchell (B = 1/3) and the Gaussian blur even at factor 1: their weights are not a delta.
    _, w, _ = interp_weights(12, 12, name)
    assert w.max() < 0.95
    img = np.random.default_rng(2).random((12, 12, 3), dtype=np.float32)
    np.testing.assert_array_equal(resample(img, (12, 12), name, False), img)  # unchanged axes are not filtered


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("aa", [False, True])
def test_constant_image_stays_constant(name, aa):
    img = np.full((31, 26, 3), 0.37, np.float32)
    for size in [(7, 9), (31, 13), (64, 50)]:
        np.testing.assert_allclose(resample(img, size, name, aa), 0.37, atol=2e-6)


@pytest.mark.parametrize("name", ["bilinear", "bicubic_a75", "lanczos3", "mitchell", "hamming", "gaussian"])
def test_antialias_removes_the_alias_of_a_fine_pattern(name):
    # Stripes of period 3 px shrunk 4x (above the output Nyquist): interpolating filters turn them into stripes
    # of period 3 output px (aliasing, measured >= 0.32 deviation), the antialiased ones average them (<= 0.022).
    x = np.arange(96)
    stripes = np.repeat((x % 3 == 0)[None, :, None], 96, axis=0).repeat(3, axis=2).astype(np.float32)
    aa = resample(stripes, (24, 24), name, True)[4:-4, 4:-4]
    plain = resample(stripes, (24, 24), name, False)[4:-4, 4:-4]
    assert np.abs(aa - aa.mean()).max() < 0.03
    assert np.abs(plain - plain.mean()).max() > 0.3


def test_overshoot_is_not_clipped():
    img = np.zeros((8, 16, 3), np.float32)
    img[:, 8:] = 1.0
    for name in ("lanczos3", "bicubic_a50"):
        for aa in (False, True):
            out = resample(img, (8, 37), name, aa)
            assert out.max() > 1.0 and out.min() < 0.0


@pytest.mark.parametrize("args, err", [
    (((0, 4), "bilinear", True), "height must be an int >= 1"),
    (((4, 2.0), "bilinear", True), "width must be an int >= 1"),
    ((4, "bilinear", True), "expected \\(height, width\\)"),
    (((4, 4), "cubic", True), "filter: expected one of"),
    (((4, 4), "bilinear", 1), "antialias: expected a bool"),
])
def test_bad_arguments_raise_one_line(args, err):
    with pytest.raises((ValueError, TypeError), match=err) as e:
        resample(np.zeros((8, 8, 3), np.float32), *args)
    assert "\n" not in str(e.value)


def test_bad_image_raises():
    with pytest.raises(TypeError, match="float32"):
        resample(np.zeros((8, 8, 3), np.float64), (4, 4), "box", True)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 5e-7), (np.float32, 2e-6)])
def test_numba_pass_matches_numpy(dtype, atol):
    # The one Numba kernel (the vertical pass; the horizontal pass runs it on the transpose) vs a NumPy gather.
    rng = np.random.default_rng(3)
    img = rng.random((20, 21), dtype=np.float32)
    idx = rng.integers(0, 20, (9, 5))
    w = rng.standard_normal((9, 5)).astype(dtype)
    count = rng.integers(1, 6, 9)
    out = np.empty((9, 21), np.float32)
    R._resample_cols(img, idx, w, count, np.empty(21, dtype), out)
    mask = np.arange(5)[None, :] < count[:, None]
    ref = np.einsum("ik,ikj->ij", (w * mask).astype(np.float64), img[idx].astype(np.float64))
    np.testing.assert_allclose(out, ref, atol=atol, rtol=0)


def _padded_taps(rng, n_in, n_out, k):
    """Random horizontal taps in _hrow's layout (consecutive from x0 in a row padded by k // 2 + 1 pixels,
    x0 >= -(k // 2), x0 + k - 1 <= n_in - 1 + k // 2), with the equivalent clamped (idx, w) of interp_weights."""
    half = k // 2
    x0 = rng.integers(-half, n_in - half, n_out)
    idx = np.clip(x0[:, None] + np.arange(k)[None, :], 0, n_in - 1)
    w = rng.standard_normal((n_out, k)).astype(np.float32)
    pad = half + 1
    return (3 * (x0 + pad)).astype(np.uint64), w, pad, idx


@pytest.mark.parametrize("k", [2, 4, 6])
def test_numba_hrow_matches_numpy(k):
    # The horizontal row kernel (K = 2, 4 unrolled, others looped) on a replicate-padded row vs a NumPy gather.
    rng = np.random.default_rng(10 + k)
    row = rng.random((13, 3), dtype=np.float32)
    xb, w, pad, idx = _padded_taps(rng, 13, 17, k)
    padded = np.concatenate([np.repeat(row[:1], pad, 0), row, np.repeat(row[-1:], pad, 0)]).reshape(-1)
    out = np.empty(17 * 3, np.float32)
    R._hrow(padded, xb, w, out)
    ref = np.einsum("ok,okc->oc", w.astype(np.float64), row[idx].astype(np.float64))
    np.testing.assert_allclose(out.reshape(17, 3), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("k", [2, 4, 5])
def test_numba_vrow_matches_numpy(k):
    # The vertical row kernel (K = 2, 4 in one pass, others tap by tap) vs a NumPy weighted sum of rows.
    rng = np.random.default_rng(20 + k)
    rows = rng.random((9, 31), dtype=np.float32)
    idx = rng.integers(0, 9, k)
    w = rng.standard_normal(k).astype(np.float32)
    out = np.empty(31, np.float32)
    R._vrow(rows, idx, w, out)
    np.testing.assert_allclose(out, w.astype(np.float64) @ rows[idx].astype(np.float64), atol=1e-5, rtol=0)


def test_htaps_are_interp_weights_padded():
    # _htaps's consecutive taps in the padded row read exactly the clamped pixels interp_weights gives.
    for n_in, n_out, f in ((400, 240, "mitchell"), (100, 150, "hamming"), (7, 30, "lanczos3"), (50, 3, "box")):
        xb, xw, pad = R._htaps(n_in, n_out, f)
        idx, w, _ = interp_weights(n_in, n_out, f)
        k = idx.shape[1]
        pixels = (xb.astype(np.int64) // 3)[:, None] - pad + np.arange(k)[None, :]
        np.testing.assert_array_equal(np.clip(pixels, 0, n_in - 1), idx)
        assert pixels.min() >= -pad and pixels.max() <= n_in - 1 + pad
        np.testing.assert_array_equal(xw, w.astype(np.float32))


def test_numba_fused_kernel_matches_numpy():
    # The fused kernel (antialias=False, height shrinking): vertical taps into a row, then horizontal taps.
    rng = np.random.default_rng(4)
    img = rng.random((20, 13, 3), dtype=np.float32)
    yidx = rng.integers(0, 20, (7, 4))
    yw = rng.standard_normal((7, 4)).astype(np.float32)
    xb, xw, pad, xidx = _padded_taps(rng, 13, 9, 6)
    out = np.empty((7, 9 * 3), np.float32)
    R._resample_fused(img.reshape(20, -1), yidx, yw, xb, xw, pad, np.empty((13 + 2 * pad) * 3, np.float32), out)
    mid = np.einsum("ik,ikwc->iwc", yw.astype(np.float64), img[yidx].astype(np.float64))
    ref = np.einsum("ok,iokc->ioc", xw.astype(np.float64), mid[:, xidx])
    np.testing.assert_allclose(out.reshape(7, 9, 3), ref, atol=1e-5, rtol=0)


def test_numba_ring_kernel_matches_numpy():
    # The ring kernel (antialias=False, height not shrinking): rows resampled horizontally once, then summed.
    rng = np.random.default_rng(5)
    img = rng.random((6, 13, 3), dtype=np.float32)
    idx, _, _ = interp_weights(6, 15, "lanczos3")  # consecutive (clamped) rows per output row, as required
    yw = rng.standard_normal(idx.shape).astype(np.float32)
    xb, xw, pad, xidx = _padded_taps(rng, 13, 9, 4)
    k = idx.shape[1]
    out = np.empty((15, 9 * 3), np.float32)
    R._resample_fused_ring(img.reshape(6, -1), idx, yw, xb, xw, pad, np.empty((13 + 2 * pad) * 3, np.float32),
                           np.empty((k, 27), np.float32), np.full(k, -1, np.int64), np.empty(k, np.int64), out)
    mid = np.einsum("ok,hokc->hoc", xw.astype(np.float64), img[:, xidx].astype(np.float64))
    ref = np.einsum("ik,ikoc->ioc", yw.astype(np.float64), mid[idx])
    np.testing.assert_allclose(out.reshape(15, 9, 3), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(CV2_FILTERS))
@pytest.mark.parametrize("size", [(120, 150), (300, 390), (100, 400)])
def test_fused_routes_match_opencv_on_large_images(name, size):
    # Intermediates above _FUSED_BYTES take the fused kernels (vertical first when shrinking, the row ring when
    # enlarging): same results as cv2.resize for the filters it has (Lanczos-4 to 2e-5: OpenCV computes its
    # weights in float32; measured 1.7e-5 at these factors).
    img = np.random.default_rng(6).random((200, 260, 3), dtype=np.float32)
    h, w = size
    assert (h * 260 if h < 200 else 200 * w) * 12 > R._FUSED_BYTES
    ours = R._apply_separable(img, size, name, False)
    tol = 2e-5 if name == "lanczos4" else 1e-6
    np.testing.assert_allclose(ours, cv2.resize(img, size[::-1], interpolation=CV2_FILTERS[name]), atol=tol, rtol=0)
