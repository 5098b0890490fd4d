"""Side by side with pepedd (the wtp_dataset_destroyer engine) on a chain of resize filters and codecs.

Two chains, on the same four 400x400 photos in both tools, one core:
  lanczos-webp-h264: Lanczos-3 antialiased downscale x4 (400 -> 100) -> WebP quality in [40, 100) -> H.264 crf
  in [23, 32), preset medium, 4:2:0;  bicubic-webp: Catmull-Rom (bicubic a = -0.5) antialiased x4 -> WebP.
degradekit: ``ops.resample.resample(img, (100, 100), filter, True)``, ``ops.webp.webp``, ``ops.video.video``.
pepedd: its own nodes through their ``__call__`` (as its pipeline runs them) -- ``resize`` (``c_lanczos3`` /
``c_catmullrom``: fast_image_resize's convolution, LQ only), ``compress`` webp (OpenCV) and ``compress`` h264
(two ``ffmpeg`` processes per image; tune film, the nearest pepedd has to x264's default, decoder scaling
bicubic). Qualities
are drawn per image from the same ranges (pepedd's ``integers(lo, hi)``: hi excluded) by each tool's RNG.

pepedd pins other versions of numpy/OpenCV, so it lives in its own virtual environment and runs in a worker
process of that Python; the benchmark times one chain per request (the pipe round trip, ~0.1 ms, is
included; the worker's own timing is recorded too). Set it up once (not part of CI):

    python -m venv /tmp/pepedd-venv && /tmp/pepedd-venv/bin/pip install 'pepedd[nodes]' imageio-ffmpeg
    taskset -c 0 pytest benchmarks/bench_pepedd.py --benchmark-only --benchmark-columns=min,median,rounds

``PEPEDD_PYTHON`` names another interpreter. Without it the benchmark skips with that message. pepedd calls
an ``ffmpeg`` binary: the one on PATH, else imageio-ffmpeg's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

PEPEDD_PYTHON = os.environ.get("PEPEDD_PYTHON", "/tmp/pepedd-venv/bin/python")
SETUP = ("python -m venv /tmp/pepedd-venv && /tmp/pepedd-venv/bin/pip install 'pepedd[nodes]' imageio-ffmpeg "
         "(or set PEPEDD_PYTHON)")
N_INTERLEAVED = 31
ROUNDS = 60

WORKER = r"""
import json, os, shutil, sys, tempfile, time
import numpy as np
if shutil.which("ffmpeg") is None:
    import imageio_ffmpeg
    d = tempfile.mkdtemp(prefix="pepedd-ffmpeg-")
    os.symlink(imageio_ffmpeg.get_ffmpeg_exe(), os.path.join(d, "ffmpeg"))
    os.environ["PATH"] = d + os.pathsep + os.environ["PATH"]
import pepedd.nodes  # registers the nodes
from pepedd.core.node_register import registered_classes as R
from pepedd.core.objects.lq_hq_state import LQHQState
from pepedd.core.objects.safe_rng import SafeRNG
photos = np.load(sys.argv[1])
def resize(alg):
    return R["resize"]({"alg_lq": [alg], "alg_hq": ["nearest"], "olq": True, "spread": [1], "scale": 4,
                        "divider": 1})
WEBP = R["compress"]({"algorithm": ["webp"], "target_compress": {"webp": [40, 100]}})
H264 = R["compress"]({"algorithm": ["h264"], "target_compress": {"h264": [23, 32]}, "preset": ["medium"],
                      "tune": ["film"], "ffmpeg_samplings": ["yuv420p_c"]})
CHAINS = {"lanczos-webp-h264": [resize("c_lanczos3"), WEBP, H264], "bicubic-webp": [resize("c_catmullrom"), WEBP]}
i = 0
print(json.dumps({"ready": True, "ffmpeg": shutil.which("ffmpeg")}), flush=True)
for line in sys.stdin:
    chain, n = line.split()
    nodes, n = CHAINS[chain], int(n)
    times = []
    for _ in range(n):
        img = photos[i % len(photos)]
        t0 = time.perf_counter()
        state = LQHQState(rng=SafeRNG(i), hq=img, lq=img.copy())
        for node in nodes:
            state = node(state)
        times.append(time.perf_counter() - t0)
        assert state.lq.shape == (100, 100, 3), state.lq.shape
        i += 1
    print(json.dumps({"times": times}), flush=True)
