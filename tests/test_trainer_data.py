"""Shard loader: URL forms, rank/worker split, determinism, mid-epoch resume, bad shards."""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from test_trainer_fixtures import make_shards
from trainer.data import (DataPosition, ShardDataset, ShardError, decode_pair, expand_urls, iter_raw_samples,
                          iter_val_pairs, paired_crop)

pytestmark = pytest.mark.usefixtures("torch_one_thread")



@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    return make_shards(d, n=12, shard_size=3, hr_size=64)     # 4 shards x 3 samples


def _take(ds, n, workers=0, batch=1):
    it = iter(DataLoader(ds, batch_size=batch, num_workers=workers))
    return [next(it) for _ in range(n)]


def test_expand_urls_forms(shards, tmp_path):
    d = str(Path(shards[0]).parent)
    assert expand_urls(d) == shards
    assert expand_urls(d + "/shard-*.tar") == shards
    assert expand_urls(d + "/shard-{000001..000002}.tar") == shards[1:3]
    assert expand_urls(["pipe:cat x.tar", "http://h/s-{0..1}.tar"]) == [
        "pipe:cat x.tar", "http://h/s-0.tar", "http://h/s-1.tar"]
    with pytest.raises(ShardError, match="nope.tar: shard not found"):
        expand_urls(str(tmp_path / "nope.tar"))
    with pytest.raises(ShardError, match="no .tar shards"):
        expand_urls(str(tmp_path))


def test_epoch_visits_every_sample_once_across_ranks_and_workers(shards):
    keys = {f"{i:09d}" for i in range(12)}
    for world, workers, urls in ((1, 0, shards), (2, 2, shards), (2, 0, shards[:1])):   # shard split / sample split
        seen = []
        for rank in range(world):
            ds = ShardDataset(urls, gt_size=32, seed=3, rank=rank, world_size=world, shuffle_buffer=4, max_epochs=1)
            seen += [k for b in DataLoader(ds, batch_size=1, num_workers=workers) for k in b["key"]]
        expected = keys if urls is shards else {f"{i:09d}" for i in range(3)}
        assert sorted(seen) == sorted(expected), (world, workers)


def test_augmentation_depends_on_sample_not_on_worker_layout(shards):
    a = {b["key"][0]: b for b in _take(ShardDataset(shards, gt_size=32, seed=7, max_epochs=1), 12)}
    ds2 = ShardDataset(shards, gt_size=32, seed=7, rank=1, world_size=2, max_epochs=1)
    b = {x["key"][0]: x for x in DataLoader(ds2, batch_size=1, num_workers=2)}
    assert b and set(b) < set(a)
    for k in b:
        assert torch.equal(a[k]["lq"], b[k]["lq"]) and torch.equal(a[k]["gt"], b[k]["gt"])
    # another seed gives other crops; same seed is reproducible
    c = {x["key"][0]: x for x in _take(ShardDataset(shards, gt_size=32, seed=8, max_epochs=1), 12)}
    assert any(not torch.equal(a[k]["lq"], c[k]["lq"]) for k in a)
    d = {x["key"][0]: x for x in _take(ShardDataset(shards, gt_size=32, seed=7, max_epochs=1), 12)}
    assert all(torch.equal(a[k]["gt"], d[k]["gt"]) for k in a)


def test_crops_are_aligned_and_augmented_consistently(shards):
    raw = next(iter_raw_samples(shards[0]))
    hr, lr, scale = decode_pair(raw, 1)
    assert scale == 4 and hr.shape == (64, 64, 3) and lr.shape == (16, 16, 3)
    for seed in range(20):
        g, l = paired_crop(hr, lr, 4, 32, np.random.default_rng(seed), context=8)
        assert g.shape == (48, 48, 3) and l.shape == (8, 8, 3)
        # undo nothing: the LR crop must equal the known degradation's pixels at the same (augmented) place,
        # i.e. the central HR part area-downscaled is close to the LR crop (blur + noise aside)
        import cv2
        down = cv2.resize(g[8:-8, 8:-8].astype(np.float32), (8, 8), interpolation=cv2.INTER_AREA)
        assert np.abs(down - l).mean() < 12
    # context outside the image is reflect-101 of the full image
    rng = np.random.default_rng(0)
    g, _ = paired_crop(hr, lr, 4, 64, rng, context=5, hflip=False, rot=False)
    import cv2
    assert np.array_equal(g, cv2.copyMakeBorder(hr, 5, 5, 5, 5, cv2.BORDER_REFLECT_101))


