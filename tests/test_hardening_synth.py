"""Fault injection for `degradekit synth` / `pool build` (issue 9): a real full filesystem (tmpfs), real signals
to real subprocesses (checked in /proc), a real FIFO and device link, symlink loops, non-UTF-8 names, the lock."""
import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import degradekit as cli
from degradekit.synth.shards import verify_shard
from test_synth import FAST, _photos, _tar_bytes

REPO = Path(__file__).resolve().parents[1]
SHARD_LINE = re.compile(r"^Error: .*/shard-\d{6}\.tar: cannot write shard: No space left on device$")


# ------------------------------------------------------------------------------------------------- helpers

@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A real small filesystem at `path` (needs root / CAP_SYS_ADMIN, as in this project's CI)."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()}): the full-disk tests need one")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, state, start time) of every process, from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            f = stat[stat.rindex(")") + 2:].split()
            out[int(d)] = (int(f[1]), f[0], int(f[19]))
    return out


def descendants(pid: int) -> dict[int, int]:
    """{pid: start time} of every live descendant of `pid`."""
    table = _proc_table()
    kids: dict[int, list[int]] = {}
    for p, (pp, _, _) in table.items():
        kids.setdefault(pp, []).append(p)
    found, todo = {}, list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        if table[p][1] != "Z":
            found[p] = table[p][2]
        todo.extend(kids.get(p, []))
    return found


def survivors(procs: dict[int, int], timeout: float = 15.0) -> list[int]:
    """The processes of `procs` (pid -> start time) still alive (not zombies) after waiting up to `timeout`."""
    deadline = time.time() + timeout
    while True:
        table = _proc_table()
        alive = [p for p, t in procs.items() if p in table and table[p][2] == t and table[p][1] != "Z"]
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.1)


