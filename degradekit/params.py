"""Frozen records of every parameter drawn for one sample of the Real-ESRGAN degradation.

`DegradeParams.to_dict()` gives plain JSON types (floats as Python floats, which json writes with repr, so a
json.dumps -> json.loads round trip gives back the same floats); `DegradeParams.from_dict(d)` rebuilds the
record, so `degradekit.apply(hr, DegradeParams.from_dict(json.loads(s)))` reproduces the LR byte for byte.
Fields that do not apply to a kind are None in the record and left out of the dict.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


class ParamsError(ValueError):
    """A params dict that cannot be read back (missing/unknown key, wrong type or value); one line."""


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _flat_dict(obj) -> dict:
    """Fields of a dataclass whose fields are all plain values (dataclasses.asdict deep-copies: slower)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _take(d, cls, where: str, *, required: tuple[str, ...]) -> dict:
    if not isinstance(d, dict):
        raise ParamsError(f"{where}: expected an object, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ParamsError(f"{where}.{unknown[0]}: unknown key")
    missing = [k for k in required if k not in d]
    if missing:
        raise ParamsError(f"{where}.{missing[0]}: missing")
    return d


def _num(v, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ParamsError(f"{where}: expected a number, got {v!r}")
    return float(v)


def _int(v, where: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ParamsError(f"{where}: expected an integer, got {v!r}")
    return int(v)


def _str(v, where: str, choices: tuple[str, ...] | None = None) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or (choices is not None and v not in choices):
        allowed = f" (one of {', '.join(choices)})" if choices else ""
        raise ParamsError(f"{where}: invalid value {v!r}{allowed}")
    return v


KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso",
                "sinc", "pool")
RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class KernelParams:
    """One blur kernel.  kind in KERNEL_KINDS; size odd (not used by "pool"); sigma_x/sigma_y/theta for the
    six Gaussian-family kinds (iso: sigma_y = sigma_x, theta = 0); beta for generalized/plateau; omega_c for
    sinc; pool_id for pool kernels."""
    kind: str
    size: int | None = None
    sigma_x: float | None = None
    sigma_y: float | None = None
    theta: float | None = None
    beta: float | None = None
    omega_c: float | None = None
    pool_id: str | None = None

    def to_dict(self) -> dict:
        return _drop_none(_flat_dict(self))

    @classmethod
    def from_dict(cls, d, where: str = "kernel") -> "KernelParams":
        _take(d, cls, where, required=("kind",))
        kind = _str(d["kind"], f"{where}.kind", KERNEL_KINDS)
        kp = cls(kind=kind, size=_int(d.get("size"), f"{where}.size"),
                 sigma_x=_num(d.get("sigma_x"), f"{where}.sigma_x"),
                 sigma_y=_num(d.get("sigma_y"), f"{where}.sigma_y"),
                 theta=_num(d.get("theta"), f"{where}.theta"),
                 beta=_num(d.get("beta"), f"{where}.beta"),
                 omega_c=_num(d.get("omega_c"), f"{where}.omega_c"),
                 pool_id=_str(d.get("pool_id"), f"{where}.pool_id"))
        need = {"sinc": ("size", "omega_c"), "pool": ("pool_id",)}.get(
            kind, ("size", "sigma_x", "sigma_y", "theta") + (("beta",) if kind[0] in "gp" else ()))
        for k in need:
            if getattr(kp, k) is None:
                raise ParamsError(f"{where}.{k}: missing for kind {kind!r}")
        return kp


@dataclass(frozen=True)
class ResizeParams:
    """One random resize.  direction up/down/keep; factor s (1.0 for keep); mode area/bilinear/bicubic;
    size_ref "current" (size = floor(current * s)) or "final" (size = int((HR // scale) * s))."""
    direction: str
    factor: float
    mode: str
    size_ref: str

    def to_dict(self) -> dict:
        return _flat_dict(self)

    @classmethod
    def from_dict(cls, d, where: str = "resize") -> "ResizeParams":
        _take(d, cls, where, required=("direction", "factor", "mode", "size_ref"))
        return cls(direction=_str(d["direction"], f"{where}.direction", ("up", "down", "keep")),
                   factor=_num(d["factor"], f"{where}.factor"),
                   mode=_str(d["mode"], f"{where}.mode", RESIZE_MODES),
                   size_ref=_str(d["size_ref"], f"{where}.size_ref", ("current", "final")))


@dataclass(frozen=True)
class NoiseParams:
    """One noise addition.  kind gaussian (sigma on the 0-255 scale), poisson (scale) or pool (pool_id and
    the crop position u, v in [0, 1)); gray for gaussian/poisson; seed: the integer the noise field is drawn
    from in apply (np.random.default_rng(seed))."""
    kind: str
    seed: int | None = None
    gray: bool | None = None
    sigma: float | None = None
    scale: float | None = None
    pool_id: str | None = None
    u: float | None = None
    v: float | None = None

    def to_dict(self) -> dict:
        return _drop_none(_flat_dict(self))

    @classmethod
    def from_dict(cls, d, where: str = "noise") -> "NoiseParams":
        _take(d, cls, where, required=("kind",))
        kind = _str(d["kind"], f"{where}.kind", ("gaussian", "poisson", "pool"))
        gray = d.get("gray")
        if gray is not None and not isinstance(gray, bool):
            raise ParamsError(f"{where}.gray: expected true/false, got {gray!r}")
        np_ = cls(kind=kind, seed=_int(d.get("seed"), f"{where}.seed"), gray=gray,
                  sigma=_num(d.get("sigma"), f"{where}.sigma"), scale=_num(d.get("scale"), f"{where}.scale"),
                  pool_id=_str(d.get("pool_id"), f"{where}.pool_id"),
                  u=_num(d.get("u"), f"{where}.u"), v=_num(d.get("v"), f"{where}.v"))
        need = {"gaussian": ("seed", "gray", "sigma"), "poisson": ("seed", "gray", "scale"),
                "pool": ("pool_id", "u", "v")}[kind]
        for k in need:
            if getattr(np_, k) is None:
                raise ParamsError(f"{where}.{k}: missing for kind {kind!r}")
        return np_


@dataclass(frozen=True)
class StageParams:
    """One degradation stage: blur (None = skipped), resize, noise (None = skipped), jpeg_quality
    (int 1..100, None = skipped)."""
    blur: KernelParams | None
    resize: ResizeParams
    noise: NoiseParams | None
    jpeg_quality: int | None

    def to_dict(self) -> dict:
        return {"blur": None if self.blur is None else self.blur.to_dict(),
                "resize": self.resize.to_dict(),
                "noise": None if self.noise is None else self.noise.to_dict(),
                "jpeg_quality": self.jpeg_quality}

    @classmethod
    def from_dict(cls, d, where: str = "stage") -> "StageParams":
        _take(d, cls, where, required=("blur", "resize", "noise", "jpeg_quality"))
        return cls(blur=None if d["blur"] is None else KernelParams.from_dict(d["blur"], f"{where}.blur"),
                   resize=ResizeParams.from_dict(d["resize"], f"{where}.resize"),
                   noise=None if d["noise"] is None else NoiseParams.from_dict(d["noise"], f"{where}.noise"),
                   jpeg_quality=_int(d["jpeg_quality"], f"{where}.jpeg_quality"))


@dataclass(frozen=True)
class FinalParams:
    """The final step.  resize_first True: (A) resize, sinc, JPEG; False: (B) JPEG, resize, sinc.
    mode: resize mode to HR // scale; sinc: the sinc kernel or None (identity); jpeg_quality: int 1..100."""
    resize_first: bool
    mode: str
    sinc: KernelParams | None
    jpeg_quality: int

    def to_dict(self) -> dict:
        return {"resize_first": self.resize_first, "mode": self.mode,
                "sinc": None if self.sinc is None else self.sinc.to_dict(), "jpeg_quality": self.jpeg_quality}

    @classmethod
    def from_dict(cls, d, where: str = "final") -> "FinalParams":
        _take(d, cls, where, required=("resize_first", "mode", "sinc", "jpeg_quality"))
        if not isinstance(d["resize_first"], bool):
            raise ParamsError(f"{where}.resize_first: expected true/false, got {d['resize_first']!r}")
        return cls(resize_first=d["resize_first"], mode=_str(d["mode"], f"{where}.mode", RESIZE_MODES),
                   sinc=None if d["sinc"] is None else KernelParams.from_dict(d["sinc"], f"{where}.sinc"),
                   jpeg_quality=_int(d["jpeg_quality"], f"{where}.jpeg_quality"))


@dataclass(frozen=True)
class UsmParams:
    """The unsharp mask applied to the HR before stage 1 (fixed by the config, recorded for replay)."""
    radius: int
    sigma: float
    weight: float
    threshold: float

    def to_dict(self) -> dict:
        return _flat_dict(self)

    @classmethod
    def from_dict(cls, d, where: str = "usm") -> "UsmParams":
        _take(d, cls, where, required=("radius", "sigma", "weight", "threshold"))
        return cls(radius=_int(d["radius"], f"{where}.radius"), sigma=_num(d["sigma"], f"{where}.sigma"),
                   weight=_num(d["weight"], f"{where}.weight"),
                   threshold=_num(d["threshold"], f"{where}.threshold"))


@dataclass(frozen=True)
class DegradeParams:
    """Everything `degradekit.apply` needs besides the HR image.

    scale: 1, 2 or 4; usm: None when the config disables it; stages: one StageParams per order
    (len(stages) == order); final: the final step.
    """
    scale: int
    usm: UsmParams | None
    stages: tuple[StageParams, ...]
    final: FinalParams

    @property
    def order(self) -> int:
        return len(self.stages)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "order": self.order,
                "usm": None if self.usm is None else self.usm.to_dict(),
                "stages": [s.to_dict() for s in self.stages], "final": self.final.to_dict()}

    @classmethod
    def from_dict(cls, d) -> "DegradeParams":
        if not isinstance(d, dict):
            raise ParamsError(f"params: expected an object, got {type(d).__name__}")
        allowed = {"scale", "order", "usm", "stages", "final"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ParamsError(f"params.{unknown[0]}: unknown key")
        for k in ("scale", "usm", "stages", "final"):
            if k not in d:
                raise ParamsError(f"params.{k}: missing")
        scale = _int(d["scale"], "params.scale")
        if scale not in (1, 2, 4):
            raise ParamsError(f"params.scale: must be 1, 2 or 4, got {scale}")
        if not isinstance(d["stages"], list) or not d["stages"]:
            raise ParamsError("params.stages: expected a non-empty list")
        stages = tuple(StageParams.from_dict(s, f"params.stages[{i}]") for i, s in enumerate(d["stages"]))
        if "order" in d and d["order"] != len(stages):
            raise ParamsError(f"params.order: {d['order']!r} does not match {len(stages)} stages")
        return cls(scale=scale, usm=None if d["usm"] is None else UsmParams.from_dict(d["usm"], "params.usm"),
                   stages=stages, final=FinalParams.from_dict(d["final"], "params.final"))
