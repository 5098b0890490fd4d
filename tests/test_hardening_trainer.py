"""Fault injection for `trainer fit` (issue 9): real signals to real subprocesses with loader workers, kills between
the files of a checkpoint, resume with changed options, older checkpoints, a full disk, bad configs, checkpoints
that other tools open with ``torch.load(weights_only=True)``."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import cli
from test_trainer_fixtures import make_shards
from trainer.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = ["--num-feat", "8", "--num-block", "1", "--num-grow-ch", "4", "--batch-size", "2", "--gt-size", "32",
        "--workers", "0", "--no-tensorboard", "--device", "cpu", "--log-every", "1"]
# subprocess runs: a step long enough (~50-100 ms) that a signal lands inside one, loader workers on
SUB = ["--num-feat", "16", "--num-block", "2", "--num-grow-ch", "8", "--batch-size", "4", "--gt-size", "64",
       "--workers", "1", "--no-tensorboard", "--device", "cpu", "--log-every", "1", "--save-every", "3"]

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("hard") / "s", n=12, shard_size=4, hr_size=96)


def run(*args):
    return CliRunner().invoke(cli.trainer, [str(a) for a in args], catch_exceptions=False)


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _start(*args) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "import cli; cli.trainer(prog_name='trainer')", *map(str, args)]
    return subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _rows(run_dir: Path) -> list[dict]:
    p = run_dir / "train.jsonl"
    if not p.is_file():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:           # a half-written last line while the run is going
            pass
    return [r for r in out if "l_pix" in r]


def _wait_rows(proc: subprocess.Popen, run_dir: Path, n: int, timeout: float = 60) -> None:
    t0 = time.time()
    while len(_rows(run_dir)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, "run did not reach the wanted step"
        time.sleep(0.01)


def _said(err: bytes) -> list[str]:
    """What a run printed besides its time-stamped log lines (must be the one-line message), no traceback."""
    text = err.decode()
    assert "Traceback" not in text, text
    return [x for x in text.strip().splitlines() if x and not x.startswith("[")]


def _final_state(run_dir: Path, step: int) -> dict:
    ck = load_checkpoint(run_dir / "checkpoints" / f"step-{step:07d}.pth")
    return {part: ck[part] for part in ("params", "params_ema")} | {"data_position": ck["data_position"]}


def _assert_published(run_dir: Path) -> None:
    """Every checkpoint has its weight file, and nothing half-written sits under a final name's folder."""
    for ck in (run_dir / "checkpoints").glob("step-*.pth"):
        assert (run_dir / f"net_g_{ck.stem[5:]}.pth").is_file(), ck
    assert not list(run_dir.glob("*.tmp")) and not list((run_dir / "checkpoints").glob("*.tmp"))


