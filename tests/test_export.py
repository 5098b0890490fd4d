"""degradekit export: the folders and LMDB layouts read back by the readers' own rules (BasicSR's paired folder
mode / Real-ESRGAN's paired meta_info / BasicSR's LMDB meta_info, reimplemented here from their documented
behaviour), exact bytes, records for replay, resume after SIGKILL, bad shards, one-line errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from cli import degradekit as cli
from degradekit.synth.shards import iter_samples

lmdb = pytest.importorskip("lmdb")
ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    base = tmp_path_factory.mktemp("exp")
    src = base / "src"
    src.mkdir()
    for i, im in enumerate([skimage.data.astronaut(), skimage.data.chelsea()]):
        Image.fromarray(im).resize((120, 90), Image.LANCZOS).save(src / f"{i}.png")
    out = base / "shards"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--patch", "64", "--step", "32",
                                 "--shard-size", "5", "--variants", "2", "--multiscale", "1,0.75", "--workers", "1",
                                 "--progress", "none", "--seed", "11"])
    assert r.exit_code == 0, r.output
    return out


def _shard_members(folder) -> dict[str, dict[str, bytes]]:
    return {k: f for p in sorted(Path(folder).glob("shard-*.tar")) for k, f in iter_samples(p)}


def _export(dataset, out, *args):
    r = CliRunner().invoke(cli, ["export", str(dataset), "--out", str(out), "--progress", "none", *args])
    return r


def _basicsr_paired_folder(gt_folder: Path, lq_folder: Path, tmpl: str = "{}") -> list[tuple[str, str]]:
    """BasicSR ``paired_paths_from_folder``: every GT file's LQ partner is ``tmpl.format(stem) + ext`` in the LQ
    folder (same extension), else an error."""
    lq_names = set(os.listdir(lq_folder))
    pairs = []
    for gt_name in sorted(os.listdir(gt_folder)):
        stem, ext = os.path.splitext(gt_name)
        lq_name = f"{tmpl.format(stem)}{ext}"
        assert lq_name in lq_names, f"{lq_name} is not in lq_paths"
        pairs.append((str(gt_folder / gt_name), str(lq_folder / lq_name)))
    return pairs


def _realesrgan_meta_info(root: Path, meta: Path) -> list[tuple[str, str]]:
    """Real-ESRGAN ``RealESRGANPairedDataset`` with meta_info: ``gt_path, lq_path = line.strip().split(', ')``,
    joined with dataroot_gt / dataroot_lq (both = the export folder here)."""
    out = []
    for line in meta.read_text().splitlines():
        gt, lq = line.strip().split(", ")
        out.append((str(root / gt), str(root / lq)))
    return out


def _basicsr_lmdb_keys(lmdb_dir: Path) -> list[str]:
    """BasicSR ``paired_paths_from_lmdb``: keys are ``line.split('.')[0]`` of the folder's meta_info.txt."""
    with open(lmdb_dir / "meta_info.txt") as f:
        return [line.split(".")[0] for line in f]


def test_folders_pair_by_basicsr_and_realesrgan_rules_with_exact_bytes(dataset, tmp_path):
    out = tmp_path / "f"
    r = _export(dataset, out, "--format", "folders")
    assert r.exit_code == 0, r.output
    assert "20 pairs from 20 samples" in r.output
    members = _shard_members(dataset)
    pairs = _basicsr_paired_folder(out / "hr", out / "lr")
    assert len(pairs) == 20
    assert _realesrgan_meta_info(out, out / "meta_info.txt") == pairs      # same pairs, same order
    for gt, lq in pairs:
        key = Path(gt).stem
        assert Path(gt).read_bytes() == members[key]["hr.png"]               # the shard's own PNG bytes
        assert Path(lq).read_bytes() == members[key]["lr0.png"]
        h, l = cv2.imread(gt), cv2.imread(lq)
        assert h.shape[0] == 4 * l.shape[0] and h.shape[1] == 4 * l.shape[1]
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [r_["key"] for r_ in recs] == sorted(members)
    assert all(json.loads(members[r_["key"]]["json"])["variants"] == r_["variants"] for r_ in recs)
    assert recs[3]["export"] == {"hr": ["hr/000000003.png"], "lr": ["lr/000000003.png"], "variants": [0]}
    assert (out / "manifest.json").read_bytes() == (dataset / "manifest.json").read_bytes()
    assert not [p for p in out.rglob("*") if "tmp" in p.name]
    # --variant 1 pairs the second LR; progress as plain lines when stderr is not a terminal
    r = CliRunner().invoke(cli, ["export", str(dataset), "--out", str(tmp_path / "f1"), "--format", "folders",
                                 "--variant", "1", "--progress", "lines"])
    assert r.exit_code == 0, r.output
    assert "export: 20/20 samples (100%)" in r.output
    assert (tmp_path / "f1/lr/000000007.png").read_bytes() == members["000000007"]["lr1.png"]