def test_resume_mid_epoch_continues_the_same_stream(shards):
    kw = dict(gt_size=32, seed=11, shuffle_buffer=5)
    full = _take(ShardDataset(shards, **kw), 14, workers=2, batch=2)    # 28 samples: crosses into epoch 2
    pos = DataPosition.start(2)
    for b in full[:5]:
        pos.update(b)
    pos = DataPosition.from_dict(pos.to_dict())
    rest = _take(ShardDataset(shards, position=pos, **kw), 9, workers=2, batch=2)
    for a, b in zip(full[5:], rest):
        assert a["key"] == b["key"] and torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])
    assert max(int(e) for b in full for e in b["epoch"]) >= 1
    with pytest.raises(ShardError, match="loader worker"):
        _take(ShardDataset(shards, position=pos, **kw), 1, workers=0)


def test_pipe_and_http_streams_equal_files(shards):
    direct = [r["hr.png"] + r["lr0.png"] for r in iter_raw_samples(shards[1])]
    piped = [r["hr.png"] + r["lr0.png"] for r in iter_raw_samples(f"pipe:cat {shards[1]}")]
    assert piped == direct
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(Path(shards[1]).parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{Path(shards[1]).name}"
        assert [r["hr.png"] + r["lr0.png"] for r in iter_raw_samples(url)] == direct
        with pytest.raises(ShardError, match="missing.tar: cannot open"):
            list(iter_raw_samples(url.replace(Path(shards[1]).name, "missing.tar")))
    finally:
        server.shutdown()
    with pytest.raises(ShardError, match="command exited with status"):
        list(iter_raw_samples("pipe:cat /nonexistent/x.tar"))


def test_bad_shards_give_one_line_errors(shards, tmp_path):
    data = Path(shards[0]).read_bytes()
    trunc = tmp_path / "trunc.tar"
    trunc.write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(ShardError, match="trunc.tar: corrupt or truncated"):
        list(iter_raw_samples(str(trunc)))
    from trainer.data import write_shard
    raw = next(iter_raw_samples(shards[0]))
    fields = {k: v for k, v in raw.items() if not k.startswith("__")}
    write_shard(tmp_path / "badpng.tar", [("k1", {**fields, "lr0.png": b"garbage"})])
    with pytest.raises(ShardError, match=r"badpng.tar: k1.lr0.png: cannot decode"):
        decode_pair(next(iter_raw_samples(str(tmp_path / "badpng.tar"))), 0)
    write_shard(tmp_path / "nolr.tar", [("k2", {"hr.png": fields["hr.png"]})])
    with pytest.raises(ShardError, match="k2: sample needs hr.png and lr0.png"):
        decode_pair(next(iter_raw_samples(str(tmp_path / "nolr.tar"))), 0)
    write_shard(tmp_path / "scale.tar", [("k3", {**fields, "json": b'{"scale": 2}'})])
    with pytest.raises(ShardError, match="k3: HR 64x64 and LR 16x16 do not match scale 2"):
        decode_pair(next(iter_raw_samples(str(tmp_path / "scale.tar"))), 0)
    with pytest.raises(ShardError, match="smaller than the LR crop"):
        _take(ShardDataset(shards, gt_size=128), 1)
    with pytest.raises(ShardError, match="training scale 2"):
        _take(ShardDataset(shards, gt_size=32, scale=2), 1)
    assert [k for k, *_ in iter_val_pairs(shards[:2], limit=4)] == [f"{i:09d}" for i in range(4)]


def test_shards_read_the_same_with_the_webdataset_library(shards):
    wds = pytest.importorskip("webdataset")
    ours = [(r["__key__"], r["hr.png"], r["lr1.png"], r["json"]) for r in iter_raw_samples(shards[2])]
    theirs = [(s["__key__"], s["hr.png"], s["lr1.png"], s["json"])
              for s in wds.WebDataset(shards[2], shardshuffle=False, empty_check=False)]
    assert ours == theirs and len(ours) == 3
