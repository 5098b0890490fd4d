"""Tiled inference equals untiled; image formats (16-bit, alpha, gray); interpolation; ONNX export."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from trainer.archs import RRDBNet
from trainer.checkpoint import read_state, save_weights
from trainer.infer import InferError, read_image_any, tiled_forward, upscale, write_image_any
from trainer.interp import interpolate_files, interpolate_states


def _net(scale, seed=0, gain=1.0):
    torch.manual_seed(seed)
    net = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4).eval()
    with torch.no_grad():     # full-strength weights: the receptive field really matters
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, gain / (m.in_channels * 9) ** 0.5)
    return net


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize(("scale", "size", "tile", "pad"),
                         [(4, (72, 88), 32, 20), (2, (120, 136), 48, 40), (1, (200, 232), 96, 80)])
def test_tiled_equals_untiled_when_the_context_covers_the_receptive_field(scale, size, tile, pad):
    net = _net(scale)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = net(x)
    # receptive-field radius: 17 px at the trunk's resolution (1/1, 1/2, 1/4 of the input for x4, x2, x1)
    # plus < 1 px after upsampling -> context 20 / 40 / 80 input px
    y = tiled_forward(net, x, scale=scale, tile=tile, tile_overlap=8, tile_pad=pad)
    assert y.shape == ref.shape
    assert (y - ref).abs().max().item() < 1e-4
    # too little context: the tiles visibly differ (so the test above can fail)
    bad = tiled_forward(net, x, scale=scale, tile=tile, tile_overlap=8, tile_pad=0)
    assert (bad - ref).abs().max().item() > 1e-3


def test_blending_weights_hide_seams_without_context():
    net = _net(4)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = net(x)
    hard = tiled_forward(net, x, scale=4, tile=32, tile_overlap=4, tile_pad=0)
    soft = tiled_forward(net, x, scale=4, tile=32, tile_overlap=16, tile_pad=0)
    assert (soft - ref).abs().max() < (hard - ref).abs().max()


def test_upscale_formats(tmp_path):
    net = _net(2, gain=0.5)
    rgb = skimage.data.astronaut()[:40, :52]
    out = upscale(net, rgb, scale=2)
    assert out.shape == (80, 104, 3) and out.dtype == np.uint8
    # 16-bit keeps 16 bits, values consistent with the 8-bit path
    out16 = upscale(net, rgb.astype(np.uint16) * 257, scale=2)
    assert out16.dtype == np.uint16 and np.abs(out16 / 257.0 - out).max() <= 1.0
    # gray in, gray out
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert upscale(net, gray, scale=2).shape == (80, 104)
    # alpha: color through the net, alpha bicubic (or the net)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    o4 = upscale(net, rgba, scale=2)
    assert o4.shape == (80, 104, 4) and np.array_equal(o4[..., :3], out) and (o4[..., 3] == 200).all()
    assert upscale(net, rgba, scale=2, alpha="net").shape == (80, 104, 4)
    # tiled with pre-pad and odd sizes (x2 needs even sizes: mod-pad)
    odd = skimage.data.coffee()[:37, :45]
    a = upscale(net, odd, scale=2, tile=0)
    b = upscale(net, odd, scale=2, tile=16, tile_overlap=4, tile_pad=24)
    assert a.shape == (74, 90, 3) and np.abs(a.astype(int) - b).max() <= 1
    assert upscale(net, odd, scale=2, outscale=1.5).shape == (56, 68, 3)
    # file round trip keeps depth/alpha
    for img in (out16, o4, gray):
        write_image_any(tmp_path / "x.png", img)
        back = read_image_any(tmp_path / "x.png")
        assert back.dtype == img.dtype and np.array_equal(back, img)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InferError, match="bad.png: not a readable image"):
        read_image_any(tmp_path / "bad.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InferError, match="empty.png: empty file"):
        read_image_any(tmp_path / "empty.png")


def test_network_interpolation(tmp_path):
    a, b = _net(4, 1).state_dict(), _net(4, 2).state_dict()
    save_weights(tmp_path / "a.pth", a, ema=a)
    torch.save({"params": b}, tmp_path / "b.pth")
    res = interpolate_files(tmp_path / "a.pth", tmp_path / "b.pth", 0.8, tmp_path / "c.pth")
    for k in a:
        torch.testing.assert_close(res[k], 0.2 * a[k] + 0.8 * b[k])
    c = read_state(tmp_path / "c.pth")
    assert all(torch.equal(c[k], res[k]) for k in c)
    assert all(torch.equal(interpolate_states(a, b, 0.0)[k], a[k]) for k in a)
    with pytest.raises(ValueError, match="different keys"):
        interpolate_states(a, {**b, "extra": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        interpolate_states(a, b, 1.5)


def test_onnx_export_runs_in_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    from trainer.export import export_onnx
    net = _net(2, gain=0.5)
    save_weights(tmp_path / "g.pth", net.state_dict(), ema=net.state_dict())
    res = export_onnx(tmp_path / "g.pth", tmp_path / "g.onnx")
    assert res["checked"] and res["max_abs_diff"] < 1e-4 and res["scale"] == 2
