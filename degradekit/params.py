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


def _bool(v, where: str) -> bool | None:
    if v is None:
        return None
    if not isinstance(v, bool):
        raise ParamsError(f"{where}: expected true/false, got {v!r}")
    return v


def _need(obj, keys, where: str, what: str) -> None:
    for k in keys:
        if getattr(obj, k) is None:
            raise ParamsError(f"{where}.{k}: missing for {what}")


KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso",
                "sinc", "pool", "box", "disk", "motion", "median")
RESIZE_MODES = ("area", "bilinear", "bicubic")
# Copies of config's tuples (params must not import the config: it is read by replay tools too).
FILTERS = ("nearest", "box", "bilinear", "hamming", "bicubic_a50", "bicubic_a75", "mitchell", "catmull_rom",
           "lanczos3", "lanczos4", "gaussian")
CODECS = ("jpeg", "webp", "avif", "jpeg2000", "h264", "hevc", "mpeg2", "mpeg4", "vp9", "av1")
NOISE_KINDS = ("gaussian", "poisson", "pool", "uniform", "speckle", "salt_pepper")
SPACES = ("rgb", "gray", "luma", "chroma")
STEPS = ("blur", "resize", "halo", "noise", "color", "banding", "dither", "jpeg")


@dataclass(frozen=True)
class KernelParams:
    """One blur kernel.  kind in KERNEL_KINDS; size odd (the six Gaussian kinds, sinc; median: the window);
    sigma_x/sigma_y/theta for the six Gaussian-family kinds (iso: sigma_y = sigma_x, theta = 0); beta for
    generalized/plateau; omega_c for sinc; pool_id for pool kernels; width (px) for box; radius (px) for disk;
    length (px) and angle (degrees) for motion."""
    kind: str
    size: int | None = None
    sigma_x: float | None = None
    sigma_y: float | None = None
    theta: float | None = None
    beta: float | None = None
    omega_c: float | None = None
    pool_id: str | None = None
    width: float | None = None
    radius: float | None = None
    length: float | None = None
    angle: float | None = None

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
                 pool_id=_str(d.get("pool_id"), f"{where}.pool_id"),
                 width=_num(d.get("width"), f"{where}.width"), radius=_num(d.get("radius"), f"{where}.radius"),
                 length=_num(d.get("length"), f"{where}.length"), angle=_num(d.get("angle"), f"{where}.angle"))
        need = {"sinc": ("size", "omega_c"), "pool": ("pool_id",), "box": ("width",), "disk": ("radius",),
                "motion": ("length", "angle"), "median": ("size",)}.get(
            kind, ("size", "sigma_x", "sigma_y", "theta") + (("beta",) if kind[0] in "gp" else ()))
        for k in need:
            if getattr(kp, k) is None:
                raise ParamsError(f"{where}.{k}: missing for kind {kind!r}")
        return kp


def _resampler(d, where: str) -> tuple[str | None, str | None, bool | None]:
    """(mode, filter, antialias) of a resize record: an OpenCV mode, or a filter with its antialias flag."""
    mode = _str(d.get("mode"), f"{where}.mode", RESIZE_MODES)
    filt = _str(d.get("filter"), f"{where}.filter", FILTERS)
    antialias = _bool(d.get("antialias"), f"{where}.antialias")
    if (mode is None) == (filt is None):
        raise ParamsError(f"{where}.mode: give exactly one of mode and filter")
    if antialias is not None and filt is None:
        raise ParamsError(f"{where}.antialias: only a filter resize has it")
    return mode, filt, antialias


@dataclass(frozen=True)
class DownUpParams:
    """The down step of a down-up chain: to floor(target * factor) with mode (OpenCV) or filter (+antialias);
    the up step back to the target uses the resize's own mode/filter."""
    factor: float
    mode: str | None = None
    filter: str | None = None
    antialias: bool | None = None

    def to_dict(self) -> dict:
        return _drop_none(_flat_dict(self))

    @classmethod
    def from_dict(cls, d, where: str = "down_up") -> "DownUpParams":
        _take(d, cls, where, required=("factor",))
        mode, filt, aa = _resampler(d, where)
        return cls(factor=_num(d["factor"], f"{where}.factor"), mode=mode, filter=filt, antialias=aa)


