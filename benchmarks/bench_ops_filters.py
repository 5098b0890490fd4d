"""Issue-11 filter ops (one core) next to the library primitive doing the same work, at 100x100 and 400x400 RGB.

Each group has an ``ours`` and a ``baseline`` entry (conftest prints the median ratio); ``ours`` also times both
alternately and records the interleaved medians, which are robust to the load changes of a shared machine.
Baselines are the fastest single library call(s) doing the same arithmetic, with their inputs prepared outside
the timing (Pillow gets three ready mode-"F" images; NumPy baselines skip our checks and fusion):

    taskset -c 0 pytest benchmarks/bench_ops_filters.py --benchmark-only \
        --benchmark-columns=min,median,rounds
"""

from __future__ import annotations


import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image

from _interleave import record_interleaved

from degradekit.ops.banding import band
from degradekit.ops.blur import blur
from degradekit.ops.blur_kernels import box_kernel, disk_kernel, motion_kernel
from degradekit.ops.color import color_jitter
from degradekit.ops.dither import bayer_matrix, dither
from degradekit.ops.halo import gaussian_taps, oversharpen
from degradekit.ops.median import median_blur
from degradekit.ops.noise_kinds import add_gaussian_noise_space, add_salt_pepper, add_speckle_noise, add_uniform_noise
from degradekit.ops.resample import resample

N_INTERLEAVED = 15
BORDER = cv2.BORDER_REFLECT_101
PIL_FILTERS = {"box": Image.BOX, "bilinear": Image.BILINEAR, "hamming": Image.HAMMING,
               "bicubic_a50": Image.BICUBIC, "lanczos3": Image.LANCZOS}


@pytest.fixture(scope="module")
def images(img400):
    return {400: img400, 100: cv2.resize(img400, (100, 100), interpolation=cv2.INTER_AREA)}


def _pil_channels(img):
    return [Image.fromarray(np.ascontiguousarray(img[..., c]), "F") for c in range(3)]


