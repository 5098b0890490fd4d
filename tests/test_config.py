"""Config: the preset equals the spec, TOML round trip, partial overrides, strict validation, the CLI."""
import dataclasses
import math
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import degradekit as degradekit_cli
from degradekit.config import (PRESETS, ConfigError, DegradeConfig, KernelConfig, StageConfig,
                               config_from_dict, config_reference_markdown, dump_config, load_config, preset,
                               stage_config, validate_config)

PI = math.pi
README = Path(__file__).resolve().parents[1] / "README.md"  # the repository root's


def test_preset_is_the_spec():
    c = preset("realesrgan")
    assert c == DegradeConfig()
    assert (c.scale, c.order, len(c.stages)) == (4, 2, 2)
    assert (c.usm.enabled, c.usm.radius, c.usm.sigma, c.usm.weight, c.usm.threshold) == (True, 51, 0.0, 0.5, 10)
    s1, s2 = c.stages
    for s, sigma in ((s1, (0.2, 3.0)), (s2, (0.2, 1.5))):
        k = s.kernel
        assert k.sizes == (7, 9, 11, 13, 15, 17, 19, 21)
        assert k.sinc_prob == 0.1
        assert k.sinc_omega_small == (PI / 3, PI) and k.sinc_omega_large == (PI / 5, PI)
        assert k.sinc_large_from == 13
        assert dataclasses.astuple(k.weights) == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
        assert k.sigma == sigma and k.theta == (-PI, PI)
        assert k.generalized_beta == (0.5, 4.0) and k.plateau_beta == (1.0, 2.0) and k.beta_low_prob == 0.5
        assert k.pool_prob == 0.0 and s.noise.pool_prob == 0.0
        assert s.resize.modes == ("area", "bilinear", "bicubic")
        assert s.noise.gaussian_prob == 0.5 and s.noise.gray_prob == 0.4 and s.noise_prob == 1.0
        assert s.jpeg.quality == (30, 95)
    assert s1.blur_prob == 1.0 and s2.blur_prob == 0.8
    r1, r2 = s1.resize, s2.resize
    assert (r1.up_prob, r1.down_prob, r1.keep_prob, r1.up, r1.down, r1.size_ref) == \
        (0.2, 0.7, 0.1, (1.0, 1.5), (0.15, 1.0), "current")
    assert (r2.up_prob, r2.down_prob, r2.keep_prob, r2.up, r2.down, r2.size_ref) == \
        (0.3, 0.4, 0.3, (1.0, 1.2), (0.3, 1.0), "final")
    assert s1.noise.gaussian_sigma == (1, 30) and s1.noise.poisson_scale == (0.05, 3.0)
    assert s2.noise.gaussian_sigma == (1, 25) and s2.noise.poisson_scale == (0.05, 2.5)
    assert s1.jpeg_prob == 1.0 and s2.jpeg_prob == 0.0
    f = c.final
    assert f.resize_first_prob == 0.5 and f.modes == ("area", "bilinear", "bicubic")
    assert f.sinc_prob == 0.8 and f.sinc_sizes == (7, 9, 11, 13, 15, 17, 19, 21) and f.sinc_omega == (PI / 3, PI)
    assert f.jpeg.quality == (30, 95)
    # the x2 preset differs only in its scale
    assert preset("realesrgan-x2") == dataclasses.replace(c, scale=2)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("esrgan")


def test_stage_lookup():
    c = DegradeConfig(order=5)
    assert stage_config(c, 1) is c.stages[0]
    assert all(stage_config(c, i) is c.stages[1] for i in (2, 3, 4, 5))


def _custom():
    base = preset()
    s3 = dataclasses.replace(base.stages[1], kernel=KernelConfig(sizes=(3, 5), sigma=(0.5, 0.7), pool_prob=0.25))
    return dataclasses.replace(base, scale=1, order=3, stages=base.stages + (s3,),
                               final=dataclasses.replace(base.final, modes=("bicubic",), sinc_omega=(0.3, 1.1)))


@pytest.mark.parametrize("cfg", [preset("realesrgan"), preset("realesrgan-x2"), _custom(),
                                 dataclasses.replace(preset(), stages=(StageConfig(),))],
                         ids=["realesrgan", "x2", "custom", "one-stage"])
@pytest.mark.parametrize("comments", [True, False])
def test_dump_load_round_trip(tmp_path, cfg, comments):
    text = dump_config(cfg, comments=comments)
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(path) == cfg
    # the dict form (recorded in manifests) round-trips too, through JSON
    import json
    assert DegradeConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # every key is written (a full config, not a diff)
    flat = tomllib.loads(text)
    assert set(flat) == {"scale", "order", "usm", "stages", "final"}
    assert len(flat["stages"]) == len(cfg.stages)


def _load(tmp_path, text):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return load_config(path)


