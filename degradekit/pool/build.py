"""`degradekit pool build`: estimate one KernelGAN kernel and collect the flat noise patches of every photo.

Work is per image and resumable: each finished image leaves a marker ``POOL/.progress/<sha256>.json`` (what was
done, with which settings); a re-run skips every image whose marker matches the current settings (kernel and
noise parts separately) and only then assembles ``kernels.npz`` and ``pool.json`` from the markers. Results are
a pure function of (image bytes, settings, seed): the per-image seed is derived from the seed and the image's
content hash, so adding, removing or reordering photos never changes the other images' kernels, and the worker
count changes nothing (every worker runs torch with one thread, measured fastest for KernelGAN's small convs).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..fsutil import atomic_write, read_regular
from ..progress import Progress
from . import POOL_FORMAT, POOL_VERSION, PoolError
from .kernelgan import KernelGANConfig
from .noise import NoiseConfig

__all__ = ["BuildSettings", "build_pool", "list_sources"]

#: With at least this many kernels, one whose width is more than RELATIVE_WIDTH times off the pool's median
#: width is an outlier too.
RELATIVE_MIN_KERNELS = 5
RELATIVE_WIDTH = 1.5
SHAPES = ("spectral", "kernelgan")


@dataclass(frozen=True)
class BuildSettings:
    """What `pool build` does. scale: 2 (x2 kernels) or 4 (x2 and the derived x4 kernels).

    shape: "spectral" (ours, default): each KernelGAN kernel is warped affinely to the blur covariance fitted
    to the photo's power spectrum (:mod:`degradekit.pool.spectral`), which recovers the elongation and angle
    KernelGAN misses; where that fit is unreliable the KernelGAN kernel is kept as it is (the record says why).
    "kernelgan": the KernelGAN kernels unchanged (the original method)."""

    scale: int = 4
    seed: int = 0
    kernels: bool = True
    noise: bool = True
    kernelgan: KernelGANConfig = field(default_factory=KernelGANConfig)
    noise_cfg: NoiseConfig = field(default_factory=NoiseConfig)
    device: str = "cpu"
    shape: str = "spectral"

    def __post_init__(self):
        if self.scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {self.scale}")
        if not self.kernels and not self.noise:
            raise ValueError("--no-kernels and --no-noise together leave nothing to build")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")

    def kernel_key(self) -> dict:
        # no scale: every record holds the x2 kernel and the x4 one composed from it (switching --scale reuses them)
        return {"seed": self.seed, "kernelgan": asdict(self.kernelgan), "device": self.device, "shape": self.shape}

    def noise_key(self) -> dict:
        return asdict(self.noise_cfg)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "seed": self.seed, "kernels": self.kernels, "noise": self.noise,
                "kernelgan": asdict(self.kernelgan), "noise_thresholds": asdict(self.noise_cfg),
                "device": self.device, "shape": self.shape}


# ------------------------------------------------------------------------------------------------ sources
def list_sources(src) -> list[tuple[Path, str]]:
    """(absolute path, relative name) of the photos named by --src (directory, glob, list file, `sample`,
    dataset name -- the synth source rules), sorted by relative name."""
    from ..synth.sources import SourceError, resolve_sources

    try:
        ss = resolve_sources(str(src))
    except SourceError as e:
        raise ValueError(str(e)) from None
    return list(zip(ss.files, ss.rels))


def _safe(stem: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "img"
    return s[:40]


def image_id(rel: str, sha: str) -> str:
    """Stable id of a source photo: its file stem (sanitised) and the first 10 hex digits of its sha256."""
    return f"{_safe(Path(rel).stem)}-{sha[:10]}"


def image_seed(seed: int, sha: str) -> int:
    """Per-image seed from the build seed and the image content (independent of order and worker count)."""
    return int(np.random.SeedSequence([int(seed), int(sha[:16], 16)]).generate_state(1, np.uint64)[0] >> 1)


# ----------------------------------------------------------------------------------------- file writing
def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


def _npz_bytes(arrays: dict) -> bytes:
    """A .npz with fixed member timestamps (np.savez stamps the current time: same pool, different bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(arrays):
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, b.getvalue())
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ one image
def _process(path: str, rel: str, sha: str, out: str, settings: BuildSettings, do_kernel: bool,
             do_noise: bool, old: dict | None) -> dict:
    """Work on one photo (in a worker): kernel and/or noise, then its marker. Returns the marker."""
    from ..imageio import ImageError, read_image, write_png

    out = Path(out)
    iid = image_id(rel, sha)
    marker = dict(old or {})
    marker.update(sha256=sha, id=iid, path=rel)
    try:
        img = read_image(path)
    except ImageError as e:
        marker.update(status="skipped", reason=e.problem, kernel=None, kernel_key=None, noise=[], noise_key=None)
        atomic_write(out / ".progress" / f"{sha}.json", _json_bytes(marker))
        return marker
    marker["status"] = "ok"
    marker.pop("reason", None)
    marker["size"] = [int(img.shape[1]), int(img.shape[0])]
    if do_noise:
        from .noise import extract_flat_patches, patch_grid

        nc = settings.noise_cfg
        patches = extract_flat_patches(img, nc)
        recs = []
        for p in patches:
            nid = f"{iid}-y{p.y:05d}-x{p.x:05d}"
            write_png(out / "noise" / f"{nid}.png", p.pixels)
            recs.append({"id": nid, "file": f"noise/{nid}.png", "source": rel, "y": p.y, "x": p.x,
                         "mean": round(p.mean, 4), "var": round(p.var, 4)})
        keep = {r["file"] for r in recs}
        for r in marker.get("noise") or []:  # patches of an older threshold setting
            if r["file"] not in keep:
                try:
                    os.unlink(out / r["file"])
                except OSError:
                    pass
        n_tested = len(patch_grid(img.shape[0], nc.patch, nc.step)) * len(patch_grid(img.shape[1], nc.patch, nc.step))
        marker.update(noise=recs, noise_tested=n_tested, noise_key=settings.noise_key())
    if do_kernel:
        marker.update(_kernel_for(img, iid, rel, sha, out, settings))
    atomic_write(out / ".progress" / f"{sha}.json", _json_bytes(marker))
    return marker


