"""MATLAB imresize (spec §8) against a slow NumPy reference written from the spec, against Pillow's
antialiased bicubic (a = -0.5, support scaled) in the interior, and known MATLAB properties."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from degradekit.bsrgan.imresize import _resample_cols, _resample_rows, axis_weights, imresize


def _cubic_ref(x, a=-0.5):
    x = abs(x)
    if x <= 1:
        return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
    if x <= 2:
        return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
    return 0.0


def _resize_axis_ref(img, m, scale, antialias=True, a=-0.5):
    """One axis (axis 0) of imresize_np, loop by loop: taps, weights, narrow rule, symmetric padding."""
    n = img.shape[0]
    width = 4.0 / scale if (scale < 1 and antialias) else 4.0
    p = math.ceil(width) + 2
    rows = []
    for x in range(1, m + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + t for t in range(p)]
        if scale < 1 and antialias:
            w = [scale * _cubic_ref((u - j) * scale, a) for j in taps]
        else:
            w = [_cubic_ref(u - j, a) for j in taps]
        tot = sum(w)
        rows.append((taps, [v / tot for v in w]))
    # the narrow rule: drop the first / last tap column when it holds a zero weight in some row
    if any(r[1][0] == 0 for r in rows):
        rows = [(t[1:], w[1:]) for t, w in rows]
    if any(r[1][-1] == 0 for r in rows):
        rows = [(t[:-1], w[:-1]) for t, w in rows]
    lo = min(t[0] for t, _ in rows)
    hi = max(t[-1] for t, _ in rows)
    s_len, e_len = max(0, -lo + 1), max(0, hi - n)
    pad = np.concatenate([img[:s_len][::-1], img, img[n - e_len:][::-1]], axis=0).astype(np.float64)
    out = np.zeros((m,) + img.shape[1:])
    for i, (taps, w) in enumerate(rows):
        for j, wt in zip(taps, w):
            out[i] += wt * pad[j - 1 + s_len]
    return out


def _imresize_ref(img, scale, antialias=True):
    h, w = img.shape[:2]
    mh, mw = math.ceil(h * scale), math.ceil(w * scale)
    t = _resize_axis_ref(img, mh, scale, antialias).astype(np.float32)
    return _resize_axis_ref(t.transpose(1, 0, 2), mw, scale, antialias).transpose(1, 0, 2).astype(np.float32)


@pytest.fixture(scope="module")
def img():
    rng = np.random.default_rng(0)
    return rng.random((37, 30, 3)).astype(np.float32)


@pytest.mark.parametrize("scale", [0.5, 0.25, 1 / 3, 0.75, 0.6, 2.0, 1.5])
def test_matches_slow_reference(img, scale):
    got = imresize(img, scale=scale)
    ref = _imresize_ref(img, scale)
    assert got.shape == ref.shape == (math.ceil(37 * scale), math.ceil(30 * scale), 3)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6)


def test_no_antialias_reference(img):
    got = imresize(img, scale=0.5, antialias=False)
    np.testing.assert_allclose(got, _imresize_ref(img, 0.5, antialias=False), rtol=0, atol=2e-6)
    assert not np.allclose(got, imresize(img, scale=0.5), atol=1e-3)


def test_output_size_is_ceil():
    x = np.zeros((321, 99, 3), np.float32)
    assert imresize(x, scale=0.5).shape == (161, 50, 3)
    assert imresize(x, scale=1 / 3).shape == (107, 33, 3)
    assert imresize(x, size_hw=(80, 25)).shape == (80, 25, 3)


@pytest.mark.parametrize("n,m,scale", [(320, 160, 0.5), (37, 13, 1 / 3), (30, 23, 0.75), (20, 40, 2.0)])
def test_weights_rows_sum_to_one_and_indices_in_range(n, m, scale):
    w, j = axis_weights(n, m, scale)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert j.min() >= 0 and j.max() < n
    # the all-zero boundary tap columns are gone: 8 taps at 1/2 (width 8), 4 taps above scale 1
    if scale == 0.5:
        assert w.shape[1] == 8
    if scale > 1:
        assert w.shape[1] == 4


def test_half_scale_is_the_antialiased_bicubic_filter():
    # scale 1/2: output pixel i is centred at 2i + 0.5 (0-based); weights 0.5 * cubic(0.5 * d), d = +-0.5..3.5
    w, j = axis_weights(64, 32, 0.5)
    d = np.array([3.5, 2.5, 1.5, 0.5, -0.5, -1.5, -2.5, -3.5])
    k = np.array([0.5 * _cubic_ref(0.5 * v) for v in d])
    np.testing.assert_allclose(w[10], k / k.sum(), atol=1e-15)
    assert list(j[10]) == list(range(2 * 10 - 3, 2 * 10 + 5))
    assert list(j[0]) == [2, 1, 0, 0, 1, 2, 3, 4]  # symmetric padding duplicates the edge (cba|abc)


def test_constant_and_linear_images():
    c = np.full((40, 28, 3), 0.3, np.float32)
    np.testing.assert_allclose(imresize(c, scale=0.5), 0.3, atol=1e-6)
    # a linear ramp stays linear in the interior, sampled at the pixel-centre positions 2i + 0.5
    ramp = np.broadcast_to(np.arange(64, dtype=np.float32)[None, :, None], (8, 64, 3)).copy()
    out = imresize(ramp, scale=0.5)
    np.testing.assert_allclose(out[:, 4:-4, 0], np.broadcast_to(2 * np.arange(4, 28) + 0.5, (4, 24)), atol=1e-4)


def test_interior_equals_pillow_antialiased_bicubic():
    # Pillow's BICUBIC is Keys a = -0.5 with the support scaled by the factor and the same pixel centres;
    # it truncates the kernel at the borders instead of mirroring, so only the interior can agree
    rng = np.random.default_rng(1)
    x = rng.random((96, 80)).astype(np.float32)
    for scale, size in ((0.5, (40, 48)), (0.25, (20, 24))):
        pil = np.asarray(Image.fromarray(x, mode="F").resize(size, Image.BICUBIC), np.float32)
        ours = imresize(np.repeat(x[..., None], 3, 2), scale=scale)[..., 0]
        r = int(2 / scale)
        np.testing.assert_allclose(ours[r:-r, r:-r], pil[r:-r, r:-r], atol=2e-5)


def test_numba_kernels_against_numpy():
    rng = np.random.default_rng(2)
    src = rng.random((20, 15, 3)).astype(np.float32)
    w, j = axis_weights(20, 9, 0.45)
    out = np.empty((9, 45), np.float32)
    _resample_rows(src.reshape(20, 45), j, w, out)
    ref = np.einsum("ip,ipk->ik", w, src.reshape(20, 45)[j].astype(np.float64))
    np.testing.assert_allclose(out, ref, atol=1e-6)
    w2, j2 = axis_weights(15, 31, 2.1)
    out2 = np.empty((20, 31, 3), np.float32)
    _resample_cols(src, j2, w2, out2)
    ref2 = np.einsum("jp,rjpc->rjc", w2, src[:, j2].astype(np.float64))
    np.testing.assert_allclose(out2, ref2, atol=1e-6)


def test_linear_kernel_and_size_mode():
    rng = np.random.default_rng(3)
    x = rng.random((30, 30, 3)).astype(np.float32)
    # size_hw uses scale = out / in per axis; for an exact half this is scale 0.5
    np.testing.assert_array_equal(imresize(x, size_hw=(15, 15)), imresize(x, scale=0.5))
    lin = imresize(x, scale=0.5, kernel="linear")
    w, _ = axis_weights(30, 15, 0.5, kernel="linear")
    np.testing.assert_allclose(w[5], [0.125, 0.375, 0.375, 0.125], atol=1e-15)  # triangle of width 4
    assert lin.shape == (15, 15, 3)


def test_bad_arguments():
    x = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError):
        imresize(x)
    with pytest.raises(ValueError):
        imresize(x, scale=0.5, size_hw=(4, 4))
    with pytest.raises(ValueError):
        imresize(x, scale=-1.0)
    with pytest.raises(ValueError):
        imresize(x, scale=0.5, kernel="lanczos")
    with pytest.raises(TypeError):
        imresize(x.astype(np.float64), scale=0.5)
