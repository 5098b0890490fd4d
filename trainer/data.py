"""Streaming shard loader: tar shards (local paths, globs, directories, ``pipe:CMD`` or http(s) URLs) read with
``tarfile`` in stream mode, split across DDP ranks and loader workers, shuffled through a buffer, paired random
crop + flips/rot90, one random LR variant per visit. Infinite (epoch after epoch) and resumable mid-epoch.

Randomness (all explicit, nothing global):
- shard order of epoch e: ``default_rng([seed, e])`` (identical on every rank/worker);
- shuffle buffer of logical worker g in epoch e: ``default_rng([seed, e, g, 1])``;
- per-sample augmentation (variant, crop, flips): ``default_rng([seed, e, hash(key)])`` -- it depends on the
  sample and the epoch only, so a sample is augmented the same way whatever the worker/rank count.

Position: every sample carries (worker, epoch, index) = its logical worker, epoch and ordinal in that worker's
epoch stream. ``DataPosition`` tracks what the training loop consumed; a dataset started from a position skips
exactly the consumed samples (without decoding them) and assigns DataLoader workers to logical workers so that the
round-robin continues where it stopped.

Faults: a corrupt or mismatched sample (or the unreadable rest of a truncated shard) is skipped and reported on
the next sample (``skipped``, ``skip_msg``); it still counts as consumed, so positions stay exact. Only a spec the
user typed may be ``pipe:`` or a URL (found paths are plain files); non-regular files are skipped, never opened
blocking; loader workers and their ``pipe:`` commands are killed when the training process dies.
"""
from __future__ import annotations

import glob
import hashlib
import http.client
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

_LR_FIELD = re.compile(r"^lr(\d+)\.(png|webp)$")
_BRACE = re.compile(r"\{(\d+)\.\.(\d+)\}")


