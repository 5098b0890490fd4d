"""Every issue-11 kind: drawn into its params, wired to its op (the step's image is the op applied to the
previous step's image, bit for bit), and replayed byte for byte from its JSON record; 0.1 records still replay;
the params readers are strict about the new fields."""
import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from skimage import data

import degradekit
from degradekit.config import (AvifConfig, CodecWeights, CompressionConfig, DegradeConfig, FinalConfig,
                               JpegConfig, KernelConfig, NoiseConfig, ResizeConfig, StageConfig, UsmConfig,
                               VideoConfig, preset)
from degradekit.params import DegradeParams, ParamsError
from degradekit.pipeline import apply, apply_stages, sample

HERE = Path(__file__).parent
KEEP = ResizeConfig(up_prob=0.0, down_prob=0.0, keep_prob=1.0)
DOWN = ResizeConfig(up_prob=0.0, down_prob=1.0, keep_prob=0.0, down=(0.5, 0.9))


@pytest.fixture(scope="module")
def hr():
    return np.ascontiguousarray(data.astronaut()[120:184, 160:228])  # 64x68: odd-sized results on the way


def _cfg(final=None, order=1, **stage):
    """One stage that takes only the steps named in `stage` (keep-size resize unless given); no USM."""
    st = dataclasses.replace(StageConfig(blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, resize=KEEP), **stage)
    return DegradeConfig(scale=2, order=order, usm=UsmConfig(enabled=False), stages=(st,),
                         final=dataclasses.replace(FinalConfig(), **(final or {})))


def _codec(codec, **settings):
    return CompressionConfig(weights=CodecWeights(**{"jpeg": 0.0, codec: 1.0}), **settings)


def _step(stages, name):
    names = [n for n, _ in stages]
    i = names.index(name)
    return stages[i - 1][1], stages[i][1]


def _target(img, factor):
    return max(1, math.floor(img.shape[0] * factor)), max(1, math.floor(img.shape[1] * factor))


def _resampled(img, hw, mode, filt, aa):
    from degradekit.ops.resample import resample
    from degradekit.ops.resize import resize

    return resize(img, hw, mode) if filt is None else resample(img, hw, filt, aa)


def _exp_blur(prev, p):
    from degradekit.kernels import build_kernel
    from degradekit.ops.blur import blur
    from degradekit.ops.median import median_blur

    k = p.stages[0].blur
    return median_blur(prev, k.size) if k.kind == "median" else blur(prev, build_kernel(k))


def _exp_resize(prev, p):
    r = p.stages[0].resize
    target = _target(prev, r.factor)
    if r.down_up is not None:
        d = r.down_up
        prev = _resampled(prev, (math.floor(target[0] * d.factor), math.floor(target[1] * d.factor)), d.mode,
                          d.filter, d.antialias)
    return _resampled(prev, target, r.mode, r.filter, r.antialias)


def _exp_noise(prev, p):
    from degradekit.ops import noise_kinds as nk

    n = p.stages[0].noise
    if n.kind == "gaussian":
        return nk.add_gaussian_noise_space(prev, n.sigma, n.space, n.seed)
    if n.kind == "uniform":
        return nk.add_uniform_noise(prev, n.amplitude, n.space, n.seed)
    if n.kind == "speckle":
        return nk.add_speckle_noise(prev, n.sigma, n.space, n.seed)
    return nk.add_salt_pepper(prev, n.amount, n.salt_ratio, n.gray, n.seed)


def _exp_codec(c):
    if c.codec == "jpeg":
        from degradekit.ops.jpeg import jpeg
        return lambda x: jpeg(x, c.quality, c.subsampling)
    if c.codec == "webp":
        from degradekit.ops.webp import webp
        return lambda x: webp(x, c.quality)
    if c.codec == "avif":
        from degradekit.ops.avif import avif
        return lambda x: avif(x, c.quality, c.speed)
    if c.codec == "jpeg2000":
        from degradekit.ops.jpeg2000 import jpeg2000
        return lambda x: jpeg2000(x, c.rate)
    from degradekit.ops.video import video
    return lambda x: video(x, c.codec, c.quality, c.preset, c.pix_fmt)


def _exp_extra(step):
    def f(prev, p):
        import importlib

        op = importlib.import_module(f"degradekit.ops.{step}")
        q = getattr(p.stages[0], step)
        if step == "halo":
            return op.oversharpen(prev, q.amount, q.radius, q.threshold)
        if step == "color":
            return op.color_jitter(prev, q.brightness, q.contrast, q.saturation, q.gamma)
        if step == "banding":
            return op.band(prev, q.bits)
        return op.dither(prev, q.levels, q.method)
    return f


