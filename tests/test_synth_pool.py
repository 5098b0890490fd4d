"""degradekit synth --pool: the RealSR pipeline (--preset realsr) and Real-ESRGAN configs with pool_prob > 0."""
import json
import shutil

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from cli import degradekit as cli
from degradekit.imageio import decode_png, read_image
from degradekit.kernels import gaussian_kernel
from degradekit.pool import Pool
from degradekit.pool import realsr
from degradekit.synth.shards import iter_samples
from test_pool_realsr import make_pool  # the pool tests' builder: a real pool folder with known kernels

FAST = ["--patch", "64", "--step", "48", "--shard-size", "4", "--progress", "none", "--workers", "1"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("sp")
    src = base / "src"
    src.mkdir()
    for i, im in enumerate([skimage.data.astronaut(), skimage.data.coffee()]):
        Image.fromarray(im).resize((112, 96), Image.LANCZOS).save(src / f"{i}.png")
    rng = np.random.default_rng(0)
    noise = [np.clip(np.rint(128 + rng.normal(0, 3, (96, 96, 3))), 0, 255).astype(np.uint8) for _ in range(2)]
    pool = make_pool(base / "pool", [gaussian_kernel(13, 1.6, 0.9, 0.5), gaussian_kernel(13, 1.2, 1.2, 0.0)], noise)
    return src, pool


def test_realsr_preset_shards_replay_and_match_the_pool_pipeline(env, tmp_path):
    src, pool_dir = env
    out = tmp_path / "rs"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--preset", "realsr", "--pool",
                                 str(pool_dir), "--variants", "2", "--seed", "5", *FAST])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["settings"]["pipeline"] == "realsr" and m["config"]["pipeline"] == "realsr"
    pool = Pool.load(pool_dir, scale=4)
    assert m["settings"]["pool"] == {"path": str(pool_dir.resolve()), "sha256": pool.digest()}
    key, f = next(iter_samples(out / "shard-000000.tar"))
    rec = json.loads(f["json"])
    assert rec["pipeline"] == "realsr" and rec["pool"]["sha256"] == pool.digest()
    hr = decode_png(f["hr.png"])
    y0, x0, y1, x1 = rec["crop"]
    np.testing.assert_array_equal(hr, read_image(rec["source"]["path"])[y0:y1, x0:x1])
    cfg = realsr.realsr_preset(4)
    for v in range(2):
        var = rec["variants"][v]
        params = realsr.sample_realsr(np.random.default_rng(var["seed"]), cfg, pool)
        assert params.to_dict() == var["params"] and var["params"]["pipeline"] == "realsr"
        lr = decode_png(f[f"lr{v}.png"])
        np.testing.assert_array_equal(lr, realsr.apply_realsr(hr, params, pool))
        assert lr.shape == (16, 16, 3)
    r = CliRunner().invoke(cli, ["replay", str(out), "3"])
    assert r.exit_code == 0 and "ok   pool digest" in r.output and "matches byte for byte" in r.output, r.output
    # a changed pool is refused: on replay (digest) and on resume (settings differ)
    moved = tmp_path / "pool2"
    shutil.copytree(pool_dir, moved)
    noise_file = sorted((moved / "noise").glob("*.png"))[0]
    img = read_image(noise_file)
    img[0, 0] = (img[0, 0].astype(int) + 1) % 256
    Image.fromarray(img).save(noise_file)
    r = CliRunner().invoke(cli, ["replay", str(out), "3", "--pool", str(moved)])
    assert r.exit_code == 1 and "FAIL pool digest" in r.output
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--preset", "realsr", "--pool",
                                 str(moved), "--variants", "2", "--seed", "5", *FAST])
    assert r.exit_code == 1 and "different settings" in r.output


def test_realesrgan_config_with_pool_prob(env, tmp_path):
    src, pool_dir = env
    cfgf = tmp_path / "pool.toml"
    cfgf.write_text("[[stages]]\n[stages.kernel]\npool_prob = 1.0\n[stages.noise]\npool_prob = 1.0\n")
    out = tmp_path / "rg"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--config", str(cfgf), "--pool",
                                 str(pool_dir), *FAST])
    assert r.exit_code == 0, r.output
    _, f = next(iter_samples(out / "shard-000000.tar"))
    rec = json.loads(f["json"])
    p = rec["variants"][0]["params"]
    assert "pipeline" not in rec and rec["pool"]["path"] == str(pool_dir.resolve())
    assert json.dumps(p).count('"pool"') >= 1  # kernels/noise drawn from the pool
    r = CliRunner().invoke(cli, ["replay", str(out), "1"])
    assert r.exit_code == 0 and "matches byte for byte" in r.output, r.output


def test_pool_option_errors(env, tmp_path):
    src, pool_dir = env
    cases = [
        (["--preset", "realsr"], 2, "needs --pool"),
        (["--pool", str(pool_dir)], 2, "never uses it"),
        (["--preset", "realsr", "--pool", str(tmp_path / "nope")], 1, "nope"),
        (["--preset", "realsr", "--pool", str(pool_dir), "--order", "2"], 2, "--order does not apply"),
        (["--preset", "realsr", "--pool", str(pool_dir), "--scale", "1"], 2, "scale 2 or 4"),
    ]
    for extra, code, msg in cases:
        out = tmp_path / "never"
        r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), *FAST, *extra])
        assert r.exit_code == code and msg in r.output, (extra, r.output)
        assert not out.exists()
