"""Weight-file layouts (issue 10): ESRGAN's model.N files (x4 and the pixel-unshuffle x2 / x1 forms) load
everywhere a generator file is read (infer, fit --init via read_state, interp, export) with identical outputs;
export writes either layout; safetensors carry the architecture in their metadata; save_weights is durable and
writes 0644 files (issue 9)."""
from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import cli
from trainer.archs import RRDBNet
from trainer.checkpoint import WeightError, load_generator, read_state, save_weights
from trainer.weights import detect_layout, to_basicsr, to_esrgan

pytestmark = pytest.mark.usefixtures("torch_one_thread")

CFG = {"num_feat": 8, "num_block": 2, "num_grow_ch": 4}


def _net(scale, seed=0):
    torch.manual_seed(seed)
    net = RRDBNet(scale=scale, **CFG).eval()
    with torch.no_grad():     # non-trivial weights everywhere (biases too), so a swapped tensor shows
        for p in net.parameters():
            p.normal_(0, 0.2)
    return net


def _old_layout(state: dict, num_block: int) -> dict:
    """The documented mapping, written out independently of trainer.weights (ESRGAN's Sequential indices)."""
    top = {"conv_first": "model.0", "conv_body": f"model.1.sub.{num_block}", "conv_up1": "model.3",
           "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for k, v in state.items():
        parts = k.split(".")
        if parts[0] == "body":               # body.I.rdbJ.convK.{weight,bias} -> model.1.sub.I.RDBJ.convK.0.*
            _, i, rdb, conv, kind = parts
            out[f"model.1.sub.{i}.RDB{rdb[3:]}.{conv}.0.{kind}"] = v
        else:
            out[f"{top[parts[0]]}.{parts[1]}"] = v
    return out


def _forward(net, scale):
    x = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_old_esrgan_layout_loads_with_identical_outputs(tmp_path, scale):
    net = _net(scale)
    old = _old_layout(net.state_dict(), CFG["num_block"])
    assert old["model.0.weight"].shape[1] == {4: 3, 2: 12, 1: 48}[scale]    # pixel-unshuffle forms
    assert "model.1.sub.1.RDB3.conv5.0.bias" in old and "model.1.sub.2.weight" in old and "model.10.bias" in old
    assert detect_layout(old) == "esrgan"
    torch.save(old, tmp_path / "bare.pth")                        # ESRGAN's release / chaiNNer: a bare dict
    torch.save({"params_ema": old}, tmp_path / "wrapped.pth")     # traiNNer-redux style wrapper
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in old.items()}, str(tmp_path / "old.safetensors"))
    ref = _forward(net, scale)
    for name in ("bare.pth", "wrapped.pth", "old.safetensors"):
        loaded, cfg = load_generator(tmp_path / name)
        assert cfg == {"num_in_ch": 3, "num_out_ch": 3, "scale": scale, **CFG}
        assert torch.equal(_forward(loaded, scale), ref), name
        # fit --init reads through read_state: BasicSR names, the same tensors
        st = read_state(tmp_path / name)
        assert st.keys() == net.state_dict().keys()
        assert all(torch.equal(st[k], v) for k, v in net.state_dict().items())


def test_conversion_round_trips_and_orders_keys():
    net = _net(4)
    sd = net.state_dict()
    old = to_esrgan(sd)
    assert set(old) == set(_old_layout(sd, 2)) and all(old[k] is v for k, v in _old_layout(sd, 2).items())
    keys = list(old)
    assert keys[:2] == ["model.0.weight", "model.0.bias"] and keys[-2:] == ["model.10.weight", "model.10.bias"]
    assert keys.index("model.8.weight") < keys.index("model.10.weight")     # numeric, not string order
    back = to_basicsr(old)
    assert back.keys() == sd.keys() and all(back[k] is sd[k] for k in sd)
    # the 2019 names
    ren = {"body": "RRDB_trunk", "conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2",
           "conv_hr": "HRconv"}
    y19 = {}
    for k, v in sd.items():
        head, _, rest = k.partition(".")
        y19[f"{ren.get(head, head)}.{rest.replace('rdb', 'RDB')}"] = v
    assert detect_layout(y19) == "esrgan2019" and to_basicsr(y19).keys() == sd.keys()


