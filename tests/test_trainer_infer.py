"""Tiled inference equals untiled; image formats (16-bit, alpha, gray); interpolation; ONNX export."""
from __future__ import annotations

import os

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


# ------------------------------------------------ `trainer infer` as the published command (issues 9, 10)
def _run(*args):
    from click.testing import CliRunner

    import cli
    return CliRunner().invoke(cli.trainer, [str(a) for a in args])


def _weights(tmp_path, scale=4, gain=0.5):
    net = _net(scale, gain=gain)
    save_weights(tmp_path / "g.pth", net.state_dict(), ema=net.state_dict())
    return net, tmp_path / "g.pth"


@pytest.mark.parametrize("scale", [4, 2])
def test_infer_defaults_to_no_pre_pad(tmp_path, scale):
    net, w = _weights(tmp_path, scale, gain=1.0)
    img = skimage.data.astronaut()[100:136, 200:244]          # 44 x 36: no mod-pad needed at x2
    cv2.imwrite(str(tmp_path / "a.png"), img[..., ::-1])
    r = _run("infer", w, tmp_path / "a.png", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    got = cv2.imread(str(tmp_path / "o" / "a_out.png"))[..., ::-1]
    # inference_realesrgan.py: no padding at all, the net on the whole image, clamp, round
    with torch.no_grad():
        y = net(torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None])
    want = np.round(y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert np.array_equal(got, want)
    # the RealESRGANer class default (10) differs along the bottom and right edges only
    r = _run("infer", w, tmp_path / "a.png", "--out", tmp_path / "o10", "--pre-pad", "10")
    assert r.exit_code == 0, r.output
    p10 = cv2.imread(str(tmp_path / "o10" / "a_out.png"))[..., ::-1].astype(int)
    diff = np.abs(p10 - want).max(axis=2)
    assert diff.max() > 2 and diff[: diff.shape[0] // 2, : diff.shape[1] // 2].max() <= 1


def test_infer_tile_not_above_overlap_is_one_line(tmp_path):
    _, w = _weights(tmp_path)
    cv2.imwrite(str(tmp_path / "a.png"), skimage.data.chelsea()[:40, :48, ::-1])
    r = _run("infer", w, tmp_path / "a.png", "--out", tmp_path / "o", "--tile", "8")
    assert r.exit_code == 2 and "--tile 8 must be larger than --tile-overlap 32" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()
    # the library call says the same in one line; rounding up to the unshuffle factor never trips it
    x = torch.rand(1, 3, 40, 48)
    with pytest.raises(ValueError, match="tile 8 must be larger than the tile overlap 32"):
        tiled_forward(_net(4), x, scale=4, tile=8, tile_overlap=32)
    x1 = torch.rand(1, 3, 40, 48)
    assert tiled_forward(_net(1), x1, scale=1, tile=6, tile_overlap=5, tile_pad=4).shape == (1, 3, 40, 48)


def test_infer_skips_fifo_and_reports_undecodable_image(tmp_path):
    import struct
    import subprocess
    import sys
    import zlib
    from pathlib import Path
    _, w = _weights(tmp_path)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "b.png"), skimage.data.chelsea()[:20, :24, ::-1])
    os.mkfifo(src / "a_fifo.png")                 # nobody writes: reading it would block forever

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    # a valid PNG header claiming 10^10 pixels: OpenCV refuses it with cv2.error (no None)
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 10**5, 10**5, 8, 2, 0, 0, 0))
    (src / "a_huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                                     + chunk(b"IEND", b""))
    # a real subprocess with a timeout: the old code blocked on the FIFO
    code = "import sys, cli; sys.argv[0] = 'trainer'; cli.trainer()"
    p = subprocess.run([sys.executable, "-c", code, "infer", str(w), str(src), str(src / "a_fifo.png"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).parent.parent)
    err = p.stderr
    assert "Traceback" not in err, err
    assert err.count("a_fifo.png: a FIFO, not a regular file; skipped") == 2       # folder scan and argument
    assert "error: " + str(src / "a_huge.png") + ": not a decodable image" in err
    assert "1 of 2 image(s) failed (2 skipped)" in err and p.returncode == 1
    assert cv2.imread(str(tmp_path / "o" / "b_out.png")).shape == (80, 96, 3)      # the other input is written
    # read_image_any itself refuses non-regular files instead of blocking
    with pytest.raises(InferError, match="a_fifo.png: not a regular file"):
        read_image_any(src / "a_fifo.png")
    # only FIFOs: nothing to do, one line
    r = _run("infer", w, src / "a_fifo.png", "--out", tmp_path / "o2")
    assert r.exit_code == 1 and "no images found" in r.output


def test_infer_precision_flags_on_cpu(tmp_path):
    _, w = _weights(tmp_path)
    cv2.imwrite(str(tmp_path / "a.png"), skimage.data.chelsea()[:12, :16, ::-1])
    r = _run("infer", w, tmp_path / "a.png", "--out", tmp_path / "o", "--half", "--device", "cpu")
    assert r.exit_code == 0 and "--half needs CUDA; running in fp32" in r.output
    r = _run("infer", w, tmp_path / "a.png", "--out", tmp_path / "o2", "--fp32", "--device", "cpu")
    assert r.exit_code == 0 and "needs CUDA" not in r.output
    assert np.array_equal(cv2.imread(str(tmp_path / "o" / "a_out.png")), cv2.imread(str(tmp_path / "o2" / "a_out.png")))
    assert "fp16 is the default on CUDA" in " ".join(_run("infer", "--help").output.split())


def test_infer_full_disk_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch):
    _, w = _weights(tmp_path)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), skimage.data.chelsea()[:12, :16, ::-1])
    import builtins

    import trainer.infer as ti

    class Full:                       # the file fills up after a few bytes
        def __init__(self, f):
            self.fh = builtins.open(f, "wb")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[:10])
            raise OSError(28, "No space left on device")

    def fake_open(f, mode="r", *a, **kw):
        return Full(f) if str(f).endswith("a_out.png.tmp") else builtins.open(f, mode, *a, **kw)

    monkeypatch.setattr(ti, "open", fake_open, raising=False)
    r = _run("infer", w, tmp_path / "a.png", tmp_path / "b.png", "--out", tmp_path / "o")
    assert r.exit_code == 1 and "a.png: [Errno 28] No space left on device" in r.output
    assert "Traceback" not in r.output and "1 of 2 image(s) failed" in r.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["b_out.png"]
