"""degradekit synth / replay / preview with the BSRGAN presets (x2, x3, x4, plus)."""
import json

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from cli import degradekit as cli
from degradekit import bsrgan
from degradekit.imageio import decode_png, read_image
from degradekit.synth.shards import iter_samples

FAST = ["--step", "48", "--shard-size", "3", "--progress", "none"]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("bs") / "src"
    d.mkdir()
    for i, im in enumerate([skimage.data.astronaut(), skimage.data.coffee()]):
        Image.fromarray(im).resize((112, 96), Image.LANCZOS).save(d / f"{i}.png")
    return d


def _synth(src, out, *args):
    return CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), *FAST, *args])


@pytest.mark.parametrize("preset,scale,patch", [("bsrgan", 4, 64), ("bsrgan-x3", 3, 63),
                                                ("bsrgan-plus", 4, 64)])
def test_shards_hold_bsrgan_pairs_that_replay(src, tmp_path, preset, scale, patch):
    out = tmp_path / "o"
    r = _synth(src, out, "--preset", preset, "--patch", str(patch), "--variants", "2", "--workers", "1")
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["settings"]["pipeline"] == "bsrgan" and m["config"]["pipeline"] == "bsrgan"
    cfg = bsrgan.BsrganConfig.from_dict(m["settings"]["config"])
    assert cfg == bsrgan.bsrgan_preset(preset) and cfg.scale == scale
    key, f = next(iter_samples(out / "shard-000000.tar"))
    rec = json.loads(f["json"])
    assert rec["pipeline"] == "bsrgan" and rec["scale"] == scale
    hr = decode_png(f["hr.png"])
    y0, x0, y1, x1 = rec["crop"]
    np.testing.assert_array_equal(hr, read_image(rec["source"]["path"])[y0:y1, x0:x1])
    for v in range(2):
        var = rec["variants"][v]
        p = bsrgan.sample_bsrgan(np.random.default_rng(var["seed"]), cfg)
        assert p.to_dict() == var["params"]
        lr = decode_png(f[f"lr{v}.png"])
        assert lr.shape == (patch // scale, patch // scale, 3)
        np.testing.assert_array_equal(lr, bsrgan.apply_bsrgan(hr, p))
    r = CliRunner().invoke(cli, ["replay", str(out), "2"])
    assert r.exit_code == 0 and "matches byte for byte" in r.output, r.output
    r = CliRunner().invoke(cli, ["replay", str(out), "1", "--stored-hr"])
    assert r.exit_code == 0, r.output


def test_same_bytes_whatever_the_worker_count(src, tmp_path):
    shas = []
    for w in ("1", "2"):
        out = tmp_path / f"w{w}"
        r = _synth(src, out, "--preset", "bsrgan", "--patch", "48", "--workers", w, "--seed", "3")
        assert r.exit_code == 0, r.output
        m = json.loads((out / "manifest.json").read_text())
        shas.append([s["sha256"] for s in m["shards"]])
    assert shas[0] == shas[1] and len(shas[0]) > 1


def test_use_sharp_stores_the_sharpened_hr(src, tmp_path, monkeypatch):
    # no preset sharpens; the pipeline dispatch must still store hr_target (the published HR is sharpened)
    real = bsrgan.bsrgan_preset
    monkeypatch.setattr(bsrgan, "bsrgan_preset", lambda name, scale=None: bsrgan.BsrganConfig(
        scale=scale or real(name).scale, variant="plus", use_sharp=True))
    out = tmp_path / "sharp"
    r = _synth(src, out, "--preset", "bsrgan-plus", "--patch", "64", "--workers", "1")
    assert r.exit_code == 0, r.output
    key, f = next(iter_samples(out / "shard-000000.tar"))
    rec = json.loads(f["json"])
    y0, x0, y1, x1 = rec["crop"]
    crop = read_image(rec["source"]["path"])[y0:y1, x0:x1]
    hr = decode_png(f["hr.png"])
    assert not np.array_equal(hr, crop)
    np.testing.assert_array_equal(hr, bsrgan.hr_target(crop, rec["variants"][0]["params"]))
    r = CliRunner().invoke(cli, ["replay", str(out), "0"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["replay", str(out), "0", "--stored-hr"])
    assert r.exit_code == 1 and "use_sharp" in r.output


@pytest.mark.parametrize("args,word", [
    (["--preset", "bsrgan", "--order", "2"], "--order"),
    (["--preset", "bsrgan", "--scale", "1"], "scale"),
    (["--preset", "bsrgan", "--patch", "66"], "multiple of 4"),
    (["--preset", "bsrgan-x3", "--patch", "64"], "multiple of 3"),
    (["--preset", "bsrgan", "--pool", "."], "--pool"),
    (["--preset", "bsrgan-x9"], "unknown bsrgan preset"),
    (["--preset", "realesrgan", "--scale", "3"], "scale"),
])
def test_bad_options_one_line(src, tmp_path, args, word):
    r = _synth(src, tmp_path / "bad", *args)
    assert r.exit_code == 2 or r.exit_code == 1
    assert word in r.output and not (tmp_path / "bad" / "manifest.json").exists(), r.output
    last = [ln for ln in r.output.strip().splitlines() if ln.startswith("Error")]
    assert len(last) == 1


def test_scale_override_gives_x2(src, tmp_path):
    out = tmp_path / "x2"
    r = _synth(src, out, "--preset", "bsrgan", "--scale", "2", "--patch", "48", "--workers", "1")
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert bsrgan.BsrganConfig.from_dict(m["settings"]["config"]) == bsrgan.bsrgan_preset("bsrgan-x2")


def test_preview_sheet_and_stats(tmp_path):
    out = tmp_path / "sheet.png"
    r = CliRunner().invoke(cli, ["preview", "--sample", "astronaut", "--preset", "bsrgan-x3", "--crop", "96",
                                 "--seeds", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "variant" in r.output and "final_quality" in r.output  # the parameter table
    sheet = read_image(out)
    assert sheet.shape[0] > 2 * 144
    r = CliRunner().invoke(cli, ["preview", "--stats", "500", "--preset", "bsrgan-plus", "--out",
                                 str(tmp_path / "st.png")])
    assert r.exit_code == 0, r.output
    for args, word in ((["--stats", "10", "--preset", "bsrgan", "--order", "2"], "--order"),
                       (["--stats", "10", "--preset", "bsrgan", "--pool", str(tmp_path)], "--pool"),
                       (["--stats", "10", "--preset", "bsrgan-x5"], "unknown bsrgan preset")):
        r = CliRunner().invoke(cli, ["preview", *args, "--out", str(tmp_path / "x.png")])
        assert r.exit_code == 1 and word in r.output, r.output


def test_preview_tiles_follow_the_op_order():
    from degradekit.bsrgan.preview import contact_sheet, plot_values

    hr = np.ascontiguousarray(skimage.data.astronaut()[:64, :64])
    cfg = bsrgan.bsrgan_preset("bsrgan")
    sheet, recs = contact_sheet(hr, cfg, [0, 1], tile=48)
    def n_tiles(p):  # HR, prehalve when drawn, the 7 ops, final_jpeg, LR zoom, one heat map per kernel
        k = sum(s.op == "blur" or (s.op == "down_a" and s.method == "nearest") for s in p.steps)
        return 1 + (p.prehalve is not None) + 7 + 1 + 1 + k

    ps = [bsrgan.BsrganParams.from_dict(r) for r in recs]
    assert sheet.shape[1] == max(n_tiles(q) for q in ps) * 50  # 48 px tiles + 2 px gutters
    p = ps[0]
    v = plot_values(p)
    assert v["pos.down_a"] < v["pos.down_b"] and v["final.quality"] == p.final_quality
    assert {"blur1.size", "blur2.size", "noise.level", "noise.branch", "down_a.method"} <= set(v)


def test_toml_config_with_the_options(src, tmp_path):
    from degradekit.bsrgan import dump_bsrgan_config, load_bsrgan_config

    f = tmp_path / "bs.toml"
    f.write_text('pipeline = "bsrgan"\npreset = "bsrgan-x2"\nantialias = true\nfit_kernel = true\n')
    cfg = load_bsrgan_config(f)
    assert cfg == bsrgan.BsrganConfig(scale=2, antialias=True, fit_kernel=True)
    full = tmp_path / "full.toml"
    full.write_text(dump_bsrgan_config(cfg))
    assert load_bsrgan_config(full) == cfg
    out = tmp_path / "o"
    r = _synth(src, out, "--config", str(f), "--patch", "48", "--workers", "1")
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert bsrgan.BsrganConfig.from_dict(m["settings"]["config"]) == cfg
    key, fl = next(iter_samples(out / "shard-000000.tar"))
    assert json.loads(fl["json"])["variants"][0]["params"]["antialias"] is True
    r = CliRunner().invoke(cli, ["replay", str(out), "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["preview", "--stats", "50", "--config", str(f), "--out", str(tmp_path / "s.png")])
    assert r.exit_code == 0, r.output
    for text, word in (('pipeline = "bsrgan"\nantialias = 1\n', "antialias"),
                       ('pipeline = "bsrgan"\nwieght = 1\n', "unknown key"),
                       ('pipeline = "bsrgan"\npreset = "realesrgan"\n', "preset")):
        f.write_text(text)
        r = _synth(src, tmp_path / "bad", "--config", str(f), "--patch", "48")
        assert r.exit_code == 1 and word in r.output and str(f) in r.output, r.output
        assert len([ln for ln in r.output.splitlines() if ln.startswith("Error")]) == 1


def test_inspect_draws_bsrgan_histograms(src, tmp_path):
    out = tmp_path / "o"
    r = _synth(src, out, "--preset", "bsrgan", "--patch", "48", "--workers", "1")
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["inspect", str(out), "--out", str(tmp_path / "insp")])
    assert r.exit_code == 0, r.output
    assert read_image(tmp_path / "insp" / "params.png").shape[0] > 300
    from degradekit.preview import _plot_values

    key, f = next(iter_samples(out / "shard-000000.tar"))
    v = _plot_values(json.loads(f["json"])["variants"][0]["params"])
    assert "blur1.size" in v and "noise.level" in v
