"""Codec ops against their bare library primitive (one core): each op at the sizes it runs at in the pipeline
(a 100x100 LR patch and a 400x400 stage-1 patch), the primitive being the same library's encode + decode with
the same settings on a ready uint8 array (no checks, no quantisation, no float conversion). Target: op within
1.5x of its primitive.

    taskset -c 0 pytest benchmarks/bench_ops_codecs.py --benchmark-only --benchmark-columns=min,median,rounds

Each group has an ``ours`` and a ``baseline`` entry; conftest prints the median ratio per group and the ratio
of the two timed alternately (``interleaved``, robust to the load changes of a shared machine).
"""

from __future__ import annotations

import io
from fractions import Fraction

import cv2
import numpy as np
import pytest
from PIL import Image

from _interleave import record_interleaved

from degradekit.ops import codec_info
from degradekit.ops.avif import avif
from degradekit.ops.jpeg import jpeg
from degradekit.ops.jpeg2000 import jpeg2000
from degradekit.ops.webp import webp

N_INTERLEAVED = 21
SIZES = (100, 400)


def _run(benchmark, role, ours, baseline, slow=False):
    fn = ours if role == "ours" else baseline
    fn()  # warm: Numba kernels, codec tables
    if role == "ours" and not benchmark.disabled:
        record_interleaved(benchmark, ours, baseline, N_INTERLEAVED if not slow else 7)
    if slow:
        return benchmark.pedantic(fn, rounds=9, iterations=1)
    return benchmark(fn)


@pytest.fixture(scope="module", params=SIZES, ids=lambda s: f"{s}")
def patch(request, img400):
    n = request.param
    f = np.ascontiguousarray(cv2.resize(img400, (n, n), interpolation=cv2.INTER_AREA)) if n != 400 else img400
    u8 = np.rint(np.clip(f, 0, 1) * 255).astype(np.uint8)
    return n, f, u8


# --------------------------------------------------------------------------------------------- still codecs

def _pil(u8, fmt, **opts):
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, fmt, **opts)
    buf.seek(0)
    return np.asarray(Image.open(buf, formats=[fmt]))


STILL = {  # name -> (op call, primitive on the uint8 RGB array)
    "jpeg q50 444": (lambda f: jpeg(f, 50, "444"),
                     lambda u: cv2.imdecode(cv2.imencode(".jpg", u[..., ::-1], [
                         cv2.IMWRITE_JPEG_QUALITY, 50, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                         cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])[1], cv2.IMREAD_COLOR)),
    "webp q50": (lambda f: webp(f, 50), lambda u: _pil(u, "WEBP", quality=50, method=4)),
    "avif q50 speed6": (lambda f: avif(f, 50, 6),
                        lambda u: _pil(u, "AVIF", quality=50, speed=6, codec="aom", max_threads=1)),
    "avif q50 speed10": (lambda f: avif(f, 50, 10),
                         lambda u: _pil(u, "AVIF", quality=50, speed=10, codec="aom", max_threads=1)),
    "jpeg2000 rate20": (lambda f: jpeg2000(f, 20),
                        lambda u: _pil(u, "JPEG2000", no_jp2=True, quality_mode="rates", quality_layers=[20],
                                       irreversible=True, mct=1)),
}


@pytest.mark.parametrize("role", ["ours", "baseline"])
@pytest.mark.parametrize("name", list(STILL))
def test_still(benchmark, patch, name, role):
    n, f, u8 = patch
    kind = name.split()[0]
    if not codec_info.available()[kind]:
        pytest.skip(f"{kind}: not available here")
    op, prim = STILL[name]
    benchmark.group = f"{name} @{n}"
    _run(benchmark, role, lambda: op(f), lambda: prim(u8), slow=name.startswith("avif q50 speed6") and n == 400)


# --------------------------------------------------------------------------------------------- video stills

VIDEO = [("h264", 30, "medium", "yuv420p"), ("h264", 30, "medium", "yuv444p10le"), ("hevc", 30, "medium", "yuv420p"),
         ("mpeg2", 6, "", "yuv420p"), ("mpeg4", 6, "", "yuv420p"), ("vp9", 40, "good", "yuv420p"),
         ("av1", 40, "8", "yuv420p"), ("av1", 40, "8", "yuv420p10le")]


def _pyav_primitive(codec, q, preset, pix_fmt):
    """Plain PyAV: rgb24 -> pix_fmt -> encode -> decode -> rgb with the same settings as the op."""
    import av
    from av.video.reformatter import Interpolation as I

    from degradekit.ops.video import VIDEO_CODECS

    info = VIDEO_CODECS[codec]
    enc_f = I.BITEXACT | I.ACCURATE_RND | I.AREA | I.FULL_CHR_H_INP
    dec_f = I.BITEXACT | I.ACCURATE_RND | I.BICUBIC | I.FULL_CHR_H_INT
    opts = {"h264": {"crf": str(q), "preset": preset},
            "hevc": {"crf": str(q), "preset": preset, "x265-params": "pools=none:frame-threads=1:log-level=error"},
            "vp9": {"crf": str(q), "b": "0", "deadline": preset, "row-mt": "0", "lag-in-frames": "0"},
            "av1": {"crf": str(q), "preset": preset, "svtav1-params": "lp=1"}}.get(codec, {})
    out = "rgb48le" if pix_fmt.endswith("10le") else "rgb24"

    def run(u8):
        h, w = u8.shape[:2]
        fr = av.VideoFrame.from_ndarray(u8, format="rgb24").reformat(
            format=pix_fmt, src_colorspace="ITU601", dst_colorspace="ITU601", interpolation=enc_f,
            src_color_range="JPEG", dst_color_range="MPEG", threads=1)
        fr.pts = 0
        c = av.CodecContext.create(info.encoder, "w")
        c.width, c.height, c.pix_fmt = w, h, pix_fmt
        c.time_base, c.framerate = Fraction(1, 25), Fraction(25)
        c.thread_count, c.gop_size, c.max_b_frames, c.bit_rate = 1, 1, 0, 0
        c.colorspace, c.color_range = 6, 1
        if info.quality_kind == "qscale":
            c.qscale = True
            c.global_quality = q * 118
            c.qmin = c.qmax = q
        c.options = opts
        pk = c.encode(fr) + c.encode(None)
        d = av.CodecContext.create(info.decoder, "r")
        d.thread_count = 1
        frames = [x for p in pk for x in d.decode(p)] + d.decode(None)
        return frames[0].reformat(format=out, src_colorspace="ITU601", dst_colorspace="ITU601",
                                  interpolation=dec_f, src_color_range="MPEG", dst_color_range="JPEG",
                                  threads=1).to_ndarray()

    return run


@pytest.mark.parametrize("role", ["ours", "baseline"])
@pytest.mark.parametrize("codec, q, preset, pix_fmt", VIDEO, ids=[f"{c}-{f}" for c, _, _, f in VIDEO])
def test_video(benchmark, patch, codec, q, preset, pix_fmt, role):
    pytest.importorskip("av", reason="PyAV (the `video` extra) is not installed")
    if not codec_info.available()[codec]:
        pytest.skip(f"{codec}: not available in this PyAV build")
    from degradekit.ops.video import video

    n, f, u8 = patch
    prim = _pyav_primitive(codec, q, preset, pix_fmt)
    benchmark.group = f"video {codec} q{q} {preset or '-'} {pix_fmt} @{n}"
    _run(benchmark, role, lambda: video(f, codec, q, preset, pix_fmt), lambda: prim(u8),
         slow=n == 400 and codec in ("hevc", "vp9", "av1"))
