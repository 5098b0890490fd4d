"""Blur kernels of the Real-ESRGAN degradation model: builders and the sampler.

Building a kernel (pure function of its parameters) is separate from applying it (`degradekit.ops.blur`) and
from drawing its parameters (`sample_kernel`, `sample_final_sinc`).

Grid convention (spec/realesrgan-model.md section 2): a k x k kernel (k odd) has offsets -(k-1)/2 .. (k-1)/2;
element [row, col] has p = (x = col offset, y = row offset).  Sigma = R diag(sx^2, sy^2) R^T with
R = [[cos t, -sin t], [sin t, cos t]].  Every kernel is float64 and sums to 1.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

from degradekit.params import KernelParams

#: the six non-sinc kinds, in the order of the spec's weight list
KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
#: the issue-11 blur kinds (KernelConfig.box_prob ... median_prob); median is a filter, not a kernel
EXTRA_KINDS = ("box", "disk", "motion", "median")
#: largest kernel the model uses (the HR image must be at least this big)
MAX_KERNEL_SIZE = 21


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size!r}")
    return int(size)


def _check_positive(name: str, value) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


@functools.lru_cache(maxsize=32)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x^2, 2xy, y^2 on the k x k grid (x: column offset, y: row offset); read-only, cached per size."""
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    out = (xx * xx, 2.0 * xx * yy, yy * yy)
    for a in out:
        a.setflags(write=False)
    return out


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """p^T Sigma^-1 p on the k x k grid, float64 (size, size).

    Sigma^-1 = R diag(1/sx^2, 1/sy^2) R^T in closed form (no general 2x2 inverse: this is most of the cost of
    building a small kernel).
    """
    c, s = math.cos(theta), math.sin(theta)
    ix, iy = 1.0 / (sigma_x * sigma_x), 1.0 / (sigma_y * sigma_y)
    a = c * c * ix + s * s * iy          # Sigma^-1 [0, 0]
    b = c * s * (ix - iy)                # Sigma^-1 [0, 1] == [1, 0]
    d = s * s * ix + c * c * iy          # Sigma^-1 [1, 1]
    x2, xy2, y2 = _grid(size)
    return a * x2 + b * xy2 + d * y2


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Anisotropic Gaussian k(p) ~ exp(-1/2 p^T Sigma^-1 p).

    size: odd int; sigma_x, sigma_y > 0 (pixels); theta: rotation in radians.
    Returns float64 (size, size), sum 1.  Isotropic: sigma_y = sigma_x (theta then has no effect).
    """
    size = _check_size(size)
    q = _quadratic_form(size, _check_positive("sigma_x", sigma_x), _check_positive("sigma_y", sigma_y),
                        float(theta))
    k = np.exp(-0.5 * q)
    return k / k.sum()


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float,
                                beta: float) -> np.ndarray:
    """Generalized Gaussian k(p) ~ exp(-1/2 (p^T Sigma^-1 p)^beta) (the 1/2 is outside the power).

    beta > 0 (the model uses [0.5, 4]).  Returns float64 (size, size), sum 1.
    """
    size = _check_size(size)
    q = _quadratic_form(size, _check_positive("sigma_x", sigma_x), _check_positive("sigma_y", sigma_y),
                        float(theta))
    k = np.exp(-0.5 * np.power(q, _check_positive("beta", beta)))
    return k / k.sum()


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel k(p) ~ 1 / (1 + (p^T Sigma^-1 p)^beta).

    beta > 0 (the model uses [1, 2]).  Returns float64 (size, size), sum 1.
    """
    size = _check_size(size)
    q = _quadratic_form(size, _check_positive("sigma_x", sigma_x), _check_positive("sigma_y", sigma_y),
                        float(theta))
    k = 1.0 / (np.power(q, _check_positive("beta", beta)) + 1.0)
    return k / k.sum()


def sinc_kernel(size: int, omega_c: float, pad_to: int = 0) -> np.ndarray:
    """Circular low-pass (2-D sinc) k(r) = omega_c J1(omega_c r) / (2 pi r), centre omega_c^2 / (4 pi).

    size: odd int; omega_c > 0: cutoff in radians/pixel (the model uses [pi/5, pi]).
    Normalised to sum 1 at `size`, then zero-padded (centred) to pad_to x pad_to when pad_to > size
    (padding changes no blur result).  Returns float64.
    """
    size = _check_size(size)
    omega_c = _check_positive("omega_c", omega_c)
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    r = np.sqrt(ax[:, None] ** 2 + ax[None, :] ** 2)
    c = size // 2
    r[c, c] = 1.0  # placeholder: the centre is the limit below
    k = omega_c * special.j1(omega_c * r) / (2.0 * np.pi * r)
    k[c, c] = omega_c * omega_c / (4.0 * np.pi)
    k = k / k.sum()
    if pad_to and pad_to > size:
        if (pad_to - size) % 2:
            raise ValueError(f"pad_to must be odd like size, got pad_to={pad_to!r}, size={size}")
        p = (pad_to - size) // 2
        k = np.pad(k, ((p, p), (p, p)))
    return k


