"""degradekit.ops.blur_kernels (box, disk, motion) and degradekit.ops.median."""

import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from degradekit.ops import median as M
from degradekit.ops.blur import blur
from degradekit.ops.blur_kernels import _disk_area, box_kernel, disk_kernel, motion_kernel
from degradekit.ops.median import median_blur


def _moments(k):
    """Centroid offset (x, row) from the kernel centre and the 2x2 covariance in (x, row) coordinates."""
    c = k.shape[0] // 2
    yy, xx = np.indices(k.shape) - c
    mx, my = (k * xx).sum(), (k * yy).sum()
    cov = np.array([[(k * (xx - mx) ** 2).sum(), (k * (xx - mx) * (yy - my)).sum()],
                    [(k * (xx - mx) * (yy - my)).sum(), (k * (yy - my) ** 2).sum()]])
    return mx, my, cov


def _check_kernel(k):
    assert k.dtype == np.float64 and k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert k.min() >= 0.0
    assert abs(k.sum() - 1.0) < 1e-12
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)  # point-symmetric: correlation == convolution


# --------------------------------------------------------------------------------------------- box

@pytest.mark.parametrize("size, k, edge", [(1.0, 1, None), (3.0, 3, 1.0), (4.0, 5, 0.5), (3.5, 5, 0.25),
                                           (5.0, 5, 1.0), (1.6, 3, 0.3), (7.9, 9, 0.45)])
def test_box_kernel_fractional_edges(size, k, edge):
    ker = box_kernel(size)
    _check_kernel(ker)
    assert ker.shape == (k, k)
    row = ker[k // 2] / ker[k // 2, k // 2]  # the 1-D profile, centre tap = 1
    if edge is not None:
        np.testing.assert_allclose(row[[0, -1]], edge, atol=1e-12)
        np.testing.assert_allclose(row[1:-1], 1.0, atol=1e-12)
    # Width exactly `size`: the unnormalised 1-D profile sums to size; separable: rank 1.
    np.testing.assert_allclose(row.sum(), size, atol=1e-12)
    assert np.linalg.matrix_rank(ker) == 1


def test_box_kernel_grows_continuously():
    # No jump when the size crosses an odd integer: the weights' variance is continuous in size.
    var = [_moments(box_kernel(s))[2][0, 0] for s in (2.999, 3.0, 3.001)]
    assert abs(var[0] - var[2]) < 1e-2


# --------------------------------------------------------------------------------------------- disk

@pytest.mark.parametrize("radius", [0.6, 1.0, 1.5, 2.3, 4.0, 7.25, 12.0])
def test_disk_kernel_area_and_shape(radius):
    ker = disk_kernel(radius)
    _check_kernel(ker)
    assert ker.shape[0] == 2 * math.ceil(radius - 0.5) + 1
    np.testing.assert_allclose(_disk_area(radius).sum(), math.pi * radius ** 2, rtol=1e-12)
    np.testing.assert_allclose(ker, ker.T, atol=1e-15)  # round
    # Anti-aliased edge: some taps are partly covered; full ones are equal (the flat top of a disk).
    inner = ker[ker > ker.max() * (1 - 1e-9)]
    assert inner.size >= 1 and (ker[(ker > 0) & (ker < ker.max() * 0.999)]).size > 0
    # The variance of a uniform disk is r^2 / 4 per axis; the taps sit at pixel centres, which adds ~0.1 px^2
    # (measured 0.095..0.141 for r >= 1).
    var = _moments(ker)[2][0, 0]
    assert abs(var - radius ** 2 / 4) < 0.15


@pytest.mark.parametrize("radius", [0.7, 2.3, 3.5])
def test_disk_areas_match_brute_force_supersampling(radius):
    ref_n = 2 * math.ceil(radius - 0.5) + 1
    sub = 200
    xs = (np.arange(ref_n * sub) + 0.5) / sub - ref_n / 2
    xx, yy = np.meshgrid(xs, xs)
    ref = (xx ** 2 + yy ** 2 <= radius ** 2).reshape(ref_n, sub, ref_n, sub).mean(axis=(1, 3))
    np.testing.assert_allclose(_disk_area(radius), ref, atol=2e-4)  # the grid's own error ~ 1 / sub


def test_small_disk_is_identity():
    np.testing.assert_array_equal(disk_kernel(0.5), np.ones((1, 1)))
    np.testing.assert_array_equal(disk_kernel(0.2), np.ones((1, 1)))


# --------------------------------------------------------------------------------------------- motion

@pytest.mark.parametrize("length", [5.0, 9.0, 14.5, 21.0])
@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0, 90.0, 123.0, -60.0])
def test_motion_kernel_length_and_angle(length, angle):
    ker = motion_kernel(length, angle)
    _check_kernel(ker)
    assert ker.shape[0] == 2 * math.ceil(length / 2) + 1
    mx, my, cov = _moments(ker)
    assert abs(mx) < 1e-12 and abs(my) < 1e-12  # centred
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, 1]
    # Direction in screen terms: +x right, up = -row. The sign of an axis is arbitrary: compare modulo 180.
    found = math.degrees(math.atan2(-major[1], major[0])) % 180.0
    assert min(abs(found - angle % 180.0), 180.0 - abs(found - angle % 180.0)) < 0.5
    # Along the segment: uniform variance L^2 / 12 plus the bilinear splat's ~1/6; across: only the splat's.
    assert abs(evals[1] - (length ** 2 / 12 + 1 / 6)) < 0.1
    assert evals[0] < 0.2


