"""Robust image reading and deterministic PNG encoding.

Every image that enters degradekit goes through :func:`read_image`, which returns ``uint8`` HxWx3 RGB whatever
the file holds, or raises :class:`ImageError` whose message is one line ``"{path}: {problem}"``:

- EXIF orientation is applied (the array is what a viewer shows);
- gray, gray+alpha, palette, CMYK, YCbCr, 1-bit images are converted to RGB;
- 16-bit images are scaled to 8 bits as ``round(x / 257)`` (65535 -> 255), never wrapped or truncated;
- alpha is composited on white: ``rgb * a + 255 * (1 - a)``, rounded (a transparent background becomes white,
  which is how such images are usually displayed; the alpha channel itself is not kept);
- corrupt, truncated, empty and non-image files, 32-bit float images and images of more than ``max_pixels``
  pixels (decompression bombs) raise ``ImageError``. The pixel limit is checked on the header, before decoding.

Encoding (:func:`encode_png`): level 1 (default) = PNG "Paeth" filter + our Huffman-only deflate coder (integer
code, same bytes on every machine); levels 2-12 = "Up" filter + libdeflate. The bytes depend only on the pixels,
the level and the encoder version (:data:`PNG_ENCODER`), so shards are byte-reproducible.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
import zlib

import cv2
import deflate
import numpy as np
from numba import njit
from PIL import Image, UnidentifiedImageError

__all__ = [
    "ImageError",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "read_image",
    "decode_image",
    "check_image",
    "encode_png",
    "encode_image",
    "decode_png",
    "write_png",
    "apply_exif_orientation",
]

#: Largest image accepted, in pixels (width x height). 100 MP holds any camera photo (DIV2K/Flickr2K are ~3 MP)
#: but refuses decompression bombs (a tiny file that inflates to gigabytes).
DEFAULT_MAX_PIXELS = 100_000_000

#: File extensions treated as images when a directory or glob is scanned (lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")

#: Stored codecs. PNG only: lossless, every reader has it; `--png-level 0` is the fast uncompressed option
#: (it replaced PPM: as fast, and every PNG reader takes it).
CODECS = ("png",)


class ImageError(ValueError):
    """An input image cannot be used. ``str(e) == f"{path}: {problem}"`` (one line)."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # one line, whatever the decoder said
        super().__init__(f"{self.path}: {self.problem}")


# EXIF orientation tag value -> numpy transform of an HxW[xC] array (same result as PIL.ImageOps.exif_transpose).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def apply_exif_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation value (1..8) to an HxW[xC] array; returns a C-contiguous array."""
    fn = _ORIENT.get(int(orientation))
    out = np.ascontiguousarray(arr if fn is None else fn(arr))
    return out if out.flags.writeable else out.copy()  # PIL's buffers are read-only; callers may edit


