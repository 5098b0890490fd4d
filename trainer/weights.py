"""RRDBNet weight-file layouts: detection and conversion, and the architecture metadata of ``.safetensors`` files.

Three key layouts name the same tensors:

* ``basicsr`` -- BasicSR / Real-ESRGAN (ours): ``conv_first``, ``body.I.rdbJ.convK``, ``conv_body``, ``conv_up1``,
  ``conv_up2``, ``conv_hr``, ``conv_last``.
* ``esrgan`` -- ESRGAN's first ("old arch") layout, still what spandrel's ESRGAN module, chaiNNer and
  traiNNer-redux's ESRGAN save: the whole net is one ``nn.Sequential`` called ``model``::

      0 conv_first | 1 ShortcutBlock(sub = [RRDB x num_block, conv_body]) | 2 nearest x2 | 3 conv_up1 | 4 LReLU
      5 nearest x2 | 6 conv_up2 | 7 LReLU | 8 conv_hr | 9 LReLU | 10 conv_last

  Inside an RRDB every conv is wrapped in a ``Sequential(conv, act)``, hence ``RDB1.conv1.0.weight``. So
  ``model.1.sub.I.RDBJ.convK.0`` = ``body.I.rdbJ.convK`` (I < num_block) and ``model.1.sub.<num_block>`` =
  ``conv_body``. The pixel-unshuffle x2 / x1 nets (Real-ESRGAN x2plus style) keep these keys; only ``model.0``
  has 12 / 48 input channels.
* ``esrgan2019`` -- the ESRGAN repository's later names: ``RRDB_trunk.I.RDBJ``, ``trunk_conv``, ``upconv1``,
  ``upconv2``, ``HRconv`` (``conv_first`` / ``conv_last`` as ours).
"""
from __future__ import annotations

import re

import torch

LAYOUTS = ("basicsr", "esrgan", "esrgan2019")

_RDB_OLD = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_RDB_NEW = re.compile(r"^body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$")
_TRUNK_OLD = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_TOP_OLD = re.compile(r"^model\.(\d+)\.(weight|bias)$")
# the Sequential's parametrised indices in the two-upsampler (x4 trunk) net
_TOP_NAMES = {0: "conv_first", 3: "conv_up1", 6: "conv_up2", 8: "conv_hr", 10: "conv_last"}
_NAME_TOP = {v: k for k, v in _TOP_NAMES.items()}
_RENAME_2019 = {"RRDB_trunk": "body", "trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2",
                "HRconv": "conv_hr"}

# safetensors header fields we write (all values are strings, as the format requires)
META_FIELDS = ("scale", "num_in_ch", "num_out_ch", "num_feat", "num_block", "num_grow_ch")


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    """Which RRDBNet key layout ``state`` uses: "basicsr", "esrgan" or "esrgan2019".

    Raises ValueError (one line, with the first keys) when it is none of them."""
    if "conv_first.weight" in state and "body.0.rdb1.conv1.weight" in state:
        return "basicsr"
    if "model.0.weight" in state and "model.1.sub.0.RDB1.conv1.0.weight" in state:
        return "esrgan"
    if "RRDB_trunk.0.RDB1.conv1.weight" in state:
        return "esrgan2019"
    raise ValueError(f"not an RRDBNet state_dict (no 'conv_first.weight', nor ESRGAN's 'model.0.weight'; "
                     f"keys start with {sorted(state)[:3]})")