def test_motion_kernel_orientation_sign():
    # 45 degrees rises to the right on screen: x up <-> row down, a negative x-row covariance.
    assert _moments(motion_kernel(9, 45))[2][0, 1] < -1.0
    assert _moments(motion_kernel(9, -45))[2][0, 1] > 1.0
    horizontal = motion_kernel(7, 0)
    assert horizontal[horizontal.shape[0] // 2].sum() > 0.999  # the centre row


def test_motion_blur_of_a_point_draws_the_segment():
    img = np.zeros((31, 31, 3), np.float32)
    img[15, 15] = 1.0
    out = blur(img, motion_kernel(11, 90))
    col = out[:, 15, 0]
    assert col.sum() == pytest.approx(1.0, abs=1e-5)
    assert out[:, :14].max() < 1e-6 and out[:, 17:].max() < 1e-6  # vertical: nothing sideways
    assert (col > 0.05).sum() >= 9  # spread over ~11 rows


@pytest.mark.parametrize("fn, args, err", [
    (box_kernel, (0.5,), "size: expected >= 1"),
    (box_kernel, (float("nan"),), "finite"),
    (disk_kernel, (0.0,), "radius: expected > 0"),
    (disk_kernel, ("3",), "expected a number"),
    (motion_kernel, (0.5, 0.0), "length: expected >= 1"),
    (motion_kernel, (5.0, float("inf")), "angle: expected a finite"),
])
def test_bad_kernel_arguments(fn, args, err):
    with pytest.raises((ValueError, TypeError), match=err) as e:
        fn(*args)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------------------------- median

@pytest.mark.parametrize("shape", [(37, 41, 3), (3, 2, 3), (1, 1, 3), (1, 9, 3), (6, 1, 3)])
@pytest.mark.parametrize("size", [3, 5, 7, 9, 15])
def test_median_matches_scipy_mirror(shape, size):
    img = np.random.default_rng(size).random(shape, dtype=np.float32)
    out = median_blur(img, size)
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_array_equal(out, ndi.median_filter(img, size=(size, size, 1), mode="mirror"))


def test_median_numba_kernel_matches_numpy():
    # The Numba selection loop (reflect-101 index tables, any rectangle) against np.median of np.pad windows.
    rng = np.random.default_rng(7)
    for k in (3, 5, 7):
        r = k // 2
        img = rng.random((12, 10, 3), dtype=np.float32)
        img[::3, ::2] = 0.5  # ties
        out = np.zeros((12, 10, 3), np.float32)
        M._median_rect(img, M._fold(12, r), M._fold(10, r), k, 2, 11, 1, 7, out)
        pad = np.pad(img, ((r, r), (r, r), (0, 0)), mode="reflect")
        win = np.lib.stride_tricks.sliding_window_view(pad, (k, k), axis=(0, 1))
        ref = np.median(win.reshape(12, 10, 3, -1), axis=-1)
        np.testing.assert_array_equal(out[2:11, 1:7], ref[2:11, 1:7])
        assert not out[:2].any() and not out[:, 7:].any()  # only the rectangle is written


@pytest.mark.parametrize("shape", [(9, 11, 3), (1, 6, 3), (4, 1, 3), (1, 1, 3)])
def test_median3_kernel_matches_numpy(shape):
    # The 3x3 column-sort kernel against np.median of np.pad(reflect) windows, with ties and sorted runs.
    rng = np.random.default_rng(8)
    img = rng.random(shape, dtype=np.float32)
    img[::2, ::3] = 0.25
    h, w, _ = shape
    out = np.empty_like(img)
    M._median3(img.reshape(h, -1), M._fold(h, 1), M._fold(w, 1), out.reshape(h, -1))
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="reflect")  # numpy's reflect = reflect-101
    win = np.lib.stride_tricks.sliding_window_view(pad, (3, 3), axis=(0, 1))
    np.testing.assert_array_equal(out, np.median(win.reshape(h, w, 3, -1), axis=-1))


