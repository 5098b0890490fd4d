"""Still-image codec ops (JPEG subsampling, WebP, AVIF, JPEG 2000): each byte-equal to a plain encode/decode with
the library itself, deterministic (also in a fresh process), and a real, quality-dependent degradation."""

import hashlib
import io
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from degradekit.ops import codec_info
from degradekit.ops.avif import avif
from degradekit.ops.jpeg import jpeg
from degradekit.ops.jpeg2000 import jpeg2000
from degradekit.ops.webp import webp


@pytest.fixture(scope="module")
def img():
    return (data.astronaut()[100:196, 150:262] / 255).astype(np.float32)  # 96x112


def q8(img):
    return np.rint(np.clip(img, 0, 1) * np.float32(255)).astype(np.uint8)


def as_u8(out):
    u = np.rint(out * 255).astype(np.uint8)
    np.testing.assert_array_equal(out, u.astype(np.float32) / np.float32(255))  # exactly decode / 255
    return u


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2))


def ycbcr(img):
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    return img.astype(np.float64) @ m.T


def color_blocks(n=64, block=3, seed=0):
    """float32 n x n x 3: random colours in block x block squares."""
    rng = np.random.default_rng(seed)
    k = -(-n // block)
    return np.kron(rng.random((k, k, 3)), np.ones((block, block, 1))).astype(np.float32)[:n, :n]


def pil_plain(img, fmt, **opts):
    buf = io.BytesIO()
    Image.fromarray(q8(img)).save(buf, fmt, **opts)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), buf.getvalue()


# ------------------------------------------------------------------------------------------------ jpeg

CV_FACTOR = {"444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444, "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
             "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "440": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440}
LUMA_HV = {"444": 0x11, "422": 0x21, "420": 0x22, "440": 0x12}  # SOF0 H<<4|V of the Y component


def cv_jpeg(img, q, sub):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(q8(img)[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, q, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, CV_FACTOR[sub]])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1], buf.tobytes()


@pytest.mark.parametrize("sub", ["444", "422", "420", "440"])
def test_jpeg_subsampling_byte_equal_to_opencv(img, sub):
    dec, stream = cv_jpeg(img, 60, sub)
    sof = stream.index(b"\xff\xc0")
    assert stream[sof + 11] == LUMA_HV[sub]  # the plain encode really used this sampling
    np.testing.assert_array_equal(as_u8(jpeg(img, 60, sub)), dec)


def test_jpeg_default_is_420_and_subsamplings_differ(img):
    np.testing.assert_array_equal(jpeg(img, 60), jpeg(img, 60, "420"))
    outs = {s: jpeg(img, 60, s) for s in ("444", "422", "420", "440")}
    keys = list(outs)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not np.array_equal(outs[a], outs[b]), (a, b)
    # chroma subsampling loses chroma, not luma (quality 95, random colours in 3x3 blocks: chroma edges
    # that the 2x2 chroma grid cannot follow); 4:2:2 / 4:4:0 lose about half of what 4:2:0 loses
    x = color_blocks()
    y = ycbcr(x)
    err = {s: np.abs(ycbcr(jpeg(x, 95, s)) - y).mean(axis=(0, 1)) for s in ("444", "422", "440", "420")}
    assert err["420"][1:].min() > 5 * err["444"][1:].max()
    assert err["422"][1:].min() > 3 * err["444"][1:].max() and err["440"][1:].min() > 3 * err["444"][1:].max()
    assert err["420"][1:].min() > 1.2 * max(err["422"][1:].max(), err["440"][1:].max())
    assert max(e[0] for e in err.values()) < 1.1 * err["444"][0]


@pytest.mark.parametrize("sub", ["411", "4:2:0", 420, ""])
def test_jpeg_bad_subsampling(sub):
    with pytest.raises(ValueError, match="subsampling") as e:
        jpeg(np.zeros((8, 8, 3), np.float32), 50, sub)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------ webp / avif / j2k

def test_webp_byte_equal_to_pillow(img):
    for q in (5, 50, 90):
        dec, _ = pil_plain(img, "WEBP", quality=q, method=4)
        np.testing.assert_array_equal(as_u8(webp(img, q)), dec)


def test_avif_byte_equal_to_pillow(img):
    for q, s in ((20, 8), (60, 6), (90, 10)):
        dec, stream = pil_plain(img, "AVIF", quality=q, speed=s, codec="aom", max_threads=1)
        assert stream[4:12] == b"ftypavif"  # a real .avif file (HEIF brand), not a bare AV1 stream
        np.testing.assert_array_equal(as_u8(avif(img, q, s)), dec)


def test_jpeg2000_byte_equal_to_pillow(img):
    for rate in (1, 8.5, 60):
        dec, stream = pil_plain(img, "JPEG2000", no_jp2=True, quality_mode="rates", quality_layers=[rate],
                                irreversible=True, mct=1)
        assert stream[:4] == b"\xff\x4f\xff\x51"  # J2K codestream: SOC, SIZ
        np.testing.assert_array_equal(as_u8(jpeg2000(img, rate)), dec)