def _scale16(a: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 as round(x / 257) (exact integer arithmetic: (x + 128) // 257 rounds half up)."""
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _composite_white(rgb: np.ndarray, alpha: np.ndarray, amax: int) -> np.ndarray:
    """Composite RGB over white (= amax) with alpha in [0, amax]; float64 result, caller rounds."""
    a = alpha.astype(np.float64)[..., None] / amax
    return rgb.astype(np.float64) * a + float(amax) * (1.0 - a)


def decode_image(data: bytes, path="<bytes>", *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to ``uint8`` HxWx3 RGB (see the module docstring for the rules).

    ``path`` only names the input in error messages. Raises :class:`ImageError`.
    """
    if len(data) == 0:
        raise ImageError(path, "empty file")
    fast = _decode_plain_png(data, max_pixels)
    if fast is not None:
        return fast
    with warnings.catch_warnings():
        # PIL warns past its own limit (our check below decides) and refuses past twice that (an error here too).
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(path, "not an image (unrecognised format)") from None
        except Image.DecompressionBombError as e:
            raise ImageError(path, f"too many pixels for Pillow's hard limit ({e})") from None
        except Exception as e:  # corrupt header
            raise ImageError(path, f"cannot read header: {e}") from None
        w, h = im.size
        if w * h > max_pixels:
            raise ImageError(path, f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} (decompression bomb?)")
        if w == 0 or h == 0:
            raise ImageError(path, f"empty image ({w}x{h})")
        tile = getattr(im, "tile", None) or []
        is16 = any(";16" in str(t[3]) for t in tile) or im.mode.startswith("I;16")
        try:
            im.load()  # decodes fully: truncated / corrupt data raises here
        except Exception as e:
            raise ImageError(path, f"corrupt or truncated image data: {e}") from None
        try:  # after load(): PNG keeps EXIF after the pixel data, and asking before would decode twice
            orientation = int(im.getexif().get(0x0112, 1) or 1)
        except Exception:
            orientation = 1  # a broken EXIF block does not make the pixels unusable

    mode = im.mode
    if is16 and mode in ("RGB", "RGBA"):
        # Pillow truncates 16-bit colour to 8 bits; OpenCV keeps the 16 bits so we can scale properly.
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.dtype != np.uint16 or raw.ndim != 3:
            raise ImageError(path, f"cannot decode 16-bit {mode} image")
        if raw.shape[2] == 4:
            rgb = raw[..., 2::-1]
            out = _composite_white(rgb, raw[..., 3], 65535)
            arr = _scale16(np.rint(out).astype(np.uint16))
        else:
            arr = _scale16(raw[..., ::-1])
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        g = np.asarray(im)
        if mode == "I" and (g.min(initial=0) < 0 or g.max(initial=0) > 65535):
            raise ImageError(path, "32-bit integer image with values outside 0..65535 is not supported")
        g8 = _scale16(g.astype(np.uint16)) if (is16 or mode == "I") else g.astype(np.uint8)
        arr = np.repeat(g8[..., None], 3, axis=2)
    elif mode == "F":
        raise ImageError(path, "32-bit float images are not supported")
    else:
        has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info) or (
            mode in ("L", "RGB") and "transparency" in im.info)
        if has_alpha:
            rgba = np.asarray(im.convert("RGBA"))
            arr = np.rint(_composite_white(rgba[..., :3], rgba[..., 3], 255)).astype(np.uint8)
        elif mode == "RGB":
            arr = np.asarray(im)
        else:  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX ...
            try:
                arr = np.asarray(im.convert("RGB"))
            except Exception as e:
                raise ImageError(path, f"cannot convert mode {mode} to RGB: {e}") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ImageError(path, f"unexpected decoded layout {arr.shape} {arr.dtype}")
    return apply_exif_orientation(arr, orientation)


def check_image(data: bytes, path="<bytes>", *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(h, w) of the image :func:`decode_image` would return, raising the same :class:`ImageError` -- but a plain
    PNG is only inflated and checked, not unfiltered (the source scan validates every file before rendering)."""
    hw = _decode_plain_png(data, max_pixels, pixels=False) if len(data) else None
    if hw is None and data[:3] == b"\xff\xd8\xff":
        hw = _check_jpeg_draft(data, max_pixels)
    if hw is not None:
        return hw
    return decode_image(data, path, max_pixels=max_pixels).shape[:2]


def _check_jpeg_draft(data, max_pixels: int) -> tuple[int, int] | None:
    """(h, w) after EXIF orientation of a JPEG that decodes completely at 1/8 scale (libjpeg still entropy-decodes
    every coefficient, so truncated or corrupt data fails as in a full decode, ~2.5x faster); None when anything
    is unusual or fails -- the caller then runs the full decode, which decides and words the error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if im.format != "JPEG" or im.mode not in ("RGB", "L", "CMYK"):
                return None
            w, h = im.size
            if w * h > max_pixels or w == 0 or h == 0:
                return None
            im.draft(im.mode, ((w + 7) // 8, (h + 7) // 8))
            im.load()
            orientation = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def read_image(path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as ``uint8`` HxWx3 RGB, C-contiguous. Raises :class:`ImageError` (one line)."""
    from .fsutil import NotRegularFile, read_regular

    try:
        data = read_regular(path)  # a FIFO or device is refused without blocking
    except IsADirectoryError:
        raise ImageError(path, "is a directory") from None
    except NotRegularFile as e:
        raise ImageError(path, "is a directory" if os.path.isdir(path) else e.strerror) from None
    except OSError as e:
        raise ImageError(path, e.strerror or str(e)) from None
    return decode_image(data, path, max_pixels=max_pixels)


def _png_encoder_id() -> str:
    try:
        from importlib.metadata import version

        v = version("deflate")
    except Exception:  # pragma: no cover - deflate is a dependency
        v = "?"
    # "huffman-1": the level-1 coder below (its bytes depend on this code only); other levels use libdeflate.
    return f"png level 1: paeth + huffman-1; levels 2-12: up + libdeflate (python-deflate {v})"


#: What produces the PNG bytes (recorded in shard manifests: bytes are reproducible for the same encoder).
PNG_ENCODER = _png_encoder_id()
_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", deflate.crc32(data, deflate.crc32(tag)))


def encode_png(img: np.ndarray, level: int = 1) -> bytes:
    """Encode ``uint8`` HxWx3 RGB as an 8-bit RGB PNG; deterministic bytes for given pixels and level.

    ``level`` 1 (the default): every row uses the PNG "Paeth" filter and the stream is one dynamic-Huffman
    deflate block of literals (our own coder, no LZ77 matching): ~1.5 ms for a 400x400 patch, about the size of
    libdeflate's level 1 (which took ~4.3 ms). ``level`` 2..12: "Up" filter + libdeflate at that level (a few %
    smaller, several times slower). ``level`` 0: stored, unfiltered. Measured in docs/performance.md, Synthesis.
    """
    _check_rgb8(img)
    level = int(level)
    if not 0 <= level <= 12:
        raise ValueError(f"PNG level must be 0..12, got {level}")
    h, w, _ = img.shape
    rows = np.ascontiguousarray(img).reshape(h, w * 3)
    raw = np.empty((h, w * 3 + 1), np.uint8)
    if level == 1:
        _paeth_filter(rows, raw)
        idat = _zlib_huffman(raw.reshape(-1))
    else:
        if level == 0:  # stored: filtering would cost time and save nothing
            raw[:, 0] = 0
            raw[:, 1:] = rows
        else:
            raw[:, 0] = 2  # Up: row - previous row (mod 256); the first row's previous row is zeros
            raw[0, 1:] = rows[0]
            np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])
        idat = deflate.zlib_compress(raw.tobytes(), level)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, adaptive filtering, no interlace
    return _PNG_SIG + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode_image(img: np.ndarray, codec: str = "png", *, level: int = 1) -> bytes:
    """Encode with a stored codec: ``"png"`` (compression ``level``, 0 = stored)."""
    if codec == "png":
        return encode_png(img, level)
    raise ValueError(f"unknown codec {codec!r} (choose from {', '.join(CODECS)})")


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes written by :func:`encode_image` to ``uint8`` HxWx3 RGB (OpenCV, as trainers do)."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        raise ValueError("cannot decode image bytes")
    return np.ascontiguousarray(arr[..., ::-1])


def write_png(path, img: np.ndarray, level: int = 1) -> None:
    """Write ``uint8`` HxWx3 RGB to ``path`` as PNG (atomically: temporary name, then rename)."""
    from .fsutil import atomic_write

    atomic_write(path, encode_png(img, level))


def _check_rgb8(img) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 RGB, got {getattr(img, 'dtype', type(img))} "
                         f"{getattr(img, 'shape', '')}")


