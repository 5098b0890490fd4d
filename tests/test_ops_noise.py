"""degradekit.ops.noise: Gaussian / Poisson noise statistics, the vals rule, numba kernels vs NumPy references,
pool noise patches."""

import numpy as np
import pytest
from scipy import stats

from degradekit.ops import noise as N
from degradekit.ops.noise import add_gaussian_noise, add_noise_patch, add_poisson_noise, poisson_vals


def gray_img(h=200, w=300, v=0.5):
    return np.full((h, w, 3), v, np.float32)


# ------------------------------------------------------------------------------------------------ Gaussian

@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_equals_the_drawn_normals_exactly(gray):
    img = np.random.default_rng(1).random((31, 47, 3), dtype=np.float32)
    sigma, seed = 17.0, 1234
    out = add_gaussian_noise(img, sigma, gray, seed)
    n = N.standard_normal(31 * 47 * (1 if gray else 3), seed)
    n = n.reshape(31, 47, 1) if gray else n.reshape(31, 47, 3)
    ref = np.clip(img + np.float32(sigma / 255.0) * n, 0, 1)
    np.testing.assert_array_equal(out, ref)


def ziggurat_ref(raw):
    """Slow pure-Python ziggurat on the same 64-bit words (same tables): [(value, words used), ...]."""
    k, w, f, r = N._ZIG_K, N._ZIG_W, N._ZIG_F, N._ZIG_R
    out, p = [], 0
    words = [int(x) for x in raw]
    to_u = lambda word: (word >> 11) * 2.0 ** -53  # noqa: E731
    while p < len(words):
        start = p
        word = words[p]
        p += 1
        idx, word = word & 0xFF, word >> 8
        neg, rabs = word & 1, (word >> 1) & (2 ** 52 - 1)
        x = -rabs * w[idx] if neg else rabs * w[idx]
        if rabs < int(k[idx]):
            out.append((x, p - start))
            continue
        if idx == 0:  # the tail (Marsaglia 1964): retry until accepted, never restart the sample
            while p + 2 <= len(words):
                xx = -np.log1p(-to_u(words[p])) / r
                yy = -np.log1p(-to_u(words[p + 1]))
                p += 2
                if yy + yy > xx * xx:
                    out.append((-(r + xx) if (rabs >> 8) & 1 else r + xx, p - start))
                    break
            else:
                break
        else:
            if p + 1 > len(words):
                break
            u = to_u(words[p])
            p += 1
            if (f[idx - 1] - f[idx]) * u + f[idx] < np.exp(-0.5 * x * x):
                out.append((x, p - start))
    return out


def test_ziggurat_kernel_vs_python_reference():
    raw = np.random.default_rng(3).bit_generator.random_raw(6000)
    # force the rare paths: words with layer 0 beyond the base strip (tail) and wedge rejections
    rng = np.random.default_rng(4)
    for j in range(0, 6000, 50):
        raw[j] = (raw[j] & ~np.uint64(0xFF)) | np.uint64(j % 3 == 0 and 0 or rng.integers(1, 256))
        if j % 100 == 0:  # layer 0 with a large abscissa -> the tail algorithm
            raw[j] = np.uint64(0) | (np.uint64(2 ** 52 - 1 - j) << np.uint64(9))
    ref = ziggurat_ref(raw)
    out = np.empty(len(ref), np.float32)
    done, pos = N._ziggurat(raw, 0, out, 0, N._ZIG_K, N._ZIG_W, N._ZIG_F, N._ZIG_R)
    assert done == len(ref)
    np.testing.assert_array_equal(out, np.array([v for v, _ in ref], np.float32))
    assert sum(1 for v, _ in ref if abs(v) > N._ZIG_R) >= 10  # the tail branch was exercised


def test_standard_normal_is_batch_independent_and_seeded():
    a = N.standard_normal(50_000, 8)
    np.testing.assert_array_equal(a, N.standard_normal(50_000, 8, batch=997))  # many refills
    assert not np.array_equal(a, N.standard_normal(50_000, 9))
    assert a.dtype == np.float32


