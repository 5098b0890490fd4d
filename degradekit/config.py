"""The degradation config: frozen dataclasses, the paper presets (as code), strict TOML load and dump.

`preset("realesrgan")` is spec/realesrgan-model.md; `preset("realesrgan-x2")` is the same model at scale 2
(Real-ESRGAN's x2 model is trained with the same degradation settings and scale 2).

TOML files may be partial: keys they give override the preset named by a top-level `preset = "..."`
(default "realesrgan").  `[[stages]]` tables: the number written is the number of stage settings of the result;
table i starts from the preset's stage min(i, n - 1) and overrides the keys it gives (write an empty
`[[stages]]` to keep a preset stage).  In the pipeline, stage i (1-based) uses stages[min(i, len) - 1].

Everything is validated before any work: unknown keys, wrong types, out-of-range values, lo > hi and
probabilities that do not sum to 1 raise `ConfigError("FILE: dotted.key: problem")` (one line).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

PI = math.pi
MODES = ("area", "bilinear", "bicubic")
SIZES = (7, 9, 11, 13, 15, 17, 19, 21)
MAX_KERNEL_SIZE = 21


class ConfigError(ValueError):
    """A config that cannot be used; str(e) is one line: "SOURCE: dotted.key: problem"."""


def _f(default, doc: str, **checks):
    """A dataclass field with its documentation and value checks (used by validate_config and the README).

    checks: lo/hi (inclusive bounds; lo_open=True makes lo exclusive) applied to a number or to every element
    of a tuple; odd; choices; nonempty; unique.  Two-element float tuples are ranges [lo, hi] with lo <= hi.
    """
    return field(default=default, metadata={"doc": doc, **checks})


# ----------------------------------------------------------------------------------------------- dataclasses

@dataclass(frozen=True)
class KindWeights:
    """Weights of the six non-sinc kernel kinds (must sum to 1)."""
    iso: float = _f(0.45, "isotropic Gaussian", lo=0.0, hi=1.0)
    aniso: float = _f(0.25, "anisotropic Gaussian", lo=0.0, hi=1.0)
    generalized_iso: float = _f(0.12, "isotropic generalized Gaussian", lo=0.0, hi=1.0)
    generalized_aniso: float = _f(0.03, "anisotropic generalized Gaussian", lo=0.0, hi=1.0)
    plateau_iso: float = _f(0.12, "isotropic plateau", lo=0.0, hi=1.0)
    plateau_aniso: float = _f(0.03, "anisotropic plateau", lo=0.0, hi=1.0)

    def _checks(self):
        total = sum(dataclasses.astuple(self))
        if abs(total - 1.0) > 1e-6:
            yield "", f"weights sum to {total:.6g}, must sum to 1"


@dataclass(frozen=True)
class KernelConfig:
    """How one stage's blur kernel is drawn (spec section 2)."""
    sizes: tuple[int, ...] = _f(SIZES, "kernel sizes k (uniform choice)", lo=1,
                                hi=MAX_KERNEL_SIZE, odd=True, nonempty=True, unique=True)
    sinc_prob: float = _f(0.1, "probability of a sinc kernel (else one of the six kinds)", lo=0.0, hi=1.0)
    sinc_omega_small: tuple[float, float] = _f((PI / 3, PI), "sinc cutoff omega_c range (rad/px) when "
                                               "k < sinc_large_from", lo=0.0, lo_open=True, hi=PI)
    sinc_omega_large: tuple[float, float] = _f((PI / 5, PI), "sinc cutoff omega_c range (rad/px) when "
                                               "k >= sinc_large_from", lo=0.0, lo_open=True, hi=PI)
    sinc_large_from: int = _f(13, "size from which sinc_omega_large applies", lo=1)
    weights: KindWeights = _f(KindWeights(), "weights of the six non-sinc kinds (sum 1)")
    sigma: tuple[float, float] = _f((0.2, 3.0), "sigma_x (and sigma_y for anisotropic kinds) range, px",
                                    lo=0.0, lo_open=True, hi=100.0)
    theta: tuple[float, float] = _f((-PI, PI), "rotation range of anisotropic kinds, radians",
                                    lo=-2 * PI, hi=2 * PI)
    generalized_beta: tuple[float, float] = _f((0.5, 4.0), "generalized Gaussian beta range [lo <= 1 <= hi]; "
                                               "beta ~ U(lo, 1) with beta_low_prob, else U(1, hi)",
                                               lo=0.0, lo_open=True, hi=100.0)
    plateau_beta: tuple[float, float] = _f((1.0, 2.0), "plateau beta range [lo <= 1 <= hi], split like "
                                           "generalized_beta (so lo = 1 gives beta = 1 with beta_low_prob)",
                                           lo=0.0, lo_open=True, hi=100.0)
    beta_low_prob: float = _f(0.5, "probability of drawing beta below 1 (from U(lo, 1))", lo=0.0, hi=1.0)
    pool_prob: float = _f(0.0, "probability of a kernel from the --pool (RealSR) instead", lo=0.0, hi=1.0)

    def _checks(self):
        for name in ("generalized_beta", "plateau_beta"):
            lo, hi = getattr(self, name)
            if not lo <= 1.0 <= hi:
                yield name, f"range [{lo}, {hi}] must contain 1 (beta is drawn from U(lo, 1) or U(1, hi))"