@dataclass(frozen=True)
class ResizeParams:
    """One random resize.  direction up/down/keep; factor s (1.0 for keep); mode area/bilinear/bicubic
    (OpenCV, as Real-ESRGAN) or None when filter (one of ops.resample.FILTERS, with antialias true/false) is
    used; size_ref "current" (size = floor(current * s)) or "final" (size = int((HR // scale) * s));
    down_up: an optional down-up chain."""
    direction: str
    factor: float
    mode: str | None
    size_ref: str
    filter: str | None = None
    antialias: bool | None = None
    down_up: DownUpParams | None = None

    def to_dict(self) -> dict:
        d = {"direction": self.direction, "factor": self.factor}
        if self.mode is not None:
            d["mode"] = self.mode
        d["size_ref"] = self.size_ref
        if self.filter is not None:
            d["filter"] = self.filter
        if self.antialias is not None:
            d["antialias"] = self.antialias
        if self.down_up is not None:
            d["down_up"] = self.down_up.to_dict()
        return d

    @classmethod
    def from_dict(cls, d, where: str = "resize") -> "ResizeParams":
        _take(d, cls, where, required=("direction", "factor", "size_ref"))
        mode, filt, aa = _resampler(d, where)
        du = d.get("down_up")
        return cls(direction=_str(d["direction"], f"{where}.direction", ("up", "down", "keep")),
                   factor=_num(d["factor"], f"{where}.factor"), mode=mode,
                   size_ref=_str(d["size_ref"], f"{where}.size_ref", ("current", "final")),
                   filter=filt, antialias=aa,
                   down_up=None if du is None else DownUpParams.from_dict(du, f"{where}.down_up"))


@dataclass(frozen=True)
class NoiseParams:
    """One noise addition.  kind gaussian (sigma on the 0-255 scale), poisson (scale), pool (pool_id and the
    crop position u, v in [0, 1)), uniform (amplitude, 0-255 scale), speckle (sigma) or salt_pepper (amount,
    salt_ratio); gray for gaussian/poisson/salt_pepper; space ("rgb", "gray", "luma", "chroma") for uniform
    and speckle, and for a gaussian on luma/chroma (then gray is None); seed: the integer the noise field is
    drawn from in apply (np.random.default_rng(seed))."""
    kind: str
    seed: int | None = None
    gray: bool | None = None
    sigma: float | None = None
    scale: float | None = None
    pool_id: str | None = None
    u: float | None = None
    v: float | None = None
    space: str | None = None
    amplitude: float | None = None
    amount: float | None = None
    salt_ratio: float | None = None

    def to_dict(self) -> dict:
        return _drop_none(_flat_dict(self))

    @classmethod
    def from_dict(cls, d, where: str = "noise") -> "NoiseParams":
        _take(d, cls, where, required=("kind",))
        kind = _str(d["kind"], f"{where}.kind", NOISE_KINDS)
        np_ = cls(kind=kind, seed=_int(d.get("seed"), f"{where}.seed"), gray=_bool(d.get("gray"), f"{where}.gray"),
                  sigma=_num(d.get("sigma"), f"{where}.sigma"), scale=_num(d.get("scale"), f"{where}.scale"),
                  pool_id=_str(d.get("pool_id"), f"{where}.pool_id"),
                  u=_num(d.get("u"), f"{where}.u"), v=_num(d.get("v"), f"{where}.v"),
                  space=_str(d.get("space"), f"{where}.space", SPACES),
                  amplitude=_num(d.get("amplitude"), f"{where}.amplitude"),
                  amount=_num(d.get("amount"), f"{where}.amount"),
                  salt_ratio=_num(d.get("salt_ratio"), f"{where}.salt_ratio"))
        gaussian = ("seed", "sigma") + (("gray",) if np_.space is None else ())
        need = {"gaussian": gaussian, "poisson": ("seed", "gray", "scale"), "pool": ("pool_id", "u", "v"),
                "uniform": ("seed", "amplitude", "space"), "speckle": ("seed", "sigma", "space"),
                "salt_pepper": ("seed", "amount", "salt_ratio", "gray")}[kind]
        _need(np_, need, where, f"kind {kind!r}")
        if kind == "gaussian" and np_.space is not None and np_.space not in ("luma", "chroma"):
            raise ParamsError(f"{where}.space: a gaussian records gray, or space 'luma'/'chroma'")
        return np_