CODEC_CASES = {
    "jpeg444": dict(jpeg=JpegConfig(subsampling=("444",))),
    "jpeg422-440": dict(jpeg=JpegConfig(subsampling=("422", "440"))),
    "webp": dict(compression=_codec("webp")),
    "avif": dict(compression=_codec("avif", avif=AvifConfig((30, 80), (8, 10)))),
    "jpeg2000": dict(compression=_codec("jpeg2000")),
    "h264": dict(compression=_codec("h264", h264=VideoConfig((18, 30), ("ultrafast", "medium"),
                                                             ("yuv420p", "yuv444p10le")))),
    "hevc": dict(compression=_codec("hevc", hevc=VideoConfig((20, 30), ("ultrafast",), ("yuv420p", "yuv444p")))),
    "mpeg2": dict(compression=_codec("mpeg2")),
    "mpeg4": dict(compression=_codec("mpeg4")),
    "vp9": dict(compression=_codec("vp9", vp9=VideoConfig((20, 40), ("realtime",), ("yuv420p", "yuv444p")))),
    "av1": dict(compression=_codec("av1", av1=VideoConfig((30, 45), ("10", "12"), ("yuv420p", "yuv420p10le")))),
}

# (id, config, step name, expected(prev, params), what the record must hold)
CASES = [
    ("box", _cfg(blur_prob=1.0, kernel=KernelConfig(box_prob=1.0)), "blur1", _exp_blur, ("blur", "kind", "box")),
    ("disk", _cfg(blur_prob=1.0, kernel=KernelConfig(disk_prob=1.0)), "blur1", _exp_blur, ("blur", "kind", "disk")),
    ("motion", _cfg(blur_prob=1.0, kernel=KernelConfig(motion_prob=1.0)), "blur1", _exp_blur,
     ("blur", "kind", "motion")),
    ("median", _cfg(blur_prob=1.0, kernel=KernelConfig(median_prob=1.0, median_sizes=(3, 5, 7))), "blur1",
     _exp_blur, ("blur", "kind", "median")),
    ("filter", _cfg(resize=dataclasses.replace(DOWN, filter_prob=1.0, antialias_prob=0.5)), "resize1",
     _exp_resize, ("resize", "filter", None)),
    ("down_up", _cfg(resize=dataclasses.replace(DOWN, filter_prob=0.5, antialias_prob=0.5, down_up_prob=1.0)),
     "resize1", _exp_resize, ("resize", "down_up", None)),
    ("uniform", _cfg(noise_prob=1.0, noise=NoiseConfig(uniform_prob=1.0, luma_prob=0.3, chroma_prob=0.3)),
     "noise1", _exp_noise, ("noise", "kind", "uniform")),
    ("speckle", _cfg(noise_prob=1.0, noise=NoiseConfig(speckle_prob=1.0, luma_prob=0.3, chroma_prob=0.3)),
     "noise1", _exp_noise, ("noise", "kind", "speckle")),
    ("salt_pepper", _cfg(noise_prob=1.0, noise=NoiseConfig(salt_pepper_prob=1.0, salt_pepper_amount=(0.05, 0.1))),
     "noise1", _exp_noise, ("noise", "kind", "salt_pepper")),
    ("gaussian_luma", _cfg(noise_prob=1.0, noise=NoiseConfig(gaussian_prob=1.0, luma_prob=1.0)), "noise1",
     _exp_noise, ("noise", "space", "luma")),
    ("gaussian_chroma", _cfg(noise_prob=1.0, noise=NoiseConfig(gaussian_prob=1.0, chroma_prob=1.0)), "noise1",
     _exp_noise, ("noise", "space", "chroma")),
    ("halo", _cfg(halo_prob=1.0), "halo1", _exp_extra("halo"), ("halo", "amount", None)),
    ("color", _cfg(color_prob=1.0), "color1", _exp_extra("color"), ("color", "gamma", None)),
    ("banding", _cfg(banding_prob=1.0), "banding1", _exp_extra("banding"), ("banding", "bits", None)),
    ("dither", _cfg(dither_prob=1.0), "dither1", _exp_extra("dither"), ("dither", "method", None)),
] + [(f"codec_{k}", _cfg(jpeg_prob=1.0, **v), "jpeg1",
      lambda prev, p: _exp_codec(p.stages[0].compression)(prev), ("compression", "codec", None))
     for k, v in CODEC_CASES.items()]


