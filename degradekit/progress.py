"""Progress reporting for long work: a tqdm bar (rate, ETA) on a terminal, plain lines otherwise (CI logs, pipes)."""
from __future__ import annotations

import sys
import time


def fmt_time(s: float) -> str:
    """Seconds as '1h02m' / '3m07s' ('?' for infinity)."""
    if s == float("inf"):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """Count `total` units of work.

    mode "auto": a tqdm bar when `stream` is a terminal, else a plain line every `every` seconds (and at the end);
    "bar", "lines" or "off" force one. `initial` resumes a count (e.g. bytes already downloaded); `unit_scale`
    shows units with k/M prefixes (bytes). `update(n, note)` adds n units; `note` is shown beside the bar / line.
    """

    def __init__(self, total: int | None, desc: str, *, mode: str = "auto", every: float = 10.0, stream=None,
                 unit: str = "item", initial: int = 0, unit_scale: bool = False):
        self.total, self.desc, self.every, self.unit, self.unit_scale = total, desc, every, unit, unit_scale
        self.n = self.n0 = initial
        self.note = ""
        self.stream = stream or sys.stderr
        self.t0 = self.last = time.monotonic()
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.mode = ("bar" if tty else "lines") if mode == "auto" else mode
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit_scale,
                            unit_divisor=1024 if unit_scale else 1000, file=self.stream, dynamic_ncols=True,
                            smoothing=0.05)

    def update(self, n: int = 1, note: str = "") -> None:
        self.n += n
        self.note = note
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note[:40], refresh=False)
            self.bar.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self.last >= self.every or (self.total is not None and self.n >= self.total):
                self.last = now
                print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        """The plain progress line: done/total, percent, rate, ETA (and the last note)."""
        dt = max(time.monotonic() - self.t0, 1e-9)
        rate = (self.n - self.n0) / dt
        if self.unit_scale:
            done = f"{self.n / 1e6:.1f}" + (f"/{self.total / 1e6:.1f}" if self.total else "") + f" M{self.unit}"
            speed = f"{rate / 1e6:.2f} M{self.unit}/s"
        else:
            done = f"{self.n}" + (f"/{self.total}" if self.total is not None else "") + f" {self.unit}s"
            speed = f"{rate:.1f} {self.unit}s/s"
        text = f"{self.desc}: {done}"
        if self.total:
            text += f" ({100.0 * self.n / self.total:.0f}%)"
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            text += f", {speed}, ETA {fmt_time(eta)}"
        else:
            text += f", {speed}"
        return text + (f" {self.note}" if self.note else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
