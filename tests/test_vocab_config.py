"""The issue-11 vocabulary in the config: strict rejection (one line, file and dotted key), the presets' values,
the size bound, `config show` / `config check`, and the copies of the ops' name tuples."""
import dataclasses
import json
import tomllib

import pytest
from click.testing import CliRunner

from cli import degradekit as degradekit_cli
from degradekit import config as C
from degradekit.config import (ConfigError, DegradeConfig, check_size_bound, dump_config, load_config, preset,
                               validate_config)


def test_name_tuples_equal_the_ops():
    from degradekit import params as P
    from degradekit.ops import codec_info, dither, resample, video

    assert C.FILTERS == resample.FILTERS == P.FILTERS
    assert C.DITHER_METHODS == dither.DITHER_METHODS
    assert C.VIDEO_CODECS == video.CODECS
    assert C.CODECS == codec_info.KINDS == P.CODECS
    assert C.STEPS == P.STEPS


def test_realesrgan_presets_take_no_new_branch():
    """Every new probability is 0 and every new choice single in the Real-ESRGAN presets."""
    for name in ("realesrgan", "realesrgan-x2"):
        c = preset(name)
        for st in c.stages:
            assert (st.halo_prob, st.color_prob, st.banding_prob, st.dither_prob) == (0, 0, 0, 0)
            assert st.step_order == "fixed"
            k, r, n = st.kernel, st.resize, st.noise
            assert (k.box_prob, k.disk_prob, k.motion_prob, k.median_prob) == (0, 0, 0, 0)
            assert (r.filter_prob, r.down_up_prob) == (0, 0)
            assert (n.uniform_prob, n.speckle_prob, n.salt_pepper_prob, n.luma_prob, n.chroma_prob) == (0,) * 5
            assert st.jpeg.subsampling == ("420",) and st.compression.weights.used() == ("jpeg",)
        assert c.final.filter_prob == 0 and c.final.compression.weights.used() == ("jpeg",)
        assert c.final.jpeg.subsampling == ("420",)


def test_realworld_preset():
    c = validate_config(preset("realworld"))
    assert preset("realworld-x2") == dataclasses.replace(c, scale=2)
    s1, s2 = c.stages
    assert s1.compression.weights.used() == ("jpeg", "webp", "jpeg2000", "h264")
    assert set(c.final.compression.weights.used()) == {"jpeg", "webp", "avif", "h264", "hevc", "vp9", "av1"}
    assert s1.noise.luma_prob > s1.noise.chroma_prob > 0          # luma-heavy sensor noise
    assert s1.kernel.disk_prob > 0 and s1.kernel.motion_prob > 0
    assert s1.resize.filter_prob > 0 and s1.resize.antialias_prob > 0
    assert s2.step_order == "shuffle" and s1.step_order == "fixed"
    assert all(st.color_prob == 0 for st in c.stages)              # colour jitter is opt-in only
    assert s1.jpeg.subsampling[0] == "420" and s1.jpeg.subsampling_weights[0] == 0.75


@pytest.mark.parametrize("name", ["realworld", "realesrgan"])
def test_dump_load_round_trip_with_new_tables(tmp_path, name):
    cfg = preset(name)
    text = dump_config(cfg)
    p = tmp_path / "c.toml"
    p.write_text(text)
    assert load_config(p) == cfg
    assert DegradeConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    data = tomllib.loads(text)
    st = data["stages"][0]
    for key in ("compression", "halo", "color", "banding", "dither", "step_order", "halo_prob", "color_prob"):
        assert key in st, key
    assert set(st["compression"]["weights"]) == set(C.CODECS)
    # every new key carries its doc line in the dump
    assert "# probability of colour jitter; opt-in" in text
    assert "# probability of a down-up chain" in text


