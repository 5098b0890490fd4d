"""Hostile or damaged pool folders (issue 9): paths outside the pool, wrong-typed pool.json fields, kernels with
negative lobes, FIFOs -- each a one-line PoolError in `pool info`, `synth` and `preview`, never a traceback."""
import json
import os

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from cli import degradekit as cli
from degradekit.kernels import gaussian_kernel
from degradekit.pool import Pool, PoolError
from test_pool_realsr import make_pool


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    b = tmp_path_factory.mktemp("hp")
    src = b / "src"
    src.mkdir()
    Image.fromarray(skimage.data.astronaut()).resize((112, 96), Image.LANCZOS).save(src / "0.png")
    rng = np.random.default_rng(0)
    noise = [np.clip(np.rint(128 + rng.normal(0, 3, (64, 64, 3))), 0, 255).astype(np.uint8) for _ in range(2)]
    pool = make_pool(b / "pool", [gaussian_kernel(13, 1.6, 0.9, 0.5), gaussian_kernel(13, 1.2, 1.2, 0.0)], noise)
    return src, pool


def _copy(pool, dst):
    import shutil

    shutil.copytree(pool, dst)
    return dst


def _edit(pool, fn):
    meta = json.loads((pool / "pool.json").read_text())
    fn(meta)
    (pool / "pool.json").write_text(json.dumps(meta))


def _three_commands(src, pool, tmp_path):
    """(pool info, synth --pool, preview --pool) results."""
    return [
        CliRunner().invoke(cli, ["pool", "info", str(pool)]),
        CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(tmp_path / "o"), "--pool", str(pool),
                                 "--preset", "realsr", "--patch", "64", "--workers", "1", "--progress", "none"]),
        CliRunner().invoke(cli, ["preview", "--pool", str(pool), "--out", str(tmp_path / "pv.png")]),
    ]


def _assert_one_line(results, *needles):
    for r in results:
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
        line, = r.output.strip().splitlines()
        for n in needles:
            assert n in line, line


def test_the_fixture_pool_is_fine(base, tmp_path):
    src, pool = base
    r = CliRunner().invoke(cli, ["pool", "info", str(pool)])
    assert r.exit_code == 0, r.output
    assert Pool.load(pool, scale=4).noise_ids()


EDITS = [
    ("kernels.ids = 5", lambda m: m["kernels"].__setitem__("ids", 5), "kernels.ids: must be a list, got int 5"),
    ("outliers = 7", lambda m: m["kernels"].__setitem__("outliers", 7), "kernels.outliers: must be a list"),
    ("scales", lambda m: m["kernels"].__setitem__("scales", ["4"]), "kernels.scales: must be a list of 2"),
    ("noise dict", lambda m: m.__setitem__("noise", {"a": 1}), "noise: must be a list"),
    ("noise entry", lambda m: m["noise"].__setitem__(0, 3), "noise[0]: must be a table"),
    ("noise file int", lambda m: m["noise"][0].__setitem__("file", 5), "noise[0].file: must be a string"),
    ("noise id path", lambda m: m["noise"][0].__setitem__("id", "../x"), "noise[0].id"),
    ("kernel id path", lambda m: m["kernels"]["ids"].__setitem__(0, "../../etc"), "not a valid id"),
    ("counts", lambda m: m["counts"].__setitem__("kernels", "two"), "counts.kernels: must be an integer"),
    ("rejected", lambda m: m.__setitem__("rejected", [5]), "rejected[0].kind: missing"),
    ("kernels", lambda m: m.__setitem__("kernels", [1]), "kernels: must be a table"),
]


@pytest.mark.parametrize("label,edit,needle", EDITS, ids=[e[0] for e in EDITS])
def test_wrong_typed_fields_are_one_line(base, tmp_path, label, edit, needle):
    src, pool = base
    p = _copy(pool, tmp_path / "p")
    _edit(p, edit)
    with pytest.raises(PoolError, match="pool.json"):
        Pool.load(p)
    _assert_one_line(_three_commands(src, p, tmp_path), str(p), needle)