def test_variant_all_gives_same_name_pairs_with_one_hr_file(dataset, tmp_path):
    out = tmp_path / "a"
    assert _export(dataset, out, "--format", "folders", "--variant", "all").exit_code == 0
    members = _shard_members(dataset)
    pairs = _basicsr_paired_folder(out / "hr", out / "lr")
    assert len(pairs) == 40 and _realesrgan_meta_info(out, out / "meta_info.txt") == pairs
    for v in (0, 1):
        assert (out / f"lr/000000004_v{v}.png").read_bytes() == members["000000004"][f"lr{v}.png"]
        assert (out / f"hr/000000004_v{v}.png").read_bytes() == members["000000004"]["hr.png"]
    assert os.path.samefile(out / "hr/000000004_v0.png", out / "hr/000000004_v1.png")   # hard link, no copy


def test_lmdb_reads_back_by_basicsr_rules(dataset, tmp_path):
    out = tmp_path / "l"
    r = _export(dataset, out, "--format", "lmdb")
    assert r.exit_code == 0, r.output
    members = _shard_members(dataset)
    for side in ("hr", "lr"):
        d = out / f"{side}.lmdb"
        assert (d / "data.mdb").is_file() and (d / "lock.mdb").is_file()
    gt_keys, lq_keys = _basicsr_lmdb_keys(out / "hr.lmdb"), _basicsr_lmdb_keys(out / "lr.lmdb")
    assert gt_keys == lq_keys == sorted(members)          # BasicSR: "Keys in lq and gt are different" otherwise
    lines = (out / "lr.lmdb" / "meta_info.txt").read_text().splitlines()
    assert lines[0] == "000000000.png (16,16,3) 1"
    for side, field in (("hr", "hr.png"), ("lr", "lr0.png")):
        # BasicSR's LmdbBackend: lmdb.open(readonly=True, lock=False, readahead=False), key.encode('ascii')
        env = lmdb.open(str(out / f"{side}.lmdb"), readonly=True, lock=False, readahead=False)
        with env.begin(write=False) as txn:
            assert txn.stat()["entries"] == 20
            for line in (out / f"{side}.lmdb" / "meta_info.txt").read_text().splitlines():
                name, shape, level = line.split(" ")
                key = name.split(".")[0]
                value = txn.get(key.encode("ascii"))
                assert value == members[key][field]
                img = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
                assert shape == f"({img.shape[0]},{img.shape[1]},{img.shape[2]})" and level == "1"
        env.close()
    # replay works on the export
    r = CliRunner().invoke(cli, ["replay", str(out), "12"])
    assert r.exit_code == 0 and "replay matches byte for byte" in r.output, r.output
    r = CliRunner().invoke(cli, ["replay", str(out), "12", "--stored-hr"])
    assert r.exit_code == 0, r.output


def test_replay_on_a_folders_export_catches_a_changed_file(dataset, tmp_path):
    out = tmp_path / "f"
    assert _export(dataset, out, "--format", "folders").exit_code == 0
    r = CliRunner().invoke(cli, ["replay", str(out), "5", "--stored-hr"])
    assert r.exit_code == 0 and "lr1: variant not in this export" in r.output, r.output
    p = out / "lr" / "000000005.png"
    img = cv2.imread(str(p))
    img[0, 0] ^= 1
    cv2.imwrite(str(p), img)
    r = CliRunner().invoke(cli, ["replay", str(out), "5", "--stored-hr"])
    assert r.exit_code == 1 and "FAIL lr0 bytes" in r.output


