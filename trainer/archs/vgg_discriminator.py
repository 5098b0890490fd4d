"""ESRGAN's VGG-style discriminator (the ESRGAN paper's D, BasicSR ``VGGStyleDiscriminator``), key names as the
released ESRGAN discriminator files: ``conv0_0``, ``conv0_1``, ``bn0_1``, ``conv{L}_0``, ``bn{L}_0``,
``conv{L}_1``, ``bn{L}_1`` (L = 1..4, and 5 for 256 px input), ``linear1``, ``linear2``.

Level 0: conv3x3 (bias) + LeakyReLU, conv4x4 stride 2 (no bias) + BN + LeakyReLU. Levels 1..: conv3x3 + BN +
LeakyReLU, conv4x4 stride 2 + BN + LeakyReLU (convs before a BN carry no bias). Widths nf, 2nf, 4nf, 8nf, 8nf
(, 8nf), so the last level leaves 8nf x 4 x 4 features for Linear(8nf*16, 100), LeakyReLU, Linear(100, 1).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class VGGStyleDiscriminator(nn.Module):
    """One real/fake logit per image. Input (N, num_in_ch, S, S) with S == input_size (128 or 256), values in
    [0, 1]; output (N, 1) float logits. BatchNorm: batch statistics in training mode, running ones in eval."""

    def __init__(self, *, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"VGGStyleDiscriminator: input_size must be 128 or 256, got {input_size!r}")
        for name, v in (("num_in_ch", num_in_ch), ("num_feat", num_feat)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"VGGStyleDiscriminator: {name} must be a positive int, got {v!r}")
        self.input_size = input_size
        f = num_feat
        self.conv0_0 = nn.Conv2d(num_in_ch, f, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(f, f, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(f, affine=True)
        widths = [f, 2 * f, 4 * f, 8 * f, 8 * f] + ([8 * f] if input_size == 256 else [])
        self.levels = len(widths) - 1
        for lvl in range(1, len(widths)):
            cin, cout = widths[lvl - 1], widths[lvl]
            setattr(self, f"conv{lvl}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            setattr(self, f"bn{lvl}_0", nn.BatchNorm2d(cout, affine=True))
            setattr(self, f"conv{lvl}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            setattr(self, f"bn{lvl}_1", nn.BatchNorm2d(cout, affine=True))
        self.linear1 = nn.Linear(widths[-1] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2] != self.input_size or x.shape[3] != self.input_size:
            raise ValueError(f"VGGStyleDiscriminator: expected (N, C, {self.input_size}, {self.input_size}) input, "
                             f"got {tuple(x.shape)} (set the discriminator's input_size to the GT crop)")

        def act(t):
            return F.leaky_relu(t, negative_slope=0.2, inplace=True)

        feat = act(self.conv0_0(x))
        feat = act(self.bn0_1(self.conv0_1(feat)))
        for lvl in range(1, self.levels + 1):
            feat = act(getattr(self, f"bn{lvl}_0")(getattr(self, f"conv{lvl}_0")(feat)))
            feat = act(getattr(self, f"bn{lvl}_1")(getattr(self, f"conv{lvl}_1")(feat)))
        feat = act(self.linear1(feat.flatten(1)))
        return self.linear2(feat)
