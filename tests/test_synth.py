"""degradekit synth: planning, shards, determinism across workers and restarts, bad inputs, disk errors."""
import errno
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

import degradekit
from cli import degradekit as cli
from degradekit.imageio import decode_png, read_image
from degradekit.synth import shards as shards_mod
from degradekit.synth.plan import sample_seed, variant_seed
from degradekit.synth.prepare import crop_origins, crop_patch, parse_multiscale, plan_copies
from degradekit.synth.shards import file_sha256, iter_samples, verify_shard

REPO = Path(__file__).resolve().parents[1]
FAST = ["--patch", "64", "--step", "32", "--shard-size", "8", "--progress", "none"]


def _photos(d: Path, n=4, size=(96, 128)):
    d.mkdir(parents=True, exist_ok=True)
    srcs = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    for i in range(n):
        im = Image.fromarray(srcs[i % 4]).resize((size[1], size[0]), Image.LANCZOS)
        sub = d / ("sub" if i % 2 else "")
        sub.mkdir(exist_ok=True)
        im.save(sub / (f"p{i}.png" if i % 3 else f"p{i}.JPG"), quality=95)
    return d


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return _photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory):
    """A clean single-worker run that other tests compare bytes against."""
    out = tmp_path_factory.mktemp("ref") / "shards"
    r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(out), "--workers", "1",
                                 "--seed", "7", "--variants", "2", *FAST])
    assert r.exit_code == 0, r.output
    return out


def _tar_bytes(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.glob("shard-*.tar"))}


# ---------------------------------------------------------------------------------------------- preparation

def test_crop_origins_cover_borders_last_flush():
    assert crop_origins(400, 400, 200) == [0]
    assert crop_origins(300, 400, 200) == [0]
    assert crop_origins(1000, 400, 200) == [0, 200, 400, 600]
    assert crop_origins(1010, 400, 200) == [0, 200, 400, 600, 610]
    for length in range(64, 400, 7):
        pos = crop_origins(length, 64, 30)
        assert pos[0] == 0 and pos[-1] + 64 == length          # flush with both borders
        assert all(b - a <= 30 for a, b in zip(pos, pos[1:]))   # no gap wider than the step
        covered = np.zeros(length, bool)
        for p in pos:
            covered[p:p + 64] = True
        assert covered.all()


def test_multiscale_copies_and_parsing():
    assert parse_multiscale("1,0.75,0.5,1/3") == (1.0, 0.75, 0.5, 1 / 3)
    for bad in ("0", "1.5", "x", "1,1"):
        with pytest.raises(ValueError):
            parse_multiscale(bad)
    cps = plan_copies(1356, 2040, (1.0, 0.75, 0.5, 0.333), 400, 21)
    assert cps[:4] == [(1.0, 1356, 2040), (0.75, 1017, 1530), (0.5, 678, 1020), (0.333, 451, 679)]
    assert cps[4][1:] == (400, 601)          # shortest edge exactly 400
    assert plan_copies(300, 500, (1.0,), 400, 21) == [(1.0, 300, 500)]     # no upscaling copy
    assert plan_copies(100, 500, (1.0, 0.5), None, 64) == [(1.0, 100, 500)]  # 50 px copy below min size