def _kernel_for(img, iid, rel, sha, out: Path, settings: BuildSettings) -> dict:
    from .kernelgan import estimate_kernel, image_texture, kernel_quality
    from .spectral import shape_kernels

    cfg = settings.kernelgan
    if min(img.shape[:2]) < cfg.crop:
        return dict(kernel=None, kernel_reason=f"too small for KernelGAN ({img.shape[1]}x{img.shape[0]}, "
                                               f"needs {cfg.crop}x{cfg.crop})", kernel_key=settings.kernel_key())
    seed = image_seed(settings.seed, sha)
    try:
        est = estimate_kernel(img, seed=seed, cfg=cfg, device=settings.device)
    except (ValueError, RuntimeError) as e:  # e.g. CUDA out of memory: this photo gets no kernel, the run goes on
        return dict(kernel=None, kernel_reason=f"KernelGAN failed: {' '.join(str(e).split())[:200]}",
                    kernel_key=settings.kernel_key())
    k2, k4, shape = shape_kernels(img, est.kernel, spectral=settings.shape == "spectral")
    q = kernel_quality(est.raw, k2, est.losses, texture=image_texture(img))
    rec = {"id": iid, "source": {"path": rel, "sha256": sha}, "seed": seed, "iters": est.iters,
           "stopped_early": est.stopped_early, "seconds": round(est.seconds, 2),
           "schedule": {k: v for k, v in est.schedule.items() if k != "changes"}, "quality": q,
           "outlier": bool(q["outlier"]), "shape": shape, "raw": est.raw.tolist(), "x2": k2.tolist(),
           "x4": k4.tolist()}
    atomic_write(out / "kernels" / f"{iid}.json", _json_bytes(rec))
    return dict(kernel=iid, kernel_reason=None, kernel_key=settings.kernel_key())


# ------------------------------------------------------------------------------------------ the worker
def _init_worker(device: str) -> None:
    from ..synth.procs import worker_init

    worker_init()  # never outlive `pool build` (SIGKILL / SIGTERM to it)
    import torch

    if device == "cpu":
        torch.set_num_threads(1)


def _work(args) -> dict:
    return _process(*args)


