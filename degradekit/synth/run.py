"""`degradekit synth` end to end: scan -> plan -> render shards (workers, resume, parts) -> manifest.

Determinism: the sample list is fixed by the sorted sources and the settings before anything is rendered; a
shard is a fixed contiguous range of samples; every random draw comes from SeedSequence(seed, index, variant).
So shard bytes do not depend on the worker count, on which part renders them or on restarts.

Resume: shards are written under a temporary name and renamed when complete; a restart with the same command
skips every shard that exists under its final name and deletes its own stale temporary files.
``OUT/.degradekit/job.json`` remembers the settings and sources hash, so a restart with different settings or
changed sources is refused instead of mixing two datasets in one folder.
"""
from __future__ import annotations

import concurrent.futures as cf
import concurrent.futures.process  # noqa: F401  (cf.process.BrokenProcessPool)
import json
import multiprocessing as mp
import os
import pickle
import queue as _queue
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import atomic_write
from ..progress import Progress
from .manifest import build_manifest, tool_version, write_manifest
from .plan import Plan, Settings, SourceInfo, scan_source, sources_hash
from .render import SourceChanged, render_shard
from .procs import stop_processes, worker_init
from .shards import SHARD_RE, TMP_SUFFIX, file_sha256, shard_name

__all__ = ["SynthError", "RunResult", "run_synth", "plan_dataset", "part_shards", "parse_part", "EXIT_SKIPPED",
           "Progress"]

#: Exit status when the run finished but some inputs were skipped (0 = everything used, 1 = error, 2 = usage).
EXIT_SKIPPED = 3
STATE_DIR = ".degradekit"
MAX_PARTS = 10**6
_LOCK_SPAN = 1 << 62  # the lock file's byte range standing for the whole dataset (see _lock)


class SynthError(RuntimeError):
    """A run cannot go on (one line naming the file and the problem)."""


class ShardWriteError(SynthError):
    pass


@dataclass
class RunResult:
    manifest_path: Path
    manifest: dict
    rendered: list[int] = field(default_factory=list)    # shards written by this run
    resumed: list[int] = field(default_factory=list)     # shards found complete and kept
    seconds: float = 0.0
    pairs: int = 0                                        # pairs rendered by this run
    worker_peak_rss_mb: float = 0.0
    encode_seconds: float = 0.0                           # summed over workers
    degrade_seconds: float = 0.0                          # summed over workers
    render_cpu_seconds: float = 0.0                       # CPU time of the rendering, summed over workers

    @property
    def exit_code(self) -> int:
        return EXIT_SKIPPED if self.manifest["skipped"] else 0


