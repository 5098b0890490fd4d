"""`degradekit data fetch`: download the official dataset archives, resume, verify, unpack into the layout.

Layout under the data root (see sources.DATASETS)::

    ROOT/DIV2K/DIV2K_train_HR/0001.png ...        <- DIV2K_train_HR.zip  (DIV2K_train_HR/)
    ROOT/Flickr2K/Flickr2K_HR/000001.png ...      <- Flickr2K.tar         (Flickr2K/Flickr2K_HR/)
    ROOT/OST/OutdoorSceneTrain_v2/<class>/*.png   <- OST_dataset.zip      (OutdoorSceneTrain_v2/)
    ROOT/.downloads/                               archives, *.part partial downloads, checksums.json

Only the HR training images are unpacked (the Flickr2K tar also holds bicubic LR copies; OST's zip its test
set). Downloads resume with HTTP Range requests; a completed archive is checked for its size, tested as an
archive (zip CRCs, tar structure and readable members), and checked against a known sha256 -- the table's,
else the one recorded in ``.downloads/checksums.json`` by the first successful download. URLs can be
overridden for mirrors and tests with ``--url`` or ``$DEGRADEKIT_URL_<NAME>`` (e.g. DEGRADEKIT_URL_DIV2K).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..fsutil import atomic_write
from ..imageio import IMAGE_EXTENSIONS
from ..progress import Progress

__all__ = ["Archive", "ARCHIVES", "DATASET_ARCHIVES", "FetchError", "fetch_dataset", "archive_url"]


@dataclass(frozen=True)
class Archive:
    name: str
    url: str
    filename: str
    kind: str                 # "zip" | "tar"
    folder: str               # the archive folder holding the HR images (found at any depth)
    target: str               # where its images go, relative to the data root
    size: int | None = None   # bytes, when published
    sha256: str | None = None
    page: str = ""            # where the dataset is described
    max_unpacked: int = 64 * 10**9  # bound on the bytes unpacked (about 2x the dataset's known HR size)


#: The one table of official download locations (also printed by `degradekit data list` and in docs/synth.md).
ARCHIVES: dict[str, Archive] = {
    "DIV2K": Archive("DIV2K", "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip", "DIV2K_train_HR.zip",
                     "zip", "DIV2K_train_HR", "DIV2K/DIV2K_train_HR", page="https://data.vision.ee.ethz.ch/cvl/DIV2K/",
                     max_unpacked=8 * 10**9),  # 800 PNGs, 3.5 GB
    "Flickr2K": Archive("Flickr2K", "https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar", "Flickr2K.tar", "tar",
                        "Flickr2K_HR", "Flickr2K/Flickr2K_HR", page="https://github.com/sanghyun-son/EDSR-PyTorch",
                        max_unpacked=32 * 10**9),  # 2650 PNGs, ~13 GB of the 20 GB tar (the rest is LR)
    "OST": Archive("OST", "https://openmmlab.oss-cn-hangzhou.aliyuncs.com/datasets/OST_dataset.zip",
                   "OST_dataset.zip", "zip", "OutdoorSceneTrain_v2", "OST/OutdoorSceneTrain_v2",
                   page="https://github.com/xinntao/SFTGAN#ost-dataset",
                   max_unpacked=16 * 10**9),  # ~10k JPEG/PNG outdoor photos, a few GB
}
#: Named datasets -> the archives that make them.
DATASET_ARCHIVES = {"DIV2K": ("DIV2K",), "Flickr2K": ("Flickr2K",), "OST": ("OST",), "DF2K": ("DIV2K", "Flickr2K")}

_CHUNK = 1 << 20
#: Bound on (bytes unpacked) / (archive bytes): the photos inside are PNG/JPEG, which zip/tar cannot shrink, so
#: a real archive is close to 1; a zip bomb (a 210 kB zip holding 200 MB) is far above.
MAX_RATIO = 4


class FetchError(RuntimeError):
    """Download / verification / unpacking failed (one line; partial downloads are kept for resuming)."""


def archive_url(a: Archive, override: str | None = None) -> str:
    return override or os.environ.get(f"DEGRADEKIT_URL_{a.name.upper()}") or a.url


def _checksums_path(root: Path) -> Path:
    return root / ".downloads" / "checksums.json"


def _load_checksums(root: Path) -> dict:
    try:
        return json.loads(_checksums_path(root).read_text())
    except (OSError, ValueError):
        return {}


def _save_checksum(root: Path, filename: str, size: int, sha: str) -> None:
    d = _load_checksums(root)
    d[filename] = {"bytes": size, "sha256": sha}
    atomic_write(_checksums_path(root), json.dumps(d, indent=1, sort_keys=True))


def download(url: str, dest: Path, *, expected_size: int | None = None, log=None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a partial file with an HTTP Range request."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "degradekit", "Accept-Encoding": "identity"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have and expected_size in (None, have):
            os.replace(part, dest)  # the partial file was already complete
            return dest
        raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise FetchError(f"{url}: cannot connect: {getattr(e, 'reason', e)}") from None
    with resp:
        status = resp.status
        length = resp.headers.get("Content-Length")
        length = int(length) if length is not None else None
        if status == 206 and have:
            cr = resp.headers.get("Content-Range", "")
            try:
                start = int(cr.split()[1].split("-")[0])
                total = cr.split("/")[-1]
                total = int(total) if total != "*" else None
            except (IndexError, ValueError):
                raise FetchError(f"{url}: bad Content-Range {cr!r}") from None
            if start != have:
                raise FetchError(f"{url}: server resumed at byte {start}, expected {have}")
            mode = "ab"
            if log:
                log(f"resuming {dest.name} at {have} bytes")
        else:
            if have and log:
                log(f"{url}: server ignored the range request; downloading {dest.name} from the start")
            have, mode = 0, "wb"
            total = length
        if expected_size is not None and total is not None and total != expected_size:
            raise FetchError(f"{url}: server announces {total} bytes, the archive is {expected_size} bytes")
        bar = Progress(total, dest.name, unit="B", unit_scale=True, initial=have)
        got = have
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        b = resp.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        raise FetchError(f"{url}: download interrupted at {got} of {total or '?'} bytes ({e}); "
                                         f"run the same command again to resume") from None
                    if not b:
                        break
                    f.write(b)
                    got += len(b)
                    bar.update(len(b))
        except OSError as e:  # full disk, quota: what was written is kept for resuming
            raise FetchError(f"{part}: cannot write the download: {e.strerror or e} (the partial file is kept; "
                             f"free some space and run the same command again to resume)") from None
        finally:
            bar.close()
    if total is not None and got != total:
        raise FetchError(f"{url}: download interrupted at {got} of {total} bytes; run the same command again to "
                         f"resume")
    os.replace(part, dest)
    return dest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(_CHUNK), b""):
            h.update(b)
    return h.hexdigest()


def check_archive(path: Path, kind: str) -> None:
    """Raise FetchError unless the archive is complete and readable (zip: every CRC; tar: every member)."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                if bad is not None:
                    raise FetchError(f"{path}: corrupt archive (CRC error in {bad})")
        else:
            with tarfile.open(path, "r:*") as t:
                for m in t:
                    if m.isreg():
                        f = t.extractfile(m)
                        while f.read(_CHUNK):
                            pass
    except FetchError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise FetchError(f"{path}: corrupt or truncated archive: {e}") from None


