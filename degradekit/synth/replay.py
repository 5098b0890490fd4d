"""`degradekit replay`: re-render one sample from its JSON record and compare bytes with the shard.

Checks, in order: the source file's sha256 equals the recorded one; the HR crop rebuilt from the source
(multiscale copy, crop box, reflection pad) equals the stored HR; for every variant, drawing from the recorded
seed gives the recorded parameters, and ``apply(hr, params)`` encodes to exactly the stored LR bytes.
Without the source (or with ``use_stored_hr``) the LRs are replayed from the HR stored in the shard.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fsutil import read_regular
from ..imageio import decode_image, decode_png, encode_image
from .manifest import load_manifest
from .prepare import crop_patch, scaled
from .shards import iter_samples, shard_name

__all__ = ["ReplayError", "ReplayReport", "find_sample", "replay_sample"]


class ReplayError(RuntimeError):
    """The sample cannot be replayed at all (one line)."""


@dataclass
class ReplayReport:
    key: str
    shard: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c[1] for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, bool(ok), detail))


def find_sample(folder, key: str, manifest: dict) -> tuple[Path, dict]:
    """(shard path, {ext: bytes}) of sample KEY (its shard is KEY // shard_size)."""
    try:
        index = int(key)
    except ValueError:
        raise ReplayError(f"{key!r} is not a sample key (a 9-digit number such as 000000042)") from None
    if not 0 <= index < manifest["n_samples"]:
        raise ReplayError(f"sample {key} out of range: the dataset has {manifest['n_samples']} samples")
    from .export import ExportError, find_exported  # a `degradekit export` folder holds the pairs as files/LMDB
    try:
        exported = find_exported(folder, f"{index:09d}")
    except ExportError as e:
        raise ReplayError(str(e)) from None
    if exported is not None:
        return exported
    path = Path(folder) / shard_name(index // manifest["shard_size"])
    if not path.is_file():
        what = "not a regular file" if path.exists() else "missing"
        raise ReplayError(f"{path}: {what} (sample {key} lives in it)")
    want = f"{index:09d}"
    for k, fields in iter_samples(path):
        if k == want:
            return path, fields
    raise ReplayError(f"{path}: sample {want} not found in its shard")


def _config(manifest: dict):
    st = manifest["settings"]
    if st.get("pipeline", "realesrgan") == "realsr":
        from ..pool.realsr import RealsrConfig

        return RealsrConfig.from_dict(st["config"])
    if st.get("pipeline") == "bsrgan":  # owner: bsrgan
        from ..bsrgan import BsrganConfig

        return BsrganConfig.from_dict(st["config"], f"{manifest['_path']}: config")
    from ..config import config_from_dict

    return config_from_dict(st["config"], f"{manifest['_path']}: config")


def replay_sample(folder, key: str, *, source=None, use_stored_hr: bool = False, pool_path=None,
                  log=None) -> ReplayReport:
    """Re-render sample KEY of the dataset in FOLDER; returns a report of every byte comparison.

    Raises ReplayError (one line) for a sample that cannot be replayed at all: a damaged shard, a sample
    without its json / hr member, a record that is not what synth writes."""
    from ..imageio import ImageError
    from ..pool import PoolError
    from .manifest import ManifestError
    from .shards import ShardFormatError

    try:
        return _replay_sample(folder, key, source=source, use_stored_hr=use_stored_hr, pool_path=pool_path)
    except ShardFormatError as e:
        raise ReplayError(str(e)) from None
    except (ReplayError, ManifestError, ImageError, PoolError):
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else " ".join(str(e).split())[:200]
        raise ReplayError(f"{folder}: sample {str(key).zfill(9)}: damaged sample record or manifest ({what})") \
            from None


def _sample_json(path, key: str, fields: dict) -> dict:
    if "json" not in fields:
        raise ReplayError(f"{path}: sample {key} has no {key}.json member (damaged shard): nothing to replay from")
    try:
        rec = json.loads(fields["json"])
    except (ValueError, UnicodeDecodeError) as e:
        raise ReplayError(f"{path}: {key}.json is not valid JSON ({e})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("variants"), list) or not rec["variants"]:
        raise ReplayError(f"{path}: {key}.json is not a degradekit sample record (no variants)")
    return rec


def _replay_sample(folder, key: str, *, source=None, use_stored_hr: bool = False, pool_path=None) -> ReplayReport:
    m = load_manifest(folder)
    st = m["settings"]
    path, fields = find_sample(folder, str(key).zfill(9), m)
    rec = _sample_json(path, str(key).zfill(9), fields)
    rep = ReplayReport(rec["key"], path.name)
    if m.get("codecs"):  # recorded since the codec ops; informational (the byte checks decide)
        from ..ops.codec_info import library_versions

        now = library_versions()
        diff = [f"{k} {m['codecs'].get(k, 'none')} -> {now.get(k, 'none')}"
                for k in sorted(set(m["codecs"]) | set(now)) if m["codecs"].get(k) != now.get(k)]
        if diff:
            rep.add("codec libraries differ from the recording", True, ", ".join(diff))
    codec, level = st["codec"], st["png_level"]
    if f"hr.{codec}" not in fields:
        raise ReplayError(f"{path}: sample {rec['key']} has no hr.{codec} member (damaged shard)")
    try:
        stored_hr = decode_png(fields[f"hr.{codec}"])
    except ValueError:
        raise ReplayError(f"{path}: {rec['key']}.hr.{codec} cannot be decoded (damaged shard)") from None

    realsr = rec.get("pipeline") == "realsr"
    cleanup = realsr and bool(rec["variants"][0]["params"].get("cleanup"))
    bsrgan = rec.get("pipeline") == "bsrgan"
    sharp = bsrgan and bool(rec["variants"][0]["params"].get("use_sharp"))  # the stored HR is the sharpened one
    hr = None
    if not use_stored_hr:
        src = Path(source or rec["source"]["path"])
        try:
            data = read_regular(src)
        except OSError as e:
            rep.add("source", False, f"{src}: {e.strerror or e} (use --source PATH or --stored-hr)")
            data = None
        if data is not None:
            sha = hashlib.sha256(data).hexdigest()
            rep.add("source sha256", sha == rec["source"]["sha256"],
                    f"{src}: {sha[:16]}... vs recorded {rec['source']['sha256'][:16]}...")
            if sha == rec["source"]["sha256"]:
                img = decode_image(data, src, max_pixels=st["max_pixels"])
                h, w = rec["resized"]
                y0, x0 = rec["crop"][:2]
                hr, _ = crop_patch(scaled(img, h, w), y0, x0, st["patch"])
                target = hr
                if realsr:
                    from ..pool.realsr import hr_target

                    target = hr_target(hr, rec["variants"][0]["params"])
                elif bsrgan:
                    from ..bsrgan import hr_target as bsrgan_hr_target

                    target = bsrgan_hr_target(hr, rec["variants"][0]["params"])
                rep.add("HR pixels", np.array_equal(target, stored_hr),
                        "rebuilt from the source (multiscale, crop, pad" + (", clean-up)" if cleanup else ")"))
                rep.add("HR bytes", encode_image(target, codec, level=level) == fields[f"hr.{codec}"], "")
    if hr is None:
        if cleanup:
            rep.add("HR", False, "the realsr clean-up needs the source image (the stored HR is the cleaned one)")
            return rep
        if sharp:
            rep.add("HR", False, "bsrgan-plus use_sharp needs the source image (the stored HR is the sharpened one)")
            return rep
        hr = stored_hr
        rep.add("HR", True, "using the HR stored in the shard")

    pool = None
    if rec.get("pool") is not None or pool_path is not None:
        from ..pool import Pool

        pp = pool_path or rec["pool"]["path"]
        pool = Pool.load(pp, scale=rec["scale"])
        if rec.get("pool") is not None:
            rep.add("pool digest", pool.digest() == rec["pool"]["sha256"], str(pp))

    cfg = _config(m)
    for v, var in enumerate(rec["variants"]):
        if "export" in rec and f"lr{v}.{codec}" not in fields:
            rep.add(f"lr{v}", True, "variant not in this export")
            continue
        rng = np.random.default_rng(var["seed"])
        if realsr:
            from ..pool import realsr as rs

            drawn = rs.sample_realsr(rng, cfg, pool).to_dict()
            lr = rs.apply_realsr(hr, rs.RealsrParams.from_dict(var["params"]), pool)
        elif bsrgan:
            from .. import bsrgan as bs

            drawn = bs.sample_bsrgan(rng, cfg).to_dict()
            lr = bs.apply_bsrgan(hr, var["params"])
        else:
            from .. import pipeline

            drawn = pipeline.sample(rng, cfg, pool).to_dict()
            lr = pipeline.apply(hr, var["params"], pool)
        rep.add(f"lr{v} params", drawn == var["params"], f"drawn again from seed {var['seed']}")
        got = encode_image(lr, codec, level=level)
        stored = fields[f"lr{v}.{codec}"]
        detail = "" if got == stored else (f"max pixel difference "
                                           f"{int(np.abs(decode_png(stored).astype(int) - lr.astype(int)).max())}")
        rep.add(f"lr{v} bytes", got == stored, detail)
    return rep
