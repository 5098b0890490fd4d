"""Losses and the USM target: L1, VGG19 perceptual (before ReLU), vanilla and relativistic-average GAN,
and the unsharp mask applied to the ground truth (spec/realesrgan-model.md section 3 step 0 / section 4).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from trainer.archs.vgg import VGG19Features

USM_RADIUS = 25                  # 51-tap Gaussian, sigma 8 (OpenCV's sigma for size 51 with sigma 0)
USM_SIGMA = 8.0
USM_CONTEXT = 2 * USM_RADIUS     # USM(x) at a pixel depends on x within this distance (two blurs)
PERCEPTUAL_LAYERS = ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4")


def gaussian_kernel1d(radius: int = USM_RADIUS, sigma: float = USM_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian, float32 (2 radius + 1,)."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return (k / k.sum()).float()


def _blur(x: torch.Tensor, k1: torch.Tensor, pad: bool) -> torch.Tensor:
    """Separable depthwise blur; reflect-101 padding when ``pad`` (same size), else 'valid' (shrinks by 2r)."""
    c, r = x.shape[1], (k1.numel() - 1) // 2
    if pad:
        x = F.pad(x, (r, r, r, r), mode="reflect")      # torch 'reflect' == OpenCV BORDER_REFLECT_101
    kh = k1.to(x).view(1, 1, 1, -1).expand(c, 1, 1, -1)
    kv = k1.to(x).view(1, 1, -1, 1).expand(c, 1, -1, 1)
    return F.conv2d(F.conv2d(x, kh, groups=c), kv, groups=c)


def usm_sharpen(img: torch.Tensor, *, weight: float = 0.5, threshold: float = 10.0, context: int = 0) -> torch.Tensor:
    """Real-ESRGAN's unsharp mask. img (N, C, H, W) float in [0, 1].

    ``res = img - blur(img)``, ``mask = |res| * 255 > threshold``, ``soft = blur(mask)``,
    ``out = soft * clip(img + weight * res, 0, 1) + (1 - soft) * img`` (blur: 51-tap Gaussian, sigma 8).
    context 0: reflect-101 borders, output same size. context = USM_CONTEXT: the input carries that many extra
    pixels on each side (cut from the full image, reflect-101 beyond it) and the output is the central part --
    exactly the full-image result on that crop.
    """
    if img.ndim != 4:
        raise ValueError(f"usm_sharpen: expected (N, C, H, W), got {tuple(img.shape)}")
    k1 = gaussian_kernel1d()
    if context == 0:
        res = img - _blur(img, k1, True)
        soft = _blur((res.abs() * 255 > threshold).to(img.dtype), k1, True)
        return soft * torch.clamp(img + weight * res, 0, 1) + (1 - soft) * img
    if context != USM_CONTEXT:
        raise ValueError(f"usm_sharpen: context must be 0 or {USM_CONTEXT}, got {context}")
    r = USM_RADIUS
    inner = img[..., r:-r, r:-r]
    res = inner - _blur(img, k1, False)
    soft = _blur((res.abs() * 255 > threshold).to(img.dtype), k1, False)
    core = img[..., 2 * r:-2 * r, 2 * r:-2 * r]
    return soft * torch.clamp(core + weight * res[..., r:-r, r:-r], 0, 1) + (1 - soft) * core


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (the pixel loss)."""
    return F.l1_loss(pred, target)


class PerceptualLoss(nn.Module):
    """sum_l w_l * L1(VGG_l(pred), VGG_l(target)), VGG19 features before ReLU, ImageNet-normalised input,
    frozen VGG. Inputs (N, 3, H, W) RGB [0, 1]."""

    def __init__(self, vgg: VGG19Features, layer_weights: tuple[float, ...] = (0.1, 0.1, 1.0, 1.0, 1.0)) -> None:
        super().__init__()
        if len(layer_weights) != len(PERCEPTUAL_LAYERS):
            raise ValueError(f"PerceptualLoss: need {len(PERCEPTUAL_LAYERS)} layer weights")
        self.vgg = vgg.eval()
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        self.weights = dict(zip(PERCEPTUAL_LAYERS, layer_weights))

    def train(self, mode: bool = True):  # the VGG stays in eval mode
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp = self.vgg(pred)
        with torch.no_grad():
            ft = self.vgg(target.detach())
        return sum(w * F.l1_loss(fp[n], ft[n]) for n, w in self.weights.items() if w > 0)


def gan_loss_g(fake_pred: torch.Tensor, real_pred: torch.Tensor | None, gan_type: str) -> torch.Tensor:
    """Generator's adversarial loss (unweighted). vanilla: BCE(D(fake), 1). ragan (ESRGAN):
    [BCE(D(real) - mean D(fake), 0) + BCE(D(fake) - mean D(real), 1)] / 2 with D(real) detached."""
    if gan_type == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_pred, torch.ones_like(fake_pred))
    real_pred = real_pred.detach()
    l_real = F.binary_cross_entropy_with_logits(real_pred - fake_pred.mean(), torch.zeros_like(real_pred))
    l_fake = F.binary_cross_entropy_with_logits(fake_pred - real_pred.mean(), torch.ones_like(fake_pred))
    return (l_real + l_fake) / 2


def gan_loss_d(real_pred: torch.Tensor, fake_pred: torch.Tensor, gan_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Discriminator's losses (real term, fake term); the total is their sum. ``fake_pred`` must come from a
    detached generator output. vanilla: BCE(D(real), 1), BCE(D(fake), 0). ragan: halves of
    BCE(D(real) - mean D(fake), 1) and BCE(D(fake) - mean D(real), 0), each with the other side detached."""
    if gan_type == "vanilla":
        return (F.binary_cross_entropy_with_logits(real_pred, torch.ones_like(real_pred)),
                F.binary_cross_entropy_with_logits(fake_pred, torch.zeros_like(fake_pred)))
    bce = F.binary_cross_entropy_with_logits
    l_real = 0.5 * bce(real_pred - fake_pred.detach().mean(), torch.ones_like(real_pred))
    l_fake = 0.5 * bce(fake_pred - real_pred.detach().mean(), torch.zeros_like(fake_pred))
    return l_real, l_fake


def psnr_torch(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two [0, 1] tensors (for quick logging)."""
    mse = F.mse_loss(a.float(), b.float()).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
