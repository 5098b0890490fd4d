"""Additive noise: Gaussian and Poisson (colour or gray), and pool noise patches.

Randomness: each public function takes an integer ``seed`` and draws with ``np.random.default_rng(seed)``
(uniforms with ``random()``, raw 64-bit words with ``bit_generator.random_raw``); the Numba kernels below
receive the drawn numbers as arrays and draw nothing.

Gaussian: exact N(0, 1) samples from a 256-layer ziggurat run in Numba on the raw words (``standard_normal``),
~2.5x faster than numpy's float32 ``standard_normal`` here; add and clip fused.

Poisson sampling is exact and fast: after ``I = round(255 img) / 255`` the Poisson rate ``I * vals`` takes at
most 256 distinct values, so one float64 inverse-CDF table per intensity level present is built once per call,
and each pixel inverts one uniform from ``rng.random()`` with a guide-table search (256 buckets per level; ~99%
of draws resolve with two branch-free comparisons). The table for rate lam holds P(N <= n) for n = 0, 1, ...
until, past the mode, adding P(N = n) no longer changes the float64 sum; its last entry is then treated as 1,
i.e. the upper tail beyond it (a mass of float64-rounding size, < 1e-15) is moved onto the last entry.
Otherwise the sampler is the exact Poisson distribution (up to float64 rounding of the CDF). The unique-level
count for the ``vals`` rule is a 256-bin histogram filled in the same pass that rounds the levels.
At 400x400x3 this takes ~6 ms where ``rng.poisson`` alone takes ~30 ms.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._check import check_finite_number, check_image, check_seed

_GUIDE = 256  # guide-table buckets per intensity level


# --------------------------------------------------------------------------------------------- Gaussian

def add_gaussian_noise(img: np.ndarray, sigma: float, gray: bool, seed: int) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``sigma / 255`` and clip to [0, 1].

    img: float32 HxWx3. sigma: >= 0, on the 0-255 scale. gray: one HxW field shared by the three channels
    (else an independent field per channel, in C order of (H, W, 3)). seed: int; the normals come from
    ``standard_normal(n, seed)`` (an exact ziggurat on ``default_rng(seed)``'s 64-bit stream).
    Returns float32 HxWx3 in [0, 1].
    """
    img = check_image(img)
    sigma = check_finite_number(sigma, "sigma", lo=0.0)
    seed = check_seed(seed)
    h, w, _ = img.shape
    out = np.empty_like(img)
    scale = np.float32(sigma / 255.0)
    if gray:
        _add_scaled_clip_gray(img.reshape(-1), standard_normal(h * w, seed), scale, out.reshape(-1))
    else:
        _add_scaled_clip(img.reshape(-1), standard_normal(h * w * 3, seed), scale, out.reshape(-1))
    return out


# Exact standard normals: the 256-layer ziggurat of Marsaglia & Tsang (2000), the layout numpy's own float64
# sampler uses (one 64-bit word per sample: 8 bits layer, 1 bit sign, 52 bits abscissa; wedge and tail
# rejections draw further words), run in Numba on words drawn in bulk with ``bit_generator.random_raw``.
# numpy's float32 ``standard_normal`` costs ~12 ns a sample on our machine; this costs ~4 ns (drawing included).
# The stream differs from numpy's ``standard_normal``; the distribution is the same (tested: KS, moments, tails).

