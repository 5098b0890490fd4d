"""degradekit.progress: plain lines off a terminal (what CI logs and pipes see)."""
import io

from degradekit.progress import Progress, fmt_time


def test_plain_lines_with_rate_eta_and_final_line():
    out = io.StringIO()
    p = Progress(10, "synth", unit="pair", stream=out, every=3600)
    for _ in range(9):
        p.update(1)
    assert out.getvalue() == ""              # throttled: nothing before `every` seconds...
    p.update(1, "last.png")
    line = out.getvalue().strip()            # ...but the final count is always printed
    assert line.startswith("synth: 10/10 pairs (100%), ") and "pairs/s, ETA 0m00s" in line
    assert line.endswith("last.png")
    p.close()


def test_bytes_and_resume_and_off():
    out = io.StringIO()
    p = Progress(4_000_000, "DIV2K", unit="B", unit_scale=True, initial=1_000_000, stream=out, every=0)
    p.update(1_000_000)
    assert out.getvalue().startswith("DIV2K: 2.0/4.0 MB (50%), ")
    quiet = io.StringIO()
    q = Progress(5, "x", mode="off", stream=quiet)
    q.update(5)
    assert quiet.getvalue() == ""


def test_fmt_time():
    assert fmt_time(0) == "0m00s" and fmt_time(187) == "3m07s" and fmt_time(3720) == "1h02m"
    assert fmt_time(float("inf")) == "?"


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    import os

    import pytest

    from degradekit.fsutil import atomic_write

    p = tmp_path / "sub" / "m.json"
    atomic_write(p, "old", mkdir=True)
    assert p.read_text() == "old"

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(p, b"new")
    assert p.read_text() == "old" and sorted(x.name for x in p.parent.iterdir()) == ["m.json"]
