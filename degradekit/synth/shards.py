"""WebDataset shards: reproducible tar writing, reading and structural verification.

A shard is a POSIX (ustar) tar of samples. Each member is ``KEY.EXT`` where KEY is the 9-digit global sample
index; a sample's members are consecutive and sorted by name (``hr.png`` < ``json`` < ``lr0.png`` < ...). Every
member header is fixed: mtime 0, uid/gid 0, empty user/group names, mode 0644, so the bytes of a shard depend
only on its contents. A shard is written under a temporary name in the same folder, fsynced and renamed, so a
shard that exists under its final name is complete.
"""
from __future__ import annotations

import hashlib
import os
import re
import tarfile
from pathlib import Path

__all__ = ["ShardWriter", "shard_name", "iter_samples", "file_sha256", "verify_shard", "ShardFormatError",
           "TMP_SUFFIX", "SHARD_RE"]

TMP_SUFFIX = ".tmp"
SHARD_RE = re.compile(r"^shard-(\d{6,})\.tar$")
_MEMBER_RE = re.compile(r"^(\d{9,})\.([a-z0-9]+(?:\.[a-z0-9]+)?)$")


class ShardFormatError(ValueError):
    """A shard does not have the documented structure."""


def shard_name(i: int) -> str:
    return f"shard-{i:06d}.tar"


class ShardWriter:
    """Write one shard: ``add(name, bytes)`` per member, then ``commit()`` (or ``abort()``).

    The tar stream is written directly (512-byte ustar header from ``tarfile.TarInfo.tobuf``, the data, zero
    padding; two zero blocks and padding to a 10240-byte record at the end): byte for byte what
    ``tarfile.open(mode="w|", format=USTAR_FORMAT)`` writes, without its 16 kB copy loop, hashed as it goes.

    >>> w = ShardWriter("out/shard-000000.tar"); w.add("000000000.hr.png", data); size, sha = w.commit()
    """

    def __init__(self, path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}{TMP_SUFFIX}-{os.getpid()}")
        self._f = open(self.tmp, "wb", buffering=1 << 20)
        self._h = hashlib.sha256()
        self._n = 0

    def _write(self, b: bytes) -> None:
        self._f.write(b)
        self._h.update(b)
        self._n += len(b)

    def add(self, name: str, data: bytes) -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = len(data), 0, 0o644, 0, 0, "", ""
        ti.type = tarfile.REGTYPE
        self._write(ti.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
        self._write(data)
        rem = len(data) % tarfile.BLOCKSIZE
        if rem:
            self._write(tarfile.NUL * (tarfile.BLOCKSIZE - rem))

    def commit(self) -> tuple[int, str]:
        """Finish the tar, fsync and rename to the final name. Returns (bytes, sha256 hex)."""
        self._write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
        rem = self._n % tarfile.RECORDSIZE
        if rem:
            self._write(tarfile.NUL * (tarfile.RECORDSIZE - rem))
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp, self.path)
        try:  # make the rename durable too (a crash right after must not lose the shard)
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
            pass
        return self._n, self._h.hexdigest()

    def abort(self) -> None:
        """Drop the temporary file (after an error); never raises."""
        try:
            self._f.close()
        except Exception:
            pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def _regular(path) -> str | None:
    """None for a regular file, else why not (a FIFO named shard-*.tar would block tarfile.open forever)."""
    import stat

    from ..fsutil import file_kind

    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return e.strerror or str(e)
    return None if stat.S_ISREG(mode) else f"not a regular file ({file_kind(mode)})"


def file_sha256(path, bufsize: int = 1 << 20) -> tuple[int, str]:
    """(size, sha256 hex) of a regular file, streamed (NotRegularFile for anything else)."""
    from ..fsutil import NotRegularFile

    why = _regular(path)
    if why is not None and why.startswith("not a regular"):
        raise NotRegularFile(22, why, str(path))
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                break
            h.update(b)
            n += len(b)
    return n, h.hexdigest()


def iter_samples(path):
    """Yield ``(key, {ext: bytes})`` for each sample of a shard, in order. Raises ShardFormatError."""
    why = _regular(path)
    if why is not None and why.startswith("not a regular"):
        raise ShardFormatError(f"{path}: {why}")
    key, fields = None, {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for m in tar:
                if not m.isreg():
                    raise ShardFormatError(f"{path}: member {m.name!r} is not a regular file")
                mm = _MEMBER_RE.match(m.name)
                if not mm:
                    raise ShardFormatError(f"{path}: member name {m.name!r} is not KEY.EXT with a 9-digit key")
                k, ext = mm.group(1), mm.group(2)
                if k != key:
                    if key is not None:
                        yield key, fields
                    key, fields = k, {}
                if ext in fields:
                    raise ShardFormatError(f"{path}: member {m.name!r} appears twice")
                f = tar.extractfile(m)
                fields[ext] = f.read()
            if key is not None:
                yield key, fields
    except tarfile.TarError as e:
        raise ShardFormatError(f"{path}: not a valid tar file: {e}") from None


def verify_shard(path, *, sha256: str | None = None, samples: int | None = None, variants: int | None = None,
                 first_index: int | None = None) -> list[str]:
    """Check a shard's sha256 and structure; returns a list of one-line problems (empty when fine).

    Structure: member headers are the fixed reproducible ones; each sample has ``hr.*``, ``json`` and
    ``lr0..lr{variants-1}.*`` in sorted order, consecutive keys from ``first_index``.
    """
    problems = []
    why = _regular(path)
    if why is not None:
        return [f"{path}: {why}"] if why.startswith("not a regular") else [f"{path}: cannot read: {why}"]
    if sha256 is not None:
        _, got = file_sha256(path)
        if got != sha256:
            problems.append(f"{path}: sha256 {got} differs from the manifest's {sha256}")
    try:
        with tarfile.open(path, mode="r:") as tar:
            names = []
            for m in tar:
                if (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) != (0, 0, 0, "", "", 0o644):
                    problems.append(f"{path}: member {m.name!r} has non-reproducible header fields")
                    break
                names.append(m.name)
        keys = []
        for k, fields in iter_samples(path):
            keys.append(k)
            exts = list(fields)
            if exts != sorted(exts):
                problems.append(f"{path}: sample {k}: members not in sorted order {exts}")
            if "json" not in fields or not any(e.startswith("hr.") for e in exts):
                problems.append(f"{path}: sample {k}: missing hr or json member ({exts})")
            if variants is not None:
                lrs = sorted(e.split(".")[0] for e in exts if e.startswith("lr"))
                want = sorted(f"lr{i}" for i in range(variants))
                if lrs != want:
                    problems.append(f"{path}: sample {k}: LR members {lrs} != {want}")
        if len(keys) != len(set(keys)):
            problems.append(f"{path}: a key appears in two places")
        if samples is not None and len(keys) != samples:
            problems.append(f"{path}: {len(keys)} samples, the manifest says {samples}")
        if first_index is not None and keys and [int(k) for k in keys] != list(range(first_index,
                                                                                    first_index + len(keys))):
            problems.append(f"{path}: keys are not the consecutive range starting at {first_index:09d}")
    except ShardFormatError as e:
        problems.append(str(e))
    except (tarfile.TarError, OSError) as e:
        problems.append(f"{path}: cannot read: {e}")
    return problems
