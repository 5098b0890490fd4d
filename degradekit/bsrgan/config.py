"""BSRGAN pipeline settings: one frozen dataclass, the presets as code, strict dict round-trip.

The presets are the published model (spec/bsrgan-model.md): `bsrgan` = ``degradation_bsrgan`` at x4 (also
`bsrgan-x2`, `bsrgan-x3`), `bsrgan-plus` = ``degradation_bsrgan_plus`` at x4 (also `bsrgan-plus-x2`) with KAIR's
training settings (use_sharp False, shuffle_prob 0.1). The four fixes marked (ours) are off in every preset.

TOML file: top-level ``pipeline = "bsrgan"`` (what marks it as a BSRGAN config), optional ``preset = "bsrgan"``
(default; any of PRESETS), and any BsrganConfig keys, which override the preset's.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields

__all__ = ["BsrganConfig", "PRESETS", "bsrgan_preset", "is_bsrgan_preset", "is_bsrgan_toml", "load_bsrgan_config",
           "dump_bsrgan_config"]

SCALES = (2, 3, 4)
VARIANTS = ("bsrgan", "plus")


def _f(default, doc: str):
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class BsrganConfig:
    """Settings of the BSRGAN degradation (the single source of truth; `doc` metadata on every field)."""

    scale: int = _f(4, "LR = HR // scale (2, 3 or 4); the pre-halving path exists at 4 only")
    variant: str = _f("bsrgan", "'bsrgan' (degradation_bsrgan, 7 ops) or 'plus' (degradation_bsrgan_plus, 13 ops)")
    prehalve_prob: float = _f(0.25, "bsrgan, x4: probability of halving first (then every op uses sf = 2)")
    nearest_prob: float = _f(0.25, "bsrgan: probability that downsample-A is the shifted-Gaussian 'nearest' "
                                   "branch (else cv2 by s1 ~ U(1, 2 sf))")
    jpeg_prob: float = _f(0.9, "bsrgan: probability of the in-shuffle JPEG (the final JPEG is always applied)")
    noise_range: tuple[int, int] = _f((2, 25), "Gaussian/speckle noise level, integer, both ends included "
                                               "(sigma = level / 255)")
    jpeg_range: tuple[int, int] = _f((30, 95), "JPEG quality, integer, both ends included")
    use_sharp: bool = _f(False, "plus: unsharp-mask the HR first (KAIR trains with false); true sharpens the "
                                "stored HR target itself")
    shuffle_prob: float = _f(0.1, "plus: probability of shuffling all 13 ops (else the fixed order with the "
                                  "noise groups shuffled); KAIR 0.1, the function default 0.5")
    poisson_prob: float = _f(0.1, "plus: probability of each of the two Poisson ops")
    speckle_prob: float = _f(0.1, "plus: probability of each of the two speckle ops")
    corr_noise_level: bool = _f(False, "(ours) scale the correlated noise branch by the drawn level (published: "
                                       "always the top of noise_range)")
    fit_kernel: bool = _f(False, "(ours) blur kernel size at least 2*ceil(3 sigma)+1 (published: independent "
                                 "of the width, so 7x7 truncates)")
    antialias: bool = _f(False, "(ours) shrinking linear/cubic resizes antialiased (MATLAB-style support "
                                "scaling; published: OpenCV, no antialiasing)")
    no_area_enlarge: bool = _f(False, "(ours) enlarging resizes draw from {linear, cubic} only (OpenCV's "
                                      "INTER_AREA enlarges like nearest)")

    def __post_init__(self):
        for name in ("noise_range", "jpeg_range"):
            v = getattr(self, name)
            if isinstance(v, list):
                object.__setattr__(self, name, tuple(v))
        _check(self)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["noise_range"], d["jpeg_range"] = list(self.noise_range), list(self.jpeg_range)
        d["pipeline"] = "bsrgan"
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "bsrgan") -> "BsrganConfig":
        """Strict: unknown keys, wrong types and bad values raise a one-line ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected a table, got {type(d).__name__}")
        d = dict(d)
        if d.pop("pipeline", "bsrgan") != "bsrgan":
            raise ValueError(f"{where}: pipeline: expected 'bsrgan'")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        try:
            return cls(**d)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    @staticmethod
    def docs() -> dict[str, str]:
        """{field: doc} for `config show`-style listings."""
        return {f.name: f.metadata["doc"] for f in fields(BsrganConfig)}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(c: BsrganConfig) -> None:
    if not _is_int(c.scale) or c.scale not in SCALES:
        raise ValueError(f"bsrgan.scale: must be 2, 3 or 4, got {c.scale!r}")
    if c.variant not in VARIANTS:
        raise ValueError(f"bsrgan.variant: must be 'bsrgan' or 'plus', got {c.variant!r}")
    for name in ("prehalve_prob", "nearest_prob", "jpeg_prob", "shuffle_prob", "poisson_prob", "speckle_prob"):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ValueError(f"bsrgan.{name}: must be a probability in [0, 1], got {v!r}")
    for name in ("use_sharp", "corr_noise_level", "fit_kernel", "antialias", "no_area_enlarge"):
        if not isinstance(getattr(c, name), bool):
            raise ValueError(f"bsrgan.{name}: must be true or false, got {getattr(c, name)!r}")
    for name, lo, hi in (("noise_range", 0, 255), ("jpeg_range", 1, 100)):
        r = getattr(c, name)
        if (not isinstance(r, tuple) or len(r) != 2 or not all(_is_int(q) for q in r)
                or not lo <= r[0] <= r[1] <= hi):
            raise ValueError(f"bsrgan.{name}: must be two integers {lo} <= lo <= hi <= {hi}, got {r!r}")
    if c.variant == "bsrgan" and c.use_sharp:
        raise ValueError("bsrgan.use_sharp: only the 'plus' variant sharpens (degradation_bsrgan has no USM)")


