"""degradekit.imageio: every odd input becomes uint8 HxWx3 RGB or a one-line ImageError."""
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from degradekit.imageio import (ImageError, apply_exif_orientation, decode_image, decode_png, encode_image,
                                encode_png, read_image, write_png)


def _rng_img(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_roundtrip_and_jpeg_webp_bmp_tiff(tmp_path):
    img = _rng_img()
    for ext in ("png", "bmp", "tiff", "webp"):
        p = tmp_path / f"a.{ext}"
        kw = {"lossless": True} if ext == "webp" else {}
        Image.fromarray(img).save(p, **kw)
        out = read_image(p)
        assert out.dtype == np.uint8 and out.shape == (24, 32, 3) and out.flags.c_contiguous
        np.testing.assert_array_equal(out, img, err_msg=ext)
    p = tmp_path / "a.jpg"
    Image.fromarray(img).save(p, quality=95)
    assert read_image(p).shape == (24, 32, 3)


def test_gray_and_1bit_become_three_equal_channels(tmp_path):
    g = _rng_img()[..., 0]
    Image.fromarray(g).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (24, 32, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)
    Image.fromarray(g > 127).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(out[..., 1], np.where(g > 127, 255, 0))


def test_16bit_is_scaled_not_wrapped(tmp_path):
    vals = np.array([0, 128, 129, 257, 300, 32896, 65535, 65534, 1000, 40000, 514, 771], np.uint16)
    g = np.tile(vals, (4, 1))
    cv2.imwrite(str(tmp_path / "g16.png"), g)
    out = read_image(tmp_path / "g16.png")
    expect = np.floor(vals / 257 + 0.5).astype(np.uint8)  # round half up of x / 257
    np.testing.assert_array_equal(out[0, :, 0], expect)
    np.testing.assert_array_equal(out[..., 2], out[..., 0])
    # 16-bit colour PNG and TIFF (OpenCV writes BGR): red channel carries vals
    rgb = np.zeros((4, 12, 3), np.uint16)
    rgb[..., 0] = vals
    rgb[..., 2] = 65535 - vals
    for ext in ("png", "tif"):
        cv2.imwrite(str(tmp_path / f"c16.{ext}"), rgb[..., ::-1])
        out = read_image(tmp_path / f"c16.{ext}")
        np.testing.assert_array_equal(out[0, :, 0], expect, err_msg=ext)
        np.testing.assert_array_equal(out[0, :, 2], np.floor((65535 - vals) / 257 + 0.5).astype(np.uint8))
        assert (out[..., 1] == 0).all()


def test_alpha_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = [[0, 255, 128, 64]] * 4
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    a = rgba[0, :, 3] / 255.0
    np.testing.assert_array_equal(out[0, :, 0], np.rint(200 * a + 255 * (1 - a)).astype(np.uint8))
    np.testing.assert_array_equal(out[0, :, 1], np.rint(255 * (1 - a)).astype(np.uint8))
    # fully transparent -> white, opaque -> colour
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 1]) == (200, 0, 0)
    # gray + alpha
    la = Image.fromarray(np.stack([np.full((4, 4), 10, np.uint8), np.zeros((4, 4), np.uint8)], -1), "LA")
    la.save(tmp_path / "la.png")
    assert (read_image(tmp_path / "la.png") == 255).all()


def test_palette_with_and_without_transparency(tmp_path):
    img = _rng_img(16, 16)
    p = Image.fromarray(img).quantize(8)
    p.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out, np.asarray(p.convert("RGB")))
    p.info["transparency"] = 0
    p.save(tmp_path / "pt.png", transparency=0)
    out = read_image(tmp_path / "pt.png")
    idx = np.asarray(p)
    assert (out[idx == 0] == 255).all()
    np.testing.assert_array_equal(out[idx != 0], np.asarray(p.convert("RGB"))[idx != 0])


def test_cmyk_jpeg(tmp_path):
    img = _rng_img(16, 16)
    Image.fromarray(img).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    out = read_image(tmp_path / "c.jpg")
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 12  # lossy, but the same picture


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pil(tmp_path, orientation):
    img = _rng_img(10, 14, seed=orientation)
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.jpg", exif=exif, quality=100, subsampling=0)
    out = read_image(tmp_path / "o.jpg")
    ref = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.jpg")).convert("RGB"))
    np.testing.assert_array_equal(out, ref)
    assert out.shape[:2] == ((14, 10) if orientation >= 5 else (10, 14))
    np.testing.assert_array_equal(apply_exif_orientation(img, 1), img)