def test_quality_drops_psnr(img):
    assert psnr(webp(img, 10), img) + 3 < psnr(webp(img, 50), img) < psnr(webp(img, 95), img) - 3
    assert psnr(avif(img, 10, 8), img) + 3 < psnr(avif(img, 50, 8), img) < psnr(avif(img, 95, 8), img) - 3
    assert psnr(jpeg2000(img, 100), img) + 3 < psnr(jpeg2000(img, 10), img) < psnr(jpeg2000(img, 2), img) - 3
    assert psnr(jpeg2000(img, 1), img) > 45  # no truncation: only the 9/7 wavelet's rounding
    # AVIF speed is a real encoder setting: other bytes, about the same quality
    a, b = avif(img, 50, 2), avif(img, 50, 10)
    assert not np.array_equal(a, b) and abs(psnr(a, img) - psnr(b, img)) < 2


def test_jpeg2000_rate_controls_the_stream_size(img):
    raw = img.size  # bytes of the 8-bit image
    for rate in (4, 16, 64):
        _, stream = pil_plain(img, "JPEG2000", no_jp2=True, quality_mode="rates", quality_layers=[rate],
                              irreversible=True, mct=1)
        assert len(stream) <= raw / rate * 1.15 + 200  # header overhead on a small image


def test_out_of_range_input_is_clipped(img):
    wild = img * 1.6 - 0.3
    for f in (lambda x: webp(x, 70), lambda x: avif(x, 70, 9), lambda x: jpeg2000(x, 10)):
        np.testing.assert_array_equal(f(wild), f(np.clip(wild, 0, 1)))


def test_tiny_and_odd_sizes():
    rng = np.random.default_rng(3)
    for shape in ((1, 1, 3), (3, 17, 3), (9, 2, 3)):
        x = rng.random(shape, dtype=np.float32)
        for out in (webp(x, 80), avif(x, 80, 9), jpeg2000(x, 4), jpeg(x, 80, "444"), jpeg(x, 80, "440")):
            assert out.shape == shape and out.dtype == np.float32
            assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("call, match", [
    (lambda x: webp(x, 0), "quality"), (lambda x: webp(x, 101), "quality"), (lambda x: webp(x, 50.0), "quality"),
    (lambda x: avif(x, -1, 5), "quality"), (lambda x: avif(x, 50, 11), "speed"), (lambda x: avif(x, 50, True), "speed"),
    (lambda x: jpeg2000(x, 0.5), "rate"), (lambda x: jpeg2000(x, float("nan")), "rate"),
    (lambda x: jpeg2000(x, "10"), "rate"), (lambda x: webp(x.astype(np.float64), 50), "dtype"),
])
def test_bad_arguments_one_line(call, match):
    with pytest.raises((TypeError, ValueError), match=match) as e:
        call(np.zeros((8, 8, 3), np.float32))
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------ determinism

DIGEST_SCRIPT = r"""
import hashlib, json, sys
import numpy as np
from degradekit.ops.avif import avif
from degradekit.ops.jpeg import jpeg
from degradekit.ops.jpeg2000 import jpeg2000
from degradekit.ops.webp import webp
calls = {"jpeg444": lambda x: jpeg(x, 40, "444"), "jpeg422": lambda x: jpeg(x, 40, "422"),
         "webp": lambda x: webp(x, 40), "avif": lambda x: avif(x, 40, 6), "jpeg2000": lambda x: jpeg2000(x, 12.5)}
kinds = json.loads(sys.argv[1])
if kinds.get("video"):
    from degradekit.ops.video import video
    for c, fmt, q, p in kinds["video"]:
        calls[f"{c}-{fmt}"] = (lambda c, fmt, q, p: lambda x: video(x, c, q, p, fmt))(c, fmt, q, p)
x = np.random.default_rng(7).random((37, 50, 3), dtype=np.float32)
x = (x + np.roll(x, 1, 0) + np.roll(x, 1, 1)) / 3  # some spatial correlation
print(json.dumps({k: hashlib.sha256(f(x).tobytes()).hexdigest() for k, f in calls.items()}))
"""

# one (codec, pix_fmt, quality, preset) per video codec: the cross-process check covers them too
VIDEO_DIGEST = [("h264", "yuv420p", 30, "medium"), ("hevc", "yuv444p10le", 30, "fast"), ("mpeg2", "yuv420p", 6, ""),
                ("mpeg4", "yuv420p", 6, ""), ("vp9", "yuv420p", 40, "good"), ("av1", "yuv420p10le", 40, "10")]


def digests(in_process: bool, video_kinds):
    arg = json.dumps({"video": video_kinds})
    if not in_process:
        out = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT, arg], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    ns = {}
    old = sys.argv
    try:
        sys.argv = ["x", arg]
        buf = io.StringIO()
        from contextlib import redirect_stdout

        with redirect_stdout(buf):
            exec(compile(DIGEST_SCRIPT, "digest", "exec"), ns)
    finally:
        sys.argv = old
    return json.loads(buf.getvalue())


def test_same_bytes_across_runs_and_processes():
    avail = codec_info.available()
    video_kinds = [k for k in VIDEO_DIGEST if avail[k[0]]]
    here = digests(True, video_kinds)
    assert here == digests(True, video_kinds)
    there = digests(False, video_kinds)
    assert there == here
    assert len(set(here.values())) == len(here)  # every kind really produced its own output
