"""Networks against the published implementation's outputs (tests/data/archs.npz, from BasicSR 1.4.2),
parameter counts and key names of the full configurations, weight-file formats, VGG19 loading."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.archs import RRDBNet, UNetDiscriminatorSN, VGG19Features, resolve_vgg_weights, rrdb_config_from_state
from trainer.checkpoint import WeightError, load_generator, read_state, save_weights

DATA = Path(__file__).parent / "data"

pytestmark = pytest.mark.usefixtures("torch_one_thread")



@pytest.fixture(scope="module")
def ref():
    return np.load(DATA / "archs.npz")


@pytest.fixture(scope="module")
def meta():
    return json.loads((DATA / "archs.json").read_text())


def _state(ref, prefix):
    return {k[len(prefix):]: torch.from_numpy(ref[k]) for k in ref.files if k.startswith(prefix)}


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_rrdbnet_matches_reference_outputs(ref, meta, scale):
    small = meta["small_configs"]["rrdb"]
    net = RRDBNet(scale=scale, **small).eval()
    state = _state(ref, f"rrdb_x{scale}/state/")
    net.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = net(torch.from_numpy(ref[f"rrdb_x{scale}/input"]))
    expected = ref[f"rrdb_x{scale}/output"]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5, rtol=0)
    # the architecture is recoverable from the state_dict alone
    assert rrdb_config_from_state(state) == {"num_in_ch": 3, "num_out_ch": 3, "scale": scale, **small}


def test_discriminator_matches_reference_output(ref, meta):
    d = UNetDiscriminatorSN(**meta["small_configs"]["unet_disc"])
    state = _state(ref, "unet_disc/state/")
    assert set(d.state_dict()) == set(state)   # weight_orig / weight_u / weight_v key layout
    d.load_state_dict(state, strict=True)
    d.eval()
    with torch.no_grad():
        out = d(torch.from_numpy(ref["unet_disc/input"]))
    np.testing.assert_allclose(out.numpy(), ref["unet_disc/output"], atol=1e-5, rtol=0)
    # eval mode must not run power iterations (u unchanged)
    assert torch.equal(d.conv1.weight_u, state["conv1.weight_u"])


def test_full_size_parameter_counts_and_keys(meta):
    for scale in (4, 2, 1):
        net = RRDBNet(scale=scale)
        assert sum(p.numel() for p in net.parameters()) == meta["rrdb_param_counts"][str(scale)]
        if scale == 4:
            assert list(net.state_dict()) == meta["rrdb_x4_full_keys"]
    d = UNetDiscriminatorSN()
    assert sum(p.numel() for p in d.parameters()) == meta["unet_disc_full_params"] == 4_376_897


def test_arch_detection_of_released_style_files(tmp_path):
    # 6-block anime-style model (num_feat 64, grow 32) and a x2 model: architecture read from the file
    for kw in ({"scale": 4, "num_feat": 8, "num_block": 6, "num_grow_ch": 4},
               {"scale": 2, "num_feat": 12, "num_block": 2, "num_grow_ch": 6},
               {"scale": 1, "num_feat": 8, "num_block": 1, "num_grow_ch": 4}):
        net = RRDBNet(**kw)
        torch.save({"params_ema": net.state_dict()}, tmp_path / "m.pth")
        loaded, cfg = load_generator(tmp_path / "m.pth")
        assert {k: cfg[k] for k in kw} == kw
        x = torch.rand(1, 3, 8, 8)
        with torch.no_grad():
            assert torch.equal(loaded(x), net.eval()(x))


def test_weight_file_round_trips(tmp_path):
    torch.manual_seed(0)
    a, b = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    sa, sb = a.state_dict(), b.state_dict()
    # {params, params_ema}: params_ema wins; key= picks the other
    save_weights(tmp_path / "w.pth", sa, ema=sb)
    assert all(torch.equal(read_state(tmp_path / "w.pth")[k], sb[k]) for k in sb)
    assert all(torch.equal(read_state(tmp_path / "w.pth", key="params")[k], sa[k]) for k in sa)
    # only params
    torch.save({"params": sa}, tmp_path / "p.pth")
    assert all(torch.equal(read_state(tmp_path / "p.pth")[k], sa[k]) for k in sa)
    # bare state_dict, with a DDP "module." prefix
    torch.save({f"module.{k}": v for k, v in sa.items()}, tmp_path / "bare.pth")
    assert all(torch.equal(read_state(tmp_path / "bare.pth")[k], sa[k]) for k in sa)
    # safetensors (EMA)
    save_weights(tmp_path / "w.safetensors", sa, ema=sb)
    st = read_state(tmp_path / "w.safetensors")
    assert st.keys() == sb.keys() and all(torch.equal(st[k], sb[k]) for k in sb)
    # errors name the file
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(WeightError, match="junk.pth"):
        read_state(tmp_path / "junk.pth")
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WeightError, match="other.pth: not an RRDBNet"):
        load_generator(tmp_path / "other.pth")
    with pytest.raises(WeightError, match="missing.pth: weight file not found"):
        read_state(tmp_path / "missing.pth")


def test_vgg19_loads_torchvision_layout_and_reports_missing_weights(tmp_path, monkeypatch):
    vgg = VGG19Features()
    assert [k for k in vgg.state_dict()][:2] == ["features.0.weight", "features.0.bias"]
    assert "features.34.weight" in vgg.state_dict() and "features.35.weight" not in vgg.state_dict()
    # a torchvision-style file (full 16 convs + classifier) with random weights
    torch.manual_seed(1)
    full = {}
    convs = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    widths = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
    cin = 3
    for i, w in zip(convs, widths):
        full[f"features.{i}.weight"] = torch.randn(w, cin, 3, 3) * 0.01
        full[f"features.{i}.bias"] = torch.randn(w) * 0.01
        cin = w
    full["classifier.0.weight"] = torch.randn(4, 4)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(full, path)
    vgg.load_torchvision(path)
    assert torch.equal(vgg.features[34].weight, full["features.34.weight"])
    # features before ReLU: conv5_4 output can be negative; check conv1_2 = conv(relu(conv(x_norm)))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        feats = vgg(x)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        xn = (x - mean) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        c11 = torch.nn.functional.conv2d(xn, full["features.0.weight"], full["features.0.bias"], padding=1)
        c12 = torch.nn.functional.conv2d(c11.relu(), full["features.2.weight"], full["features.2.bias"], padding=1)
    torch.testing.assert_close(feats["conv1_2"], c12)
    assert (feats["conv5_4"] < 0).any() and feats["conv5_4"].shape == (1, 512, 2, 2)
    # resolution order: explicit path, env var, torch hub cache; missing -> instructions
    monkeypatch.delenv("DEGRADEKIT_VGG19", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(FileNotFoundError, match=r"vgg19-dcbb9e9d\.pth.*perceptual weight 0"):
        resolve_vgg_weights()
    (tmp_path / "th" / "hub" / "checkpoints").mkdir(parents=True)
    cached = tmp_path / "th" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.write_bytes(path.read_bytes())
    assert resolve_vgg_weights() == cached
    monkeypatch.setenv("DEGRADEKIT_VGG19", str(path))
    assert resolve_vgg_weights() == path
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        resolve_vgg_weights(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="bad.pth"):
        vgg.load_torchvision(bad)


def test_esrgan_repository_key_names_are_renamed(tmp_path):
    net = RRDBNet(num_feat=8, num_block=2, num_grow_ch=4)
    ren = {"body": "RRDB_trunk", "conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2",
           "conv_hr": "HRconv"}
    old = {}
    for k, v in net.state_dict().items():
        head, _, rest = k.partition(".")
        old[f"{ren.get(head, head)}.{rest.replace('rdb', 'RDB')}"] = v
    assert "RRDB_trunk.1.RDB3.conv5.weight" in old and "HRconv.bias" in old
    torch.save(old, tmp_path / "RRDB_ESRGAN_x4.pth")
    loaded, cfg = load_generator(tmp_path / "RRDB_ESRGAN_x4.pth")
    assert cfg["num_block"] == 2
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())
