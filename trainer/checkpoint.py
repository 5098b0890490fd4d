"""Weight files and checkpoints.

A weight file is what released Real-ESRGAN models are: ``{"params_ema": state_dict}`` (or ``params``) in a
``.pth``; we also read a bare state_dict and ``.safetensors``. A training checkpoint is a plain dict:
``params``, ``params_ema`` (so it is itself a usable weight file), ``net_d``, ``optim_g``, ``optim_d``,
``sched_g``, ``sched_d``, ``scaler``, ``step``, ``data_position`` (one per rank), ``config``, ``rng``.
"""
from __future__ import annotations

import errno
import os
from collections import Counter
from pathlib import Path

import torch

from trainer.archs.rrdbnet import RRDBNet, rrdb_config_from_state
from trainer.weights import _from_2019, arch_metadata, check_metadata, detect_layout, to_basicsr, to_esrgan


class WeightError(ValueError):
    """Unreadable / unsuitable weight file; ``str(e)`` is one line naming the file."""


def _read(p: Path, key: str | None) -> tuple[dict[str, torch.Tensor], dict[str, str] | None]:
    """(state, safetensors metadata or None) of any network's weight file; no key renaming."""
    if not p.is_file():
        raise WeightError(f"{p}: weight file not found" if not p.exists() else f"{p}: not a regular file")
    meta = None
    if p.suffix == ".safetensors":
        from safetensors import safe_open
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata()
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # noqa: BLE001 - any unreadable header or body: one line
            first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise WeightError(f"{p}: cannot read safetensors ({first})") from None
        for prefix in ([key] if key else ["params_ema", "params"]):
            sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
            if sub:
                state = sub
                break
        if not state:
            raise WeightError(f"{p}: holds no tensors")
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
                raise WeightError(f"{p}: no {key!r} entry (has {sorted(map(str, obj))[:5]})")
            state = obj[key]
        elif isinstance(obj.get("params_ema"), dict):
            state = obj["params_ema"]
        elif isinstance(obj.get("params"), dict):
            state = obj["params"]
        else:
            state = obj
        if (not isinstance(state, dict) or not state or not all(isinstance(k, str) for k in state)
                or not all(isinstance(v, torch.Tensor) for v in state.values())):
            raise WeightError(f"{p}: no state_dict found (expected params_ema, params or a dict of tensors)")
    if all(k.startswith("module.") for k in state):
        state = {k[7:]: v for k, v in state.items()}
    return state, meta


def read_module_state(path: str | os.PathLike, *, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read any network's state_dict (e.g. a discriminator for ``--init-d``): ``params_ema``, else ``params``, else
    the bare dict (``key`` forces one entry); ``.safetensors`` flat or prefixed; a leading ``module.`` stripped.
    Key names are left as stored."""
    return _read(Path(path), key)[0]


def read_state(path: str | os.PathLike, *, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a generator state_dict from a weight file, always with BasicSR / Real-ESRGAN key names.

    ``.safetensors``: the tensors (keys optionally prefixed ``params_ema.`` / ``params.``), their architecture
    metadata (when present) checked against the tensors. ``.pth``/``.pt``: ``params_ema`` if present, else
    ``params``, else the dict itself when all values are tensors. A leading ``module.`` (DDP) is stripped. ESRGAN's
    ``model.N`` layout (x4, and the pixel-unshuffle x2 / x1 forms) and its 2019 names (``RRDB_trunk`` ...) are
    renamed (``trainer.weights``). A state that is no RRDBNet is returned unchanged. ``key`` forces one of
    params_ema / params.
    """
    p = Path(path)
    state, meta = _read(p, key)
    try:
        layout = detect_layout(state)
    except ValueError:
        return state                       # not a generator in any layout: load_generator says so
    try:
        if layout != "basicsr":
            state = to_basicsr(state)
        if meta:
            check_metadata(meta, rrdb_config_from_state(state))
    except ValueError as e:
        raise WeightError(f"{p}: {e}") from None
    return state


def _rename_esrgan(key: str) -> str:
    """One key of the ESRGAN repository's 2019 names -> BasicSR's (``RRDB_trunk.0.RDB1`` -> ``body.0.rdb1``)."""
    return next(iter(_from_2019({key: None})))


def load_generator(path: str | os.PathLike, *, key: str | None = None) -> tuple[RRDBNet, dict[str, int]]:
    """Build an RRDBNet with the architecture read off the weight file (scale, num_feat, num_block,
    num_grow_ch) and load it strictly, in any layout ``read_state`` reads; returns (net in eval mode, its
    config). WeightError (one line naming the file) when the file is no RRDBNet or does not fit."""
    state = read_state(path, key=key)
    try:
        detect_layout(state)
        cfg = rrdb_config_from_state(state)
        net = RRDBNet(**cfg)
        net.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError) as e:
        raise WeightError(f"{path}: {str(e).splitlines()[0]}") from None
    return net.eval(), cfg


