"""ESRGAN network interpolation: theta = (1 - alpha) * theta_A + alpha * theta_B, key by key."""
from __future__ import annotations

import os

import torch

from trainer.checkpoint import WeightError, read_state, save_weights


def interpolate_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) a + alpha b for every key; the two state_dicts must have identical keys and shapes.
    alpha in [0, 1] (0 -> a, 1 -> b). Float math in float32, result cast back to a's dtype."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if a.keys() != b.keys():
        diff = sorted(set(a) ^ set(b))
        raise ValueError(f"the two networks have different keys (e.g. {diff[0]!r})")
    out = {}
    for k in a:
        if a[k].shape != b[k].shape:
            raise ValueError(f"{k}: shapes differ {tuple(a[k].shape)} vs {tuple(b[k].shape)}")
        out[k] = ((1 - alpha) * a[k].float() + alpha * b[k].float()).to(a[k].dtype)
    return out


def interpolate_files(path_a: str | os.PathLike, path_b: str | os.PathLike, alpha: float,
                      out: str | os.PathLike, *, layout: str = "basicsr") -> dict[str, torch.Tensor]:
    """Interpolate two weight files (params_ema, else params, else bare; any layout ``read_state`` reads, so an
    ESRGAN ``model.N`` file mixes with a BasicSR one) and write ``out`` (.pth with params and params_ema both set
    to the result, or .safetensors; ``layout`` "esrgan" writes ESRGAN's names). Returns the result in BasicSR
    names."""
    a, b = read_state(path_a), read_state(path_b)
    try:
        res = interpolate_states(a, b, alpha)
    except ValueError as e:
        raise WeightError(f"{path_a} vs {path_b}: {e}") from None
    save_weights(out, res, ema=res, layout=layout)
    return res