# --- level 1: PNG Paeth filter + our own Huffman-only deflate (one dynamic block) -------------------------------
# Measured on 400x400 photo crops (docs/performance.md, Synthesis): libdeflate level 1 spends ~4.3 ms per HR patch looking
# for LZ77 matches that photographic residuals barely have; Huffman coding of Paeth residuals alone gives the
# same size (+-5 %) in a fraction of the time. Pure integer code: the bytes are identical on every machine.

_CL_ORDER = np.array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], np.int64)


@njit(cache=True, nogil=True)
def _paeth_filter(rows, out):
    """PNG filter type 4 (Paeth, 3 bytes per pixel) of ``rows`` (h, n) uint8 into ``out`` (h, n + 1) uint8."""
    h, n = rows.shape
    for y in range(h):
        out[y, 0] = 4
        for x in range(n):
            a = np.int32(rows[y, x - 3]) if x >= 3 else np.int32(0)
            b = np.int32(rows[y - 1, x]) if y > 0 else np.int32(0)
            c = np.int32(rows[y - 1, x - 3]) if (x >= 3 and y > 0) else np.int32(0)
            pa = abs(b - c)           # |p - a| with p = a + b - c
            pb = abs(a - c)           # |p - b|
            pc = abs(a + b - 2 * c)   # |p - c|
            pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
            out[y, x + 1] = np.uint8((np.int32(rows[y, x]) - pred) & 255)


