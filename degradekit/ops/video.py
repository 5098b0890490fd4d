"""Still frames through real video encoders (FFmpeg's libraries via PyAV), encoded and decoded in memory.

One RGB frame goes through swscale to YUV, is encoded alone (the first frame of a stream, so an intra frame)
by a single-threaded encoder with fixed settings, decoded by FFmpeg's decoder and converted back to RGB.
PyAV is optional (``pip install 'degradekit[video]'``): this module imports it only when a codec is used or
``VIDEO_CODECS`` is read.

Colour conversion (swscale, both ways ``BITEXACT | ACCURATE_RND``: its exact C paths, no SIMD rounding
differences): BT.601 matrix, RGB full range <-> YUV limited (studio) range -- what ffmpeg does by default for
rgb24 -> yuv. RGB -> YUV with ``AREA | FULL_CHR_H_INP`` (chroma computed at full resolution, then the box mean
of each 2x2 block for 4:2:0); YUV -> RGB with ``BICUBIC | FULL_CHR_H_INT`` into rgb24, or rgb48le for the 10-bit
formats, so that a 10-bit decode reaches float32 (/65535) without an 8-bit rounding on the way.
(swscale's BILINEAR + FULL_CHR_H_INT path into rgb48 is broken in this FFmpeg: green goes wild; BICUBIC is not.)
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ._check import check_image
from ._codec import check_choice, check_int, quantize_rgb, to_float

CODECS = ("h264", "hevc", "mpeg2", "mpeg4", "vp9", "av1")
PIX_FMTS = ("yuv420p", "yuv444p", "yuv420p10le", "yuv444p10le")
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                 "placebo")

_QP2LAMBDA = 118  # FFmpeg's FF_QP2LAMBDA: global_quality is a qscale in lambda units (as `ffmpeg -q:v`)
_SMPTE170M, _RANGE_MPEG = 6, 1  # AVColorSpace / AVColorRange values tagged in the stream (BT.601, limited)


@dataclass(frozen=True)
class CodecInfo:
    """What one video codec kind means here.

    ``quality_kind`` "crf" (constant rate factor) or "qscale" (fixed quantiser); ``quality_range`` inclusive;
    ``presets``: the encoder's speed presets (``("",)`` where it has none); ``pix_fmts``: those of ``PIX_FMTS``
    the installed encoder accepts (``()`` when PyAV, the encoder or the decoder is missing); ``min_size``: the
    smallest side the encoder accepts (smaller frames are padded, see ``video``).
    """

    name: str
    encoder: str
    decoder: str
    quality_kind: str
    quality_range: tuple[int, int]
    presets: tuple[str, ...]
    default_preset: str
    pix_fmts: tuple[str, ...]
    min_size: int


# x265 refuses sides below 16 and SVT-AV1 below 4 (measured); libsvtav1's crf 0 means "unset" in FFmpeg's
# wrapper (the encoder then uses its default 35), so AV1's range starts at 1.
_TABLE = {
    "h264": dict(encoder="libx264", decoder="h264", quality_kind="crf", quality_range=(0, 51),
                 presets=_X26X_PRESETS, default_preset="medium", min_size=1),
    "hevc": dict(encoder="libx265", decoder="hevc", quality_kind="crf", quality_range=(0, 51),
                 presets=_X26X_PRESETS, default_preset="medium", min_size=16),
    "mpeg2": dict(encoder="mpeg2video", decoder="mpeg2video", quality_kind="qscale", quality_range=(1, 31),
                  presets=("",), default_preset="", min_size=1),
    "mpeg4": dict(encoder="mpeg4", decoder="mpeg4", quality_kind="qscale", quality_range=(1, 31),
                  presets=("",), default_preset="", min_size=1),
    "vp9": dict(encoder="libvpx-vp9", decoder="vp9", quality_kind="crf", quality_range=(0, 63),
                presets=("best", "good", "realtime"), default_preset="good", min_size=1),
    "av1": dict(encoder="libsvtav1", decoder="libdav1d", quality_kind="crf", quality_range=(1, 63),
                presets=tuple(str(p) for p in range(14)), default_preset="8", min_size=4),
}


@functools.cache
def _import_av():
    """PyAV, or None when it is not installed (the `video` extra)."""
    try:
        import av
    except ImportError:
        return None
    return av


def _build_codecs() -> dict[str, CodecInfo]:
    av = _import_av()
    out = {}
    for name, t in _TABLE.items():
        fmts: tuple[str, ...] = ()
        if av is not None:
            try:
                enc = av.codec.Codec(t["encoder"], "w")
                av.codec.Codec(t["decoder"], "r")
                have = {f.name for f in (enc.video_formats or ())}
                fmts = tuple(f for f in PIX_FMTS if f in have)
            except Exception:  # an encoder/decoder this PyAV build lacks: UnknownCodecError (or similar)
                fmts = ()
        out[name] = CodecInfo(name=name, pix_fmts=fmts, **t)
    return out


@functools.cache
def _codecs() -> dict[str, CodecInfo]:
    return _build_codecs()


def __getattr__(name):  # VIDEO_CODECS is computed on first access: it imports av (~80 ms)
    if name == "VIDEO_CODECS":
        return _codecs()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def unavailable_reason(name: str) -> str | None:
    """Why video codec ``name`` cannot run here (one line), or None when it can."""
    av = _import_av()
    if av is None:
        return "PyAV is not installed: pip install 'degradekit[video]'"
    info = _codecs()[name]
    if not info.pix_fmts:
        return (f"this PyAV {av.__version__} build lacks the {info.encoder} encoder or the {info.decoder} decoder; "
                f"pip install 'degradekit[video]' for a PyAV wheel that has them")
    return None


def video(img: np.ndarray, codec: str, quality: int, preset: str, pix_fmt: str) -> np.ndarray:
    """Encode a float32 HxWx3 RGB image in [0, 1] as one still frame of a video codec and decode it again.

    ``q8 = round(clip(img, 0, 1) * 255)`` as rgb24 -> swscale (module docstring) -> ``pix_fmt`` -> the codec's
    encoder, single-threaded (``VIDEO_CODECS[codec]``) -> FFmpeg's decoder -> RGB. 4:2:0 frames with an odd side,
    and frames smaller than the encoder's ``min_size``, are padded at the bottom/right by edge replication and
    cropped back after decoding. Returns float32 HxWx3 RGB in [0, 1]: decode / 255 (8-bit) or / 65535 (10-bit,
    via rgb48).

    ``codec``: one of ``CODECS``; ``quality``: crf (h264, hevc 0-51; vp9 0-63; av1 1-63) or qscale (mpeg2, mpeg4
    1-31); ``preset``: x264/x265 ultrafast..placebo, vp9 libvpx deadline best|good|realtime, av1 SVT-AV1 "0".."13"
    (0 slowest), "" for mpeg2/mpeg4; ``pix_fmt``: one of ``PIX_FMTS`` that the codec has here (``pix_fmts``).
    """
    img = check_image(img)
    codec = check_choice(codec, "codec", CODECS)
    from .codec_info import require

    require(codec)
    info = _codecs()[codec]
    lo, hi = info.quality_range
    quality = check_int(quality, f"quality ({codec} {info.quality_kind})", lo, hi)
    preset = check_choice(preset, f"preset ({codec})", info.presets)
    pix_fmt = check_choice(pix_fmt, "pix_fmt", PIX_FMTS)
    if pix_fmt not in info.pix_fmts:
        raise ValueError(f"pix_fmt: codec {codec!r} ({info.encoder}) has no {pix_fmt!r} here; it has "
                         f"{', '.join(map(repr, info.pix_fmts))}")
    h, w = img.shape[:2]
    q8 = _pad(quantize_rgb(img), info, pix_fmt)
    dec = decode_frame(encode_frame(q8, info, quality, preset, pix_fmt), info, pix_fmt)
    return to_float(dec[:h, :w])


def _pad(q8: np.ndarray, info: CodecInfo, pix_fmt: str) -> np.ndarray:
    h, w = q8.shape[:2]
    even = 2 if pix_fmt.startswith("yuv420") else 1
    ph = max(h, info.min_size)
    pw = max(w, info.min_size)
    ph += ph % even
    pw += pw % even
    if (ph, pw) == (h, w):
        return q8
    return np.pad(q8, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")


def _flags():
    from av.video.reformatter import Interpolation as I

    exact = I.BITEXACT | I.ACCURATE_RND
    return exact | I.AREA | I.FULL_CHR_H_INP, exact | I.BICUBIC | I.FULL_CHR_H_INT


def _options(info: CodecInfo, quality: int, preset: str) -> dict[str, str]:
    """The encoder's private options (strings, as FFmpeg takes them)."""
    q = str(quality)
    if info.name == "h264":
        return {"crf": q, "preset": preset}
    if info.name == "hevc":
        return {"crf": q, "preset": preset, "x265-params": "pools=none:frame-threads=1:log-level=error"}
    if info.name == "vp9":
        return {"crf": q, "b": "0", "deadline": preset, "row-mt": "0", "lag-in-frames": "0"}
    if info.name == "av1":
        return {"crf": q, "preset": preset, "svtav1-params": "lp=1"}
    return {}  # mpeg2 / mpeg4: fixed qscale through the context (below)