@dataclass(frozen=True)
class ResizeConfig:
    """One stage's random resize."""
    up_prob: float = _f(0.2, "probability of upscaling", lo=0.0, hi=1.0)
    down_prob: float = _f(0.7, "probability of downscaling", lo=0.0, hi=1.0)
    keep_prob: float = _f(0.1, "probability of factor 1", lo=0.0, hi=1.0)
    up: tuple[float, float] = _f((1.0, 1.5), "upscale factor range", lo=1.0, hi=16.0)
    down: tuple[float, float] = _f((0.15, 1.0), "downscale factor range", lo=0.0, lo_open=True, hi=1.0)
    modes: tuple[str, ...] = _f(MODES, "interpolation modes (uniform choice)", choices=MODES, nonempty=True,
                                unique=True)
    size_ref: str = _f("current", "output size: \"current\" = floor(current * s); \"final\" = "
                       "int((HR // scale) * s) (the reference's stage-2 rule)", choices=("current", "final"))

    def _checks(self):
        total = self.up_prob + self.down_prob + self.keep_prob
        if abs(total - 1.0) > 1e-6:
            yield "", f"up_prob + down_prob + keep_prob = {total:.6g}, must sum to 1"


@dataclass(frozen=True)
class NoiseConfig:
    """One stage's noise."""
    gaussian_prob: float = _f(0.5, "probability of Gaussian noise (else Poisson)", lo=0.0, hi=1.0)
    gaussian_sigma: tuple[float, float] = _f((1.0, 30.0), "Gaussian sigma range on the 0-255 scale",
                                             lo=0.0, hi=255.0)
    poisson_scale: tuple[float, float] = _f((0.05, 3.0), "Poisson noise scale range", lo=0.0, hi=100.0)
    gray_prob: float = _f(0.4, "probability of gray noise (one field for the 3 channels)", lo=0.0, hi=1.0)
    pool_prob: float = _f(0.0, "probability of a noise patch from the --pool (RealSR) instead", lo=0.0,
                          hi=1.0)


@dataclass(frozen=True)
class JpegConfig:
    """JPEG compression with a real libjpeg codec."""
    quality: tuple[float, float] = _f((30.0, 95.0), "quality range; quality = round(U(lo, hi)), an integer",
                                      lo=1.0, hi=100.0)