@njit(cache=True, nogil=True)
def _huffman_lengths(freq, limit, lengths):
    """Huffman code lengths (<= ``limit``) of int64 ``freq`` into ``lengths``; >= 2 nonzero frequencies.

    Two-queue Huffman on the stably sorted frequencies; while the longest code exceeds ``limit`` the
    frequencies are halved (kept nonzero) and the code rebuilt -- a complete prefix code either way.
    """
    f = freq.copy()
    while True:
        syms = np.nonzero(f)[0]
        m = syms.shape[0]
        order = syms[np.argsort(f[syms], kind="mergesort")]
        weight = np.empty(2 * m - 1, np.int64)
        parent = np.zeros(2 * m - 1, np.int64)
        for i in range(m):
            weight[i] = f[order[i]]
        leaf = 0
        inner = m
        nxt = m
        for _ in range(m - 1):
            s0 = 0
            s1 = 0
            for t in range(2):
                if leaf < m and (inner >= nxt or weight[leaf] <= weight[inner]):
                    sel = leaf
                    leaf += 1
                else:
                    sel = inner
                    inner += 1
                if t == 0:
                    s0 = sel
                else:
                    s1 = sel
            weight[nxt] = weight[s0] + weight[s1]
            parent[s0] = nxt
            parent[s1] = nxt
            nxt += 1
        depth = np.zeros(2 * m - 1, np.int64)
        for i in range(2 * m - 3, -1, -1):
            depth[i] = depth[parent[i]] + 1
        if depth[:m].max() <= limit:
            lengths[:] = 0
            for i in range(m):
                lengths[order[i]] = depth[i]
            return
        for i in range(f.shape[0]):
            if f[i] > 0:
                f[i] = (f[i] >> 1) | 1


@njit(cache=True, nogil=True)
def _canonical_codes(lengths, codes):
    """RFC 1951 §3.2.2 canonical codes of ``lengths``, bit-reversed (deflate sends codes LSB first)."""
    bl_count = np.zeros(16, np.int64)
    for ln in lengths:
        if ln > 0:
            bl_count[ln] += 1
    next_code = np.zeros(16, np.int64)
    code = 0
    for bits in range(1, 16):
        code = (code + bl_count[bits - 1]) << 1
        next_code[bits] = code
    for s in range(lengths.shape[0]):
        ln = lengths[s]
        if ln > 0:
            c = next_code[ln]
            next_code[ln] += 1
            r = 0
            for _ in range(ln):
                r = (r << 1) | (c & 1)
                c >>= 1
            codes[s] = r


