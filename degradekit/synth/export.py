"""`degradekit export`: a shard folder as the paired folders or LMDB that BasicSR, Real-ESRGAN's paired
fine-tuning, traiNNer-redux and neosr read (layouts in docs/design.md, "Data in and out").

Pixels are exact: the shard's own PNG bytes are written (a non-PNG member is decoded and re-encoded as PNG).
Every shard is verified first as ``inspect --verify`` does (sha256 and structure against the manifest); a bad
shard is reported and left out, the others are exported. A killed export rerun with the same options continues
and ends byte-identical to an uninterrupted one: image files are published by rename and kept on a rerun only
when their bytes are the ones to write (the filesystem is synced after each shard); LMDB writes go in key order
with commits at fixed entry counts, so a rerun repeats the same transactions from the last committed one; the
text files are written last.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from ..fsutil import atomic_write
from .manifest import ManifestError, load_manifest
from .shards import SHARD_RE, ShardFormatError, iter_samples, verify_shard

__all__ = ["ExportError", "export", "find_exported", "FORMAT", "LMDB_COMMIT_EVERY"]

FORMAT = "degradekit-export/1"
LMDB_COMMIT_EVERY = 256        # entries per LMDB transaction (fixed: a resumed export repeats the same commits)
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


class ExportError(ValueError):
    """The export cannot start or continue; ``str(e)`` is one line naming the file and the problem."""


def _png_shape(data: bytes) -> tuple[int, int, int]:
    """(h, w, c) from a PNG's IHDR (BasicSR's meta_info shape; c as cv2.IMREAD_UNCHANGED would give)."""
    w, h = struct.unpack(">II", data[16:24])
    return h, w, _CHANNELS.get(data[25], 3)


def _as_png(data: bytes, name: str) -> bytes:
    """The member's bytes when they are PNG already, else the decoded pixels encoded as PNG (lossless WebP)."""
    if data[:8] == _PNG_SIG:
        return data
    from ..imageio import ImageError, decode_image, encode_png
    try:
        return encode_png(decode_image(data, name))
    except ImageError as e:
        raise ShardFormatError(str(e)) from None


def _list_shards(src: Path):
    """(shard paths, manifest or None, problems) -- the shards to export and what verify found wrong."""
    if not src.is_dir():
        raise ExportError(f"{src}: not a shard folder")
    try:
        m = load_manifest(src)
    except ManifestError as e:
        if (src / "manifest.json").exists() or list(src.glob("manifest.part-*-of-*.json")):
            raise ExportError(str(e)) from None
        m = None
    on_disk = sorted(p for p in src.iterdir() if SHARD_RE.match(p.name))
    if m is None:
        if not on_disk:
            raise ExportError(f"{src}: no shard-NNNNNN.tar files (and no manifest.json)")
        return [(p, None) for p in on_disk], None
    listed = {r["name"] for r in m["shards"]}
    extra = [p for p in on_disk if p.name not in listed]
    rows = [(src / r["name"], r) for r in m["shards"]]
    if not rows:
        raise ExportError(f"{m['_path']}: lists no shards")
    return rows + [(p, "unlisted") for p in extra], m


def _verify(path: Path, row, m) -> list[str]:
    """The problems `inspect --verify` reports for this shard."""
    if row == "unlisted":
        return [f"{path}: shard not listed in the manifest"]
    if not path.is_file():
        return [f"{path}: missing"]
    if row is None:
        return verify_shard(path)
    problems = []
    if path.stat().st_size != row["bytes"]:
        problems.append(f"{path}: {path.stat().st_size} bytes, the manifest says {row['bytes']}")
    return problems + verify_shard(path, sha256=row["sha256"], samples=row["samples"], variants=m["variants"],
                                   first_index=row["first"])


def _names(key: str, variants: list[int], all_: bool) -> list[tuple[int, str]]:
    """[(variant, stem)] in LMDB key order."""
    if not all_:
        return [(variants[0], key)]
    return sorted(((v, f"{key}_v{v}") for v in variants), key=lambda t: t[1])