def test_paths_must_stay_inside_the_pool(base, tmp_path):
    src, pool = base
    outside = tmp_path / "secret.png"
    outside.write_bytes((pool / json.loads((pool / "pool.json").read_text())["noise"][0]["file"]).read_bytes())
    cases = {
        "up": "../secret.png",
        "abs": str(outside),
    }
    for name, rel in cases.items():
        p = _copy(pool, tmp_path / name)
        _edit(p, lambda m: m["noise"][0].__setitem__("file", rel))
        assert (p / rel).exists()  # it would be read by the old code
        _assert_one_line(_three_commands(src, p, tmp_path), str(p), repr(rel))
    # a symlink inside the pool pointing out of it
    p = _copy(pool, tmp_path / "link")
    f = json.loads((p / "pool.json").read_text())["noise"][0]["file"]
    os.unlink(p / f)
    os.symlink(outside, p / f)
    _assert_one_line(_three_commands(src, p, tmp_path), "lies outside the pool folder")
    # a FIFO as a noise file: refused, never opened
    p = _copy(pool, tmp_path / "fifo")
    os.unlink(p / f)
    os.mkfifo(p / f)
    _assert_one_line(_three_commands(src, p, tmp_path), "not a regular file (a FIFO)")


def test_kernel_with_negative_lobes_is_rejected(base, tmp_path):
    src, pool = base
    p = _copy(pool, tmp_path / "neg")
    with np.load(p / "kernels.npz") as z:
        arrays = {k: z[k] for k in z.files}
    k = arrays["x2"][1].copy()
    c = k.shape[0] // 2
    k[c, c + 2] = k[c + 2, c] = -0.02  # sinc-like negative lobes, sum kept at 1
    k[c, c] += 1 - k.sum()
    assert abs(k.sum() - 1) < 1e-12 and k.min() < 0
    arrays["x2"][1] = k
    np.savez(p / "kernels.npz", **arrays)
    ids = json.loads((p / "pool.json").read_text())["kernels"]["ids"]
    with pytest.raises(PoolError, match=f"kernel '{ids[1]}' has negative entries"):
        Pool.load(p)
    _assert_one_line(_three_commands(src, p, tmp_path), "negative entries")


def test_wrong_typed_kernel_record_is_one_line_in_pool_info(base, tmp_path):
    src, pool = base
    p = _copy(pool, tmp_path / "rec")
    kid = json.loads((p / "pool.json").read_text())["kernels"]["ids"][0]
    f = p / "kernels" / f"{kid}.json"
    rec = json.loads(f.read_text())
    rec["quality"]["sigma_major"] = "wide"
    f.write_text(json.dumps(rec))
    r = CliRunner().invoke(cli, ["pool", "info", str(p)])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    line, = r.output.strip().splitlines()
    assert f"kernels/{kid}.json: quality.sigma_major: must be an integer or a number" in line, line


def test_pool_build_skips_a_fifo_source_without_blocking(base, tmp_path):
    from degradekit.pool.build import BuildSettings, build_pool

    src, _ = base
    os.mkfifo(tmp_path / "fifo.png")
    os.symlink("/dev/zero", tmp_path / "zero.png")
    sources = [(src / "0.png", "0.png"), (tmp_path / "fifo.png", "fifo.png"), (tmp_path / "zero.png", "zero.png")]
    meta = build_pool(sources, tmp_path / "P", BuildSettings(kernels=False, noise=True), workers=1)
    rej = {r["item"]: r["reason"] for r in meta["rejected"] if r["kind"] == "source"}
    assert rej == {"fifo.png": "not a regular file (a FIFO)", "zero.png": "not a regular file (a character device)"}
    assert meta["counts"]["sources_ok"] == 1


@pytest.mark.slow
def test_pool_build_on_a_full_disk_is_one_line(tmp_path):
    from degradekit.imageio import write_png
    from test_hardening_synth import tmpfs

    src = tmp_path / "src"
    src.mkdir()
    flat = np.clip(np.rint(128 + np.random.default_rng(1).normal(0, 2, (256, 256, 3))), 0, 255).astype(np.uint8)
    write_png(src / "flat.png", flat)  # 256 flat 16-px patches: far more than 48 kB of noise PNGs
    with tmpfs(tmp_path / "m", "48k") as out:
        r = CliRunner().invoke(cli, ["pool", "build", "--src", str(src), "--out", str(out), "--no-kernels",
                                     "--noise-patch", "16", "--workers", "1"])
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
        errs = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        assert len(errs) == 1 and "No space left on device" in errs[0] and "Traceback" not in r.output, r.output
        assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