@njit(cache=True, nogil=True)
def _huffman_deflate(data, cl_order, words):
    """Raw deflate of flat uint8 ``data`` as one final dynamic-Huffman block of literals only (no matches).

    ``cl_order``: RFC 1951's order of the code-length code lengths (:data:`_CL_ORDER`). ``words``: little-endian
    uint32 output of at least ``len(data) // 2 + 512`` words (<= 15 bits per byte + header); returns the number
    of bytes written.
    """
    n = data.shape[0]
    # Histogram in 4 interleaved copies (fewer store-to-load stalls on runs of equal bytes).
    hist = np.zeros((4, 256), np.int64)
    i = 0
    while i + 4 <= n:
        hist[0, data[i]] += 1
        hist[1, data[i + 1]] += 1
        hist[2, data[i + 2]] += 1
        hist[3, data[i + 3]] += 1
        i += 4
    while i < n:
        hist[0, data[i]] += 1
        i += 1
    freq = np.zeros(257, np.int64)
    for s in range(256):
        freq[s] = hist[0, s] + hist[1, s] + hist[2, s] + hist[3, s]
    freq[256] = 1  # end of block
    nz = 0
    for s in range(256):
        if freq[s] > 0:
            nz += 1
    if nz == 0:  # empty input: a second symbol keeps the code complete (zlib rejects an incomplete one)
        freq[0] = 1
    lit_len = np.zeros(257, np.int64)
    _huffman_lengths(freq, 15, lit_len)
    lit_code = np.zeros(257, np.int64)
    _canonical_codes(lit_len, lit_code)
    # Code lengths sent: 257 literal/length codes, then 2 distance codes of length 1 (never used; two codes
    # of one bit as zlib writes, which every inflater accepts).
    seq = np.empty(259, np.int64)
    seq[:257] = lit_len
    seq[257] = 1
    seq[258] = 1
    cl_freq = np.zeros(19, np.int64)
    for v in seq:
        cl_freq[v] += 1
    used = 0
    for s in range(19):
        if cl_freq[s] > 0:
            used += 1
    if used < 2:
        cl_freq[0 if cl_freq[0] == 0 else 2] += 1
    cl_len = np.zeros(19, np.int64)
    _huffman_lengths(cl_freq, 7, cl_len)
    cl_code = np.zeros(19, np.int64)
    _canonical_codes(cl_len, cl_code)
    hclen = 19
    while hclen > 4 and cl_len[cl_order[hclen - 1]] == 0:
        hclen -= 1

    # Header fields (value, bit count): BFINAL 1 + BTYPE 2 (dynamic), HLIT - 257 = 0, HDIST - 1 = 1, HCLEN - 4,
    # the code-length code lengths, then the 259 code lengths coded with it (no run-length codes).
    m = 4 + hclen + 259
    hval = np.empty(m, np.uint64)
    hlen = np.empty(m, np.uint64)
    hval[0], hlen[0] = 1 | (2 << 1), 3
    hval[1], hlen[1] = 0, 5
    hval[2], hlen[2] = 1, 5
    hval[3], hlen[3] = hclen - 4, 4
    for k in range(hclen):
        hval[4 + k], hlen[4 + k] = cl_len[cl_order[k]], 3
    for k in range(259):
        hval[4 + hclen + k], hlen[4 + hclen + k] = cl_code[seq[k]], cl_len[seq[k]]
    # Bits go LSB first into a 64-bit accumulator, flushed as little-endian 32-bit words.
    acc = np.uint64(0)
    nb = np.uint64(0)
    wpos = 0
    for k in range(m):
        acc |= hval[k] << nb
        nb += hlen[k]
        if nb >= np.uint64(32):
            words[wpos] = np.uint32(acc & np.uint64(0xFFFFFFFF))
            wpos += 1
            acc >>= np.uint64(32)
            nb -= np.uint64(32)
    code64 = lit_code.astype(np.uint64)
    len64 = lit_len.astype(np.uint64)
    i = 0
    while i + 2 <= n:  # two symbols (<= 30 bits) per step: halves the loop-carried shift/add chain
        s0 = data[i]
        s1 = data[i + 1]
        acc |= (code64[s0] | (code64[s1] << len64[s0])) << nb
        nb += len64[s0] + len64[s1]
        i += 2
        # Branch-free flush (the flush pattern is irregular; a branch here mispredicts often).
        words[wpos] = np.uint32(acc & np.uint64(0xFFFFFFFF))
        full = nb >> np.uint64(5)  # 1 when >= 32 bits are pending (nb < 62 here)
        wpos += full
        acc >>= full << np.uint64(5)
        nb -= full << np.uint64(5)
    tail = np.empty(2, np.int64)  # the last literal of an odd length, then end of block
    tail[0], tail[1] = (data[n - 1] if i < n else -1), 256
    for s in tail:
        if s < 0:
            continue
        acc |= code64[s] << nb
        nb += len64[s]
        if nb >= np.uint64(32):
            words[wpos] = np.uint32(acc & np.uint64(0xFFFFFFFF))
            wpos += 1
            acc >>= np.uint64(32)
            nb -= np.uint64(32)
    words[wpos] = np.uint32(acc)
    return 4 * wpos + int((nb + np.uint64(7)) // np.uint64(8))


def _zlib_huffman(raw: np.ndarray) -> bytes:
    """zlib stream (RFC 1950, header 78 01) of the flat uint8 ``raw`` via :func:`_huffman_deflate`."""
    words = np.empty(raw.size // 2 + 512, "<u4")
    n = _huffman_deflate(raw, _CL_ORDER, words)
    return b"\x78\x01" + words.view(np.uint8)[:n].tobytes() + struct.pack(">I", deflate.adler32(raw))


# --- fast path for plain PNGs (8-bit RGB, not interlaced, no transparency/EXIF/text chunks) ----------------------
# Most training photos are such PNGs. Pillow decodes them several times slower than inflate + unfilter, and the
# scan validates every source before the render decodes it again, so both use this path: the scan inflates and
# checks (no unfiltering), the render inflates and unfilters. The pixels are fully defined by the PNG format
# (lossless), equal to Pillow's (tested on every filter type). Anything else, or any check that fails here,
# goes through Pillow exactly as before, which decides acceptance and the error message.

# Chunks that cannot change the decoded pixels for Pillow (colour management and metadata it does not apply);
# also tEXt, checked below. Anything else (tRNS, eXIf, sBIT, PLTE, zTXt, iTXt, unknown chunks) -> Pillow.
_PLAIN_PNG_CHUNKS = frozenset((b"IHDR", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"pHYs", b"tIME"))


def _plain_png(data) -> tuple[int, int, bytes] | None:
    """(h, w, concatenated IDAT data) of a plain PNG with all chunk CRCs correct and IEND last, else None."""
    n = len(data)
    if n < 57 or data[:8] != _PNG_SIG:
        return None
    mv = memoryview(data)
    pos, idat, first = 8, [], True
    while pos + 12 <= n:
        ln, tag = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + ln
        if end > n or first != (tag == b"IHDR"):
            return None
        if tag not in _PLAIN_PNG_CHUNKS:
            # tEXt is allowed unless Pillow would read an EXIF/XMP orientation from it (or hold a lot of text).
            if tag != b"tEXt" or ln > 1 << 20:
                return None
            key = bytes(mv[pos + 8:pos + 8 + min(ln, 80)]).split(b"\0", 1)[0]
            if key in (b"exif", b"xmp", b"XML:com.adobe.xmp") or key.startswith(b"Raw profile type"):
                return None
        body = mv[pos + 8:pos + 8 + ln]
        if struct.unpack_from(">I", data, pos + 8 + ln)[0] != deflate.crc32(body, deflate.crc32(tag)):
            return None
        if first:
            if ln != 13:
                return None
            w, h, depth, ctype, comp, filt, interlace = struct.unpack_from(">IIBBBBB", data, pos + 8)
            if (depth, ctype, comp, filt, interlace) != (8, 2, 0, 0, 0) or w == 0 or h == 0:
                return None
            first = False
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            return (h, w, b"".join(idat)) if end == n and idat else None
        pos = end
    return None


def _inflate_png(h: int, w: int, zdata: bytes) -> np.ndarray | None:
    """The filtered scanlines (h, 3w + 1) uint8 of a plain PNG, or None (bad stream, wrong length, bad filter)."""
    size = h * (3 * w + 1)
    d = zlib.decompressobj()
    try:
        raw = d.decompress(zdata, size + 1)
    except zlib.error:
        return None
    if len(raw) != size or not d.eof or d.unused_data or d.unconsumed_tail:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(h, 3 * w + 1)
    if rows[:, 0].max() > 4:
        return None
    return rows


@njit(cache=True, nogil=True)
def _png_unfilter(raw, out):
    """Undo PNG filters 0-4 (3 bytes per pixel): ``raw`` (h, n + 1) uint8 filtered rows -> ``out`` (h, n) uint8.

    One loop per filter type (the type is per row). Paeth is a byte-by-byte dependency chain: ~4 ns per byte,
    about libpng's speed, ~1.7x Pillow's (measured; register-carried and branch-free variants were slower)."""
    h, n1 = raw.shape
    n = n1 - 1
    zero = np.zeros(n, np.uint8)
    for y in range(h):
        ft = raw[y, 0]
        r = raw[y, 1:]
        o = out[y]
        up = out[y - 1] if y > 0 else zero
        if ft == 0:
            for x in range(n):
                o[x] = r[x]
        elif ft == 1:
            for x in range(min(3, n)):
                o[x] = r[x]
            for x in range(3, n):
                o[x] = np.uint8((np.int32(r[x]) + np.int32(o[x - 3])) & 255)
        elif ft == 2:
            for x in range(n):
                o[x] = np.uint8((np.int32(r[x]) + np.int32(up[x])) & 255)
        elif ft == 3:
            for x in range(min(3, n)):
                o[x] = np.uint8((np.int32(r[x]) + (np.int32(up[x]) >> 1)) & 255)
            for x in range(3, n):
                o[x] = np.uint8((np.int32(r[x]) + ((np.int32(o[x - 3]) + np.int32(up[x])) >> 1)) & 255)
        else:
            for x in range(min(3, n)):  # a = c = 0: the predictor is b
                o[x] = np.uint8((np.int32(r[x]) + np.int32(up[x])) & 255)
            for x in range(3, n):
                a = np.int32(o[x - 3])
                b = np.int32(up[x])
                c = np.int32(up[x - 3])
                pa = abs(b - c)
                pb = abs(a - c)
                pc = abs(a + b - 2 * c)
                pred = a if (pa <= pb) & (pa <= pc) else (b if pb <= pc else c)
                o[x] = np.uint8((np.int32(r[x]) + pred) & 255)


def _decode_plain_png(data, max_pixels: int, *, pixels: bool = True):
    """uint8 HxWx3 RGB (``pixels``) or just (h, w) of a plain PNG within ``max_pixels``; None -> use Pillow."""
    info = _plain_png(data)
    if info is None or info[0] * info[1] > max_pixels:
        return None
    h, w, zdata = info
    raw = _inflate_png(h, w, zdata)
    if raw is None:
        return None
    if not pixels:
        return h, w
    out = np.empty((h, w, 3), np.uint8)
    _png_unfilter(raw, out.reshape(h, 3 * w))
    return out
