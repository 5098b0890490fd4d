"""VGG19 ``features`` in plain torch with torchvision's key layout (``features.0.weight`` ...).

Only the convolutional trunk up to the last layer that is needed is built; the truncated model still loads a
full torchvision ``vgg19-dcbb9e9d.pth`` file (classifier keys and the unused tail are ignored).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

# torchvision cfg "E": numbers are conv widths, "M" a 2x2 max-pool.
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"


def _layer_names() -> list[str]:
    names, block, conv = [], 1, 1
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES = _layer_names()     # index i of ``features`` <-> LAYER_NAMES[i] (conv1_2 is 2, conv5_4 is 34)


class VGG19Features(nn.Module):
    """VGG19 features truncated after ``last_layer``; returns the named layers' outputs.

    Input (N, 3, H, W) RGB in [0, 1]; ImageNet mean/std normalisation is applied inside when ``normalize``.
    ``forward`` returns {layer_name: tensor} for each name in ``layers`` (e.g. "conv5_4" = before its ReLU).
    """

    def __init__(self, *, layers: tuple[str, ...] = ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4"),
                 normalize: bool = True) -> None:
        super().__init__()
        unknown = [n for n in layers if n not in LAYER_NAMES]
        if unknown:
            raise ValueError(f"VGG19Features: unknown layer(s) {unknown}; known: {LAYER_NAMES}")
        self.layers = tuple(layers)
        last = max(LAYER_NAMES.index(n) for n in layers)
        mods: list[nn.Module] = []
        in_ch = 3
        for name in LAYER_NAMES[: last + 1]:
            if name.startswith("conv"):
                width = _CFG[[i for i, v in enumerate(_CFG) if v != "M"][sum(
                    1 for m in mods if isinstance(m, nn.Conv2d))]]
                mods.append(nn.Conv2d(in_ch, width, 3, 1, 1))
                in_ch = width
            elif name.startswith("relu"):
                mods.append(nn.ReLU(inplace=False))
            else:
                mods.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*mods)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalize:
            x = (x - self.mean) / self.std
        out = {}
        for name, layer in zip(LAYER_NAMES, self.features):
            x = layer(x)
            if name in self.layers:
                out[name] = x
        return out

    def load_torchvision(self, path: str | os.PathLike) -> None:
        """Load a torchvision VGG19 state_dict file (``features.N.*`` keys; others ignored)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets one clear line
            raise ValueError(f"{path}: cannot read VGG19 weights ({type(e).__name__}: {e})") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"{path}: not a torchvision VGG19 state_dict (missing {missing[0]!r})")
        for k in own:
            if tuple(state[k].shape) != tuple(own[k].shape):
                raise ValueError(f"{path}: {k} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}")
        self.load_state_dict({k: state[k] for k in own})


def resolve_vgg_weights(path: str | os.PathLike | None = None) -> Path:
    """Find the VGG19 weight file: ``path``, else $DEGRADEKIT_VGG19, else torchvision's cache file
    ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (TORCH_HOME defaults to ~/.cache/torch).

    Raises FileNotFoundError with instructions when none exists.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: VGG19 weight file not found (--vgg-weights)")
        return p
    env = os.environ.get("DEGRADEKIT_VGG19")
    if env:
        p = Path(env)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: VGG19 weight file not found ($DEGRADEKIT_VGG19)")
        return p
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"))
    p = (torch_home / "hub" / "checkpoints" / TORCHVISION_FILE).expanduser()
    if p.is_file():
        return p
    raise FileNotFoundError(
        f"{p}: VGG19 weights not found; the perceptual loss needs them. Download "
        f"https://download.pytorch.org/models/{TORCHVISION_FILE} to that path (or pass --vgg-weights FILE / set "
        f"DEGRADEKIT_VGG19), or train with perceptual weight 0.")
