"""Training configuration: frozen dataclasses, the published settings as code presets, strict TOML loading.

One ``StageConfig`` type describes both stages (Real-ESRNet: L1 only; Real-ESRGAN: L1 + perceptual + GAN);
``preset(name, stage)`` returns the published numbers (spec/realesrgan-model.md section 4). A TOML file overrides
a preset; unknown keys, wrong types and out-of-range values are rejected with ``ConfigError("FILE: key: problem")``
before any work starts.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """Bad training config; ``str(e)`` is one line ``"FILE: dotted.key: problem"``."""


@dataclass(frozen=True)
class NetConfig:
    """Generator (RRDBNet) and discriminator sizes. ``d_type``: "unet" = Real-ESRGAN's UNetDiscriminatorSN
    (per-pixel logits, any crop divisible by 8), "vgg" = ESRGAN's VGGStyleDiscriminator (one logit per image,
    input = data.gt_size, 128 or 256; ``d_skip_connection`` does not apply)."""
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    d_type: str = "unet"
    d_num_feat: int = 64
    d_skip_connection: bool = True


@dataclass(frozen=True)
class DataConfig:
    """Loader settings. gt_size is the HR crop (LR crop = gt_size // scale)."""
    gt_size: int = 256
    batch_size: int = 12            # per process (per GPU)
    num_workers: int = 4            # loader worker processes per process
    shuffle_buffer: int = 180       # samples; 0 = stream order (the reference's 180-pair queue size)
    shuffle_shards: bool = True
    use_hflip: bool = True
    use_rot: bool = True
    max_bad_samples: int = 100      # corrupt/mismatched samples skipped over the whole run before it stops


@dataclass(frozen=True)
class LossConfig:
    """Loss weights. gan_type 'vanilla' = BCE with logits (Real-ESRGAN), 'ragan' = relativistic average (ESRGAN)."""
    l1_weight: float = 1.0
    perceptual_weight: float = 0.0
    gan_weight: float = 0.0
    gan_type: str = "vanilla"
    usm_l1: bool = True             # L1 target is USM(gt)
    usm_perceptual: bool = True     # perceptual target is USM(gt); D always sees the un-sharpened gt
    layer_weights: tuple[float, float, float, float, float] = (0.1, 0.1, 1.0, 1.0, 1.0)  # conv1_2..conv5_4


@dataclass(frozen=True)
class OptimConfig:
    """Adam for G (and D in GAN stages); MultiStepLR halving at milestones."""
    lr_g: float = 2e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = (1_000_000,)
    gamma: float = 0.5
    ema_decay: float = 0.999


@dataclass(frozen=True)
class StageConfig:
    """One training stage (both stages are instances of this type)."""
    name: str = "esrnet"
    iters: int = 1_000_000
    gan: bool = False               # train a discriminator and add the GAN loss
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass(frozen=True)
class TrainConfig:
    """Everything `trainer fit` needs besides paths. ``precision``: fp32 | bf16 | fp16 (autocast, CUDA only)."""
    preset: str = "realesrgan"
    scale: int = 4
    seed: int = 0
    stage: StageConfig = field(default_factory=StageConfig)
    net: NetConfig = field(default_factory=NetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    log_every: int = 100
    val_every: int = 5000
    save_every: int = 5000
    val_images: int = 4             # output images saved per validation
    max_nonfinite: int = 5          # consecutive non-finite losses before stopping

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS = ("realesrgan", "esrgan")
STAGES = ("esrnet", "esrgan")


def preset(name: str = "realesrgan", stage: str = "esrnet") -> TrainConfig:
    """The published settings. realesrgan: Real-ESRNet (L1 vs USM(gt), lr 2e-4, 1M iters) then Real-ESRGAN
    (L1 1 + perceptual 1 + vanilla GAN 0.1, lr 1e-4, 400k iters), EMA 0.999, batch 12, crops 256/64.
    esrgan: the ESRGAN paper (PSNR stage: L1, lr 2e-4 halved every 200k, 1M iters; GAN stage: L1 0.01 +
    perceptual 1 on VGG19 conv5_4 (before ReLU) + RaGAN 0.005 with the VGG-style discriminator, lr 1e-4 halved
    at 50k/100k/200k/300k, 400k iters; batch 16, HR crop 128, no USM targets)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r} (known: {', '.join(STAGES)})")
    if name == "realesrgan":
        if stage == "esrnet":
            st = StageConfig(name="esrnet", iters=1_000_000, gan=False, loss=LossConfig(),
                             optim=OptimConfig(lr_g=2e-4, milestones=(1_000_000,)))
        else:
            st = StageConfig(name="esrgan", iters=400_000, gan=True,
                             loss=LossConfig(l1_weight=1.0, perceptual_weight=1.0, gan_weight=0.1,
                                             gan_type="vanilla"),
                             optim=OptimConfig(lr_g=1e-4, lr_d=1e-4, milestones=(400_000,)))
        return TrainConfig(preset=name, stage=st)
    if stage == "esrnet":
        st = StageConfig(name="esrnet", iters=1_000_000, gan=False,
                         loss=LossConfig(usm_l1=False, usm_perceptual=False),
                         optim=OptimConfig(lr_g=2e-4, milestones=(200_000, 400_000, 600_000, 800_000),
                                           ema_decay=0.999))
    else:
        st = StageConfig(name="esrgan", iters=400_000, gan=True,
                         loss=LossConfig(l1_weight=0.01, perceptual_weight=1.0, gan_weight=0.005,
                                         gan_type="ragan", usm_l1=False, usm_perceptual=False,
                                         layer_weights=(0.0, 0.0, 0.0, 0.0, 1.0)),
                         optim=OptimConfig(lr_g=1e-4, lr_d=1e-4, milestones=(50_000, 100_000, 200_000, 300_000)))
    # ESRGAN's own D (VGG-style, 128 px input) and the paper's HR crop of 128
    return TrainConfig(preset=name, stage=st, net=NetConfig(d_type="vgg"),
                       data=DataConfig(gt_size=128, batch_size=16))


def validate(cfg: TrainConfig, where: str = "config") -> TrainConfig:
    """Range checks; raises ConfigError(f"{where}: key: problem")."""
    def bad(key, problem):
        raise ConfigError(f"{where}: {key}: {problem}")

    if cfg.scale not in (1, 2, 4):
        bad("scale", f"must be 1, 2 or 4, got {cfg.scale}")
    if cfg.precision not in ("fp32", "bf16", "fp16"):
        bad("precision", f"must be fp32, bf16 or fp16, got {cfg.precision!r}")
    if cfg.stage.name not in STAGES:
        bad("stage.name", f"must be one of {STAGES}, got {cfg.stage.name!r}")
    for key, v in _floats(cfg):       # inf/nan anywhere would only surface as a broken run hours later
        if not math.isfinite(v):
            bad(key, f"must be finite, got {v}")
    if cfg.net.d_type not in ("unet", "vgg"):
        bad("net.d_type", f"must be 'unet' or 'vgg', got {cfg.net.d_type!r}")
    if cfg.stage.loss.gan_type not in ("vanilla", "ragan"):
        bad("stage.loss.gan_type", f"must be 'vanilla' or 'ragan', got {cfg.stage.loss.gan_type!r}")
    for key, v in (("stage.iters", cfg.stage.iters), ("net.num_feat", cfg.net.num_feat),
                   ("net.num_block", cfg.net.num_block), ("net.num_grow_ch", cfg.net.num_grow_ch),
                   ("net.d_num_feat", cfg.net.d_num_feat), ("data.batch_size", cfg.data.batch_size),
                   ("log_every", cfg.log_every), ("val_every", cfg.val_every), ("save_every", cfg.save_every),
                   ("max_nonfinite", cfg.max_nonfinite)):
        if v < 1:
            bad(key, f"must be >= 1, got {v}")
    for key, v in (("data.num_workers", cfg.data.num_workers), ("data.shuffle_buffer", cfg.data.shuffle_buffer),
                   ("val_images", cfg.val_images), ("seed", cfg.seed),
                   ("data.max_bad_samples", cfg.data.max_bad_samples)):
        if v < 0:
            bad(key, f"must be >= 0, got {v}")
    g = cfg.data.gt_size
    unshuffle = {4: 1, 2: 2, 1: 4}[cfg.scale]
    if g < 8 or g % (cfg.scale * (8 if cfg.stage.gan else 1)) or (g // cfg.scale) % unshuffle:
        bad("data.gt_size", f"{g} must be a multiple of scale {cfg.scale}"
            + (" x 8 (discriminator)" if cfg.stage.gan else "") + " and give an LR crop the network accepts")
    if cfg.stage.gan and cfg.net.d_type == "vgg" and g not in (128, 256):
        bad("data.gt_size", f"{g}: the VGG-style discriminator (net.d_type = 'vgg') takes 128 or 256 px crops")
    lo = cfg.stage.loss
    for key, v in (("l1_weight", lo.l1_weight), ("perceptual_weight", lo.perceptual_weight),
                   ("gan_weight", lo.gan_weight)):
        if not v >= 0:
            bad(f"stage.loss.{key}", f"must be >= 0, got {v}")
    if any(not w >= 0 for w in lo.layer_weights):
        bad("stage.loss.layer_weights", "weights must be >= 0")
    op = cfg.stage.optim
    for key, v in (("lr_g", op.lr_g), ("lr_d", op.lr_d)):
        if not v > 0:
            bad(f"stage.optim.{key}", f"must be > 0, got {v}")
    if not all(0 <= b < 1 for b in op.betas):
        bad("stage.optim.betas", f"must be in [0, 1), got {op.betas}")
    if not 0 <= op.ema_decay < 1:
        bad("stage.optim.ema_decay", f"must be in [0, 1), got {op.ema_decay}")
    if not 0 < op.gamma <= 1:
        bad("stage.optim.gamma", f"must be in (0, 1], got {op.gamma}")
    if any(m < 1 for m in op.milestones):
        bad("stage.optim.milestones", f"must be steps >= 1, got {list(op.milestones)}")
    if any(b <= a for a, b in zip(op.milestones, op.milestones[1:])):
        bad("stage.optim.milestones", f"must be strictly increasing, got {list(op.milestones)}")
    if cfg.stage.gan and lo.gan_weight == 0:
        bad("stage.loss.gan_weight", "a GAN stage needs gan_weight > 0")
    return cfg


def _floats(obj, prefix: str = ""):
    """(dotted key, value) of every float field of a config, tuples included."""
    for f in fields(obj):
        v, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            yield from _floats(v, key + ".")
        elif isinstance(v, float):
            yield key, v
        elif isinstance(v, tuple):
            yield from ((key, x) for x in v if isinstance(x, float))


def _coerce(value: Any, typ: Any, key: str, where: str) -> Any:
    origin = get_origin(typ)
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a table, got {type(value).__name__}")
        return _build(typ, value, key, where)
    if origin is tuple:
        args = get_args(typ)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key, where) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{where}: {key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, key, where) for v, a in zip(value, args))
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key}: expected true/false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: {key}: unsupported type")  # pragma: no cover


def _build(cls, data: dict, prefix: str, where: str, base=None):
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    for k in data:
        if k not in names:
            raise ConfigError(f"{where}: {prefix + '.' if prefix else ''}{k}: unknown key "
                              f"(known: {', '.join(sorted(names))})")
    base = base if base is not None else cls()
    kw = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        t = hints[k]
        if dataclasses.is_dataclass(t):
            if not isinstance(v, dict):
                raise ConfigError(f"{where}: {key}: expected a table, got {type(v).__name__}")
            kw[k] = _build(t, v, key, where, getattr(base, k))
        else:
            kw[k] = _coerce(v, t, key, where)
    return replace(base, **kw)


def config_from_dict(data: dict, *, where: str = "config", stage: str | None = None) -> TrainConfig:
    """Build a TrainConfig from a nested dict: the preset named by ``preset`` (default realesrgan) for
    ``stage`` (or ``data["stage"]["name"]``) overridden by the given keys. Strict: unknown keys/wrong types fail."""
    data = dict(data)
    name = data.get("preset", "realesrgan")
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"{where}: preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    st = stage or (data.get("stage", {}) or {}).get("name", "esrnet")
    if st not in STAGES:
        raise ConfigError(f"{where}: stage.name: unknown stage {st!r} (known: {', '.join(STAGES)})")
    cfg = _build(TrainConfig, data, "", where, preset(name, st))
    return validate(cfg, where)


def load_config(path: str | Path, *, stage: str | None = None, preset: str | None = None) -> TrainConfig:
    """Read a TOML training config (partial files override their preset). ``preset``: the base when the file
    names none (a file naming another one is a ConfigError)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None
    if preset is not None:
        if data.get("preset", preset) != preset:
            raise ConfigError(f"{p}: preset: the file says {data['preset']!r}, the command line {preset!r}")
        data["preset"] = preset
    return config_from_dict(data, where=str(p), stage=stage)


def dump_config(cfg: TrainConfig) -> str:
    """TOML text that ``load_config`` reads back to an equal config."""
    import tomli_w
    return tomli_w.dumps(cfg.to_dict())
