"""The engine: determinism, replay from JSON, shapes and size rules, order of operations, pools."""
import dataclasses
import json
import math

import numpy as np
import pytest
from skimage import data

import degradekit
from degradekit import kernels as K
from degradekit.config import DegradeConfig, preset
from degradekit.ops.blur import blur
from degradekit.ops.jpeg import jpeg
from degradekit.ops.noise import add_gaussian_noise, add_noise_patch, add_poisson_noise
from degradekit.ops.quantize import to_uint8
from degradekit.ops.resize import resize
from degradekit.ops.usm import usm_sharpen
from degradekit.params import (DegradeParams, FinalParams, KernelParams, NoiseParams, ParamsError,
                               ResizeParams, StageParams, UsmParams)
from test_sampling import TinyPool, _pool_config


@pytest.fixture(scope="module")
def hr400():
    return np.ascontiguousarray(data.astronaut()[40:440, 60:460])


@pytest.fixture(scope="module")
def hr_small():
    # odd, non-square and small: 63 x 77
    return np.ascontiguousarray(data.coffee()[100:163, 200:277])


def test_public_api():
    for name in ("sample", "apply", "apply_stages", "degrade", "DegradeConfig", "DegradeParams", "preset",
                 "load_config"):
        assert hasattr(degradekit, name), name
    assert degradekit.sample is degradekit.pipeline.sample


def test_determinism_and_seeds(hr400):
    cfg = preset()
    lr_a, p_a = degradekit.degrade(hr400, cfg, 1234)
    lr_b, p_b = degradekit.degrade(hr400, cfg, 1234)
    assert p_a == p_b
    assert lr_a.tobytes() == lr_b.tobytes()
    assert lr_a.shape == (100, 100, 3) and lr_a.dtype == np.uint8
    lr_c, p_c = degradekit.degrade(hr400, cfg, 1235)
    assert p_c != p_a and lr_c.tobytes() != lr_a.tobytes()
    # apply is pure: same params -> same bytes, the input is not modified
    before = hr400.copy()
    assert degradekit.apply(hr400, p_a).tobytes() == lr_a.tobytes()
    np.testing.assert_array_equal(hr400, before)


@pytest.mark.parametrize("seed", range(4))
def test_replay_from_json_record(hr_small, seed):
    cfg = DegradeConfig(order=3)
    lr, params = degradekit.degrade(hr_small, cfg, seed)
    text = json.dumps(params.to_dict())
    back = DegradeParams.from_dict(json.loads(text))
    assert back == params
    assert degradekit.apply(hr_small, back).tobytes() == lr.tobytes()
    assert degradekit.apply(hr_small, json.loads(text)).tobytes() == lr.tobytes()   # dict accepted too


def _walk_floats(d):
    if isinstance(d, dict):
        for v in d.values():
            yield from _walk_floats(v)
    elif isinstance(d, list):
        for v in d:
            yield from _walk_floats(v)
    else:
        yield d


