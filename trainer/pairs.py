"""Paired training data that other tools write: an HR and an LR folder of images (paired by file stem, as
BasicSR's paired folder mode, traiNNer-redux and neosr pair them) or BasicSR's LMDB layout (``X.lmdb/`` with
``data.mdb``, ``lock.mdb`` and ``meta_info.txt`` lines ``KEY.png (h,w,c) level``), optionally narrowed by a
meta_info file. ``degradekit export`` writes both forms.

``PairSource.open`` validates everything it can without decoding (partners, image sizes from the headers or the
LMDB meta_info, one integer scale for all pairs); ``PairDataset`` streams the pairs exactly as ``ShardDataset``
streams one-sample shards (same epoch order, worker/rank split, shuffle buffer, crops, augmentation seeding and
DataPosition), so a shard set of one-sample shards and its export give the same batches.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from trainer.data import ShardDataset, ShardError, _not_regular, _one_line, open_regular

__all__ = ["PairError", "PairSource", "PairDataset", "iter_val_pairs_from", "IMAGE_EXTS"]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
_LMDB_LINE = re.compile(r"^(\S+)(?:\s+\((\d+),\s*(\d+),\s*(\d+)\))?")


class PairError(ShardError):
    """Paired data that cannot be used; ``str(e)`` is one line naming both files (or the one file) and the
    problem. A ShardError (so the trainer reports it the same way), hence a ValueError."""


def _warn_stderr(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


class _Folder:
    """One side as a folder of image files (non-recursive). Refs are file paths (str)."""

    kind = "folders"

    def __init__(self, root: Path, warn: Callable[[str], None]):
        self.root, self.warn = root, warn
        self._by_stem: dict[str, list[str]] | None = None

    def __getstate__(self):
        return {**self.__dict__, "warn": None}

    @property
    def by_stem(self) -> dict[str, list[str]]:
        """stem -> image paths of the folder (scanned once, only when pairing by stem)."""
        if self._by_stem is None:
            try:
                entries = sorted(os.scandir(self.root), key=lambda e: e.name)
            except OSError as e:
                raise PairError(f"{self.root}: cannot list ({e.strerror})") from None
            self._by_stem = {}
            for e in entries:
                if os.path.splitext(e.name)[1].lower() not in IMAGE_EXTS:
                    continue
                why = _not_regular(e.path)
                if why is not None:
                    self.warn(f"{e.path}: {why}: skipped")
                    continue
                self._by_stem.setdefault(os.path.splitext(e.name)[0], []).append(e.path)
        return self._by_stem

    def label(self, ref: str) -> str:
        return ref

    def read(self, ref: str) -> bytes:
        try:
            with open_regular(ref) as f:
                return f.read()
        except OSError as e:
            raise PairError(f"{ref}: cannot read ({e.strerror})") from None
        except ValueError as e:
            raise PairError(f"{ref}: {e}") from None

    def resolve(self, name: str, meta_dir: Path | None) -> str | None:
        """A meta_info name: under this root (Real-ESRGAN joins it with dataroot_gt/lq), else relative to the
        meta_info file's folder, else to this root's parent (an export's ``hr/KEY.png``)."""
        for base in (self.root, meta_dir, self.root.parent):
            if base is not None and (base / name).exists():
                return str(base / name)
        return None

    def size(self, ref: str) -> tuple[int, int]:
        """(h, w) from the file header (no decode)."""
        from PIL import Image
        why = _not_regular(ref)
        if why is not None:
            raise PairError(f"{ref}: {why}")
        try:                               # only the formats we read: no plugin that could call out (EPS)
            with Image.open(ref, formats=_PIL_FORMATS) as im:
                w, h = im.size
        except Exception as e:  # noqa: BLE001 - any reader failure is "cannot read"
            raise PairError(f"{ref}: cannot read the image header ({_one_line(e)})") from None
        return h, w


class _Lmdb:
    """One side as a BasicSR LMDB folder. Refs are LMDB keys (str); the environment is opened per process."""

    kind = "lmdb"

    def __init__(self, root: Path):
        self.root = root
        meta = root / "meta_info.txt"
        self.shapes: dict[str, tuple[int, int] | None] = {}
        self.names: dict[str, str] = {}
        try:
            text = meta.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise PairError(f"{meta}: cannot read the LMDB meta_info ({getattr(e, 'strerror', None) or e})") from None
        for ln, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            m = _LMDB_LINE.match(line.strip())
            name = m.group(1)
            key = name.split(".")[0]          # BasicSR: key = line.split('.')[0]
            if key in self.names:
                raise PairError(f"{meta}: line {ln}: key {key!r} appears twice")
            self.names[key] = name
            self.shapes[key] = (int(m.group(2)), int(m.group(3))) if m.group(2) else None
        _lmdb_env(self.root)                  # fail now (missing package, damaged data.mdb), not in a worker

    def _txn(self):
        return _lmdb_env(self.root).begin(write=False, buffers=False)

    def label(self, ref: str) -> str:
        return str(self.root / self.names.get(ref, ref))

    def read(self, ref: str) -> bytes:
        with self._txn() as txn:
            v = txn.get(ref.encode("ascii", "replace"))
        if v is None:
            raise PairError(f"{self.label(ref)}: key {ref!r} not in {self.root}/data.mdb")
        return bytes(v)

    def size(self, ref: str) -> tuple[int, int]:
        s = self.shapes.get(ref)
        if s is not None:
            return s
        from PIL import Image
        import io
        try:
            with Image.open(io.BytesIO(self.read(ref)), formats=_PIL_FORMATS) as im:
                w, h = im.size
        except PairError:
            raise
        except Exception as e:  # noqa: BLE001
            raise PairError(f"{self.label(ref)}: cannot read the image header ({_one_line(e)})") from None
        return h, w


_ENVS: dict[str, tuple[int, object]] = {}    # realpath -> (pid, read-only environment) of this process


def _lmdb_env(root: Path):
    """One read-only environment per LMDB folder and process (py-lmdb refuses a second open in a process; an
    environment inherited through fork is closed and reopened, as LMDB wants one per process)."""
    path = os.path.realpath(root)
    pid, env = _ENVS.get(path, (None, None))
    if env is not None and pid == os.getpid():
        return env
    try:
        import lmdb
    except ImportError:
        raise PairError(f"{root}: reading LMDB needs the lmdb package: pip install 'degradekit[lmdb]'") from None
    if env is not None:
        try:
            env.close()
        except lmdb.Error:
            pass
    try:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False, subdir=True)
    except lmdb.Error as e:
        raise PairError(f"{root}: cannot open the LMDB ({_one_line(e)})") from None
    _ENVS[path] = (os.getpid(), env)
    return env