def test_standard_normal_distribution():
    x = N.standard_normal(1_000_000, 12).astype(np.float64)
    n = x.size
    assert abs(x.mean()) < 5 / np.sqrt(n)
    assert abs(x.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.skew(x)) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(x)) < 5 * np.sqrt(24 / n)
    assert stats.kstest(x[:200_000], "norm").pvalue > 1e-4
    for t in (1.0, 2.5, N._ZIG_R, 4.0):  # tail frequencies, including beyond the ziggurat's base strip
        p = 2 * stats.norm.sf(t)
        assert abs((np.abs(x) > t).mean() - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-6


@pytest.mark.parametrize("sigma", [1.0, 10.0, 30.0])
def test_gaussian_statistics(sigma):
    out = add_gaussian_noise(gray_img(), sigma, False, seed=7)
    n = (out - 0.5).astype(np.float64)
    assert out.dtype == np.float32
    se = sigma / 255 / np.sqrt(n.size)
    assert abs(n.mean()) < 5 * se
    assert abs(n.std() / (sigma / 255) - 1) < 0.01
    # colour noise: independent channels
    c = np.corrcoef(n.reshape(-1, 3).T)
    assert np.abs(c[np.triu_indices(3, 1)]).max() < 0.02


def test_gray_gaussian_is_one_field_for_three_channels():
    out = add_gaussian_noise(gray_img(), 20.0, True, seed=3)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert abs((out[..., 0] - 0.5).std() * 255 / 20 - 1) < 0.02


def test_gaussian_clips_and_is_deterministic_by_seed():
    img = np.random.default_rng(0).random((40, 40, 3), dtype=np.float32)
    img[:20] = 0.0
    img[20:] = 1.0
    out = add_gaussian_noise(img, 30.0, False, seed=5)
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_array_equal(out, add_gaussian_noise(img, 30.0, False, seed=5))
    assert not np.array_equal(out, add_gaussian_noise(img, 30.0, False, seed=6))
    np.testing.assert_array_equal(add_gaussian_noise(img, 0.0, False, 1), img)


def test_gaussian_kernels_vs_numpy():
    rng = np.random.default_rng(9)
    img = rng.random(3000, dtype=np.float32) * 1.2 - 0.1
    n = rng.standard_normal(3000, dtype=np.float32)
    out = np.empty_like(img)
    N._add_scaled_clip(img, n, np.float32(0.3), out)
    np.testing.assert_array_equal(out, np.clip(img + np.float32(0.3) * n, 0, 1))
    g = n[:1000]
    N._add_scaled_clip_gray(img, g, np.float32(0.3), out)
    ref = np.clip(img.reshape(-1, 3) + np.float32(0.3) * g[:, None], 0, 1).reshape(-1)
    np.testing.assert_array_equal(out, ref)


# ------------------------------------------------------------------------------------------------ Poisson

def test_vals_rule():
    assert [poisson_vals(n) for n in (1, 2, 3, 4, 5, 128, 129, 256)] == [1, 2, 4, 4, 8, 128, 256, 256]


def levels_ref(img, gray):
    x = img.astype(np.float32)
    if gray:
        x = np.float32(0.299) * x[..., 0] + np.float32(0.587) * x[..., 1] + np.float32(0.114) * x[..., 2]
    return np.clip(np.rint(x * np.float32(255)), 0, 255).astype(np.uint8)


def poisson_ref(img, scale, gray, seed):
    """Slow NumPy reference: same levels/vals/tables, inverse CDF by searchsorted on each level's table."""
    lv = levels_ref(img, gray)
    present = np.unique(lv)
    vals = poisson_vals(present.size)
    cdf, off, _ = N.poisson_tables(present, vals)
    u = np.random.default_rng(seed).random(lv.shape)
    n = np.empty(lv.shape, np.int64)
    for i, level in enumerate(present):
        sel = lv == level
        table = cdf[off[i]:off[i + 1]]
        n[sel] = np.minimum(np.searchsorted(table, u[sel], side="right"), table.size - 1)
    noise = np.float32(scale) * (n.astype(np.float32) / np.float32(vals) - lv.astype(np.float32) / np.float32(255))
    if gray:
        noise = noise[..., None]
    return np.clip(img + noise, 0, 1), vals


@pytest.mark.parametrize("gray", [False, True])
def test_poisson_numba_matches_numpy_reference(gray):
    rng = np.random.default_rng(11)
    img = (rng.random((45, 61, 3), dtype=np.float32) * 1.1 - 0.05).astype(np.float32)
    out = add_poisson_noise(img, 1.7, gray, seed=21)
    ref, vals = poisson_ref(img, 1.7, gray, 21)
    assert vals == 256
    np.testing.assert_allclose(out, ref, atol=1e-7, rtol=0)


def test_level_histogram_kernels_vs_numpy():
    img = np.random.default_rng(12).random((30, 20, 3), dtype=np.float32) * 1.4 - 0.2
    img[0, 0] = [0.5 / 255, 1.5 / 255, 2.5 / 255]  # exact ties: round half to even
    for gray, kernel, n in ((False, N._levels_hist, img.size), (True, N._gray_levels_hist, img.size // 3)):
        lv = np.empty(n, np.uint8)
        hist = np.zeros(256, np.int64)
        kernel(img.reshape(-1), lv, hist)
        ref = levels_ref(img, gray).reshape(-1)
        np.testing.assert_array_equal(lv, ref)
        np.testing.assert_array_equal(hist, np.bincount(ref, minlength=256))
    lv = np.empty(img.size, np.uint8)
    N._levels_hist(img.reshape(-1), lv, np.zeros(256, np.int64))
    assert list(lv[:3]) == [0, 2, 2]


def test_poisson_tables_are_the_poisson_cdf():
    levels = np.array([0, 1, 17, 128, 200, 255])
    for vals in (1, 4, 256):
        cdf, off, guide = N.poisson_tables(levels, vals)
        for i, level in enumerate(levels):
            lam = level / 255 * vals
            table = cdf[off[i]:off[i + 1]]
            assert table[-1] == 2.0  # truncated tail marker
            k = np.arange(table.size - 1)
            np.testing.assert_allclose(table[:-1], stats.poisson.cdf(k, lam), rtol=1e-12, atol=1e-15)
            # the tail beyond the last entry (moved onto it) is a float64-rounding-sized mass
            assert stats.poisson.sf(table.size - 1, lam) < 1e-15
            # guide: smallest n with cdf > j / M; the last column is the last index
            m = guide.shape[1] - 1
            for j in range(0, m, 37):
                assert guide[i, j] == np.argmax(table > j / m)
            assert guide[i, m] == table.size - 1


def sample_with_tables(lam, size, seed):
    """Our sampler for arbitrary rates: the table builder + the numba inverse-CDF search."""
    cap = int(lam + 12 * np.sqrt(lam) + 40)
    cdf = np.empty(cap)
    off = np.empty(2, np.int64)
    guide = np.empty((1, N._GUIDE + 1), np.int32)
    N._build_poisson_tables(np.array([lam]), cap, cdf, off, guide)
    u = np.random.default_rng(seed).random(size)
    # _poisson_add on a zero image with vals = 1 and level 0 returns clip(N * scale): scale 1/1024 keeps N.
    img = np.zeros(size, np.float32)
    out = np.empty_like(img)
    N._poisson_add(img, np.zeros(size, np.uint8), u, np.zeros(256, np.int32), cdf, off, guide,
                   np.float32(1.0), np.float32(1.0 / 1024), out)
    return np.rint(out.astype(np.float64) * 1024).astype(np.int64)


@pytest.mark.parametrize("lam", [0.3, 3.0, 31.0, 200.0])
def test_sampler_statistics_vs_numpy_poisson(lam):
    size = 200_000
    ours = sample_with_tables(lam, size, seed=int(lam * 10))
    theirs = np.random.default_rng(99).poisson(lam, size)
    se = np.sqrt(lam / size)
    assert abs(ours.mean() - lam) < 5 * se
    assert abs(ours.var() / lam - 1) < 5 * np.sqrt(2 / size) + 5 * np.sqrt(1 / (lam * size))
    # chi-square goodness of fit against the Poisson pmf (bins with expected count >= 20, tails pooled)
    lo, hi = int(stats.poisson.ppf(1e-4, lam)), int(stats.poisson.isf(1e-4, lam))
    edges = np.arange(lo, hi + 1)
    obs = np.array([(ours < lo).sum()] + [(ours == k).sum() for k in edges] + [(ours > hi).sum()])
    exp = size * np.concatenate([[stats.poisson.cdf(lo - 1, lam)], stats.poisson.pmf(edges, lam),
                                 [stats.poisson.sf(hi, lam)]])
    keep = exp >= 20
    obs = np.append(obs[keep], obs[~keep].sum())
    exp = np.append(exp[keep], exp[~keep].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    assert stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue > 1e-4
    # and two-sample: our counts vs numpy's rng.poisson counts
    top = max(ours.max(), theirs.max()) + 1
    table = np.stack([np.bincount(ours, minlength=top), np.bincount(theirs, minlength=top)])
    table = table[:, table.sum(0) >= 40]
    assert stats.chi2_contingency(table).pvalue > 1e-4


def test_poisson_three_levels_gives_vals_4_and_poisson_counts():
    # 3 unique 8-bit levels -> vals = 4; N = (noise + I) * 4 is integer and Poisson(I * 4).
    levels = np.array([64, 128, 192])
    img = (levels[np.random.default_rng(3).integers(0, 3, (300, 300, 3))] / 255).astype(np.float32)
    scale = 0.05  # small enough that nothing clips
    out = add_poisson_noise(img, scale, False, seed=4)
    noise = (out.astype(np.float64) - img) / scale
    counts = (noise + img) * 4
    np.testing.assert_allclose(counts, np.rint(counts), atol=2e-3)
    counts = np.rint(counts)
    for level in levels:
        i = level / 255
        sel = np.isclose(img, i)
        c = counts[sel]
        lam = 4 * i
        assert abs(c.mean() - lam) < 5 * np.sqrt(lam / c.size)
        assert abs(c.var() / lam - 1) < 0.05
        # noise variance = I / vals * scale^2 (as fractions of the intensity)
        v = ((out[sel].astype(np.float64) - i)).var()
        assert abs(v / (i / 4 * scale ** 2) - 1) < 0.05


def test_poisson_variance_proportional_to_intensity():
    # a ramp with all 256 levels: vals = 256; var(noise) = I / 256 * scale^2, mean 0
    ramp = np.repeat((np.arange(256) / 255).astype(np.float32)[:, None], 400, 1)
    img = np.repeat(ramp[..., None], 3, 2)
    scale = 1.0
    out = add_poisson_noise(img, scale, False, seed=8)
    for level in (16, 64, 128, 200):
        i = level / 255
        n = out[level].astype(np.float64) - i
        var = i / 256 * scale ** 2
        assert abs(n.mean()) < 5 * np.sqrt(var / n.size)
        assert abs(n.var() / var - 1) < 5 * np.sqrt(2 / n.size) + 0.02


def test_gray_poisson_uses_gray_levels_and_one_field():
    # colours with 6 distinct channel values but only 3 gray levels -> gray vals 4 (colour would be 8)
    pix = np.array([[0.5, 0.2, 0.9], [0.2, 0.6, 0.3], [0.7, 0.4, 0.1]], np.float32)
    img = pix[np.random.default_rng(5).integers(0, 3, (200, 200))]
    g = levels_ref(img, True)
    assert np.unique(g).size == 3 and np.unique(levels_ref(img, False)).size == 8
    scale = 0.05
    out = add_poisson_noise(img, scale, True, seed=6)
    d = out.astype(np.float64) - img
    np.testing.assert_allclose(d[..., 0], d[..., 1], atol=1e-6)
    np.testing.assert_allclose(d[..., 0], d[..., 2], atol=1e-6)
    counts = (d[..., 0] / scale + g / 255) * 4
    np.testing.assert_allclose(counts, np.rint(counts), atol=2e-3)
    for level in np.unique(g):
        c = np.rint(counts[g == level])
        lam = level / 255 * 4
        assert abs(c.mean() - lam) < 5 * np.sqrt(lam / c.size)


def test_poisson_edge_cases_and_determinism():
    const = gray_img(20, 20, 0.3)  # one level -> vals 1
    out = add_poisson_noise(const, 1.0, False, seed=1)
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(add_poisson_noise(const, 0.0, False, 1), const)
    black = gray_img(10, 10, 0.0)
    np.testing.assert_array_equal(add_poisson_noise(black, 3.0, True, 2), black)  # lambda 0: no noise
    img = np.random.default_rng(0).random((25, 25, 3), dtype=np.float32)
    a = add_poisson_noise(img, 2.0, False, 3)
    np.testing.assert_array_equal(a, add_poisson_noise(img, 2.0, False, 3))
    assert not np.array_equal(a, add_poisson_noise(img, 2.0, False, 4))


@pytest.mark.parametrize("fn", [add_gaussian_noise, add_poisson_noise])
def test_noise_bad_arguments(fn):
    img = gray_img(8, 8)
    with pytest.raises(ValueError, match=">= 0"):
        fn(img, -1.0, False, 0)
    with pytest.raises(TypeError, match="seed"):
        fn(img, 1.0, False, 1.5)
    with pytest.raises(TypeError, match="float32"):
        fn(img.astype(np.float64), 1.0, False, 0)


# ------------------------------------------------------------------------------------------------ patches

def test_noise_patch_crop_position():
    rng = np.random.default_rng(0)
    img = np.full((10, 12, 3), 0.5, np.float32)
    patch = (rng.standard_normal((30, 40, 3)) * 0.05).astype(np.float32)
    out = add_noise_patch(img, patch, 0.0, 0.0)
    np.testing.assert_allclose(out, np.clip(img + patch[:10, :12], 0, 1))
    out = add_noise_patch(img, patch, 0.999, 0.999)
    np.testing.assert_allclose(out, np.clip(img + patch[20:, 28:], 0, 1))
    out = add_noise_patch(img, patch, 0.5, 0.25)  # y0 = int(0.5 * 21) = 10, x0 = int(0.25 * 29) = 7
    np.testing.assert_allclose(out, np.clip(img + patch[10:20, 7:19], 0, 1))


def test_noise_patch_smaller_than_image_is_mirror_tiled():
    rng = np.random.default_rng(1)
    img = np.full((23, 9, 3), 0.5, np.float32)
    patch = (rng.standard_normal((5, 4, 3)) * 0.05).astype(np.float32)
    out = add_noise_patch(img, patch, 0.0, 0.0)
    tiled = np.pad(patch, ((0, 40), (0, 20), (0, 0)), mode="reflect")  # reflect-101, repeated
    np.testing.assert_allclose(out, np.clip(img + tiled[:23, :9], 0, 1))
    out = add_noise_patch(img, patch, 0.5, 0.0)  # starts at row int(0.5 * 5) = 2 of the mirrored plane
    np.testing.assert_allclose(out, np.clip(img + tiled[2:25, :9], 0, 1))
    one = add_noise_patch(img, patch[:1, :1], 0.3, 0.3)  # a 1x1 patch is a constant offset
    np.testing.assert_allclose(one, np.clip(img + patch[0, 0], 0, 1))


def test_noise_patch_clips_and_rejects_bad_positions():
    img = np.full((4, 4, 3), 0.95, np.float32)
    patch = np.full((4, 4, 3), 0.2, np.float32)
    assert add_noise_patch(img, patch, 0.0, 0.0).max() == 1.0
    for u, v in ((1.0, 0.0), (0.0, -0.1), (float("nan"), 0.0)):
        with pytest.raises(ValueError):
            add_noise_patch(img, patch, u, v)
    with pytest.raises(ValueError, match="patch"):
        add_noise_patch(img, patch[..., :1], 0.0, 0.0)