@pytest.mark.slow
def test_sigint_sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run(shards, tmp_path):
    """Ctrl-C to the whole process group (as a terminal sends it) mid-run, resume, SIGKILL, resume: the final
    weights equal an uninterrupted run's, and train.jsonl holds every step exactly once."""
    iters = 10
    ref = run("fit", *shards, "--out", tmp_path / "ref", "--iters", iters, *SUB)   # in-process, one thread too
    assert ref.exit_code == 0, ref.output
    run_dir = tmp_path / "b" / "esrnet"
    p = _start("fit", *shards, "--out", tmp_path / "b", "--iters", iters, *SUB)
    _wait_rows(p, run_dir, 2)
    time.sleep(0.03)                                  # somewhere inside a later step or a batch wait
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err.decode()
    said = _said(err)
    assert len(said) == 1 and "interrupted by SIGINT" in said[0] and "--resume" in said[0], err.decode()
    _assert_published(run_dir)
    saved = sorted((run_dir / "checkpoints").glob("step-*.pth"))[-1]
    assert load_checkpoint(saved)["step"] >= 2
    p = _start("fit", *shards, "--out", tmp_path / "b", "--iters", iters, "--resume", run_dir, *SUB)
    _wait_rows(p, run_dir, 7)
    os.killpg(p.pid, signal.SIGKILL)                   # no chance to save: resume from step 6 (save-every 3)
    p.communicate(timeout=60)
    _assert_published(run_dir)
    p = _start("fit", *shards, "--out", tmp_path / "b", "--iters", iters, "--resume", run_dir, *SUB)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    a, b = _final_state(tmp_path / "ref" / "esrnet", iters), _final_state(run_dir, iters)
    assert a["data_position"] == b["data_position"]
    for part in ("params", "params_ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    steps = [r["step"] for r in _rows(run_dir)]
    assert steps == list(range(1, iters + 1))
    la = [r["l_pix"] for r in _rows(tmp_path / "ref" / "esrnet")]
    assert [r["l_pix"] for r in _rows(run_dir)] == la


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_exits_143_and_the_loader_workers_end(shards, tmp_path):
    run_dir = tmp_path / "esrnet"
    opts = [a for a in SUB[:SUB.index("--workers")]] + ["--workers", "2", "--no-tensorboard", "--log-every", "1"]
    p = _start("fit", *shards, "--out", tmp_path, "--iters", 1000, *opts)
    _wait_rows(p, run_dir, 2)
    workers = _children(p.pid)
    assert len(workers) >= 2
    os.kill(p.pid, signal.SIGTERM)                    # to the trainer only, as `kill PID` does
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, err.decode()
    said = _said(err)
    assert len(said) == 1 and "interrupted by SIGTERM" in said[0], err.decode()
    step = load_checkpoint(sorted((run_dir / "checkpoints").glob("step-*.pth"))[-1])["step"]
    assert step >= 2 and (run_dir / f"net_g_{step:07d}.pth").is_file()
    t0 = time.time()
    while any(_alive(w) for w in workers) and time.time() - t0 < 10:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers)


def test_resume_refuses_changed_options_and_applies_the_others(shards, tmp_path):
    out = tmp_path / "run"
    d = out / "esrnet"
    assert run("fit", *shards, "--out", out, "--iters", "2", *TINY).exit_code == 0
    refused = {"--batch-size": "4", "--gt-size": "64", "--seed": "3", "--preset": "esrgan", "--num-feat": "16",
               "--num-block": "2", "--num-grow-ch": "8", "--scale": "2", "--workers": "1"}
    for opt, val in refused.items():
        args = [a for a in TINY]
        if opt in args:
            args[args.index(opt) + 1] = val
        else:
            args += [opt, val]
        r = run("fit", *shards, "--out", out, "--resume", d, "--iters", "3", *args)
        assert r.exit_code == 1, (opt, r.output)
        line = r.output.strip()
        assert len(line.splitlines()) == 1 and opt in line and "cannot change on resume" in line, (opt, line)
    cfg = tmp_path / "c.toml"
    cfg.write_text("log_every = 1\n")
    for extra in (["--config", cfg], ["--init", d / "net_g_0000002.pth"]):
        r = run("fit", *shards, "--out", out, "--resume", d, "--iters", "3", *TINY, *extra)
        assert r.exit_code == 1 and extra[0] in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (d / "checkpoints" / "step-0000003.pth").exists()
    # applied and recorded: the new lr is what trains (and what config.toml says)
    r = run("fit", *shards, "--out", out, "--resume", d, "--iters", "4", "--lr", "1e-3", *TINY)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (d / "train.jsonl").read_text().splitlines()]
    assert [x["lr_g"] for x in rows if "l_pix" in x] == [2e-4, 2e-4, 1e-3, 1e-3]
    assert "lr_g = 0.001" in (d / "config.toml").read_text()
    assert "trained on 3 shards, now 2 shards" not in r.output
    r = run("fit", *shards[:2], "--out", out, "--resume", d, "--iters", "5", *TINY)     # another data set: said
    assert r.exit_code == 0 and "trained on 3 shards, now 2 shards" in r.output, r.output
    ck = load_checkpoint(d / "checkpoints" / "step-0000004.pth")
    assert ck["optim_g"]["param_groups"][0]["lr"] == 1e-3 and ck["config"]["stage"]["optim"]["lr_g"] == 1e-3


