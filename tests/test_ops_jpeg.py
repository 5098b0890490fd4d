"""degradekit.ops.jpeg: a real libjpeg round trip, byte-equal to a plain cv2 encode/decode."""

import cv2
import numpy as np
import pytest
from skimage import data

from degradekit.ops import jpeg as J  # the module
from degradekit.ops.jpeg import jpeg


@pytest.fixture(scope="module")
def img():
    return (data.astronaut()[100:260, 150:330] / 255).astype(np.float32)


def plain_roundtrip(img, q):
    q8 = np.clip(np.rint(np.clip(img, 0, 1) * np.float32(255)), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(q8[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


@pytest.mark.parametrize("q", [30, 57, 95])
def test_byte_equal_to_plain_encode_decode(img, q):
    out = jpeg(img, q)
    assert out.dtype == np.float32 and out.shape == img.shape
    dec = plain_roundtrip(img, q)
    np.testing.assert_array_equal(np.rint(out * 255).astype(np.uint8), dec)
    np.testing.assert_array_equal(out, dec.astype(np.float32) / np.float32(255))


def test_quality_matters_and_compression_is_lossy(img):
    e30 = np.abs(jpeg(img, 30) - img).mean()
    e95 = np.abs(jpeg(img, 95) - img).mean()
    assert e30 > 2 * e95 > 0
    assert np.abs(jpeg(img, 100) - img).mean() < 2 / 255  # 4:2:0 chroma still loses colour edges


def test_channel_order_is_rgb_through_the_codec():
    # saturated red must stay red (a BGR/RGB mix-up inside the codec gives wrong chroma on 4:2:0 edges,
    # and the byte test above would fail); also the output stays in [0, 1]
    red = np.zeros((32, 32, 3), np.float32)
    red[..., 0] = 1.0
    out = jpeg(red, 50)
    assert out[..., 0].mean() > 0.95 and out[..., 1:].mean() < 0.05


def test_out_of_range_input_is_clipped_before_quantisation(img):
    wild = img * 1.6 - 0.3
    np.testing.assert_array_equal(jpeg(wild, 70), jpeg(np.clip(wild, 0, 1), 70))


def test_conversion_kernels_vs_numpy():
    x = np.random.default_rng(0).random((7, 11, 3), dtype=np.float32) * 1.4 - 0.2
    x[0, 0] = [0.5 / 255, 1.5 / 255, 2.5 / 255]  # ties: round half to even -> 0, 2, 2
    q8 = np.empty(x.shape, np.uint8)
    J._quantize_bgr(x.reshape(-1), q8.reshape(-1))
    ref = np.rint(np.clip(x, 0, 1) * np.float32(255)).astype(np.uint8)[..., ::-1]
    np.testing.assert_array_equal(q8, ref)
    assert list(q8[0, 0]) == [2, 2, 0]
    out = np.empty(x.shape, np.float32)
    J._bgr_to_float(q8.reshape(-1), out.reshape(-1))
    np.testing.assert_array_equal(out, q8[..., ::-1].astype(np.float32) / np.float32(255))


@pytest.mark.parametrize("q, exc", [(0, ValueError), (101, ValueError), (50.0, TypeError), (True, TypeError)])
def test_bad_quality(q, exc):
    with pytest.raises(exc, match="quality"):
        jpeg(np.zeros((8, 8, 3), np.float32), q)


def test_tiny_and_odd_sizes():
    for shape in ((1, 1, 3), (3, 17, 3), (9, 2, 3)):
        x = np.random.default_rng(1).random(shape, dtype=np.float32)
        np.testing.assert_array_equal(np.rint(jpeg(x, 80) * 255).astype(np.uint8), plain_roundtrip(x, 80))