@dataclass(frozen=True)
class StageConfig:
    """One degradation stage: blur, resize, noise, JPEG (each with its probability)."""
    blur_prob: float = _f(1.0, "probability of the blur", lo=0.0, hi=1.0)
    kernel: KernelConfig = _f(KernelConfig(), "the blur kernel")
    resize: ResizeConfig = _f(ResizeConfig(), "the random resize (always applied; keep_prob gives factor 1)")
    noise_prob: float = _f(1.0, "probability of the noise", lo=0.0, hi=1.0)
    noise: NoiseConfig = _f(NoiseConfig(), "the noise")
    jpeg_prob: float = _f(1.0, "probability of the JPEG step", lo=0.0, hi=1.0)
    jpeg: JpegConfig = _f(JpegConfig(), "the JPEG step")


@dataclass(frozen=True)
class UsmConfig:
    """Unsharp mask of the HR; (!) the reference synthesizes the LR from the sharpened HR."""
    enabled: bool = _f(True, "sharpen the HR before stage 1")
    radius: int = _f(51, "Gaussian kernel size, odd", lo=1, hi=255, odd=True)
    sigma: float = _f(0.0, "Gaussian sigma; 0 = OpenCV's rule for the size (8.0 for 51)", lo=0.0, hi=100.0)
    weight: float = _f(0.5, "sharpening weight", lo=0.0, hi=10.0)
    threshold: float = _f(10.0, "mask threshold on the 0-255 scale", lo=0.0, hi=255.0)


@dataclass(frozen=True)
class FinalConfig:
    """The final step: (A) resize, sinc, JPEG or (B) JPEG, resize, sinc; then 8-bit quantisation."""
    resize_first_prob: float = _f(0.5, "probability of order (A) resize-sinc-JPEG (else (B) JPEG-resize-sinc)",
                                  lo=0.0, hi=1.0)
    modes: tuple[str, ...] = _f(MODES, "modes of the resize to HR // scale (uniform choice)", choices=MODES,
                                nonempty=True, unique=True)
    sinc_prob: float = _f(0.8, "probability of the sinc filter (else identity)", lo=0.0, hi=1.0)
    sinc_sizes: tuple[int, ...] = _f(SIZES, "sinc kernel sizes (uniform choice)", lo=1,
                                     hi=MAX_KERNEL_SIZE, odd=True, nonempty=True, unique=True)
    sinc_omega: tuple[float, float] = _f((PI / 3, PI), "sinc cutoff omega_c range (rad/px), every size",
                                         lo=0.0, lo_open=True, hi=PI)
    jpeg: JpegConfig = _f(JpegConfig(), "the final JPEG (always applied)")


# Real-ESRGAN's second stage (the first stage is StageConfig()).
_REALESRGAN_STAGE2 = StageConfig(
    blur_prob=0.8,
    kernel=KernelConfig(sigma=(0.2, 1.5)),
    resize=ResizeConfig(up_prob=0.3, down_prob=0.4, keep_prob=0.3, up=(1.0, 1.2), down=(0.3, 1.0),
                        size_ref="final"),
    noise=NoiseConfig(gaussian_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5)),
    jpeg_prob=0.0,  # the final step does stage 2's JPEG
)


@dataclass(frozen=True)
class DegradeConfig:
    """The whole Real-ESRGAN degradation model; the defaults are the `realesrgan` preset."""
    scale: int = _f(4, "downscaling factor: LR size = HR size // scale", choices=(1, 2, 4))
    order: int = _f(2, "number of degradation stages (1, 2 or more; the model is 2)", lo=1, hi=16)
    usm: UsmConfig = _f(UsmConfig(), "the unsharp mask of the HR")
    stages: tuple[StageConfig, ...] = _f((StageConfig(), _REALESRGAN_STAGE2),
                                         "stage settings; stage i uses stages[min(i, len) - 1]", nonempty=True)
    final: FinalConfig = _f(FinalConfig(), "the final step")

    def to_dict(self) -> dict:
        """Every key as plain JSON/TOML types (lists for tuples); `DegradeConfig.from_dict` reads it back."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "DegradeConfig":
        """A validated config from a (possibly partial) dict shaped like the TOML file (see config_from_dict)."""
        return config_from_dict(data, source)


# --------------------------------------------------------------------------------------------------- presets

PRESETS = {
    "realesrgan": DegradeConfig(),                # spec/realesrgan-model.md, x4
    "realesrgan-x2": DegradeConfig(scale=2),      # the same degradation at scale 2 (Real-ESRGAN's x2 model)
}


def preset(name: str = "realesrgan") -> DegradeConfig:
    """A named preset (see PRESETS): "realesrgan" (x4, the spec) or "realesrgan-x2"."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})") from None


