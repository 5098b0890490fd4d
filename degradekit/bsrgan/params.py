"""Frozen records of everything one BSRGAN degradation drew, with a strict JSON round-trip.

A step is one of the op dataclasses below (``op`` names it in the dict form); :class:`BsrganParams` holds the
published op numbers in applied order (``order``) and one step per op (``steps``, same order).
Op numbers (spec §2 / §9): bsrgan 0, 1 blur, 2 downsample-A, 3 downsample-B, 4 Gaussian noise, 5 JPEG, 6 ISP;
plus 0, 7 blur, 1, 8 resize, 2, 9 Gaussian noise, 3, 10 Poisson, 4, 11 speckle, 5, 12 ISP, 6 JPEG.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

__all__ = ["INTERPS", "Blur", "DownA", "DownB", "Noise", "Poisson", "Jpeg", "Resize", "Skip", "Prehalve",
           "BsrganParams", "step_from_dict", "BSRGAN_OPS", "PLUS_OPS"]

INTERPS = ("linear", "cubic", "area")  # cv2.resize codes 1, 2, 3 (the published random.choice([1, 2, 3]))
BSRGAN_OPS = ("blur", "blur", "down_a", "down_b", "noise", "jpeg", "isp")
PLUS_OPS = ("blur", "resize", "noise", "poisson", "speckle", "isp", "jpeg",
            "blur", "resize", "noise", "poisson", "speckle", "isp")


class _Step:
    op: ClassVar[str]

    def to_dict(self) -> dict:
        d = {"op": self.op}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = [list(r) for r in v] if f.name == "cov" and v is not None else v
        return d


def _req(cond: bool, what: str, d) -> None:
    if not cond:
        raise ValueError(f"bsrgan params: bad {what} step {d!r}")


@dataclass(frozen=True)
class Blur(_Step):
    """kind 'aniso': l1, l2 (covariance eigenvalues, i.e. variances, px^2) and theta (rad, angle of the l1
    axis, x = column, y = row); kind 'iso': sigma (px). size: odd kernel side."""
    op: ClassVar[str] = "blur"
    kind: str
    size: int
    sigma: float | None = None
    l1: float | None = None
    l2: float | None = None
    theta: float | None = None

    @classmethod
    def from_dict(cls, d):
        _req(d["kind"] in ("aniso", "iso") and int(d["size"]) % 2 == 1 and int(d["size"]) >= 1, "blur", d)
        if d["kind"] == "iso":
            _req(d["sigma"] is not None and d["l1"] is None and d["l2"] is None and d["theta"] is None, "blur", d)
            return cls("iso", int(d["size"]), sigma=float(d["sigma"]))
        _req(d["sigma"] is None and None not in (d["l1"], d["l2"], d["theta"]), "blur", d)
        return cls("aniso", int(d["size"]), l1=float(d["l1"]), l2=float(d["l2"]), theta=float(d["theta"]))


@dataclass(frozen=True)
class DownA(_Step):
    """method 'cv2': size int(w / s1) x int(h / s1), interp; method 'nearest': the 25x25 Gaussian of sigma,
    shifted, convolved, then every sf-th pixel."""
    op: ClassVar[str] = "down_a"
    method: str
    s1: float | None = None
    interp: str | None = None
    sigma: float | None = None

    @classmethod
    def from_dict(cls, d):
        if d["method"] == "cv2":
            _req(d["interp"] in INTERPS and d["s1"] is not None and d["sigma"] is None, "down_a", d)
            return cls("cv2", s1=float(d["s1"]), interp=str(d["interp"]))
        _req(d["method"] == "nearest" and d["sigma"] is not None and d["s1"] is None and d["interp"] is None,
             "down_a", d)
        return cls("nearest", sigma=float(d["sigma"]))


@dataclass(frozen=True)
class DownB(_Step):
    """Resize to the size at downsample-A divided by sf (int(a / sf) x int(b / sf)) with interp."""
    op: ClassVar[str] = "down_b"
    interp: str

    @classmethod
    def from_dict(cls, d):
        _req(d["interp"] in INTERPS, "down_b", d)
        return cls(str(d["interp"]))


@dataclass(frozen=True)
class Noise(_Step):
    """kind 'gaussian' (x + n) or 'speckle' (x + x n). level: integer, sigma = level / 255; branch 'color'
    (i.i.d. per channel), 'gray' (one field for the three channels) or 'correlated' (cov: 3x3, 0-1 scale,
    the level ignored unless corr_noise_level); seed: the field's integer seed."""
    op: ClassVar[str] = "noise"
    kind: str
    level: int
    branch: str
    seed: int
    cov: tuple | None = None

    @classmethod
    def from_dict(cls, d):
        _req(d["kind"] in ("gaussian", "speckle") and d["branch"] in ("color", "gray", "correlated")
             and int(d["seed"]) >= 0, "noise", d)
        cov = d["cov"]
        _req((cov is None) == (d["branch"] != "correlated"), "noise", d)
        if cov is not None:
            _req(len(cov) == 3 and all(len(r) == 3 for r in cov), "noise", d)
            cov = tuple(tuple(float(x) for x in r) for r in cov)
        return cls(str(d["kind"]), int(d["level"]), str(d["branch"]), int(d["seed"]), cov)