def case_table(img):
    """name -> (ours, baseline) zero-argument callables for one input image."""
    h, w, _ = img.shape
    small = (int(h * 0.6), int(w * 0.6))
    big = (int(h * 1.5), int(w * 1.5))
    chans = _pil_channels(img)
    u8 = [Image.fromarray((img[..., c] * 255).astype(np.uint8), "L") for c in range(3)]
    t = {}
    for f, pf in PIL_FILTERS.items():
        t[f"resample aa {f} x0.6"] = (lambda f=f: resample(img, small, f, True),
                                      lambda pf=pf: [c.resize(small[::-1], pf) for c in chans])
    t["resample aa lanczos3 x1.5"] = (lambda: resample(img, big, "lanczos3", True),
                                      lambda: [c.resize(big[::-1], Image.LANCZOS) for c in chans])
    for f in ("mitchell", "catmull_rom", "hamming"):  # 2-4 taps, no cv2 flag: vs INTER_CUBIC (4 taps)
        for tag, size in (("x0.6", small), ("x1.5", big)):
            t[f"resample {f} {tag}"] = (lambda f=f, size=size: resample(img, size, f, False),
                                        lambda size=size: cv2.resize(img, size[::-1], interpolation=cv2.INTER_CUBIC))
    t["resample lanczos3 x0.6"] = (lambda: resample(img, small, "lanczos3", False),  # 6 taps vs 8
                                   lambda: cv2.resize(img, small[::-1], interpolation=cv2.INTER_LANCZOS4))
    t["resample nearest x0.6"] = (lambda: resample(img, small, "nearest", False),
                                  lambda: cv2.resize(img, small[::-1], interpolation=cv2.INTER_NEAREST_EXACT))
    # Blur kinds: the kernel is built inside ours; the baseline filters with the prebuilt kernel.
    for name, build in (("box 4.5", lambda: box_kernel(4.5)), ("disk r3.5", lambda: disk_kernel(3.5)),
                        ("motion 9 30deg", lambda: motion_kernel(9.0, 30.0))):
        k32 = build().astype(np.float32)
        t[f"blur {name}"] = (lambda build=build: blur(img, build()),
                             lambda k32=k32: cv2.filter2D(img, -1, k32, borderType=BORDER))
    for k in (3, 5):
        t[f"median {k}"] = (lambda k=k: median_blur(img, k), lambda k=k: cv2.medianBlur(img, k))
    t["median 7"] = (lambda: median_blur(img, 7), lambda: ndi.median_filter(img, size=(7, 7, 1), mode="mirror"))
    a = np.float32(20 / 255)
    t["noise uniform rgb"] = (
        lambda: add_uniform_noise(img, 20.0, "rgb", 1),
        lambda: np.clip(img + np.random.default_rng(1).uniform(-a, a, img.shape).astype(np.float32), 0, 1))
    t["noise gaussian luma"] = (  # luma = the same field on the three channels
        lambda: add_gaussian_noise_space(img, 10.0, "luma", 1),
        lambda: np.clip(img + (np.random.default_rng(1).standard_normal((h, w, 1), np.float32) * a), 0, 1))
    t["noise gaussian chroma"] = (
        lambda: add_gaussian_noise_space(img, 10.0, "chroma", 1),
        lambda: np.clip(img + (np.random.default_rng(1).standard_normal((h, w, 2), np.float32) * a)
                        @ np.array([[0, -0.344136, 1.772], [1.402, -0.714136, 0]], np.float32), 0, 1))
    t["noise speckle rgb"] = (
        lambda: add_speckle_noise(img, 10.0, "rgb", 1),
        lambda: np.clip(img + img * (np.random.default_rng(1).standard_normal(img.shape, np.float32) * a), 0, 1))
    t["noise salt pepper gray"] = (
        lambda: add_salt_pepper(img, 0.05, 0.5, True, 1),
        lambda: (lambda u: np.where(u < 0.025, 1.0, np.where(u < 0.05, 0.0, img)).astype(np.float32))(
            np.random.default_rng(1).random((h, w, 1), np.float32)))
    g = gaussian_taps(1.5)
    t["oversharpen r1.5"] = (  # baseline: the unthresholded unsharp mask in OpenCV calls
        lambda: oversharpen(img, 1.0, 1.5, 4.0),
        lambda: np.clip(cv2.addWeighted(img, 2.0, cv2.sepFilter2D(img, -1, g, g, borderType=BORDER), -1.0, 0), 0, 1))
    t["band 4 bits"] = (lambda: band(img, 4), lambda: np.rint(np.clip(img, 0, 1) * np.float32(15)) / np.float32(15))
    thr = np.tile((bayer_matrix(8) + 0.5) / 64, (h // 8 + 1, w // 8 + 1))[:h, :w, None].astype(np.float32)
    t["dither bayer8 4 levels"] = (
        lambda: dither(img, 4, "bayer8"),
        lambda: np.minimum(np.floor(np.clip(img, 0, 1) * np.float32(3) + thr), 3) / np.float32(3))
    t["dither floyd_steinberg 2 levels"] = (  # Pillow's C Floyd-Steinberg to 1 bit, per 8-bit channel
        lambda: dither(img, 2, "floyd_steinberg"), lambda: [c.convert("1") for c in u8])
    t["color_jitter"] = (lambda: color_jitter(img, 0.05, 1.1, 0.8, 0.9), lambda: _numpy_jitter(img))
    return t


def _numpy_jitter(img):
    """The color_jitter formula as plain float32 NumPy (brightness 0.05, contrast 1.1, saturation 0.8, gamma 0.9)."""
    a = img * np.float32(1.1) + np.float32(0.5 * (1 - 1.1) + 0.05)
    y = a @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(a * np.float32(0.8) + y[..., None] * np.float32(0.2), 0, 1) ** np.float32(0.9)
CASES = list(case_table(np.zeros((8, 8, 3), np.float32)))
SLOW = {"median 7": 3}  # SciPy's median filter takes ~0.5 s at 400x400


@pytest.mark.parametrize("role", ["ours", "baseline"])
@pytest.mark.parametrize("size", [100, 400])
@pytest.mark.parametrize("case", CASES)
def test_filter_op(benchmark, images, case, size, role):
    ours, baseline = case_table(images[size])[case]
    ours(), baseline()  # compile / warm
    benchmark.group = f"{case} @{size}"
    if role == "ours" and not benchmark.disabled:
        n = 3 if case in SLOW and size == 400 else N_INTERLEAVED
        record_interleaved(benchmark, ours, baseline, n)
    fn = ours if role == "ours" else baseline
    rounds = SLOW.get(case, 30) if size == 400 else 30
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