def stage_config(cfg: DegradeConfig, i: int) -> StageConfig:
    """The settings of stage i (1-based): stages[min(i, len) - 1]."""
    return cfg.stages[min(i, len(cfg.stages)) - 1]


# ------------------------------------------------------------------------------------------- type conversion

def _type_name(v) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", tuple: "array",
            dict: "table"}.get(type(v), type(v).__name__)


def _convert(hint, value, key: str, source: str):
    """Check `value` against the type `hint`; return it converted (arrays -> tuples, int -> float)."""
    def bad(expected):
        raise ConfigError(f"{source}: {key}: expected {expected}, got {value!r} ({_type_name(value)})")

    if hint is bool:
        return value if isinstance(value, bool) else bad("true or false")
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else bad("an integer")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {key}: must be finite, got {value!r}")
        return float(value)
    if hint is str:
        return value if isinstance(value, str) else bad("a string")
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            bad("an array" if args[-1] is Ellipsis else f"an array of {len(args)} numbers [lo, hi]")
        if args[-1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{source}: {key}: expected an array of {len(args)} values [lo, hi], "
                              f"got {len(value)}")
        return tuple(_convert(a, v, f"{key}[{i}]", source) for i, (a, v) in enumerate(zip(args, value)))
    raise TypeError(f"unsupported config type {hint!r}")  # pragma: no cover - programming error


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _stage_list_hint(hint) -> bool:
    return typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0])