def test_median_removes_impulses_and_keeps_edges():
    img = np.zeros((20, 20, 3), np.float32)
    img[:, 10:] = 1.0
    noisy = img.copy()
    noisy[5, 3] = 1.0
    noisy[12, 15] = 0.0
    np.testing.assert_array_equal(median_blur(noisy, 3), img)


@pytest.mark.parametrize("size", [2, 1, 17, 4.0, True])
def test_median_bad_size(size):
    with pytest.raises((ValueError, TypeError), match="size: expected an odd int in 3..15"):
        median_blur(np.zeros((8, 8, 3), np.float32), size)


@pytest.mark.parametrize("size", [3, 5])
def test_median_large_image_route_matches_scipy(size):
    # Above _SMALL_BYTES the border strips are recomputed instead of filtering a padded copy.
    img = np.random.default_rng(size).random((160, 203, 3), dtype=np.float32)
    assert img.nbytes > M._SMALL_BYTES
    np.testing.assert_array_equal(median_blur(img, size), ndi.median_filter(img, size=(size, size, 1), mode="mirror"))


# --------------------------------------------------------------------------------------------- Numba builders
# The builders run in Numba (disk: around one np.arcsin call; motion: the splat) and scalar Python (box); the
# kernels must stay those of the plain NumPy formulation bit for bit (replayed records re-derive them).

def _box_reference(size):
    half = size / 2.0
    r = max(0, math.ceil(half - 0.5))
    j = np.arange(-r, r + 1, dtype=np.float64)
    w = np.clip(np.minimum(j + 0.5, half) - np.maximum(j - 0.5, -half), 0.0, 1.0)
    k = np.outer(w, w)
    return k / k.sum()


def _disk_reference(radius):
    if radius <= 0.5:
        return np.ones((1, 1))
    r2 = radius * radius
    n = 2 * math.ceil(radius - 0.5) + 1
    edges = np.arange(n + 1, dtype=np.float64) - n / 2.0

    def prim(t):
        t = np.clip(t, -radius, radius)
        return 0.5 * (t * np.sqrt(np.maximum(r2 - t * t, 0.0)) + r2 * np.arcsin(t / radius))

    y = edges[:, None]
    x = np.clip(edges[None, :], -radius, radius)
    s = np.sqrt(np.maximum(r2 - y * y, 0.0))
    m = np.clip(x, -s, s)
    upper = y >= 0.0
    f = np.where(upper, 2.0 * (prim(x) - prim(-radius)), 0.0) - np.where(upper, 1.0, -1.0) * (prim(m) - prim(-s))
    f += y * (m + s)
    area = np.maximum(f[1:, 1:] - f[:-1, 1:] - f[1:, :-1] + f[:-1, :-1], 0.0)
    return area / area.sum()


def _motion_reference(length, angle):
    r = math.ceil(length / 2.0)
    k = 2 * r + 1
    n = max(2, math.ceil(length * 32))
    t = ((np.arange(n) + 0.5) / n - 0.5) * length
    th = math.radians(angle)
    x = r + t * math.cos(th)
    y = r - t * math.sin(th)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = x - x0
    fy = y - y0
    flat = np.concatenate([(y0 + dy) * k + x0 + dx for dy in (0, 1) for dx in (0, 1)])
    wts = np.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    out = np.bincount(flat, weights=wts, minlength=k * k).reshape(k, k)
    out = 0.5 * (out + out[::-1, ::-1])
    return out / out.sum()


def test_builders_match_the_numpy_formulation_bit_for_bit():
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.uniform(0.5, 12.0, 300), np.arange(0.5, 12.01, 0.25), [0.5000001, 1.0]])
    for v in map(float, values):
        assert disk_kernel(v).tobytes() == _disk_reference(v).tobytes(), v
        if v >= 1.0:
            assert box_kernel(v).tobytes() == _box_reference(v).tobytes(), v
            for a in (float(rng.uniform(-180, 180)), 0.0, 45.0, 90.0, -135.0):
                assert motion_kernel(v, a).tobytes() == _motion_reference(v, a).tobytes(), (v, a)
    # non-float numbers take the checked path, with the same result
    assert box_kernel(3).tobytes() == _box_reference(3.0).tobytes()
    assert motion_kernel(np.float32(5.0), 30).tobytes() == _motion_reference(5.0, 30.0).tobytes()