def _file_mode() -> int:
    """0o666 minus the process umask (what open() gives a new file), read without changing the umask."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def save_weights(path: str | os.PathLike, state: dict[str, torch.Tensor], *, ema: dict | None = None,
                 layout: str = "basicsr") -> None:
    """Write a release-style weight file.

    ``.safetensors``: flat tensors of the EMA (else ``state``), header metadata with the architecture
    (``trainer.weights.arch_metadata``) when ``state`` is an RRDBNet. ``.pth``: layout ``basicsr`` ->
    ``{"params": state, "params_ema": ema}`` (Real-ESRGAN's files); layout ``esrgan`` -> the bare ``model.N``
    state_dict of the EMA (else ``state``), as ESRGAN's release and chaiNNer write it.
    Durable: a temp file, fsync, rename, fsync of the folder (a crash leaves the old file or the new one, never a
    half one); the file gets the normal 0o666 & ~umask mode (0644).
    """
    if layout not in ("basicsr", "esrgan"):
        raise ValueError(f"layout must be 'basicsr' or 'esrgan', got {layout!r}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    conv = to_esrgan if layout == "esrgan" else dict

    def cpu(sd):
        return {k: v.detach().cpu().contiguous() for k, v in conv(sd).items()}

    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import save_file
            src = ema if ema is not None else state
            try:
                meta = arch_metadata(rrdb_config_from_state(to_basicsr(src)), layout=layout)
            except ValueError:
                meta = {"format": "pt"}     # not an RRDBNet: tensors only
            save_file(cpu(src), str(tmp), metadata=meta)
        elif layout == "esrgan":
            torch.save(cpu(ema if ema is not None else state), tmp)
        else:
            obj = {"params": cpu(state)}
            if ema is not None:
                obj["params_ema"] = cpu(ema)
            torch.save(obj, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(p.parent)


def save_checkpoint(path: str | os.PathLike, ckpt: dict) -> None:
    """Write a training checkpoint durably: plain types only (``plain_state``), a temp file beside ``path``, fsync,
    mode 0o666 & ~umask, rename, fsync of the folder. Any OSError (a full disk, ...) removes the temp file and
    becomes ``WeightError("PATH: cannot write checkpoint: REASON")``."""
    p = Path(path)
    obj = plain_state(ckpt)
    tmp = p.with_name(p.name + ".tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        # a Python file object, not a path: torch's own writer reports a full disk as an opaque RuntimeError
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, p)
        fsync_dir(p.parent)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise WeightError(f"{p}: cannot write checkpoint: {e.strerror or e}") from None
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a training checkpoint written by ``save_checkpoint`` (``weights_only=True``: plain Python/tensor data
    only); the schedulers' milestone dicts become the Counter MultiStepLR expects."""
    p = Path(path)
    if not p.is_file():
        raise WeightError(f"{p}: checkpoint not found")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise WeightError(f"{p}: cannot read checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or "step" not in ck or "params" not in ck:
        raise WeightError(f"{p}: not a trainer checkpoint (no step/params)")
    for k in ("sched_g", "sched_d"):
        sched = ck.get(k)
        if isinstance(sched, dict) and isinstance(sched.get("milestones"), dict):
            sched["milestones"] = Counter({int(m): int(c) for m, c in sched["milestones"].items()})
    return ck


_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def plain_state(obj, where: str = "checkpoint"):
    """A copy of ``obj`` built from dict / list / tuple / str / int / float / bool / None / Tensor only, so any
    tool opens the file with ``torch.load(weights_only=True)``: a Counter (MultiStepLR's milestones) becomes a
    dict, an OrderedDict a dict. Anything else is a TypeError naming its place (a programming error)."""
    if isinstance(obj, dict):           # Counter and OrderedDict are dicts
        return {k: plain_state(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [plain_state(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return tuple(items) if isinstance(obj, tuple) else items
    if type(obj) in _PLAIN or isinstance(obj, torch.Tensor):
        return obj
    raise TypeError(f"{where}: {type(obj).__module__}.{type(obj).__name__} is not a plain checkpoint type")


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so that renames into it survive a power loss (best effort where folders have no fd)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):    # not supported for folders here
            raise
    finally:
        os.close(fd)