def test_unsupported_old_layouts_are_one_line_errors(tmp_path):
    old = _old_layout(_net(4).state_dict(), 2)
    # a native-x2 ESRGAN net (one upsampler: convs at 0, 3, 5, 7) is another architecture
    native2 = {k: v for k, v in old.items() if not k.startswith(("model.6.", "model.8.", "model.10."))}
    native2.update({"model.5.weight": old["model.8.weight"], "model.5.bias": old["model.8.bias"],
                    "model.7.weight": old["model.10.weight"], "model.7.bias": old["model.10.bias"]})
    torch.save(native2, tmp_path / "x2native.pth")
    with pytest.raises(WeightError) as e:
        load_generator(tmp_path / "x2native.pth")
    assert str(e.value).startswith(str(tmp_path / "x2native.pth")) and "1 upsampling conv" in str(e.value)
    assert "\n" not in str(e.value)
    torch.save({**old, "model.1.sub.0.RDB1.extra.weight": torch.zeros(1)}, tmp_path / "odd.pth")
    with pytest.raises(WeightError, match="odd.pth: ESRGAN layout: unexpected key"):
        read_state(tmp_path / "odd.pth")
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WeightError, match=r"other.pth: not an RRDBNet state_dict .*model\.0\.weight"):
        load_generator(tmp_path / "other.pth")


def _header(path: Path) -> dict:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n])


def test_safetensors_metadata_written_and_checked(tmp_path):
    from safetensors.torch import save_file
    net = _net(2)
    save_weights(tmp_path / "g.safetensors", net.state_dict())
    meta = _header(tmp_path / "g.safetensors")["__metadata__"]
    assert meta == {"format": "pt", "arch": "RRDBNet", "layout": "basicsr", "scale": "2", "num_in_ch": "3",
                    "num_out_ch": "3", "num_feat": "8", "num_block": "2", "num_grow_ch": "4"}
    assert load_generator(tmp_path / "g.safetensors")[1]["scale"] == 2
    # esrgan layout in a safetensors file: the metadata says so
    save_weights(tmp_path / "o.safetensors", net.state_dict(), layout="esrgan")
    assert _header(tmp_path / "o.safetensors")["__metadata__"]["layout"] == "esrgan"
    assert "model.0.weight" in _header(tmp_path / "o.safetensors")
    assert torch.equal(_forward(load_generator(tmp_path / "o.safetensors")[0], 2), _forward(net, 2))
    # metadata that contradicts the tensors is refused, naming file and field
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(sd, str(tmp_path / "lie.safetensors"), metadata={"num_block": "23", "scale": "2"})
    with pytest.raises(WeightError, match=r"lie.safetensors: metadata says num_block 23 but the tensors give 2"):
        read_state(tmp_path / "lie.safetensors")
    save_file(sd, str(tmp_path / "nan.safetensors"), metadata={"scale": "four"})
    with pytest.raises(WeightError, match=r"nan.safetensors: metadata scale = 'four' is not an integer"):
        load_generator(tmp_path / "nan.safetensors")
    save_file(sd, str(tmp_path / "arch.safetensors"), metadata={"arch": "SwinIR"})
    with pytest.raises(WeightError, match=r"arch.safetensors: metadata says arch 'SwinIR'"):
        load_generator(tmp_path / "arch.safetensors")
    for name in ("ESRGAN", "RealESRGAN_x4plus", "rrdbnet"):      # other tools' names for this net pass
        save_file(sd, str(tmp_path / "named.safetensors"), metadata={"arch": name, "num_feat": "8"})
        assert load_generator(tmp_path / "named.safetensors")[1]["num_feat"] == 8
    save_file(sd, str(tmp_path / "plain.safetensors"))           # no metadata: read from the tensors
    assert load_generator(tmp_path / "plain.safetensors")[1]["num_block"] == 2
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightError, match="bad.safetensors: cannot read safetensors"):
        read_state(tmp_path / "bad.safetensors")