def _from_esrgan(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    rdb = [m for k in state if (m := _RDB_OLD.match(k))]
    num_block = 1 + max(int(m.group(1)) for m in rdb)
    tops = sorted({int(m.group(1)) for k in state if (m := _TOP_OLD.match(k))})
    if tops != sorted(_TOP_NAMES):
        # native x2 (one upconv: 0, 3, 5, 7) or x8 (three: 0, 3, 6, 9, 11, 13) ESRGAN nets: top-level convs are
        # conv_first, the upconvs, HRconv and conv_last
        raise ValueError(f"ESRGAN layout with {max(0, len(tops) - 3)} upsampling conv(s) (convs at model.{tops}) "
                         f"is not supported: this RRDBNet has two (x4, or x2 / x1 through pixel-unshuffle)")
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if m := _RDB_OLD.match(k):
            i, j, c, kind = m.groups()
            out[f"body.{i}.rdb{j}.conv{c}.{kind}"] = v
        elif m := _TRUNK_OLD.match(k):
            if int(m.group(1)) != num_block:
                raise ValueError(f"ESRGAN layout: {k!r} should be the trunk conv model.1.sub.{num_block}")
            out[f"conv_body.{m.group(2)}"] = v
        elif m := _TOP_OLD.match(k):
            out[f"{_TOP_NAMES[int(m.group(1))]}.{m.group(2)}"] = v
        else:
            raise ValueError(f"ESRGAN layout: unexpected key {k!r}")
    return out


def _from_2019(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        head, _, rest = k.partition(".")
        for i in (1, 2, 3):
            rest = rest.replace(f"RDB{i}.", f"rdb{i}.")
        out[f"{_RENAME_2019.get(head, head)}.{rest}"] = v
    return out


def to_basicsr(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any of the three layouts -> BasicSR names (the same tensor objects, no copy). ValueError when the keys fit
    no layout."""
    layout = detect_layout(state)
    if layout == "basicsr":
        return dict(state)
    return _from_esrgan(state) if layout == "esrgan" else _from_2019(state)


def to_esrgan(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BasicSR (or any) layout -> ESRGAN's ``model.N`` names, in the Sequential's order."""
    state = to_basicsr(state)
    num_block = 1 + max(int(m.group(1)) for k in state if (m := _RDB_NEW.match(k)))
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if m := _RDB_NEW.match(k):
            i, j, c, kind = m.groups()
            out[f"model.1.sub.{i}.RDB{j}.conv{c}.0.{kind}"] = v
        else:
            head, _, kind = k.partition(".")
            if head == "conv_body":
                out[f"model.1.sub.{num_block}.{kind}"] = v
            elif head in _NAME_TOP:
                out[f"model.{_NAME_TOP[head]}.{kind}"] = v
            else:
                raise ValueError(f"not an RRDBNet key: {k!r}")
    return {k: out[k] for k in sorted(out, key=_esrgan_order)}


def _esrgan_order(key: str) -> tuple:
    # numeric order of the Sequential indices (model.10 after model.8), weight before bias
    return tuple(int(p) if p.isdigit() else (p != "weight", p) for p in key.split("."))


def arch_metadata(cfg: dict[str, int], *, layout: str = "basicsr") -> dict[str, str]:
    """The safetensors header we write for an RRDBNet with constructor args ``cfg``."""
    return {"format": "pt", "arch": "RRDBNet", "layout": layout, **{f: str(int(cfg[f])) for f in META_FIELDS}}


def check_metadata(meta: dict[str, str] | None, cfg: dict[str, int]) -> None:
    """Compare a file's architecture metadata (when present) with what the tensors say; ValueError on the first
    field that disagrees or is not an integer. Unknown fields and files without metadata pass."""
    if not meta:
        return
    arch = meta.get("arch")
    # tools name this net RRDBNet, ESRGAN, RealESRGAN_x4plus, ...: refuse only a name that is clearly another net
    if arch is not None and not any(n in arch.lower() for n in ("rrdb", "esrgan")):
        raise ValueError(f"metadata says arch {arch!r}, not an RRDBNet")
    for f in META_FIELDS:
        if f not in meta:
            continue
        try:
            v = int(meta[f])
        except ValueError:
            raise ValueError(f"metadata {f} = {meta[f]!r} is not an integer") from None
        if v != cfg[f]:
            raise ValueError(f"metadata says {f} {v} but the tensors give {cfg[f]}")
