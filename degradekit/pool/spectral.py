"""Spectral blur-shape estimate (ours): an anisotropic Gaussian blur fitted to the falloff of a photo's
power spectrum, used to give KernelGAN's kernels the elongation and orientation that KernelGAN misses.

Model: a natural scene has a power spectrum c(theta) / |f|^alpha (scale invariance; c absorbs the scene's own
directional content). A photo blurred with a Gaussian of covariance S (LR pixels) has
    log P(f) = a(theta) - alpha log|f| - 4 pi^2 f^T S f,
so along each direction the extra quadratic falloff measures S in that direction. The fit is linear least
squares over (direction, log radius) bins of a Welch-averaged periodogram of the gray image, with one intercept
per direction, a shared alpha and the three entries of S. At scale s the HR-pixel kernel covariance is s^2 S
(the scene is the HR's sharp content).

What it recovers and what it does not (measured, docs/performance.md, "KernelGAN and pools"): at x2 with a sigma 2.0/0.8
kernel it finds the width within ~10 % and the angle within ~15 degrees on the bundled photos (KernelGAN:
elongation 1.3 instead of 2.5, angle arbitrary). It needs the blur to show inside the band it fits: a photo
whose blur is far below a pixel (a sharp, aliased x4 LR) gives no information and is flagged unreliable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SpectralEstimate", "spectral_blur", "warp_kernel_to_cov"]

R_MIN, R_MAX = 0.06, 0.42  # cycles / pixel: above the DC leakage of the window, below Nyquist's aliasing
N_THETA, N_RADIUS = 12, 10
ALPHA_RANGE = (1.5, 4.5)  # natural images: about 2 (+-1); outside, the power-law model does not hold
MIN_SIGMA_LR = 0.25  # LR px: a narrower blur is lost in aliasing and quantisation


@dataclass(frozen=True)
class SpectralEstimate:
    """cov_lr: (2, 2) blur covariance in LR pixels ((x, y) = (column, row) axes). cov: the same at the HR
    grid (scale^2 cov_lr). sigma_major/minor (HR px), theta (degrees of the major axis from +x towards +y),
    alpha: the fitted power-law exponent. reliable: the fit is usable (see :func:`spectral_blur`); why: the
    reason when it is not."""

    cov_lr: tuple
    cov: tuple
    sigma_major: float
    sigma_minor: float
    theta: float
    alpha: float
    reliable: bool
    why: str = ""
    sharp: bool = False  # the power law holds but the blur is below MIN_SIGMA_LR: an upper bound, not a value

    def to_dict(self) -> dict:
        return dict(cov=[list(r) for r in self.cov], sigma_major=self.sigma_major, sigma_minor=self.sigma_minor,
                    theta=self.theta, alpha=self.alpha, reliable=self.reliable, why=self.why,
                    sharp=self.sharp)


def _welch_power(g: np.ndarray) -> np.ndarray:
    """Mean periodogram of Hann-windowed tiles (side min(256, shorter side), half overlap), fftshifted."""
    h, w = g.shape
    t = min(256, h, w)
    win = np.outer(np.hanning(t), np.hanning(t))
    ys = list(range(0, h - t + 1, max(1, t // 2)))
    xs = list(range(0, w - t + 1, max(1, t // 2)))
    acc = np.zeros((t, t))
    for y in ys:
        for x in xs:
            tile = g[y:y + t, x:x + t]
            acc += np.abs(np.fft.fft2((tile - tile.mean()) * win)) ** 2
    return np.fft.fftshift(acc / (len(ys) * len(xs)))


def spectral_blur(img: np.ndarray, scale: int) -> SpectralEstimate:
    """Fit an anisotropic Gaussian blur to the power-spectrum falloff of `img`.

    img: HxW or HxWx3, any real dtype (uint8 photos: grey levels), both sides >= 32.  scale: the SR factor the
    kernel is for (HR px = scale x LR px).  Returns a :class:`SpectralEstimate`; `reliable` is False when the
    fitted alpha is outside ALPHA_RANGE or the blur's major axis is below MIN_SIGMA_LR LR px."""
    g = np.asarray(img, np.float64)
    if g.ndim == 3:
        g = g.mean(axis=2)
    if g.ndim != 2 or min(g.shape) < 32:
        raise ValueError(f"spectral_blur: need an image with both sides >= 32, got shape {np.shape(img)}")
    P = _welch_power(g)
    t = P.shape[0]
    f = np.fft.fftshift(np.fft.fftfreq(t))
    fy, fx = np.meshgrid(f, f, indexing="ij")
    r = np.hypot(fx, fy)
    m = (r > R_MIN) & (r < R_MAX) & (P > 0)
    rr, th, lp = r[m], np.arctan2(fy[m], fx[m]) % np.pi, np.log(P[m])
    tb = np.minimum((th / np.pi * N_THETA).astype(int), N_THETA - 1)
    rb = np.minimum(((np.log(rr) - math.log(R_MIN)) / math.log(R_MAX / R_MIN) * N_RADIUS).astype(int), N_RADIUS - 1)
    rows, ys = [], []
    for i in range(N_THETA):
        for j in range(N_RADIUS):
            s = (tb == i) & (rb == j)
            if not s.any():
                continue
            rad = float(np.exp(np.log(rr[s]).mean()))
            ang = float(th[s].mean())
            c, sn = math.cos(ang), math.sin(ang)
            q = -4 * math.pi**2 * rad**2
            row = np.zeros(N_THETA + 4)
            row[i] = 1.0
            row[N_THETA] = -math.log(rad)
            row[N_THETA + 1:] = (q * c * c, q * 2 * c * sn, q * sn * sn)
            rows.append(row)
            ys.append(float(lp[s].mean()))
    sol = np.linalg.lstsq(np.array(rows), np.array(ys), rcond=None)[0]
    alpha = float(sol[N_THETA])
    sxx, sxy, syy = sol[N_THETA + 1:]
    ev, evec = np.linalg.eigh(np.array([[sxx, sxy], [sxy, syy]]))
    ev = np.clip(ev, 0.0, None)  # a direction sharper than the model's floor: no blur there
    cov_lr = (evec * ev) @ evec.T
    major = evec[:, 1]
    theta = math.degrees(math.atan2(major[1], major[0])) % 180.0
    sig_lr = math.sqrt(ev[1])
    why = ""
    if not (ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]):
        why = f"power-law exponent {alpha:.2f} outside {ALPHA_RANGE}"
    elif sig_lr < MIN_SIGMA_LR:
        why = f"blur {sig_lr:.2f} LR px below {MIN_SIGMA_LR}: too sharp to measure"
    cov = cov_lr * scale**2
    return SpectralEstimate(cov_lr=tuple(map(tuple, cov_lr.tolist())), cov=tuple(map(tuple, cov.tolist())),
                            sigma_major=float(math.sqrt(ev[1]) * scale), sigma_minor=float(math.sqrt(ev[0]) * scale),
                            theta=float(theta), alpha=alpha, reliable=not why, why=why,
                            sharp=why.startswith("blur"))