def test_resume_from_an_older_checkpoint_needs_force_and_keeps_the_later_ones(shards, tmp_path):
    out = tmp_path / "run"
    d = out / "esrnet"
    assert run("fit", *shards, "--out", out, "--iters", "4", "--save-every", "2", *TINY).exit_code == 0
    old = d / "checkpoints" / "step-0000002.pth"
    later = (d / "checkpoints" / "step-0000004.pth").read_bytes()
    r = run("fit", *shards, "--out", out, "--resume", old, "--iters", "4", *TINY)
    assert r.exit_code == 1 and "step-0000004.pth" in r.output and "--force" in r.output, r.output
    assert (d / "checkpoints" / "step-0000004.pth").read_bytes() == later
    r = run("fit", *shards, "--out", out, "--resume", old, "--iters", "4", "--force", *TINY)
    assert r.exit_code == 0, r.output
    assert (d / "superseded" / "step-0000004.pth").read_bytes() == later
    assert (d / "superseded" / "net_g_0000004.pth").is_file()
    steps = [json.loads(x)["step"] for x in (d / "train.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


class _Crash(BaseException):
    """A kill at that point: nothing after it runs (not even except-clauses for Exception)."""


@pytest.mark.parametrize("at", [1, 2, 3, 4, 5, 6])
def test_a_kill_between_the_files_of_a_checkpoint_never_leaves_one_without_the_other(shards, tmp_path, monkeypatch,
                                                                                     at):
    import trainer.train as tt
    calls = {"n": 0}
    real_replace = os.replace

    def dying_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == at:
            raise _Crash()
        return real_replace(src, dst)

    out = tmp_path / "run"
    monkeypatch.setattr(tt.os, "replace", dying_replace)
    with pytest.raises(_Crash):
        run("fit", *shards, "--out", out, "--iters", "1", *TINY)
    monkeypatch.setattr(tt.os, "replace", real_replace)
    d = out / "esrnet"
    _assert_published(d)
    # the next run cleans up and goes on (from the checkpoint if it was published, else from scratch)
    again = ["--resume", d] if list((d / "checkpoints").glob("step-*.pth")) else []
    r = run("fit", *shards, "--out", out, "--iters", "2", *again, *TINY)
    assert r.exit_code == 0, r.output
    _assert_published(d)
    assert not (d / ".staging").exists() or not list((d / ".staging").iterdir())


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_no_temporaries(shards, tmp_path, monkeypatch):
    small = tmp_path / "small"
    mounted = _tmpfs(small, "2m")
    try:
        if mounted:      # a real small filesystem: fill it up to 48 kB of room (logs fit, a checkpoint does not)
            st = os.statvfs(small)
            (small / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 48 * 1024))
        else:            # no tmpfs here: the same errno, injected where a full disk reports it
            def full(fd):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            monkeypatch.setattr(os, "fsync", full)
        r = run("fit", *shards, "--out", small / "run", "--iters", "2", "--save-every", "1", *TINY)
        assert r.exit_code == 1, r.output
        lines = [x for x in r.output.strip().splitlines() if not x.startswith("[")]    # not the log lines
        assert len(lines) == 1 and "Traceback" not in r.output, r.output
        line = lines[0]
        assert "cannot write checkpoint" in line and "No space left on device" in line, line
        d = small / "run" / "esrnet"
        left = [p for p in d.rglob("*") if p.is_file() and p.suffix in (".tmp", ".pth", ".safetensors")]
        assert left == [], left
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(small)], check=False)   # lazy: even with a file still open


@pytest.mark.parametrize(("toml", "key"), [("[stage.optim]\nlr_g = inf\n", "stage.optim.lr_g"),
                                          ("[stage.optim]\nlr_g = nan\n", "stage.optim.lr_g"),
                                          ("[stage.optim]\nmilestones = [-5, 10]\n", "stage.optim.milestones"),
                                          ("[stage.optim]\nmilestones = [0]\n", "stage.optim.milestones"),
                                          ("[stage.optim]\ngamma = inf\n", "stage.optim.gamma"),
                                          ("[stage.loss]\nl1_weight = inf\n", "stage.loss.l1_weight")])
def test_non_finite_and_negative_config_values_are_rejected_before_work(shards, tmp_path, toml, key):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    r = run("fit", *shards, "--out", tmp_path / "r", "--config", cfg, "--iters", "1", *TINY)
    assert r.exit_code == 1 and f"c.toml: {key}:" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "r").exists()
    r = run("fit", *shards, "--out", tmp_path / "r", "--lr", "inf", "--iters", "1", *TINY)
    assert r.exit_code != 0 and not (tmp_path / "r").exists()


