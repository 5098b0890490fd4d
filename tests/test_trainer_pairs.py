"""trainer.pairs: paired folders / BasicSR LMDB give the same stream as the shards they were exported from
(crops, augmentation, worker/rank split, resume), eager one-line validation naming both files."""
from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from degradekit.synth.export import export
from test_trainer_fixtures import make_shards
from trainer.data import DataPosition, ShardDataset, iter_val_pairs
from trainer.pairs import PairDataset, PairError, PairSource, iter_val_pairs_from

pytestmark = pytest.mark.usefixtures("torch_one_thread")
KW = dict(gt_size=32, seed=9, shuffle_buffer=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """10 one-sample shards (1 variant) and their folders + LMDB exports; 10 samples in 3 shards (2 variants)."""
    d = tmp_path_factory.mktemp("pairs")
    one = make_shards(d / "one", n=10, shard_size=1, hr_size=64, variants=1)
    export(d / "one", d / "f", fmt="folders")
    out = {"one": one, "f": d / "f", "multi": make_shards(d / "multi", n=10, shard_size=4, hr_size=64, variants=2)}
    if _has_lmdb():
        export(d / "one", d / "l", fmt="lmdb")
        out["l"] = d / "l"
    export(d / "multi", d / "fm", fmt="folders", variant="all")
    out["fm"] = d / "fm"
    return out


def _has_lmdb() -> bool:
    try:
        import lmdb  # noqa: F401
        return True
    except ImportError:
        return False


def _stream(ds, n, workers=0, batch=2):
    it = iter(DataLoader(ds, batch_size=batch, num_workers=workers))
    return [next(it) for _ in range(n)]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["key"] == y["key"]
        assert torch.equal(x["lq"], y["lq"]) and torch.equal(x["gt"], y["gt"])
        assert torch.equal(x["index"], y["index"]) and torch.equal(x["epoch"], y["epoch"])


def _sources(data):
    yield PairSource.open(data["f"] / "hr", data["f"] / "lr")
    if "l" in data:
        yield PairSource.open(data["l"] / "hr.lmdb", data["l"] / "lr.lmdb")


def test_open_reads_keys_scale_and_both_layouts(data):
    for src in _sources(data):
        assert len(src) == 10 and src.scale == 4 and src.keys == tuple(f"{i:09d}" for i in range(10))
    if "l" in data:
        f, l = _sources(data)
        assert (f.kind, l.kind) == ("folders", "lmdb")
        for i in range(10):
            for a, b in zip(f.load(i), l.load(i)):
                assert np.array_equal(a, b)


@pytest.mark.parametrize("world,workers", [(1, 0), (1, 2), (2, 2)])
def test_stream_equals_the_shards_it_was_exported_from(data, world, workers):
    """Each pair is a one-sample shard: same order, crops, flips, worker/rank split, epochs."""
    for src in _sources(data):
        for rank in range(world):
            a = _stream(ShardDataset(data["one"], rank=rank, world_size=world, **KW), 8, workers)   # ~3 epochs
            b = _stream(PairDataset(src, rank=rank, world_size=world, **KW), 8, workers)
            _same(a, b)
            assert max(int(e) for x in a for e in x["epoch"]) >= 1


def test_resume_position_continues_the_same_stream(data):
    src = next(_sources(data))
    full = _stream(PairDataset(src, **KW), 12, workers=2)
    pos = DataPosition.start(2)
    for b in full[:5]:
        pos.update(b)
    rest = _stream(PairDataset(src, position=DataPosition.from_dict(pos.to_dict()), **KW), 7, workers=2)
    _same(full[5:], rest)


def test_one_epoch_visits_every_pair_once_across_ranks_and_workers(data):
    src = next(_sources(data))
    seen = []
    for rank in range(2):
        ds = PairDataset(src, rank=rank, world_size=2, max_epochs=1, **KW)
        seen += [k for b in DataLoader(ds, batch_size=1, num_workers=2) for k in b["key"]]
    assert sorted(seen) == list(src.keys)


def test_variant_all_pairs_are_augmented_by_the_shard_rule(data):
    """A --variant all export: every KEY_vV pair is cropped/flipped by trainer.data.paired_crop seeded with
    (seed, epoch, key_seed(KEY_vV)), the variant draw drawing nothing (one LR per pair)."""
    src = PairSource.open(data["fm"] / "hr", data["fm"] / "lr")
    assert len(src) == 20
    ds = PairDataset(src, max_epochs=1, **KW)
    got = {b["key"][0]: b for b in DataLoader(ds, batch_size=1)}
    assert len(got) == 20
    # the same augmentation rng the shard reader uses, minus the variant draw, on the exported key's pixels
    from trainer.data import key_seed, paired_crop
    for key, b in list(got.items())[:6]:
        hr, lr = src.load(src.keys.index(key))
        rng = np.random.default_rng([KW["seed"], 0, key_seed(key)])
        g, l = paired_crop(hr, lr, 4, 32, rng)
        assert np.array_equal(b["gt"][0].permute(1, 2, 0).numpy(), g)
        assert np.array_equal(b["lq"][0].permute(1, 2, 0).numpy(), l)


def test_val_pairs_are_the_shard_val_tuples(data):
    for src in _sources(data):
        a = list(iter_val_pairs(data["one"], limit=4))
        b = list(iter_val_pairs_from(src, limit=4))
        assert len(a) == len(b) == 4
        for x, y in zip(a, b):
            assert x[0] == y[0] and x[3] == y[3] == 4
            assert np.array_equal(x[1], y[1]) and np.array_equal(x[2], y[2])


def _copy_pairs(data, tmp_path):
    hr, lr = tmp_path / "hr", tmp_path / "lr"
    shutil.copytree(data["f"] / "hr", hr)
    shutil.copytree(data["f"] / "lr", lr)
    return hr, lr


def _err(match, *a, **k):
    with pytest.raises(PairError) as ei:
        PairSource.open(*a, **k)
    msg = str(ei.value)
    assert "\n" not in msg, msg
    for m in match:
        assert m in msg, msg
    return msg


def test_missing_partner_wrong_size_and_mixed_scale_name_both_files(data, tmp_path):
    hr, lr = _copy_pairs(data, tmp_path)
    (lr / "000000003.png").unlink()
    _err([str(hr / "000000003.png"), str(lr / "000000003"), "no LR partner"], hr, lr)
    shutil.copy(data["f"] / "lr" / "000000003.png", lr / "000000003.png")
    (hr / "000000005.png").unlink()
    _err([str(lr / "000000005.png"), str(hr / "000000005"), "no HR partner"], hr, lr)
    shutil.copy(data["f"] / "hr" / "000000005.png", hr / "000000005.png")
    img = cv2.imread(str(lr / "000000006.png"))
    cv2.imwrite(str(lr / "000000006.png"), img[:15])                  # 16x15: no integer scale
    _err([str(hr / "000000006.png"), str(lr / "000000006.png"), "64x64", "16x15", "no integer scale"], hr, lr)
    cv2.imwrite(str(lr / "000000006.png"), cv2.resize(img, (32, 32)))  # x2 among x4 pairs
    _err([str(hr / "000000006.png"), str(lr / "000000006.png"), "scale 2", "x4"], hr, lr)
    cv2.imwrite(str(lr / "000000006.png"), img)
    shutil.copy(lr / "000000006.png", lr / "000000006.webp")           # two LR candidates: the .png pairs
    assert PairSource.open(hr, lr).names(6)[1] == str(lr / "000000006.png")
    shutil.copy(hr / "000000006.png", hr / "000000006.jpg")
    _err([str(hr / "000000006"), "two HR images"], hr, lr)
    _err(["nope", "not found"], tmp_path / "nope", lr)
    with pytest.raises(PairError, match="pairs are x4, the training scale is 2"):
        PairDataset(PairSource.open(data["f"] / "hr", data["f"] / "lr"), scale=2)


def test_meta_info_files_select_pairs(data, tmp_path):
    f = data["f"]
    # the export's own Real-ESRGAN meta_info (paths relative to the export folder)
    src = PairSource.open(f / "hr", f / "lr", meta_info=f / "meta_info.txt")
    assert len(src) == 10
    meta = tmp_path / "m.txt"
    meta.write_text("hr/000000002.png, lr/000000002.png\nhr/000000007.png, lr/000000007.png\n")
    assert PairSource.open(f / "hr", f / "lr", meta_info=meta).keys == ("000000002", "000000007")
    meta.write_text("000000003.png, 000000003.png\n")             # names under the HR / LR roots
    assert PairSource.open(f / "hr", f / "lr", meta_info=meta).keys == ("000000003",)
    meta.write_text("000000004.png (64,64,3) 1\n000000001.png (64,64,3) 1\n")     # BasicSR style: first token
    assert PairSource.open(f / "hr", f / "lr", meta_info=meta).keys == ("000000001", "000000004")
    meta.write_text("000000004.png\n000000099.png\n")
    _err(["000000099.png", "not found", "line 2"], f / "hr", f / "lr", meta_info=meta)
    if "l" in data:
        meta.write_text("000000003.png (64,64,3) 1\n")
        s = PairSource.open(data["l"] / "hr.lmdb", data["l"] / "lr.lmdb", meta_info=meta)
        assert s.keys == ("000000003",) and s.kind == "lmdb"


def test_lmdb_partner_missing_is_one_line(data, tmp_path):
    if "l" not in data:
        pytest.skip("lmdb package not installed")
    l = tmp_path / "l"
    shutil.copytree(data["l"], l)
    lines = (l / "lr.lmdb" / "meta_info.txt").read_text().splitlines()
    (l / "lr.lmdb" / "meta_info.txt").write_text("\n".join(lines[:-1]) + "\n")
    _err([str(l / "hr.lmdb" / "000000009.png"), str(l / "lr.lmdb" / "000000009.png"), "no LR partner"],
         l / "hr.lmdb", l / "lr.lmdb")


def test_fifo_among_the_images_is_skipped_with_a_warning(data, tmp_path):
    hr, lr = _copy_pairs(data, tmp_path)
    os.mkfifo(hr / "zz.png")
    os.mkfifo(lr / "zz.png")
    warned = []
    src = PairSource.open(hr, lr, warn=warned.append)
    assert len(src) == 10 and len(warned) == 2 and all("not a regular file (FIFO)" in w for w in warned)
    meta = tmp_path / "m.txt"                   # a meta_info naming the FIFO: that pair is skipped, with a warning
    meta.write_text("zz.png\n000000001.png\n")
    warned.clear()
    assert PairSource.open(hr, lr, meta_info=meta, warn=warned.append).keys == ("000000001",)
    assert len(warned) == 1 and "zz.png" in warned[0] and "line 1" in warned[0]
    eps = hr / "000000002.png"                  # content that Pillow would hand to its EPS (Ghostscript) plugin
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n")
    _err([f"{hr / '000000002.png'}: cannot read the image header", str(lr / "000000002.png")], hr, lr)


def test_a_corrupt_pair_is_skipped_and_reported_with_both_names(data, tmp_path):
    hr, lr = _copy_pairs(data, tmp_path)
    src = PairSource.open(hr, lr)
    (lr / "000000004.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)    # damaged after the check
    got = [b for b in DataLoader(PairDataset(src, max_epochs=1, shuffle_buffer=0, shuffle_shards=False,
                                             gt_size=32), batch_size=1)]
    keys = [b["key"][0] for b in got]
    assert "000000004" not in keys and len(keys) == 9
    after = got[keys.index("000000005")]
    assert int(after["skipped"][0]) == 1 and str(lr / "000000004.png") in after["skip_msg"][0]
    assert int(after["index"][0]) == 5            # the skipped pair counts as consumed


@pytest.mark.slow
def test_fit_on_pairs_trains_exactly_as_on_the_shards_they_came_from(data, tmp_path):
    """`trainer fit` on the export (folders and LMDB) ends with the weights of the run on the one-sample shards."""
    from dataclasses import replace

    from safetensors.torch import load_file

    from trainer.config import preset
    from trainer.train import fit
    cfg = preset("realesrgan", "esrnet")
    cfg = replace(cfg, stage=replace(cfg.stage, iters=3),
                  net=replace(cfg.net, num_feat=8, num_block=1, num_grow_ch=4),
                  data=replace(cfg.data, gt_size=32, batch_size=2, num_workers=2, shuffle_buffer=4))
    fit(data["one"], cfg=cfg, out=tmp_path / "shards", tensorboard=False)
    want = load_file(str(tmp_path / "shards" / "esrnet" / "net_g_ema.safetensors"))
    for i, src in enumerate(_sources(data)):
        fit(None, cfg=cfg, out=tmp_path / f"pairs{i}", pairs=src, tensorboard=False)
        got = load_file(str(tmp_path / f"pairs{i}" / "esrnet" / "net_g_ema.safetensors"))
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want), src.kind