@dataclass(frozen=True)
class CompressionParams:
    """One compression by a codec other than JPEG 4:2:0 (that one is recorded as jpeg_quality, as in 0.1).
    codec in CODECS; quality (int: JPEG/WebP/AVIF quality, video crf or qscale); subsampling (jpeg); speed
    (avif); rate (jpeg2000); preset and pix_fmt (video)."""
    codec: str
    quality: int | None = None
    subsampling: str | None = None
    speed: int | None = None
    rate: float | None = None
    preset: str | None = None
    pix_fmt: str | None = None

    def to_dict(self) -> dict:
        return _drop_none(_flat_dict(self))

    @classmethod
    def from_dict(cls, d, where: str = "compression") -> "CompressionParams":
        _take(d, cls, where, required=("codec",))
        codec = _str(d["codec"], f"{where}.codec", CODECS)
        cp = cls(codec=codec, quality=_int(d.get("quality"), f"{where}.quality"),
                 subsampling=_str(d.get("subsampling"), f"{where}.subsampling", ("444", "422", "420", "440")),
                 speed=_int(d.get("speed"), f"{where}.speed"), rate=_num(d.get("rate"), f"{where}.rate"),
                 preset=_str(d.get("preset"), f"{where}.preset"), pix_fmt=_str(d.get("pix_fmt"), f"{where}.pix_fmt"))
        need = {"jpeg": ("quality", "subsampling"), "webp": ("quality",), "avif": ("quality", "speed"),
                "jpeg2000": ("rate",)}.get(codec, ("quality", "preset", "pix_fmt"))
        _need(cp, need, where, f"codec {codec!r}")
        return cp


def _plain(cls, names_types):
    """from_dict for a dataclass of required numbers/strings: names_types = ((name, reader), ...)."""
    def from_dict(d, where: str):
        _take(d, cls, where, required=tuple(n for n, _ in names_types))
        return cls(**{n: r(d[n], f"{where}.{n}") for n, r in names_types})
    return from_dict


@dataclass(frozen=True)
class HaloParams:
    """Oversharpening: amount, radius (Gaussian sigma, px), threshold (0-255 scale)."""
    amount: float
    radius: float
    threshold: float

    def to_dict(self) -> dict:
        return _flat_dict(self)


@dataclass(frozen=True)
class BandingParams:
    """Bit-depth reduction to `bits` (1..8) per channel."""
    bits: int

    def to_dict(self) -> dict:
        return _flat_dict(self)


@dataclass(frozen=True)
class DitherParams:
    """Quantisation to `levels` per channel with dithering `method` (ops.dither.DITHER_METHODS)."""
    levels: int
    method: str

    def to_dict(self) -> dict:
        return _flat_dict(self)


@dataclass(frozen=True)
class ColorParams:
    """Colour jitter (ops.color.color_jitter): brightness offset, contrast, saturation, gamma."""
    brightness: float
    contrast: float
    saturation: float
    gamma: float

    def to_dict(self) -> dict:
        return _flat_dict(self)


_EXTRA_READERS = {
    "halo": _plain(HaloParams, (("amount", _num), ("radius", _num), ("threshold", _num))),
    "banding": _plain(BandingParams, (("bits", _int),)),
    "dither": _plain(DitherParams, (("levels", _int), ("method", _str))),
    "color": _plain(ColorParams, (("brightness", _num), ("contrast", _num), ("saturation", _num),
                                  ("gamma", _num))),
}