def test_crop_patch_pads_by_reflect101():
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    p, box = crop_patch(img, 0, 10, 64)
    assert box == (0, 10, 40, 50) and p.shape == (64, 64, 3)
    import cv2
    ref = cv2.copyMakeBorder(img[:, 10:], 0, 24, 0, 24, cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(p, ref)
    small = img[:22, :25]
    p, _ = crop_patch(small, 0, 0, 64)  # pad longer than the image: reflection repeats
    assert p.shape == (64, 64, 3)
    np.testing.assert_array_equal(p[:22, :25], small)


def test_shard_writer_bytes_equal_tarfile_and_hash(tmp_path):
    """The direct tar writer produces exactly tarfile's ustar stream for the same fixed headers."""
    import hashlib
    import io
    members = [("000000007.hr.png", bytes(range(256)) * 7), ("000000007.json", b"{}"),
               ("000000007.lr0.png", b""), ("000000008.hr.png", b"x" * 512)]
    w = shards_mod.ShardWriter(tmp_path / "shard-000000.tar")
    for name, data in members:
        w.add(name, data)
    size, sha = w.commit()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = len(data), 0, 0o644, 0, 0, "", ""
            t.addfile(ti, io.BytesIO(data))
    got = (tmp_path / "shard-000000.tar").read_bytes()
    assert got == buf.getvalue() and size == len(got) and sha == hashlib.sha256(got).hexdigest()
    assert [(k, sorted(f)) for k, f in iter_samples(tmp_path / "shard-000000.tar")] == [
        ("000000007", ["hr.png", "json", "lr0.png"]), ("000000008", ["hr.png"])]
    assert list(tmp_path.iterdir()) == [tmp_path / "shard-000000.tar"]
    w = shards_mod.ShardWriter(tmp_path / "shard-000001.tar")
    w.add("000000009.json", b"{}")
    w.abort()
    assert list(tmp_path.iterdir()) == [tmp_path / "shard-000000.tar"]


def test_seeds_depend_only_on_seed_index_variant():
    a = {variant_seed(0, i, v) for i in range(50) for v in range(3)}
    assert len(a) == 150 and sample_seed(0, 5) not in a
    assert variant_seed(1, 3, 0) == variant_seed(1, 3, 0) != variant_seed(2, 3, 0)


# ------------------------------------------------------------------------------------------------ end to end

def test_shards_content_replays_and_webdataset_reads(reference, photos):
    m = json.loads((reference / "manifest.json").read_text())
    assert m["n_samples"] == 4 * 2 * 3 and m["n_shards"] == 3 and m["variants"] == 2
    assert [r["samples"] for r in m["shards"]] == [8, 8, 8]
    assert m["skipped"] == [] and m["sources"]["count"] == 4 and m["seed"] == 7
    assert m["totals"]["pairs"] == 48
    assert m["config"]["scale"] == 4 and m["config"]["order"] == 2
    for r in m["shards"]:
        assert file_sha256(reference / r["name"]) == (r["bytes"], r["sha256"])
        assert verify_shard(reference / r["name"], sha256=r["sha256"], samples=r["samples"], variants=2,
                            first_index=r["first"]) == []
    # tar headers are the reproducible ones, members in the documented order
    with tarfile.open(reference / "shard-000000.tar") as t:
        ms = t.getmembers()
    assert [x.name for x in ms[:4]] == ["000000000.hr.png", "000000000.json", "000000000.lr0.png",
                                        "000000000.lr1.png"]
    assert {(x.mtime, x.uid, x.gid, x.uname, x.gname, x.mode) for x in ms} == {(0, 0, 0, "", "", 0o644)}
    # each JSON regenerates its LRs exactly from the HR crop of the source
    cfg = degradekit.preset()
    key, fields = next(iter(iter_samples(reference / "shard-000001.tar")))
    rec = json.loads(fields["json"])
    assert rec["key"] == key == "000000008" and rec["scale"] == 4 and rec["order"] == 2
    src = read_image(rec["source"]["path"])
    assert rec["source"]["sha256"] == file_sha256(rec["source"]["path"])[1]
    y0, x0, y1, x1 = rec["crop"]
    hr = decode_png(fields["hr.png"])
    np.testing.assert_array_equal(hr[: y1 - y0, : x1 - x0], src[y0:y1, x0:x1])
    for v, var in enumerate(rec["variants"]):
        assert var["seed"] == variant_seed(7, 8, v)
        lr = decode_png(fields[f"lr{v}.png"])
        assert lr.shape == (16, 16, 3)
        np.testing.assert_array_equal(lr, degradekit.apply(hr, var["params"]))
        lr2, params = degradekit.degrade(hr, cfg, var["seed"])
        np.testing.assert_array_equal(lr2, lr)
        assert params.to_dict() == var["params"]
    assert rec["variants"][0]["params"] != rec["variants"][1]["params"]
    # the stock webdataset reader streams the shards as they are
    import webdataset as wds
    urls = [str(reference / r["name"]) for r in m["shards"]]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert len(samples) == 24
    assert {k for k in samples[0] if not k.startswith("__")} == {"hr.png", "json", "lr0.png", "lr1.png"}
    assert [s["__key__"] for s in samples] == [f"{i:09d}" for i in range(24)]
    # ... and its stock decoders (Pillow) read our PNGs and JSON
    dec = next(iter(wds.WebDataset(urls[:1], shardshuffle=False).decode("rgb8")))
    assert dec["json"]["key"] == "000000000"
    np.testing.assert_array_equal(dec["hr.png"], decode_png(samples[0]["hr.png"]))
    np.testing.assert_array_equal(dec["lr1.png"], decode_png(samples[0]["lr1.png"]))


def test_rerun_same_command_is_a_noop_and_bytes_repeat(reference, photos, tmp_path):
    out = tmp_path / "again"
    args = ["synth", "--src", str(photos), "--out", str(out), "--workers", "1", "--seed", "7", "--variants", "2",
            *FAST]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert _tar_bytes(out) == _tar_bytes(reference)
    assert (out / "manifest.json").read_bytes() != b""
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.tar")}
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0 and "0 rendered, 3 already complete" in r.output
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.tar")}
    # a different seed into the same folder is refused, nothing touched
    r = CliRunner().invoke(cli, args[:-len(FAST)] + FAST + ["--seed", "8"])
    assert r.exit_code == 1 and "different settings" in r.output
    assert _tar_bytes(out) == _tar_bytes(reference)


def test_workers2_subprocess_equals_workers1(reference, photos, tmp_path):
    out = tmp_path / "w2"
    p = subprocess.run([sys.executable, "-m", "cli", "synth", "--src", str(photos), "--out", str(out),
                        "--workers", "2", "--seed", "7", "--variants", "2", *FAST[:-2], "--progress", "lines"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "pairs/s" in p.stderr and "ETA" in p.stderr        # plain progress lines when not a terminal
    assert _tar_bytes(out) == _tar_bytes(reference)
    assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()


def test_sigkill_mid_run_then_resume_gives_identical_bytes(tmp_path):
    src = _photos(tmp_path / "big", n=4, size=(192, 224))
    args = ["--src", str(src), "--workers", "1", "--patch", "64", "--step", "16", "--shard-size", "6",
            "--progress", "none", "--seed", "3"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "cli", "synth", "--out", str(out), *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "shard-000002.tar").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done_before = sorted(p.name for p in out.glob("shard-*.tar"))
    assert 3 <= len(done_before) < 60, done_before  # killed mid-run (4 x 9 x 11 = 396 samples / 6 = 66 shards)
    assert not (out / "manifest.json").exists()
    # resume takes finished shards' rows from their sidecars; one without a sidecar is re-checked, and a
    # damaged one (truncated here) is rendered again
    (out / ".degradekit" / "shards" / "shard-000000.tar.json").unlink()
    (out / ".degradekit" / "shards" / "shard-000001.tar.json").unlink()
    data = (out / "shard-000001.tar").read_bytes()
    (out / "shard-000001.tar").write_bytes(data[: len(data) // 2])
    r = CliRunner().invoke(cli, ["synth", "--out", str(out), *args])
    assert r.exit_code == 0, r.output
    assert "shard-000001.tar" in r.output and "rendering shard-000001.tar again" in r.output
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    clean = tmp_path / "clean"
    assert CliRunner().invoke(cli, ["synth", "--out", str(clean), *args]).exit_code == 0
    assert _tar_bytes(out) == _tar_bytes(clean) and len(_tar_bytes(clean)) == 66
    assert json.loads((out / "manifest.json").read_text())["shards"] == json.loads(
        (clean / "manifest.json").read_text())["shards"]


def test_parts_and_manifest_merge(reference, photos, tmp_path):
    outs = []
    for i in (1, 2):
        out = tmp_path / f"part{i}"
        r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(out), "--workers", "1",
                                     "--seed", "7", "--variants", "2", "--part", f"{i}/2", *FAST])
        assert r.exit_code == 0, r.output
        assert (out / f"manifest.part-{i}-of-2.json").exists() and not (out / "manifest.json").exists()
        outs.append(out)
    r = CliRunner().invoke(cli, ["inspect", str(outs[1]), "--verify", "--pairs", "0", "--out", str(tmp_path / "i")])
    assert r.exit_code == 0 and "(part 2/2): 2/3 shards" in r.output, r.output
    assert sorted(_tar_bytes(outs[0])) == ["shard-000000.tar"]
    assert sorted(_tar_bytes(outs[1])) == ["shard-000001.tar", "shard-000002.tar"]
    assert {**_tar_bytes(outs[0]), **_tar_bytes(outs[1])} == _tar_bytes(reference)
    merged = tmp_path / "merged.json"
    parts = [str(outs[0] / "manifest.part-1-of-2.json"), str(outs[1] / "manifest.part-2-of-2.json")]
    r = CliRunner().invoke(cli, ["manifest", "merge", *parts, "-o", str(merged)])
    assert r.exit_code == 0, r.output
    ref = json.loads((reference / "manifest.json").read_text())
    got = json.loads(merged.read_text())
    assert got["shards"] == ref["shards"] and got["totals"] == ref["totals"] and got["part"] is None
    # incomplete, overlapping and disagreeing parts are refused
    r = CliRunner().invoke(cli, ["manifest", "merge", parts[0], "-o", str(tmp_path / "x.json")])
    assert r.exit_code == 1 and "incomplete" in r.output and "shard-000001.tar" in r.output
    r = CliRunner().invoke(cli, ["manifest", "merge", parts[0], parts[0], "-o", str(tmp_path / "x.json")])
    assert r.exit_code == 1 and "also in" in r.output
    bad = json.loads(Path(parts[1]).read_text())
    bad["seed"] = 8
    Path(tmp_path / "bad.json").write_text(json.dumps(bad))
    r = CliRunner().invoke(cli, ["manifest", "merge", parts[0], str(tmp_path / "bad.json"), "-o",
                                 str(tmp_path / "x.json")])
    assert r.exit_code == 1 and "seed" in r.output
    assert not (tmp_path / "x.json").exists()
    # a part rendered with other codec libraries may hold other bytes: refused, naming the library
    bad = json.loads(Path(parts[1]).read_text())
    bad["codecs"] = {**bad["codecs"], "libwebp": "0.0.1"}
    Path(tmp_path / "bad.json").write_text(json.dumps(bad))
    r = CliRunner().invoke(cli, ["manifest", "merge", parts[0], str(tmp_path / "bad.json"), "-o",
                                 str(tmp_path / "x.json")])
    assert r.exit_code == 1 and "codec libraries differ" in r.output and "libwebp" in r.output, r.output
    assert not (tmp_path / "x.json").exists()


# ------------------------------------------------------------------------------------------------ bad inputs

def _bad_folder(d: Path) -> dict:
    """Good-but-odd images (used) and broken files (skipped): name -> expected reason fragment or None."""
    d.mkdir()
    rng = np.random.default_rng(1)
    base = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((80, 72)))
    Image.fromarray(base).save(d / "a_ok.png")
    Image.fromarray(base[..., 0]).save(d / "b_gray.png")
    import cv2
    cv2.imwrite(str(d / "c_16bit.png"), (base.astype(np.uint16) * 257)[..., ::-1])
    Image.fromarray(np.dstack([base, rng.integers(0, 256, base.shape[:2], dtype=np.uint8)]), "RGBA").save(
        d / "d_alpha.png")
    Image.fromarray(base).quantize(16).save(d / "e_palette.png")
    Image.fromarray(base).convert("CMYK").save(d / "f_cmyk.jpg")
    im = Image.fromarray(base)
    ex = im.getexif()
    ex[0x0112] = 6
    im.save(d / "g_exif.jpg", exif=ex)
    (d / "h_empty.png").write_bytes(b"")
    (d / "i_text.jpg").write_text("not an image")
    good = (d / "a_ok.png").read_bytes()
    (d / "j_trunc.png").write_bytes(good[: len(good) // 3])
    Image.fromarray(base[:15, :40]).save(d / "k_tiny.png")
    return {"h_empty.png": "empty", "i_text.jpg": "not an image", "j_trunc.png": "truncated",
            "k_tiny.png": "too small"}


def test_bad_inputs_skipped_with_reasons_and_exit_3(tmp_path):
    src = tmp_path / "bad"
    expect = _bad_folder(src)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--workers", "1", *FAST])
    assert r.exit_code == 3, r.output
    m = json.loads((out / "manifest.json").read_text())
    skipped = {Path(s["path"]).name: s["reason"] for s in m["skipped"]}
    assert set(skipped) == set(expect)
    for name, frag in expect.items():
        assert frag in skipped[name] and skipped[name].startswith(str(src / name))
        assert f"warning: skipping {src / name}" in r.output
    used = {Path(f["path"]).name: f for f in m["sources"]["files"]}
    assert set(used) == {"a_ok.png", "b_gray.png", "c_16bit.png", "d_alpha.png", "e_palette.png", "f_cmyk.jpg",
                         "g_exif.jpg"}
    assert used["g_exif.jpg"]["size"] == [80, 72]          # EXIF rotation applied (72x80 stored)
    assert used["a_ok.png"]["samples"] == 2 * 2              # 72x80 with patch 64 step 32 -> 2 x 2 crops
    # the 16-bit copy of a_ok renders the same HR crops as the 8-bit file (scaled, not wrapped)
    hrs = {}
    for sh in sorted(out.glob("shard-*.tar")):
        for _, f in iter_samples(sh):
            rec = json.loads(f["json"])
            hrs.setdefault(Path(rec["source"]["path"]).name, []).append(decode_png(f["hr.png"]))
    for a, b in zip(hrs["a_ok.png"], hrs["c_16bit.png"]):
        np.testing.assert_array_equal(a, b)
    # --strict stops at the first bad input, before writing any shard
    out2 = tmp_path / "strict"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out2), "--workers", "1", "--strict",
                                 *FAST])
    assert r.exit_code == 1 and "h_empty.png: empty file (--strict)" in r.output
    assert not list(out2.glob("shard-*"))


def test_list_file_with_missing_entry_and_pixel_limit(tmp_path, photos):
    lst = tmp_path / "list.txt"
    files = sorted(str(p.relative_to(photos)) for p in photos.rglob("*") if p.is_file())
    lst.write_text("# training photos\n\n" + "\n".join(files) + "\nnope/missing.png\n")
    (photos / "list.txt").write_text(lst.read_text())  # relative entries resolve against the list's folder
    try:
        out = tmp_path / "o"
        r = CliRunner().invoke(cli, ["synth", "--src", str(photos / "list.txt"), "--out", str(out), "--workers",
                                     "1", *FAST])
        assert r.exit_code == 3, r.output
        m = json.loads((out / "manifest.json").read_text())
        assert [s["rel"] for s in m["skipped"]] == ["nope/missing.png"]
        assert "missing.png: No such file" in m["skipped"][0]["reason"]
        assert m["sources"]["count"] == 4 and m["n_samples"] == 24
        r = CliRunner().invoke(cli, ["synth", "--src", str(photos / "list.txt"), "--out", str(tmp_path / "o2"),
                                     "--workers", "1", "--max-pixels", "12000", *FAST])
        assert r.exit_code == 1 and "no usable source images" in r.output
        assert "12288 pixels exceeds the limit of 12000" in r.output  # 96x128 each
    finally:
        (photos / "list.txt").unlink()


def test_small_images_padded_or_skipped_by_min_size(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    Image.fromarray(np.asarray(Image.fromarray(skimage.data.coffee()).resize((40, 30)))).save(d / "s.png")
    out = tmp_path / "o"
    r = CliRunner().invoke(cli, ["synth", "--src", str(d), "--out", str(out), "--workers", "1", *FAST])
    assert r.exit_code == 0, r.output
    (key, f), = list(iter_samples(out / "shard-000000.tar"))
    rec = json.loads(f["json"])
    assert rec["crop"] == [0, 0, 30, 40] and rec["pad"] == [34, 24]
    assert decode_png(f["hr.png"]).shape == (64, 64, 3)
    r = CliRunner().invoke(cli, ["synth", "--src", str(d), "--out", str(tmp_path / "o2"), "--workers", "1",
                                 "--min-size", "64", *FAST])
    assert r.exit_code == 1 and "no usable source images" in r.output and "smaller than --min-size 64" in r.output


# ------------------------------------------------------------------------------------------ disks and options

def test_enospc_stops_cleanly_keeping_finished_shards(reference, photos, tmp_path, monkeypatch):
    real_add = shards_mod.ShardWriter.add
    calls = {"n": 0}

    def failing_add(self, name, data):
        if self.path.name == "shard-000001.tar":
            calls["n"] += 1
            if calls["n"] == 5:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_add(self, name, data)

    monkeypatch.setattr(shards_mod.ShardWriter, "add", failing_add)
    out = tmp_path / "full"
    args = ["synth", "--src", str(photos), "--out", str(out), "--workers", "1", "--seed", "7", "--variants", "2",
            *FAST]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1
    assert "shard-000001.tar" in r.output and "No space left on device" in r.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["shard-000000.tar"]
    assert (out / "shard-000000.tar").read_bytes() == (reference / "shard-000000.tar").read_bytes()
    monkeypatch.setattr(shards_mod.ShardWriter, "add", real_add)
    r = CliRunner().invoke(cli, args)  # space freed: resume finishes the job
    assert r.exit_code == 0 and "1 already complete" in r.output
    assert _tar_bytes(out) == _tar_bytes(reference)


def test_manifest_write_failure_is_one_line_and_resumable(reference, photos, tmp_path, monkeypatch):
    from degradekit.synth import run as run_mod
    real = run_mod.write_manifest

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "m"
    args = ["synth", "--src", str(photos), "--out", str(out), "--workers", "1", "--seed", "7", "--variants", "2",
            *FAST]
    monkeypatch.setattr(run_mod, "write_manifest", full)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "cannot write the manifest: No space left on device" in r.output
    assert not list(out.glob("manifest*"))
    monkeypatch.setattr(run_mod, "write_manifest", real)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0 and "0 rendered, 3 already complete" in r.output
    assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()


def test_worker_error_stops_parallel_run_with_one_line(photos, tmp_path):
    """A source that changed after planning (here: a stale scan-cache entry) fails in a worker process; the run
    stops with the worker's one-line error, keeps finished shards and leaves no temporary file."""
    out = tmp_path / "par"
    args = ["synth", "--src", str(photos), "--out", str(out), "--seed", "7", *FAST]
    assert CliRunner().invoke(cli, [*args, "--dry-run"]).exit_code == 0
    r = CliRunner().invoke(cli, [*args, "--workers", "1"])
    assert r.exit_code == 0
    cache_file = out / ".degradekit" / "scan.json"
    cache = json.loads(cache_file.read_text())
    victim = sorted(cache)[-1]
    cache[victim]["sha256"] = "0" * 64
    cache_file.write_text(json.dumps(cache))
    (out / ".degradekit" / "job.json").unlink()
    for p in out.glob("shard-*.tar"):
        p.unlink()
    r = CliRunner().invoke(cli, [*args, "--workers", "2"])
    assert r.exit_code == 1, r.output
    assert f"{victim}: sha256" in r.output and "changed since the sample list was made" in r.output
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_concurrent_run_on_same_folder_is_refused(photos, tmp_path):
    from degradekit.synth.run import _lock
    out = tmp_path / "busy"
    out.mkdir()
    held = _lock(out, (1, 2))  # as if another synth were rendering part 1/2 (an OFD lock: same process counts)
    try:
        for part in ([], ["--part", "1/1"], ["--part", "1/3"], ["--part", "2/3"]):  # all overlap 1/2
            r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(out), "--workers", "1",
                                         *part, *FAST])
            assert r.exit_code == 1 and "another `degradekit synth`" in r.output, (part, r.output)
            assert f"pid {os.getpid()}" in r.output and "--part 1/2" in r.output and str(out) in r.output
            assert len(r.output.strip().splitlines()) == 1
        r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(out), "--workers", "1",
                                     "--part", "2/2", *FAST])
        assert r.exit_code == 0, r.output  # a disjoint part may render into the same folder
    finally:
        held.close()
    r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(out), "--workers", "1", *FAST])
    assert r.exit_code == 0, r.output