@pytest.mark.parametrize("name,cfg,step,expected,holds", CASES, ids=[c[0] for c in CASES])
def test_kind_is_wired_and_replays_from_json(hr, name, cfg, step, expected, holds):
    for seed in range(3):
        p = sample(np.random.default_rng(seed), cfg)
        rec = p.to_dict()
        where, key, value = holds
        assert key in rec["stages"][0][where], rec
        if value is not None:
            assert rec["stages"][0][where][key] == value, rec
        stages = apply_stages(hr, p)
        prev, got = _step(stages, step)
        exp = expected(prev, p)
        assert got.dtype == exp.dtype and np.array_equal(got, exp), (name, seed)
        assert not np.array_equal(got, prev) or name == "filter"  # the step did something
        lr = apply(hr, p)
        assert np.array_equal(stages[-1][1], lr)
        back = DegradeParams.from_dict(json.loads(json.dumps(rec)))
        assert back == p
        assert np.array_equal(apply(hr, back), lr)


@pytest.mark.parametrize("codec", ["webp", "avif", "h264", "vp9"])
def test_final_compression_and_filter(hr, codec):
    cfg = _cfg(final=dict(compression=CODEC_CASES[codec]["compression"], filter_prob=1.0, antialias_prob=0.5,
                          resize_first_prob=0.5))
    seen = set()
    for seed in range(4):
        p = sample(np.random.default_rng(seed), cfg)
        rec = p.to_dict()["final"]
        assert "jpeg_quality" not in rec and "mode" not in rec
        assert rec["compression"]["codec"] == codec and rec["filter"] in degradekit.config.FILTERS
        seen.add(rec["resize_first"])
        stages = apply_stages(hr, p)
        prev, got = _step(stages, "final_jpeg")
        assert np.array_equal(got, _exp_codec(p.final.compression)(prev))
        prev, got = _step(stages, "final_resize")
        assert np.array_equal(got, _resampled(prev, (32, 34), None, p.final.filter, p.final.antialias))
        back = DegradeParams.from_dict(json.loads(json.dumps(p.to_dict())))
        assert back == p and np.array_equal(apply(hr, back), stages[-1][1])
    assert seen == {True, False}


def test_shuffled_stage_runs_in_the_recorded_order(hr):
    cfg = _cfg(order=2, blur_prob=1.0, noise_prob=1.0, jpeg_prob=1.0, halo_prob=0.5,
               resize=dataclasses.replace(DOWN, down=(0.8, 1.0)), step_order="shuffle")
    orders = set()
    for seed in range(12):
        p = sample(np.random.default_rng(seed), cfg)
        for i, st in enumerate(p.stages, start=1):
            assert sorted(st.steps) == sorted(("blur", "resize", "halo", "noise", "jpeg"))
            orders.add(st.steps)
        stages = apply_stages(hr, p)
        names = [n for n, _ in stages]
        want = ["usm"] + [f"{s}{i}" for i, st in enumerate(p.stages, start=1) for s in st.steps]
        assert names[:len(want)] == want
        # the image after each recorded step is that step applied to the one before (stage 1's JPEG as proof)
        prev, got = _step(stages, "jpeg1")
        from degradekit.ops.jpeg import jpeg
        assert np.array_equal(got, jpeg(prev, p.stages[0].jpeg_quality))
        back = DegradeParams.from_dict(json.loads(json.dumps(p.to_dict())))
        assert back == p and np.array_equal(apply(hr, back), stages[-1][1])
    assert len(orders) >= 10  # 24 draws of 5! orders
    # the order matters: the same draws in another order give another LR
    p = sample(np.random.default_rng(0), cfg)
    st = p.stages[0]
    flipped = dataclasses.replace(st, steps=tuple(reversed(st.steps)))
    q = dataclasses.replace(p, stages=(flipped,) + p.stages[1:])
    assert not np.array_equal(apply(hr, p), apply(hr, q))


def test_fixed_order_lists_optional_steps_only_when_taken(hr):
    cfg = _cfg(blur_prob=1.0, noise_prob=1.0, jpeg_prob=1.0, halo_prob=0.5, banding_prob=0.5)
    seen = set()
    for seed in range(16):
        p = sample(np.random.default_rng(seed), cfg)
        names = [n for n, _ in apply_stages(hr, p)]
        want = ["usm", "blur1", "resize1"] + (["halo1"] if p.stages[0].halo else []) + ["noise1"] + \
               (["banding1"] if p.stages[0].banding else []) + ["jpeg1"]
        assert names[:len(want)] == want
        seen.add((p.stages[0].halo is None, p.stages[0].banding is None))
    assert len(seen) == 4


def test_realworld_preset_replays(hr):
    cfg = preset("realworld")
    kinds = set()
    for seed in range(24):
        lr, p = degradekit.degrade(hr, cfg, seed)
        assert lr.shape == (16, 17, 3)
        rec = json.loads(json.dumps(p.to_dict()))
        assert np.array_equal(apply(hr, DegradeParams.from_dict(rec)), lr)
        kinds.add((rec["final"].get("compression") or {"codec": "jpeg"})["codec"])
    assert len(kinds) >= 3