_PLAIN_CHECK = r"""
import sys, torch
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
plain = (dict, list, tuple, str, int, float, bool, type(None), torch.Tensor)
def walk(x, path):
    if type(x) not in plain:
        raise SystemExit(f"{path}: {type(x).__module__}.{type(x).__name__}")
    if type(x) is dict:
        for k, v in x.items():
            if type(k) not in (str, int):
                raise SystemExit(f"{path}: key {k!r} of type {type(k).__name__}")
            walk(v, f"{path}.{k}")
    elif type(x) in (list, tuple):
        for i, v in enumerate(x):
            walk(v, f"{path}[{i}]")
walk(ck, "ck")
print("plain", sorted(ck))
"""


def test_checkpoints_hold_plain_types_only(shards, tmp_path):
    assert run("fit", *shards, "--out", tmp_path, "--iters", "2", *TINY).exit_code == 0
    ck = tmp_path / "esrnet" / "checkpoints" / "step-0000002.pth"
    r = subprocess.run([sys.executable, "-c", _PLAIN_CHECK, str(ck)], capture_output=True, text=True, env=_env())
    assert r.returncode == 0 and r.stdout.startswith("plain"), r.stdout + r.stderr
    assert (tmp_path / "esrnet" / "checkpoints" / "step-0000002.pth").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert (tmp_path / "esrnet" / "net_g_0000002.pth").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _shards_with_corrupt(d: Path, bad_keys: set[int], n: int = 12) -> list[str]:
    from test_trainer_fixtures import make_samples
    from trainer.data import write_shard
    d.mkdir(parents=True, exist_ok=True)
    samples = make_samples(n, hr_size=96)
    for i in bad_keys:
        samples[i][1]["lr0.png"] = samples[i][1]["lr1.png"] = b"not a png"
    paths = []
    for s in range(0, n, 4):
        p = d / f"shard-{s // 4:06d}.tar"
        write_shard(p, samples[s:s + 4])
        paths.append(str(p))
    return paths


