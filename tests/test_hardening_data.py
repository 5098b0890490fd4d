"""Issue 9, loader items: nothing found on disk runs, nothing hangs, a corrupt sample is skipped (not fatal),
worker errors are one line, loader workers die with their parent."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from test_trainer_fixtures import make_samples, make_shards
from trainer.data import (DataPosition, ShardDataset, ShardError, expand_urls, iter_raw_samples, open_stream,
                          write_shard)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

EVIL = "pipe:touch X; cat shard-000000.tar #.tar"


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) if the block blocks longer than `seconds`."""
    def boom(*_):
        raise TimeoutError(f"blocked for more than {seconds} s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("hshards"), n=6, shard_size=3, hr_size=64, variants=1)


def _keys(ds, workers=0):
    return [k for b in DataLoader(ds, batch_size=1, num_workers=workers) for k in b["key"]]


@pytest.mark.parametrize("form", ["glob", "folder"])
def test_a_found_file_named_pipe_is_read_as_a_file_never_run(shards, tmp_path, monkeypatch, form):
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(shards[0], d / "shard-000000.tar")
    shutil.copy(shards[1], d / EVIL)                      # a valid shard under a hostile name
    monkeypatch.chdir(d)
    urls = expand_urls({"glob": "*.tar", "folder": "."}[form])
    keys = _keys(ShardDataset(urls, gt_size=32, max_epochs=1, shuffle_buffer=0))
    assert not (d / "X").exists(), "a file name was run as a shell command"
    assert len(urls) == 2 and all(not u.startswith("pipe:") for u in urls)
    assert sorted(keys) == [f"{i:09d}" for i in range(6)]    # the hostile-named file was read as a shard
    # a typed pipe: spec is still honoured (the user asked for it)
    assert [r["__key__"] for r in iter_raw_samples("pipe:cat shard-000000.tar")] == [f"{i:09d}" for i in range(3)]


def test_fifos_and_devices_are_skipped_with_a_warning_never_block(shards, tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    shutil.copy(shards[0], d / "shard-000000.tar")
    os.mkfifo(d / "shard-000001.tar")
    os.symlink("/dev/zero", d / "shard-000002.tar")
    warned = []
    with deadline(20):
        urls = expand_urls(str(d), warn=warned.append)
        assert urls == [str(d / "shard-000000.tar")]
        assert len(warned) == 2 and all("not a regular file" in w and "\n" not in w for w in warned)
        assert any("shard-000001.tar" in w for w in warned)
        warned.clear()
        assert expand_urls([str(d / "shard-000001.tar"), str(d / "shard-000000.tar")], warn=warned.append) == [
            str(d / "shard-000000.tar")]
        assert len(warned) == 1
        with pytest.raises(ShardError, match="not a regular file"):     # only a FIFO: nothing to read
            expand_urls(str(d / "shard-000001.tar"), warn=warned.append)
        # a shard replaced by a FIFO after the scan: an error for that shard, not a hang
        with pytest.raises(ShardError, match=r"shard-000001.tar: .*not a regular file"):
            with open_stream(str(d / "shard-000001.tar")):
                pass


def test_one_file_under_two_names_is_read_once(shards, tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    shutil.copy(shards[0], d / "sub" / "shard-000000.tar")
    os.symlink(".", d / "sub" / "loop")                     # sub/loop/shard-000000.tar is sub/shard-000000.tar
    os.symlink(d / "sub" / "shard-000000.tar", d / "sub" / "link.tar")
    warned = []
    urls = expand_urls([str(d / "sub" / "*.tar"), str(d / "sub" / "*" / "*.tar")], warn=warned.append)
    assert urls == [str(d / "sub" / "link.tar")] and len(warned) == 3     # shard-000000.tar, loop/ x2
    assert all("the same file as" in w for w in warned)


def _bad_shards(tmp_path):
    """Shard 0: sample 1 has an undecodable LR; shard 1: sample 4 says scale 2 (mismatch); shard 2: truncated
    after its first sample."""
    samples = make_samples(9, hr_size=64, variants=1)
    samples[1][1]["lr0.png"] = b"garbage"
    samples[4][1]["json"] = json.dumps({**json.loads(samples[4][1]["json"]), "scale": 2}).encode()
    paths = []
    for s in range(3):
        p = tmp_path / f"shard-{s:06d}.tar"
        write_shard(p, samples[3 * s:3 * s + 3])
        paths.append(str(p))
    data = Path(paths[2]).read_bytes()
    first = data.index(b"000000007.hr.png")          # cut inside the second sample's HR
    Path(paths[2]).write_bytes(data[:first + 700])
    return paths


def test_corrupt_and_mismatched_samples_are_skipped_and_reported(tmp_path):
    urls = _bad_shards(tmp_path)
    ds = ShardDataset(urls, gt_size=32, max_epochs=1, shuffle_buffer=0, shuffle_shards=False)
    got = list(DataLoader(ds, batch_size=1, num_workers=0))
    keys = [b["key"][0] for b in got]
    assert keys == ["000000000", "000000002", "000000003", "000000005", "000000006"]
    skipped = {b["key"][0]: (int(b["skipped"][0]), b["skip_msg"][0]) for b in got}
    assert skipped["000000000"] == (0, "")
    n, msg = skipped["000000002"]
    assert n == 1 and "shard-000000.tar" in msg and "000000001" in msg and "cannot decode" in msg
    n, msg = skipped["000000005"]
    assert n == 1 and "shard-000001.tar" in msg and "000000004" in msg and "scale 2" in msg
    assert all("\n" not in m for _, m in skipped.values())
    # index counts the skipped samples (position stays exact)
    assert [int(b["index"][0]) for b in got] == [0, 2, 3, 5, 6]


def test_skips_at_the_end_of_an_epoch_reach_the_next_sample_and_resume_is_exact(tmp_path):
    urls = _bad_shards(tmp_path)
    kw = dict(gt_size=32, seed=5, shuffle_buffer=3)
    full = [b for b, _ in zip(DataLoader(ShardDataset(urls, **kw), batch_size=2, num_workers=2), range(8))]
    assert sum(int(s) for b in full for s in b["skipped"]) >= 3       # each epoch skips 3 per full pass
    pos = DataPosition.start(2)
    for b in full[:3]:
        pos.update(b)
    rest = [b for b, _ in zip(DataLoader(ShardDataset(urls, position=pos, **kw), batch_size=2, num_workers=2),
                              range(5))]
    for a, b in zip(full[3:], rest):
        assert a["key"] == b["key"] and torch.equal(a["lq"], b["lq"]) and torch.equal(a["skipped"], b["skipped"])
        assert a["skip_msg"] == b["skip_msg"]


def test_nothing_readable_is_one_line_through_a_loader_worker(tmp_path):
    samples = make_samples(2, hr_size=64, variants=1)
    for _, f in samples:
        f["hr.png"] = b"not a png"
    write_shard(tmp_path / "shard-000000.tar", samples)
    ds = ShardDataset([str(tmp_path / "shard-000000.tar")], gt_size=32)
    with deadline(60):
        with pytest.raises(ShardError) as ei:
            next(iter(DataLoader(ds, batch_size=1, num_workers=1)))
    msg = str(ei.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert "no readable samples" in msg and "shard-000000.tar" in msg and "cannot decode" in msg


_ORPHAN_SCRIPT = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from torch.utils.data import DataLoader
    from trainer.data import ShardDataset
    ds = ShardDataset([{spec!r}], gt_size=32)
    it = iter(DataLoader(ds, batch_size=1, num_workers=2))
    for w in it._workers:
        print(w.pid, flush=True)
    next(it)       # blocks: the workers sit in `sleep` reading the pipe
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _descendants(pid: int) -> list[int]:
    out = []
    for t in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(x) for x in t.read_text().split()]
        except OSError:
            continue
        for k in kids:
            out += [k] + _descendants(k)
    return out


def test_loader_workers_and_their_commands_die_with_the_parent(shards, tmp_path):
    root = str(Path(__file__).resolve().parents[1])
    spec = f"pipe:sleep 120; cat {shards[0]}"
    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT.format(root=root, spec=spec)],
                            stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    pids, grandchildren = [], []
    try:
        pids = [int(proc.stdout.readline()) for _ in range(2)]
        t0 = time.time()
        while time.time() - t0 < 20 and len(grandchildren) < 4:      # both shells and their `sleep`s started
            grandchildren = [c for p in pids for c in _descendants(p)]
            time.sleep(0.1)
        assert len(grandchildren) >= 4
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        t0 = time.time()
        while time.time() - t0 < 4 and any(_alive(p) for p in pids + grandchildren):
            time.sleep(0.1)
        survivors = [p for p in pids + grandchildren if _alive(p)]
        assert not survivors, f"processes still alive after the parent was killed: {survivors}"
    finally:
        for p in [proc.pid] + [q for q in pids + grandchildren if _alive(q)]:   # only what this test started
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