def _syncfs(folder: Path) -> None:
    """Flush the filesystem holding ``folder`` (Linux syncfs: one call per shard instead of an fsync per image
    and per rename); os.sync elsewhere."""
    try:
        import ctypes
        fd = os.open(folder, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def _publish(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` afterwards: kept when it already does (a resumed export; compared byte for byte,
    so a file a power loss truncated or zeroed is rewritten), else written under a temporary name and renamed.
    Durability comes from the syncfs after each shard, not from an fsync per file."""
    try:
        with open(path, "rb") as f:
            if f.read(len(data) + 1) == data:
                return
    except FileNotFoundError:
        pass
    atomic_write(path, data, durable=False)


class _Folders:
    def __init__(self, out: Path, all_: bool):
        self.out, self.all = out, all_
        for d in ("hr", "lr"):
            (out / d).mkdir(exist_ok=True)

    def add(self, key: str, hr: bytes, lrs: list[tuple[int, str, bytes]]) -> list[str]:
        first = None
        for v, stem, lr in lrs:
            hp, lp = self.out / "hr" / f"{stem}.png", self.out / "lr" / f"{stem}.png"
            if first is None:
                _publish(hp, hr)
                first = hp
            elif not (hp.exists() and os.path.samefile(hp, first)):
                # one HR file for all variants: a hard link where the filesystem has them, else a copy
                tmp = hp.with_name(f"{hp.name}.tmp-{os.getpid()}")
                try:
                    os.link(first, tmp)
                    os.replace(tmp, hp)
                except OSError:
                    try:
                        os.unlink(tmp)
                    except OSError:
                        pass
                    _publish(hp, hr)
            _publish(lp, lr)
        return [f"hr/{stem}.png, lr/{stem}.png" for _, stem, _ in lrs]

    def flush(self) -> None:
        _syncfs(self.out)

    def close(self, ok: bool = True) -> None:
        if ok:
            self.flush()


class _Lmdb:
    """BasicSR-layout LMDB pair, appended in key order. Every transaction of LMDB_COMMIT_EVERY entries opens the
    environment, writes, commits and closes it: LMDB keeps free-page lists in memory between transactions of one
    process, so only a fresh open per transaction makes the page layout a function of what is on disk -- and a
    resumed export write the same data.mdb bytes as an uninterrupted one."""

    def __init__(self, out: Path, map_size: int):
        import lmdb
        self.lmdb, self.map_size = lmdb, map_size
        self.paths = {side: out / f"{side}.lmdb" for side in ("hr", "lr")}
        self.envs, self.txns, self.last, self.count = {}, {}, {}, {}
        for side in self.paths:
            env = self._open(side)
            with env.begin() as txn:
                cur = txn.cursor()
                self.last[side] = bytes(cur.key()) if cur.last() else b""
                self.count[side] = txn.stat()["entries"]
            env.close()
            self.envs[side] = self.txns[side] = None

    def _open(self, side: str):
        return self.lmdb.open(str(self.paths[side]), map_size=self.map_size, subdir=True, meminit=True,
                              readahead=False, max_dbs=0)

    def put(self, side: str, key: str, value: bytes) -> None:
        k = key.encode("ascii")
        if k <= self.last[side]:       # committed by an earlier (killed) run
            return
        if self.txns[side] is None:
            self.envs[side] = self._open(side)
            self.txns[side] = self.envs[side].begin(write=True)
        self.txns[side].put(k, value, append=True)
        self.last[side] = k
        self.count[side] += 1
        if self.count[side] % LMDB_COMMIT_EVERY == 0:
            self._end(side, True)

    def _end(self, side: str, commit: bool) -> None:
        txn, env = self.txns[side], self.envs[side]
        self.txns[side] = self.envs[side] = None
        if txn is not None:
            txn.commit() if commit else txn.abort()
        if env is not None:
            env.close()

    def add(self, key: str, hr: bytes, lrs: list[tuple[int, str, bytes]]) -> list[str]:
        for _, stem, lr in lrs:
            self.put("hr", stem, hr)
            self.put("lr", stem, lr)
        return [stem for _, stem, _ in lrs]

    def flush(self) -> None:
        pass                            # every LMDB commit is synced by LMDB itself

    def close(self, ok: bool = True) -> None:
        for side in self.paths:
            self._end(side, ok)


def _state(src: Path, m, fmt: str, variant) -> dict:
    msha = hashlib.sha256(Path(m["_path"]).read_bytes()).hexdigest() if m else None
    return {"format": FORMAT, "source": str(src.resolve()), "source_manifest_sha256": msha, "layout": fmt,
            "variant": variant}


def _claim(out: Path, state: dict) -> bool:
    """Create OUT for this export, or accept it for a resume of the same one. True when resuming."""
    ej = out / "export.json"
    if ej.exists():
        try:
            old = json.loads(ej.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ExportError(f"{ej}: unreadable ({e}); remove the folder or choose another --out") from None
        if any(old.get(k) != v for k, v in state.items()):
            raise ExportError(f"{out}: holds another export (--format {old.get('layout')} --variant "
                              f"{old.get('variant')} of {old.get('source')}); choose another --out")
        return True
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: exists and is not an export folder; choose an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(ej, json.dumps({**state, "status": "running"}, indent=1, sort_keys=True) + "\n")
    return False


def export(src, out, *, fmt: str = "folders", variant: int | str = 0, progress=None, log=None) -> dict:
    """Export the shard folder SRC into OUT (``fmt`` "folders" or "lmdb", ``variant`` an LR index or "all").

    ``progress``: an object with ``update(n, note)`` (degradekit.progress.Progress); ``log(line)`` gets one
    line per bad shard. Returns {"out", "samples", "pairs", "problems": [...], "resumed"}. Raises ExportError
    (one line) for bad options or an unusable SRC/OUT, before anything is written.
    """
    src, out = Path(src), Path(out)
    if fmt not in ("folders", "lmdb"):
        raise ExportError(f"--format {fmt!r}: choose folders or lmdb")
    if fmt == "lmdb":
        try:
            import lmdb  # noqa: F401
        except ImportError:
            raise ExportError("--format lmdb needs the lmdb package: pip install 'degradekit[lmdb]'") from None
    all_ = variant == "all"
    if not all_ and (not isinstance(variant, int) or variant < 0):
        raise ExportError(f"--variant {variant!r}: give an LR index (0, 1, ...) or all")
    rows, m = _list_shards(src)
    n_var = m["variants"] if m else None
    if n_var is None:                  # no manifest: the first readable sample tells
        for p, _ in rows:
            try:
                _, f0 = next(iter_samples(p))
                n_var = sum(1 for e in f0 if e.startswith("lr"))
                break
            except (ShardFormatError, OSError, StopIteration):
                continue
    if not all_ and n_var is not None and variant >= n_var:
        raise ExportError(f"{src}: --variant {variant}, but the samples have {n_var} LR variant(s) (0..{n_var - 1})")
    variants = list(range(n_var or 1)) if all_ else [variant]
    state = _state(src, m, fmt, variant)
    try:
        resumed = _claim(out, state)
    except OSError as e:
        raise ExportError(f"{out}: cannot create ({e.strerror})") from None
    level = m["settings"].get("png_level", 1) if m else 1
    map_size = 0
    if fmt == "lmdb":                  # a fixed bound from the source (the same on a resume), never grown
        nbytes = sum(p.stat().st_size for p, r in rows if p.is_file())
        n = m["n_samples"] if m else nbytes // 4096 + 1
        map_size = nbytes * len(variants) + n * len(variants) * 16384 + (64 << 20)
    problems: list[str] = []
    samples = pairs = 0
    tmp_records = out / f".records.jsonl.tmp-{os.getpid()}"
    tmp_meta = out / f".meta_info.tmp-{os.getpid()}"
    writer = None
    ok = False
    try:
        writer = _Folders(out, all_) if fmt == "folders" else _Lmdb(out, map_size)
        with open(tmp_records, "w", encoding="utf-8") as rec_f, open(tmp_meta, "w", encoding="utf-8") as meta_f:
            for path, row in rows:
                ps = _verify(path, row, m)
                if ps:
                    problems += ps
                    for p in ps:
                        log and log(f"BAD {p}")
                    continue
                for key, fields in iter_samples(path):
                    hr_name = next(e for e in sorted(fields) if e.startswith("hr."))
                    hr = _as_png(fields[hr_name], f"{path}: {key}.{hr_name}")
                    lrs = []
                    for v, stem in _names(key, variants, all_):
                        lr_name = next((e for e in fields if e.split(".")[0] == f"lr{v}"), None)
                        if lr_name is None:
                            raise ExportError(f"{path}: sample {key} has no lr{v}")
                        lrs.append((v, stem, _as_png(fields[lr_name], f"{path}: {key}.{lr_name}")))
                    try:
                        rec = json.loads(fields["json"])
                    except ValueError as e:    # no manifest sha256 vouched for it
                        raise ExportError(f"{path}: sample {key}: JSON record unreadable ({e})") from None
                    lines = writer.add(key, hr, lrs)
                    if fmt == "folders":
                        rec["export"] = {"hr": [f"hr/{s}.png" for _, s, _ in lrs],
                                         "lr": [f"lr/{s}.png" for _, s, _ in lrs], "variants": [v for v, _, _ in lrs]}
                        meta_f.writelines(ln + "\n" for ln in lines)
                    else:
                        rec["export"] = {"hr": [f"hr.lmdb/{s}" for _, s, _ in lrs],
                                         "lr": [f"lr.lmdb/{s}" for _, s, _ in lrs], "variants": [v for v, _, _ in lrs]}
                        for _, s, lr in lrs:
                            h, w, c = _png_shape(hr)
                            lh, lw, lc = _png_shape(lr)
                            meta_f.write(f"{s}.png ({h},{w},{c}) {level}\t{s}.png ({lh},{lw},{lc}) {level}\n")
                    rec_f.write(json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
                    samples += 1
                    pairs += len(lrs)
                    if progress is not None:
                        progress.update(1, key)
                writer.flush()
        writer.close(ok=True)
        writer = None
        ok = True
        _syncfs(out)                    # the temporary text files are on disk before their renames
        if fmt == "folders":
            os.replace(tmp_meta, out / "meta_info.txt")
        else:                           # each LMDB gets its own meta_info.txt (BasicSR layout)
            hr_lines, lr_lines = [], []
            with open(tmp_meta, encoding="utf-8") as f:
                for line in f:
                    a, b = line.rstrip("\n").split("\t")
                    hr_lines.append(a + "\n")
                    lr_lines.append(b + "\n")
            atomic_write(out / "hr.lmdb" / "meta_info.txt", "".join(hr_lines))
            atomic_write(out / "lr.lmdb" / "meta_info.txt", "".join(lr_lines))
            os.unlink(tmp_meta)
        os.replace(tmp_records, out / "records.jsonl")
        if m:
            mp = Path(m["_path"])
            atomic_write(out / mp.name, mp.read_bytes())
        status = "complete" if not problems else "incomplete"
        atomic_write(out / "export.json", json.dumps(
            {**state, "status": status, "samples": samples, "pairs": pairs, "problems": problems},
            indent=1, sort_keys=True) + "\n")
    except OSError as e:
        raise ExportError(f"{e.filename or out}: cannot write ({e.strerror})") from None
    except ShardFormatError as e:     # damage verify_shard did not see (e.g. an undecodable non-PNG member)
        raise ExportError(str(e)) from None
    except Exception as e:
        if type(e).__module__ == "lmdb":
            raise ExportError(f"{out}: LMDB error ({' '.join(str(e).split())})") from None
        raise
    finally:
        if writer is not None:
            writer.close(ok=False)
        if not ok:
            for t in (tmp_records, tmp_meta):
                try:
                    os.unlink(t)
                except OSError:
                    pass
    return {"out": str(out), "samples": samples, "pairs": pairs, "problems": problems, "resumed": resumed,
            "format": fmt, "variant": variant}


def find_exported(folder, key: str):
    """For `degradekit replay` on an export: (path of the stored HR, {"hr.png", "json", "lrV.png", ...}) of
    sample KEY, or None when FOLDER is not an export. Raises ExportError when the sample is not there."""
    folder = Path(folder)
    ej = folder / "export.json"
    if not ej.is_file():
        return None
    try:
        st = json.loads(ej.read_text(encoding="utf-8"))
        rec_line = None
        with open(folder / "records.jsonl", encoding="utf-8") as f:
            for line in f:
                if f'"key":"{key}"' in line and json.loads(line).get("key") == key:
                    rec_line = line
                    break
    except (OSError, ValueError) as e:
        raise ExportError(f"{folder}: cannot read the export records ({getattr(e, 'strerror', None) or e})") from None
    if rec_line is None:
        raise ExportError(f"{folder}/records.jsonl: sample {key} not in this export")
    rec = json.loads(rec_line)
    ex = rec["export"]
    fields = {"json": rec_line.encode()}
    if st.get("layout") == "lmdb":
        import lmdb
        envs = {s: lmdb.open(str(folder / f"{s}.lmdb"), readonly=True, lock=False) for s in ("hr", "lr")}
        try:
            def get(side, name):
                with envs[side].begin() as txn:
                    v = txn.get(name.split("/", 1)[1].encode("ascii"))
                if v is None:
                    raise ExportError(f"{folder / name}: not in {side}.lmdb")
                return bytes(v)
            fields["hr.png"] = get("hr", ex["hr"][0])
            for v, name in zip(ex["variants"], ex["lr"]):
                fields[f"lr{v}.png"] = get("lr", name)
        finally:
            for e in envs.values():
                e.close()
        return folder / ex["hr"][0], fields
    try:
        fields["hr.png"] = (folder / ex["hr"][0]).read_bytes()
        for v, name in zip(ex["variants"], ex["lr"]):
            fields[f"lr{v}.png"] = (folder / name).read_bytes()
    except OSError as e:
        raise ExportError(f"{e.filename}: cannot read ({e.strerror})") from None
    return folder / ex["hr"][0], fields