@dataclass(frozen=True)
class Poisson(_Step):
    """The image rounded to 8 bits, then poisson(x vals) / vals per channel, or (gray) noise of the rounded
    luma .299R+.587G+.114B added to all channels; vals = 10**U(2, 4)."""
    op: ClassVar[str] = "poisson"
    vals: float
    gray: bool
    seed: int

    @classmethod
    def from_dict(cls, d):
        _req(float(d["vals"]) > 0 and isinstance(d["gray"], bool) and int(d["seed"]) >= 0, "poisson", d)
        return cls(float(d["vals"]), bool(d["gray"]), int(d["seed"]))


@dataclass(frozen=True)
class Jpeg(_Step):
    """libjpeg (OpenCV) at an integer quality."""
    op: ClassVar[str] = "jpeg"
    quality: int

    @classmethod
    def from_dict(cls, d):
        _req(1 <= int(d["quality"]) <= 100, "jpeg", d)
        return cls(int(d["quality"]))


@dataclass(frozen=True)
class Resize(_Step):
    """plus: direction 'up' (factor U(1, 2)), 'down' (U(0.5/sf, 1)) or 'keep' (1.0); size int(factor * w) x
    int(factor * h)."""
    op: ClassVar[str] = "resize"
    direction: str
    factor: float
    interp: str

    @classmethod
    def from_dict(cls, d):
        _req(d["direction"] in ("up", "down", "keep") and d["interp"] in INTERPS and float(d["factor"]) > 0,
             "resize", d)
        return cls(str(d["direction"]), float(d["factor"]), str(d["interp"]))


@dataclass(frozen=True)
class Skip(_Step):
    """An op whose probability did not fire (in-shuffle JPEG, Poisson, speckle), or the ISP (no model)."""
    op: ClassVar[str] = "skip"
    what: str

    @classmethod
    def from_dict(cls, d):
        _req(d["what"] in ("jpeg", "poisson", "speckle", "isp"), "skip", d)
        return cls(str(d["what"]))


_STEPS = {c.op: c for c in (Blur, DownA, DownB, Noise, Poisson, Jpeg, Resize, Skip)}


def step_from_dict(d: dict):
    if not isinstance(d, dict) or d.get("op") not in _STEPS:
        raise ValueError(f"bsrgan params: unknown step {d!r}")
    cls = _STEPS[d["op"]]
    want = {f.name for f in fields(cls)} | {"op"}
    if set(d) != want:
        raise ValueError(f"bsrgan params: {d['op']} step keys {sorted(d)} != {sorted(want)}")
    try:
        return cls.from_dict(d)
    except (TypeError, KeyError) as e:
        raise ValueError(f"bsrgan params: bad {d['op']} step {d!r} ({e})") from None


def _step_name(step) -> str:
    """The op a step stands for: a Skip's op, 'speckle' for speckle noise."""
    if isinstance(step, Skip):
        return step.what
    if isinstance(step, Noise) and step.kind == "speckle":
        return "speckle"
    return step.op


@dataclass(frozen=True)
class Prehalve:
    """The x4 pre-halving: method 'cv2' (floor size, interp) or 'matlab' (imresize 1/2, antialiased bicubic)."""
    method: str
    interp: str | None = None

    def to_dict(self) -> dict:
        return {"method": self.method, "interp": self.interp}