def _wait_for(cond, timeout=90.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _big_job(tmp_path):
    src = _photos(tmp_path / "big", n=4, size=(192, 224))
    return ["--src", str(src), "--patch", "64", "--step", "16", "--shard-size", "6", "--progress", "none",
            "--seed", "3"]  # 66 shards: seconds of work


def _start(args, out, **kw):
    return subprocess.Popen([sys.executable, "-m", "cli", *args[:1], "--out", str(out), *args[1:]], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _kill_all(procs):
    for p in procs:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return _photos(tmp_path_factory.mktemp("hphotos"))


# ------------------------------------------------------------------------------------- 1. worker errors

@pytest.mark.parametrize("workers", ["1", "2"])
def test_full_disk_is_one_line_with_any_worker_count(photos, tmp_path, workers):
    args = ["synth", "--src", str(photos), "--workers", workers, "--seed", "5", *FAST[:4], "--shard-size", "2",
            "--progress", "none"]  # 12 shards of ~40 kB
    ref = tmp_path / "ref"
    assert CliRunner().invoke(cli, [*args, "--out", str(ref), "--workers", "1"]).exit_code == 0
    with tmpfs(tmp_path / "small", "160k") as out:
        r = CliRunner().invoke(cli, [*args, "--out", str(out)])
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and SHARD_LINE.match(lines[0]), r.output
        assert "CancelledError" not in r.output and "Traceback" not in r.output
        names = sorted(p.name for p in out.iterdir())
        assert not [n for n in names if ".tmp" in n], names                 # temporaries removed
        done = _tar_bytes(out)
        assert 1 <= len(done) < 12, names
        want = _tar_bytes(ref)
        assert all(done[n] == want[n] for n in done)                          # finished shards intact
        assert not (out / "manifest.json").exists()


def test_source_changed_mid_run_with_two_workers_is_one_line(photos, tmp_path):
    args = ["synth", "--src", str(photos), "--out", str(tmp_path / "o"), "--seed", "5", *FAST[:4],
            "--shard-size", "1", "--progress", "none"]  # 24 shards: many are cancelled after the error
    assert CliRunner().invoke(cli, [*args, "--workers", "1"]).exit_code == 0
    out = tmp_path / "o"
    cache_file = out / ".degradekit" / "scan.json"
    cache = json.loads(cache_file.read_text())
    victim = sorted(cache)[0]  # the first source: its shards are handed out first
    cache[victim]["sha256"] = "0" * 64  # as if the file had other bytes when the sample list was made
    cache_file.write_text(json.dumps(cache))
    (out / ".degradekit" / "job.json").unlink()
    for p in out.glob("shard-*.tar"):
        p.unlink()
    r = CliRunner().invoke(cli, [*args, "--workers", "2"])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and f"{victim}: sha256" in lines[0] and "changed since the sample list" in lines[0]
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


# ------------------------------------------------------------------------------- 2. signals and orphans

@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_signal_to_synth_leaves_no_worker_alive(tmp_path, sig):
    out = tmp_path / "o"
    proc = _start(["synth", *_big_job(tmp_path), "--workers", "2"], out)
    kids = {}
    try:
        _wait_for(lambda: (out / "shard-000001.tar").exists(), what="the first shards")
        kids = descendants(proc.pid)
        assert len(kids) >= 2, kids  # the forkserver and its workers
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        left = survivors(kids)
        assert not left, f"still alive after {sig.name}: {left}"
        n = len(list(out.glob("shard-*.tar")))
        time.sleep(1.0)
        assert len(list(out.glob("shard-*.tar"))) == n  # nobody renders into OUT any more
        if sig == signal.SIGTERM:
            assert proc.returncode == 143, err
            assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("synth: terminated"), err
            assert len(err.strip().splitlines()) == 1, err
            assert not [p for p in out.iterdir() if ".tmp" in p.name]  # temporaries removed
        else:
            assert proc.returncode == -signal.SIGKILL
        for p in out.glob("shard-*.tar"):  # what is there under a final name is complete
            assert verify_shard(p, samples=6, variants=1) == [], p
    finally:
        proc.kill()
        _kill_all(kids)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_signal_to_pool_build_leaves_no_worker_alive(tmp_path, sig):
    from degradekit.imageio import write_png
    from skimage import data

    src = tmp_path / "p"
    src.mkdir()
    for i, im in enumerate([data.astronaut(), data.coffee(), data.chelsea()]):
        write_png(src / f"{i}.png", im[:160, :160].copy())
    out = tmp_path / "pool"
    proc = subprocess.Popen([sys.executable, "-m", "cli", "pool", "build", "--src", str(src), "--out", str(out),
                             "--workers", "2", "--iters", "5000", "--no-early-stop", "--no-noise"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kids = {}
    try:
        def cmdline(pid):
            try:
                return Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:  # it ended after the /proc scan
                return b""

        def workers_busy():
            return sum(1 for p in descendants(proc.pid) if b"multiprocessing" in cmdline(p)) >= 2
        _wait_for(workers_busy, what="the pool build workers")
        time.sleep(4.0)  # inside KernelGAN
        kids = descendants(proc.pid)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert not survivors(kids), err
        if sig == signal.SIGTERM:
            assert proc.returncode == 143, err
            assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("pool build: terminated"), err
        else:
            assert proc.returncode == -signal.SIGKILL
        left = [p for p in out.rglob("*") if ".tmp-" in p.name]
        assert not left or sig == signal.SIGKILL, left
    finally:
        proc.kill()
        _kill_all(kids)


# ------------------------------------------------------------------------------------------------- 3. lock

def test_overlapping_part_in_another_process_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "o"
    job = _big_job(tmp_path)
    proc = _start(["synth", *job, "--workers", "1", "--part", "1/2"], out)
    try:
        _wait_for(lambda: (out / ".degradekit" / "job.json").exists(), what="the run to start")  # lock held
        for part in (["--part", "1/3"], [], ["--part", "1/1"]):
            r = CliRunner().invoke(cli, ["synth", *job, "--out", str(out), "--workers", "1", *part])
            assert r.exit_code == 1, (part, r.output)
            line, = r.output.strip().splitlines()
            assert str(out) in line and f"pid {proc.pid}" in line and "--part 1/2" in line, line
        assert not [p for p in out.iterdir() if ".tmp" in p.name and p.name.startswith("shard-00")] or \
            proc.poll() is None  # the holder's own temporaries were not deleted by the refused runs
    finally:
        proc.kill()
        proc.communicate()


# ---------------------------------------------------------------------------------------------- 4. inputs

def test_fifo_and_device_link_are_skipped_without_blocking(photos, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in photos.rglob("*"):
        if p.is_file():
            (src / p.name).write_bytes(p.read_bytes())
    os.mkfifo(src / "fifo.png")
    os.symlink("/dev/zero", src / "zero.png")
    out = tmp_path / "o"
    # a subprocess with a timeout: the old code blocked forever on the FIFO
    p = subprocess.run([sys.executable, "-m", "cli", "synth", "--src", str(src), "--out", str(out),
                        "--workers", "1", *FAST], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    assert f"warning: skipping {src / 'fifo.png'}: not a regular file (a FIFO)" in p.stderr
    assert f"warning: skipping {src / 'zero.png'}: not a regular file (a character device)" in p.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert sorted(s["rel"] for s in m["skipped"]) == ["fifo.png", "zero.png"]
    assert m["sources"]["count"] == 4
    from degradekit.imageio import ImageError, read_image

    with pytest.raises(ImageError, match="fifo.png: not a regular file"):
        read_image(src / "fifo.png")


def test_symlink_loop_uses_each_photo_once_in_glob_and_folder_forms(photos, tmp_path):
    from degradekit.synth.sources import resolve_sources

    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    files = sorted(p for p in photos.rglob("*") if p.is_file())
    (d / "a.png").write_bytes(files[0].read_bytes())
    (d / "sub" / "b.png").write_bytes(files[1].read_bytes())
    os.symlink(".", d / "loop")
    os.symlink("a.png", d / "same.png")  # one photo under two names
    for spec in (f"{d}/**/*.png", str(d), f"{d}/*/*.png", f"{d}/**"):
        ss = resolve_sources(spec)
        real = [os.path.realpath(f) for f in ss.files]
        assert len(real) == len(set(real)), (spec, ss.rels)
    assert resolve_sources(f"{d}/**/*.png").rels == resolve_sources(str(d)).rels == ("a.png", "sub/b.png")
    assert resolve_sources(f"{d}/**").rels == ("a.png", "sub/b.png")
    r1 = CliRunner().invoke(cli, ["synth", "--src", f"{d}/**/*.png", "--out", str(tmp_path / "x"), "--dry-run",
                                  *FAST])
    r2 = CliRunner().invoke(cli, ["synth", "--src", str(d), "--out", str(tmp_path / "x"), "--dry-run", *FAST])
    assert r1.exit_code == r2.exit_code == 0 and "2 sources used" in r1.output, r1.output
    assert r1.output.split("samples")[0] == r2.output.split("samples")[0]


def test_non_utf8_file_name(photos, tmp_path):
    from degradekit.synth.plan import SourceInfo, sources_hash

    src = tmp_path / "src"
    src.mkdir()
    data = next(p for p in photos.rglob("*.png")).read_bytes()
    name = os.fsdecode(b"\xff-photo.png")
    (src / name).write_bytes(data)
    (src / "b.png").write_bytes(data[:])  # same bytes, another name: both used (de-duplication is by path)
    out = tmp_path / "o"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--workers", "1", *FAST])
    assert r.exit_code == 0, (r.output, r.exception)
    m = json.loads((out / "manifest.json").read_text())
    rels = [f["rel"] for f in m["sources"]["files"]]
    assert rels == ["b.png", name]
    import hashlib

    want = hashlib.sha256(b"".join(os.fsencode(f["rel"]) + f"\t{f['sha256']}\n".encode()
                                   for f in m["sources"]["files"])).hexdigest()
    assert m["sources"]["sha256"] == want
    # lossless: two names that differ only in undecodable bytes hash differently
    a = sources_hash([SourceInfo("x", os.fsdecode(b"\xfe.png"), sha256="0" * 64)])
    b = sources_hash([SourceInfo("x", os.fsdecode(b"\xff.png"), sha256="0" * 64)])
    assert a != b


# --------------------------------------------------------------------------------- 7. full disk: the probe

def test_full_disk_says_no_space_and_leaves_no_probe(photos, tmp_path):
    with tmpfs(tmp_path / "full", "64k") as out:
        fd = os.open(out / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        with pytest.raises(OSError) as e:
            fd = os.open(out / "t", os.O_WRONLY | os.O_CREAT)
            try:
                os.write(fd, b"x")
            finally:
                os.close(fd)
                os.unlink(out / "t")
        assert e.value.errno == errno.ENOSPC
        r = CliRunner().invoke(cli, ["synth", "--src", str(photos), "--out", str(out), "--workers", "1", *FAST])
        assert r.exit_code == 1, r.output
        line, = r.output.strip().splitlines()
        assert "no space left" in line and "not writable" not in line, line
        assert not list(out.glob(".degradekit-probe-*"))


def test_lock_ranges_overlap_whenever_shard_blocks_do():
    from fractions import Fraction

    from degradekit.synth.run import _lock_range, part_shards

    parts = [None] + [(i, n) for n in range(1, 9) for i in range(1, n + 1)]
    for a in parts:
        for b in parts:
            (s1, l1), (s2, l2) = _lock_range(a), _lock_range(b)
            ranges = s1 < s2 + l2 and s2 < s1 + l1
            fa = (Fraction((a or (1, 1))[0] - 1, (a or (1, 1))[1]), Fraction(*(a or (1, 1))))
            fb = (Fraction((b or (1, 1))[0] - 1, (b or (1, 1))[1]), Fraction(*(b or (1, 1))))
            assert ranges == (fa[0] < fb[1] and fb[0] < fa[1]), (a, b)  # exactly the fractions' overlap
            for n_shards in range(1, 30):
                if set(part_shards(n_shards, a)) & set(part_shards(n_shards, b)):
                    assert ranges, (a, b, n_shards)  # overlapping work is always excluded


@pytest.mark.slow
def test_source_overwritten_during_a_two_worker_run_is_one_line(tmp_path):
    out = tmp_path / "o"
    job = _big_job(tmp_path)
    last = tmp_path / "big" / "sub" / "p3.JPG"  # the last source in sorted order: rendered last
    proc = _start(["synth", *job, "--workers", "2"], out)
    try:
        _wait_for(lambda: (out / "shard-000001.tar").exists(), what="the first shards")
        data = bytearray(last.read_bytes())
        data[-20] ^= 0xFF  # other bytes, same size
        last.write_bytes(bytes(data))
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    line, = err.strip().splitlines()
    assert line.startswith(f"Error: {last}: sha256") and "changed since the sample list was made" in line, line
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    for p in out.glob("shard-*.tar"):
        assert verify_shard(p, samples=6, variants=1) == [], p


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_is_one_line_exit_130(tmp_path):
    """A terminal's Ctrl-C reaches every process of the group: the workers stay quiet, the parent cleans up."""
    out = tmp_path / "o"
    # SIGINT at its default in the child, as in a terminal's foreground job: pytest run from a script's background
    # job (`cmd &`) ignores SIGINT, the child would inherit that and rightly keep ignoring it (and just finish)
    proc = _start(["synth", *_big_job(tmp_path), "--workers", "2"], out, start_new_session=True,
                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    kids = {}
    try:
        _wait_for(lambda: (out / "shard-000001.tar").exists(), what="the first shards")
        kids = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        line, = err.strip().splitlines()
        assert line.startswith("synth: interrupted;"), err
        assert not survivors(kids)
        assert not [p for p in out.iterdir() if ".tmp" in p.name]
    finally:
        proc.kill()
        _kill_all(kids)
