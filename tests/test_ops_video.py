"""degradekit.ops.video: still frames through real video encoders (PyAV), byte-equal to a plain PyAV
encode/decode written out here, deterministic, and a real degradation (quality, chroma format, bit depth)."""

from fractions import Fraction

import numpy as np
import pytest
from skimage import data

av = pytest.importorskip("av", reason="PyAV (the `video` extra) is not installed: the video codec ops are off")

from av.video.reformatter import Interpolation as I  # noqa: E402

from degradekit.ops import codec_info, video as V  # noqa: E402
from degradekit.ops.video import VIDEO_CODECS, video  # noqa: E402

ENC = I.BITEXACT | I.ACCURATE_RND | I.AREA | I.FULL_CHR_H_INP
DEC = I.BITEXACT | I.ACCURATE_RND | I.BICUBIC | I.FULL_CHR_H_INT
PRIVATE = {  # the documented encoder settings, spelled out independently of the module
    "h264": lambda q, p: {"crf": str(q), "preset": p},
    "hevc": lambda q, p: {"crf": str(q), "preset": p, "x265-params": "pools=none:frame-threads=1:log-level=error"},
    "vp9": lambda q, p: {"crf": str(q), "b": "0", "deadline": p, "row-mt": "0", "lag-in-frames": "0"},
    "av1": lambda q, p: {"crf": str(q), "preset": p, "svtav1-params": "lp=1"},
    "mpeg2": lambda q, p: {}, "mpeg4": lambda q, p: {},
}
MID = {"h264": 30, "hevc": 30, "vp9": 40, "av1": 40, "mpeg2": 6, "mpeg4": 6}
CASES = [(c, f) for c in V.CODECS for f in VIDEO_CODECS[c].pix_fmts]


@pytest.fixture(scope="module")
def img():
    return (data.astronaut()[100:196, 150:262] / 255).astype(np.float32)  # 96x112


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2))


def plain(img, codec, q, preset, pix_fmt):
    """rgb24 -> pix_fmt -> encoder -> decoder -> rgb, with PyAV directly; returns (packets, float32 image)."""
    info = VIDEO_CODECS[codec]
    h, w = img.shape[:2]
    x = np.rint(np.clip(img, 0, 1) * np.float32(255)).astype(np.uint8)
    ph, pw = max(h, info.min_size), max(w, info.min_size)
    if pix_fmt.startswith("yuv420"):
        ph, pw = ph + ph % 2, pw + pw % 2
    x = np.pad(x, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    frame = av.VideoFrame.from_ndarray(x, format="rgb24").reformat(
        format=pix_fmt, src_colorspace="ITU601", dst_colorspace="ITU601", interpolation=ENC,
        src_color_range="JPEG", dst_color_range="MPEG", threads=1)
    frame.pts = 0
    enc = av.CodecContext.create(info.encoder, "w")
    enc.width, enc.height, enc.pix_fmt = pw, ph, pix_fmt
    enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25)
    enc.thread_count, enc.gop_size, enc.max_b_frames, enc.bit_rate = 1, 1, 0, 0
    enc.colorspace, enc.color_range = 6, 1
    if codec in ("mpeg2", "mpeg4"):
        enc.qscale = True
        enc.global_quality = q * 118
        enc.qmin = enc.qmax = q
    enc.options = PRIVATE[codec](q, preset)
    packets = enc.encode(frame) + enc.encode(None)
    dec = av.CodecContext.create(info.decoder, "r")
    dec.thread_count = 1
    frames = [f for p in packets for f in dec.decode(p)] + dec.decode(None)
    assert len(frames) == 1 and frames[0].key_frame  # one intra frame
    ten = pix_fmt.endswith("10le")
    rgb = frames[0].reformat(format="rgb48le" if ten else "rgb24", src_colorspace="ITU601",
                             dst_colorspace="ITU601", interpolation=DEC, src_color_range="MPEG",
                             dst_color_range="JPEG", threads=1).to_ndarray()[:h, :w]
    return [bytes(p) for p in packets], rgb.astype(np.float32) / np.float32(65535 if ten else 255)


@pytest.mark.parametrize("codec, pix_fmt", CASES)
def test_byte_equal_to_plain_pyav(img, codec, pix_fmt):
    info = VIDEO_CODECS[codec]
    packets, ref = plain(img, codec, MID[codec], info.default_preset, pix_fmt)
    assert len(packets) == 1
    out = video(img, codec, MID[codec], info.default_preset, pix_fmt)
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_array_equal(out, ref)
    # and the module's own stream is the same bytes, run after run
    q8 = np.rint(img * np.float32(255)).astype(np.uint8)
    assert list(V.encode_frame(q8, info, MID[codec], info.default_preset, pix_fmt)) == packets
    assert 26 < psnr(out, img) < 48  # a lossy round trip of the right image (not a blank or shifted frame)


