"""degradekit inspect (summary, histograms, pairs sheet, --verify) and degradekit replay (byte comparison)."""
import json
import shutil

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from cli import degradekit as cli
from degradekit.imageio import read_image


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    base = tmp_path_factory.mktemp("ir")
    src = base / "src"
    src.mkdir()
    for i, im in enumerate([skimage.data.astronaut(), skimage.data.chelsea()]):
        Image.fromarray(im).resize((120, 90), Image.LANCZOS).save(src / f"{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    out = base / "shards"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--patch", "64", "--step", "32",
                                 "--shard-size", "5", "--variants", "2", "--multiscale", "1,0.75", "--workers", "1",
                                 "--progress", "none", "--seed", "11"])
    assert r.exit_code == 3, r.output
    return src, out


def test_inspect_summary_histograms_sheet(dataset, tmp_path):
    _, out = dataset
    r = CliRunner().invoke(cli, ["inspect", str(out), "--out", str(tmp_path / "ins"), "--pairs", "6", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    m = json.loads((out / "manifest.json").read_text())
    # 120x90: 3 x 2 crops at scale 1; 90x67 at 0.75: 2 x 2 crops -> (6 + 4) per source, 2 sources
    assert s["samples"] == m["n_samples"] == 20 and s["pairs"] == 40 and s["shards"] == 4
    assert s["sources"] == 2 and s["skipped"] == 1 and "broken.png" in s["skipped_reasons"][0]
    assert s["multiscale_counts"] == {"1.0": 12, "0.75": 8} and s["records_read"] == 20
    hist = read_image(tmp_path / "ins" / "params.png")
    sheet = read_image(tmp_path / "ins" / "pairs.png")
    assert hist.shape[0] > 150 and hist.std() > 10
    assert sheet.shape[1] >= 4 * 2 * 160 and sheet.std() > 10
    r = CliRunner().invoke(cli, ["inspect", str(out), "--out", str(tmp_path / "ins2"), "--pairs", "0"])
    assert r.exit_code == 0 and "20 samples, 40 pairs" in r.output and "1 skipped" in r.output
    assert not (tmp_path / "ins2" / "pairs.png").exists()


def test_inspect_verify_catches_damage(dataset, tmp_path):
    _, out = dataset
    r = CliRunner().invoke(cli, ["inspect", str(out), "--verify", "--pairs", "0", "--out", str(tmp_path / "i")])
    assert r.exit_code == 0 and "verify: all 4 shards match" in r.output
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    p = bad / "shard-000001.tar"
    data = bytearray(p.read_bytes())
    data[2000] ^= 1
    p.write_bytes(bytes(data))
    (bad / "shard-000003.tar").unlink()
    shutil.copy(bad / "shard-000000.tar", bad / "shard-000009.tar")
    r = CliRunner().invoke(cli, ["inspect", str(bad), "--verify", "--pairs", "0", "--out", str(tmp_path / "j")])
    assert r.exit_code == 1, r.output
    assert "shard-000001.tar: sha256" in r.output and "shard-000003.tar: missing" in r.output
    assert "shard-000009.tar: shard not listed" in r.output
    # a truncated tar is a structural problem, not a crash
    p.write_bytes(bytes(data[:3000]))
    r = CliRunner().invoke(cli, ["inspect", str(bad), "--verify", "--pairs", "0", "--out", str(tmp_path / "k")])
    assert r.exit_code == 1 and "shard-000001.tar" in r.output
    r = CliRunner().invoke(cli, ["inspect", str(tmp_path)])
    assert r.exit_code == 1 and "manifest.json" in r.output


def test_replay_matches_from_source_and_from_stored_hr(dataset, tmp_path):
    src, out = dataset
    for key in ("0", "000000013", "19"):
        r = CliRunner().invoke(cli, ["replay", str(out), key])
        assert r.exit_code == 0, r.output
        assert "matches byte for byte" in r.output and "FAIL" not in r.output
        assert "ok   HR pixels" in r.output and "ok   lr1 bytes" in r.output and "ok   lr0 params" in r.output
    # the source moved: --source finds it; a different file is refused by its sha256
    moved = tmp_path / "moved.png"
    shutil.copy(src / "1.png", moved)
    r = CliRunner().invoke(cli, ["replay", str(out), "19", "--source", str(moved)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["replay", str(out), "19", "--source", str(src / "0.png")])
    assert r.exit_code == 1 and "FAIL source sha256" in r.output
    # without the source, the LRs replay from the stored HR
    r = CliRunner().invoke(cli, ["replay", str(out), "19", "--stored-hr"])
    assert r.exit_code == 0 and "using the HR stored" in r.output
    r = CliRunner().invoke(cli, ["replay", str(out), "--spread", "5"])
    assert r.exit_code == 0 and "replayed 5 samples: 5 match, 0 differ" in r.output, r.output
    assert "sample 000000000" in r.output and "sample 000000019" in r.output
    r = CliRunner().invoke(cli, ["replay", str(out), "3", "4"])
    assert r.exit_code == 0 and "replayed 2 samples: 2 match" in r.output
    r = CliRunner().invoke(cli, ["replay", str(out)])
    assert r.exit_code == 2 and "KEYS or --spread" in r.output
    r = CliRunner().invoke(cli, ["replay", str(out), "20"])
    assert r.exit_code == 1 and "out of range" in r.output
    r = CliRunner().invoke(cli, ["replay", str(out), "abc"])
    assert r.exit_code == 1 and "not a sample key" in r.output


def test_replay_detects_a_tampered_lr(dataset, tmp_path):
    """Replace one stored LR by a different valid PNG: replay must report the mismatch."""
    import io
    import tarfile

    from degradekit.synth.shards import ShardWriter, iter_samples
    _, out = dataset
    bad = tmp_path / "tampered"
    shutil.copytree(out, bad)
    p = bad / "shard-000000.tar"
    samples = list(iter_samples(p))
    w = ShardWriter(p)
    for key, fields in samples:
        for ext in sorted(fields):
            data = fields[ext]
            if key == "000000002" and ext == "lr1.png":
                b = io.BytesIO()
                Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(b, "PNG")
                data = b.getvalue()
            w.add(f"{key}.{ext}", data)
    w.commit()
    r = CliRunner().invoke(cli, ["replay", str(bad), "2"])
    assert r.exit_code == 1 and "FAIL lr1 bytes" in r.output and "ok   lr0 bytes" in r.output
    r = CliRunner().invoke(cli, ["replay", str(bad), "1", "2", "3"])
    assert r.exit_code == 1 and "2 match, 1 differ" in r.output and "sample(s) 000000002" in r.output
    assert tarfile.is_tarfile(p)


def test_help():
    for args in (["inspect", "--help"], ["replay", "--help"], ["manifest", "--help"], ["manifest", "merge", "--help"]):
        assert CliRunner().invoke(cli, args).exit_code == 0