# ------------------------------------------------------------------------------------------- 0.1 records

def test_version_0_1_records_replay():
    doc = json.loads((HERE / "data" / "records_v0_1.json").read_text())
    hr = np.ascontiguousarray(data.astronaut()[100:196, 150:246])
    cfgs = {"realesrgan": preset("realesrgan"), "realesrgan-x2": preset("realesrgan-x2"),
            "order3-x1": dataclasses.replace(preset("realesrgan"), order=3, scale=1)}
    for r in doc["records"]:
        p = DegradeParams.from_dict(r["params"])
        lr = apply(hr, p)
        assert list(lr.shape) == r["lr_shape"]
        assert hashlib.sha256(lr.tobytes()).hexdigest() == r["lr_sha256"], (r["config"], r["seed"])
        # and today's sampler still draws exactly those records, dict for dict (key order included)
        now = sample(np.random.default_rng(r["seed"]), cfgs[r["config"]]).to_dict()
        assert json.dumps(now) == json.dumps(r["params"])


# ------------------------------------------------------------------------------------------- strict readers

def _rec(cfg, seed=0):
    return sample(np.random.default_rng(seed), cfg).to_dict()


@pytest.mark.parametrize("cfg,mutate,fragment", [
    (_cfg(blur_prob=1.0, kernel=KernelConfig(box_prob=1.0)), lambda d: d["stages"][0]["blur"].pop("width"),
     "params.stages[0].blur.width: missing for kind 'box'"),
    (_cfg(blur_prob=1.0, kernel=KernelConfig(motion_prob=1.0)), lambda d: d["stages"][0]["blur"].update(angle="x"),
     "params.stages[0].blur.angle: expected a number"),
    (_cfg(resize=dataclasses.replace(DOWN, filter_prob=1.0)),
     lambda d: d["stages"][0]["resize"].update(filter="lanczos9"), "params.stages[0].resize.filter: invalid"),
    (_cfg(resize=dataclasses.replace(DOWN, filter_prob=1.0)),
     lambda d: d["stages"][0]["resize"].update(mode="area"), "params.stages[0].resize.mode: give exactly one"),
    (_cfg(), lambda d: d["stages"][0]["resize"].update(antialias=True), "resize.antialias: only a filter"),
    (_cfg(noise_prob=1.0, noise=NoiseConfig(uniform_prob=1.0)), lambda d: d["stages"][0]["noise"].update(space="yuv"),
     "params.stages[0].noise.space: invalid"),
    (_cfg(noise_prob=1.0, noise=NoiseConfig(salt_pepper_prob=1.0)),
     lambda d: d["stages"][0]["noise"].pop("salt_ratio"), "noise.salt_ratio: missing for kind 'salt_pepper'"),
    (_cfg(jpeg_prob=1.0, compression=_codec("webp")), lambda d: d["stages"][0]["compression"].update(codec="gif"),
     "params.stages[0].compression.codec: invalid"),
    (_cfg(jpeg_prob=1.0, compression=_codec("h264")), lambda d: d["stages"][0]["compression"].pop("pix_fmt"),
     "compression.pix_fmt: missing for codec 'h264'"),
    (_cfg(jpeg_prob=1.0, compression=_codec("webp")), lambda d: d["stages"][0].update(jpeg_quality=50),
     "a stage has jpeg_quality or compression, not both"),
    (_cfg(final=dict(compression=_codec("webp"))), lambda d: d["final"].update(jpeg_quality=50),
     "params.final.jpeg_quality: give exactly one"),
    (_cfg(halo_prob=1.0), lambda d: d["stages"][0]["halo"].update(extra=1), "params.stages[0].halo.extra: unknown"),
    (_cfg(banding_prob=1.0), lambda d: d["stages"][0]["banding"].update(bits=5.5), "banding.bits: expected an int"),
    (_cfg(halo_prob=1.0, step_order="shuffle"), lambda d: d["stages"][0].update(steps=["resize", "resize"]),
     "params.stages[0].steps: expected a list of distinct steps"),
    (_cfg(halo_prob=1.0, step_order="shuffle"), lambda d: d["stages"][0].update(steps=["resize"]),
     "params.stages[0].steps: halo is drawn but not in the recorded steps"),
])
def test_params_readers_are_strict(cfg, mutate, fragment):
    d = _rec(cfg)
    mutate(d)
    with pytest.raises(ParamsError) as ei:
        DegradeParams.from_dict(d)
    assert fragment in str(ei.value), str(ei.value)
    assert "\n" not in str(ei.value)
