"""Weight files and checkpoints.

A weight file is what released Real-ESRGAN models are: ``{"params_ema": state_dict}`` (or ``params``) in a
``.pth``; we also read a bare state_dict and ``.safetensors``. A training checkpoint is a plain dict:
``params``, ``params_ema`` (so it is itself a usable weight file), ``net_d``, ``optim_g``, ``optim_d``,
``sched_g``, ``sched_d``, ``scaler``, ``step``, ``data_position`` (one per rank), ``config``, ``rng``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from trainer.archs.rrdbnet import RRDBNet, rrdb_config_from_state


_ESRGAN_RENAME = {"RRDB_trunk": "body", "trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2",
                  "HRconv": "conv_hr"}


class WeightError(ValueError):
    """Unreadable / unsuitable weight file; ``str(e)`` is one line naming the file."""


def read_state(path: str | os.PathLike, *, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a generator state_dict from a weight file.

    ``.safetensors``: the tensors (keys optionally prefixed ``params_ema.`` / ``params.``). ``.pth``/``.pt``:
    ``params_ema`` if present, else ``params``, else the dict itself when all values are tensors. A leading
    ``module.`` (DDP) is stripped. ``key`` forces one of params_ema / params.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightError(f"{p}: weight file not found")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(str(p))
        except Exception as e:  # noqa: BLE001
            raise WeightError(f"{p}: cannot read safetensors ({e})") from None
        for prefix in ([key] if key else ["params_ema", "params"]):
            sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
            if sub:
                state = sub
                break
    else:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            first = str(e).splitlines()[0][:200] if str(e) else ""
            raise WeightError(f"{p}: cannot read weight file ({type(e).__name__}: {first})") from None
        if not isinstance(obj, dict):
            raise WeightError(f"{p}: expected a dict of tensors, got {type(obj).__name__}")
        if key is not None:
            if key not in obj:
                raise WeightError(f"{p}: no {key!r} entry (has {sorted(obj)[:5]})")
            state = obj[key]
        elif "params_ema" in obj:
            state = obj["params_ema"]
        elif "params" in obj:
            state = obj["params"]
        else:
            state = obj
        if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise WeightError(f"{p}: no state_dict found (expected params_ema, params or a dict of tensors)")
    if all(k.startswith("module.") for k in state):
        state = {k[7:]: v for k, v in state.items()}
    if "RRDB_trunk.0.RDB1.conv1.weight" in state:     # ESRGAN repository's (2019) names -> Real-ESRGAN's
        state = {_rename_esrgan(k): v for k, v in state.items()}
    return state


def _rename_esrgan(key: str) -> str:
    head, _, rest = key.partition(".")
    for i in (1, 2, 3):
        rest = rest.replace(f"RDB{i}.", f"rdb{i}.")
    return f"{_ESRGAN_RENAME.get(head, head)}.{rest}"


def load_generator(path: str | os.PathLike, *, key: str | None = None) -> tuple[RRDBNet, dict[str, int]]:
    """Build an RRDBNet with the architecture read off the weight file (scale, num_feat, num_block,
    num_grow_ch) and load it; returns (net in eval mode, its config)."""
    state = read_state(path, key=key)
    try:
        cfg = rrdb_config_from_state(state)
        net = RRDBNet(**cfg)
        net.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError) as e:
        raise WeightError(f"{path}: {str(e).splitlines()[0]}") from None
    return net.eval(), cfg


def save_weights(path: str | os.PathLike, state: dict[str, torch.Tensor], *, ema: dict | None = None) -> None:
    """Write a release-style weight file: ``.safetensors`` (flat tensors of the EMA, else ``state``) or ``.pth``
    (``{"params": state, "params_ema": ema}``). Written to a temp file and renamed (never a half file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    if p.suffix == ".safetensors":
        from safetensors.torch import save_file
        src = ema if ema is not None else state
        save_file({k: v.detach().cpu().contiguous() for k, v in src.items()}, str(tmp))
    else:
        obj = {"params": {k: v.detach().cpu() for k, v in state.items()}}
        if ema is not None:
            obj["params_ema"] = {k: v.detach().cpu() for k, v in ema.items()}
        torch.save(obj, tmp)
    os.replace(tmp, p)


def save_checkpoint(path: str | os.PathLike, ckpt: dict) -> None:
    """torch.save a plain checkpoint dict atomically (temp file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, p)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a training checkpoint written by ``save_checkpoint`` (plain Python/tensor data only)."""
    p = Path(path)
    if not p.is_file():
        raise WeightError(f"{p}: checkpoint not found")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise WeightError(f"{p}: cannot read checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or "step" not in ck or "params" not in ck:
        raise WeightError(f"{p}: not a trainer checkpoint (no step/params)")
    return ck