def test_corrupt_truncated_empty_nonimage(tmp_path):
    img = _rng_img(64, 64)
    good = encode_png(img)
    cases = {
        "empty.png": b"",
        "text.png": b"hello, this is not an image\n" * 10,
        "trunc.png": good[: len(good) // 2],
        "garbage.jpg": b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4,
    }
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    cases["trunc.jpg"] = buf.getvalue()[: len(buf.getvalue()) // 2]
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ImageError) as ei:
            read_image(p)
        msg = str(ei.value)
        assert msg.startswith(str(p) + ": ") and "\n" not in msg, msg
    with pytest.raises(ImageError, match="No such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)


def _png_header_only(w, h):
    """A tiny PNG whose header claims w x h pixels (a decompression bomb shape)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 10))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_pixel_limit_checked_on_header(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(30000, 30000))  # 900 MP claimed, 80 bytes on disk
    with pytest.raises(ImageError, match="pixels"):
        read_image(p)
    Image.fromarray(_rng_img(50, 50)).save(tmp_path / "ok.png")
    with pytest.raises(ImageError, match="2500 pixels exceeds the limit of 2000"):
        read_image(tmp_path / "ok.png", max_pixels=2000)
    assert read_image(tmp_path / "ok.png", max_pixels=2500).shape == (50, 50, 3)


def test_encode_png_deterministic_lossless_levels(tmp_path):
    yy, xx = np.mgrid[0:40, 0:30]
    img = np.stack([yy * 5, xx * 7, (yy + xx) * 3], -1).astype(np.uint8)  # compressible
    img[::7, ::5] = 255
    sizes = {}
    for lvl in (0, 1, 3, 9):
        a, b = encode_png(img, lvl), encode_png(img.copy(), lvl)
        assert a == b
        np.testing.assert_array_equal(decode_png(a), img)
        sizes[lvl] = len(a)
    assert sizes[0] > sizes[9]
    with pytest.raises(ValueError, match="unknown codec"):
        encode_image(img, "ppm")
    write_png(tmp_path / "w.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "w.png"), img)
    assert list(tmp_path.iterdir()) == [tmp_path / "w.png"]
    with pytest.raises(ValueError):
        encode_png(img.astype(np.float32))
    with pytest.raises(ValueError):
        encode_image(img, "gif")


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (33, 17), (64, 64)])
def test_encode_png_decodes_identically_everywhere(shape):
    """Our PNG writer (every level: Paeth + Huffman coder, Up + libdeflate, stored) is a valid PNG for OpenCV, Pillow and the pixels survive."""
    img = np.random.default_rng(shape[0]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    img[..., 1] = 200  # some redundancy
    for level in (0, 1, 6, 12):
        data = encode_png(img, level)
        np.testing.assert_array_equal(decode_png(data), img)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), img)
        np.testing.assert_array_equal(decode_image(data, "x.png"), img)
    with pytest.raises(ValueError):
        encode_png(img, 13)


def test_decode_image_bytes_names_path():
    with pytest.raises(ImageError, match=r"^src/x.png: empty file$"):
        decode_image(b"", "src/x.png")


def _paeth_reference(rows: np.ndarray) -> np.ndarray:
    """Slow NumPy PNG Paeth filter (PNG spec §9.4, 3 bytes per pixel), with the filter-type byte per row."""
    r = rows.astype(np.int32)
    a = np.zeros_like(r)
    a[:, 3:] = r[:, :-3]
    b = np.zeros_like(r)
    b[1:] = r[:-1]
    c = np.zeros_like(r)
    c[1:, 3:] = r[:-1, :-3]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return np.concatenate([np.full((len(r), 1), 4), (r - pred) & 255], 1).astype(np.uint8)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (3, 1), (17, 9), (40, 33)])
def test_paeth_filter_matches_reference(shape):
    from degradekit.imageio import _paeth_filter

    img = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    rows = img.reshape(shape[0], -1)
    out = np.empty((shape[0], rows.shape[1] + 1), np.uint8)
    _paeth_filter(rows, out)
    np.testing.assert_array_equal(out, _paeth_reference(rows))


def _fibonacci_bytes(n_symbols: int) -> np.ndarray:
    f = [1, 1]
    while len(f) < n_symbols:
        f.append(f[-1] + f[-2])
    data = np.repeat(np.arange(n_symbols, dtype=np.uint8), f)
    np.random.default_rng(0).shuffle(data)
    return data


@pytest.mark.parametrize("kind", ["empty", "one", "odd", "const", "uniform", "geometric", "fibonacci"])
def test_huffman_deflate_inflates_back(kind):
    """The level-1 coder's zlib stream inflates (stock zlib) to the input; codes are complete and <= 15 bits."""
    from degradekit.imageio import _huffman_lengths, _zlib_huffman

    rng = np.random.default_rng(7)
    data = {"empty": np.zeros(0, np.uint8), "one": np.array([9], np.uint8),
            "odd": rng.integers(0, 256, 1001).astype(np.uint8), "const": np.full(5000, 3, np.uint8),
            "uniform": rng.integers(0, 256, 65536).astype(np.uint8),
            "geometric": np.minimum(rng.geometric(0.3, 40001), 255).astype(np.uint8),
            "fibonacci": _fibonacci_bytes(22)}[kind]  # Fibonacci counts: unlimited Huffman would need 21 bits
    z = _zlib_huffman(data)
    assert zlib.decompress(z) == data.tobytes()
    freq = np.append(np.bincount(data, minlength=256), 1).astype(np.int64)
    if np.count_nonzero(freq) >= 2:
        lengths = np.zeros(257, np.int64)
        _huffman_lengths(freq, 15, lengths)
        assert lengths.max() <= 15 and np.all((lengths > 0) == (freq > 0))
        assert np.sum(2.0 ** -lengths[lengths > 0]) == 1.0  # complete prefix code (Kraft equality)
        if kind == "uniform":  # no limiting needed: an optimal code, within 1 % of the entropy
            p = freq / freq.sum()
            assert np.sum(p * lengths) <= -np.sum(p * np.log2(p)) * 1.01


def test_encode_png_level1_bytes_are_pinned():
    """The default (level-1) bytes depend on our code only: pinned so a change shows up as a new encoder id."""
    import hashlib

    from degradekit.imageio import PNG_ENCODER
    from skimage import data as skdata

    img = np.ascontiguousarray(skdata.astronaut()[100:164, 200:264])
    png = encode_png(img, 1)
    np.testing.assert_array_equal(decode_png(png), img)
    assert "huffman-1" in PNG_ENCODER
    assert hashlib.sha256(png).hexdigest() == PINNED_LEVEL1_SHA256


PINNED_LEVEL1_SHA256 = "46d9a588616feaa3d96ed7853e30413eb893b59c81be054334c624e47d439eb0"


def _png_with_filters(img: np.ndarray, filters, extra_chunks=()) -> bytes:
    """A plain 8-bit RGB PNG whose row r uses filter type filters[r % len(filters)] (reference NumPy filters)."""
    from degradekit.imageio import _chunk

    h, w, _ = img.shape
    r = img.reshape(h, w * 3).astype(np.int32)
    rows = []
    for y in range(h):
        ft = filters[y % len(filters)]
        up = r[y - 1] if y else np.zeros_like(r[y])
        left = np.concatenate([np.zeros(3, np.int32), r[y, :-3]])
        ul = np.concatenate([np.zeros(3, np.int32), up[:-3]])
        if ft == 4:
            p = left + up - ul
            pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - ul)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, ul))
        else:
            pred = [np.zeros_like(left), left, up, (left + up) // 2][ft]
        rows.append(np.concatenate([[ft], (r[y] - pred) & 255]).astype(np.uint8))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(_chunk(t, d) for t, d in extra_chunks)
            + _chunk(b"IDAT", zlib.compress(np.concatenate(rows).tobytes())) + _chunk(b"IEND", b""))