def encode_frame(q8: np.ndarray, info: CodecInfo, quality: int, preset: str, pix_fmt: str) -> tuple[bytes, ...]:
    """The encoded packets (one, for every codec here) of one rgb24 frame (uint8 HxWx3, sides already valid
    for ``pix_fmt``)."""
    av = _import_av()
    enc_flags, _ = _flags()
    h, w = q8.shape[:2]
    frame = av.VideoFrame.from_ndarray(q8, format="rgb24").reformat(
        format=pix_fmt, src_colorspace="ITU601", dst_colorspace="ITU601", interpolation=enc_flags,
        src_color_range="JPEG", dst_color_range="MPEG", threads=1)
    frame.pts = 0
    if info.encoder == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner per encoder unless told (errors only)
    ctx = av.CodecContext.create(info.encoder, "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, pix_fmt
    ctx.time_base = Fraction(1, 25)
    ctx.framerate = Fraction(25, 1)
    ctx.thread_count = 1
    ctx.gop_size = 1
    ctx.max_b_frames = 0
    ctx.bit_rate = 0
    ctx.colorspace = _SMPTE170M
    ctx.color_range = _RANGE_MPEG
    if info.quality_kind == "qscale":
        ctx.qscale = True
        ctx.global_quality = quality * _QP2LAMBDA
        ctx.qmin = ctx.qmax = quality
    ctx.options = _options(info, quality, preset)
    return tuple(bytes(p) for p in ctx.encode(frame) + ctx.encode(None))


def decode_frame(packets: tuple[bytes, ...], info: CodecInfo, pix_fmt: str) -> np.ndarray:
    """Decode the one frame in ``packets``: uint8 (8-bit formats) or uint16 (10-bit) HxWx3 RGB."""
    av = _import_av()
    _, dec_flags = _flags()
    ctx = av.CodecContext.create(info.decoder, "r")
    ctx.thread_count = 1
    frames = [f for p in packets for f in ctx.decode(av.Packet(p))] + ctx.decode(None)
    if len(frames) != 1 or frames[0].format.name != pix_fmt:  # pragma: no cover - our own stream
        raise RuntimeError(f"video: {info.decoder} decoded {len(frames)} frame(s) from a one-frame {pix_fmt} stream")
    rgb = "rgb48le" if pix_fmt.endswith("10le") else "rgb24"
    return frames[0].reformat(format=rgb, src_colorspace="ITU601", dst_colorspace="ITU601", interpolation=dec_flags,
                              src_color_range="MPEG", dst_color_range="JPEG", threads=1).to_ndarray()
