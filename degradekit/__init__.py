"""degradekit: exact, fast, replayable Real-ESRGAN / RealSR degradation synthesis.

Engine API (issue 2)::

    import numpy as np, degradekit
    cfg = degradekit.preset("realesrgan")                   # "realworld"; or degradekit.load_config("my.toml")
    params = degradekit.sample(np.random.default_rng(0), cfg)
    lr = degradekit.apply(hr_uint8_rgb, params)             # (H // 4, W // 4, 3) uint8
    lr, params = degradekit.degrade(hr_uint8_rgb, cfg, seed=0)
    degradekit.apply(hr_uint8_rgb, params.to_dict())        # replay from the JSON record: same bytes
"""
from degradekit.config import (ConfigError, DegradeConfig, check_size_bound, dump_config, load_config, preset,
                               validate_config)
from degradekit.params import DegradeParams, ParamsError

__all__ = ["sample", "apply", "apply_stages", "degrade", "DegradeConfig", "DegradeParams", "preset",
           "load_config", "dump_config", "validate_config", "check_size_bound", "ConfigError", "ParamsError"]

_PIPELINE = ("sample", "apply", "apply_stages", "degrade")


def __getattr__(name):
    # The pipeline pulls in OpenCV and the Numba ops; import it on first use so that `import degradekit`
    # (and every `--help` of the CLI, which imports degradekit.commands.*) stays fast.
    if name in _PIPELINE:
        from degradekit import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'degradekit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PIPELINE))