def _override(base, data, prefix: str, source: str):
    """`base` (a dataclass instance) with the keys of the TOML table `data` replaced, strictly checked."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'config'}: expected a table, got {data!r} ({_type_name(data)})")
    hints = _hints(type(base))
    changes = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"{source}: {dotted}: unknown key (known here: {known})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            changes[key] = _override(getattr(base, key), value, dotted, source)
        elif _stage_list_hint(hint):
            if not isinstance(value, list):
                raise ConfigError(f"{source}: {dotted}: expected an array of tables ([[{dotted}]]), "
                                  f"got {value!r} ({_type_name(value)})")
            old = getattr(base, key)
            if not old:  # pragma: no cover - presets always have stages
                old = (typing.get_args(hint)[0](),)
            changes[key] = tuple(_override(old[min(i, len(old) - 1)], v, f"{dotted}[{i}]", source)
                                 for i, v in enumerate(value))
        else:
            changes[key] = _convert(hint, value, dotted, source)
    return dataclasses.replace(base, **changes)


# -------------------------------------------------------------------------------------------------- checking

def _check_fields(obj, prefix: str, source: str) -> None:
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        hint = hints[f.name]
        meta = f.metadata
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, hint):
                raise ConfigError(f"{source}: {key}: expected {hint.__name__}, got {_type_name(value)}")
            _check_fields(value, key, source)
            continue
        if _stage_list_hint(hint):
            cls = typing.get_args(hint)[0]
            if not isinstance(value, tuple) or not all(isinstance(s, cls) for s in value):
                raise ConfigError(f"{source}: {key}: expected a tuple of {cls.__name__}")
            if meta.get("nonempty") and not value:
                raise ConfigError(f"{source}: {key}: must not be empty")
            for i, s in enumerate(value):
                _check_fields(s, f"{key}[{i}]", source)
            continue
        if isinstance(value, list):
            raise ConfigError(f"{source}: {key}: expected a tuple, got a list")
        _convert(hint, value, key, source)  # type check (raises on mismatch)
        is_tuple = isinstance(value, tuple)
        items = value if is_tuple else (value,)
        if meta.get("nonempty") and not items:
            raise ConfigError(f"{source}: {key}: must not be empty")
        if meta.get("unique") and len(set(items)) != len(items):
            raise ConfigError(f"{source}: {key}: has duplicates: {list(items)}")
        for i, v in enumerate(items):
            k = f"{key}[{i}]" if is_tuple else key
            if "choices" in meta and v not in meta["choices"]:
                raise ConfigError(f"{source}: {k}: {v!r} is not one of {', '.join(map(repr, meta['choices']))}")
            if "lo" in meta:
                lo = meta["lo"]
                if (v <= lo) if meta.get("lo_open") else (v < lo):
                    op = ">" if meta.get("lo_open") else ">="
                    raise ConfigError(f"{source}: {k}: {v!r} out of range, must be {op} {lo:g}")
            if "hi" in meta and v > meta["hi"]:
                raise ConfigError(f"{source}: {k}: {v!r} out of range, must be <= {meta['hi']:.6g}")
            if meta.get("odd") and v % 2 == 0:
                raise ConfigError(f"{source}: {k}: {v!r} is not odd")
        if is_tuple and typing.get_args(hint)[-1] is not Ellipsis and value[0] > value[1]:
            raise ConfigError(f"{source}: {key}: lo > hi in [{value[0]}, {value[1]}]")
    if hasattr(obj, "_checks"):
        for name, problem in obj._checks():
            key = ".".join(p for p in (prefix, name) if p) or "config"
            raise ConfigError(f"{source}: {key}: {problem}")


def validate_config(cfg: DegradeConfig, source: str = "<config>") -> DegradeConfig:
    """Check every value of `cfg` (types, ranges, lo <= hi, sums); return cfg or raise ConfigError."""
    if not isinstance(cfg, DegradeConfig):
        raise ConfigError(f"{source}: expected a DegradeConfig, got {type(cfg).__name__}")
    try:
        return _validated(cfg, source)
    except TypeError:  # unhashable (a list where a tuple belongs): check without the cache
        _check_fields(cfg, "", source)
        return cfg


@functools.lru_cache(maxsize=64)
def _validated(cfg: DegradeConfig, source: str) -> DegradeConfig:
    _check_fields(cfg, "", source)
    return cfg


# ------------------------------------------------------------------------------------------------ load, dump

def config_from_dict(data: dict, source: str = "<dict>") -> DegradeConfig:
    """A validated DegradeConfig from a (possibly partial) dict shaped like the TOML file."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table, got {_type_name(data)}")
    data = dict(data)
    name = data.pop("preset", "realesrgan")
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"{source}: preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    cfg = _override(PRESETS[name], data, "", source)
    return validate_config(cfg, source)