def _side(path, warn) -> _Folder | _Lmdb:
    p = Path(path)
    if not p.exists():
        raise PairError(f"{p}: not found")
    if not p.is_dir():
        raise PairError(f"{p}: not a folder (give a folder of images or an LMDB folder)")
    return _Lmdb(p) if (p / "data.mdb").is_file() else _Folder(p, warn)


def _scale_of(hr_hw, lr_hw) -> int | None:
    """The integer s with HR // s == LR in both directions (HR rows/cols beyond LR * s are cropped)."""
    (H, W), (h, w) = hr_hw, lr_hw
    if h < 1 or w < 1 or H < h:
        return None
    s = H // h
    return s if W // s == w and H // s == h else None


class PairSource:
    """Validated HR/LR pairs. ``keys`` (sorted), ``scale`` (int), ``len()``; ``names(i)`` -> (hr, lr) labels;
    ``load(i)`` -> (hr uint8 (H, W, 3) cropped to LR * scale, lr uint8 (h, w, 3)) RGB."""

    def __init__(self, hr_side, lr_side, pairs: list[tuple[str, str, str]], scale: int):
        self.hr_side, self.lr_side = hr_side, lr_side
        self._pairs = pairs
        self.keys = tuple(k for k, _, _ in pairs)
        self.scale = scale
        kinds = {hr_side.kind, lr_side.kind}
        self.kind = kinds.pop() if len(kinds) == 1 else "mixed"

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"PairSource({self.hr_side.root}, {self.lr_side.root}: {len(self)} pairs x{self.scale}, {self.kind})"

    def names(self, i: int) -> tuple[str, str]:
        _, h, l = self._pairs[i]
        return self.hr_side.label(h), self.lr_side.label(l)

    @classmethod
    def open(cls, hr, lr, *, meta_info=None, warn: Callable[[str], None] | None = None) -> "PairSource":
        """Pair HR with LR (each a folder of images or a BasicSR LMDB folder) and validate; PairError if a
        partner is missing, a size gives no integer scale, or the scale differs between pairs."""
        warn = warn or _warn_stderr
        hs, ls = _side(hr, warn), _side(lr, warn)
        pairs = _pairs_from_meta(hs, ls, Path(meta_info), warn) if meta_info is not None else _pairs_by_stem(hs, ls)
        if not pairs:
            raise PairError(f"{hs.root} and {ls.root}: no image pairs")
        scale = first = None
        for key, h, l in pairs:
            hn, ln_ = hs.label(h), ls.label(l)
            try:
                hh = hs.size(h)
                lw = ls.size(l)
            except PairError as e:         # name the partner too
                raise PairError(f"{e} (pair {hn} / {ln_})") from None
            s = _scale_of(hh, lw)
            if s is None:
                raise PairError(f"{hn} ({hh[1]}x{hh[0]}) and {ln_} ({lw[1]}x{lw[0]}): sizes give no integer scale")
            if scale is None:
                scale, first = s, (hn, ln_)
            elif s != scale:
                raise PairError(f"{hn} ({hh[1]}x{hh[0]}) and {ln_} ({lw[1]}x{lw[0]}): scale {s}, but {first[0]} "
                                f"and {first[1]} are x{scale}")
        return cls(hs, ls, pairs, scale)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Decode pair i (checked against the scale); PairError naming both files."""
        _, h, l = self._pairs[i]
        hn, ln_ = self.hr_side.label(h), self.lr_side.label(l)
        hr = _decode(self.hr_side.read(h), hn)
        lr = _decode(self.lr_side.read(l), ln_)
        s = self.scale
        if hr.shape[0] // s != lr.shape[0] or hr.shape[1] // s != lr.shape[1]:
            raise PairError(f"{hn} ({hr.shape[1]}x{hr.shape[0]}) and {ln_} ({lr.shape[1]}x{lr.shape[0]}): "
                            f"do not match scale {s}")
        return hr[: lr.shape[0] * s, : lr.shape[1] * s], lr


def _decode(data: bytes, name: str) -> np.ndarray:
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:                  # OpenCV raises (rather than returning None) for some malformed headers
        img = None
    if img is None:
        raise PairError(f"{name}: cannot decode image")
    return np.ascontiguousarray(img[..., ::-1])


def _pairs_by_stem(hs, ls) -> list[tuple[str, str, str]]:
    if isinstance(hs, _Lmdb):
        hr_keys = {k: k for k in hs.names}
    else:
        hr_keys = {}
        for stem, paths in hs.by_stem.items():
            if len(paths) > 1:
                raise PairError(f"{paths[0]} and {paths[1]}: two HR images with the stem {stem!r}")
            hr_keys[stem] = paths[0]
    lr_stems = set(ls.names) if isinstance(ls, _Lmdb) else set(ls.by_stem)
    pairs = []
    for key in sorted(hr_keys):
        h = hr_keys[key]
        if isinstance(ls, _Lmdb):
            if key not in ls.names:
                raise PairError(f"{hs.label(h)}: no LR partner {ls.root / (key + '.png')} (not in its meta_info.txt)")
            l = key
        else:
            cands = ls.by_stem.get(key, [])
            ext = os.path.splitext(h)[1].lower() if isinstance(hs, _Folder) else ".png"
            same = [c for c in cands if os.path.splitext(c)[1].lower() == ext]
            if not cands:
                raise PairError(f"{hs.label(h)}: no LR partner {ls.root / key}.* (pairing by file stem)")
            if len(same) == 1:
                l = same[0]
            elif len(cands) == 1:
                l = cands[0]
            else:
                raise PairError(f"{hs.label(h)}: LR partner is ambiguous: {cands[0]} and {cands[1]}")
        pairs.append((key, h, l))
    extra = sorted(lr_stems - set(hr_keys))
    if extra:
        k = extra[0]
        lname = ls.label(k) if isinstance(ls, _Lmdb) else ls.by_stem[k][0]
        raise PairError(f"{lname}: no HR partner {hs.root / k}.* ({len(extra)} LR image(s) without one)")
    return pairs


def _pairs_from_meta(hs, ls, meta: Path, warn) -> list[tuple[str, str, str]]:
    """meta_info lines: ``A, B`` (Real-ESRGAN paired) or ``NAME ...`` (BasicSR, first token on both sides)."""
    try:
        lines = meta.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PairError(f"{meta}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    pairs, seen = [], {}
    for ln, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if ", " in line:
            a, b = (x.strip() for x in line.split(", ", 1))
        else:
            a = b = line.split(" ")[0]
        refs = []
        for side, name in ((hs, a), (ls, b)):
            if isinstance(side, _Lmdb):
                k = os.path.basename(name).split(".")[0]
                refs.append(k if k in side.names else None)
            else:
                refs.append(side.resolve(name, meta.parent))
        key = os.path.splitext(os.path.basename(a))[0]
        hl = hs.label(refs[0]) if refs[0] else str(hs.root / a)
        ll = ls.label(refs[1]) if refs[1] else str(ls.root / b)
        if refs[0] is None or refs[1] is None:
            missing = hl if refs[0] is None else ll
            raise PairError(f"{hl} and {ll}: {missing} not found ({meta}, line {ln})")
        odd = [(r, why) for side, r in zip((hs, ls), refs) if isinstance(side, _Folder)
               and (why := _not_regular(r)) is not None]
        if odd:
            warn(f"{odd[0][0]}: {odd[0][1]}: pair skipped ({meta}, line {ln})")
            continue
        if key in seen:
            raise PairError(f"{hl} and {seen[key]}: two pairs with the key {key!r} ({meta}, line {ln})")
        seen[key] = hl
        pairs.append((key, refs[0], refs[1]))
    return sorted(pairs)


class PairDataset(ShardDataset):
    """ShardDataset's stream over a PairSource, every pair a one-sample shard: epoch order
    ``default_rng([seed, e]).permutation(len)``, split ``order[g::ranks*workers]``, the same shuffle buffer, crops,
    augmentation seeding (``default_rng([seed, e, key_seed(key)])``) and DataPosition. Same keyword arguments and
    the same yielded dicts (``skipped``/``skip_msg`` included: an undecodable or mismatched pair is skipped)."""

    _unit_name = "pair"

    def __init__(self, source: PairSource, **kw) -> None:
        if kw.get("scale") is not None and kw["scale"] != source.scale:
            hn, ln_ = source.names(0)
            raise PairError(f"{hn} and {ln_}: pairs are x{source.scale}, the training scale is {kw['scale']}")
        super().__init__(list(range(len(source))), **kw)
        self.source = source

    def _iter_unit(self, i: int) -> Iterator[dict]:
        # bytes are read at decode time: the shuffle buffer holds references, and resume skips never read
        yield {"__key__": self.source.keys[i], "__url__": self.source.names(i)[0], "__pair__": i}

    def _decode(self, raw: dict, rng: np.random.Generator):
        rng.integers(1)     # ShardDataset draws the LR variant first; one variant here (draws nothing)
        hr, lr = self.source.load(raw["__pair__"])
        return hr, lr, self.source.scale


def iter_val_pairs_from(source: PairSource, limit: int | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray,
                                                                                         int]]:
    """Held-out pairs in key order: (key, hr uint8, lr uint8, scale), at most ``limit`` -- the tuples of
    ``trainer.data.iter_val_pairs``."""
    for i, key in enumerate(source.keys):
        if limit is not None and i >= limit:
            return
        hr, lr = source.load(i)
        yield key, hr, lr, source.scale