def test_unwritable_output(photos, tmp_path, monkeypatch):
    f = tmp_path / "afile"
    f.write_text("x")
    r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(f / "sub"), *FAST])
    assert r.exit_code == 1 and "not writable" in r.output and str(f) in r.output
    # permission denied (simulated: the tests run as root, for whom chmod does not bite)
    real_open = open

    def deny(path, mode="r", *a, **k):
        if "w" in mode and str(tmp_path / "ro") in str(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, mode, *a, **k)

    real_os_open = os.open

    def deny_os(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR) and str(tmp_path / "ro") in str(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_os_open(path, flags, *a, **k)

    monkeypatch.setattr("builtins.open", deny)
    monkeypatch.setattr(os, "open", deny_os)
    r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(tmp_path / "ro"), *FAST])
    assert r.exit_code == 1 and "Permission denied" in r.output and "not writable" in r.output


def test_bad_options_rejected_before_work(photos, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("order = 2\n[usm]\nwieght = 0.5\n")
    cases = [
        (["--config", str(bad)], 1, "usm.wieght"),
        (["--patch", "66"], 2, "not a multiple of 4"),
        (["--multiscale", "1,2"], 2, "must be in (0, 1]"),
        (["--part", "3/2"], 2, "1 <= I <= N"),
        (["--order", "0"], 2, "--order"),
        (["--scale", "3"], 2, "--scale"),
        (["--preset", "nope"], 1, "unknown preset"),
        (["--config", str(bad), "--preset", "realesrgan"], 2, "not both"),
    ]
    for extra, code, msg in cases:
        out = tmp_path / "never"
        r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(out), *FAST, *extra])
        assert r.exit_code == code, (extra, r.output)
        assert msg in r.output, (extra, r.output)
        assert not out.exists()
    r = CliRunner().invoke(cli, ["synth", "--src", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "n")])
    assert r.exit_code == 1 and "no such file, directory, glob match or dataset name" in r.output