def test_partial_overrides(tmp_path):
    base = preset()
    c = _load(tmp_path, "order = 3\n[final]\nsinc_prob = 0.5\n")
    assert c == dataclasses.replace(base, order=3, final=dataclasses.replace(base.final, sinc_prob=0.5))
    # an empty [[stages]] keeps the preset stage; the second one overrides stage 2 only
    c = _load(tmp_path, "[[stages]]\n[[stages]]\n[stages.kernel]\nsigma = [0.3, 1.0]\n")
    assert c.stages[0] == base.stages[0]
    assert c.stages[1] == dataclasses.replace(base.stages[1],
                                              kernel=dataclasses.replace(base.stages[1].kernel, sigma=(0.3, 1.0)))
    # a third table starts from the preset's last stage
    c = _load(tmp_path, "order = 3\n[[stages]]\n[[stages]]\n[[stages]]\nblur_prob = 0.5\n")
    assert c.stages[2] == dataclasses.replace(base.stages[1], blur_prob=0.5)
    # one table: the result has one stage setting (used by every stage)
    c = _load(tmp_path, "[[stages]]\nblur_prob = 0.9\n")
    assert c.stages == (dataclasses.replace(base.stages[0], blur_prob=0.9),)
    # preset key, ints accepted for floats
    c = _load(tmp_path, 'preset = "realesrgan-x2"\n[usm]\nweight = 1\n')
    assert c.scale == 2 and c.usm.weight == 1.0 and isinstance(c.usm.weight, float)
    assert _load(tmp_path, "") == base


BAD = [
    # (toml text, dotted key, fragment of the problem)
    ("foo = 1", "foo", "unknown key"),
    ("[usm]\nradiuss = 3", "usm.radiuss", "unknown key"),
    ("[[stages]]\n[stages.kernel.weights]\nbox = 0.1", "stages[0].kernel.weights.box", "unknown key"),
    ('scale = "4"', "scale", "expected an integer"),
    ("order = 2.0", "order", "expected an integer"),
    ("[usm]\nenabled = 1", "usm.enabled", "expected true or false"),
    ("[final]\nsinc_prob = true", "final.sinc_prob", "expected a number"),
    ("[final]\nsinc_sizes = 7", "final.sinc_sizes", "expected an array"),
    ("[final]\nmodes = [1]", "final.modes[0]", "expected a string"),
    ("[final]\nsinc_omega = [1.0, 2.0, 3.0]", "final.sinc_omega", "array of 2"),
    ("[final]\nsinc_prob = nan", "final.sinc_prob", "finite"),
    ("usm = 3", "usm", "expected a table"),
    ("[stages]\nblur_prob = 1", "stages", "array of tables"),
    ("stages = []", "stages", "must not be empty"),
    ("stages = [1]", "stages[0]", "expected a table"),
    ("scale = 3", "scale", "not one of 1, 2, 4"),
    ("order = 0", "order", "out of range"),
    ("[[stages]]\n[stages.resize]\nup_prob = 0.5", "stages[0].resize", "must sum to 1"),
    ("[[stages]]\n[[stages]]\n[stages.kernel.weights]\niso = 0.5", "stages[1].kernel.weights", "must sum to 1"),
    ("[final]\nsinc_omega = [2.0, 1.0]", "final.sinc_omega", "lo > hi"),
    ("[[stages]]\n[stages.noise]\ngaussian_sigma = [10, 5]", "stages[0].noise.gaussian_sigma", "lo > hi"),
    ("[[stages]]\n[stages.kernel]\nsigma = [-1.0, 2.0]", "stages[0].kernel.sigma[0]", "out of range"),
    ("[[stages]]\n[stages.noise]\ngaussian_sigma = [-1, 5]", "stages[0].noise.gaussian_sigma[0]", "out of range"),
    ("[final.jpeg]\nquality = [0, 95]", "final.jpeg.quality[0]", "out of range"),
    ("[final.jpeg]\nquality = [30, 101]", "final.jpeg.quality[1]", "out of range"),
    ("[[stages]]\n[stages.kernel]\nsizes = [7, 8]", "stages[0].kernel.sizes[1]", "not odd"),
    ("[[stages]]\n[stages.kernel]\nsizes = [23]", "stages[0].kernel.sizes[0]", "out of range"),
    ("[[stages]]\n[stages.kernel]\nsizes = []", "stages[0].kernel.sizes", "must not be empty"),
    ("[final]\nsinc_sizes = [7, 7]", "final.sinc_sizes", "duplicates"),
    ("[final]\nsinc_prob = 1.5", "final.sinc_prob", "out of range"),
    ("[[stages]]\nblur_prob = -0.1", "stages[0].blur_prob", "out of range"),
    ('[final]\nmodes = ["nearest"]', "final.modes[0]", "not one of"),
    ('[[stages]]\n[stages.resize]\nsize_ref = "hr"', "stages[0].resize.size_ref", "not one of"),
    ("[[stages]]\n[stages.resize]\nup = [0.5, 1.5]", "stages[0].resize.up[0]", "out of range"),
    ("[[stages]]\n[stages.resize]\ndown = [0.0, 1.0]", "stages[0].resize.down[0]", "out of range"),
    ("[[stages]]\n[stages.kernel]\nplateau_beta = [1.2, 2.0]", "stages[0].kernel.plateau_beta", "contain 1"),
    ("[usm]\nradius = 50", "usm.radius", "not odd"),
    ('preset = "esrgan"', "preset", "unknown preset"),
]


