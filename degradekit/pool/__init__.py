"""Ji et al. (RealSR) kernel and noise pools: build them from real photos, load them, degrade with them.

A pool is a folder (see docs/pools.md, "Pool folder")::

    POOL/pool.json           sources + sha256, settings, counts, kernel/noise lists, rejected items
    POOL/kernels.npz         ids, x2 (N, m, m) [, x4 (N, m, m)], raw (N, 13, 13), outlier (N,)
    POOL/kernels/<id>.json   one quality record per kernel
    POOL/noise/<id>.png      flat patches, RGB uint8

:class:`Pool` implements the engine's pool protocol (docs/design.md): ``kernel_ids(scale)``, ``kernel(id)``,
``noise_ids()``, ``noise(id)``.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["Pool", "PoolError", "POOL_FORMAT", "POOL_VERSION"]

POOL_FORMAT = "degradekit-pool"
POOL_VERSION = 1


class PoolError(ValueError):
    """A pool folder that cannot be used. ``str(e) == "POOL/: problem"`` (one line)."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{_slash(path)}: {problem}")


def _slash(path) -> str:
    s = str(path)
    return s if s.endswith("/") else s + "/"


def _read_png_rgb(path: Path) -> np.ndarray:
    import cv2

    from ..fsutil import read_regular

    data = np.frombuffer(read_regular(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError("not an 8-bit RGB PNG")
    return np.ascontiguousarray(img[..., ::-1])


class Pool:
    """A loaded kernel/noise pool (read-only).

    Kernels: float64 (k, k), k odd, sum 1, centre of mass on the grid centre. Outliers (see the quality
    records) are excluded from :meth:`kernel_ids` unless ``include_outliers=True`` was passed to :meth:`load`.
    Noise: :meth:`noise` returns float32 HxWx3 zero-mean (per channel) noise in [0, 1] units.
    """

    def __init__(self, path: Path, meta: dict, kernels: dict, noise_files: dict, include_outliers: bool):
        self.path = path
        self.meta = meta
        self._kernels = kernels  # scale -> {id: array}
        self._outliers = set(meta.get("kernels", {}).get("outliers", []))  # base ids (all scales)
        self._noise_files = noise_files  # id -> Path
        self._noise_cache: dict[str, np.ndarray] = {}
        self.include_outliers = include_outliers
        self._digest = None

    # ------------------------------------------------------------------ loading and validation
    @classmethod
    def load(cls, path, *, scale: int | None = None, include_outliers: bool = False,
             need_noise: bool = False) -> "Pool":
        """Open and validate a pool folder.

        scale: when given, the pool must have usable kernels for it (2 or 4).
        need_noise: when True, the pool must have noise patches.
        Raises :class:`PoolError` naming the folder and the problem (missing/corrupt files, empty pool, no
        kernels for `scale`) before anything else happens."""
        p = Path(path)
        if not p.exists():
            raise PoolError(p, "no such folder")
        if not p.is_dir():
            raise PoolError(p, "not a folder (a pool is a folder made by `degradekit pool build`)")
        pj = p / "pool.json"
        if not pj.is_file():
            raise PoolError(p, "pool.json missing (not a pool folder, or `pool build` did not finish)")
        try:
            meta = json.loads(pj.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PoolError(p, f"pool.json is corrupt ({_one_line(e)})") from None
        if not isinstance(meta, dict) or meta.get("format") != POOL_FORMAT:
            raise PoolError(p, f"pool.json is not a {POOL_FORMAT} file")
        if meta.get("version") != POOL_VERSION:
            raise PoolError(p, f"pool.json has version {meta.get('version')!r}, this degradekit reads {POOL_VERSION}")
        _check_meta(p, meta)
        klist = meta["kernels"]["ids"]
        scales = meta["kernels"]["scales"]
        nlist = meta["noise"]

        kernels: dict[int, dict[str, np.ndarray]] = {}
        if klist:
            kp = p / "kernels.npz"
            if not kp.is_file():
                raise PoolError(p, "kernels.npz missing (pool.json lists kernels)")
            try:
                with np.load(kp, allow_pickle=False) as z:
                    ids = [str(x) for x in z["ids"]]
                    arrays = {s: np.asarray(z[f"x{s}"], np.float64) for s in scales}
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
                raise PoolError(p, f"kernels.npz is corrupt ({_one_line(e)})") from None
            if ids != list(klist):
                raise PoolError(p, "kernels.npz does not match pool.json (different kernel ids)")
            for s, arr in arrays.items():
                if arr.ndim != 3 or arr.shape[0] != len(ids) or arr.shape[1] != arr.shape[2] or arr.shape[1] % 2 == 0:
                    raise PoolError(p, f"kernels.npz: x{s} has shape {arr.shape}, expected (N, k, k) with k odd")
                if not np.all(np.isfinite(arr)) or np.any(np.abs(arr.sum(axis=(1, 2)) - 1) > 1e-6):
                    raise PoolError(p, f"kernels.npz: x{s} holds kernels that are not finite or do not sum to 1")
                neg = np.flatnonzero((arr < NEGATIVE_TOL).any(axis=(1, 2)))
                if neg.size:  # a pool kernel is a measured blur (a PSF); see docs/design.md
                    raise PoolError(p, f"kernels.npz: x{s} kernel {ids[neg[0]]!r} has negative entries (min "
                                       f"{arr[neg[0]].min():.3g}); pool kernels must be non-negative blurs")
                kernels[s] = {f"{i}@x{s}": _trim_zero_rings(a) for i, a in zip(ids, arr)}

        noise_files = {}
        for rec in nlist:
            nid, rel = rec["id"], rec["file"]
            f = _inside(p, rel, "noise")
            noise_files[nid] = f

        pool = cls(p, meta, kernels, noise_files, include_outliers)
        n_usable = sum(len(pool.kernel_ids(s)) for s in kernels)
        if n_usable == 0 and not noise_files:
            n_all = len(klist)
            what = (f"all {n_all} kernels are flagged outliers (see pool.json 'rejected') and there are no noise "
                    "patches" if n_all else "no kernels and no noise patches")
            raise PoolError(p, f"empty pool: {what}" + _why_empty(meta))
        if scale is not None:
            if int(scale) not in kernels or not kernels[int(scale)]:
                have = ", ".join(f"x{s}" for s in sorted(kernels) if kernels[s]) or "none"
                raise PoolError(p, f"no kernels for x{scale} (kernels in this pool: {have})" + _why_empty(meta))
            if not pool.kernel_ids(int(scale)):
                raise PoolError(p, f"no usable kernels for x{scale}: all {len(kernels[int(scale)])} are flagged "
                                   "outliers (see pool.json 'rejected')")
        if need_noise and not noise_files:
            raise PoolError(p, "no noise patches (built with --no-noise, or no flat patch passed the thresholds)")
        return pool

    # ------------------------------------------------------------------ the pool protocol
    def kernel_ids(self, scale: int) -> tuple[str, ...]:
        """Ids of the kernels usable at `scale` (outliers excluded), in pool order; () when none."""
        ks = self._kernels.get(int(scale), {})
        return tuple(i for i in ks if self.include_outliers or i.rsplit("@", 1)[0] not in self._outliers)

    def kernel(self, id: str) -> np.ndarray:
        """float64 (k, k) kernel, k odd, sum 1, centre of mass on the centre pixel. `id` as listed by
        :meth:`kernel_ids` ("<source id>@x<scale>")."""
        base, _, sc = str(id).rpartition("@x")
        try:
            return self._kernels[int(sc)][id].copy()
        except (KeyError, ValueError):
            raise PoolError(self.path, f"no kernel with id {id!r} (ids look like 'name-0123456789@x4')") from None

    def noise_ids(self) -> tuple[str, ...]:
        return tuple(self._noise_files)

    def noise(self, id: str) -> np.ndarray:
        """float32 (p, p, 3) zero-mean (per channel) noise patch in [0, 1] units."""
        if id not in self._noise_files:
            raise PoolError(self.path, f"no noise patch with id {id!r}")
        arr = self._noise_cache.get(id)
        if arr is None:
            from .noise import zero_mean

            f = self._noise_files[id]
            try:
                img = _read_png_rgb(f)
            except (OSError, ValueError) as e:
                raise PoolError(self.path, f"{f.relative_to(self.path)} is corrupt ({_one_line(e)})") from None
            arr = zero_mean(img)
            arr.setflags(write=False)
            if len(self._noise_cache) < 64:  # <= ~50 MB of 256x256 float32 patches per process
                self._noise_cache[id] = arr
        return arr

    # ------------------------------------------------------------------ extras
    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(sorted(s for s, k in self._kernels.items() if k))

    def kernel_record(self, id: str) -> dict:
        """The JSON quality record of one kernel (kernels/<source id>.json; `id` with or without "@x<s>")."""
        base = str(id).rsplit('@x', 1)[0]
        if not _ID_RE.match(base):
            raise PoolError(self.path, f"no kernel with id {id!r}")
        f = _inside(self.path, f"kernels/{base}.json", "kernel record")
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PoolError(self.path, f"kernels/{base}.json unreadable ({_one_line(e)})") from None
        where = f"kernels/{base}.json"
        q = _field(self.path, where, rec, "quality", dict)
        for k in ("sigma_major", "sigma_minor", "theta", "raw_sum"):
            _field(self.path, where, q, k, (int, float), f"quality.{k}")
        _field(self.path, where, q, "outlier", list, "quality.outlier")
        if not all(isinstance(x, str) for x in q["outlier"]):
            raise PoolError(self.path, f"{where}: quality.outlier: must be a list of strings")
        if rec.get("shape") is not None:
            sh = _field(self.path, where, rec, "shape", dict)
            _field(self.path, where, sh, "method", str, "shape.method")
            for k in ("kept_kernelgan", "floor"):
                if sh.get(k) is not None:
                    _field(self.path, where, sh, k, str, f"shape.{k}")
        return rec

    def digest(self) -> str:
        """sha256 over pool.json, kernels.npz and every noise file (name and bytes, sorted by name)."""
        if self._digest is None:
            h = hashlib.sha256()
            files = [self.path / "pool.json"]
            if (self.path / "kernels.npz").is_file():
                files.append(self.path / "kernels.npz")
            files += sorted(self._noise_files.values(), key=lambda f: f.name)
            for f in files:
                h.update(f.relative_to(self.path).as_posix().encode() + b"\0")
                with open(f, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
            self._digest = h.hexdigest()
        return self._digest

    def __repr__(self) -> str:
        ks = ", ".join(f"x{s}: {len(self.kernel_ids(s))}" for s in self.scales)
        return f"Pool({os.fspath(self.path)!r}, kernels {{{ks}}}, noise {len(self._noise_files)})"


#: Kernel entries below this are negative lobes: refused (built kernels are clipped at 0; float noise is ~1e-17).
NEGATIVE_TOL = -1e-9
_ID_RE = __import__("re").compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")


def _type_name(t) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table (object)",
             bool: "true/false"}
    return " or ".join(names.get(x, x.__name__) for x in ts)


def _field(p, where: str, d: dict, key: str, typ, label: str | None = None):
    """d[key], checked to be of `typ` (bool is not a number here); PoolError naming `where: label` otherwise."""
    label = label or key
    if not isinstance(d, dict) or key not in d:
        raise PoolError(p, f"{where}: {label}: missing")
    v = d[key]
    ok = isinstance(v, typ) and not (isinstance(v, bool) and bool not in (typ if isinstance(typ, tuple) else (typ,)))
    if not ok:
        raise PoolError(p, f"{where}: {label}: must be {_type_name(typ)}, got {type(v).__name__} {_short(v)}")
    return v


def _short(v) -> str:
    s = json.dumps(v) if not isinstance(v, (bytes, bytearray)) else repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _str_list(p, where, d, key, label):
    v = _field(p, where, d, key, list, label)
    for x in v:
        if not isinstance(x, str):
            raise PoolError(p, f"{where}: {label}: must be a list of strings, got an element {_short(x)}")
    return v


def _check_meta(p: Path, meta: dict) -> None:
    """Type-check every pool.json field that Pool and `pool info` use (one-line PoolError)."""
    w = "pool.json"
    k = _field(p, w, meta, "kernels", dict)
    ids = _str_list(p, w, k, "ids", "kernels.ids")
    for i in ids:
        if not _ID_RE.match(i):
            raise PoolError(p, f"{w}: kernels.ids: {_short(i)} is not a valid id (letters, digits, _ . - @)")
    if len(set(ids)) != len(ids):
        raise PoolError(p, f"{w}: kernels.ids: an id appears twice")
    scales = _field(p, w, k, "scales", list, "kernels.scales")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s in (2, 4) for s in scales):
        raise PoolError(p, f"{w}: kernels.scales: must be a list of 2 and/or 4, got {_short(scales)}")
    if "outliers" in k:
        _str_list(p, w, k, "outliers", "kernels.outliers")
    noise = _field(p, w, meta, "noise", list)
    seen = set()
    for j, rec in enumerate(noise):
        if not isinstance(rec, dict):
            raise PoolError(p, f"{w}: noise[{j}]: must be a table (object), got {_short(rec)}")
        nid = _field(p, w, rec, "id", str, f"noise[{j}].id")
        _field(p, w, rec, "file", str, f"noise[{j}].file")
        if not _ID_RE.match(nid) or nid in seen:
            raise PoolError(p, f"{w}: noise[{j}].id: {_short(nid)} is not a valid, unique id")
        seen.add(nid)
    for key in ("counts", "settings"):
        if key in meta:
            _field(p, w, meta, key, dict)
    for key, v in (meta.get("counts") or {}).items():
        if not isinstance(v, int) or isinstance(v, bool):
            raise PoolError(p, f"{w}: counts.{key}: must be an integer, got {_short(v)}")
    if "rejected" in meta:
        for j, r in enumerate(_field(p, w, meta, "rejected", list)):
            for f in ("kind", "item", "reason"):
                _field(p, w, r if isinstance(r, dict) else {}, f, str, f"rejected[{j}].{f}")


def _inside(p: Path, rel: str, what: str) -> Path:
    """p / rel, which must stay inside the pool folder (after symlinks) and be a non-empty regular file."""
    import stat as _stat

    if os.path.isabs(rel) or "\0" in rel:
        raise PoolError(p, f"pool.json: {what} file {rel!r} must be a path relative to the pool folder")
    f = p / rel
    try:
        real = f.resolve(strict=True)
    except (OSError, RuntimeError):
        raise PoolError(p, f"{rel} missing (listed in pool.json)") from None
    if not real.is_relative_to(p.resolve()):
        raise PoolError(p, f"pool.json: {what} file {rel!r} lies outside the pool folder ({real})")
    st = real.stat()
    if not _stat.S_ISREG(st.st_mode):
        from ..fsutil import file_kind

        raise PoolError(p, f"{rel} is not a regular file ({file_kind(st.st_mode)})")
    if st.st_size == 0:
        raise PoolError(p, f"{rel} is empty")
    return f


def _trim_zero_rings(k: np.ndarray) -> np.ndarray:
    """Drop all-zero outer rings (kernels are zero-padded to a common size in kernels.npz)."""
    while k.shape[0] > 1 and not np.any(k[0]) and not np.any(k[-1]) and not np.any(k[:, 0]) and not np.any(k[:, -1]):
        k = k[1:-1, 1:-1]
    return np.ascontiguousarray(k)


def _why_empty(meta: dict) -> str:
    st = meta.get("settings", {})
    if st.get("kernels") is False:
        return " (built with --no-kernels)"
    n = meta.get("counts", {}).get("sources_ok")
    if n == 0:
        return " (no source image could be used; see pool.json 'rejected')"
    return ""


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