def parse_part(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> (2, 4): the second of four parts (1-based)."""
    if text is None:
        return None
    try:
        a, b = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--part: {text!r} is not I/N (e.g. 1/4)") from None
    if not (b >= 1 and 1 <= a <= b):
        raise ValueError(f"--part: {text!r} needs 1 <= I <= N")
    if b > MAX_PARTS:
        raise ValueError(f"--part: {text!r}: N is at most {MAX_PARTS}")
    return a, b


def part_shards(n_shards: int, part: tuple[int, int] | None) -> list[int]:
    """Shard indices of part I of N: the contiguous block [(I-1)*S//N, I*S//N)."""
    if part is None:
        return list(range(n_shards))
    i, n = part
    return list(range((i - 1) * n_shards // n, i * n_shards // n))


# ------------------------------------------------------------------------------------------------- progress

# -------------------------------------------------------------------------------------------------- workers

_W: dict = {}


def _cores() -> int:
    """Cores this process may use (the affinity mask / container limit, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _one_thread() -> int:
    """Worker processes are the parallelism: keep OpenCV from starting a thread pool in each. Returns the old
    thread count."""
    import cv2

    n = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return n


def _init_worker(q) -> None:
    worker_init()  # never outlive the parent (SIGKILL / SIGTERM to `synth`)
    _one_thread()
    _W.clear()
    _W["q"] = q


def _load_pool(pool_path, settings):
    """The pool of the run, checked against the digest recorded in the settings (it must not change)."""
    if pool_path is None and settings.pool is None:
        return None
    from ..pool import Pool, PoolError

    path = pool_path or settings.pool["path"]
    try:
        pool = Pool.load(path, scale=settings.scale)
    except PoolError as e:
        raise SynthError(str(e)) from None
    if settings.pool is not None and pool.digest() != settings.pool["sha256"]:
        raise SynthError(f"{path}: pool digest {pool.digest()[:12]}... differs from the one this run was "
                         f"started with ({settings.pool['sha256'][:12]}...)")
    return pool


def _work(token: str, plan_bytes: bytes, out_dir: str, pool_path, shard: int):
    """Render one shard in a worker. The plan travels pickled with each task (one pickle made by the parent;
    about 1 MB for DF2K, next to tens of seconds of work per shard) and is unpickled once per worker."""
    if _W.get("token") != token:
        plan = pickle.loads(plan_bytes)
        _W.update(token=token, plan=plan, pool=_load_pool(pool_path, plan.settings))
    t: dict = {}
    c0 = time.process_time()
    row = _render_one(_W["plan"], shard, out_dir, _W["pool"], _W["q"].put, t)
    return row, {"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "encode": t.get("encode", 0.0),
                 "degrade": t.get("degrade", 0.0), "cpu": time.process_time() - c0}


def _scan_task(args):
    return scan_source(*args)


def _render_one(plan, shard, out_dir, pool, progress, timings):
    try:
        return render_shard(plan, shard, out_dir, pool, progress, timings)
    except SourceChanged as e:
        raise SynthError(str(e)) from None
    except OSError as e:
        # Always the shard's final name: the temporary's (or the sidecar's) name means nothing to the user.
        raise ShardWriteError(f"{Path(out_dir) / shard_name(shard)}: cannot write shard: {e.strerror or e}") \
            from None


def _context():
    methods = mp.get_all_start_methods()
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        # Import the heavy modules once in the server; workers fork from it already warm.
        ctx.set_forkserver_preload(["degradekit.synth.run", "degradekit.pipeline"])
        return ctx
    return mp.get_context("spawn")


# ---------------------------------------------------------------------------------------------------- state

def _check_writable(out: Path) -> None:
    import errno

    probe = out / f".degradekit-probe-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"x")  # ext4 (delayed allocation reserves blocks), tmpfs, xfs: ENOSPC shows here
        finally:
            os.close(fd)
    except OSError as e:
        what = "no space left on the output folder's disk" if e.errno in (errno.ENOSPC, errno.EDQUOT) else \
            "output folder is not writable"
        raise SynthError(f"{e.filename or out}: {what}: {e.strerror or e}") from None
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass


def _load_scan_cache(out: Path) -> dict:
    try:
        return json.loads((out / STATE_DIR / "scan.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_json_atomic(path: Path, obj) -> None:
    atomic_write(path, json.dumps(obj, sort_keys=True), mkdir=True)


def scan_sources(source_set, settings: Settings, out: Path | None, executor=None, strict=False,
                 progress_mode="auto", log=None) -> list[SourceInfo]:
    """Scan every source (cached in OUT/.degradekit/scan.json by path, size and mtime)."""
    cache = _load_scan_cache(out) if out is not None else {}
    key_extra = f"{settings.max_pixels}:{settings.effective_min_size}:{tool_version()}"
    results: list[SourceInfo | None] = [None] * len(source_set.files)
    todo = []
    for i, (f, rel) in enumerate(zip(source_set.files, source_set.rels)):
        c = cache.get(str(f))
        try:
            st = os.stat(f)
        except OSError:
            st = None
        if c and st and c.get("bytes") == st.st_size and c.get("mtime_ns") == st.st_mtime_ns \
                and c.get("key") == key_extra:
            results[i] = SourceInfo(str(f), rel, c["bytes"], c["sha256"], c["h"], c["w"], c["mtime_ns"], c["reason"])
        else:
            todo.append(i)
    args = [(str(source_set.files[i]), source_set.rels[i], settings.max_pixels, settings.effective_min_size)
            for i in todo]
    it = executor.map(_scan_task, args, chunksize=4) if executor is not None and len(args) > 1 else map(
        _scan_task, args)
    prog = Progress(len(args), "scan", mode=progress_mode, every=30.0, unit="image") if args else None
    for i, info in zip(todo, it):
        results[i] = info
        if prog is not None:
            prog.update(1)
        if info.reason is not None and strict:
            raise SynthError(f"{info.reason} (--strict)")
    if prog is not None:
        prog.close()
    bad = [r for r in results if r.reason is not None]
    if strict and bad:
        raise SynthError(f"{bad[0].reason} (--strict)")
    if log:
        for info in bad:
            log(f"warning: skipping {info.reason}")
    if out is not None and todo:
        for info in results:
            cache[info.path] = {"bytes": info.bytes, "sha256": info.sha256, "h": info.h, "w": info.w,
                                "mtime_ns": info.mtime_ns, "reason": info.reason, "key": key_extra}
        try:  # only a cache (a lost or unreadable one means scanning again): no fsync
            atomic_write(out / STATE_DIR / "scan.json", json.dumps(cache, sort_keys=True), mkdir=True, durable=False)
        except OSError:
            pass
    return results  # type: ignore[return-value]


def _check_job(out: Path, settings: Settings, src_hash: str | None, n_shards: int | None) -> None:
    """Refuse to mix datasets in one folder; record the job on first use."""
    path = out / STATE_DIR / "job.json"
    try:
        job = json.loads(path.read_text())
    except (OSError, ValueError):
        job = None
    if job is None:
        existing = [p.name for p in out.iterdir() if SHARD_RE.match(p.name)]
        if existing:
            raise SynthError(f"{out}: already holds shards ({existing[0]} ...) not made by this command; "
                             f"use an empty --out")
        if src_hash is not None:
            try:
                _write_json_atomic(path, {"settings_sha256": settings.digest(), "sources_sha256": src_hash,
                                          "n_shards": n_shards, "tool_version": tool_version()})
            except OSError as e:
                raise SynthError(f"{path}: cannot write: {e.strerror or e}") from None
        return
    if job.get("settings_sha256") != settings.digest():
        raise SynthError(f"{out}: holds a dataset made with different settings (config, seed, patch, ...); "
                         f"rerun with the same options to resume, or use another --out")
    if job.get("tool_version", tool_version()) != tool_version():
        raise SynthError(f"{out}: was started by degradekit {job['tool_version']}, this is {tool_version()} "
                         f"(shards of two versions may differ); finish it with that version or use another --out")
    if src_hash is not None and job.get("sources_sha256") != src_hash:
        raise SynthError(f"{out}: holds a dataset made from different source files (sources hash "
                         f"{job.get('sources_sha256', '')[:12]} vs now {src_hash[:12]}); use another --out")


# ------------------------------------------------------------------------------------------------------ run

def run_synth(source_set, settings: Settings, out_dir, *, workers: int | None = None,
              part: tuple[int, int] | None = None, strict: bool = False, pool_path=None,
              progress: str = "auto", log=None) -> RunResult:
    """Render the dataset (or part of it) into ``out_dir``; write the manifest; return a RunResult.

    ``progress``: "auto" (bar on a terminal, lines otherwise), "bar", "lines" or "none".
    ``log(line)`` receives warnings (skipped inputs). Raises SynthError for problems the user can fix.
    """
    t0 = time.perf_counter()
    log = log or (lambda s: print(s, file=sys.stderr))
    out = Path(out_dir)
    _check_writable(out)
    lock = _lock(out, part)  # held until this function returns (released by the OS if the process dies)
    _check_job(out, settings, None, None)
    workers = max(1, int(workers or _cores()))
    ex = q = None
    if workers > 1:  # one pool of worker processes for the scan and the rendering
        ctx = _context()
        q = ctx.Queue()
        ex = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(q,))
    try:
        return _run(source_set, settings, out, workers, part, strict, pool_path, progress, log, ex, q, t0)
    except cf.process.BrokenProcessPool as e:
        raise SynthError(f"{out}: a worker process died ({e}); finished shards are kept, rerun the same "
                         f"command to resume") from None
    finally:
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)
        lock.close()


def _lock_range(part) -> tuple[int, int]:
    """Byte range [start, start + length) of the lock file standing for part I/N (the fraction [(I-1)/N, I/N)).

    Fractions that do not overlap have disjoint shard blocks (part_shards floors both ends the same way), so
    runs of parts that cannot touch the same shard may share a folder; any overlap is refused."""
    i, n = part or (1, 1)
    a, b = (i - 1) * _LOCK_SPAN // n, i * _LOCK_SPAN // n
    return a, b - a


class _Lock:
    def __init__(self, f, holder: Path):
        self.f, self.holder = f, holder

    def close(self) -> None:
        try:
            self.holder.unlink()
        except OSError:
            pass
        self.f.close()  # releases the record lock


_FLOCK = "hhqqi4x"  # struct flock on 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid


def _try_lock(f, start: int, length: int) -> bool:
    """Exclusive lock of [start, start + length) of the file; False when another holder overlaps.

    Linux: an open-file-description lock (F_OFD_SETLK), which conflicts with another open of the file even in
    the same process and is not dropped when the process closes some other descriptor of the file; elsewhere a
    POSIX record lock."""
    import fcntl
    import struct

    cmd = getattr(fcntl, "F_OFD_SETLK", None)
    try:
        if cmd is not None and sys.platform.startswith("linux"):
            fcntl.fcntl(f.fileno(), cmd, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, start, length, 0))
        else:  # pragma: no cover - not Linux
            fcntl.lockf(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB, length, start, os.SEEK_SET)
    except OSError as e:
        import errno

        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _holders(folder: Path, start: int, length: int) -> list[str]:
    """Descriptions of the recorded runs whose part overlaps [start, start + length)."""
    import json as _json
    import socket

    out = []
    for f in sorted(folder.glob("*.json")):
        try:
            h = _json.loads(f.read_text())
            if h["host"] == socket.gethostname() and not _alive(int(h["pid"])):
                continue  # left by a killed run
            part = tuple(h["part"]) if h.get("part") else None
            a, n = _lock_range(part)
            if a < start + length and start < a + n:
                out.append(f"pid {int(h['pid'])} on {h['host']}, " +
                           (f"--part {part[0]}/{part[1]}" if part else "all shards"))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            continue
    return out


def _lock(out: Path, part):
    """An exclusive lock on OUT for the shards of this part: two runs rendering the same shards into one folder
    would delete each other's temporary files. One lock file per folder; each run locks the byte range of its
    part (see _lock_range), so overlapping parts (1/2 and 1/3; no --part and 1/1) exclude each other."""
    import json as _json
    import socket

    path = out / STATE_DIR / "lock"
    start, length = _lock_range(part)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")
    except OSError as e:
        raise SynthError(f"{path}: cannot create: {e.strerror or e}") from None
    try:
        ok = _try_lock(f, start, length)
    except OSError as e:
        f.close()
        raise SynthError(f"{path}: cannot lock: {e.strerror or e}") from None
    if not ok:
        f.close()
        who = "; ".join(_holders(path.parent / "holders", start, length)) or "holder unknown"
        mine = f"--part {part[0]}/{part[1]}" if part else "all shards"
        raise SynthError(f"{out}: another `degradekit synth` ({who}) is rendering shards that overlap this run's "
                         f"({mine}) into this folder (lock {path}); wait for it or stop it")
    holder = path.parent / "holders" / f"{socket.gethostname()}-{os.getpid()}.json"
    try:
        atomic_write(holder, _json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                          "part": list(part) if part else None}), mkdir=True, durable=False)
    except OSError:
        pass  # only names the holder in the other run's message
    return _Lock(f, holder)


def plan_dataset(source_set, settings: Settings, *, workers: int | None = None, strict: bool = False,
                 progress: str = "auto", log=None) -> Plan:
    """Scan the sources and build the sample list only (``synth --dry-run``); writes nothing."""
    workers = max(1, int(workers or _cores()))
    ex = None
    if workers > 1 and len(source_set.files) > 1:
        ctx = _context()
        ex = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(ctx.Queue(),))
    try:
        return Plan.build(settings, scan_sources(source_set, settings, None, ex, strict, progress, log))
    except cf.process.BrokenProcessPool as e:
        raise SynthError(f"a worker process died while scanning ({e})") from None
    finally:
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)


def _run(source_set, settings, out, workers, part, strict, pool_path, progress, log, ex, q, t0) -> RunResult:
    scanned = scan_sources(source_set, settings, out, ex, strict, progress, log)
    plan = Plan.build(settings, scanned)
    if plan.n_samples == 0:
        raise SynthError(f"{source_set.spec}: no usable source images ({len(plan.skipped)} skipped: "
                         f"{plan.skipped[0].reason if plan.skipped else 'none found'})")
    _check_job(out, settings, sources_hash(plan.sources), plan.n_shards)

    mine = part_shards(plan.n_shards, part)
    mine_set = set(mine)
    _remove_temporaries(out, mine_set)  # stale ones of our own shards (a killed run); other parts' stay
    rows: dict[int, dict] = {}
    for s in mine:
        row = _finished_row(out, plan, s, log)
        if row is not None:
            rows[s] = row
    done = sorted(rows)
    todo = [s for s in mine if s not in rows]

    pairs = sum(len(plan.shard_range(s)) for s in todo) * settings.variants
    result = RunResult(out / "manifest.json", {}, rendered=list(todo), resumed=done)
    prog = Progress(pairs, "synth", mode=progress, unit="pair") if todo else None
    peak_kb, timings = 0, {"encode": 0.0, "degrade": 0.0, "cpu": 0.0}
    try:
        nw = min(workers, len(todo))
        if nw <= 1:
            import cv2

            pool = _load_pool(pool_path, settings)
            old_threads = _one_thread()
            c0 = time.process_time()
            try:
                for s in todo:
                    rows[s] = _render_one(plan, s, out, pool, prog.update, timings)
            finally:
                cv2.setNumThreads(old_threads)
                timings["cpu"] += time.process_time() - c0
            peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        elif todo:
            peak_kb = _render_parallel(plan, todo, out, ex, q, pool_path, prog, rows, timings)
    except BaseException:
        # An error, Ctrl-C or SIGTERM: stop the workers (a shard they are writing is incomplete anyway), then
        # remove what they leave; the lock still covers these shards. Finished shards are kept.
        if ex is not None:
            stop_processes(list((getattr(ex, "_processes", None) or {}).values()))
        _remove_temporaries(out, mine_set)
        raise
    finally:
        if prog is not None:
            prog.close()

    manifest = build_manifest(plan, source_set, list(rows.values()), part, mine)
    try:
        result.manifest_path = write_manifest(out, manifest)
    except OSError as e:
        raise SynthError(f"{out / 'manifest.json'}: cannot write the manifest: {e.strerror or e} (all shards are "
                         f"complete; rerun the same command to write it)") from None
    result.manifest = manifest
    result.seconds = time.perf_counter() - t0
    result.pairs = pairs
    result.worker_peak_rss_mb = peak_kb / 1024.0
    result.encode_seconds = timings["encode"]
    result.degrade_seconds = timings["degrade"]
    result.render_cpu_seconds = timings["cpu"]
    return result


def _finished_row(out: Path, plan: Plan, s: int, log) -> dict | None:
    """The manifest row of shard ``s`` if it is already complete in OUT, else None.

    A shard exists under its final name only once complete; its row comes from the sidecar written right after
    it (no re-reading). Without a matching sidecar (a crash between the two) the shard is hashed and its
    structure checked; a damaged one is deleted and rendered again."""
    from .render import sidecar_path
    from .shards import verify_shard

    path = out / shard_name(s)
    if not path.is_file():
        return None
    r = plan.shard_range(s)
    want = {"name": path.name, "index": s, "first": r.start, "samples": len(r)}
    try:
        row = json.loads(sidecar_path(out, path.name).read_text())
        if all(row.get(k) == v for k, v in want.items()) and row.get("bytes") == path.stat().st_size:
            return row
    except (OSError, ValueError):
        pass
    problems = verify_shard(path, samples=len(r), variants=plan.settings.variants, first_index=r.start)
    if problems:
        log(f"warning: {problems[0]}; rendering {path.name} again")
        path.unlink()
        return None
    size, sha = file_sha256(path)
    return {**want, "bytes": size, "sha256": sha}


def _render_parallel(plan, todo, out, ex, q, pool_path, prog, rows, timings):
    peak_kb = 0
    plan_bytes = pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)
    token = f"{os.getpid()}-{id(plan)}-{time.monotonic_ns()}"
    pp = None if pool_path is None else str(pool_path)
    futs = {ex.submit(_work, token, plan_bytes, str(out), pp, s): s for s in todo}
    error = None
    pending = set(futs)
    while pending:
        finished, pending = cf.wait(pending, timeout=0.25, return_when=cf.FIRST_COMPLETED)
        _drain(q, prog)
        for f in finished:
            if f.cancelled():  # cancelled by us after the first error: nothing to report
                continue
            exc = f.exception()
            if exc is not None:
                if error is None:
                    error = exc
                    for p in pending:  # stop handing out shards; running ones finish (they are valid)
                        p.cancel()
                continue
            row, stats = f.result()
            rows[row["index"]] = row
            peak_kb = max(peak_kb, stats["maxrss_kb"])
            timings["encode"] += stats["encode"]
            timings["degrade"] += stats["degrade"]
            timings["cpu"] += stats["cpu"]
    _drain(q, prog)
    if error is not None:
        raise error
    return peak_kb


def _remove_temporaries(out: Path, shards: set) -> None:
    """Delete ``shard-N.tar.tmp-*`` of the given shards."""
    for p in out.iterdir():
        if TMP_SUFFIX in p.name and p.name.startswith("shard-"):
            m = SHARD_RE.match(p.name.split(TMP_SUFFIX)[0])
            if m and int(m.group(1)) in shards:
                try:
                    p.unlink()
                except OSError:
                    pass


def _drain(q, prog):
    while True:
        try:
            n = q.get_nowait()
        except (_queue.Empty, OSError, ValueError):
            return
        if prog is not None:
            prog.update(n)