@pytest.mark.parametrize("text,key,problem", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_configs_one_line_naming_file_and_key(tmp_path, text, key, problem):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {key}: "), msg
    assert problem in msg, msg
    assert isinstance(ei.value, ValueError)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read"):
        load_config(tmp_path / "missing.toml")
    p = tmp_path / "syntax.toml"
    p.write_text("scale = \n")
    with pytest.raises(ConfigError, match=r"syntax\.toml: invalid TOML: .*line 1"):
        load_config(p)
    p.write_bytes(b"scale = 4\n\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)


def test_validate_code_built_configs():
    assert validate_config(preset()) is preset()
    with pytest.raises(ConfigError, match=r"^<config>: order: "):
        validate_config(dataclasses.replace(preset(), order=0))
    bad_kernel = dataclasses.replace(preset().stages[0].kernel, sizes=[7, 9])  # a list is not hashable
    with pytest.raises(ConfigError, match=r"stages\[0\]\.kernel\.sizes: expected a tuple"):
        validate_config(dataclasses.replace(preset(), stages=(StageConfig(kernel=bad_kernel),)))
    with pytest.raises(ConfigError, match=r"stages\[1\]\.jpeg_prob"):
        validate_config(dataclasses.replace(preset(), stages=(StageConfig(), StageConfig(jpeg_prob=2.0))))
    with pytest.raises(ConfigError, match="from_dict: scale"):
        config_from_dict({"scale": 8}, "from_dict")


def test_sample_rejects_invalid_config_before_work():
    import numpy as np

    from degradekit.pipeline import sample
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="stages"):
        sample(rng, dataclasses.replace(preset(), stages=()))


# ---------------------------------------------------------------------------------------------------- CLI

def test_cli_help():
    r = CliRunner()
    for args in (["--help"], ["config", "--help"], ["config", "show", "--help"], ["config", "check", "--help"]):
        res = r.invoke(degradekit_cli, args)
        assert res.exit_code == 0, (args, res.output)
        assert "Usage:" in res.output


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_cli_show_presets(name, tmp_path):
    res = CliRunner().invoke(degradekit_cli, ["config", "show", "--preset", name])
    assert res.exit_code == 0, res.output
    p = tmp_path / "shown.toml"
    p.write_text(res.output)
    assert load_config(p) == preset(name)
    assert res.output.count("[[stages]]") == 2 and "\n# " in res.output


def test_cli_show_file_and_errors(tmp_path):
    p = tmp_path / "part.toml"
    p.write_text("order = 3\n")
    res = CliRunner().invoke(degradekit_cli, ["config", "show", "--file", str(p), "--no-comments"])
    assert res.exit_code == 0 and "order = 3" in res.output and "# " not in res.output
    res = CliRunner().invoke(degradekit_cli, ["config", "show", "--preset", "nope"])
    assert res.exit_code == 1 and "unknown preset 'nope'" in res.output


def test_cli_check(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('preset = "realesrgan"\norder = 1\n')
    res = CliRunner().invoke(degradekit_cli, ["config", "check", str(good)])
    assert res.exit_code == 0 and res.output.strip() == f"{good}: OK"
    bad = tmp_path / "bad.toml"
    bad.write_text("[[stages]]\n[stages.kernel]\nsizes = [8]\n")
    res = CliRunner().invoke(degradekit_cli, ["config", "check", str(bad)])
    assert res.exit_code == 1
    assert res.output.strip() == f"Error: {bad}: stages[0].kernel.sizes[0]: 8 is not odd"
    res = CliRunner().invoke(degradekit_cli, ["config", "check"])
    assert res.exit_code == 2  # usage error: the file argument is missing


# ---------------------------------------------------------------------------------------------- README

def test_config_reference_file_is_current():
    """docs/config-reference.md is the generated table (regenerate: python -m degradekit.config > it)."""
    ref = README.parent / "docs" / "config-reference.md"
    text = ref.read_text()
    table = config_reference_markdown()
    assert table in text, "docs/config-reference.md is stale: regenerate it with `python -m degradekit.config`"
    from degradekit.config import preset_diff_markdown

    diff = preset_diff_markdown("realworld")
    assert diff in text, "docs/config-reference.md is stale: regenerate it with `python -m degradekit.config`"
    assert "| `stages[1].step_order` | \"fixed\" | \"shuffle\" |" in diff
    assert "| `stages[0].compression.weights.webp` | 0 | 0.15 |" in diff
    assert "| `scale` |" not in diff  # same scale
    keys = re.findall(r"^\| `([^`]+)`", table, re.M)
    assert len(keys) > 150
    for k in ("stages[0].compression.weights.avif", "stages[0].resize.filter_prob", "stages[0].kernel.motion_prob",
              "stages[0].noise.luma_prob", "stages[0].step_order", "stages[0].halo.amount", "final.compression.h264.pix_fmts"):
        assert k in keys, k