def test_save_weights_mode_and_durability(tmp_path, monkeypatch):
    old_umask = os.umask(0o022)
    try:
        net = _net(4)
        for name in ("net_g_ema.safetensors", "net_g_1.pth", "old.pth"):
            save_weights(tmp_path / name, net.state_dict(), ema=net.state_dict(),
                         layout="esrgan" if name == "old.pth" else "basicsr")
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    finally:
        os.umask(old_umask)
    # fsync of the temp file before the rename, of the folder after it
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", Path(b).name))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save_weights(tmp_path / "w.safetensors", net.state_dict())
    assert events == [("fsync", False), ("replace", "w.safetensors"), ("fsync", True)]
    monkeypatch.undo()
    # a full disk while writing leaves the previous file intact and no temporary
    before = (tmp_path / "net_g_1.pth").read_bytes()

    def full_disk(obj, f):
        Path(f).write_bytes(b"PK\x03\x04half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_weights(tmp_path / "net_g_1.pth", _net(4, 5).state_dict())
    monkeypatch.undo()
    assert (tmp_path / "net_g_1.pth").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp" in p.name) == []


def test_esrgan_layout_pth_is_a_bare_dict(tmp_path):
    net = _net(1)
    save_weights(tmp_path / "e.pth", net.state_dict(), ema=net.state_dict(), layout="esrgan")
    obj = torch.load(tmp_path / "e.pth", weights_only=True)
    assert list(obj) == list(to_esrgan(net.state_dict()))          # no params/params_ema wrapper
    with pytest.raises(ValueError, match="layout must be"):
        save_weights(tmp_path / "x.pth", net.state_dict(), layout="chainner")


def run(*args):
    return CliRunner().invoke(cli.trainer, [str(a) for a in args])


def test_cli_export_interp_infer_on_old_layout_files(tmp_path):
    import cv2
    a, b = _net(4, 1), _net(4, 2)
    torch.save(_old_layout(a.state_dict(), 2), tmp_path / "a_old.pth")      # ESRGAN layout
    save_weights(tmp_path / "b.pth", b.state_dict(), ema=b.state_dict())     # BasicSR layout
    # export into the other layout and back
    r = run("export", tmp_path / "a_old.pth", "--pth", tmp_path / "a_new.pth", "--safetensors",
            tmp_path / "a.safetensors")
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "basicsr layout, x4, 2 blocks" in r.output
    obj = torch.load(tmp_path / "a_new.pth", weights_only=True)
    assert set(obj) == {"params", "params_ema"} and "conv_first.weight" in obj["params_ema"]
    r = run("export", tmp_path / "a_new.pth", "--layout", "esrgan", "--pth", tmp_path / "a_back.pth")
    assert r.exit_code == 0, r.output
    back = torch.load(tmp_path / "a_back.pth", weights_only=True)
    want = _old_layout(a.state_dict(), 2)
    assert back.keys() == want.keys() and all(torch.equal(back[k], want[k]) for k in want)
    r = run("export", tmp_path / "a_old.pth", "--onnx", tmp_path / "a.onnx", "--no-check")
    assert r.exit_code == 0, r.output
    assert run("export", tmp_path / "a_old.pth", "--pth", tmp_path / "x.onnx").exit_code == 2
    # interp: an ESRGAN file with a BasicSR file
    r = run("interp", tmp_path / "a_old.pth", tmp_path / "b.pth", "--alpha", "0.25", "--out", tmp_path / "m.pth")
    assert r.exit_code == 0, r.output
    m = read_state(tmp_path / "m.pth")
    torch.testing.assert_close(m["body.1.rdb2.conv3.weight"],
                               0.75 * a.state_dict()["body.1.rdb2.conv3.weight"]
                               + 0.25 * b.state_dict()["body.1.rdb2.conv3.weight"])
    r = run("interp", tmp_path / "a_old.pth", tmp_path / "b.pth", "--alpha", "0", "--layout", "esrgan",
            "--out", tmp_path / "m_old.pth")
    assert r.exit_code == 0 and "model.1.sub.2.weight" in torch.load(tmp_path / "m_old.pth", weights_only=True)
    # infer with the ESRGAN file equals infer with its BasicSR export
    img = (np.random.default_rng(0).random((12, 16, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "i.png"), img)
    for w, o in (("a_old.pth", "o1"), ("a.safetensors", "o2")):
        r = run("infer", tmp_path / w, tmp_path / "i.png", "--out", tmp_path / o)
        assert r.exit_code == 0, r.output
    o1 = cv2.imread(str(tmp_path / "o1" / "i_out.png"))
    assert o1.shape == (48, 64, 3) and np.array_equal(o1, cv2.imread(str(tmp_path / "o2" / "i_out.png")))


def test_fit_init_from_an_old_layout_file(tmp_path):
    from test_trainer_fixtures import make_shards
    shards = make_shards(tmp_path / "s", n=4, shard_size=2, hr_size=64)
    torch.manual_seed(7)
    init = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4).state_dict()
    old = _old_layout(init, 1)
    torch.save(old, tmp_path / "RRDB_old.pth")
    r = run("fit", *shards, "--out", tmp_path / "run", "--iters", "1", "--init", tmp_path / "RRDB_old.pth",
            "--num-feat", "8", "--num-block", "1", "--num-grow-ch", "4", "--batch-size", "2", "--gt-size", "32",
            "--workers", "0", "--no-tensorboard", "--device", "cpu", "--seed", "3")
    assert r.exit_code == 0, r.output
    assert "generator initialised from" in r.output
    ema = read_state(tmp_path / "run" / "esrnet" / "net_g_0000001.pth")
    # one Adam step of lr 2e-4 (then EMA 0.999 of it) from the file's weights, not from the seed's own init
    assert max((ema[k] - init[k]).abs().max().item() for k in init) < 1e-3
    torch.manual_seed(3)
    own = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4).state_dict()
    assert max((ema[k] - own[k]).abs().max().item() for k in init) > 1e-2