def load_config(path) -> DegradeConfig:
    """Read and validate a TOML config file (partial files override their `preset`).

    Raises ConfigError("PATH: dotted.key: problem") for unreadable files, TOML syntax errors and every invalid
    value, before any work starts.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    return config_from_dict(data, str(path))


def config_to_dict(cfg: DegradeConfig) -> dict:
    """Plain dict (lists, not tuples) of every key; the inverse of config_from_dict."""
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v
    return conv(cfg)


_SHORT_ARRAY = re.compile(r"\[\n((?:[ ]+[^\n\[\]{}]*,\n)+)[ ]*\]")


def _doc_index() -> dict[tuple[str, str], str]:
    """(table path without stage indices, key) -> doc, e.g. ("stages.kernel", "sigma")."""
    out = {}

    def walk(cls, path):
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            out[(path, f.name)] = f.metadata.get("doc", "")
            hint = hints[f.name]
            sub = f"{path}.{f.name}" if path else f.name
            if dataclasses.is_dataclass(hint):
                walk(hint, sub)
            elif _stage_list_hint(hint):
                walk(typing.get_args(hint)[0], sub)
    walk(DegradeConfig, "")
    return out


def dump_config(cfg: DegradeConfig, *, comments: bool = True) -> str:
    """The full config as TOML text (load_config of it gives back an equal config)."""
    text = tomli_w.dumps(config_to_dict(cfg))
    # tomli_w writes every array over several lines; arrays of scalars read better on one
    text = _SHORT_ARRAY.sub(lambda m: "[" + ", ".join(x.strip().rstrip(",") for x in m.group(1).splitlines())
                            + "]", text)
    if not comments:
        return text
    docs = _doc_index()
    lines, table = [], ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[\[?([A-Za-z0-9_.]+)\]\]?", line)
        if header:
            table = header.group(1)
            doc = docs.get(tuple(table.rsplit(".", 1)) if "." in table else ("", table))
            if doc and lines and lines[-1] == "":
                lines.append(f"# {doc}")
        else:
            m = re.match(r"([A-Za-z0-9_]+) = ", line)
            if m and docs.get((table, m.group(1))):
                lines.append(f"# {docs[(table, m.group(1))]}")
        lines.append(line)
    head = "# degradekit degradation config; every key, with its meaning, is in the README's Config reference.\n"
    return head + "\n".join(lines) + "\n"


def config_reference_markdown() -> str:
    """Markdown table of every key: dotted key, type, default (realesrgan preset), meaning and range.

    Used to write the README's Config reference (which is static text).
    """
    base = preset("realesrgan")
    rows = ["| key | type | realesrgan default | meaning, allowed values |", "|---|---|---|---|"]

    def fmt(v):
        if isinstance(v, float):
            for num, name in ((PI, "pi"), (PI / 3, "pi/3"), (PI / 5, "pi/5"), (-PI, "-pi"), (2 * PI, "2 pi"),
                              (-2 * PI, "-2 pi")):
                if v == num:
                    return name
            return f"{v:g}"
        if isinstance(v, tuple):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        return str(v)

    def tname(hint):
        if hint is float:
            return "float"
        if hint is int:
            return "int"
        if hint is bool:
            return "bool"
        if hint is str:
            return "string"
        args = typing.get_args(hint)
        if args[-1] is Ellipsis:
            return f"[{tname(args[0])}, ...]"
        return "[lo, hi]"

    def rng(meta):
        parts = []
        if "choices" in meta:
            parts.append("one of " + ", ".join(fmt(c) for c in meta["choices"]))
        if "lo" in meta or "hi" in meta:
            lo = meta.get("lo")
            lo_s = "" if lo is None else (f"> {fmt(float(lo))}" if meta.get("lo_open") else f">= {fmt(lo)}")
            hi_s = "" if "hi" not in meta else f"<= {fmt(meta['hi'])}"
            parts.append(" and ".join(p for p in (lo_s, hi_s) if p))
        if meta.get("odd"):
            parts.append("odd")
        return "; ".join(parts)

    def walk(obj, path, stage_label=None):
        hints = _hints(type(obj))
        for f in dataclasses.fields(obj):
            key = f"{path}.{f.name}" if path else f.name
            hint = hints[f.name]
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(hint):
                walk(v, key, stage_label)
            elif _stage_list_hint(hint):
                walk(v[0], f"{key}[0]")
                # stage 2 differs from stage 1 in the preset: list only the keys that differ
                s1, s2 = config_to_dict(v[0]), config_to_dict(v[1])
                for sub, val in _flat_diff(s1, s2):
                    rows.append(f"| `{key}[1].{sub}` | | {fmt(_tup(val))} | as `{key}[0].{sub}` (stage 2) |")
            else:
                r = rng(f.metadata)
                rows.append(f"| `{key}` | {tname(hint)} | {fmt(v)} | {f.metadata.get('doc', '')}"
                            f"{'; ' + r if r else ''} |")
    walk(base, "")
    return "\n".join(rows) + "\n"


def _tup(v):
    return tuple(v) if isinstance(v, list) else v


def _flat_diff(a: dict, b: dict, prefix: str = ""):
    for k in a:
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(a[k], dict):
            yield from _flat_diff(a[k], b[k], key)
        elif a[k] != b[k]:
            yield key, b[k]