PRESETS = ("bsrgan", "bsrgan-x2", "bsrgan-x3", "bsrgan-plus", "bsrgan-plus-x2")


def is_bsrgan_preset(name) -> bool:
    return name in PRESETS


def bsrgan_preset(name: str = "bsrgan", scale: int | None = None) -> BsrganConfig:
    """The named preset (optionally at another scale). Raises ValueError (one line) for an unknown name."""
    base = {"bsrgan": BsrganConfig(scale=4), "bsrgan-x2": BsrganConfig(scale=2),
            "bsrgan-x3": BsrganConfig(scale=3), "bsrgan-plus": BsrganConfig(scale=4, variant="plus"),
            "bsrgan-plus-x2": BsrganConfig(scale=2, variant="plus")}
    if name not in base:
        raise ValueError(f"unknown bsrgan preset {name!r} (known: {', '.join(PRESETS)})")
    cfg = base[name]
    return cfg if scale is None else dataclasses.replace(cfg, scale=scale)


def is_bsrgan_toml(path) -> bool:
    """True when the TOML file at ``path`` says ``pipeline = "bsrgan"`` (False when it cannot be read: the
    caller's own loader then reports the problem)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f).get("pipeline") == "bsrgan"
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


def load_bsrgan_config(path) -> BsrganConfig:
    """Load a BSRGAN TOML config (module doc). Raises ValueError("PATH: key: problem"), one line."""
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    if d.pop("pipeline", None) != "bsrgan":
        raise ValueError(f"{path}: pipeline: expected 'bsrgan'")
    name = d.pop("preset", "bsrgan")
    if name not in PRESETS:
        raise ValueError(f"{path}: preset: unknown bsrgan preset {name!r} (known: {', '.join(PRESETS)})")
    return BsrganConfig.from_dict({**bsrgan_preset(name).to_dict(), **d}, str(path))


def dump_bsrgan_config(cfg: BsrganConfig, *, comments: bool = True) -> str:
    """The full config as TOML (loadable by load_bsrgan_config), each key under a comment line with its doc."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, tuple):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines = ['pipeline = "bsrgan"']
    docs = BsrganConfig.docs()
    for f in fields(cfg):
        if comments:
            lines.append(f"# {docs[f.name]}")
        lines.append(f"{f.name} = {val(getattr(cfg, f.name))}")
    return "\n".join(lines) + "\n"
