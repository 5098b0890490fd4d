"""degradekit.ops.quantize.to_uint8: round(255 x) half to even, clipped."""

import numpy as np
import pytest

from degradekit.ops.quantize import to_uint8


def test_rounding_and_clipping():
    x = np.array([[[0.0, 1.0, 0.5 / 255], [1.5 / 255, 2.5 / 255, 127.5 / 255],
                   [-0.3, 1.7, 0.4999 / 255], [254.6 / 255, 0.2, 0.8]]], np.float32)
    out = to_uint8(x)
    assert out.dtype == np.uint8 and out.shape == x.shape
    ref = np.clip(np.rint(x * np.float32(255)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, ref)
    assert list(out[0, 0]) == [0, 255, 0]
    assert list(out[0, 1]) == [2, 2, 128]  # half to even (as torch.round)
    assert list(out[0, 2]) == [0, 255, 0]
    assert out[0, 3, 0] == 255


def test_random_vs_numpy_and_roundtrip():
    x = np.random.default_rng(0).random((31, 17, 3), dtype=np.float32) * 1.2 - 0.1
    np.testing.assert_array_equal(to_uint8(x), np.clip(np.rint(x * np.float32(255)), 0, 255).astype(np.uint8))
    u8 = np.random.default_rng(1).integers(0, 256, (9, 9, 3)).astype(np.uint8)
    np.testing.assert_array_equal(to_uint8(u8.astype(np.float32) / np.float32(255)), u8)


def test_rejects_wrong_input():
    with pytest.raises(TypeError):
        to_uint8(np.zeros((4, 4, 3), np.float64))
    with pytest.raises(ValueError):
        to_uint8(np.zeros((4, 4, 4), np.float32))