def test_partial_file_over_realworld(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('preset = "realworld"\n[[stages]]\n[stages.compression.weights]\njpeg = 0.5\nwebp = 0.25\n'
                 'h264 = 0.1\njpeg2000 = 0.15\n')
    c = load_config(p)
    assert c.stages[0].compression.weights.webp == 0.25
    assert c.stages[0].noise == preset("realworld").stages[0].noise
    assert len(c.stages) == 1


BAD = [
    ("[[stages]]\n[stages.compression.weights]\nwebp = 0.5", "stages[0].compression.weights", "must sum to 1"),
    ("[[stages]]\n[stages.compression.weights]\ngif = 0.5", "stages[0].compression.weights.gif", "unknown key"),
    ("[final.compression.weights]\njpeg = 0.5\nwebp = 0.6", "final.compression.weights", "must sum to 1"),
    ('[final.jpeg]\nsubsampling = ["411"]', "final.jpeg.subsampling[0]", "not one of"),
    ('[final.jpeg]\nsubsampling = ["420", "444"]\nsubsampling_weights = [1.0]', "final.jpeg.subsampling_weights",
     "1 weights for 2 choices"),
    ('[final.jpeg]\nsubsampling = ["420", "444"]\nsubsampling_weights = [0.5, 0.6]',
     "final.jpeg.subsampling_weights", "must sum to 1"),
    ("[final.compression.webp]\nquality = [0, 90]", "final.compression.webp.quality[0]", "out of range"),
    ("[final.compression.webp]\nquality = [90, 40]", "final.compression.webp.quality", "lo > hi"),
    ("[final.compression.webp]\nquality = [40.5, 90]", "final.compression.webp.quality[0]", "expected an integer"),
    ("[final.compression.avif]\nspeed = [6, 11]", "final.compression.avif.speed[1]", "out of range"),
    ("[final.compression.jpeg2000]\nrate = [0.5, 10]", "final.compression.jpeg2000.rate[0]", "out of range"),
    ("[final.compression.weights]\njpeg = 0\nh264 = 1\n[final.compression.h264]\nquality = [10, 60]",
     "final.compression.h264.quality[1]", "for h264"),
    ('[final.compression.weights]\njpeg = 0\nvp9 = 1\n[final.compression.vp9]\npresets = ["medium"]',
     "final.compression.vp9.presets[0]", "not one of 'best', 'good', 'realtime' for vp9"),
    ('[final.compression.weights]\njpeg = 0\nmpeg2 = 1\n[final.compression.mpeg2]\npix_fmts = ["yuv444p"]',
     "final.compression.mpeg2.pix_fmts[0]", "for mpeg2"),
    ('[final.compression.h264]\npresets = []', "final.compression.h264.presets", "must not be empty"),
    ('[[stages]]\n[stages.resize]\nfilters = ["lanczos5"]', "stages[0].resize.filters[0]", "not one of"),
    ('[[stages]]\n[stages.resize]\nfilters = ["box", "box"]', "stages[0].resize.filters", "duplicates"),
    ('[[stages]]\n[stages.resize]\nfilters = ["box", "nearest"]\nfilter_weights = [0.2, 0.2]',
     "stages[0].resize.filter_weights", "must sum to 1"),
    ("[[stages]]\n[stages.resize]\nfilter_weights = [0.5, 0.5]", "stages[0].resize.filter_weights",
     "2 weights for 11 choices"),
    ("[[stages]]\n[stages.resize]\nantialias_prob = 1.5", "stages[0].resize.antialias_prob", "out of range"),
    ("[[stages]]\n[stages.resize]\ndown_up = [0.0, 0.5]", "stages[0].resize.down_up[0]", "out of range"),
    ("[final]\ndown_up_prob = 0.5", "final.down_up_prob", "unknown key"),
    ("[[stages]]\n[stages.kernel]\nbox_prob = 0.5\nmotion_prob = 0.6", "stages[0].kernel.median_prob",
     "box_prob + disk_prob + motion_prob + median_prob = 1.1, must be <= 1"),
    ("[[stages]]\n[stages.kernel]\nmedian_sizes = [3, 4]", "stages[0].kernel.median_sizes[1]", "not odd"),
    ("[[stages]]\n[stages.kernel]\nmedian_sizes = [17]", "stages[0].kernel.median_sizes[0]", "out of range"),
    ("[[stages]]\n[stages.kernel]\ndisk_radius = [0.0, 2.0]", "stages[0].kernel.disk_radius[0]", "out of range"),
    ("[[stages]]\n[stages.kernel]\nmotion_length = [1, 25]", "stages[0].kernel.motion_length[1]", "out of range"),
    ("[[stages]]\n[stages.kernel]\nbox_size = [4, 2]", "stages[0].kernel.box_size", "lo > hi"),
    ("[[stages]]\n[stages.noise]\nuniform_prob = 0.5\nspeckle_prob = 0.3\nsalt_pepper_prob = 0.3",
     "stages[0].noise.salt_pepper_prob", "must be <= 1"),
    ("[[stages]]\n[stages.noise]\nluma_prob = 0.7\nchroma_prob = 0.4", "stages[0].noise.chroma_prob",
     "luma_prob + chroma_prob = 1.1"),
    ("[[stages]]\n[stages.noise]\nsalt_ratio = [0.5, 1.5]", "stages[0].noise.salt_ratio[1]", "out of range"),
    ('[[stages]]\nstep_order = "random"', "stages[0].step_order", "not one of 'fixed', 'shuffle'"),
    ("[[stages]]\nhalo_prob = -0.1", "stages[0].halo_prob", "out of range"),
    ("[[stages]]\n[stages.halo]\nradius = [3, 1]", "stages[0].halo.radius", "lo > hi"),
    ("[[stages]]\n[stages.banding]\nbits = [0]", "stages[0].banding.bits[0]", "out of range"),
    ("[[stages]]\n[stages.banding]\nbits = [9]", "stages[0].banding.bits[0]", "out of range"),
    ("[[stages]]\n[stages.dither]\nlevels = [1, 8]", "stages[0].dither.levels[0]", "out of range"),
    ('[[stages]]\n[stages.dither]\nmethods = ["ostromoukhov"]', "stages[0].dither.methods[0]", "not one of"),
    ("[[stages]]\n[stages.color]\ngamma = [0, 1.1]", "stages[0].color.gamma[0]", "out of range"),
    ("[[stages]]\n[stages.color]\nhue = [0, 1]", "stages[0].color.hue", "unknown key"),
    ("[[stages]]\ncolor_prob = true", "stages[0].color_prob", "expected a number"),
]


@pytest.mark.parametrize("text,key,problem", BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_vocabulary_configs_one_line(tmp_path, text, key, problem):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {key}: "), msg
    assert problem in msg, msg


def test_unavailable_codec_rejected_in_one_line(tmp_path, monkeypatch):
    """A codec the installed libraries lack is rejected when the config is loaded (ops.codec_info.require)."""
    from degradekit.ops import codec_info

    real = codec_info.require

    def fake(kind):
        if kind == "avif":
            raise ValueError("codec 'avif': not available (Pillow 0.0 has no AVIF support)")
        return real(kind)

    monkeypatch.setattr(codec_info, "require", fake)
    path = tmp_path / "c.toml"
    path.write_text("[final.compression.weights]\njpeg = 0.5\navif = 0.5\n")
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert str(ei.value) == (f"{path}: final.compression.weights.avif: codec 'avif': not available "
                             "(Pillow 0.0 has no AVIF support)")
    # weight 0: the codec is never used, so never required
    path.write_text("[final.compression.weights]\njpeg = 1.0\navif = 0.0\n")
    assert load_config(path).final.compression.weights.used() == ("jpeg",)
    res = CliRunner().invoke(degradekit_cli, ["config", "check", str(path)])
    assert res.exit_code == 0
    path.write_text("[final.compression.weights]\njpeg = 0.5\navif = 0.5\n")
    res = CliRunner().invoke(degradekit_cli, ["config", "check", str(path)])
    assert res.exit_code == 1 and "avif: codec 'avif': not available" in res.output
    assert len(res.output.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------ size bound

BIG = "[[stages]]\n[stages.resize]\nup_prob = 1.0\ndown_prob = 0.0\nkeep_prob = 0.0\nup = [16, 16]\n"


def test_size_bound_rejects_16x_up_in_one_line(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(BIG)
    cfg = load_config(path)  # valid key by key: only the size bound catches it
    with pytest.raises(ConfigError) as ei:
        check_size_bound(cfg, (400, 400), str(path))
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: stages[0].resize.up: stage 2 can grow a 400x400 px HR to 102400x102400 px")
    assert "64 Mpx" in msg
    # at a small patch the same config fits: 21 * 16 * 16 = 5376 px a side = 28.9 Mpx
    check_size_bound(cfg, (21, 21), "x")


def test_size_bound_rules():
    base = preset()
    check_size_bound(base, (4096, 4096), "p")       # the preset at synth's largest patch: 6144^2 = 37.7 Mpx
    check_size_bound(preset("realworld"), (4096, 4096), "p")
    with pytest.raises(ConfigError, match=r"^p: the 9000x8000 px HR is 72\.0 Mpx"):
        check_size_bound(base, (8000, 9000), "p")
    # stage 1 x1.5 of 6600^2 = 98 Mpx: over; the message names stage 1's table
    with pytest.raises(ConfigError, match=r"^p: stages\[0\]\.resize\.up: stage 1 "):
        check_size_bound(base, (6600, 6600), "p")
    # size_ref "final" is relative to HR // scale: a stage-2 up of 16 from 400 // 4 = 100 gives 1600^2
    s2 = dataclasses.replace(base.stages[1].resize, up=(16.0, 16.0))
    cfg = dataclasses.replace(base, stages=(base.stages[0], dataclasses.replace(base.stages[1], resize=s2)))
    check_size_bound(cfg, (400, 400), "p")
    with pytest.raises(ConfigError, match=r"stages\[1\]\.resize\.up: stage 2 "):
        check_size_bound(cfg, (2400, 2400), "p")   # 600 * 16 = 9600^2 = 92 Mpx
    # up_prob 0: the largest factor is 1 (keep) -- a huge up range is never used
    r = dataclasses.replace(base.stages[0].resize, up_prob=0.0, down_prob=0.9, keep_prob=0.1, up=(16.0, 16.0))
    check_size_bound(dataclasses.replace(base, stages=(dataclasses.replace(base.stages[0], resize=r),)),
                     (4096, 4096), "p")


def test_size_bound_in_the_cli(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(BIG)
    r = CliRunner()
    res = r.invoke(degradekit_cli, ["config", "check", str(path)])
    assert res.exit_code == 1 and "stages[0].resize.up: stage 2 can grow a 400x400 px HR" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    res = r.invoke(degradekit_cli, ["config", "check", "--patch", "21", str(path)])
    assert res.exit_code == 0, res.output
    res = r.invoke(degradekit_cli, ["synth", "--src", "sample", "--out", str(tmp_path / "o"), "--config", str(path),
                                    "--patch", "64"])
    assert res.exit_code == 1 and "stage 2 can grow a 64x64 px HR to 16384x16384 px" in res.output
    assert not (tmp_path / "o").exists()   # rejected before any work
    res = r.invoke(degradekit_cli, ["preview", "--sample", "astronaut", "--config", str(path), "--crop", "200",
                                    "--out", str(tmp_path / "p.png")])
    assert res.exit_code == 1 and "can grow a 200x200 px HR" in res.output
    assert not (tmp_path / "p.png").exists()


def test_config_show_prints_the_new_keys_with_docs():
    res = CliRunner().invoke(degradekit_cli, ["config", "show", "--preset", "realworld"])
    assert res.exit_code == 0
    out = res.output
    assert tomllib.loads(out)["stages"][1]["step_order"] == "shuffle"
    for doc in ("# WebP, lossy", "# probability of a disk (defocus) blur", "# probability that a filter resize "
                "is antialiased", "# the oversharpening", "# bits per channel", "# encoder presets"):
        assert doc in out, doc


def test_kernel_range_bounds_keep_kernels_within_the_largest_size():
    """The config's upper bounds for box/disk/motion keep every kernel <= MAX_KERNEL_SIZE (the HR minimum)."""
    import numpy as np

    from degradekit.kernels import MAX_KERNEL_SIZE, build_kernel
    from degradekit.params import KernelParams

    f = {f.name: f.metadata for f in dataclasses.fields(C.KernelConfig)}
    ks = [build_kernel(KernelParams(kind="box", width=f["box_size"]["hi"])),
          build_kernel(KernelParams(kind="disk", radius=f["disk_radius"]["hi"]))]
    ks += [build_kernel(KernelParams(kind="motion", length=f["motion_length"]["hi"], angle=float(a)))
           for a in np.linspace(-360, 360, 145)]
    assert max(k.shape[0] for k in ks) <= MAX_KERNEL_SIZE
    assert all(abs(k.sum() - 1) < 1e-9 for k in ks)
    with pytest.raises(ValueError, match="median filter has no kernel"):
        build_kernel(KernelParams(kind="median", size=3))


def test_preview_of_a_preset_with_a_missing_codec_is_one_line(tmp_path, monkeypatch):
    from degradekit.ops import codec_info

    real = codec_info.require

    def fake(kind):
        if kind == "vp9":
            raise ValueError("codec 'vp9': not available (PyAV is not installed)")
        return real(kind)

    monkeypatch.setattr(codec_info, "require", fake)
    C._SEEN.clear()
    C._validated.cache_clear()
    try:
        res = CliRunner().invoke(degradekit_cli, ["preview", "--stats", "10", "--preset", "realworld",
                                                  "--out", str(tmp_path / "s.png")])
    finally:
        C._SEEN.clear()
        C._validated.cache_clear()
    assert res.exit_code == 1, res.output
    assert res.output.strip() == ("Error: --preset realworld: final.compression.weights.vp9: codec 'vp9': not "
                                  "available (PyAV is not installed)")


def test_config_show_documents_every_key():
    """Every `key = value` line of `config show` has its doc line right above it."""
    import re

    for name in ("realworld", "realesrgan"):
        lines = dump_config(preset(name)).splitlines()
        keys = [i for i, l in enumerate(lines) if re.match(r"[a-z0-9_]+ = ", l)]
        assert len(keys) > 150
        undocumented = [lines[i] for i in keys if not lines[i - 1].startswith("# ")]
        assert not undocumented, undocumented[:5]


def test_config_show_and_check_dispatch_bsrgan(tmp_path):
    r = CliRunner()
    res = r.invoke(degradekit_cli, ["config", "show", "--preset", "bsrgan-x2"])
    assert res.exit_code == 0, res.output
    text = res.output
    p = tmp_path / "b.toml"
    p.write_text(text)
    from degradekit.bsrgan import bsrgan_preset, load_bsrgan_config

    assert load_bsrgan_config(p) == bsrgan_preset("bsrgan-x2")
    res = r.invoke(degradekit_cli, ["config", "show", "--file", str(p), "--no-comments"])
    assert res.exit_code == 0 and "#" not in res.output
    res = r.invoke(degradekit_cli, ["config", "check", str(p)])
    assert res.exit_code == 0 and res.output.strip() == f"{p}: OK"
    p.write_text('pipeline = "bsrgan"\nbogus = 1\n')
    res = r.invoke(degradekit_cli, ["config", "check", str(p)])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "bogus" in res.output
    res = r.invoke(degradekit_cli, ["config", "show", "--preset", "bsrgan-x9"])
    assert res.exit_code == 1 and res.output.startswith("Error: --preset bsrgan-x9: ")
