"""`trainer infer` with the released Real-ESRGAN generators on CPU: RealESRGAN_x4plus (23 blocks, 16.7 M params)
and RealESRGAN_x4plus_anime_6B (6 blocks, 4.5 M), whole image and tiled, on crops of scikit-image's astronaut.

    pytest benchmarks/bench_infer.py --benchmark-only --benchmark-columns=min,median,mean,rounds

The weights come from ``$DEGRADEKIT_RELEASED`` (default ``../shared/reference/released``: ``*.fp16w.pth``, float16
conv weights); they are converted to float32 (as that folder's README says) into a release-format
``{"params_ema": ...}`` file, which is loaded through ``trainer.checkpoint.load_generator`` as ``trainer infer``
does. Each case times ``trainer.infer.upscale`` (what the command runs per image; model load excluded, measured
separately). ``extra_info`` records the output's PSNR against the HR crop and against bicubic, as a check that the
output is a sensible upscale (bicubic-downscaled input, so PSNR near bicubic's is expected, not far above it).
Sizes are LR input sizes; the x4plus net costs ~36 MFLOP per LR pixel (146 GFLOP for 64x64), hence the small
images on CPU.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from trainer.checkpoint import load_generator
from trainer.infer import upscale

RELEASED = Path(os.environ.get("DEGRADEKIT_RELEASED",
                               Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "released"))
ROUNDS = int(os.environ.get("BENCH_INFER_ROUNDS", "3"))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """{name: float32 release-format weight file} (skipped, with the reason, when the folder is missing)."""
    out = {}
    d = tmp_path_factory.mktemp("released")
    for name in ("RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B"):
        src = RELEASED / f"{name}.fp16w.pth"
        if not src.is_file():
            pytest.skip(f"{src}: released weights not found (set DEGRADEKIT_RELEASED)")
        sd = torch.load(src, map_location="cpu", weights_only=True)["params_ema"]
        torch.save({"params_ema": {k: v.float() for k, v in sd.items()}}, d / f"{name}.pth")
        out[name] = d / f"{name}.pth"
    return out


def _pair(lr_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(HR 4s x 4s, LR s x s): an astronaut crop around the face, LR by area downscaling."""
    import skimage.data
    img = skimage.data.astronaut()
    hr_size = 4 * lr_size
    c = min(hr_size, 512)                              # the photo is 512x512: larger HRs are upsampled crops
    y0, x0 = min(20, 512 - c), min(130, 512 - c)
    hr = img[y0:y0 + c, x0:x0 + c]
    hr = cv2.resize(hr, (hr_size, hr_size), interpolation=cv2.INTER_CUBIC) if c != hr_size else hr
    lr = cv2.resize(hr, (lr_size, lr_size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(hr), np.ascontiguousarray(lr)


def _psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


CASES = [("RealESRGAN_x4plus", 64, 0), ("RealESRGAN_x4plus", 128, 0), ("RealESRGAN_x4plus", 128, 64),
         ("RealESRGAN_x4plus_anime_6B", 64, 0), ("RealESRGAN_x4plus_anime_6B", 128, 0),
         ("RealESRGAN_x4plus_anime_6B", 256, 0), ("RealESRGAN_x4plus_anime_6B", 256, 128)]


@pytest.mark.parametrize(("name", "size", "tile"), CASES, ids=[f"{n[11:]}-{s}-tile{t}" for n, s, t in CASES])
def test_upscale_released(benchmark, released, name, size, tile):
    net, cfg = load_generator(released[name])
    hr, lr = _pair(size)
    kw = {"scale": cfg["scale"], "tile": tile, "tile_overlap": 16, "tile_pad": 10}   # inference_realesrgan.py pads
    out = benchmark.pedantic(upscale, args=(net, lr), kwargs=kw, rounds=ROUNDS, iterations=1)
    assert out.shape == hr.shape and out.dtype == np.uint8
    bic = np.clip(cv2.resize(lr.astype(np.float32), hr.shape[1::-1], interpolation=cv2.INTER_CUBIC), 0, 255)
    benchmark.group = f"infer-{name[11:]}-{size}px"
    benchmark.extra_info.update(
        lr=f"{size}x{size}", out=f"{hr.shape[1]}x{hr.shape[0]}", tile=tile, threads=torch.get_num_threads(),
        psnr_vs_hr=round(_psnr(out, hr), 2), psnr_bicubic_vs_hr=round(_psnr(bic, hr), 2),
        psnr_vs_bicubic=round(_psnr(out, bic), 2))
    # a sensible upscale of the same picture (a wrong key mapping or dtype gives noise: PSNR < 15 dB)
    assert _psnr(out, bic) > 18


@pytest.mark.parametrize("name", ["RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B"])
def test_load_generator_released(benchmark, released, name):
    net, cfg = benchmark.pedantic(load_generator, args=(released[name],), rounds=ROUNDS, iterations=1)
    assert cfg["num_block"] == (23 if name == "RealESRGAN_x4plus" else 6)
    benchmark.group = "infer-load"