"""


def _pepedd_ok() -> bool:
    if not os.path.exists(PEPEDD_PYTHON):
        return False
    r = subprocess.run([PEPEDD_PYTHON, "-c", "import pepedd.nodes"], capture_output=True)
    return r.returncode == 0


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    out = []
    for im in (data.astronaut(), data.coffee(), data.rocket(), data.immunohistochemistry()):
        h, w = im.shape[:2]
        y, x = (h - 400) // 2, (w - 400) // 2
        out.append(np.ascontiguousarray(im[y:y + 400, x:x + 400]).astype(np.float32) / np.float32(255))
    return np.stack(out)


@pytest.fixture(scope="module")
def pepedd_worker(photos, tmp_path_factory):
    if not _pepedd_ok():
        pytest.skip(f"pepedd is not installed for {PEPEDD_PYTHON}: {SETUP}")
    path = tmp_path_factory.mktemp("pepedd") / "photos.npy"
    np.save(path, photos)
    p = subprocess.Popen([PEPEDD_PYTHON, "-c", WORKER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, bufsize=1)
    hello = json.loads(p.stdout.readline())
    assert hello["ready"], hello

    def run(chain, n=1) -> list[float]:
        p.stdin.write(f"{chain} {n}\n")
        p.stdin.flush()
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("the pepedd worker died")
        return json.loads(line)["times"]

    for chain in CHAINS:
        run(chain, 3)  # warm: imports, first ffmpeg start
    yield run
    p.stdin.close()
    p.wait(timeout=30)


CHAINS = {"lanczos-webp-h264": ("lanczos3", True), "bicubic-webp": ("catmull_rom", False)}


def _degradekit_chain(photos, chain):
    from degradekit.ops.resample import resample
    from degradekit.ops.video import video
    from degradekit.ops.webp import webp

    flt, h264 = CHAINS[chain]
    state = {"i": 0}

    def run():
        i = state["i"]
        state["i"] += 1
        rng = np.random.default_rng(i)
        img = photos[i % len(photos)]
        lr = resample(img, (100, 100), flt, True)
        lr = webp(lr, int(rng.integers(40, 100)))
        if h264:
            lr = video(lr, "h264", int(rng.integers(23, 32)), "medium", "yuv420p")
        assert lr.shape == (100, 100, 3)
        return lr

    return run


@pytest.mark.parametrize("role", ["ours", "baseline"])
@pytest.mark.parametrize("chain", list(CHAINS))
def test_chain(benchmark, photos, pepedd_worker, chain, role):
    """lanczos-webp-h264: Lanczos-3 x4 + WebP + H.264; bicubic-webp: Catmull-Rom (bicubic a = -0.5) x4 + WebP
    (no video step: pepedd's ffmpeg process start-ups do not dominate)."""
    from degradekit.ops import codec_info

    if CHAINS[chain][1]:
        codec_info.require("h264")
    ours = _degradekit_chain(photos, chain)
    theirs = lambda: pepedd_worker(chain, 1)  # noqa: E731
    for _ in range(3):
        ours()
    benchmark.group = f"chain {chain} @400->100 (baseline = pepedd)"
    if role == "ours" and not benchmark.disabled:
        a, b, inner = [], [], []
        for _ in range(N_INTERLEAVED):
            t0 = time.perf_counter()
            ours()
            t1 = time.perf_counter()
            inner += theirs()
            t2 = time.perf_counter()
            a.append(t1 - t0)
            b.append(t2 - t1)
        benchmark.extra_info["interleaved_ours_ms"] = float(np.median(a) * 1e3)
        benchmark.extra_info["interleaved_baseline_ms"] = float(np.median(b) * 1e3)
        benchmark.extra_info["pepedd_inner_ms"] = float(np.median(inner) * 1e3)
        print(f"\n{chain}: interleaved medians: degradekit {np.median(a) * 1e3:.2f} ms, pepedd {np.median(b) * 1e3:.2f} ms "
              f"(inside its worker {np.median(inner) * 1e3:.2f} ms): pepedd / degradekit = "
              f"{np.median(b) / np.median(a):.2f} ({np.median(inner) / np.median(a):.2f} without the pipe)",
              file=sys.stderr)
    benchmark.pedantic(ours if role == "ours" else theirs, rounds=ROUNDS, iterations=1)
