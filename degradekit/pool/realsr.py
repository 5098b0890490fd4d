"""The RealSR (Ji et al. 2020) degradation: LR = (HR (*) k) decimated by s + n, k and n drawn from a pool.

Sampling and applying are separate (kornia style): :func:`sample_realsr` draws a frozen
:class:`RealsrParams` with an explicit ``numpy.random.Generator``; :func:`apply_realsr` is a pure function of
(hr, params, pool), so a recorded params dict replays byte for byte.

Steps of :func:`apply_realsr` (float32 throughout, one rounding at the end):
1. optional clean-up: ``cleanup=True`` downscales the HR by 2 with OpenCV INTER_AREA (the exact 2x2 mean: an
   antialiased downscale that averages the source's own noise away); the training HR is then
   :func:`hr_target` (the cleaned image), and LR = cleaned // scale;
2. blur with the pool kernel and decimate: LR pixel i samples HR position ``s*i + (s-1)/2`` -- the pixel-centre
   convention of bicubic/area resizing (cv2.resize, MATLAB imresize), so pool LRs line up with the Real-ESRGAN
   pipeline's LRs. Pool kernels are centred on their grid; for even s the kernel is shifted by (s-1)/2 px
   (cubic spline, :func:`decimation_kernel`) and the blurred image is sampled from pixel 0 with stride s;
3. a crop of a zero-mean pool noise patch is added at LR size, clipped to [0, 1]
   (degradekit.ops.noise.add_noise_patch);
4. options (**ours**, the original has none): JPEG with a random quality, or the Real-ESRGAN final step
   (50/50: sinc filter then JPEG, or JPEG then sinc filter; the sinc with probability 0.8);
5. ``round(255 x)`` clipped to uint8.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import scipy.ndimage as ndi

from . import PoolError

__all__ = ["RealsrConfig", "RealsrParams", "realsr_preset", "sample_realsr", "apply_realsr", "hr_target",
           "decimation_kernel", "check_pool_for"]


@dataclass(frozen=True)
class RealsrConfig:
    """RealSR pipeline settings (the single source of truth; :func:`realsr_preset` is the paper's).

    scale: 2 or 4.  cleanup: downscale the HR by 2 (INTER_AREA) first.
    noise_prob: probability of adding a pool noise patch (the paper: always).
    jpeg_prob, jpeg_range: a plain JPEG step at the end, quality uniform in the inclusive range.
    final: the Real-ESRGAN final step instead (sinc with probability final_sinc_prob, JPEG in jpeg_range,
    random order); cannot be combined with jpeg_prob > 0.
    """

    scale: int = 4
    cleanup: bool = False
    noise_prob: float = 1.0
    jpeg_prob: float = 0.0
    jpeg_range: tuple[int, int] = (30, 95)
    final: bool = False
    final_sinc_prob: float = 0.8

    def __post_init__(self):
        object.__setattr__(self, "jpeg_range", tuple(self.jpeg_range))
        _check_config(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pipeline"] = "realsr"
        d["jpeg_range"] = list(self.jpeg_range)
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "realsr") -> "RealsrConfig":
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected a table, got {type(d).__name__}")
        d = dict(d)
        if d.pop("pipeline", "realsr") != "realsr":
            raise ValueError(f"{where}: pipeline: expected 'realsr'")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**d)


def _check_config(c: RealsrConfig) -> None:
    if isinstance(c.scale, bool) or c.scale not in (2, 4):
        raise ValueError(f"realsr.scale: must be 2 or 4, got {c.scale!r}")
    for name in ("cleanup", "final"):
        if not isinstance(getattr(c, name), bool):
            raise ValueError(f"realsr.{name}: must be true or false, got {getattr(c, name)!r}")
    for name in ("noise_prob", "jpeg_prob", "final_sinc_prob"):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ValueError(f"realsr.{name}: must be a probability in [0, 1], got {v!r}")
    lo_hi = c.jpeg_range
    if (len(lo_hi) != 2 or any(isinstance(q, bool) or not isinstance(q, (int, np.integer)) for q in lo_hi)
            or not 1 <= lo_hi[0] <= lo_hi[1] <= 100):
        raise ValueError(f"realsr.jpeg_range: must be two integers 1 <= lo <= hi <= 100, got {list(lo_hi)!r}")
    if c.final and c.jpeg_prob > 0:
        raise ValueError("realsr: final = true already ends with JPEG; set jpeg_prob = 0")


def realsr_preset(scale: int = 4) -> RealsrConfig:
    """The Ji et al. recipe: pool kernel + decimation + pool noise, no clean-up, no JPEG."""
    return RealsrConfig(scale=int(scale))


@dataclass(frozen=True)
class RealsrParams:
    """Everything one RealSR degradation drew (JSON round-trip: to_dict / from_dict).

    kernel_id: a pool kernel id (carries its scale, e.g. "photo-1a2b3c4d5e@x4").
    noise: None or {"id": noise patch id, "u": row fraction, "v": column fraction} (crop position, [0, 1)).
    jpeg_quality: None or the plain JPEG quality.
    final: None or {"order": "sinc_jpeg" | "jpeg_sinc", "sinc": None | {"size": odd, "omega_c": rad/px},
    "jpeg_quality": int}.
    """

    scale: int
    cleanup: bool
    kernel_id: str
    noise: dict | None = None
    jpeg_quality: int | None = None
    final: dict | None = field(default=None)

    def to_dict(self) -> dict:
        return {"pipeline": "realsr", "scale": int(self.scale), "cleanup": bool(self.cleanup),
                "kernel_id": str(self.kernel_id),
                "noise": None if self.noise is None else {"id": str(self.noise["id"]), "u": float(self.noise["u"]),
                                                          "v": float(self.noise["v"])},
                "jpeg_quality": None if self.jpeg_quality is None else int(self.jpeg_quality),
                "final": None if self.final is None else _final_to_dict(self.final)}

    @classmethod
    def from_dict(cls, d: dict) -> "RealsrParams":
        if not isinstance(d, dict):
            raise ValueError(f"realsr params: expected a dict, got {type(d).__name__}")
        d = dict(d)
        if d.pop("pipeline", "realsr") != "realsr":
            raise ValueError("realsr params: pipeline is not 'realsr'")
        known = {"scale", "cleanup", "kernel_id", "noise", "jpeg_quality", "final"}
        unknown = sorted(set(d) - known)
        missing = sorted({"scale", "cleanup", "kernel_id"} - set(d))
        if unknown or missing:
            raise ValueError(f"realsr params: unknown keys {unknown}, missing keys {missing}")
        noise = d.get("noise")
        if noise is not None:
            if set(noise) != {"id", "u", "v"} or not all(0.0 <= float(noise[k]) < 1.0 for k in ("u", "v")):
                raise ValueError(f"realsr params: noise must be {{id, u, v}} with u, v in [0, 1), got {noise!r}")
            noise = {"id": str(noise["id"]), "u": float(noise["u"]), "v": float(noise["v"])}
        final = d.get("final")
        if final is not None:
            if set(final) != {"order", "sinc", "jpeg_quality"} or final["order"] not in ("sinc_jpeg", "jpeg_sinc"):
                raise ValueError(f"realsr params: bad final step {final!r}")
            final = _final_to_dict(final)
        scale = int(d["scale"])
        if scale not in (2, 4):
            raise ValueError(f"realsr params: scale must be 2 or 4, got {scale}")
        jq = d.get("jpeg_quality")
        return cls(scale=scale, cleanup=bool(d["cleanup"]), kernel_id=str(d["kernel_id"]), noise=noise,
                   jpeg_quality=None if jq is None else int(jq), final=final)


def _final_to_dict(f: dict) -> dict:
    s = f["sinc"]
    return {"order": str(f["order"]),
            "sinc": None if s is None else {"size": int(s["size"]), "omega_c": float(s["omega_c"])},
            "jpeg_quality": int(f["jpeg_quality"])}


# ----------------------------------------------------------------------------------------------- sampling
def check_pool_for(cfg: RealsrConfig, pool) -> None:
    """Raise PoolError when `pool` cannot serve `cfg` (no kernels for the scale, or noise asked but none)."""
    path = getattr(pool, "path", "pool")
    if pool is None:
        raise PoolError("pool", "the realsr pipeline needs a pool (--pool POOL/)")
    if not pool.kernel_ids(cfg.scale):
        raise PoolError(path, f"no usable kernels for x{cfg.scale}")
    if cfg.noise_prob > 0 and not pool.noise_ids():
        raise PoolError(path, "no noise patches, but noise_prob > 0 (build the pool without --no-noise, "
                              "or set noise_prob = 0)")


def sample_realsr(rng: np.random.Generator, cfg: RealsrConfig, pool) -> RealsrParams:
    """Draw one RealSR degradation. Randomness only from `rng`; the pool gives the ids to choose from."""
    check_pool_for(cfg, pool)
    kids = pool.kernel_ids(cfg.scale)
    kernel_id = kids[int(rng.integers(len(kids)))]
    noise = None
    if cfg.noise_prob > 0 and rng.uniform() < cfg.noise_prob:
        nids = pool.noise_ids()
        noise = {"id": nids[int(rng.integers(len(nids)))], "u": float(rng.uniform()), "v": float(rng.uniform())}
    jq = None
    if cfg.jpeg_prob > 0 and rng.uniform() < cfg.jpeg_prob:
        jq = int(rng.integers(cfg.jpeg_range[0], cfg.jpeg_range[1] + 1))
    final = None
    if cfg.final:
        order = "sinc_jpeg" if rng.uniform() < 0.5 else "jpeg_sinc"
        sinc = None
        if rng.uniform() < cfg.final_sinc_prob:  # the Real-ESRGAN final sinc: k in {7..21}, wc ~ U(pi/3, pi)
            sinc = {"size": int(2 * rng.integers(3, 11) + 1), "omega_c": float(rng.uniform(math.pi / 3, math.pi))}
        final = {"order": order, "sinc": sinc,
                 "jpeg_quality": int(rng.integers(cfg.jpeg_range[0], cfg.jpeg_range[1] + 1))}
    return RealsrParams(scale=cfg.scale, cleanup=cfg.cleanup, kernel_id=kernel_id, noise=noise, jpeg_quality=jq,
                        final=final)


# ----------------------------------------------------------------------------------------------- applying
def decimation_kernel(kernel: np.ndarray, scale: int) -> np.ndarray:
    """The centred `kernel` shifted down-right by (scale-1)/2 px (cubic spline, zero padded), so that a
    correlation with it sampled at pixel s*i is centred on HR position s*i + (s-1)/2.

    kernel: float64 (k, k), k odd, sum 1, centred. Returns float64 (m, m), m odd, sum 1."""
    k = np.asarray(kernel, np.float64)
    d = (scale - 1) / 2.0
    if d == 0:
        return k.copy()
    pad = int(math.ceil(d)) + 2
    kp = np.pad(k, pad)
    out = ndi.shift(kp, (d, d), order=3, mode="constant", prefilter=True)
    return out / out.sum()


def hr_target(hr: np.ndarray, params: RealsrParams | dict) -> np.ndarray:
    """The HR that pairs with :func:`apply_realsr`'s LR: `hr` itself, or its clean-up (INTER_AREA x1/2)
    when params.cleanup. uint8 HxWx3."""
    if isinstance(params, dict):
        params = RealsrParams.from_dict(params)
    if not params.cleanup:
        return hr
    from ..ops.quantize import to_uint8

    return to_uint8(_cleanup(hr.astype(np.float32) / 255.0))


def _cleanup(img: np.ndarray) -> np.ndarray:
    from ..ops.resize import resize

    h, w = img.shape[:2]
    return resize(img, (max(1, h // 2), max(1, w // 2)), "area")


def apply_realsr(hr: np.ndarray, params: RealsrParams | dict, pool) -> np.ndarray:
    """Degrade `hr` as `params` says, with the kernels/noise of `pool`.

    hr: uint8 HxWx3 RGB (with cleanup, the LR pairs with :func:`hr_target`). Returns uint8
    (H' // scale) x (W' // scale) x 3, H' x W' being the (cleaned) HR size. Pure: same inputs -> same bytes.
    """
    from ..ops.blur import blur
    from ..ops.jpeg import jpeg
    from ..ops.noise import add_noise_patch
    from ..ops.quantize import to_uint8

    if isinstance(params, dict):
        params = RealsrParams.from_dict(params)
    if not isinstance(hr, np.ndarray) or hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
        raise ValueError(f"apply_realsr: expected uint8 HxWx3 RGB, got {getattr(hr, 'dtype', type(hr))} "
                         f"{getattr(hr, 'shape', '')}")
    s = params.scale
    img = hr.astype(np.float32) / np.float32(255.0)
    if params.cleanup:
        img = _cleanup(img)
    hh, ww = img.shape[:2]
    h, w = hh // s, ww // s
    if h < 1 or w < 1:
        raise ValueError(f"apply_realsr: HR {ww}x{hh} is smaller than the scale {s}")
    k = decimation_kernel(pool.kernel(params.kernel_id), s)
    # Only pixels s*i (i < h) are kept: crop the HR to the last sampled pixel plus the kernel's reach, so the
    # blur never reflects at a border the full image does not have (the kept pixels are unchanged).
    r = k.shape[0] // 2
    y1, x1 = min(hh, s * (h - 1) + r + 1), min(ww, s * (w - 1) + r + 1)
    blurred = blur(np.ascontiguousarray(img[:y1, :x1]), k)
    lr = np.ascontiguousarray(blurred[0:s * h:s, 0:s * w:s])
    if params.noise is not None:
        lr = add_noise_patch(lr, np.asarray(pool.noise(params.noise["id"]), np.float32),
                             params.noise["u"], params.noise["v"])
    if params.jpeg_quality is not None:
        lr = jpeg(lr, params.jpeg_quality)
    if params.final is not None:
        f = params.final
        steps = ("sinc", "jpeg") if f["order"] == "sinc_jpeg" else ("jpeg", "sinc")
        for st in steps:
            if st == "jpeg":
                lr = jpeg(lr, f["jpeg_quality"])
            elif f["sinc"] is not None:
                from ..kernels import sinc_kernel

                lr = blur(lr, sinc_kernel(f["sinc"]["size"], f["sinc"]["omega_c"]))
    return to_uint8(lr)