class ShardError(ValueError):
    """A shard that cannot be read; ``str(e)`` is one line naming the shard (and sample) and the problem.

    Re-raised by a DataLoader worker, torch builds the exception from "Caught ShardError in DataLoader worker
    process N.\nOriginal Traceback ...": the message is cut back to the worker's own line."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str) and args[0].startswith("Caught ") \
                and "\nOriginal Traceback" in args[0]:
            last = args[0].rstrip().splitlines()[-1]
            args = (last.partition(f"{type(self).__name__}: ")[2] or last,)
        super().__init__(*args)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_SCHEMES = ("pipe:", "http:", "https:", "file:")


def _as_path(p: str) -> str:
    """A path found on disk, made unmistakable for a URL or ``pipe:`` command (``./`` in front)."""
    return "./" + p if p.lower().startswith(_SCHEMES) else p


def _not_regular(p: str) -> str | None:
    """Why ``p`` is not a readable regular file (None when it is one). Never opens the file."""
    try:
        st = os.stat(p)
    except OSError as e:
        return f"cannot stat ({e.strerror})"
    if stat.S_ISREG(st.st_mode):
        return None
    kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "socket" if stat.S_ISSOCK(st.st_mode) else "directory" if stat.S_ISDIR(st.st_mode) else "special")
    return f"not a regular file ({kind})"


def _warn_stderr(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def open_regular(path: str):
    """Open a regular file for binary reading without ever blocking (a FIFO or device is refused, not opened
    for good). Raises OSError (or ValueError for a non-regular file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(_not_regular(path) or "not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# --- parent-death handling for loader workers ---------------------------------------------------------------
_PR_SET_PDEATHSIG = 1
_PIPE_GROUPS: set[int] = set()         # process groups of this process's running `pipe:` commands


def _set_pdeathsig(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):   # pragma: no cover - no libc prctl
        return False


def _on_parent_death(signum, frame) -> None:   # pragma: no cover - runs in a dying loader worker
    for pg in list(_PIPE_GROUPS):
        try:
            os.killpg(pg, signal.SIGKILL)
        except OSError:
            pass
    os._exit(1)


def worker_init_fn(worker_id: int | None = None) -> None:
    """Make a DataLoader worker end when the training process dies, even while it is blocked reading (torch's
    watchdog only looks between batches): PR_SET_PDEATHSIG delivers SIGTERM, whose handler kills the worker's
    ``pipe:`` command groups and exits. ShardDataset/PairDataset call it themselves in each worker."""
    if _set_pdeathsig(signal.SIGTERM):
        signal.signal(signal.SIGTERM, _on_parent_death)
        if os.getppid() == 1:             # the parent died before the signal was armed
            _on_parent_death(signal.SIGTERM, None)


def _pipe_preexec() -> None:               # pragma: no cover - runs in the forked child before exec
    _set_pdeathsig(signal.SIGKILL)


def expand_urls(specs: str | Sequence[str], *, warn: Callable[[str], None] | None = None) -> list[str]:
    """Turn shard specs into a list of URLs.

    A spec is a directory (its ``*.tar`` files, sorted), a glob (``shards/*.tar``), a brace range
    (``shards/shard-{000000..000009}.tar``), a file, ``pipe:CMD`` (tar bytes on CMD's stdout) or an http(s) URL.
    Only a spec as typed may be ``pipe:`` or a URL: whatever a directory scan, glob or brace range finds is a
    plain file path. Non-regular files (FIFO, device, socket) and second names of one file (a symlink, a link
    loop in a glob) are skipped with one ``warn`` line each (default: stderr). Raises ShardError for a path that
    does not exist, a directory/glob without tar files, or nothing left.
    """
    if isinstance(specs, (str, os.PathLike)):
        specs = [specs]
    warn = warn or _warn_stderr
    out: list[str] = []
    skipped: list[str] = []
    real: dict[str, str] = {}          # real path -> how it was first listed (one file is read once an epoch)

    def add(p: str) -> None:
        why = _not_regular(p)
        if why is None:
            first = real.setdefault(os.path.realpath(p), p)
            if first != p:
                warn(f"{p}: the same file as {first}: skipped")
                return
            out.append(_as_path(p))
        else:
            skipped.append(f"{p}: {why}: skipped")
            warn(skipped[-1])

    for spec in map(str, specs):
        if spec.startswith(("pipe:", "http://", "https://")):
            out += _brace_expand(spec)
            continue
        if spec.startswith("file:"):
            spec = spec[5:]
        if os.path.isdir(spec):
            found = sorted(glob.glob(os.path.join(glob.escape(spec), "*.tar")))
            if not found:
                raise ShardError(f"{spec}: directory contains no .tar shards")
            for p in found:
                add(p)
        elif any(c in spec for c in "*?["):
            found = sorted(glob.glob(spec))
            if not found:
                raise ShardError(f"{spec}: no files match")
            for p in found:
                add(p)
        else:
            for p in _brace_expand(spec):
                if not os.path.lexists(p):
                    raise ShardError(f"{p}: shard not found")
                add(p)
    if not out:
        raise ShardError(f"{skipped[-1]}; no shards left to read" if skipped else "no shards given")
    return out


def _brace_expand(spec: str) -> list[str]:
    m = _BRACE.search(spec)
    if not m:
        return [spec]
    a, b = m.group(1), m.group(2)
    width = len(a)
    return [x for i in range(int(a), int(b) + 1)
            for x in _brace_expand(spec[:m.start()] + str(i).zfill(width) + spec[m.end():])]


@contextmanager
def open_stream(url: str):
    """A readable binary stream for a shard URL; errors of the source become ShardError naming the URL."""
    if url.startswith("pipe:"):
        # the user typed this command (expand_urls never makes one from a found name); its own process group
        # and a parent-death signal, so it goes with the worker that reads it
        proc = subprocess.Popen(url[5:], shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=_pipe_preexec)
        _PIPE_GROUPS.add(proc.pid)
        try:
            yield proc.stdout
        except BaseException as e:     # consumer stopped early or failed
            if not isinstance(e, GeneratorExit):
                try:                   # a failed command explains a broken stream better than tarfile does
                    rc = proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    rc = None
                if rc:
                    msg = proc.stderr.read().decode(errors="replace").strip()
                    _PIPE_GROUPS.discard(proc.pid)
                    raise ShardError(f"{url}: command exited with status {rc}"
                                     + (f" ({_one_line(msg.splitlines()[-1])})" if msg else "")) from None
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.communicate()
            _PIPE_GROUPS.discard(proc.pid)
            raise
        _, err = proc.communicate()    # drain the rest (tar padding) so the writer never sees SIGPIPE
        _PIPE_GROUPS.discard(proc.pid)
        if proc.returncode != 0:
            msg = err.decode(errors="replace").strip()
            raise ShardError(f"{url}: command exited with status {proc.returncode}"
                             + (f" ({_one_line(msg.splitlines()[-1])})" if msg else ""))
    elif url.startswith(("http://", "https://")):
        try:
            resp = urllib.request.urlopen(url, timeout=60)  # noqa: S310 - user-given shard URL
        except Exception as e:  # noqa: BLE001
            raise ShardError(f"{url}: cannot open ({_one_line(e)})") from None
        with resp:
            yield resp
    else:
        try:
            f = open_regular(url)
        except OSError as e:
            raise ShardError(f"{url}: cannot open ({e.strerror})") from None
        except ValueError as e:
            raise ShardError(f"{url}: {e}") from None
        with f:
            yield f


def iter_raw_samples(url: str) -> Iterator[dict]:
    """Stream one tar shard; yield {"__key__", "__url__", field: bytes, ...} per sample (members grouped by key;
    key = member path up to the first dot of its file name, field = the rest)."""
    with open_stream(url) as stream:
        try:
            tar = tarfile.open(fileobj=stream, mode="r|*")
            cur: dict | None = None
            for member in tar:
                if not member.isfile():
                    continue
                d, base = os.path.split(member.name)
                if "." not in base:
                    continue
                stem, ext = base.split(".", 1)
                key = f"{d}/{stem}" if d else stem
                if cur is not None and cur["__key__"] != key:   # complete before this member's data is read
                    yield cur
                    cur = None
                data = tar.extractfile(member).read()
                if cur is None:
                    cur = {"__key__": key, "__url__": url}
                cur[ext] = data
            if cur is not None:
                yield cur
        except (tarfile.TarError, EOFError, OSError, http.client.HTTPException) as e:
            raise ShardError(f"{url}: corrupt or truncated tar ({_one_line(e)})") from None


def _decode(url: str, key: str, name: str, data: bytes) -> np.ndarray:
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:                  # OpenCV raises (rather than returning None) for some malformed headers
        img = None
    if img is None:
        raise ShardError(f"{url}: {key}.{name}: cannot decode image")
    return np.ascontiguousarray(img[..., ::-1])


def lr_fields(raw: dict) -> list[str]:
    """The sample's LR field names, ordered by variant index (lr0.png, lr1.png, ...)."""
    found = sorted((int(m.group(1)), k) for k in raw if (m := _LR_FIELD.match(k)))
    return [k for _, k in found]


def decode_pair(raw: dict, variant: int | None = 0, rng: np.random.Generator | None = None
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode HR and one LR variant (``variant`` index, or a random one drawn from ``rng`` when None).

    Returns (hr uint8 (H, W, 3) cropped to LR * scale, lr uint8 (h, w, 3), scale); the scale comes from the
    sample json (else from the shapes) and is checked against them.
    """
    url, key = raw["__url__"], raw["__key__"]
    hr_name = next((k for k in ("hr.png", "hr.webp") if k in raw), None)
    lrs = lr_fields(raw)
    if hr_name is None or not lrs:
        has = sorted(k for k in raw if not k.startswith("__"))
        raise ShardError(f"{url}: {key}: sample needs hr.png and lr0.png (has {has})")
    idx = int(rng.integers(len(lrs))) if variant is None else variant
    if not 0 <= idx < len(lrs):
        raise ShardError(f"{url}: {key}: no LR variant {idx} (has {len(lrs)})")
    hr = _decode(url, key, hr_name, raw[hr_name])
    lr = _decode(url, key, lrs[idx], raw[lrs[idx]])
    scale = None
    if "json" in raw:
        try:
            scale = json.loads(raw["json"]).get("scale")
        except (ValueError, AttributeError):
            raise ShardError(f"{url}: {key}.json: not valid JSON") from None
    if scale is None:
        scale = hr.shape[0] // lr.shape[0]
    if (not isinstance(scale, int) or scale < 1 or hr.shape[0] // scale != lr.shape[0]
            or hr.shape[1] // scale != lr.shape[1]):
        raise ShardError(f"{url}: {key}: HR {hr.shape[1]}x{hr.shape[0]} and LR {lr.shape[1]}x{lr.shape[0]} "
                         f"do not match scale {scale}")
    return hr[: lr.shape[0] * scale, : lr.shape[1] * scale], lr, scale


def key_seed(key: str) -> int:
    """A stable 63-bit integer from a sample key (augmentation seeds)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


def paired_crop(hr: np.ndarray, lr: np.ndarray, scale: int, gt_size: int, rng: np.random.Generator, *,
                context: int = 0, hflip: bool = True, rot: bool = True,
                where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Random aligned crop: LR ``gt_size // scale`` square and the matching HR ``gt_size`` square, the HR with
    ``context`` extra pixels on each side (reflect-101 beyond the image, as a full-image filter would see it),
    then the same random h-flip / v-flip / transpose on both. Draw order: top, left, hflip, vflip, transpose.

    Returns (hr (gt_size + 2 context)^2 x 3, lr (gt_size // scale)^2 x 3), uint8, C-contiguous.
    """
    h, w = lr.shape[:2]
    lq = gt_size // scale
    if h < lq or w < lq:
        raise ShardError(f"{where}: LR {w}x{h} is smaller than the LR crop {lq}x{lq} "
                         f"(gt_size {gt_size} / scale {scale})")
    top = int(rng.integers(0, h - lq + 1))
    left = int(rng.integers(0, w - lq + 1))
    lr_c = lr[top:top + lq, left:left + lq]
    y0, x0 = top * scale - context, left * scale - context
    y1, x1 = y0 + gt_size + 2 * context, x0 + gt_size + 2 * context
    H, W = hr.shape[:2]
    hr_c = hr[max(y0, 0):min(y1, H), max(x0, 0):min(x1, W)]
    pads = (max(-y0, 0), max(y1 - H, 0), max(-x0, 0), max(x1 - W, 0))
    if any(pads):
        if max(pads) >= min(H, W):
            raise ShardError(f"{where}: HR {W}x{H} too small for {context} px of crop context")
        hr_c = cv2.copyMakeBorder(np.ascontiguousarray(hr_c), *pads, cv2.BORDER_REFLECT_101)
    do_h = hflip and rng.random() < 0.5
    do_v = rot and rng.random() < 0.5
    do_t = rot and rng.random() < 0.5
    out = []
    for a in (hr_c, lr_c):
        if do_h:
            a = a[:, ::-1]
        if do_v:
            a = a[::-1]
        if do_t:
            a = a.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(a))
    return out[0], out[1]


def to_chw(a: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> uint8 tensor (C, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


@dataclass
class DataPosition:
    """What a training process consumed: per logical loader worker (epoch, samples consumed in that epoch) and
    which logical worker delivers the next batch. Plain JSON-able dict via to_dict()/from_dict()."""
    num_workers: int = 0
    workers: list[list[int]] = field(default_factory=list)   # [[epoch, consumed], ...] one per logical worker
    next_worker: int = 0

    @classmethod
    def start(cls, num_workers: int) -> "DataPosition":
        return cls(num_workers, [[0, 0] for _ in range(max(num_workers, 1))], 0)

    def update(self, batch: dict) -> None:
        """Record a batch the loop has consumed (uses its last sample's worker/epoch/index)."""
        w = int(batch["worker"][-1])
        self.workers[w] = [int(batch["epoch"][-1]), int(batch["index"][-1]) + 1]
        self.next_worker = (w + 1) % len(self.workers)

    def to_dict(self) -> dict:
        return {"num_workers": self.num_workers, "workers": [list(x) for x in self.workers],
                "next_worker": self.next_worker}

    @classmethod
    def from_dict(cls, d: dict) -> "DataPosition":
        return cls(int(d["num_workers"]), [[int(a), int(b)] for a, b in d["workers"]], int(d["next_worker"]))


class ShardDataset(IterableDataset):
    """Infinite stream of augmented training pairs from shards.

    Yields dicts: ``lq`` uint8 (3, gt_size/scale, gt_size/scale), ``gt`` uint8 (3, gt_size + 2 context, same),
    ``key`` (str), ``worker``, ``epoch``, ``index`` (ints, for DataPosition), ``skipped`` (int, samples skipped
    as corrupt/mismatched just before this one) and ``skip_msg`` (str, the last reason, "" if none). ``scale``
    None means: take it from the samples (every sample must then agree with the first one).

    Subclasses (trainer.pairs.PairDataset) change only what a unit is: ``_iter_unit(unit)`` yields raw samples,
    ``_decode(raw, rng)`` gives (hr, lr, scale).
    """

    def __init__(self, urls: Sequence[str], *, gt_size: int = 256, scale: int | None = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle_buffer: int = 180, shuffle_shards: bool = True,
                 hflip: bool = True, rot: bool = True, context: int = 0,
                 position: DataPosition | None = None, max_epochs: int | None = None) -> None:
        super().__init__()
        self.urls = list(urls)
        self.gt_size, self.scale, self.seed = gt_size, scale, seed
        self.rank, self.world_size = rank, world_size
        self.shuffle_buffer, self.shuffle_shards = shuffle_buffer, shuffle_shards
        self.hflip, self.rot, self.context = hflip, rot, context
        self.position = position
        self.max_epochs = max_epochs

    # -- what a unit is (a shard here) ------------------------------------------------------------------------
    def _iter_unit(self, unit) -> Iterator[dict]:
        return iter_raw_samples(unit)

    def _decode(self, raw: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        return decode_pair(raw, None, rng)

    def _unit_samples(self, unit) -> Iterator[dict]:
        """The unit's raw samples; a unit that fails part-way ends with one error marker (counted as a sample,
        so every reader sees the same count)."""
        try:
            yield from self._iter_unit(unit)
        except ShardError as e:
            yield {"__error__": _one_line(e), "__key__": None}

    # -- the stream of one logical worker -------------------------------------------------------------------
    def _epoch_raw(self, epoch: int, g: int, total: int) -> Iterator[dict]:
        order = list(self.urls)
        if self.shuffle_shards:
            perm = np.random.default_rng([self.seed, epoch]).permutation(len(order))
            order = [order[i] for i in perm]
        if len(order) >= total:            # split by shard
            for url in order[g::total]:
                yield from self._unit_samples(url)
        else:                              # fewer shards than readers: split by sample
            i = 0
            for url in order:
                for raw in self._unit_samples(url):
                    if i % total == g:
                        yield raw
                    i += 1

    def _epoch_shuffled(self, epoch: int, g: int, total: int) -> Iterator[dict]:
        if self.shuffle_buffer <= 1:
            yield from self._epoch_raw(epoch, g, total)
            return
        rng = np.random.default_rng([self.seed, epoch, g, 1])
        buf: list[dict] = []
        for raw in self._epoch_raw(epoch, g, total):
            if len(buf) < self.shuffle_buffer:
                buf.append(raw)
                continue
            j = int(rng.integers(len(buf)))
            buf[j], raw = raw, buf[j]
            yield raw
        while buf:
            j = int(rng.integers(len(buf)))
            buf[j], buf[-1] = buf[-1], buf[j]
            yield buf.pop()

    def make_sample(self, raw: dict, epoch: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Decode and augment one raw sample (deterministic in (seed, epoch, key)). ShardError if it is corrupt
        or does not fit (scale, size)."""
        rng = np.random.default_rng([self.seed, epoch, key_seed(raw["__key__"])])
        hr, lr, scale = self._decode(raw, rng)
        where = f"{raw['__url__']}: {raw['__key__']}"
        if self.scale is not None and scale != self.scale:
            raise ShardError(f"{where}: sample scale {scale} differs from the training scale {self.scale}")
        self.scale = scale
        hr_c, lr_c = paired_crop(hr, lr, scale, self.gt_size, rng, context=self.context,
                                 hflip=self.hflip, rot=self.rot, where=where)
        return hr_c, lr_c, scale

    def __iter__(self):
        info = get_worker_info()
        nw = info.num_workers if info is not None else 1
        wid = info.id if info is not None else 0
        if info is not None:
            worker_init_fn(wid)      # end with the training process, even while blocked in a read
            cv2.setNumThreads(1)     # N loader processes already use N cores; OpenCV's pool would oversubscribe
        pos = self.position
        if pos is not None and len(pos.workers) != nw:
            raise ShardError(f"data position was recorded with {len(pos.workers)} loader worker(s), now {nw}; "
                             "resume with the same --workers")
        logical = (wid + (pos.next_worker if pos else 0)) % nw
        g = self.rank * nw + logical
        total = self.world_size * nw
        epoch, skip = (pos.workers[logical] if pos else (0, 0))
        skipped, skip_msg = 0, ""      # carried to the next good sample, across epochs too (resume-exact)
        while self.max_epochs is None or epoch < self.max_epochs:
            n, good, bad = -1, 0, 0
            for n, raw in enumerate(self._epoch_shuffled(epoch, g, total)):
                if n < skip:
                    continue
                try:
                    if "__error__" in raw:
                        raise ShardError(raw["__error__"])
                    hr, lr, _ = self.make_sample(raw, epoch)
                except ShardError as e:
                    skipped, skip_msg, bad = skipped + 1, _one_line(e), bad + 1
                    continue
                good += 1
                yield {"lq": to_chw(lr), "gt": to_chw(hr), "key": raw["__key__"], "worker": logical, "epoch": epoch,
                       "index": n, "skipped": skipped, "skip_msg": skip_msg}
                skipped, skip_msg = 0, ""
            if n < 0:
                raise ShardError(f"loader worker {g} of {total} got no samples from {len(self.urls)} "
                                 f"{self._unit_name}(s): fewer samples than ranks x workers")
            if good == 0 and skip == 0:
                raise ShardError(f"loader worker {g} of {total}: no readable samples in epoch {epoch} "
                                 f"({bad} skipped; last: {skip_msg})")
            epoch, skip = epoch + 1, 0

    _unit_name = "shard"


def iter_val_pairs(urls: Sequence[str], limit: int | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray, int]]:
    """Held-out pairs in stream order: (key, hr uint8, lr0 uint8, scale), at most ``limit``."""
    n = 0
    for url in urls:
        for raw in iter_raw_samples(url):
            if limit is not None and n >= limit:
                return
            hr, lr, scale = decode_pair(raw, 0)
            yield raw["__key__"], hr, lr, scale
            n += 1


def write_shard(path: str | Path, samples: Sequence[tuple[str, dict[str, bytes]]]) -> None:
    """Write a tar shard with reproducible members (sorted by key, then field; mtime 0, uid/gid 0, mode 0o644).

    ``samples``: [(key, {field: bytes})]. Used by tests and tools that need small contract-conformant shards.
    """
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, fields_ in sorted(samples, key=lambda s: s[0]):
            for name in sorted(fields_):
                data = fields_[name]
                ti = tarfile.TarInfo(f"{key}.{name}")
                ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = len(data), 0, 0o644, 0, 0, "", ""
                tar.addfile(ti, io.BytesIO(data))
