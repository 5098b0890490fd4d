"""ESRGAN's VGG-style discriminator against BasicSR 1.4.2's outputs (tests/data/vgg_disc.npz, trimmed from the
reference: 2 of the 128 px inputs, 1 of the 256 px ones), its full-size parameter count and key list."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.archs import VGGStyleDiscriminator
from trainer.checkpoint import read_module_state

DATA = Path(__file__).parent / "data"

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def ref():
    return np.load(DATA / "vgg_disc.npz")


def _state(ref, prefix):
    return {k[len(prefix):]: torch.from_numpy(np.array(ref[k])) for k in ref.files if k.startswith(prefix)}


def test_full_size_keys_and_parameter_count(ref):
    d = VGGStyleDiscriminator()
    assert list(d.state_dict()) == [str(k) for k in ref["vgg128/keys"]]
    assert sum(p.numel() for p in d.parameters()) == int(ref["vgg128/param_count"]) == 14_499_401


@pytest.mark.parametrize("size", [128, 256])
def test_outputs_match_reference_in_eval_mode(ref, size):
    name = f"vgg{size}_small"
    state = _state(ref, f"{name}/state/")
    d = VGGStyleDiscriminator(num_feat=16, input_size=size)
    assert list(d.state_dict()) == list(state)      # same order, so released files load key by key
    d.load_state_dict(state, strict=True)
    d.eval()
    x = torch.from_numpy(ref[f"{name}/input"])
    with torch.no_grad():
        out = d(x)
    assert out.shape == (x.shape[0], 1)
    np.testing.assert_allclose(out.numpy(), ref[f"{name}/output"], atol=1e-5, rtol=0)
    # the running statistics matter: training mode (batch statistics) gives another answer
    d.train()
    with torch.no_grad():
        two = torch.cat([x, x.flip(-1)]) if x.shape[0] == 1 else x
        assert (d(two)[: x.shape[0]] - out).abs().max() > 1e-3


def test_released_style_file_loads_strictly(tmp_path, ref):
    state = _state(ref, "vgg128_small/state/")
    torch.save({"params": state}, tmp_path / "net_d.pth")
    got = read_module_state(tmp_path / "net_d.pth")
    d = VGGStyleDiscriminator(num_feat=16)
    d.load_state_dict(got, strict=True)
    assert all(torch.equal(d.state_dict()[k], v) for k, v in state.items())
    # a 256-px file does not fit a 128-px net: strict loading says which keys
    with pytest.raises(RuntimeError, match="conv5_0.weight"):
        d.load_state_dict(_state(ref, "vgg256_small/state/"), strict=True)


def test_bad_arguments_and_inputs_are_one_line_errors():
    with pytest.raises(ValueError, match="input_size must be 128 or 256"):
        VGGStyleDiscriminator(input_size=192)
    with pytest.raises(ValueError, match="num_feat must be a positive int"):
        VGGStyleDiscriminator(num_feat=0)
    d = VGGStyleDiscriminator(num_feat=4)
    with pytest.raises(ValueError, match=r"expected \(N, C, 128, 128\).*\(1, 3, 64, 64\)"):
        d(torch.zeros(1, 3, 64, 64))


def test_trains_one_step_and_updates_running_stats():
    torch.manual_seed(0)
    d = VGGStyleDiscriminator(num_feat=4).train()
    opt = torch.optim.Adam(d.parameters(), 1e-3)
    before = d.bn2_1.running_mean.clone()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(d(torch.rand(2, 3, 128, 128)), torch.ones(2, 1))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    opt.step()
    assert not torch.equal(before, d.bn2_1.running_mean) and int(d.bn2_1.num_batches_tracked) == 1
