"""Small contract-conformant shards for the trainer tests (docs/design.md "Shards"), made from scikit-image
photos with a simple known degradation: Gaussian blur (sigma 2) -> INTER_AREA downscale -> Gaussian noise
(sigma 2/255) -> uint8. A tiny net learns to beat bicubic on this within a few hundred steps.

Imported by the other test_trainer_* modules (``from test_trainer_fixtures import make_shards``); its own tests
check the shard format.
"""
from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import skimage.data

TRAIN_IMAGES = ("astronaut", "coffee", "chelsea")


def degrade(hr: np.ndarray, scale: int, seed: int, *, sigma: float = 2.0, noise: float = 2.0) -> np.ndarray:
    """uint8 HR (H, W, 3) -> uint8 LR (H // scale, W // scale, 3)."""
    x = cv2.GaussianBlur(hr.astype(np.float32) / 255, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    x = cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)
    x = x + np.random.default_rng(seed).normal(0, noise / 255, x.shape).astype(np.float32)
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    assert ok
    return buf.tobytes()


def make_samples(n: int, *, hr_size: int = 96, scale: int = 4, variants: int = 2, seed: int = 0,
                 images=TRAIN_IMAGES, start: int = 0,
                 rows: tuple[float, float] = (0.0, 1.0)) -> list[tuple[str, dict[str, bytes]]]:
    """n samples: (key, {"hr.png", "json", "lr0.png", ...}) with keys f"{start + i:09d}"; crops lie within the
    ``rows`` fraction of each photo's height (disjoint row bands give held-out pairs)."""
    rng = np.random.default_rng(seed)
    photos = [(name, getattr(skimage.data, name)()) for name in images]
    out = []
    for i in range(n):
        name, img = photos[i % len(photos)]
        r0, r1 = int(rows[0] * img.shape[0]), int(rows[1] * img.shape[0])
        y0 = int(rng.integers(r0, r1 - hr_size + 1))
        x0 = int(rng.integers(0, img.shape[1] - hr_size + 1))
        hr = np.ascontiguousarray(img[y0:y0 + hr_size, x0:x0 + hr_size, :3])
        key = f"{start + i:09d}"
        sample_seed = int(rng.integers(2 ** 31))
        fields = {"hr.png": png(hr)}
        vs = []
        for v in range(variants):
            vseed = sample_seed + v
            fields[f"lr{v}.png"] = png(degrade(hr, scale, vseed))
            vs.append({"seed": vseed, "params": {"kind": "test-blur-area-noise", "sigma": 2.0, "noise": 2.0}})
        meta = {"key": key, "source": {"path": f"skimage:{name}", "sha256": hashlib.sha256(img.tobytes()).hexdigest()},
                "crop": [y0, x0, y0 + hr_size, x0 + hr_size], "multiscale": 1.0, "scale": scale, "order": 1,
                "seed": sample_seed, "variants": vs}
        fields["json"] = json.dumps(meta, sort_keys=True).encode()
        out.append((key, fields))
    return out


TRAIN_ROWS, VAL_ROWS = (0.0, 0.6), (0.6, 1.0)   # held-out validation crops come from a disjoint band


def make_shards(out_dir, n: int = 12, shard_size: int = 4, **kw) -> list[str]:
    """Write ``OUT/shard-000000.tar`` ... (``shard_size`` samples each) and return their paths."""
    from trainer.data import write_shard
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = make_samples(n, **kw)
    paths = []
    for s in range(0, n, shard_size):
        p = out_dir / f"shard-{s // shard_size:06d}.tar"
        write_shard(p, samples[s:s + shard_size])
        paths.append(str(p))
    return paths


def test_fixture_shards_follow_the_contract(tmp_path):
    a = make_shards(tmp_path / "a", n=5, shard_size=3)
    b = make_shards(tmp_path / "b", n=5, shard_size=3)
    assert [Path(p).name for p in a] == ["shard-000000.tar", "shard-000001.tar"]
    for pa, pb in zip(a, b):      # reproducible bytes
        assert Path(pa).read_bytes() == Path(pb).read_bytes()
    with tarfile.open(a[0]) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[:4] == ["000000000.hr.png", "000000000.json", "000000000.lr0.png", "000000000.lr1.png"]
    assert len(names) == 12
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o644 and m.uname == "" for m in members)
    with tarfile.open(a[0]) as tar:
        meta = json.loads(tar.extractfile("000000001.json").read())
        lr = cv2.imdecode(np.frombuffer(tar.extractfile("000000001.lr1.png").read(), np.uint8), cv2.IMREAD_COLOR)
        hr = cv2.imdecode(np.frombuffer(tar.extractfile("000000001.hr.png").read(), np.uint8), cv2.IMREAD_COLOR)
    assert meta["scale"] == 4 and meta["key"] == "000000001" and len(meta["variants"]) == 2
    assert hr.shape == (96, 96, 3) and lr.shape == (24, 24, 3)
    # the LR is the documented degradation of the HR (replayable from the recorded seed)
    assert np.array_equal(lr[..., ::-1], degrade(hr[..., ::-1], 4, meta["variants"][1]["seed"]))
