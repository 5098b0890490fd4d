"""One line, never a traceback (issue 9): replay of damaged samples, manifest merge into a missing folder, preview
of a degenerate image; and durability: fsync before the rename, the folder after it, normal file modes."""
import json
import os
import shutil
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

from cli import degradekit as cli
from degradekit.fsutil import atomic_write
from degradekit.imageio import write_png
from degradekit.synth.shards import ShardWriter
from test_synth import FAST, _photos


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    base = tmp_path_factory.mktemp("ol")
    src = _photos(base / "src", n=2)
    out = base / "shards"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--workers", "1", *FAST])
    assert r.exit_code == 0, r.output
    return out


def _one_line(r, *needles):
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    line, = r.output.strip().splitlines()
    assert "Traceback" not in line
    for n in needles:
        assert n in line, line
    return line


def _rewrite_shard(path, change):
    """Rebuild a shard with change(name, data) -> (name, data) | None applied to each member."""
    members = []
    with tarfile.open(path) as t:
        for m in t:
            members.append((m.name, t.extractfile(m).read()))
    w = ShardWriter(path)
    for name, data in members:
        got = change(name, data)
        if got is not None:
            w.add(*got)
    w.commit()


@pytest.mark.parametrize("damage,needle", [
    ("no-json", "has no 000000001.json member"),
    ("bad-json", "000000001.json is not valid JSON"),
    ("no-variants", "is not a degradekit sample record"),
    ("record-fields", "damaged sample record or manifest (missing field 'seed')"),
    ("no-hr", "has no hr.png member"),
    ("bad-hr", "000000001.hr.png cannot be decoded"),
    ("truncated", "not a valid tar file"),
])
def test_replay_of_a_damaged_sample_is_one_line(dataset, tmp_path, damage, needle):
    out = tmp_path / "d"
    shutil.copytree(dataset, out)
    shard = out / "shard-000000.tar"

    def change(name, data):
        if not name.startswith("000000001."):
            return name, data
        ext = name.split(".", 1)[1]
        if ext == "json":
            if damage == "no-json":
                return None
            if damage == "bad-json":
                return name, b"{not json"
            rec = json.loads(data)
            if damage == "no-variants":
                rec.pop("variants")
            if damage == "record-fields":
                rec["variants"][0].pop("seed")
            return name, json.dumps(rec).encode()
        if ext == "hr.png":
            if damage == "no-hr":
                return None
            if damage == "bad-hr":
                return name, b"\x89PNG broken"
        return name, data

    if damage == "truncated":
        data = shard.read_bytes()
        shard.write_bytes(data[:700])
    else:
        _rewrite_shard(shard, change)
    r = CliRunner().invoke(cli, ["replay", str(out), "1", "--stored-hr"])
    _one_line(r, needle)


def test_manifest_merge_into_a_missing_folder_is_one_line(tmp_path):
    src = _photos(tmp_path / "src", n=2)
    outs = []
    for i in (1, 2):
        o = tmp_path / f"p{i}"
        r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(o), "--workers", "1", "--part",
                                     f"{i}/2", *FAST])
        assert r.exit_code == 0, r.output
        outs.append(str(o))
    target = tmp_path / "missing" / "sub" / "manifest.json"
    r = CliRunner().invoke(cli, ["manifest", "merge", *outs, "-o", str(target)])
    _one_line(r, f"the folder {target.parent} does not exist")
    assert not (tmp_path / "missing").exists()
    r = CliRunner().invoke(cli, ["manifest", "merge", *outs, "-o", str(tmp_path)])
    assert r.exit_code == 0 and (tmp_path / "manifest.json").is_file(), r.output


def test_preview_of_a_line_image_names_its_real_size(tmp_path):
    f = tmp_path / "line.png"
    write_png(f, np.zeros((1, 100000, 3), np.uint8))
    r = CliRunner().invoke(cli, ["preview", str(f), "--out", str(tmp_path / "p.png")])
    line = _one_line(r, "100000x1")
    assert "400x1 is" not in line and not (tmp_path / "p.png").exists()


# --------------------------------------------------------------------------------------------- durability

def _record(monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
        events.append(("fsync", kind, os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(a, b):
        events.append(("replace", str(a), str(b)))
        return real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_atomic_write_fsyncs_file_then_renames_then_fsyncs_folder(tmp_path, monkeypatch):
    events = _record(monkeypatch)
    target = tmp_path / "m.json"
    atomic_write(target, "{}")
    kinds = [(e[0], e[1] if e[0] == "fsync" else None) for e in events]
    assert kinds == [("fsync", "file"), ("replace", None), ("fsync", "dir")], events
    assert events[0][2].startswith(str(target) + ".tmp-") and events[2][2] == str(tmp_path)
    assert target.read_text() == "{}"


def test_shard_writer_fsyncs_file_then_renames_then_fsyncs_folder(tmp_path, monkeypatch):
    events = _record(monkeypatch)
    w = ShardWriter(tmp_path / "shard-000000.tar")
    w.add("000000000.json", b"{}")
    w.commit()
    kinds = [(e[0], e[1] if e[0] == "fsync" else None) for e in events]
    assert kinds == [("fsync", "file"), ("replace", None), ("fsync", "dir")], events


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_have_the_usual_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "a.json", "{}")
        write_png(tmp_path / "b.png", np.zeros((2, 2, 3), np.uint8))
        w = ShardWriter(tmp_path / "shard-000000.tar")
        w.add("000000000.json", b"{}")
        w.commit()
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
    finally:
        os.umask(old)
    want = plain.stat().st_mode & 0o777
    assert want == 0o666 & ~umask
    for name in ("a.json", "b.png", "shard-000000.tar"):
        assert (tmp_path / name).stat().st_mode & 0o777 == want, name


def test_a_fifo_in_place_of_a_shard_is_reported_not_waited_on(dataset, tmp_path):
    from degradekit.synth.shards import ShardFormatError, iter_samples, verify_shard

    out = tmp_path / "f"
    shutil.copytree(dataset, out)
    shard = out / "shard-000000.tar"
    shard.unlink()
    os.mkfifo(shard)
    assert verify_shard(shard) == [f"{shard}: not a regular file (a FIFO)"]
    with pytest.raises(ShardFormatError, match="not a regular file"):
        next(iter_samples(shard))
    r = CliRunner().invoke(cli, ["replay", str(out), "1", "--stored-hr"])
    _one_line(r, "not a regular file")
    r = CliRunner().invoke(cli, ["inspect", str(out), "--verify"])
    assert r.exit_code != 0 and "not a regular file (a FIFO)" in r.output, r.output