@dataclass(frozen=True)
class StageParams:
    """One degradation stage: blur (None = skipped), resize, noise (None = skipped), jpeg_quality (int 1..100:
    JPEG 4:2:0; None = skipped or another codec), compression (another codec or subsampling; None = none or
    jpeg_quality), the optional steps halo, color, banding, dither (None = not taken), and steps: the order
    the steps run in when the stage is shuffled (None = the fixed order config.STEPS)."""
    blur: KernelParams | None
    resize: ResizeParams
    noise: NoiseParams | None
    jpeg_quality: int | None
    compression: CompressionParams | None = None
    halo: HaloParams | None = None
    color: ColorParams | None = None
    banding: BandingParams | None = None
    dither: DitherParams | None = None
    steps: tuple[str, ...] | None = None

    def to_dict(self) -> dict:
        d = {"blur": None if self.blur is None else self.blur.to_dict(),
             "resize": self.resize.to_dict(),
             "noise": None if self.noise is None else self.noise.to_dict(),
             "jpeg_quality": self.jpeg_quality}
        for k in ("compression", "halo", "color", "banding", "dither"):  # absent unless used: 0.1 records
            v = getattr(self, k)
            if v is not None:
                d[k] = v.to_dict()
        if self.steps is not None:
            d["steps"] = list(self.steps)
        return d

    @classmethod
    def from_dict(cls, d, where: str = "stage") -> "StageParams":
        _take(d, cls, where, required=("blur", "resize", "noise", "jpeg_quality"))
        comp = d.get("compression")
        extras = {k: None if d.get(k) is None else _EXTRA_READERS[k](d[k], f"{where}.{k}") for k in _EXTRA_READERS}
        steps = d.get("steps")
        if steps is not None:
            if (not isinstance(steps, list) or len(set(map(str, steps))) != len(steps)
                    or any(s not in STEPS for s in steps) or "resize" not in steps):
                raise ParamsError(f"{where}.steps: expected a list of distinct steps from {', '.join(STEPS)} "
                                  f"holding resize, got {steps!r}")
            steps = tuple(steps)
        sp = cls(blur=None if d["blur"] is None else KernelParams.from_dict(d["blur"], f"{where}.blur"),
                 resize=ResizeParams.from_dict(d["resize"], f"{where}.resize"),
                 noise=None if d["noise"] is None else NoiseParams.from_dict(d["noise"], f"{where}.noise"),
                 jpeg_quality=_int(d["jpeg_quality"], f"{where}.jpeg_quality"),
                 compression=None if comp is None else CompressionParams.from_dict(comp, f"{where}.compression"),
                 steps=steps, **extras)
        if sp.jpeg_quality is not None and sp.compression is not None:
            raise ParamsError(f"{where}.compression: a stage has jpeg_quality or compression, not both")
        if steps is not None:
            for k in ("blur", "noise", "halo", "color", "banding", "dither"):
                if getattr(sp, k) is not None and k not in steps:
                    raise ParamsError(f"{where}.steps: {k} is drawn but not in the recorded steps")
            if (sp.jpeg_quality is not None or sp.compression is not None) and "jpeg" not in steps:
                raise ParamsError(f"{where}.steps: the compression is drawn but jpeg is not in the recorded steps")
        return sp


@dataclass(frozen=True)
class FinalParams:
    """The final step.  resize_first True: (A) resize, sinc, compression; False: (B) compression, resize, sinc.
    mode: OpenCV resize mode to HR // scale, or None when filter (+ antialias) is used; sinc: the sinc kernel or
    None (identity); jpeg_quality: int 1..100 (JPEG 4:2:0), or None when compression (another codec) is."""
    resize_first: bool
    mode: str | None
    sinc: KernelParams | None
    jpeg_quality: int | None
    filter: str | None = None
    antialias: bool | None = None
    compression: CompressionParams | None = None

    def to_dict(self) -> dict:
        d = {"resize_first": self.resize_first}
        if self.mode is not None:
            d["mode"] = self.mode
        d["sinc"] = None if self.sinc is None else self.sinc.to_dict()
        if self.jpeg_quality is not None:
            d["jpeg_quality"] = self.jpeg_quality
        if self.filter is not None:
            d["filter"] = self.filter
        if self.antialias is not None:
            d["antialias"] = self.antialias
        if self.compression is not None:
            d["compression"] = self.compression.to_dict()
        return d

    @classmethod
    def from_dict(cls, d, where: str = "final") -> "FinalParams":
        _take(d, cls, where, required=("resize_first", "sinc"))
        if not isinstance(d["resize_first"], bool):
            raise ParamsError(f"{where}.resize_first: expected true/false, got {d['resize_first']!r}")
        mode, filt, aa = _resampler(d, where)
        comp = d.get("compression")
        if ("jpeg_quality" in d) == (comp is not None):
            raise ParamsError(f"{where}.jpeg_quality: give exactly one of jpeg_quality and compression")
        return cls(resize_first=d["resize_first"], mode=mode,
                   sinc=None if d["sinc"] is None else KernelParams.from_dict(d["sinc"], f"{where}.sinc"),
                   jpeg_quality=_int(d.get("jpeg_quality"), f"{where}.jpeg_quality"), filter=filt, antialias=aa,
                   compression=None if comp is None else CompressionParams.from_dict(comp, f"{where}.compression"))


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