def _ziggurat_tables():
    r = 3.6541528853610088  # start of the tail for 256 layers
    v = r * math.exp(-0.5 * r * r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))  # layer area
    m1 = float(2 ** 52)
    k = np.zeros(256, np.uint64)
    w = np.zeros(256)
    f = np.zeros(256)
    dn = tn = r
    q = v / math.exp(-0.5 * dn * dn)
    k[0] = np.uint64((dn / q) * m1)
    w[0] = q / m1
    w[255] = dn / m1
    f[0] = 1.0
    f[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(v / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = np.uint64((dn / tn) * m1)
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / m1
    return k, w, f, r


_ZIG_K, _ZIG_W, _ZIG_F, _ZIG_R = _ziggurat_tables()


def standard_normal(n: int, seed: int, *, batch: int | None = None) -> np.ndarray:
    """``n`` exact N(0, 1) samples as float32 (float64 ziggurat values, rounded), a pure function of ``seed``.

    The 64-bit words come from ``np.random.default_rng(seed).bit_generator.random_raw`` in batches (``batch``
    words at first, default n + n/32 + 64: ~1.5% of samples need extra words); the result does not depend on
    the batch size.
    """
    bitgen = np.random.default_rng(check_seed(seed)).bit_generator
    out = np.empty(n, np.float32)
    size = batch if batch is not None else n + n // 32 + 64
    raw = bitgen.random_raw(size)
    done, pos = _ziggurat(raw, 0, out, 0, _ZIG_K, _ZIG_W, _ZIG_F, _ZIG_R)
    while done < n:  # ran out of words mid-way: keep the unread ones, append fresh ones, resume
        raw = np.concatenate([raw[pos:], bitgen.random_raw(max(size, 64))])
        done, pos = _ziggurat(raw, 0, out, done, _ZIG_K, _ZIG_W, _ZIG_F, _ZIG_R)
    return out


@njit(cache=True, nogil=True)
def _ziggurat(raw, pos, out, start, ki, wi, fi, r):
    """Fill out[start:] with normals from the words raw[pos:]; returns (filled up to, next unread word).

    Stops early (before a sample, never inside one) when the words run out. Words -> doubles in [0, 1) as
    (word >> 11) * 2**-53.
    """
    n = out.shape[0]
    nraw = raw.shape[0]
    inv_r = 1.0 / r
    i = start
    while i < n:
        p = pos
        if p >= nraw:
            return i, pos
        word = raw[p]
        p += 1
        idx = word & np.uint64(0xFF)
        word = word >> np.uint64(8)
        neg = (word & np.uint64(1)) != 0
        rabs = (word >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
        x = float(rabs) * wi[idx]
        if neg:
            x = -x
        if rabs < ki[idx]:  # inside the layer's rectangle (~99% of draws)
            out[i] = x
            i += 1
            pos = p
            continue
        ok = False
        while True:  # rejections: each try uses one word (wedge) or two (tail)
            if idx == 0:
                if p + 2 > nraw:
                    return i, pos
                u1 = float(raw[p] >> np.uint64(11)) * (1.0 / 9007199254740992.0)
                u2 = float(raw[p + 1] >> np.uint64(11)) * (1.0 / 9007199254740992.0)
                p += 2
                xx = -inv_r * math.log1p(-u1)
                yy = -math.log1p(-u2)
                if yy + yy > xx * xx:
                    x = -(r + xx) if ((rabs >> np.uint64(8)) & np.uint64(1)) != 0 else r + xx
                    ok = True
                    break
            else:
                if p + 1 > nraw:
                    return i, pos
                u = float(raw[p] >> np.uint64(11)) * (1.0 / 9007199254740992.0)
                p += 1
                if (fi[idx - 1] - fi[idx]) * u + fi[idx] < math.exp(-0.5 * x * x):
                    ok = True
                break
        if ok:
            out[i] = x
            i += 1
        pos = p  # a rejected word is consumed; the next sample starts after it
    return i, pos


# The kernels work on flat (reshaped, C-contiguous) arrays: simple strided loops that LLVM vectorises.

@njit(cache=True, nogil=True)
def _add_scaled_clip(img, noise, scale, out):
    """out = clip(img + scale * noise, 0, 1); img, noise, out flat float32 of equal length."""
    for i in range(img.shape[0]):
        v = img[i] + scale * noise[i]
        out[i] = min(max(v, np.float32(0.0)), np.float32(1.0))


@njit(cache=True, nogil=True)
def _add_scaled_clip_gray(img, noise, scale, out):
    """out = clip(img + scale * noise[pixel], 0, 1); img/out flat (3n), noise flat (n) shared by the channels."""
    for i in range(noise.shape[0]):
        n = scale * noise[i]
        for ch in range(3):
            v = img[3 * i + ch] + n
            out[3 * i + ch] = min(max(v, np.float32(0.0)), np.float32(1.0))


# --------------------------------------------------------------------------------------------- Poisson

def poisson_vals(n_unique: int) -> int:
    """The spec's ``vals = 2 ** ceil(log2(#unique values))`` (1 for a constant image)."""
    return 1 << max(0, int(n_unique) - 1).bit_length()


def add_poisson_noise(img: np.ndarray, scale: float, gray: bool, seed: int) -> np.ndarray:
    """Add Poisson (shot) noise as Real-ESRGAN does, and clip to [0, 1].

    Colour: ``I = clip(round(255 img), 0, 255) / 255`` per channel; ``vals = 2^ceil(log2(#unique values of
    255 I over all channels))``; ``n = poisson(I vals) / vals - I``. Gray: the same on
    ``Y = 0.299 R + 0.587 G + 0.114 B`` of ``img``, one field broadcast to the three channels.
    ``out = clip(img + scale * n, 0, 1)``.

    img: float32 HxWx3. scale: >= 0. seed: int; the uniforms are ``default_rng(seed).random`` (float64) of shape
    (H, W) when gray else (H, W, 3). Returns float32 HxWx3 in [0, 1].
    """
    img = check_image(img)
    scale = check_finite_number(scale, "scale", lo=0.0)
    rng = np.random.default_rng(check_seed(seed))
    h, w, _ = img.shape
    hist = np.zeros(256, np.int64)
    flat = img.reshape(-1)
    if gray:
        levels = np.empty(h * w, np.uint8)
        _gray_levels_hist(flat, levels, hist)
    else:
        levels = np.empty(h * w * 3, np.uint8)
        _levels_hist(flat, levels, hist)
    present = np.flatnonzero(hist)
    vals = poisson_vals(present.size)
    cdf, offsets, guide = poisson_tables(present, vals)
    u = rng.random(levels.shape)
    out = np.empty_like(img)
    lut = np.zeros(256, np.int32)
    lut[present] = np.arange(present.size, dtype=np.int32)
    kernel = _poisson_add_gray if gray else _poisson_add
    kernel(flat, levels, u, lut, cdf, offsets, guide, np.float32(vals), np.float32(scale), out.reshape(-1))
    return out


def poisson_tables(levels: np.ndarray, vals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-CDF tables for the rates ``lam_i = levels[i] / 255 * vals`` (levels: int array of 8-bit levels).

    Returns ``cdf`` (float64, concatenated tables; the last entry of each table is replaced by 2.0 so that every
    uniform in [0, 1) terminates there), ``offsets`` (int64, len(levels) + 1) and ``guide`` (int32,
    (len(levels), _GUIDE + 1)): ``guide[i, j]`` = the smallest n with ``cdf_i[n] > j / _GUIDE`` for j < _GUIDE,
    and ``guide[i, _GUIDE]`` = the last index of table i. The answer for u in bucket j = floor(u _GUIDE) lies in
    ``[guide[i, j], guide[i, j + 1]]``.
    """
    levels = np.asarray(levels, np.int64)
    lam_max = float(vals)
    cap = int(lam_max + 12.0 * math.sqrt(lam_max) + 40.0)  # far beyond where float64 CDFs saturate
    cdf = np.empty(levels.size * cap, np.float64)
    offsets = np.empty(levels.size + 1, np.int64)
    guide = np.empty((levels.size, _GUIDE + 1), np.int32)
    lam = levels.astype(np.float64) / 255.0 * float(vals)
    _build_poisson_tables(lam, cap, cdf, offsets, guide)
    return cdf[: offsets[-1]], offsets, guide


@njit(cache=True, nogil=True)
def _build_poisson_tables(lam, cap, cdf, offsets, guide):
    """Fill the packed CDF tables (see poisson_tables); cdf has room for len(lam) * cap entries."""
    pos = 0
    m = guide.shape[1] - 1
    for i in range(lam.shape[0]):
        lm = lam[i]
        offsets[i] = pos
        p = math.exp(-lm)
        acc = p
        n = 0
        cdf[pos] = acc
        # Grow until past the mode and the float64 sum stops changing (or acc reaches 1).
        while n + 1 < cap:
            p = p * lm / (n + 1)
            new = acc + p
            if n + 1 > lm and (new == acc or acc >= 1.0):
                break
            n += 1
            acc = new
            cdf[pos + n] = acc
        cdf[pos + n] = 2.0  # truncated tail: every u in [0, 1) stops here at the latest
        length = n + 1
        k = 0
        for j in range(m):
            t = j / m
            while cdf[pos + k] <= t:
                k += 1
            guide[i, j] = k
        guide[i, m] = n
        pos += length
    offsets[lam.shape[0]] = pos


_RINT_MAGIC = np.float32(12582912.0)  # 1.5 * 2**23: (x + M) - M rounds half to even for 0 <= x < 2**22


@njit(cache=True, nogil=True)
def _levels_hist(img, levels, hist):
    """levels = rint(clip(255 img, 0, 255)) as uint8 (float32 arithmetic); hist[l] += count of level l.
    img flat float32, levels flat uint8 of the same length."""
    for i in range(img.shape[0]):
        q = min(max(img[i] * np.float32(255.0), np.float32(0.0)), np.float32(255.0))
        levels[i] = np.uint8((q + _RINT_MAGIC) - _RINT_MAGIC)
    for i in range(levels.shape[0]):
        hist[levels[i]] += 1


@njit(cache=True, nogil=True)
def _gray_levels_hist(img, levels, hist):
    """levels = rint(clip(255 Y, 0, 255)), Y = 0.299 R + 0.587 G + 0.114 B in float32, and their histogram.
    img flat float32 RGB (3n), levels flat uint8 (n)."""
    wr = np.float32(0.299)
    wg = np.float32(0.587)
    wb = np.float32(0.114)
    for i in range(levels.shape[0]):
        g = wr * img[3 * i] + wg * img[3 * i + 1] + wb * img[3 * i + 2]
        q = min(max(g * np.float32(255.0), np.float32(0.0)), np.float32(255.0))
        levels[i] = np.uint8((q + _RINT_MAGIC) - _RINT_MAGIC)
    for i in range(levels.shape[0]):
        hist[levels[i]] += 1


@njit(cache=True, nogil=True, inline="always")
def _poisson_draw(u, row, cdf, offsets, guide):
    """Smallest n with u < cdf_row[n] (inverse CDF of table `row`), u in [0, 1)."""
    m = guide.shape[1] - 1
    off = offsets[row]
    j = int(u * m)
    lo = guide[row, j]
    hi = guide[row, j + 1]  # cdf_row[hi] > u: the answer is in [lo, hi]
    if hi - lo <= 2:
        # Common case (~99%): count the (monotone) entries <= u without a data-dependent branch.
        return lo + (1 if cdf[off + lo] <= u else 0) + (1 if cdf[off + min(lo + 1, hi)] <= u else 0)
    while cdf[off + lo] <= u:  # a tail bucket holding many small probabilities
        lo += 1
    return lo


@njit(cache=True, nogil=True, inline="always")
def _level_values():
    """level / 255 in float32 for the 256 levels (the exact quotients, without a division per pixel)."""
    t = np.empty(256, np.float32)
    for lv in range(256):
        t[lv] = np.float32(lv) / np.float32(255.0)
    return t


@njit(cache=True, nogil=True)
def _poisson_add(img, levels, u, lut, cdf, offsets, guide, vals, scale, out):
    """Colour: out = clip(img + scale * (N / vals - level / 255), 0, 1), N = inverse CDF of u in the table of
    the element's level. img/out flat float32, levels flat uint8, u flat float64, all of one length."""
    inv_vals = np.float32(1.0) / vals  # vals is a power of two: n * inv_vals == n / vals exactly
    level_f = _level_values()
    for i in range(img.shape[0]):
        lv = levels[i]
        n = _poisson_draw(u[i], lut[lv], cdf, offsets, guide)
        noise = np.float32(n) * inv_vals - level_f[lv]
        v = img[i] + scale * noise
        out[i] = min(max(v, np.float32(0.0)), np.float32(1.0))


@njit(cache=True, nogil=True)
def _poisson_add_gray(img, levels, u, lut, cdf, offsets, guide, vals, scale, out):
    """Gray: one field from the gray levels (flat, n), broadcast to the three channels of img/out (flat, 3n)."""
    inv_vals = np.float32(1.0) / vals
    level_f = _level_values()
    for i in range(levels.shape[0]):
        lv = levels[i]
        n = _poisson_draw(u[i], lut[lv], cdf, offsets, guide)
        noise = scale * (np.float32(n) * inv_vals - level_f[lv])
        for ch in range(3):
            v = img[3 * i + ch] + noise
            out[3 * i + ch] = min(max(v, np.float32(0.0)), np.float32(1.0))


# --------------------------------------------------------------------------------------------- pool patches

def _mirror_index(start: int, length: int, size: int) -> np.ndarray:
    """Indices start .. start + length - 1 folded into [0, size) by reflect-101 (periodic mirror)."""
    idx = np.arange(start, start + length, dtype=np.int64)
    if size == 1:
        return np.zeros(length, np.int64)
    period = 2 * (size - 1)
    idx %= period
    return np.where(idx >= size, period - idx, idx)


def add_noise_patch(img: np.ndarray, patch: np.ndarray, u: float, v: float) -> np.ndarray:
    """Add a crop of a zero-mean noise patch (from a RealSR noise pool) and clip to [0, 1].

    img: float32 HxWx3. patch: float32 PhxPwx3. (u, v) in [0, 1): the crop position as fractions along the
    array axes, u along the height (rows) and v along the width (columns). Where the patch is at least as large
    as the image along an axis the crop starts at ``floor(u * (Ph - H + 1))`` (every position equally likely for
    uniform u); where it is smaller the patch is tiled by reflect-101 mirroring (``abc|ba|abc...``, seamless, no
    duplicated edge row) and the crop starts at ``floor(u * Ph)`` in that mirrored plane.
    Returns float32 HxWx3 ``clip(img + crop, 0, 1)``.
    """
    img = check_image(img)
    patch = check_image(patch, "patch")
    u = check_finite_number(u, "u")
    v = check_finite_number(v, "v")
    for name, f in (("u", u), ("v", v)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name}: expected a fraction in [0, 1), got {f}")
    h, w, _ = img.shape
    ph, pw, _ = patch.shape
    y0 = int(u * (ph - h + 1)) if ph >= h else int(u * ph)
    x0 = int(v * (pw - w + 1)) if pw >= w else int(v * pw)
    if ph >= h and pw >= w:
        crop = patch[y0:y0 + h, x0:x0 + w]
    else:
        crop = patch[np.ix_(_mirror_index(y0, h, ph), _mirror_index(x0, w, pw))]
    out = img + crop
    np.clip(out, 0.0, 1.0, out=out)
    return out
