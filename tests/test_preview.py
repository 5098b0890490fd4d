"""`degradekit preview`: contact sheets, parameter histograms, the parameter table and bad inputs."""
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data

from cli import degradekit
from degradekit import preview as pv
from degradekit.config import preset
from degradekit.pipeline import apply, sample


@pytest.fixture(scope="module")
def hr():
    return np.ascontiguousarray(data.astronaut()[100:196, 150:246])  # 96x96 keeps the test fast


def _read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]


def test_contact_sheet_rows_records_and_lr_tile(hr):
    cfg = preset("realesrgan")
    seeds = [3, 4]
    sheet, records = pv.contact_sheet(hr, cfg, seeds, tile=96)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    row_h = 96 + 3 * 12 + 4
    assert sheet.shape[0] == len(seeds) * row_h
    for seed, rec in zip(seeds, records):
        # the records are exactly what sample() draws for that seed
        assert rec == sample(np.random.default_rng(seed), cfg).to_dict()
    # tile layout: HR, usm, blur1, resize1, noise1, jpeg1, blur2, resize2, noise2 (no jpeg2: prob 0), final,
    # LR zoom; the LR zoom tile holds the nearest-enlarged LR crop, pixel for pixel
    lr = apply(hr, records[0])
    zoom = pv.lr_zoom(lr, cfg.scale, 96)
    x0 = 10 * (96 + 2)
    assert np.array_equal(sheet[:96, x0:x0 + 96], zoom)
    assert np.array_equal(zoom[:4, :4], np.broadcast_to(lr[0, 0], (4, 4, 3)))  # 96 = 24 LR px x 4


def test_param_histograms_counts_categories():
    # the full records plot; a categorical panel's bar widths/heights follow the counts (7 iso, 3 sinc)
    cfg = preset("realesrgan")
    rng = np.random.default_rng(0)
    recs = [sample(rng, cfg).to_dict() for _ in range(200)]
    vals = pv._plot_values(recs[0])
    assert "stage1.blur.kind" in vals and "order" in vals
    assert not any(k.startswith("stages.") for k in vals)
    img = pv.param_histograms(recs)
    assert img.shape[1] == 4 * 240
    panel = __import__("degradekit.drawing", fromlist=["x"]).histogram_panel(
        "k", ["iso"] * 7 + ["sinc"] * 3, 240, 150)
    blue = np.all(panel == np.array([40, 110, 200], np.uint8), axis=2)
    cols = blue.sum(axis=0)
    left, right = cols[10], cols[200]       # first bar (iso), second bar (sinc)
    assert left > 0 and right > 0
    assert abs(right / left - 3 / 7) < 0.05


def test_plateau_beta_split_visible():
    recs = [{"stages": [{"blur": {"kind": "plateau_iso", "size": 7, "sigma_x": 1.0, "sigma_y": 1.0,
                                  "theta": 0.0, "beta": 1.0}}]}]
    v = pv._plot_values(recs[0])
    assert v == {"stage1.blur.kind": "piso", "stage1.blur.size": 7, "stage1.blur.sigma_x": 1.0,
                 "stage1.blur.beta (plateau)": 1.0}


