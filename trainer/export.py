"""Export a generator: weight files in either key layout (``.pth`` / ``.safetensors``, EMA weights) and ONNX
(dynamic N, H, W), the latter checked by running it with onnxruntime against torch when onnxruntime is
installed."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from trainer.checkpoint import load_generator, save_weights


def export_weights(weights: str | os.PathLike, out: str | os.PathLike, *, layout: str = "basicsr") -> dict:
    """Write the (EMA) generator of ``weights`` (any readable layout) to ``out``.

    ``.safetensors``: flat tensors with the architecture in the header metadata. ``.pth``: layout ``basicsr`` ->
    ``{"params": state, "params_ema": state}`` (the released Real-ESRGAN files' key; both entries share one
    storage, so the file is not doubled); ``esrgan`` -> ESRGAN's bare ``model.N`` dict.
    Returns the architecture dict (scale, num_feat, num_block, ...) plus ``path`` and ``layout``.
    """
    out = Path(out)
    if out.suffix not in (".safetensors", ".pth", ".pt"):
        raise ValueError(f"{out}: expected a .safetensors or .pth file name")
    net, cfg = load_generator(weights)
    state = net.state_dict()
    save_weights(out, state, ema=state, layout=layout)
    return {**cfg, "path": str(out), "layout": layout}


def export_safetensors(weights: str | os.PathLike, out: str | os.PathLike, *, layout: str = "basicsr") -> Path:
    """Write the (EMA) generator of ``weights`` as a flat ``.safetensors`` file (architecture in the metadata)."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"{out}: expected a .safetensors file name")
    export_weights(weights, out, layout=layout)
    return out


def export_onnx(weights: str | os.PathLike, out: str | os.PathLike, *, opset: int = 17, check: bool = True,
                size: int = 32) -> dict:
    """Export the generator to ONNX (input ``lq`` (N, 3, H, W) [0, 1], output ``sr``; N, H, W dynamic).

    With ``check`` and onnxruntime importable, runs both on a random (1, 3, size, size+8) input and returns
    {"max_abs_diff": float, "checked": True}; otherwise {"checked": False}.
    """
    net, cfg = load_generator(weights)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    m = {4: 1, 2: 2, 1: 4}[cfg["scale"]]
    dummy = torch.rand(1, 3, size, size + 2 * m, generator=torch.Generator().manual_seed(0))
    tmp = out.with_name(out.name + ".tmp")
    try:
        torch.onnx.export(net, (dummy,), str(tmp), input_names=["lq"], output_names=["sr"], opset_version=opset,
                          dynamic_axes={"lq": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "H", 3: "W"}},
                          dynamo=False)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    res = {"checked": False, "path": str(out), **cfg}
    if check:
        try:
            import onnxruntime as ort
        except ImportError:
            return res
        x = torch.rand(1, 3, size + 4 * m, size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            ref = net(x).numpy()
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = sess.run(["sr"], {"lq": x.numpy()})[0]
        res.update(checked=True, max_abs_diff=float(np.abs(got - ref).max()))
    return res