@pytest.mark.parametrize("codec", V.CODECS)
def test_quality_drops_psnr(img, codec):
    info = VIDEO_CODECS[codec]
    lo, hi = info.quality_range
    best = psnr(video(img, codec, lo + (hi - lo) // 8, info.default_preset, "yuv420p"), img)
    mid = psnr(video(img, codec, (lo + hi) // 2, info.default_preset, "yuv420p"), img)
    worst = psnr(video(img, codec, hi, info.default_preset, "yuv420p"), img)
    assert best > mid + 1 > worst + 2, (best, mid, worst)


@pytest.mark.parametrize("codec", [c for c in V.CODECS if "yuv444p" in VIDEO_CODECS[c].pix_fmts])
def test_420_loses_chroma_not_luma(codec):
    from test_ops_codecs import color_blocks, ycbcr

    x = color_blocks()
    q = VIDEO_CODECS[codec].quality_range[0] + 10
    y = ycbcr(x)
    e = {f: np.abs(ycbcr(video(x, codec, q, VIDEO_CODECS[codec].default_preset, f)) - y).mean(axis=(0, 1))
         for f in ("yuv420p", "yuv444p")}
    assert e["yuv420p"][1:].min() > 2 * e["yuv444p"][1:].max(), e
    assert e["yuv420p"][0] < 1.5 * e["yuv444p"][0] + 0.002, e


@pytest.mark.parametrize("codec", [c for c in V.CODECS if "yuv420p10le" in VIDEO_CODECS[c].pix_fmts])
def test_10bit_is_not_rounded_to_8bit(img, codec):
    info = VIDEO_CODECS[codec]
    o8 = video(img, codec, MID[codec], info.default_preset, "yuv420p")
    o10 = video(img, codec, MID[codec], info.default_preset, "yuv420p10le")
    assert not np.array_equal(o8, o10)
    u16 = np.rint(o10.astype(np.float64) * 65535)
    assert np.mean(u16 % 257 != 0) > 0.9  # values between the 8-bit levels (an 8-bit detour gives multiples)
    # the same picture: within the codec's error of the 8-bit decode (a broken rgb48 path shifts colours wildly)
    assert np.abs(o10 - o8).mean() < 0.02 and abs(psnr(o10, img) - psnr(o8, img)) < 3


def test_presets_are_real_encoder_settings(img):
    a = video(img, "h264", 30, "ultrafast", "yuv420p")
    b = video(img, "h264", 30, "veryslow", "yuv420p")
    c = video(img, "av1", 40, "12", "yuv420p")
    d = video(img, "av1", 40, "4", "yuv420p")
    assert not np.array_equal(a, b) and not np.array_equal(c, d)


@pytest.mark.parametrize("codec", V.CODECS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 2), (17, 33)])
def test_odd_and_tiny_sizes_pad_and_crop(codec, shape):
    x = np.random.default_rng(sum(shape)).random((*shape, 3), dtype=np.float32)
    info = VIDEO_CODECS[codec]
    out = video(x, codec, MID[codec], info.default_preset, "yuv420p")
    assert out.shape == x.shape
    np.testing.assert_array_equal(out, plain(x, codec, MID[codec], info.default_preset, "yuv420p")[1])


def test_out_of_range_input_is_clipped(img):
    wild = img * 1.6 - 0.3
    np.testing.assert_array_equal(video(wild, "mpeg4", 4, "", "yuv420p"),
                                  video(np.clip(wild, 0, 1), "mpeg4", 4, "", "yuv420p"))


@pytest.mark.parametrize("args, match", [
    (("h265", 30, "medium", "yuv420p"), "codec"),
    (("h264", 52, "medium", "yuv420p"), r"quality \(h264 crf\): expected an int in \[0, 51\]"),
    (("h264", 30.0, "medium", "yuv420p"), "quality"),
    (("av1", 0, "8", "yuv420p"), r"\[1, 63\]"),
    (("mpeg2", 0, "", "yuv420p"), r"qscale"),
    (("h264", 30, "", "yuv420p"), r"preset \(h264\)"),
    (("vp9", 30, "medium", "yuv420p"), r"preset \(vp9\).*'best', 'good', 'realtime'"),
    (("mpeg2", 5, "medium", "yuv420p"), "preset"),
    (("h264", 30, "medium", "yuv422p"), "pix_fmt: expected one of"),
    (("mpeg4", 5, "", "yuv444p"), r"pix_fmt: codec 'mpeg4' \(mpeg4\) has no 'yuv444p' here; it has 'yuv420p'"),
    (("av1", 30, "8", "yuv444p10le"), r"it has 'yuv420p', 'yuv420p10le'"),
])
def test_bad_arguments_one_line(args, match):
    with pytest.raises((TypeError, ValueError), match=match) as e:
        video(np.zeros((16, 16, 3), np.float32), *args)
    assert "\n" not in str(e.value)


def test_codec_table_matches_this_pyav_build():
    # the formats listed are exactly those of our four the encoder takes, and every listed one encodes
    # (test_byte_equal_to_plain_pyav); a codec whose encoder is missing from the build would list none
    for name, info in VIDEO_CODECS.items():
        have = {f.name for f in av.codec.Codec(info.encoder, "w").video_formats}
        assert info.pix_fmts == tuple(f for f in V.PIX_FMTS if f in have)
        assert info.default_preset in info.presets
        assert codec_info.available()[name] == bool(info.pix_fmts)
    assert VIDEO_CODECS["mpeg4"].pix_fmts == ("yuv420p",)
    assert VIDEO_CODECS["h264"].pix_fmts == V.PIX_FMTS


def test_missing_encoder_is_reported_not_available(monkeypatch):
    # a PyAV build without an encoder (libaom-av1 is absent here) -> that codec is unavailable, one line
    with pytest.raises(av.codec.codec.UnknownCodecError):
        av.codec.Codec("libaom-av1", "w")
    table = dict(V._TABLE)
    table["av1"] = dict(table["av1"], encoder="libaom-av1")
    monkeypatch.setattr(V, "_TABLE", table)
    info = V._build_codecs()
    assert info["av1"].pix_fmts == () and info["h264"].pix_fmts
    monkeypatch.setattr(V, "_codecs", lambda: info)
    assert codec_info.available()["av1"] is False and codec_info.available()["h264"] is True
    with pytest.raises(ValueError, match=r"codec 'av1': not available \(.*libaom-av1.*pip install 'degradekit\[video\]'"):
        video(np.zeros((8, 8, 3), np.float32), "av1", 30, "8", "yuv420p")