# --------------------------------------------------------------------------------------------- build
def build_pool(sources: list[tuple[Path, str]], out, settings: BuildSettings, *, workers: int = 1,
               echo=None, stream=None) -> dict:
    """Build (or resume) a pool in folder `out` from `sources` [(path, relative name)].

    workers: processes running KernelGAN (one torch thread each). Returns pool.json's dict."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PoolError(out, "exists and is not a folder")
    for sub in ("", "kernels", "noise", ".progress"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    echo = echo or (lambda s: None)

    # hash every source (cheap next to KernelGAN) and decide what is left to do
    entries, seen, todo = [], {}, []
    for path, rel in sources:
        try:
            data = read_regular(path)  # a FIFO or device is skipped, never waited on
        except OSError as e:
            entries.append({"path": rel, "status": "skipped", "reason": e.strerror or str(e)})
            continue
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen:
            entries.append({"path": rel, "sha256": sha, "status": "skipped", "reason": f"duplicate of {seen[sha]}"})
            continue
        seen[sha] = rel
        entries.append({"path": rel, "sha256": sha})
        old = _read_marker(out, sha)
        if old is not None and old.get("status") == "skipped" and old.get("path") == rel:
            continue  # unreadable file, same bytes: same verdict
        need_k = settings.kernels and (old is None or old.get("kernel_key") != settings.kernel_key())
        need_n = settings.noise and (old is None or old.get("noise_key") != settings.noise_key())
        if need_k or need_n:
            todo.append((str(path), rel, sha, str(out), settings, need_k, need_n, old))
    n_done = len(seen) - len(todo)
    if n_done:
        echo(f"resuming: {n_done} of {len(seen)} images already done")

    prog = Progress(len(todo), "pool build", unit="image", stream=stream, every=0)  # a line per photo
    try:
        if todo:
            nw = max(1, min(int(workers), len(todo)))
            if nw == 1:
                _run_inline(todo, settings.device, prog)
            else:
                import concurrent.futures as cf
                import multiprocessing as mp

                from ..synth.procs import stop_processes

                ex = cf.ProcessPoolExecutor(nw, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                            initargs=(settings.device,))
                pids: list[int] = []
                try:
                    futs = [ex.submit(_work, t) for t in todo]
                    pids = list(getattr(ex, "_processes", None) or {})
                    for f in cf.as_completed(futs):
                        m = f.result()
                        prog.update(1, _note(m))
                except BaseException:
                    # Ctrl-C, SIGTERM or a worker error: stop the workers now (a KernelGAN run takes minutes),
                    # then remove the temporary files they may have left (NAME.tmp-PID).
                    procs = getattr(ex, "_processes", None) or {}
                    pids = sorted(set(pids) | set(procs))
                    stop_processes(list(procs.values()))
                    _remove_worker_temporaries(out, pids)
                    raise
                finally:
                    ex.shutdown(wait=True, cancel_futures=True)
    except cf_broken() as e:
        raise PoolError(out, f"a worker process died ({e}); finished photos are kept, rerun the same command "
                             f"to resume") from None
    except OSError as e:
        raise PoolError(out, f"cannot write {e.filename or 'a pool file'}: {e.strerror or e} (finished photos "
                             f"are kept; rerun the same command to resume)") from None
    finally:
        prog.close()
    meta = assemble(out, entries, settings)
    return meta


def cf_broken():
    import concurrent.futures.process as cfp

    return cfp.BrokenProcessPool


def _remove_worker_temporaries(out: Path, pids) -> None:
    """Delete the ``*.tmp-PID`` files (atomic_write's temporaries) of the given worker processes."""
    suffixes = tuple(f".tmp-{p}" for p in pids)
    if not suffixes:
        return
    for sub in ("", "kernels", "noise", ".progress"):
        try:
            names = os.listdir(out / sub)
        except OSError:
            continue
        for n in names:
            if n.endswith(suffixes):
                try:
                    os.unlink(out / sub / n)
                except OSError:
                    pass


def _run_inline(todo, device, prog) -> None:
    import torch

    old = torch.get_num_threads()
    try:
        if device == "cpu":
            torch.set_num_threads(1)
        for t in todo:
            prog.update(1, _note(_process(*t)))
    finally:
        torch.set_num_threads(old)


def _note(m: dict) -> str:
    if m.get("status") == "skipped":
        return f"{m['path']}: skipped ({m['reason']})"
    return f"{m['path']}: kernel {'yes' if m.get('kernel') else 'no'}, {len(m.get('noise') or [])} noise patches"


def _read_marker(out: Path, sha: str) -> dict | None:
    f = out / ".progress" / f"{sha}.json"
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _pad_to(k: np.ndarray, n: int) -> np.ndarray:
    p = (n - k.shape[0]) // 2
    return np.pad(k, p)


def assemble(out: Path, entries: list[dict], settings: BuildSettings) -> dict:
    """Write kernels.npz and pool.json from the markers of `entries` (in source order)."""
    sources, rejected, kernel_recs, noise = [], [], [], []
    for e in entries:
        if "sha256" not in e or e.get("status") == "skipped":
            sources.append(dict(e))
            rejected.append({"kind": "source", "item": e["path"], "reason": e["reason"]})
            continue
        m = _read_marker(out, e["sha256"]) or {}
        if m.get("status") == "skipped":
            sources.append({"path": e["path"], "sha256": e["sha256"], "status": "skipped", "reason": m["reason"]})
            rejected.append({"kind": "source", "item": e["path"], "reason": m["reason"]})
            continue
        row = {"path": e["path"], "sha256": e["sha256"], "id": m.get("id"), "status": "ok", "size": m.get("size")}
        if settings.kernels:
            row["kernel"] = m.get("kernel")
            if m.get("kernel"):
                f = out / "kernels" / f"{m['kernel']}.json"
                try:
                    kernel_recs.append(json.loads(f.read_text(encoding="utf-8")))
                except (OSError, json.JSONDecodeError) as err:
                    raise PoolError(out, f"kernels/{f.name} unreadable ({err}); delete .progress/"
                                         f"{e['sha256']}.json and re-run") from None
            elif m.get("kernel_reason"):
                rejected.append({"kind": "kernel", "item": e["path"], "reason": m["kernel_reason"]})
        if settings.noise:
            recs = m.get("noise") or []
            row["noise_patches"] = len(recs)
            row["noise_tested"] = m.get("noise_tested", 0)
            noise.extend(recs)
        sources.append(row)

    ids = [r["id"] for r in kernel_recs]
    reasons = {r["id"]: list(r["quality"]["outlier"]) for r in kernel_recs}
    # Relative rule: photos of one source domain share a camera, so a kernel far wider or narrower than the
    # pool's median is a failed run (KernelGAN's typical failure is a kernel that drifts wide).
    widths = [r["quality"]["sigma_major"] for r in kernel_recs if not r["quality"]["outlier"]]
    if len(widths) >= RELATIVE_MIN_KERNELS:
        med = float(np.median(widths))
        for r in kernel_recs:
            w = r["quality"]["sigma_major"]
            if w > med * RELATIVE_WIDTH or w < med / RELATIVE_WIDTH:
                reasons[r["id"]].append(f"width {w:.2f} px vs pool median {med:.2f} (more than x{RELATIVE_WIDTH} off)")
    outliers = [i for i in ids if reasons[i]]
    for i in outliers:
        rejected.append({"kind": "kernel", "item": i, "reason": "outlier: " + "; ".join(reasons[i])})
    scales = [2] + ([4] if settings.scale == 4 else [])
    if kernel_recs:
        arrays = {"ids": np.array(ids, dtype=np.str_), "raw": np.array([r["raw"] for r in kernel_recs]),
                  "outlier": np.array([bool(reasons[i]) for i in ids], dtype=bool)}
        for s in scales:
            ks = [np.asarray(r[f"x{s}"], np.float64) for r in kernel_recs]
            n = max(k.shape[0] for k in ks)
            arrays[f"x{s}"] = np.stack([_pad_to(k, n) for k in ks])
        atomic_write(out / "kernels.npz", _npz_bytes(arrays))
    elif (out / "kernels.npz").exists():
        os.unlink(out / "kernels.npz")

    try:
        from importlib.metadata import version

        tool = version("degradekit")
    except Exception:  # not installed (running from a checkout)
        tool = "unknown"
    n_ok = sum(1 for s in sources if s.get("status") == "ok")
    meta = {
        "format": POOL_FORMAT, "version": POOL_VERSION, "tool": f"degradekit {tool}",
        "settings": settings.to_dict(),
        "sources": sources,
        "kernels": {"ids": ids, "scales": scales if kernel_recs else [], "outliers": outliers},
        "noise": noise,
        "counts": {"sources": len(sources), "sources_ok": n_ok, "sources_skipped": len(sources) - n_ok,
                   "kernels": len(ids), "kernels_usable": len(ids) - len(outliers), "outliers": len(outliers),
                   "noise_patches": len(noise)},
        "rejected": rejected,
    }
    atomic_write(out / "pool.json", _json_bytes(meta))
    return meta
