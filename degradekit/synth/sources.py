"""Where the HR photos come from: `--src` resolution.

`--src` is one of
- ``sample``: the colour photos bundled with scikit-image (no download needed);
- a named dataset (``DF2K``, ``DIV2K``, ``Flickr2K``, ``OST``), looked up under the data root;
- a directory (scanned recursively for .png .jpg .jpeg .webp .tif .tiff .bmp, any case);
- a glob (``'photos/**/*.jpg'``, recursive ``**`` allowed);
- a text file listing image paths, one per line (relative paths are relative to the list file; blank lines
  and lines starting with ``#`` are ignored).

The result is sorted by the path relative to a root (the directory, the data root, or the common parent), so
the sample list -- and therefore every shard -- is the same on every machine that has the same files,
wherever they are mounted.
"""
from __future__ import annotations

import glob as _glob
import os
from dataclasses import dataclass
from pathlib import Path

from ..imageio import IMAGE_EXTENSIONS

__all__ = ["SourceError", "SourceSet", "DATASETS", "SAMPLE_PHOTOS", "data_root", "resolve_sources",
           "DEFAULT_DATA_ROOT", "dataset_dirs"]

#: Default data root when neither --data-root nor $DEGRADEKIT_DATA is set.
DEFAULT_DATA_ROOT = Path("~/.cache/degradekit/data")

#: Colour photos shipped inside scikit-image's data folder (plus `camera`, a gray photo).
SAMPLE_PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg",
                 "motorcycle_left.png", "motorcycle_right.png", "rocket.jpg")

#: Named datasets: name -> folders (relative to the data root) whose images (recursive) form the set.
#: `degradekit data fetch NAME` creates exactly these folders (see degradekit.synth.fetch.ARCHIVES).
DATASETS: dict[str, tuple[str, ...]] = {
    "DIV2K": ("DIV2K/DIV2K_train_HR",),
    "Flickr2K": ("Flickr2K/Flickr2K_HR",),
    "OST": ("OST/OutdoorSceneTrain_v2",),
    "DF2K": ("DIV2K/DIV2K_train_HR", "Flickr2K/Flickr2K_HR"),
}
# The archive that fills each folder (for error messages; the URLs live in fetch.ARCHIVES).
_FOLDER_ARCHIVE = {"DIV2K/DIV2K_train_HR": "DIV2K", "Flickr2K/Flickr2K_HR": "Flickr2K",
                   "OST/OutdoorSceneTrain_v2": "OST"}


class SourceError(ValueError):
    """`--src` cannot be resolved (one line, names what was looked at)."""


@dataclass(frozen=True)
class SourceSet:
    """Resolved sources. ``files[i]`` is absolute; ``rels[i]`` is its path relative to ``root`` (POSIX)."""
    spec: str
    root: Path
    files: tuple[Path, ...]
    rels: tuple[str, ...]


def data_root(value=None) -> Path:
    """The data root: ``value`` (``--data-root``), else ``$DEGRADEKIT_DATA``, else ``~/.cache/degradekit/data``."""
    v = value or os.environ.get("DEGRADEKIT_DATA") or DEFAULT_DATA_ROOT
    return Path(v).expanduser().resolve()


def dataset_dirs(name: str, root: Path) -> list[Path]:
    return [root / d for d in DATASETS[name]]


def _is_image(p: str) -> bool:
    return os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS


def _scan_dir(d: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(d):
        dirnames[:] = sorted(x for x in dirnames if not x.startswith("."))
        out.extend(Path(dirpath) / f for f in filenames if _is_image(f) and not f.startswith("."))
    return out


def _dataset_name(spec: str) -> str | None:
    for name in DATASETS:
        if spec.lower() == name.lower():
            return name
    return None


def _finish(spec: str, root: Path, files: list[Path]) -> SourceSet:
    root = root.resolve()
    files = [Path(os.path.abspath(f)) for f in files]
    pairs = []
    for f in dict.fromkeys(files):
        try:
            rel = f.relative_to(root).as_posix()
        except ValueError:
            rel = f.as_posix()
        pairs.append((rel, f))
    pairs.sort(key=lambda t: t[0])
    # One photo reached by two names (a symlink, a loop, a list naming it twice) is used once: the first by
    # relative path. Missing files stay (reported as skipped inputs).
    seen, kept = set(), []
    for rel, f in pairs:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            kept.append((rel, f))
    return SourceSet(spec, root, tuple(f for _, f in kept), tuple(r for r, _ in kept))


def resolve_sources(spec: str, *, data_root_value=None) -> SourceSet:
    """Resolve ``--src`` into a sorted :class:`SourceSet`. Raises :class:`SourceError` (one line)."""
    spec = str(spec)
    if spec == "sample":
        import skimage

        root = Path(skimage.__file__).parent / "data"
        files = [root / f for f in SAMPLE_PHOTOS if (root / f).is_file()]
        if not files:
            raise SourceError(f"sample: scikit-image's photos are missing from {root}")
        return _finish(spec, root, files)
    name = _dataset_name(spec)
    if name is not None and not os.path.exists(spec):
        root = data_root(data_root_value)
        files, missing = [], []
        for d in dataset_dirs(name, root):
            found = _scan_dir(d) if d.is_dir() else []
            if not found:
                missing.append(d)
            files.extend(found)
        if missing:
            from .fetch import ARCHIVES

            where = "; ".join(f"{a}: {ARCHIVES[a].url}" for a in
                              dict.fromkeys(_FOLDER_ARCHIVE[str(m.relative_to(root))] for m in missing))
            raise SourceError(
                f"{name}: no images in {', '.join(str(m) for m in missing)} (data root {root}, from --data-root, "
                f"$DEGRADEKIT_DATA or the default {DEFAULT_DATA_ROOT}); run `degradekit data fetch {name}` "
                f"or unpack the official archives there ({where})")
        return _finish(name, root, files)
    p = Path(spec).expanduser()
    if p.is_dir():
        files = _scan_dir(p)
        if not files:
            raise SourceError(f"{p}: no image files (.png .jpg .jpeg .webp .tif .tiff .bmp) in this directory")
        return _finish(spec, p, files)
    if p.is_file():
        if _is_image(p.name):
            return _finish(spec, p.parent, [p])
        return _from_list(spec, p)
    if any(c in spec for c in "*?["):
        matches = _glob_no_loops(os.path.expanduser(spec))
        files = [m for m in matches if m.is_file() and _is_image(m.name)]
        if not files:
            raise SourceError(f"{spec}: the glob matches no image files")
        return _finish(spec, _common_root(files), files)
    known = ", ".join(["sample", *DATASETS])
    raise SourceError(f"{spec}: no such file, directory, glob match or dataset name (datasets: {known})")


def _glob_no_loops(pattern: str) -> list[Path]:
    """glob.glob(pattern, recursive=True), except that ``**`` never descends into a symlinked folder (as the
    folder form, os.walk): a ``loop -> .`` link is not followed, so neither repeats nor blows up."""
    if "**" not in pattern:
        return [Path(m) for m in _glob.glob(pattern, recursive=True)]
    parts = Path(pattern).parts
    k = next(i for i, c in enumerate(parts) if _glob.has_magic(c))
    base = Path(*parts[:k]) if k else Path(".")
    rest = "/".join(parts[k:])
    if parts[-1] == "**":  # glob.glob's trailing "**" also yields files; pathlib's only folders
        rest += "/*"
    if not base.is_dir():
        return []
    out = []
    # pathlib's "**" (Python 3.11) does not follow symlinked folders; glob.glob's does.
    for m in base.glob(rest):
        rel_parts = m.relative_to(base).parts
        # glob.glob skips dot-files for wildcards; keep that (only components the pattern does not spell out).
        if any(c.startswith(".") for c in rel_parts) and not any(c.startswith(".") for c in parts[k:]):
            continue
        out.append(m if k else Path(os.path.normpath(m)))
    return out


def _from_list(spec: str, p: Path) -> SourceSet:
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{p}: cannot read the list of images: {e}") from None
    files = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        q = Path(line).expanduser()
        files.append(q if q.is_absolute() else p.parent / q)
    if not files:
        raise SourceError(f"{p}: the list of images is empty")
    # Listed files that are missing stay in the list: they are reported as skipped inputs, not silently dropped.
    return _finish(spec, _common_root(files), files)


def _common_root(files) -> Path:
    parents = [os.path.abspath(f.parent) for f in files]
    return Path(os.path.commonpath(parents))