def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
    ev, evec = np.linalg.eigh(c)
    return (evec * np.sqrt(np.clip(ev, 0, None))) @ evec.T


def warp_kernel_to_cov(k: np.ndarray, cov: np.ndarray, min_sigma: float = 0.4) -> np.ndarray:
    """Affinely warp a centred kernel so that its covariance becomes `cov`, keeping its profile.

    k: (n, n) non-negative, sum 1, centre of mass on the grid centre.  cov: (2, 2) target covariance in (x, y)
    = (column, row) pixel axes; eigenvalues are floored at min_sigma^2 (a line blur is kept as a thin blur, not
    a singular map).  With A = cov^1/2 C_k^-1/2 (C_k: the kernel's covariance), k'(p) = k(A^-1 p) / |det A|,
    resampled with cubic splines on an odd grid covering 4 sigma. Resampling a sharp-edged profile widens it a
    little, so the target is corrected twice against the measured result (a disk: 5 % -> < 0.5 % off).
    Returns float64 (m, m), sum 1, centred."""
    from .kernelgan import kernel_cov

    ev, evec = np.linalg.eigh(np.asarray(cov, np.float64))
    want = (evec * np.maximum(ev, min_sigma**2)) @ evec.T
    target = want
    for _ in range(3):
        out = _warp_once(k, target)
        err = want - kernel_cov(out)
        if np.abs(err).max() < 1e-4 * np.trace(want):
            break
        ev, evec = np.linalg.eigh(target + err)
        target = (evec * np.maximum(ev, 0.25 * min_sigma**2)) @ evec.T
    return out