def test_corrupt_samples_are_skipped_counted_and_stop_past_the_threshold(tmp_path):
    shards = _shards_with_corrupt(tmp_path / "s", {5, 9})
    cfg = tmp_path / "order.toml"           # stream order: sample 5 falls in batch 3, sample 9 in batch 5
    cfg.write_text("[data]\nshuffle_shards = false\nshuffle_buffer = 0\n")
    out, d = tmp_path / "run", tmp_path / "run" / "esrnet"
    r = run("fit", *shards, "--out", out, "--iters", "6", "--config", cfg, "--max-bad-samples", "1",
            *TINY[:TINY.index("--workers")], "--workers", "1", *TINY[TINY.index("--workers") + 2:])
    assert r.exit_code == 1, r.output
    errors = [x for x in r.output.strip().splitlines() if not x.startswith("[")]
    assert len(errors) == 1 and "Traceback" not in r.output, r.output
    assert "2 corrupt or mismatched samples skipped, more than data.max_bad_samples = 1" in errors[0]
    assert "step-0000004.pth" in errors[0] and "000000009.lr" in errors[0], errors[0]
    ck = load_checkpoint(d / "checkpoints" / "step-0000004.pth")
    assert ck["bad_samples"] == 1
    log = (d / "train.log").read_text()
    assert "warning: skipped a sample:" in log and "shard-000001.tar" in log and "000000005.lr" in log
    rows = [json.loads(x) for x in (d / "train.jsonl").read_text().splitlines()]
    assert [x["bad_samples"] for x in rows] == [0, 0, 1, 1]
    # a higher threshold is an option that may change on resume: the run goes on from the same step
    r = run("fit", *shards, "--out", out, "--iters", "6", "--resume", d, "--max-bad-samples", "5",
            *TINY[:TINY.index("--workers")], "--workers", "1", *TINY[TINY.index("--workers") + 2:])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (d / "train.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows] == [1, 2, 3, 4, 5, 6] and rows[-1]["bad_samples"] == 2


def test_a_fatal_data_error_in_a_loader_worker_is_one_line(tmp_path):
    shards = _shards_with_corrupt(tmp_path / "s", set(range(12)))
    r = run("fit", *shards, "--out", tmp_path / "run", "--iters", "2",
            *TINY[:TINY.index("--workers")], "--workers", "1", *TINY[TINY.index("--workers") + 2:])
    assert r.exit_code == 1, r.output
    errors = [x for x in r.output.strip().splitlines() if not x.startswith("[")]
    assert len(errors) == 1 and "Traceback" not in r.output and "Caught" not in r.output, r.output
    assert "shard-00000" in errors[0] and "nothing to save" in errors[0], errors[0]


def _api_cfg(iters):
    from dataclasses import replace
    from trainer.config import preset
    c = preset("realesrgan", "esrnet")
    return replace(c, stage=replace(c.stage, iters=iters),
                   net=replace(c.net, num_feat=8, num_block=1, num_grow_ch=4),
                   data=replace(c.data, gt_size=32, batch_size=2, num_workers=0, shuffle_buffer=4),
                   log_every=1, save_every=1000)


@pytest.mark.parametrize("where", ["setup", "step", "wait"])
def test_a_signal_in_each_phase_stops_at_a_consistent_step(shards, tmp_path, monkeypatch, where):
    """In-process and deterministic: SIGINT/SIGTERM raised during setup (nothing saved), inside a step (the step
    finishes, then it is saved) and while the loop waits for a batch (stops at once, the batch is not consumed);
    the resumed run ends bit-identical to an uninterrupted one."""
    import trainer.data as td
    import trainer.train as tt
    from trainer.train import TrainingInterrupted, fit
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    fit(shards, cfg=_api_cfg(5), out=tmp_path / "ref", tensorboard=False)
    calls = {"n": 0}
    if where == "setup":
        real = tt.RRDBNet

        def hook(*a, **kw):
            signal.raise_signal(signal.SIGTERM)
            return real(*a, **kw)
        monkeypatch.setattr(tt, "RRDBNet", hook)
    elif where == "step":
        real = tt.losses.l1

        def hook(*a):
            calls["n"] += 1
            if calls["n"] == 2:                  # inside step 2, after its batch was taken
                signal.raise_signal(signal.SIGINT)
            return real(*a)
        monkeypatch.setattr(tt.losses, "l1", hook)
    else:
        real = td.ShardDataset.make_sample

        def hook(self, *a):
            calls["n"] += 1
            if calls["n"] == 6:                  # the 3rd batch (2 samples each) is being read
                signal.raise_signal(signal.SIGINT)
            return real(self, *a)
        monkeypatch.setattr(td.ShardDataset, "make_sample", hook)
    with pytest.raises(TrainingInterrupted) as ei:
        fit(shards, cfg=_api_cfg(5), out=tmp_path / "b", tensorboard=False)
    monkeypatch.undo()
    assert ei.value.signum == (signal.SIGTERM if where == "setup" else signal.SIGINT)
    d = tmp_path / "b" / "esrnet"
    saved = sorted((d / "checkpoints").glob("step-*.pth"))
    if where == "setup":
        assert "nothing saved" in str(ei.value) and not saved
        fit(shards, cfg=_api_cfg(5), out=tmp_path / "b", tensorboard=False)
    else:
        assert [p.name for p in saved] == ["step-0000002.pth"], str(ei.value)
        fit(shards, cfg=_api_cfg(5), out=tmp_path / "b", resume=str(d), tensorboard=False)
    a = load_checkpoint(tmp_path / "ref" / "esrnet" / "checkpoints" / "step-0000005.pth")
    b = load_checkpoint(d / "checkpoints" / "step-0000005.pth")
    assert a["data_position"] == b["data_position"]
    for part in ("params", "params_ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before    # handlers given back


def test_a_signal_while_a_loader_worker_hands_over_a_batch_does_not_break_the_hand_over(shards, tmp_path,
                                                                                       monkeypatch, capfd):
    """A worker's batch arrives as shared-memory file descriptors, passed over a socket after a handshake with the
    worker's resource-sharer thread. A signal in the middle must not unwind it (the socket would close mid-handshake
    and the worker print a ConnectionResetError traceback after the one-line message): the run stops once the
    batch is in, without training on it, and the resumed run ends bit-identical to an uninterrupted one."""
    import multiprocessing.connection as mpc
    from dataclasses import replace

    import trainer.train as tt
    from trainer.train import TrainingInterrupted, fit

    def cfg():
        c = _api_cfg(5)
        return replace(c, data=replace(c.data, num_workers=1))
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    fit(shards, cfg=cfg(), out=tmp_path / "ref", tensorboard=False)
    main, seen = os.getpid(), {"l1": 0, "raised": 0, "not_unwound": 0}
    real_l1, real_answer = tt.losses.l1, mpc.answer_challenge

    def l1(*a):
        seen["l1"] += 1
        return real_l1(*a)

    def answer(*a, **kw):                 # this process's side of the handshake (forked workers skip the hook)
        if os.getpid() == main and seen["l1"] == 2 and not seen["raised"]:
            seen["raised"] = 1                        # step 2 is done: this is the hand-over of batch 3
            signal.raise_signal(signal.SIGINT)
            seen["not_unwound"] = 1
        return real_answer(*a, **kw)
    monkeypatch.setattr(tt.losses, "l1", l1)
    monkeypatch.setattr(mpc, "answer_challenge", answer)
    with pytest.raises(TrainingInterrupted) as ei:
        fit(shards, cfg=cfg(), out=tmp_path / "b", tensorboard=False)
    monkeypatch.undo()
    assert seen == {"l1": 2, "raised": 1, "not_unwound": 1}, seen      # batch 3 arrived and was not trained on
    assert ei.value.signum == signal.SIGINT
    d = tmp_path / "b" / "esrnet"
    assert [p.name for p in sorted((d / "checkpoints").glob("step-*.pth"))] == ["step-0000002.pth"], str(ei.value)
    fit(shards, cfg=cfg(), out=tmp_path / "b", resume=str(d), tensorboard=False)
    a = load_checkpoint(tmp_path / "ref" / "esrnet" / "checkpoints" / "step-0000005.pth")
    b = load_checkpoint(d / "checkpoints" / "step-0000005.pth")
    assert a["data_position"] == b["data_position"]
    for part in ("params", "params_ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert "Traceback" not in capfd.readouterr().err


def _ddp_stop_worker(rank, world, port, shards, out, cfg, interrupt):
    """One DDP run to the end; with ``interrupt``, first a run that one rank's SIGTERM stops, then its resume
    (the process group is reused: one spawn for both)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist
    import trainer.train as tt
    real, n = tt.losses.l1, {"c": 0}

    def hook(*a):                             # SIGTERM reaches rank 1 only, inside its step 2
        n["c"] += 1
        if n["c"] == 2:
            signal.raise_signal(signal.SIGTERM)
        return real(*a)
    try:
        if interrupt:
            if rank == 1:
                tt.losses.l1 = hook
            try:
                tt.fit(shards, cfg=cfg, out=out, device="cpu", tensorboard=False)
            except tt.TrainingInterrupted as e:
                Path(out, f"interrupted-{rank}").write_text(f"{e.signum} {e}")
            tt.losses.l1 = real
        tt.fit(shards, cfg=cfg, out=out, device="cpu", tensorboard=False,
               resume=str(Path(out) / "esrnet") if interrupt else None)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_stop_at_the_same_step_and_resume_exactly(shards, tmp_path):
    import socket
    import torch.multiprocessing as mp

    def port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    cfg = _api_cfg(4)
    for out, interrupt in ((tmp_path / "ref", False), (tmp_path / "b", True)):
        mp.spawn(_ddp_stop_worker, args=(2, port(), shards, str(out), cfg, interrupt), nprocs=2, join=True)
    said = [(tmp_path / "b" / f"interrupted-{r}").read_text() for r in (0, 1)]
    assert all(x.startswith("15 interrupted by SIGTERM at step 2") for x in said), said
    assert not (tmp_path / "b" / "esrnet" / "checkpoints" / "step-0000003.pth").exists()
    a = load_checkpoint(tmp_path / "ref" / "esrnet" / "checkpoints" / "step-0000004.pth")
    b = load_checkpoint(tmp_path / "b" / "esrnet" / "checkpoints" / "step-0000004.pth")
    assert len(b["data_position"]) == 2 and a["data_position"] == b["data_position"]
    for part in ("params", "params_ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