def test_params_dict_uses_plain_json_types():
    rng = np.random.default_rng(0)
    for _ in range(50):
        d = degradekit.sample(rng, preset()).to_dict()
        for v in _walk_floats(d):
            assert v is None or type(v) in (int, float, str, bool), (type(v), v)


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_shapes_small_odd(hr_small, scale, order):
    cfg = DegradeConfig(scale=scale, order=order)
    for seed in range(3):
        lr, p = degradekit.degrade(hr_small, cfg, seed)
        assert lr.shape == (63 // scale, 77 // scale, 3) and lr.dtype == np.uint8
        assert lr.flags.c_contiguous
        assert p.order == order and p.scale == scale


@pytest.mark.parametrize("hw", [(21, 21), (21, 40), (33, 25)])
def test_smallest_images(hw):
    # the HR may be as small as the largest kernel; intermediate images then shrink to a few pixels
    rng = np.random.default_rng(hw[0] * 100 + hw[1])
    hr = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    for scale in (1, 2, 4):
        for order in (1, 3):
            for seed in range(4):
                lr, _ = degradekit.degrade(hr, DegradeConfig(scale=scale, order=order), seed)
                assert lr.shape == (hw[0] // scale, hw[1] // scale, 3)


def test_shapes_401x397():
    hr = np.ascontiguousarray(data.astronaut()[:401, :397])
    assert hr.shape == (401, 397, 3)
    for scale in (1, 2, 4):
        lr, _ = degradekit.degrade(hr, DegradeConfig(scale=scale), scale)
        assert lr.shape == (401 // scale, 397 // scale, 3)


def _params(stages, *, scale=4, usm=True, resize_first=True, mode="bicubic", sinc=None, q=80):
    return DegradeParams(scale=scale, usm=UsmParams(51, 0.0, 0.5, 10.0) if usm else None, stages=tuple(stages),
                         final=FinalParams(resize_first=resize_first, mode=mode, sinc=sinc, jpeg_quality=q))


def _stage(direction, factor, ref, *, blur_k=None, noise=None, q=None, mode="bilinear"):
    return StageParams(blur=blur_k, resize=ResizeParams(direction, factor, mode, ref), noise=noise,
                       jpeg_quality=q)


def test_size_rules(hr_small):
    # stage 1: floor(current * s); stage 2 ("final"): int((HR // scale) * s); at least 1 px
    p = _params([_stage("down", 0.55, "current"), _stage("up", 1.13, "final"), _stage("down", 0.01, "final"),
                 _stage("down", 0.001, "current")])
    shapes = dict((n, im.shape[:2]) for n, im in degradekit.apply_stages(hr_small, p))
    assert shapes["resize1"] == (math.floor(63 * 0.55), math.floor(77 * 0.55))
    assert shapes["resize2"] == (int(15 * 1.13), int(19 * 1.13))
    assert shapes["resize3"] == (1, 1)   # int(15 * 0.01) == 0 -> kept at 1 px
    assert shapes["resize4"] == (1, 1)
    assert shapes["final"] == (15, 19)


def test_apply_stages_names_and_last_equals_apply(hr_small):
    rng = np.random.default_rng(4)
    cfg = DegradeConfig(order=3)
    for _ in range(4):
        p = degradekit.sample(rng, cfg)
        st = degradekit.apply_stages(hr_small, p)
        names = [n for n, _ in st]
        tail = ["final_resize", "final_sinc", "final_jpeg"] if p.final.resize_first else \
            ["final_jpeg", "final_resize", "final_sinc"]
        assert names == ["usm"] + [f"{s}{i}" for i in (1, 2, 3) for s in ("blur", "resize", "noise", "jpeg")] \
            + tail + ["final"]
        assert all(im.dtype == np.float32 for _, im in st[:-1])
        assert st[-1][1].tobytes() == degradekit.apply(hr_small, p).tobytes()


def _reference_composition(hr, p, pool=None):
    """The spec's section 3, written out with the ops, as the pipeline must compose them."""
    img = hr.astype(np.float32) / np.float32(255)
    if p.usm:
        img = usm_sharpen(img, radius=p.usm.radius, sigma=p.usm.sigma, weight=p.usm.weight,
                          threshold=p.usm.threshold)
    fh, fw = hr.shape[0] // p.scale, hr.shape[1] // p.scale
    for st in p.stages:
        if st.blur:
            img = blur(img, K.build_kernel(st.blur, pool))
        s = st.resize.factor
        size = (max(1, int(fh * s)), max(1, int(fw * s))) if st.resize.size_ref == "final" else \
            (max(1, math.floor(img.shape[0] * s)), max(1, math.floor(img.shape[1] * s)))
        img = resize(img, size, st.resize.mode)
        n = st.noise
        if n is not None:
            if n.kind == "gaussian":
                img = add_gaussian_noise(img, n.sigma, n.gray, n.seed)
            elif n.kind == "poisson":
                img = add_poisson_noise(img, n.scale, n.gray, n.seed)
            else:
                img = add_noise_patch(img, pool.noise(n.pool_id), n.u, n.v)
        if st.jpeg_quality is not None:
            img = jpeg(img, st.jpeg_quality)
    f = p.final
    sinc = (lambda x: blur(x, K.build_kernel(f.sinc))) if f.sinc else (lambda x: x)
    if f.resize_first:
        img = jpeg(sinc(resize(img, (fh, fw), f.mode)), f.jpeg_quality)
    else:
        img = sinc(resize(jpeg(img, f.jpeg_quality), (fh, fw), f.mode))
    return to_uint8(img)


def test_order_of_operations_matches_spec(hr_small):
    rng = np.random.default_rng(8)
    seen_first = set()
    for _ in range(6):
        p = degradekit.sample(rng, DegradeConfig(order=2))
        seen_first.add(p.final.resize_first)
        np.testing.assert_array_equal(degradekit.apply(hr_small, p), _reference_composition(hr_small, p))
    assert seen_first == {True, False}


def test_each_recorded_choice_matters(hr_small):
    # changing one recorded parameter changes the LR: apply really uses every field
    base = _params([_stage("down", 0.6, "current", blur_k=KernelParams("iso", 7, 1.5, 1.5, 0.0),
                           noise=NoiseParams("gaussian", seed=3, gray=False, sigma=10.0), q=50),
                    _stage("up", 1.15, "final", noise=NoiseParams("poisson", seed=4, gray=True, scale=1.0))],
                   sinc=KernelParams("sinc", 9, omega_c=1.2))
    lr = degradekit.apply(hr_small, base).tobytes()
    s1, s2 = base.stages
    variants = [
        dataclasses.replace(base, usm=None),   # (!) USM before the stage-1 blur changes the LR
        dataclasses.replace(base, stages=(dataclasses.replace(s1, blur=None), s2)),
        dataclasses.replace(base, stages=(dataclasses.replace(s1, noise=dataclasses.replace(s1.noise, seed=5)), s2)),
        dataclasses.replace(base, stages=(dataclasses.replace(s1, noise=dataclasses.replace(s1.noise, gray=True)), s2)),
        dataclasses.replace(base, stages=(dataclasses.replace(s1, jpeg_quality=90), s2)),
        dataclasses.replace(base, stages=(s1, dataclasses.replace(s2, noise=dataclasses.replace(s2.noise, seed=6)))),
        dataclasses.replace(base, stages=(dataclasses.replace(s1, resize=ResizeParams("down", 0.6, "area",
                                                                                      "current")), s2)),
        dataclasses.replace(base, final=dataclasses.replace(base.final, resize_first=False)),
        dataclasses.replace(base, final=dataclasses.replace(base.final, sinc=None)),
        dataclasses.replace(base, final=dataclasses.replace(base.final, jpeg_quality=81)),
        dataclasses.replace(base, final=dataclasses.replace(base.final, mode="area")),
        dataclasses.replace(base, stages=(s1, dataclasses.replace(s2, resize=ResizeParams("up", 1.15, "bilinear",
                                                                                          "current")))),
    ]
    for i, v in enumerate(variants):
        assert degradekit.apply(hr_small, v).tobytes() != lr, i


def test_pool_path(hr_small):
    pool = TinyPool()
    cfg = _pool_config(1.0, 1.0)
    lr, p = degradekit.degrade(hr_small, cfg, 3, pool)
    assert all(st.blur is None or st.blur.kind == "pool" for st in p.stages)
    assert p.stages[0].blur.kind == "pool"
    assert all(st.noise.kind == "pool" for st in p.stages)
    np.testing.assert_array_equal(lr, _reference_composition(hr_small, p, pool))
    back = DegradeParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert degradekit.apply(hr_small, back, pool).tobytes() == lr.tobytes()
    with pytest.raises(ValueError, match="no pool"):
        degradekit.apply(hr_small, p)
    with pytest.raises(ValueError, match="no pool"):
        degradekit.degrade(hr_small, cfg, 3)


def test_bad_inputs(hr_small):
    p = degradekit.sample(np.random.default_rng(0), preset())
    for bad, err in [(hr_small.astype(np.float32), ValueError), (hr_small[..., 0], ValueError),
                     (hr_small[:20], ValueError), (np.zeros((30, 30, 4), np.uint8), ValueError),
                     (hr_small.tolist(), TypeError)]:
        with pytest.raises(err):
            degradekit.apply(bad, p)
    with pytest.raises(TypeError):
        degradekit.sample(np.random.RandomState(0), preset())
    with pytest.raises(TypeError):
        degradekit.apply(hr_small, "params")


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d.update(extra=1), "params.extra: unknown key"),
    (lambda d: d.pop("final"), "params.final: missing"),
    (lambda d: d.update(scale=3), "params.scale"),
    (lambda d: d.update(order=5), "params.order"),
    (lambda d: d["stages"][0]["resize"].update(mode="nearest"), "params.stages[0].resize.mode"),
    (lambda d: d["stages"][0].update(blur={"kind": "iso", "size": 7}), "params.stages[0].blur.sigma_x: missing"),
    (lambda d: d["stages"][0].update(noise={"kind": "gaussian", "seed": 1.5, "gray": True, "sigma": 2.0}),
     "params.stages[0].noise.seed"),
    (lambda d: d["final"].update(resize_first="yes"), "params.final.resize_first"),
])
def test_params_from_dict_rejects_bad_records(mutate, fragment):
    d = degradekit.sample(np.random.default_rng(1), preset()).to_dict()
    mutate(d)
    with pytest.raises(ParamsError) as ei:
        DegradeParams.from_dict(d)
    assert fragment in str(ei.value) and "\n" not in str(ei.value)


def test_apply_variants_equals_separate_applies():
    """K draws on one HR share the unsharp mask but give exactly the bytes of K separate apply() calls; the
    first draw repeated last would differ if any draw had modified the shared sharpened HR."""
    from degradekit.pipeline import apply_variants

    hr = np.ascontiguousarray(data.chelsea()[:96, :120])
    cfg = preset("realesrgan")
    drawn = [degradekit.sample(np.random.default_rng(s), cfg) for s in range(6)]
    together = apply_variants(hr, drawn + [drawn[0].to_dict()])
    separate = [degradekit.apply(hr, p) for p in drawn + [drawn[0]]]
    for a, b in zip(together, separate):
        assert a.dtype == np.uint8 and np.array_equal(a, b)