@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (9, 2), (31, 23)])
def test_plain_png_fast_path_equals_pillow(shape):
    """8-bit RGB PNGs (every filter type) take the Numba inflate + unfilter path; pixels equal Pillow's."""
    from degradekit.imageio import _decode_plain_png, check_image

    img = np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8)
    data = _png_with_filters(img, [0, 1, 2, 3, 4, 4, 3, 1], [(b"tEXt", b"Software\0test"), (b"pHYs", bytes(9))])
    fast = _decode_plain_png(data, 10**8)
    assert fast is not None
    np.testing.assert_array_equal(fast, img)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), img)
    np.testing.assert_array_equal(decode_image(data, "x.png"), img)
    assert check_image(data, "x.png") == shape
    assert decode_image(data, "x.png").flags.writeable


def test_plain_png_fast_path_defers_to_pillow():
    """Anything unusual (orientation text, tRNS, bad CRC, truncation, bad filter byte) is left to Pillow,
    which decides (same pixels or the same one-line error as before)."""
    from degradekit.imageio import _chunk, _decode_plain_png, check_image

    img = np.random.default_rng(4).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    good = _png_with_filters(img, [4])
    assert _decode_plain_png(good, 10**8) is not None
    assert _decode_plain_png(good, 100) is None  # over the pixel limit: Pillow's path raises the usual error
    with pytest.raises(ImageError, match="exceeds the limit"):
        check_image(good, "big.png", max_pixels=100)
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    for extra in [(b"tEXt", b"Raw profile type exif\0..."), (b"tEXt", b"XML:com.adobe.xmp\0" + xmp),
                  (b"tRNS", b"\0\0\0\0\0\0")]:
        assert _decode_plain_png(_png_with_filters(img, [4], [extra]), 10**8) is None
    rotated = _png_with_filters(img, [4], [(b"tEXt", b"XML:com.adobe.xmp\0" + xmp)])
    assert decode_image(rotated, "r.png").shape == (10, 12, 3)  # Pillow's XMP orientation is applied
    assert check_image(rotated, "r.png") == (10, 12)
    # A bad IDAT CRC: not the fast path; Pillow (which does not check it) still decodes.
    i = good.index(b"IDAT")
    bad_crc = bytearray(good)
    bad_crc[i + 4] ^= 1
    assert _decode_plain_png(bytes(bad_crc), 10**8) is None
    # Truncated stream / bad filter byte: not the fast path, and Pillow's error as before.
    raw = zlib.decompress(good[i + 4:good.index(b"IEND") - 8])
    for payload in [zlib.compress(raw)[:-9], zlib.compress(b"\x07" + raw[1:])]:
        data = good[:i - 4] + _chunk(b"IDAT", payload) + _chunk(b"IEND", b"")
        assert _decode_plain_png(data, 10**8) is None
        with pytest.raises(ImageError):
            check_image(data, "t.png")
        with pytest.raises(ImageError):
            decode_image(data, "t.png")


