"""KernelGAN: time per image and accuracy on photos blurred with a known kernel (docs/performance.md, "KernelGAN and pools").

Case: a scikit-image photo (HR) blurred with a 13x13 anisotropic Gaussian (sigma 2.0 / 0.8 px at 35 degrees)
and decimated x2 or x4 on the pixel-centre grid (the realsr pipeline's own blur + decimation). KernelGAN runs
on that LR; the estimated kernel (x4: composed from the x2 estimate) re-degrades the HR, and the PSNR against
the true LR is compared with an antialiased bicubic downscale of the HR (the no-estimation baseline).
Two kernels per run: KernelGAN's own ("kernelgan", the original method) and the pool's default, that kernel
warped to the photo's spectral blur covariance ("spectral", see degradekit.pool.spectral).
Shape: width ratio (estimated / true sigma_major), elongation (sigma_major / sigma_minor; true 2.5), angle error.
x4 cases: "scaled" blurs with sigma 4.0/1.6 (25x25, the x2 blur in LR pixels), "same" with the x2 kernel.

    pytest benchmarks/bench_kernelgan.py --benchmark-only --benchmark-columns=min,median,rounds
    python benchmarks/bench_kernelgan.py [--threads 1] [--seeds 2] [--images astronaut,coffee,chelsea]
"""
from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest

from degradekit.kernels import gaussian_kernel
from degradekit.pool import kernelgan as kg
from degradekit.pool.spectral import shape_kernels
from degradekit.pool.realsr import decimation_kernel

TRUE = dict(sigma_x=2.0, sigma_y=0.8, theta_deg=35.0, size=13)
IMAGES = ("astronaut", "coffee", "chelsea")


def true_kernel(scaled_to: int = 2) -> np.ndarray:
    """The 13x13 sigma 2.0/0.8 kernel; scaled_to=4: the same blur in LR pixels at x4 (sigma 4.0/1.6, 25x25)."""
    f = scaled_to // 2
    return gaussian_kernel(TRUE["size"] * f - (f - 1), TRUE["sigma_x"] * f, TRUE["sigma_y"] * f,
                           math.radians(TRUE["theta_deg"]))


def degrade(hr_u8: np.ndarray, k: np.ndarray, s: int) -> np.ndarray:
    """float32 LR: correlate with the (s-1)/2-shifted centred kernel, keep every s-th pixel (no rounding)."""
    kd = decimation_kernel(k, s).astype(np.float32)
    f = cv2.filter2D(hr_u8.astype(np.float32) / 255, -1, kd, borderType=cv2.BORDER_REFLECT_101)
    return f[::s, ::s]


def bicubic_kernel(s: int) -> np.ndarray:
    """Antialiased bicubic (Keys a = -0.5) x s downscale as a 2-D kernel on the pixel-centre grid, odd size,
    anchored so that `correlate + [::s]` equals MATLAB-style imresize for interior pixels."""
    n = 6 * s + 1  # odd; covers the support 4s plus the (s-1)/2 shift
    c = (n - 1) // 2
    t = (np.arange(n) - c - (s - 1) / 2) / s
    at = np.abs(t)
    w = np.where(at <= 1, 1.5 * at**3 - 2.5 * at**2 + 1, np.where(at < 2, -0.5 * at**3 + 2.5 * at**2 - 4 * at + 2, 0))
    w /= w.sum()
    return np.outer(w, w)


def psnr(a: np.ndarray, b: np.ndarray, shave: int = 8) -> float:
    a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return 10 * math.log10(1.0 / float(np.mean((a.astype(np.float64) - b) ** 2)))


