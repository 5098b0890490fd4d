"""File writing that never leaves a half-written file under the final name."""
from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path, data: bytes | str, *, mkdir: bool = False) -> None:
    """Write `data` (str: UTF-8) to `path` through a temporary name in the same folder, then rename.

    A failure (full disk, interrupt) removes the temporary file and leaves any previous `path` untouched.
    mkdir: create the parent folder first.
    """
    p = Path(path)
    if mkdir:
        p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
