"""`degradekit pool build` / `pool info` through click's CliRunner on tiny photos."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import degradekit
from degradekit.imageio import write_png
from degradekit.pool import Pool, PoolError


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data

    d = tmp_path_factory.mktemp("photos")
    write_png(d / "astro.png", np.ascontiguousarray(data.astronaut()[40:136, 200:296]))
    flatish = np.clip(np.rint(150 + np.random.default_rng(0).normal(0, 2, (80, 112, 3))), 0, 255).astype(np.uint8)
    flatish[:, 64:] = data.coffee()[100:180, 200:248]  # a flat left part and a textured right part
    write_png(d / "mixed.png", flatish)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return d


ARGS = ["--iters", "120", "--noise-patch", "32", "--seed", "7"]


def _build(photos, out, *extra):
    r = CliRunner().invoke(degradekit, ["pool", "build", "--src", str(photos), "--out", str(out), *ARGS, *extra])
    return r


def test_build_resume_and_load(photos, tmp_path):
    out = tmp_path / "P"
    r = _build(photos, out, "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "2 usable kernels" in r.output or "outliers" in r.output
    meta = json.loads((out / "pool.json").read_text())
    assert meta["counts"]["sources"] == 3 and meta["counts"]["sources_ok"] == 2
    bad = [x for x in meta["rejected"] if x["kind"] == "source"]
    assert len(bad) == 1 and bad[0]["item"] == "broken.png" and bad[0]["reason"]
    assert "broken.png" in r.output  # the skip is reported, not silent
    # flat 32x32 patches: the mixed photo's flat left part (x = 0, 32), none of the astronaut's textured crop
    ids = [n["id"] for n in meta["noise"]]
    assert ids and all(i.startswith("mixed-") for i in ids)
    assert {(n["y"], n["x"]) for n in meta["noise"]} >= {(0, 0), (0, 32), (48, 0), (48, 32)}  # y=48: edge row
    for rec in meta["noise"]:
        assert (out / rec["file"]).is_file()
    assert len(meta["kernels"]["ids"]) == 2 and meta["kernels"]["scales"] == [2, 4]
    for kid in meta["kernels"]["ids"]:
        rec = json.loads((out / "kernels" / f"{kid}.json").read_text())
        assert rec["iters"] == 120 and set(rec["quality"]) >= {"raw_sum", "centroid_offset", "edge_mass",
                                                              "sigma_major", "sigma_minor", "theta", "losses"}
    p = Pool.load(out, scale=4, include_outliers=True)
    assert len(p.kernel_ids(4)) == 2 and len(p.noise_ids()) == len(ids)
    digest = p.digest()
    stamp = {f.name: f.stat().st_mtime_ns for f in (out / "kernels").iterdir()}

    # re-running resumes: nothing is recomputed, the same pool comes out
    r2 = _build(photos, out, "--workers", "1")
    assert r2.exit_code == 0, r2.output
    assert "resuming: 3 of 3 images already done" in r2.output
    assert {f.name: f.stat().st_mtime_ns for f in (out / "kernels").iterdir()} == stamp
    assert Pool.load(out).digest() == digest

    # other noise thresholds: only the noise part is redone, the kernels stay
    r3 = _build(photos, out, "--workers", "1", "--noise-patch", "40")
    assert r3.exit_code == 0, r3.output
    assert {f.name: f.stat().st_mtime_ns for f in (out / "kernels").iterdir()} == stamp
    meta3 = json.loads((out / "pool.json").read_text())
    n3 = meta3["counts"]["noise_patches"]
    assert 0 < n3 < len(ids) and len(list((out / "noise").iterdir())) == n3  # the 32 px patches are gone

    # --scale 2 reuses the kernels (x2 only in the pool), nothing is re-estimated
    r6 = _build(photos, out, "--workers", "1", "--noise-patch", "40", "--scale", "2")
    assert r6.exit_code == 0 and "resuming: 3 of 3" in r6.output
    assert {f.name: f.stat().st_mtime_ns for f in (out / "kernels").iterdir()} == stamp
    with pytest.raises(PoolError, match="no kernels for x4"):
        Pool.load(out, scale=4)
    assert len(Pool.load(out, scale=2, include_outliers=True).kernel_ids(2)) == 2
    r7 = _build(photos, out, "--workers", "1", "--noise-patch", "40")  # back to --scale 4 for what follows
    assert r7.exit_code == 0

    # `pool info` summarises it
    r4 = CliRunner().invoke(degradekit, ["pool", "info", str(out)])
    assert r4.exit_code == 0 and "astro-" in r4.output and "sigma" in r4.output

    # two worker processes build the same bytes as one
    two = tmp_path / "two"
    r5 = _build(photos, two, "--workers", "2", "--noise-patch", "40")
    assert r5.exit_code == 0, r5.output
    assert (two / "kernels.npz").read_bytes() == (out / "kernels.npz").read_bytes()
    assert (two / "pool.json").read_bytes() == (out / "pool.json").read_bytes()
    assert Pool.load(two).digest() == Pool.load(out).digest()


def test_noise_only_pool_and_option_errors(photos, tmp_path):
    out = tmp_path / "N"
    r = _build(photos, out, "--no-kernels")
    assert r.exit_code == 0, r.output
    with pytest.raises(PoolError, match=r"no kernels for x4 .*--no-kernels"):
        Pool.load(out, scale=4)
    assert len(Pool.load(out).noise_ids()) > 0
    import torch

    if not torch.cuda.is_available():
        r = _build(photos, tmp_path / "G", "--device", "cuda")
        assert r.exit_code == 1 and "no CUDA device" in r.output and not (tmp_path / "G").exists()
    r = _build(photos, tmp_path / "X", "--no-kernels", "--no-noise")
    assert r.exit_code == 2 and "nothing to build" in r.output
    r = CliRunner().invoke(degradekit, ["pool", "build", "--src", str(tmp_path / "nowhere"), "--out",
                                        str(tmp_path / "Y")])
    assert r.exit_code == 1 and "nowhere" in r.output and "Traceback" not in r.output
    # a pool of photos where nothing is usable stops with a clear error
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"not an image")
    r = CliRunner().invoke(degradekit, ["pool", "build", "--src", str(only_bad), "--out", str(tmp_path / "Z"),
                                        *ARGS])
    assert r.exit_code == 1 and "empty" in r.output
    r = CliRunner().invoke(degradekit, ["pool", "info", str(tmp_path / "Z")])
    assert r.exit_code == 1 and "empty pool" in r.output


@pytest.mark.parametrize("args", [["pool", "--help"], ["pool", "build", "--help"], ["pool", "info", "--help"]])
def test_help(args):
    r = CliRunner().invoke(degradekit, args)
    assert r.exit_code == 0 and "Usage" in r.output


def test_shape_option_spectral_default_and_kernelgan(photos, tmp_path):
    """The default pool kernels carry the spectral fit's covariance; --shape kernelgan keeps KernelGAN's own
    kernel; the record says which, and `pool info` shows it."""
    from degradekit.pool.kernelgan import kernel_moments

    src = tmp_path / "one"
    src.mkdir()
    (src / "astro.png").write_bytes((photos / "astro.png").read_bytes())
    recs = {}
    for shape in ("spectral", "kernelgan"):
        out = tmp_path / shape
        r = _build(src, out, "--workers", "1", "--no-noise", "--shape", shape)
        assert r.exit_code == 0, r.output
        meta = json.loads((out / "pool.json").read_text())
        assert meta["settings"]["shape"] == shape
        (kid,) = meta["kernels"]["ids"]
        recs[shape] = json.loads((out / "kernels" / f"{kid}.json").read_text())
        info = CliRunner().invoke(degradekit, ["pool", "info", str(out)])
        assert info.exit_code == 0 and f"shape {recs[shape]['shape']['method']}" in info.output
    sp, kg = recs["spectral"], recs["kernelgan"]
    assert sp["raw"] == kg["raw"]  # the same KernelGAN run underneath
    assert kg["shape"]["method"] == "kernelgan" and "spectral" not in kg["shape"]
    assert kernel_moments(np.array(kg["x2"])) == pytest.approx(kg["shape"]["kernelgan"])
    fit = sp["shape"]["spectral"]
    if sp["shape"]["method"] == "spectral":
        m = kernel_moments(np.array(sp["x2"]))
        assert m["sigma_major"] == pytest.approx(fit["sigma_major"], rel=0.02)
        assert m["sigma_minor"] == pytest.approx(max(fit["sigma_minor"], 0.4), rel=0.05)
        m4 = kernel_moments(np.array(sp["x4"]))
        assert m4["sigma_major"] == pytest.approx(2 * fit["sigma_major"], rel=0.02)
        assert sp["shape"]["kernelgan"] == pytest.approx(kg["shape"]["kernelgan"])
    else:  # the fit was judged unreliable on this crop: KernelGAN's kernel is kept, and the record says why
        assert sp["shape"]["kept_kernelgan"] and sp["x2"] == kg["x2"]