def _warp_once(k: np.ndarray, cov: np.ndarray) -> np.ndarray:
    import scipy.ndimage as ndi

    from .kernelgan import center_kernel, kernel_cov, trim_kernel

    k = np.asarray(k, np.float64)
    c0 = (k.shape[0] - 1) / 2
    a = _sqrtm_psd(cov) @ np.linalg.inv(_sqrtm_psd(kernel_cov(k)))
    m = max(2 * int(math.ceil(4 * math.sqrt(np.linalg.eigvalsh(cov)[1]))) + 1, 3)
    cm = (m - 1) / 2
    ainv = np.linalg.inv(a)
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])  # (x, y) <-> (row, col) = (y, x)
    ainv_rc = swap @ ainv @ swap
    # output index o (row, col) -> input index ainv_rc (o - cm) + c0
    offset = np.array([c0, c0]) - ainv_rc @ np.array([cm, cm])
    out = ndi.affine_transform(k, ainv_rc, offset=offset, output_shape=(m, m), order=3, mode="constant")
    out = np.clip(out, 0, None)
    if out.sum() <= 0:
        raise ValueError("warp_kernel_to_cov: the warped kernel is empty")
    out /= out.sum()
    return center_kernel(trim_kernel(out), pad=0)


def shape_kernels(img: np.ndarray, k2: np.ndarray, spectral: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """The pool's x2 and x4 kernels from a KernelGAN x2 kernel and its photo, shaped spectrally.

    img: uint8 HxWx3, the photo KernelGAN ran on.  k2: centred x2 kernel (sum 1).  spectral: False gives the
    KernelGAN kernels unchanged (`pool build --shape kernelgan`), with the same record minus the fit.
    Returns (x2, x4, record): with a reliable spectral fit, k2 warped to the fitted x2 covariance and the x4
    kernel composed from k2 (:func:`kernelgan.kernel_x4_from_x2`) warped to 4x that covariance. A photo sharper
    than the fit can measure gets the narrowest blur it vouches for (every direction raised to MIN_SIGMA_LR LR px;
    KernelGAN's estimate floors far wider on such photos, 1.3 px where 0.87 px is needed). When the power law
    does not hold, the KernelGAN kernels stay unchanged. record: {"method": "spectral"|"kernelgan",
    "kernelgan": k2's moments, "spectral": the fit, "floor": set when the sharp floor was used,
    "kept_kernelgan": why the fit was not used (when it was not)}."""
    from .kernelgan import kernel_moments, kernel_x4_from_x2

    k4 = kernel_x4_from_x2(k2)
    rec = {"method": "kernelgan", "kernelgan": kernel_moments(k2)}
    if not spectral:
        return np.asarray(k2, np.float64), k4, rec
    sp = spectral_blur(img, 2)
    rec["spectral"] = sp.to_dict()
    if not sp.reliable and not sp.sharp:
        rec["kept_kernelgan"] = sp.why
        return np.asarray(k2, np.float64), k4, rec
    cov2 = np.array(sp.cov)
    if sp.sharp:
        ev, evec = np.linalg.eigh(np.array(sp.cov_lr))
        cov2 = 4.0 * (evec * np.maximum(ev, MIN_SIGMA_LR**2)) @ evec.T
        rec["floor"] = sp.why
    rec["method"] = "spectral"
    return warp_kernel_to_cov(k2, cov2), warp_kernel_to_cov(k4, 4.0 * cov2), rec