def test_cli_sheet_and_table(tmp_path, hr):
    src = tmp_path / "img.png"
    cv2.imwrite(str(src), hr[..., ::-1])
    out = tmp_path / "sheet.png"
    r = CliRunner().invoke(degradekit, ["preview", str(src), "--seeds", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "stages.0.blur.kind" in r.output and "seed 1" in r.output
    sheet = _read(out)
    assert sheet.shape[0] == 2 * (144 + 3 * 12 + 4)


def test_cli_stats(tmp_path):
    out = tmp_path / "stats.png"
    r = CliRunner().invoke(degradekit, ["preview", "--stats", "300", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert _read(out).shape[1] == 960


def test_cli_config_and_order_override(tmp_path, hr):
    src = tmp_path / "img.png"
    cv2.imwrite(str(src), hr[..., ::-1])
    cfg = tmp_path / "c.toml"
    cfg.write_text("order = 1\nscale = 2\n")
    out = tmp_path / "sheet.png"
    r = CliRunner().invoke(degradekit, ["preview", str(src), "--config", str(cfg), "--seeds", "1",
                                        "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "stages.1" not in r.output and "blur2" not in r.output
    r = CliRunner().invoke(degradekit, ["preview", str(src), "--order", "3", "--seeds", "1", "--out", str(out)])
    assert r.exit_code == 0 and "stages.2.resize.factor" in r.output


@pytest.mark.parametrize("content,needle", [(b"", "empty"), (b"not an image at all", ""),
                                            (b"\x89PNG\r\n\x1a\n\x00\x00", "")])
def test_cli_bad_image_one_line(tmp_path, content, needle):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    out = tmp_path / "sheet.png"
    r = CliRunner().invoke(degradekit, ["preview", str(bad), "--out", str(out)])
    assert r.exit_code != 0
    msg = r.output.strip()
    assert msg.startswith("Error:") and str(bad) in msg and "\n" not in msg and needle in msg
    assert not out.exists()


def test_cli_errors(tmp_path):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((10, 30, 3), np.uint8))
    run = CliRunner().invoke
    r = run(degradekit, ["preview", str(small), "--out", str(tmp_path / "o.png")])
    assert r.exit_code != 0 and "too small" in r.output and str(small) in r.output
    r = run(degradekit, ["preview", "--out", str(tmp_path / "o.png")])
    assert r.exit_code != 0 and "give an image" in r.output
    r = run(degradekit, ["preview", "--sample", "nope", "--out", str(tmp_path / "o.png")])
    assert r.exit_code != 0 and "nope" in r.output
    r = run(degradekit, ["preview", "--sample", "coffee", "--out", str(tmp_path / "missing" / "o.png")])
    assert r.exit_code != 0 and "does not exist" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 3\n")
    r = run(degradekit, ["preview", "--stats", "10", "--config", str(bad), "--out", str(tmp_path / "o.png")])
    assert r.exit_code != 0 and "colour" in r.output and str(bad) in r.output


def test_help():
    r = CliRunner().invoke(degradekit, ["preview", "--help"])
    assert r.exit_code == 0 and "--stats" in r.output


# ------------------------------------------------------------------ --pool
@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    from test_pool_realsr import _noise_patch, make_pool

    from degradekit.kernels import gaussian_kernel

    ks = [gaussian_kernel(13, 1.6, 0.9, 0.5), gaussian_kernel(13, 1.2, 1.2, 0.0)]
    return make_pool(tmp_path_factory.mktemp("pool") / "P", ks, [_noise_patch(0)])


def test_cli_pool_sheets(tmp_path, pool_dir):
    out = tmp_path / "pool.png"
    r = CliRunner().invoke(degradekit, ["preview", "--pool", str(pool_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    kernels, noise = tmp_path / "pool-kernels.png", tmp_path / "pool-noise.png"
    assert _read(kernels).ndim == 3 and _read(noise).ndim == 3


def test_cli_pool_in_stage_config(tmp_path, pool_dir, hr):
    # a stage config that always takes pool kernels and pool noise: the sheet's records name pool items
    src = tmp_path / "img.png"
    cv2.imwrite(str(src), hr[..., ::-1])
    cfg = tmp_path / "c.toml"
    cfg.write_text("[[stages]]\n[stages.kernel]\npool_prob = 1.0\n[stages.noise]\npool_prob = 1.0\n"
                   "[[stages]]\n")
    out = tmp_path / "sheet.png"
    r = CliRunner().invoke(degradekit, ["preview", str(src), "--config", str(cfg), "--pool", str(pool_dir),
                                        "--seeds", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "stages.0.blur.pool_id" in r.output and "stages.0.noise.pool_id" in r.output
    r = CliRunner().invoke(degradekit, ["preview", str(src), "--config", str(cfg), "--seeds", "1",
                                        "--out", str(out)])
    assert r.exit_code != 0 and "pool" in r.output  # pool_prob > 0 without --pool: a clear error


def test_cli_bad_pool(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(degradekit, ["preview", "--pool", str(empty), "--out", str(tmp_path / "o.png")])
    assert r.exit_code != 0 and str(empty) in r.output and "\n" not in r.output.strip()