_KILL = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from degradekit.synth import export as ex
    ex.LMDB_COMMIT_EVERY = 3
    class Killer:
        n = 0
        def update(self, k=1, note=""):
            self.n += 1
            if self.n == {after}:
                os.kill(os.getpid(), signal.SIGKILL)
    ex.export({src!r}, {out!r}, fmt={fmt!r}, variant={variant!r}, progress=Killer())
""")


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != "lock.mdb"}        # lock.mdb is LMDB's reader table, runtime state


@pytest.mark.slow
@pytest.mark.parametrize("fmt,variant", [("folders", "all"), ("lmdb", "all")])
def test_a_killed_export_resumes_byte_identical(dataset, tmp_path, fmt, variant):
    ref = tmp_path / "ref"
    code = _KILL.format(root=ROOT, src=str(dataset), out=str(ref), fmt=fmt, variant=variant, after=10 ** 6)
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    for after in (2, 13):           # LMDB: mid-transaction, after 1 and after 8 commits of 3 entries
        out = tmp_path / f"k{after}"
        code = _KILL.format(root=ROOT, src=str(dataset), out=str(out), fmt=fmt, variant=variant, after=after)
        assert subprocess.run([sys.executable, "-c", code]).returncode == -9
        assert not (out / "records.jsonl").exists()
        code = _KILL.format(root=ROOT, src=str(dataset), out=str(out), fmt=fmt, variant=variant, after=10 ** 6)
        assert subprocess.run([sys.executable, "-c", code]).returncode == 0
        got, want = _tree(out), _tree(ref)
        got = {k: v for k, v in got.items() if ".tmp-" not in k}       # the killed run's temporaries (its pid)
        assert sorted(got) == sorted(want)
        assert all(got[k] == want[k] for k in want), [k for k in want if got[k] != want[k]]
        assert json.loads((out / "export.json").read_text())["status"] == "complete"


def test_bad_shards_are_reported_as_inspect_verify_does_and_left_out(dataset, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(dataset, bad)
    p = bad / "shard-000001.tar"
    data = bytearray(p.read_bytes())
    data[2000] ^= 1
    p.write_bytes(bytes(data))
    (bad / "shard-000003.tar").unlink()
    r = _export(bad, tmp_path / "o", "--format", "folders")
    assert r.exit_code == 1
    assert "BAD" in r.output and "shard-000001.tar: sha256" in r.output and "shard-000003.tar: missing" in r.output
    assert r.output.strip().splitlines()[-1] == f"Error: 2 problem(s) in {bad}: the bad shard(s) were not exported"
    assert len(list((tmp_path / "o" / "hr").iterdir())) == 10       # shards 0 and 2
    assert json.loads((tmp_path / "o" / "export.json").read_text())["status"] == "incomplete"
    # a folder without a manifest: structure checks only
    nom = tmp_path / "nomanifest"
    nom.mkdir()
    shutil.copy(dataset / "shard-000000.tar", nom)
    (nom / "shard-000001.tar").write_bytes(b"not a tar" * 100)
    r = _export(nom, tmp_path / "o2", "--format", "lmdb")
    assert r.exit_code == 1 and "shard-000001.tar" in r.output
    assert _basicsr_lmdb_keys(tmp_path / "o2" / "lr.lmdb") == [f"{i:09d}" for i in range(5)]
    # without a manifest a damaged JSON record passes the structure check: one line naming shard and sample
    from trainer.data import write_shard
    samples = list(iter_samples(dataset / "shard-000000.tar"))
    samples[2][1]["json"] = b"{not json"
    (nom / "shard-000001.tar").unlink()
    write_shard(nom / "shard-000000.tar", samples)
    r = _export(nom, tmp_path / "o3", "--format", "folders")
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0
    assert "shard-000000.tar: sample 000000002: JSON record unreadable" in r.output


def test_bad_options_and_folders_are_one_line_before_any_work(dataset, tmp_path, monkeypatch):
    def one_line(r, *words):
        assert r.exit_code != 0
        text = r.output.strip()
        assert "\n" not in text and "Traceback" not in text, text
        for w in words:
            assert w in text, text
    one_line(_export(dataset, tmp_path / "v", "--format", "folders", "--variant", "2"),
             "--variant 2", "2 LR variant(s)")
    assert not (tmp_path / "v").exists()
    r = _export(dataset, tmp_path / "v", "--format", "folders", "--variant", "x")     # click's usage error
    assert r.exit_code == 2 and "Error: Invalid value for '--variant': 'x': give an LR variant index" in r.output
    full = tmp_path / "full"
    full.mkdir()
    (full / "other.txt").write_text("x")
    one_line(_export(dataset, full, "--format", "folders"), str(full), "not an export folder")
    assert _export(dataset, tmp_path / "e", "--format", "folders").exit_code == 0
    one_line(_export(dataset, tmp_path / "e", "--format", "lmdb"), "holds another export")
    r = _export(dataset, tmp_path / "e", "--format", "folders")      # the same export again: a no-op resume
    assert r.exit_code == 0 and "resumed" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line(_export(empty, tmp_path / "x", "--format", "folders"), str(empty), "no shard")
    monkeypatch.setitem(sys.modules, "lmdb", None)
    one_line(_export(dataset, tmp_path / "m", "--format", "lmdb"), "pip install 'degradekit[lmdb]'")
    assert not (tmp_path / "m").exists()
    r = CliRunner().invoke(cli, ["export", "--help"])
    assert r.exit_code == 0 and "--variant" in r.output and "lmdb" in r.output


def test_a_full_disk_is_one_line_and_a_rerun_finishes_identically(dataset, tmp_path, monkeypatch):
    import errno

    from degradekit.synth import export as ex
    ref = tmp_path / "ref"
    assert _export(dataset, ref, "--format", "folders").exit_code == 0
    real, calls = ex._publish, []

    def full(path, data):
        calls.append(path)
        if len(calls) == 17:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(ex, "_publish", full)
    out = tmp_path / "o"
    r = _export(dataset, out, "--format", "folders")
    assert r.exit_code == 1
    assert r.output.strip() == f"Error: {calls[-1]}: cannot write (No space left on device)"
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]          # temporaries removed
    assert len(list((out / "hr").iterdir())) == len(list((out / "lr").iterdir())) == 8   # the 8 written pairs kept
    monkeypatch.setattr(ex, "_publish", real)
    assert _export(dataset, out, "--format", "folders").exit_code == 0
    assert _tree(out) == _tree(ref)


def test_a_lossless_webp_lr_is_re_encoded_as_png_with_the_same_pixels(dataset, tmp_path):
    from trainer.data import write_shard
    src = tmp_path / "webp"
    src.mkdir()
    samples = []
    for key, f in list(iter_samples(dataset / "shard-000000.tar"))[:3]:
        lr = cv2.imdecode(np.frombuffer(f["lr0.png"], np.uint8), cv2.IMREAD_COLOR)
        ok, webp = cv2.imencode(".webp", lr, [cv2.IMWRITE_WEBP_QUALITY, 101])      # 101: lossless
        assert ok
        samples.append((key, {"hr.png": f["hr.png"], "json": f["json"], "lr0.webp": webp.tobytes()}))
    write_shard(src / "shard-000000.tar", samples)
    r = _export(src, tmp_path / "o", "--format", "folders")
    assert r.exit_code == 0, r.output
    for key, f in samples:
        out = (tmp_path / "o" / "lr" / f"{key}.png").read_bytes()
        assert out[:8] == b"\x89PNG\r\n\x1a\n"
        want = cv2.imdecode(np.frombuffer(f["lr0.webp"], np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR), want)
        assert (tmp_path / "o" / "hr" / f"{key}.png").read_bytes() == f["hr.png"]
