"""RRDBNet (ESRGAN / Real-ESRGAN generator) with the released weight files' key names.

Keys: ``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
``conv_last`` (weight and bias each). Scale 2 and 1 pixel-unshuffle the input by 2 / 4 first (12 / 48 input
channels for RGB), then run the same x4 trunk, so every scale has the same body.
"""
from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

_UNSHUFFLE = {4: 1, 2: 2, 1: 4}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; ``x5 * 0.2 + x``. In/out: (N, num_feat, H, W)."""

    def __init__(self, *, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        # Scaled kaiming init (x0.1, bias 0) keeps the deep residual trunk stable at the start (ESRGAN).
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs, then ``out * 0.2 + x``."""

    def __init__(self, *, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat=num_feat, num_grow_ch=num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat=num_feat, num_grow_ch=num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat=num_feat, num_grow_ch=num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """RRDBNet generator.

    Input (N, num_in_ch, H, W) in [0, 1] (H, W divisible by 2 for scale 2, by 4 for scale 1);
    output (N, num_out_ch, H * scale, W * scale), no output activation (values may leave [0, 1]).
    """

    def __init__(self, *, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64,
                 num_block: int = 23, num_grow_ch: int = 32) -> None:
        super().__init__()
        if scale not in _UNSHUFFLE:
            raise ValueError(f"RRDBNet: scale must be 1, 2 or 4, got {scale}")
        for name, v in (("num_in_ch", num_in_ch), ("num_out_ch", num_out_ch), ("num_feat", num_feat),
                        ("num_block", num_block), ("num_grow_ch", num_grow_ch)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"RRDBNet: {name} must be a positive int, got {v!r}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle ** 2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat=num_feat, num_grow_ch=num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


_BODY_KEY = re.compile(r"^body\.(\d+)\.")


def rrdb_config_from_state(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Read RRDBNet constructor arguments off a state_dict (e.g. a released Real-ESRGAN file).

    scale from conv_first's input channels (3 -> x4, 12 -> x2, 48 -> x1 for RGB), num_feat from conv_first,
    num_block from the largest ``body.N`` index, num_grow_ch from ``body.0.rdb1.conv1``, num_out_ch from conv_last.
    Raises ValueError naming the missing/odd key when this is not an RRDBNet state_dict.
    """
    for key in ("conv_first.weight", "conv_last.weight", "body.0.rdb1.conv1.weight"):
        if key not in state:
            raise ValueError(f"not an RRDBNet state_dict (no {key!r}; keys start with "
                             f"{sorted(state)[:3]})")
    in_ch = int(state["conv_first.weight"].shape[1])
    num_out_ch = int(state["conv_last.weight"].shape[0])
    scale = None
    for s, f in _UNSHUFFLE.items():
        if in_ch == num_out_ch * f * f:
            scale = s
    if scale is None:
        raise ValueError(f"RRDBNet state_dict: conv_first has {in_ch} input channels, expected "
                         f"{num_out_ch}, {num_out_ch * 4} or {num_out_ch * 16} (x4, x2, x1)")
    blocks = {int(m.group(1)) for k in state if (m := _BODY_KEY.match(k))}
    return {"num_in_ch": in_ch // _UNSHUFFLE[scale] ** 2, "num_out_ch": num_out_ch, "scale": scale,
            "num_feat": int(state["conv_first.weight"].shape[0]), "num_block": max(blocks) + 1,
            "num_grow_ch": int(state["body.0.rdb1.conv1.weight"].shape[0])}