def run_case(name: str, scale: int, seed: int, cfg: kg.KernelGANConfig = kg.KernelGANConfig(),
             scaled: bool = False) -> dict:
    """One KernelGAN run on `name` degraded x`scale` with the true kernel (scaled: sigma x scale/2)."""
    from skimage import data

    hr = getattr(data, name)()
    kt = true_kernel(scale if scaled else 2)
    lr = degrade(hr, kt, scale)
    lr8 = np.clip(np.rint(lr * 255), 0, 255).astype(np.uint8)
    t0, c0 = time.perf_counter(), time.process_time()
    est = kg.estimate_kernel(lr8, seed=seed, cfg=cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    c0 = time.process_time()
    s2, s4, rec = shape_kernels(lr8, est.kernel)
    shape_cpu = time.process_time() - c0
    b = cv2.filter2D(hr.astype(np.float32) / 255, -1, bicubic_kernel(scale).astype(np.float32),
                     borderType=cv2.BORDER_REFLECT_101)[::scale, ::scale]
    p_bic = psnr(b, lr)
    mt = kg.kernel_moments(kt)
    res = dict(image=name, scale=scale, seed=seed, scaled=scaled, iters=est.iters, wall_s=wall, cpu_s=cpu,
               shape_cpu_s=shape_cpu, shape_method=rec["method"], psnr_bicubic=p_bic)
    kernels = {"kernelgan": est.kernel if scale == 2 else kg.kernel_x4_from_x2(est.kernel),
               "spectral": s2 if scale == 2 else s4}
    for tag, k in kernels.items():
        p = psnr(degrade(hr, k, scale), lr)
        m = kg.kernel_moments(k)
        dth = abs(m["theta"] - mt["theta"]) % 180
        res.update({f"{tag}_psnr": p, f"{tag}_gain_db": p - p_bic, f"{tag}_width_ratio": m["sigma_major"] / mt["sigma_major"],
                    f"{tag}_elongation": m["sigma_major"] / max(m["sigma_minor"], 1e-9),
                    f"{tag}_angle_err": min(dth, 180 - dth)})
    return res


# ----------------------------------------------------------------------------------------- pytest-benchmark
CASES = ([(name, 2, False, 1) for name in IMAGES] + [(name, 4, True, 1) for name in IMAGES]
         + [(name, 4, False, 1) for name in IMAGES] + [("astronaut", 2, False, 2)])


@pytest.mark.parametrize("name,scale,scaled,threads", CASES)
def test_kernelgan_per_image(benchmark, name, scale, scaled, threads):
    """One KernelGAN estimate (about 10 CPU s); accuracy figures go to extra_info (the script prints a table)."""
    import torch

    torch.set_num_threads(threads)
    benchmark.group = (f"KernelGAN per image x{scale}{' scaled blur' if scaled else ' same blur' * (scale == 4)} "
                       f"({threads} thread{'s' * (threads > 1)})")
    res = benchmark.pedantic(lambda: run_case(name, scale, seed=0, scaled=scaled), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert np.isfinite(res["spectral_psnr"]) and np.isfinite(res["kernelgan_psnr"])


@pytest.mark.parametrize("role", ["ours", "baseline"])
def test_generator_forward_backward(benchmark, role):
    """Collapsed 13x13 stride-2 convolution (ours) vs the six layers (the original), forward + backward."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    g, _ = kg._build_nets(kg.KernelGANConfig(), "cpu")
    x = torch.randn(3, 1, 64, 64)
    f = (lambda: g(x).square().mean().backward()) if role == "ours" else \
        (lambda: g.forward_layers(x).square().mean().backward())
    for _ in range(3):
        f()
    benchmark.group = "KernelGAN generator fwd+bwd (64x64 crop, RGB as 3)"
    benchmark.pedantic(f, rounds=50, iterations=1)


# ---------------------------------------------------------------------------------------- oracle / robustness
def oracle(name: str) -> str:
    """x4 same-blur case: the gain of the best *round* Gaussian (what a width-only estimate can reach) and of
    kernels with the true angle and growing elongation (geometric-mean width 1.26 px)."""
    from skimage import data

    hr = getattr(data, name)()
    lr = degrade(hr, true_kernel(2), 4)
    bic = cv2.filter2D(hr.astype(np.float32) / 255, -1, bicubic_kernel(4).astype(np.float32),
                       borderType=cv2.BORDER_REFLECT_101)[::4, ::4]
    pb = psnr(bic, lr)
    iso = {sg: psnr(degrade(hr, gaussian_kernel(25, sg, sg, 0.0), 4), lr) - pb for sg in np.arange(0.8, 3.01, 0.2)}
    best = max(iso, key=iso.get)
    el = {e: psnr(degrade(hr, gaussian_kernel(25, 1.26 * math.sqrt(e), 1.26 / math.sqrt(e), math.radians(35)), 4),
                  lr) - pb for e in (1.25, 1.6, 2.0)}
    return (f"{name}: best round sigma {best:.1f} px {iso[best]:+.2f} dB; true angle, elongation "
            + ", ".join(f"{e}: {g:+.2f} dB" for e, g in el.items()))


def robustness(name: str, scale: int) -> str:
    """Spectral fit (width ratio major/minor, angle) on the benchmark LR with noise and/or JPEG added."""
    from degradekit.pool.spectral import spectral_blur
    from skimage import data

    hr = getattr(data, name)()
    f = scale // 2
    lr = degrade(hr, true_kernel(scale), scale) * 255
    out = []
    for tag, sd, q in (("clean", 0, 0), ("noise 2", 2, 0), ("noise 5", 5, 0), ("jpeg 90", 0, 90),
                       ("jpeg 75", 0, 75), ("noise 3 + jpeg 85", 3, 85)):
        x = lr + np.random.default_rng(0).normal(0, sd, lr.shape) if sd else lr
        x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        if q:
            x = cv2.imdecode(cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)
        e = spectral_blur(x, scale)
        out.append(f"{tag}: {e.sigma_major / (2.0 * f):.2f}/{e.sigma_minor / (0.8 * f):.2f} at {e.theta:.0f} deg"
                   + ("" if e.reliable else " (unreliable)"))
    return f"{name} x{scale}: " + " | ".join(out)


# --------------------------------------------------------------------------------------------------- script
def main(argv=None) -> None:
    import argparse
    import os

    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--scales", default="2,4")
    ap.add_argument("--images", default=",".join(IMAGES))
    ap.add_argument("--x4", default="scaled,same", help="x4 cases: scaled (sigma 4.0/1.6), same (sigma 2.0/0.8)")
    ap.add_argument("--oracle", action="store_true", help="only the x4 same-blur oracle and the spectral fit's "
                    "noise/JPEG robustness (no KernelGAN run)")
    a = ap.parse_args(argv)
    if a.oracle:
        for name in a.images.split(","):
            print(oracle(name))
        for name in a.images.split(","):
            for s in (2, 4):
                print(robustness(name, s))
        return
    torch.set_num_threads(a.threads)
    print(f"threads {a.threads}; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    cases = []
    for s in [int(x) for x in a.scales.split(",")]:
        cases += [(2, False)] if s == 2 else [(4, c == "scaled") for c in a.x4.split(",")]
    rows = []
    for s, scaled in cases:
        for name in a.images.split(","):
            for seed in range(a.seeds):
                r = run_case(name, s, seed, scaled=scaled)
                rows.append(r)
                line = (f"x{s}{' scaled' if scaled else ' same  ' if s == 4 else '       '} {name:10s} seed {seed}: "
                        f"{r['iters']:4d} it {r['wall_s']:5.1f} s wall {r['cpu_s']:5.1f} s cpu, shape "
                        f"{r['shape_cpu_s'] * 1000:4.0f} ms | bicubic {r['psnr_bicubic']:.2f} dB")
                for tag in ("kernelgan", "spectral"):
                    line += (f" | {tag} {r[tag + '_gain_db']:+6.2f} dB width {r[tag + '_width_ratio']:.2f} "
                             f"elong {r[tag + '_elongation']:.2f} angle err {r[tag + '_angle_err']:3.0f}")
                print(line, flush=True)
    keys = ["wall_s", "cpu_s", "iters"] + [f"{t}_{k}" for t in ("kernelgan", "spectral")
                                           for k in ("gain_db", "width_ratio", "elongation", "angle_err")]
    for s, scaled in dict.fromkeys(cases):
        sub = [r for r in rows if r["scale"] == s and r["scaled"] == scaled]
        med = {k: float(np.median([r[k] for r in sub])) for k in keys}
        mn = {k: float(np.min([r[k] for r in sub])) for k in ("kernelgan_gain_db", "spectral_gain_db")}
        print(f"x{s}{' scaled' if scaled else ' same' if s == 4 else ''} medians over {len(sub)} runs: "
              + ", ".join(f"{k} {v:.2f}" for k, v in med.items())
              + f"; worst gain kernelgan {mn['kernelgan_gain_db']:+.2f} spectral {mn['spectral_gain_db']:+.2f}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
