"""Which codec kinds work with the installed libraries, and those libraries' versions.

A codec op's bytes depend on its library's version; the synth manifest records ``library_versions()`` and
``degradekit replay`` compares it with the installed one. Checks are cached per process.
"""

from __future__ import annotations

import ctypes
import functools
import re

KINDS = ("jpeg", "webp", "avif", "jpeg2000", "h264", "hevc", "mpeg2", "mpeg4", "vp9", "av1")
_STILL = ("jpeg", "webp", "avif", "jpeg2000")


@functools.cache
def _still_reason(kind: str) -> str | None:
    """Why still-image codec ``kind`` cannot run here, or None."""
    if kind == "jpeg":
        import cv2

        return None if cv2.haveImageWriter(".jpg") else f"OpenCV {cv2.__version__} was built without libjpeg"
    from PIL import __version__ as pil, features

    if kind == "webp":
        return None if features.check("webp") else f"Pillow {pil} was built without WebP: pip install -U pillow"
    if kind == "jpeg2000":
        return None if features.check("jpg_2000") else f"Pillow {pil} was built without OpenJPEG: pip install -U pillow"
    # avif: Pillow's AVIF plugin with the libaom encoder (the op fixes it) and some AV1 decoder
    if not features.check("avif"):
        return f"Pillow {pil} has no AVIF support (libavif): pip install -U pillow"
    from PIL import _avif

    if not _avif.encoder_codec_available("aom"):
        return f"Pillow {pil}'s libavif has no libaom encoder"
    if not any(_avif.decoder_codec_available(c) for c in ("dav1d", "aom", "libgav1")):  # pragma: no cover
        return f"Pillow {pil}'s libavif has no AV1 decoder"
    return None


def _reason(kind: str) -> str | None:
    if kind in _STILL:
        return _still_reason(kind)
    from . import video

    return video.unavailable_reason(kind)


def available() -> dict[str, bool]:
    """Every kind of ``KINDS`` -> True when it can encode and decode here (imports PyAV for the video kinds)."""
    return {k: _reason(k) is None for k in KINDS}


def require(kind: str) -> None:
    """Raise a one-line ValueError when ``kind`` is unknown or not usable here; the still codecs need no PyAV."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"codec {kind!r}: unknown (expected one of {', '.join(KINDS)})")
    why = _reason(kind)
    if why is not None:
        raise ValueError(f"codec {kind!r}: not available ({why})")


# ------------------------------------------------------------------------------------------------ versions

def library_versions() -> dict[str, str]:
    """The codec libraries in use -> version strings (JSON-able, sorted by key; missing libraries left out).

    Keys: opencv, libjpeg-turbo (OpenCV's JPEG), pillow, libwebp, libavif, libavif.aom, libavif.dav1d, openjpeg,
    and with PyAV: pyav, libavcodec, libswscale, libx264, libx265, libvpx, libsvtav1, libdav1d. Computed once
    per process (a fresh copy each call).
    """
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str]:
    import cv2
    import PIL
    from PIL import features

    v = {"opencv": cv2.__version__}
    m = re.search(r"^\s*JPEG:\s*(.+?)\s*$", cv2.getBuildInformation(), re.M)
    if m:
        v["libjpeg-turbo"] = m.group(1)
    v["pillow"] = PIL.__version__
    for key, feat in (("libwebp", "webp"), ("libavif", "avif"), ("openjpeg", "jpg_2000")):
        ver = features.version(feat)
        if ver:
            v[key] = ver
    if "libavif" in v:
        from PIL import AvifImagePlugin

        for c in ("aom", "dav1d"):
            ver = AvifImagePlugin.get_codec_version(c)
            if ver:
                v[f"libavif.{c}"] = ver
    v.update(_video_versions())
    return dict(sorted(v.items()))


def _video_versions() -> dict[str, str]:
    from . import video

    av = video._import_av()
    if av is None:
        return {}
    v = {"pyav": av.__version__}
    for lib in ("libavcodec", "libswscale"):
        v[lib] = ".".join(map(str, av.library_versions[lib]))
    libs = _loaded_libraries()
    # version functions of the encoder libraries FFmpeg links (ctypes on the loaded copy)
    for key, stem, fn in (("libvpx", "libvpx", "vpx_codec_version_str"), ("libsvtav1", "libSvtAv1Enc",
                                                                          "svt_av1_get_version"),
                          ("libdav1d", "libdav1d", "dav1d_version")):
        ver = _call_version(libs, stem, fn)
        if ver:
            v[key] = ver
    # x264 has no version function, x265's is a data symbol: both write their version into the stream (SEI)
    ver = _sei_version("h264", rb"x264 - core ([^-]+?) - ")
    if ver:
        v["libx264"] = "core " + ver
    ver = _sei_version("hevc", rb"x265 \(build \d+\) - ([^\s:]+)")
    if ver:
        v["libx265"] = ver
    return v


def _loaded_libraries() -> dict[str, str]:
    """file name -> path of the shared objects mapped into this process (Linux; {} elsewhere), those next to
    FFmpeg's libavcodec first: other wheels (OpenCV's video I/O) may load their own libvpx into the process."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[5].strip() for line in f if line.count(" ") >= 5 and ".so" in line}
    except OSError:  # pragma: no cover - not Linux
        return {}
    paths = sorted(p for p in paths if p.startswith("/"))
    avdir = next((p.rsplit("/", 1)[0] for p in paths if p.rsplit("/", 1)[-1].startswith("libavcodec")), None)
    paths.sort(key=lambda p: p.rsplit("/", 1)[0] != avdir)  # stable: FFmpeg's folder first
    return {p.rsplit("/", 1)[-1]: p for p in paths}


def _call_version(libs: dict[str, str], stem: str, fn: str) -> str | None:
    for name, path in libs.items():
        if name.startswith(stem + "-") or name.startswith(stem + "."):
            try:
                f = getattr(ctypes.CDLL(path), fn)
            except (OSError, AttributeError):  # pragma: no cover - another build layout
                return None
            f.restype = ctypes.c_char_p
            out = f()
            return out.decode("ascii", "replace") if out else None
    return None


def _sei_version(codec: str, pattern: bytes) -> str | None:
    """The encoder's self-reported version from a 16x16 encode, or None when the codec is not available."""
    import numpy as np

    from . import video

    if video.unavailable_reason(codec) is not None:
        return None
    info = video._codecs()[codec]
    packets = video.encode_frame(np.zeros((16, 16, 3), np.uint8), info, 30, "ultrafast", "yuv420p")
    m = re.search(pattern, b"".join(packets))
    return m.group(1).decode("ascii", "replace") if m else None