def _members(path: Path, kind: str):
    """(archive name, declared size, reader) of each regular member."""
    if kind == "zip":
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size, (lambda info=info: z.open(info))
    else:
        with tarfile.open(path, "r:*") as t:
            for m in t:
                if m.isreg():
                    yield m.name, m.size, (lambda m=m: t.extractfile(m))


def _selected(path: Path, a: Archive):
    """(archive name, declared size, reader, relative destination parts) of the members unpack() writes."""
    for name, size, opener in _members(path, a.kind):
        parts = PurePosixPath(name).parts
        if a.folder not in parts:
            continue
        rest = parts[parts.index(a.folder) + 1:]
        if not rest or any(p in ("..", "") or p.startswith("/") for p in rest) or \
                os.path.splitext(rest[-1])[1].lower() not in IMAGE_EXTENSIONS:
            continue  # not an image, or an unsafe path: never written
        yield name, size, opener, rest


def unpack_limit(path: Path, a: Archive) -> int:
    """Most bytes unpack() may write for this archive: MAX_RATIO x its size, at most a.max_unpacked."""
    return min(a.max_unpacked, MAX_RATIO * max(path.stat().st_size, 1))


def _check_unpack_size(path: Path, a: Archive, root: Path) -> int:
    """Declared bytes to unpack; FetchError (naming the member) over the bound or over the free space."""
    limit, total = unpack_limit(path, a), 0
    for name, size, _, _ in _selected(path, a):
        total += size
        if total > limit:
            raise FetchError(f"{path}: member {name}: unpacking would write more than {_size(limit)} "
                             f"({MAX_RATIO}x the archive, at most {_size(a.max_unpacked)} for {a.name}); "
                             f"not a {a.name} archive, or a zip bomb: nothing unpacked")
    free = shutil.disk_usage(root).free
    if total > free:
        raise FetchError(f"{root}: unpacking {path.name} needs {_size(total)}, only {_size(free)} "
                         f"free: nothing unpacked (the archive is kept)")
    return total


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _copy_bounded(src, out, name: str, budget: int) -> int:
    n = 0
    while True:
        b = src.read(_CHUNK)
        if not b:
            return n
        n += len(b)
        if n > budget:
            raise FetchError(f"member {name}: more bytes than its declared size allows within the unpack bound")
        out.write(b)