@dataclass(frozen=True)
class BsrganParams:
    """One BSRGAN draw. scale: LR = HR // scale; sf: the factor the ops use (2 after pre-halving, else scale);
    order/steps: published op numbers and their steps in applied order; final_interp: plus only (the resize
    to HR // scale); final_quality: the always-on final JPEG; antialias: the (ours) antialiased-shrink option
    (the only option that acts in apply; the others shape the draws). isp is always None (no ISP model)."""

    variant: str
    scale: int
    sf: int
    use_sharp: bool
    antialias: bool
    prehalve: Prehalve | None
    shuffled: bool
    order: tuple[int, ...]
    steps: tuple
    final_interp: str | None
    final_quality: int
    isp: None = None

    def to_dict(self) -> dict:
        return {"pipeline": "bsrgan", "variant": self.variant, "scale": int(self.scale), "sf": int(self.sf),
                "use_sharp": bool(self.use_sharp), "antialias": bool(self.antialias),
                "prehalve": None if self.prehalve is None else self.prehalve.to_dict(),
                "shuffled": bool(self.shuffled), "order": [int(i) for i in self.order],
                "steps": [s.to_dict() for s in self.steps],
                "final_interp": self.final_interp, "final_quality": int(self.final_quality), "isp": None}

    @classmethod
    def from_dict(cls, d: dict) -> "BsrganParams":
        if not isinstance(d, dict):
            raise ValueError(f"bsrgan params: expected a dict, got {type(d).__name__}")
        d = dict(d)
        if d.pop("pipeline", "bsrgan") != "bsrgan":
            raise ValueError("bsrgan params: pipeline is not 'bsrgan'")
        want = {"variant", "scale", "sf", "use_sharp", "antialias", "prehalve", "shuffled", "order", "steps",
                "final_interp", "final_quality", "isp"}
        if set(d) != want:
            raise ValueError(f"bsrgan params: unknown keys {sorted(set(d) - want)}, missing keys "
                             f"{sorted(want - set(d))}")
        variant, scale, sf = d["variant"], int(d["scale"]), int(d["sf"])
        ops = BSRGAN_OPS if variant == "bsrgan" else PLUS_OPS if variant == "plus" else None
        if ops is None or scale not in (2, 3, 4) or sf not in (scale, 2):
            raise ValueError(f"bsrgan params: bad variant/scale/sf {variant!r}/{scale}/{sf}")
        if d["isp"] is not None:
            raise ValueError("bsrgan params: isp must be null (no ISP model exists)")
        ph = d["prehalve"]
        if ph is not None:
            if (not isinstance(ph, dict) or set(ph) != {"method", "interp"} or scale != 4 or sf != 2
                    or not ((ph["method"] == "cv2" and ph["interp"] in INTERPS)
                            or (ph["method"] == "matlab" and ph["interp"] is None))):
                raise ValueError(f"bsrgan params: bad prehalve {ph!r}")
            ph = Prehalve(ph["method"], ph["interp"])
        elif sf != scale:
            raise ValueError("bsrgan params: sf differs from scale without pre-halving")
        order = tuple(int(i) for i in d["order"])
        steps = tuple(step_from_dict(s) for s in d["steps"])
        if sorted(order) != list(range(len(ops))) or len(steps) != len(order):
            raise ValueError(f"bsrgan params: order {list(order)} is not a permutation of 0..{len(ops) - 1}")
        for i, s in zip(order, steps):
            if _step_name(s) != ops[i]:
                raise ValueError(f"bsrgan params: op {i} ({ops[i]}) has a {_step_name(s)} step")
        if variant == "bsrgan" and order.index(2) > order.index(3):
            raise ValueError("bsrgan params: downsample-A must come before downsample-B")
        fi = d["final_interp"]
        if (variant == "plus") != (fi is not None) or (fi is not None and fi not in INTERPS):
            raise ValueError(f"bsrgan params: bad final_interp {fi!r}")
        q = int(d["final_quality"])
        if not 1 <= q <= 100:
            raise ValueError(f"bsrgan params: bad final_quality {q}")
        for name in ("use_sharp", "antialias", "shuffled"):
            if not isinstance(d[name], bool):
                raise ValueError(f"bsrgan params: {name} must be a bool")
        return cls(variant, scale, sf, d["use_sharp"], d["antialias"], ph, d["shuffled"], order, steps, fi, q)
