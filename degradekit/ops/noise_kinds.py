"""Noise kinds beyond Real-ESRGAN's: uniform, speckle, Gaussian in a colour space, salt and pepper.

Spaces (``space``): "rgb" -- an independent field per channel; "gray" -- one field added to the three channels;
"luma" -- noise on Y only, Cb and Cr unchanged; "chroma" -- independent noise on Cb and on Cr, Y unchanged.
YCbCr is BT.601 full range (JPEG/JFIF's matrix): ``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cb = (B - Y) / 1.772``,
``Cr = (R - Y) / 1.402``. Noise is added as the exact RGB change of that component change (the inverse matrix's
columns): Y -> (1, 1, 1), Cb -> (0, -0.114 * 1.772 / 0.587, 1.772), Cr -> (1.402, -0.299 * 1.402 / 0.587, 0), so
the untouched components stay unchanged to float32 rounding and no round trip through YCbCr is made. Because the
Cb and Cr rows of the matrix sum to zero, additive noise on Y is the same thing as "gray" noise; speckle differs
(it scales with Y there, with each channel in "gray"). Every result is clipped to [0, 1] (which can change the
untouched components where a pixel saturates).

Randomness: ``np.random.default_rng(seed)`` in the wrappers; normals from ``ops.noise.standard_normal`` (the
exact ziggurat the Gaussian noise op uses: "rgb"/"gray" Gaussian noise here equals ``add_gaussian_noise`` bit for
bit), uniforms from ``rng.random(n, dtype=float32)``. Field layout: "rgb" (H, W, 3) C order; "gray"/"luma"
(H, W); "chroma" (H, W, 2) with Cb first. The fused add-and-clip loops are Numba kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._check import check_finite_number, check_image, check_seed
from .noise import standard_normal

SPACES = ("rgb", "gray", "luma", "chroma")

_KR, _KG, _KB = 0.299, 0.587, 0.114
# Component -> RGB change (columns of the inverse matrix) and RGB -> centred Cb, Cr rows, float32.
_CB_G = np.float32(-_KB * 1.772 / _KG)
_CB_B = np.float32(1.772)
_CR_R = np.float32(1.402)
_CR_G = np.float32(-_KR * 1.402 / _KG)
_Y_ROW = np.array([_KR, _KG, _KB], np.float32)
_CB_ROW = np.array([-_KR / 1.772, -_KG / 1.772, 0.5], np.float32)
_CR_ROW = np.array([0.5, -_KG / 1.402, -_KB / 1.402], np.float32)


def _check_space(space):
    if space not in SPACES:
        raise ValueError(f"space: expected one of {', '.join(SPACES)}, got {space!r}")
    return space


def _field_size(h, w, space):
    return h * w * {"rgb": 3, "gray": 1, "luma": 1, "chroma": 2}[space]


def _apply(img, field, space, mul, add, speckle):
    out = np.empty_like(img)
    args = (img.reshape(-1), field, np.float32(mul), np.float32(add), bool(speckle), out.reshape(-1))
    {"rgb": _noise_rgb, "gray": _noise_gray, "luma": _noise_luma, "chroma": _noise_chroma}[space](*args)
    return out


def add_uniform_noise(img: np.ndarray, amplitude: float, space: str, seed: int) -> np.ndarray:
    """Add uniform noise U(-a, a) / 255 (variance a^2 / 3 on the 0-255 scale) in ``space`` and clip to [0, 1].

    img: float32 HxWx3. amplitude: a >= 0 on the 0-255 scale. Draws ``default_rng(seed).random(n, float32)``
    = u, noise ``(2 u - 1) a / 255``. Returns float32 HxWx3 in [0, 1].
    """
    img = check_image(img)
    a = check_finite_number(amplitude, "amplitude", lo=0.0)
    space = _check_space(space)
    rng = np.random.default_rng(check_seed(seed))
    u = rng.random(_field_size(img.shape[0], img.shape[1], space), dtype=np.float32)
    return _apply(img, u, space, 2.0 * a / 255.0, -a / 255.0, False)


def add_gaussian_noise_space(img: np.ndarray, sigma: float, space: str, seed: int) -> np.ndarray:
    """Add zero-mean Gaussian noise of std ``sigma / 255`` in ``space`` and clip to [0, 1].

    img: float32 HxWx3. sigma: >= 0 on the 0-255 scale (the std of each noised component: of each channel, of Y,
    or of Cb and of Cr). Normals ``standard_normal(n, seed)``. Returns float32 HxWx3 in [0, 1].
    """
    img = check_image(img)
    sigma = check_finite_number(sigma, "sigma", lo=0.0)
    space = _check_space(space)
    n = standard_normal(_field_size(img.shape[0], img.shape[1], space), check_seed(seed))
    return _apply(img, n, space, sigma / 255.0, 0.0, False)


def add_speckle_noise(img: np.ndarray, sigma: float, space: str, seed: int) -> np.ndarray:
    """Multiplicative (speckle) noise ``v + v * N(0, sigma / 255)`` and clip to [0, 1]: its variance grows as
    the square of the intensity v (zero on black).

    v is each channel ("rgb": own field; "gray": one field for the three), Y ("luma") or the centred Cb and Cr
    ("chroma": chroma magnitude noise; neutral grays stay neutral). img: float32 HxWx3. sigma: >= 0.
    Normals ``standard_normal(n, seed)``. Returns float32 HxWx3 in [0, 1].
    """
    img = check_image(img)
    sigma = check_finite_number(sigma, "sigma", lo=0.0)
    space = _check_space(space)
    n = standard_normal(_field_size(img.shape[0], img.shape[1], space), check_seed(seed))
    return _apply(img, n, space, sigma / 255.0, 0.0, True)


def add_salt_pepper(img: np.ndarray, amount: float, salt_ratio: float, gray: bool, seed: int) -> np.ndarray:
    """Impulse noise: a fraction ``amount`` (0..1) of the pixels (gray: all three channels of a pixel together)
    or of the channel values (else, independently) is hit; ``salt_ratio`` (0..1) of the hits are set to 1
    (salt), the rest to 0 (pepper). One uniform u per pixel / per value from ``default_rng(seed).random(n,
    float32)``: ``u < amount * salt_ratio`` -> 1, else ``u < amount`` -> 0; the other values are kept (clipped
    to [0, 1]). Returns float32 HxWx3.
    """
    img = check_image(img)
    amount = check_finite_number(amount, "amount", lo=0.0)
    salt_ratio = check_finite_number(salt_ratio, "salt_ratio", lo=0.0)
    for name, v in (("amount", amount), ("salt_ratio", salt_ratio)):
        if v > 1.0:
            raise ValueError(f"{name}: expected a fraction in [0, 1], got {v}")
    if not isinstance(gray, (bool, np.bool_)):
        raise TypeError(f"gray: expected a bool, got {type(gray).__name__}")
    rng = np.random.default_rng(check_seed(seed))
    h, w, _ = img.shape
    u = rng.random(h * w if gray else h * w * 3, dtype=np.float32)
    out = np.empty_like(img)
    _salt_pepper(img.reshape(-1), u, np.float32(amount * salt_ratio), np.float32(amount), bool(gray),
                 out.reshape(-1))
    return out


# --------------------------------------------------------------------------------------------- Numba kernels
# img/out flat float32 RGB (3P); field flat float32; d = mul * field + add is the noise value (uniform:
# mul = 2a/255, add = -a/255; Gaussian: mul = sigma/255, add = 0); speckle multiplies it by the component.

@njit(cache=True, nogil=True, inline="always")
def _clip01(v):
    return min(max(v, np.float32(0.0)), np.float32(1.0))


@njit(cache=True, nogil=True)
def _noise_rgb(img, field, mul, add, speckle, out):
    """Independent per element: out = clip(x + d (* x if speckle)); field (3P)."""
    for i in range(img.shape[0]):
        x = img[i]
        d = mul * field[i] + add
        if speckle:
            d *= x
        out[i] = _clip01(x + d)


@njit(cache=True, nogil=True)
def _noise_gray(img, field, mul, add, speckle, out):
    """One field (P) for the three channels: out_c = clip(x_c + d (* x_c if speckle))."""
    for p in range(field.shape[0]):
        d = mul * field[p] + add
        for c in range(3):
            x = img[3 * p + c]
            out[3 * p + c] = _clip01(x + (d * x if speckle else d))


@njit(cache=True, nogil=True)
def _noise_luma(img, field, mul, add, speckle, out):
    """Noise on Y (field P): dY = d (* Y if speckle) added to the three channels (Cb, Cr unchanged)."""
    wr = np.float32(_KR)
    wg = np.float32(_KG)
    wb = np.float32(_KB)
    for p in range(field.shape[0]):
        r = img[3 * p]
        g = img[3 * p + 1]
        b = img[3 * p + 2]
        d = mul * field[p] + add
        if speckle:
            d *= wr * r + wg * g + wb * b
        out[3 * p] = _clip01(r + d)
        out[3 * p + 1] = _clip01(g + d)
        out[3 * p + 2] = _clip01(b + d)


@njit(cache=True, nogil=True)
def _noise_chroma(img, field, mul, add, speckle, out):
    """Noise on Cb and Cr (field 2P, Cb first): RGB += dCb * (0, cb_g, cb_b) + dCr * (cr_r, cr_g, 0); speckle
    scales dCb, dCr by the centred Cb, Cr (Y unchanged)."""
    cbr = _CB_ROW
    crr = _CR_ROW
    for p in range(img.shape[0] // 3):
        r = img[3 * p]
        g = img[3 * p + 1]
        b = img[3 * p + 2]
        dcb = mul * field[2 * p] + add
        dcr = mul * field[2 * p + 1] + add
        if speckle:
            dcb *= cbr[0] * r + cbr[1] * g + cbr[2] * b
            dcr *= crr[0] * r + crr[1] * g + crr[2] * b
        out[3 * p] = _clip01(r + _CR_R * dcr)
        out[3 * p + 1] = _clip01(g + _CB_G * dcb + _CR_G * dcr)
        out[3 * p + 2] = _clip01(b + _CB_B * dcb)


@njit(cache=True, nogil=True)
def _salt_pepper(img, u, t_salt, t_hit, gray, out):
    """u < t_salt -> 1, u < t_hit -> 0, else clip(x). u per pixel (gray, P) or per element (3P)."""
    if gray:
        for p in range(u.shape[0]):
            v = u[p]
            for c in range(3):
                i = 3 * p + c
                out[i] = np.float32(1.0) if v < t_salt else (np.float32(0.0) if v < t_hit else _clip01(img[i]))
    else:
        for i in range(u.shape[0]):
            v = u[i]
            out[i] = np.float32(1.0) if v < t_salt else (np.float32(0.0) if v < t_hit else _clip01(img[i]))