def build_kernel(params: KernelParams, pool=None) -> np.ndarray:
    """The float64 (k, k) kernel (sum 1) that a recorded KernelParams describes.

    kind "pool" looks the kernel up in `pool` (see the pool protocol in docs/design.md).
    """
    kind = params.kind
    if kind in ("iso", "aniso"):
        return gaussian_kernel(params.size, params.sigma_x, params.sigma_y, params.theta)
    if kind in ("generalized_iso", "generalized_aniso"):
        return generalized_gaussian_kernel(params.size, params.sigma_x, params.sigma_y, params.theta,
                                           params.beta)
    if kind in ("plateau_iso", "plateau_aniso"):
        return plateau_kernel(params.size, params.sigma_x, params.sigma_y, params.theta, params.beta)
    if kind == "sinc":
        return sinc_kernel(params.size, params.omega_c)
    if kind in ("box", "disk", "motion"):
        from degradekit.ops import blur_kernels

        if kind == "box":
            return blur_kernels.box_kernel(params.width)
        if kind == "disk":
            return blur_kernels.disk_kernel(params.radius)
        return blur_kernels.motion_kernel(params.length, params.angle)
    if kind == "median":
        raise ValueError("a median filter has no kernel (apply it with ops.median.median_blur)")
    if kind == "pool":
        if pool is None:
            raise ValueError(f"kernel {params.pool_id!r} comes from a pool, but no pool was given")
        k = np.asarray(pool.kernel(params.pool_id), dtype=np.float64)
        if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
            raise ValueError(f"pool kernel {params.pool_id!r} is not a square odd-sized 2-D array: {k.shape}")
        return k
    raise ValueError(f"unknown kernel kind {kind!r}")


def _choose(rng: np.random.Generator, weights) -> int:
    """Index i with probability weights[i] / sum(weights) (one uniform draw; faster than rng.choice)."""
    u = rng.uniform() * sum(weights)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if u < acc:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)  # u == sum(weights) up to rounding


def _uniform(rng: np.random.Generator, lo_hi) -> float:
    lo, hi = lo_hi
    return float(rng.uniform(lo, hi))


def _split_beta(rng: np.random.Generator, beta_range, low_prob: float) -> float:
    # (!) the reference draws beta from U(lo, 1) or U(1, hi) with probability 1/2 each, so plateau kernels
    # ([1, 2]) get beta == 1 exactly half of the time.
    lo, hi = beta_range
    if rng.uniform() < low_prob:
        return float(rng.uniform(lo, 1.0))
    return float(rng.uniform(1.0, hi))


def sample_kernel(rng: np.random.Generator, kcfg, *, pool=None, scale: int = 4) -> KernelParams:
    """Draw one stage blur kernel's parameters (spec section 2) from a `config.KernelConfig`.

    Order of the choice: a pool kernel with probability kcfg.pool_prob (uniform over pool.kernel_ids(scale));
    otherwise box/disk/motion/median with their probabilities (drawn only when one is > 0); otherwise a sinc
    with probability kcfg.sinc_prob; otherwise one of KINDS with kcfg.weights.
    The size is drawn uniformly from kcfg.sizes for every non-pool kernel (first, as in 0.1; the four new kinds
    do not record it).
    """
    if kcfg.pool_prob > 0 and rng.uniform() < kcfg.pool_prob:
        ids = pool.kernel_ids(scale)
        return KernelParams(kind="pool", pool_id=str(ids[int(rng.integers(len(ids)))]))
    size = int(kcfg.sizes[int(rng.integers(len(kcfg.sizes)))])
    probs = (kcfg.box_prob, kcfg.disk_prob, kcfg.motion_prob, kcfg.median_prob)
    if sum(probs) > 0:
        u, acc = rng.uniform(), 0.0
        for kind, p in zip(EXTRA_KINDS, probs):
            acc += p
            if u < acc:
                return _sample_extra_kernel(rng, kind, kcfg)
    if rng.uniform() < kcfg.sinc_prob:
        omega = kcfg.sinc_omega_small if size < kcfg.sinc_large_from else kcfg.sinc_omega_large
        return KernelParams(kind="sinc", size=size, omega_c=_uniform(rng, omega))
    kind = KINDS[_choose(rng, [getattr(kcfg.weights, k) for k in KINDS])]
    sigma_x = _uniform(rng, kcfg.sigma)
    if kind.endswith("aniso"):
        sigma_y = _uniform(rng, kcfg.sigma)
        theta = _uniform(rng, kcfg.theta)
    else:
        sigma_y, theta = sigma_x, 0.0
    beta = None
    if kind.startswith("generalized"):
        beta = _split_beta(rng, kcfg.generalized_beta, kcfg.beta_low_prob)
    elif kind.startswith("plateau"):
        beta = _split_beta(rng, kcfg.plateau_beta, kcfg.beta_low_prob)
    return KernelParams(kind=kind, size=size, sigma_x=sigma_x, sigma_y=sigma_y, theta=theta, beta=beta)


def _sample_extra_kernel(rng: np.random.Generator, kind: str, kcfg) -> KernelParams:
    if kind == "box":
        return KernelParams(kind="box", width=_uniform(rng, kcfg.box_size))
    if kind == "disk":
        return KernelParams(kind="disk", radius=_uniform(rng, kcfg.disk_radius))
    if kind == "motion":
        return KernelParams(kind="motion", length=_uniform(rng, kcfg.motion_length),
                            angle=_uniform(rng, kcfg.motion_angle))
    sizes = kcfg.median_sizes
    return KernelParams(kind="median", size=int(sizes[int(rng.integers(len(sizes)))]) if len(sizes) > 1
                        else int(sizes[0]))


def sample_final_sinc(rng: np.random.Generator, fcfg) -> KernelParams | None:
    """The final-step sinc (with probability fcfg.sinc_prob, else None = identity) from a FinalConfig."""
    if rng.uniform() >= fcfg.sinc_prob:
        return None
    size = int(fcfg.sinc_sizes[int(rng.integers(len(fcfg.sinc_sizes)))])
    return KernelParams(kind="sinc", size=size, omega_c=_uniform(rng, fcfg.sinc_omega))
