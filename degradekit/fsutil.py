"""File writing that never leaves a half-written file under the final name, and reading that never blocks."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "read_regular", "NotRegularFile", "file_kind"]


def fsync_dir(folder) -> None:
    """fsync a folder so that a rename inside it survives a power loss (ignored where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def atomic_write(path, data: bytes | str, *, mkdir: bool = False, durable: bool = True) -> None:
    """Write `data` (str: UTF-8) to `path` through a temporary name in the same folder, then rename.

    The data are fsynced before the rename and the folder after it: after a crash or power loss `path` is
    either the old file or the complete new one. A failure (full disk, interrupt) removes the temporary file
    and leaves any previous `path` untouched. The file gets the usual mode (0666 & ~umask).
    mkdir: create the parent folder first. durable=False: no fsync (caches and notes that may be lost in a
    power cut: still never half-written under the final name after a crash of the process).
    """
    p = Path(path)
    if mkdir:
        p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(p.parent)


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket or a folder: never read (a FIFO would block, /dev/zero never ends)."""


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file. Raises :class:`NotRegularFile` for anything else, without blocking.

    Opened with O_NONBLOCK (a FIFO with no writer opens at once instead of waiting) and checked with fstat on
    the open descriptor (no window between the check and the read). max_bytes: refuse larger files (EFBIG).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file ({file_kind(st.st_mode)})", os.fspath(path))
        if max_bytes is not None and st.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"file is larger than {max_bytes} bytes", os.fspath(path))
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            return f.read()
    finally:
        if fd >= 0:
            os.close(fd)