def unpack(path: Path, a: Archive, root: Path) -> int:
    """Extract the images under the archive's ``a.folder`` (at any depth) into ``root/a.target``; returns count.

    Written into a temporary folder and renamed, so an interrupted unpack leaves no half folder behind.
    """
    target = root / a.target
    tmp = target.with_name(target.name + f".unpacking-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    n = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _check_unpack_size(path, a, target.parent)
        budget = unpack_limit(path, a)  # the bytes really written count too (declared sizes can lie)
        for name, _, opener, rest in _selected(path, a):
            dst = tmp.joinpath(*rest)
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                with opener() as src, open(dst, "wb") as out:
                    budget -= _copy_bounded(src, out, name, budget)
            except FetchError as e:
                raise FetchError(f"{path}: {e}") from None
            except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
                why = getattr(e, "strerror", None) or str(e)
                raise FetchError(f"{path}: member {name}: cannot unpack: {why}") from None
            n += 1
        if n == 0:
            raise FetchError(f"{path}: no images under a {a.folder}/ folder in the archive")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n


def fetch_archive(a: Archive, root: Path, *, url: str | None = None, keep: bool = False, force: bool = False,
                  log=print) -> Path:
    """Download (resuming), verify and unpack one archive into ``root``; returns the image folder."""
    target = root / a.target
    if target.is_dir() and any(target.iterdir()) and not force:
        log(f"{a.name}: {target} already holds the images (use --force to fetch again)")
        return target
    dl = root / ".downloads"
    try:
        dl.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(f"{dl}: cannot create: {e.strerror or e}") from None
    dest = dl / a.filename
    u = archive_url(a, url)
    if not dest.exists():
        log(f"{a.name}: downloading {u}")
        download(u, dest, expected_size=a.size, log=log)
    size = dest.stat().st_size
    if a.size is not None and size != a.size:
        raise FetchError(f"{dest}: {size} bytes, the archive is {a.size} bytes; delete it and fetch again")
    log(f"{a.name}: verifying {dest.name} ({size / 1e6:.1f} MB)")
    sha = _sha256(dest)
    known = a.sha256 or _load_checksums(root).get(a.filename, {}).get("sha256")
    if known is not None and sha != known:
        bad = dest.with_name(dest.name + ".bad")
        os.replace(dest, bad)
        src = "the published" if a.sha256 else f"the one recorded in {_checksums_path(root)} by the first download"
        raise FetchError(f"{dest}: sha256 {sha} differs from {src} ({known}); moved to {bad.name}")
    try:
        check_archive(dest, a.kind)
    except FetchError:
        os.replace(dest, dest.with_name(dest.name + ".bad"))
        raise
    n = unpack(dest, a, root)
    if known is None:  # only an archive that unpacked (not a refused one) becomes the reference
        _save_checksum(root, a.filename, size, sha)
        log(f"{a.name}: recorded sha256 {sha} in {_checksums_path(root)}")
    log(f"{a.name}: {n} images in {target}")
    if not keep:
        dest.unlink()
    return target


def fetch_dataset(name: str, root: Path, *, url: str | None = None, keep: bool = False, force: bool = False,
                  log=print) -> list[Path]:
    """Fetch every archive of a named dataset (DF2K = DIV2K + Flickr2K)."""
    names = DATASET_ARCHIVES[name]
    if url is not None and len(names) > 1:
        raise FetchError(f"{name}: --url needs a single archive (fetch {' and '.join(names)} separately)")
    try:
        return [fetch_archive(ARCHIVES[n], root, url=url, keep=keep, force=force, log=log) for n in names]
    except OSError as e:  # anything not caught closer (a full disk renaming, hashing, recording the checksum)
        raise FetchError(f"{e.filename or root}: {e.strerror or e}") from None