def _jpeg_bytes(img, **kw) -> bytes:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(buf, "JPEG", **kw)
    return buf.getvalue()


def test_check_image_agrees_with_decode_image_on_jpegs():
    """The scan's 1/8-scale JPEG check accepts exactly what the full decode accepts (sizes after EXIF
    orientation), on good, EXIF-rotated, gray, CMYK, progressive, truncated and corrupted JPEGs."""
    from degradekit.imageio import check_image

    img = np.random.default_rng(5).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    good = _jpeg_bytes(img, quality=90)
    cases = [good, _jpeg_bytes(img, exif=exif.tobytes()), _jpeg_bytes(img[..., 0]), _jpeg_bytes(img, progressive=True),
             _jpeg_bytes(Image.fromarray(img).convert("CMYK"))]
    for cut in (len(good) // 3, len(good) // 2, len(good) - 40, len(good) - 2):
        cases.append(good[:cut])
    sos = good.index(b"\xff\xda")
    for off in (40, 200, 600):
        bad = bytearray(good)
        bad[sos + off:sos + off + 4] = b"\xff\xd9\xff\xd9"  # an early end-of-image marker inside the scan
        cases.append(bytes(bad))
    outcomes = []
    for data in cases:
        try:
            want = decode_image(data, "x.jpg").shape[:2]
        except ImageError as e:
            with pytest.raises(ImageError) as got:
                check_image(data, "x.jpg")
            assert str(got.value) == str(e)
            outcomes.append("error")
        else:
            assert check_image(data, "x.jpg") == want
            outcomes.append(want)
    assert outcomes[1] == (56, 40) and "error" in outcomes  # both branches exercised