def test_order_scale_override_and_sample_source(tmp_path):
    out = tmp_path / "s"
    r = CliRunner().invoke(cli, ["synth", "--src", "sample", "--out", str(out), "--order", "1", "--scale", "2",
                                 "--patch", "64", "--step", "400", "--shard-size", "100", "--workers", "1",
                                 "--progress", "none"])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["config"]["order"] == 1 and m["config"]["scale"] == 2 and m["sources"]["count"] == 8
    names = {f["rel"] for f in m["sources"]["files"]}
    assert {"astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png"} <= names
    _, f = next(iter_samples(out / "shard-000000.tar"))
    rec = json.loads(f["json"])
    assert rec["order"] == 1 and len(rec["variants"][0]["params"]["stages"]) == 1
    assert decode_png(f["lr0.png"]).shape == (32, 32, 3)


def test_dry_run_counts_without_writing(photos, tmp_path):
    out = tmp_path / "dry"
    r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(out), "--variants", "2", "--dry-run",
                                 "--part", "2/2", *FAST])
    assert r.exit_code == 0, r.output
    assert "4 sources used, 0 skipped; 24 samples in 3 shards of 8; this part: 2 shards, 16 samples, 32 pairs" \
        in r.output
    assert not out.exists()


def test_help():
    r = CliRunner().invoke(cli, ["synth", "--help"])
    assert r.exit_code == 0 and "--multiscale" in r.output and "3 finished but some inputs were skipped" in r.output
