"""The BSRGAN pipeline: config and params (strict), apply (sizes, clips, steps as the published code does
them), replay from JSON, determinism, the (ours) options."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from degradekit.bsrgan import (PRESETS, BsrganConfig, BsrganParams, apply_bsrgan, apply_bsrgan_stages,
                               bsrgan_preset, hr_target, sample_bsrgan)
from degradekit.bsrgan.params import Blur, DownA, DownB, Jpeg, Noise, Poisson, Prehalve, Resize, Skip
from degradekit.ops.jpeg import jpeg
from degradekit.ops.usm import usm_sharpen


@pytest.fixture(scope="module")
def photo():
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[100:196, 150:278])  # 96 x 128, non-square


def _params(order, steps, *, scale=4, sf=None, q=95, prehalve=None, antialias=False):
    return BsrganParams("bsrgan", scale, sf or scale, False, antialias, prehalve, True, tuple(order),
                        tuple(steps), None, q)


_DELTA = Blur("iso", 7, sigma=1e-9)
_NONOISE = Noise("gaussian", 0, "gray", 1)


# --------------------------------------------------------------------------------------------- config
def test_presets_are_the_published_settings():
    c = bsrgan_preset("bsrgan")
    assert (c.scale, c.variant, c.prehalve_prob, c.nearest_prob, c.jpeg_prob) == (4, "bsrgan", 0.25, 0.25, 0.9)
    assert c.noise_range == (2, 25) and c.jpeg_range == (30, 95)
    assert not (c.corr_noise_level or c.fit_kernel or c.antialias or c.no_area_enlarge)
    assert [bsrgan_preset(n).scale for n in PRESETS] == [4, 2, 3, 4, 2]
    p = bsrgan_preset("bsrgan-plus")
    assert (p.variant, p.use_sharp, p.shuffle_prob, p.poisson_prob, p.speckle_prob) == ("plus", False, 0.1, 0.1,
                                                                                         0.1)
    assert bsrgan_preset("bsrgan", scale=2) == bsrgan_preset("bsrgan-x2")


def test_config_round_trip_and_strict_loading():
    for n in PRESETS:
        c = bsrgan_preset(n)
        d = json.loads(json.dumps(c.to_dict()))
        assert d["pipeline"] == "bsrgan" and BsrganConfig.from_dict(d) == c
    bad = [({"scale": 5}, "scale"), ({"scale": "4"}, "scale"), ({"variant": "x"}, "variant"),
           ({"jpeg_prob": 1.5}, "jpeg_prob"), ({"noise_range": [25, 2]}, "noise_range"),
           ({"jpeg_range": [30.0, 95]}, "jpeg_range"), ({"antialias": 1}, "antialias"),
           ({"use_sharp": True}, "use_sharp"), ({"bogus": 1}, "unknown key"), ({"pipeline": "realsr"}, "pipeline")]
    for change, word in bad:
        with pytest.raises(ValueError) as e:
            BsrganConfig.from_dict({**bsrgan_preset().to_dict(), **change}, "cfg.toml")
        msg = str(e.value)
        assert "\n" not in msg and word in msg and msg.startswith("cfg.toml")
    BsrganConfig(variant="plus", use_sharp=True)  # plus may sharpen
    with pytest.raises(ValueError):
        bsrgan_preset("bsrgan-x8")
    assert set(BsrganConfig.docs()) == {f.name for f in dataclasses.fields(BsrganConfig)}


# ---------------------------------------------------------------------------------------------- params
def test_params_json_round_trip_and_strictness():
    for n in PRESETS:
        rng = np.random.default_rng(4)
        for _ in range(200):
            p = sample_bsrgan(rng, bsrgan_preset(n))
            d = json.loads(json.dumps(p.to_dict()))
            assert BsrganParams.from_dict(d) == p and d["isp"] is None
    d = sample_bsrgan(np.random.default_rng(0), bsrgan_preset()).to_dict()
    broken = [
        {**d, "extra": 1},
        {k: v for k, v in d.items() if k != "final_quality"},
        {**d, "isp": "model.pth"},
        {**d, "order": list(reversed(d["order"]))},  # puts downsample-B before A (or mislabels the steps)
        {**d, "steps": d["steps"][:-1]},
        {**d, "final_interp": "cubic"},
        {**d, "steps": [{**s, "seed": -1} if s["op"] == "noise" else s for s in d["steps"]]},
        {**d, "steps": [{**s, "typo": 0} if s["op"] == "noise" else s for s in d["steps"]]},
        {**d, "scale": 8},
    ]
    for b in broken:
        with pytest.raises(ValueError):
            BsrganParams.from_dict(b)


# ----------------------------------------------------------------------------------------------- apply
@pytest.mark.parametrize("name", PRESETS)
def test_lr_size_is_exactly_hr_over_scale(photo, name):
    cfg = bsrgan_preset(name)
    rng = np.random.default_rng(11)
    for _ in range(12):
        lr = apply_bsrgan(photo, sample_bsrgan(rng, cfg))
        assert lr.dtype == np.uint8 and lr.shape == (96 // cfg.scale, 128 // cfg.scale, 3)


def test_mod_crop_is_in_h_w_order():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (50, 71, 3), dtype=np.uint8)  # 50 x 71 -> 48 x 68 at x4 (swapped: 50 x 68)
    p = sample_bsrgan(np.random.default_rng(1), bsrgan_preset())
    assert apply_bsrgan(hr, p).shape == (12, 17, 3)
    assert hr_target(hr, p).shape == (48, 68, 3)
    np.testing.assert_array_equal(hr_target(hr, p), hr[:48, :68])
    x3 = sample_bsrgan(np.random.default_rng(1), bsrgan_preset("bsrgan-x3"))
    assert apply_bsrgan(hr, x3).shape == (16, 23, 3)


def test_apply_is_pure_and_replays_from_json(photo):
    before = photo.copy()
    for n in PRESETS:
        p = sample_bsrgan(np.random.default_rng(21), bsrgan_preset(n))
        a = apply_bsrgan(photo, p)
        b = apply_bsrgan(photo, json.loads(json.dumps(p.to_dict())))
        assert a.tobytes() == b.tobytes()
        assert sample_bsrgan(np.random.default_rng(21), bsrgan_preset(n)) == p  # same seed, same draw
    np.testing.assert_array_equal(photo, before)
    outs = {apply_bsrgan(photo, sample_bsrgan(np.random.default_rng(s), bsrgan_preset())).tobytes()
            for s in range(6)}
    assert len(outs) == 6


def test_stages_end_with_apply_and_list_every_op(photo):
    for n in ("bsrgan", "bsrgan-plus"):
        rng = np.random.default_rng(5)
        for _ in range(6):
            p = sample_bsrgan(rng, bsrgan_preset(n))
            st = apply_bsrgan_stages(photo, p)
            labels = [s[0] for s in st]
            assert labels[0] == "hr" and labels[-2:] == ["final_jpeg", "final"]
            ops = [lab for lab in labels if ":" in lab]
            assert len(ops) == len(p.order) and ("prehalve" in labels) == (p.prehalve is not None)
            assert ("final_resize" in labels) == (n == "bsrgan-plus")
            np.testing.assert_array_equal(st[-1][1], apply_bsrgan(photo, p))
            for lab, img in st[1:-1]:
                if any(w in lab for w in ("down", "noise", "resize", "prehalve", "jpeg", "poisson")):
                    assert img.min() >= 0.0 and img.max() <= 1.0, lab  # clipped where the code clips


def test_final_jpeg_is_libjpeg_at_the_drawn_quality(photo):
    # all ops neutral (delta blurs, level-0 noise, A/B a cv2 x4 shrink and a same-size B), so the LR is
    # exactly the final JPEG of the shrunk image
    steps = [DownA("cv2", s1=4.0, interp="area"), DownB("area"), _DELTA, _DELTA, _NONOISE, Skip("jpeg"),
             Skip("isp")]
    p = _params([2, 3, 0, 1, 4, 5, 6], steps, q=37)
    st = dict(apply_bsrgan_stages(photo, p))
    from degradekit.ops.resize import resize

    small = resize(photo.astype(np.float32) / np.float32(255), (24, 32), "area")
    np.testing.assert_allclose(st["2:down_b"], small, atol=1e-6)
    want = np.rint(jpeg(st["7:isp"], 37) * 255).astype(np.uint8)
    np.testing.assert_array_equal(apply_bsrgan(photo, p), want)


def test_down_b_targets_the_size_at_a_including_down_up(photo):
    # s1 = 6 > sf = 4: A shrinks 128 -> int(128 / 6) = 21, B enlarges to the size at A // 4 = 32
    steps = [_DELTA, DownA("cv2", s1=6.0, interp="cubic"), _NONOISE, DownB("linear"), _DELTA, Skip("jpeg"),
             Skip("isp")]
    st = dict(apply_bsrgan_stages(photo, _params([0, 2, 4, 3, 1, 5, 6], steps)))
    assert st["2:down_a"].shape == (16, 21, 3) and st["4:down_b"].shape == (24, 32, 3)
    # after the nearest branch B is a same-size no-op whatever its interp
    steps = [DownA("nearest", sigma=1.0), DownB("cubic"), _DELTA, _DELTA, _NONOISE, Skip("jpeg"), Skip("isp")]
    st = dict(apply_bsrgan_stages(photo, _params([2, 3, 0, 1, 4, 5, 6], steps)))
    np.testing.assert_array_equal(st["1:down_a"], st["2:down_b"])


def test_nearest_branch_lands_on_block_centres_through_apply():
    ramp = np.broadcast_to(np.arange(0, 128, 2, dtype=np.uint8)[None, :, None], (64, 64, 3)).copy()  # 2 per px
    steps = [DownA("nearest", sigma=0.8), DownB("area"), _DELTA, _DELTA, _NONOISE, Skip("jpeg"), Skip("isp")]
    st = dict(apply_bsrgan_stages(ramp, _params([2, 3, 0, 1, 4, 5, 6], steps)))
    lr = st["1:down_a"][8, :, 0] * 255
    i = np.arange(3, 13)
    np.testing.assert_allclose(lr[i], 2 * (4 * i + 1.5), atol=2e-3)  # block centre 4i + 1.5 (not 4i - 1.5)


def test_prehalving_paths(photo):
    rest = [_DELTA, _DELTA, DownA("cv2", s1=2.0, interp="area"), DownB("area"), _NONOISE, Skip("jpeg"),
            Skip("isp")]
    from degradekit.bsrgan.imresize import imresize

    f = photo.astype(np.float32) / np.float32(255)
    for ph, want in ((Prehalve("matlab"), np.clip(imresize(f, scale=0.5), 0, 1)),
                     (Prehalve("cv2", "linear"), None)):
        st = dict(apply_bsrgan_stages(photo, _params(range(7), rest, sf=2, prehalve=ph)))
        assert st["prehalve"].shape == (48, 64, 3) and st["4:down_b"].shape == (24, 32, 3)
        if want is not None:
            np.testing.assert_array_equal(st["prehalve"], want)
    assert apply_bsrgan(photo, _params(range(7), rest, sf=2, prehalve=Prehalve("matlab"))).shape == (24, 32, 3)


def test_noise_branches(photo):
    flat = np.full((64, 64, 3), 128, np.uint8)
    cov = ((0.004, 0.003, 0.001), (0.003, 0.005, 0.002), (0.001, 0.002, 0.006))
    for br, c in (("color", None), ("gray", None), ("correlated", cov)):
        steps = [_DELTA, _DELTA, DownA("cv2", s1=1.0, interp="area"), Noise("gaussian", 20, br, 7, c),
                 DownB("area"), Skip("jpeg"), Skip("isp")]
        p = _params([0, 1, 2, 4, 3, 5, 6], steps, scale=2)
        img = dict(apply_bsrgan_stages(np.repeat(np.repeat(flat, 2, 0), 2, 1), p))["4:noise"]
        n = (img - 128 / 255).reshape(-1, 3).astype(np.float64)
        if br == "gray":
            assert np.array_equal(n[:, 0], n[:, 1]) and n[:, 0].std() * 255 == pytest.approx(20, rel=0.03)
        elif br == "color":
            assert np.abs(np.corrcoef(n.T) - np.eye(3)).max() < 0.02
            assert n.std(axis=0) * 255 == pytest.approx([20] * 3, rel=0.03)
        else:
            np.testing.assert_allclose(np.cov(n.T), cov, atol=3.5e-4)  # the recorded covariance, not the level


def test_plus_sharpening_changes_the_target(photo):
    cfg = BsrganConfig(scale=4, variant="plus", use_sharp=True)
    p = sample_bsrgan(np.random.default_rng(3), cfg)
    tgt = hr_target(photo, p)
    want = np.clip(np.rint(usm_sharpen(photo.astype(np.float32) / np.float32(255)) * 255), 0, 255)
    np.testing.assert_array_equal(tgt, want.astype(np.uint8))
    assert not np.array_equal(tgt, photo)
    q = sample_bsrgan(np.random.default_rng(3), bsrgan_preset("bsrgan-plus"))
    assert hr_target(photo, q) is not None and np.array_equal(hr_target(photo, q), photo)
    assert not np.array_equal(apply_bsrgan(photo, p), apply_bsrgan(photo, dataclasses.replace(p, use_sharp=False)))


def test_plus_poisson_and_speckle(photo):
    steps = [Poisson(300.0, False, 5), Noise("speckle", 25, "color", 9)]
    base = [_DELTA, Resize("keep", 1.0, "area")]
    order = [0, 1, 3, 4, 2, 5, 6, 7, 8, 9, 10, 11, 12]
    rest = [_NONOISE, Skip("isp"), Jpeg(90), _DELTA, Resize("keep", 1.0, "area"), _NONOISE, Skip("poisson"),
            Skip("speckle"), Skip("isp")]
    p = BsrganParams("plus", 4, 4, False, False, None, False, tuple(order), tuple(base + steps + rest), "area", 90)
    st = dict(apply_bsrgan_stages(photo, p))
    x = photo.astype(np.float64) / 255
    po = st["3:poisson"].astype(np.float64)
    # Poisson: mean x, variance x / vals
    assert abs((po - x).mean()) < 2e-3 and ((po - x) ** 2).mean() == pytest.approx((x / 300).mean(), rel=0.05)
    sp = st["4:noise"].astype(np.float64) - po
    inner = (po > 0.2) & (po < 0.8)
    # speckle: the noise is proportional to the intensity
    r = sp[inner] / po[inner]
    assert r.std() * 255 == pytest.approx(25, rel=0.05)
    assert apply_bsrgan(photo, p).shape == (24, 32, 3)


def test_antialias_option_filters_a_shrink():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    steps = [_DELTA, _DELTA, DownA("cv2", s1=3.0, interp="cubic"), DownB("linear"), _NONOISE, Skip("jpeg"),
             Skip("isp")]
    off = dict(apply_bsrgan_stages(hr, _params(range(7), steps)))["3:down_a"]
    on = dict(apply_bsrgan_stages(hr, _params(range(7), steps, antialias=True)))["3:down_a"]
    assert on.shape == off.shape == (32, 32, 3)
    assert on.std() < 0.5 * off.std()  # white noise: the antialiased shrink averages ~9 px, cv2 cubic ~1


def test_rejects_bad_input(photo):
    p = sample_bsrgan(np.random.default_rng(0), bsrgan_preset())
    with pytest.raises(ValueError):
        apply_bsrgan(photo.astype(np.float32), p)
    with pytest.raises(ValueError):
        apply_bsrgan(photo[:6, :6], p)
    with pytest.raises(ValueError):
        apply_bsrgan(photo, {"pipeline": "realsr"})


def test_add_field_kernel_against_numpy():
    from degradekit.bsrgan.apply import _add_field, mixing_matrix

    rng = np.random.default_rng(3)
    img = (rng.random((500, 3)) * 1.2 - 0.1).astype(np.float32)  # some values outside [0, 1]
    cov = np.array([[0.004, 0.003, 0.001], [0.003, 0.005, 0.002], [0.001, 0.002, 0.006]])
    a = mixing_matrix(cov)
    np.testing.assert_allclose(a.T @ a, cov, atol=1e-15)  # the factor reproduces the covariance
    for k, mat in ((3, a), (1, np.full((1, 3), 0.07)), (3, np.eye(3) * 0.05)):
        z = rng.standard_normal((500, k)).astype(np.float32)
        n = (z.astype(np.float64) @ mat).astype(np.float32)
        for speckle in (False, True):
            out = np.empty_like(img)
            _add_field(img, z, mat, speckle, out)
            c = np.clip(img, 0, 1) if speckle else img
            ref = np.clip(c + c * n if speckle else c + n, 0, 1)
            np.testing.assert_allclose(out, ref, atol=1e-7)
