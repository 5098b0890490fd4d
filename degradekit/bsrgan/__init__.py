"""The BSRGAN degradation model (Zhang et al. 2021) exactly as its published code draws it
(spec/bsrgan-model.md): ``sample_bsrgan(rng, cfg)`` draws a frozen :class:`BsrganParams`,
``apply_bsrgan(hr, params)`` applies it (pure), ``bsrgan_preset(name)`` gives the published settings."""
from .apply import apply_bsrgan, apply_bsrgan_stages, hr_target
from .config import (PRESETS, BsrganConfig, bsrgan_preset, dump_bsrgan_config, is_bsrgan_preset, is_bsrgan_toml,
                     load_bsrgan_config)
from .params import BsrganParams
from .sample import sample_bsrgan

__all__ = ["BsrganConfig", "BsrganParams", "PRESETS", "bsrgan_preset", "is_bsrgan_preset", "sample_bsrgan",
           "apply_bsrgan", "apply_bsrgan_stages", "hr_target", "is_bsrgan_toml", "load_bsrgan_config",
           "dump_bsrgan_config"]
