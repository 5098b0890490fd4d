"""`degradekit synth` with the issue-11 kinds in its config: shard bytes identical with 1 and 2 workers, every
sample replays (`degradekit replay`), and the records hold the new kinds."""
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import degradekit as cli

REPO = Path(__file__).resolve().parents[1]

# realworld with every optional kind made frequent (colour jitter included, to test it; it is 0 in the preset)
MIXED = """preset = "realworld"
[[stages]]
halo_prob = 0.3
banding_prob = 0.2
dither_prob = 0.2
color_prob = 0.2
step_order = "shuffle"
[stages.kernel]
box_prob = 0.15
disk_prob = 0.15
motion_prob = 0.15
median_prob = 0.15
[stages.noise]
uniform_prob = 0.2
speckle_prob = 0.2
salt_pepper_prob = 0.1
[stages.compression.weights]
jpeg = 0.3
webp = 0.2
avif = 0.1
jpeg2000 = 0.1
h264 = 0.1
mpeg2 = 0.1
mpeg4 = 0.1
[stages.compression.avif]
speed = [9, 10]
[[stages]]
[final]
filter_prob = 0.8
[final.compression.weights]
jpeg = 0.2
webp = 0.2
avif = 0.1
h264 = 0.1
hevc = 0.1
vp9 = 0.1
av1 = 0.2
[final.compression.hevc]
presets = ["ultrafast"]
[final.compression.vp9]
presets = ["realtime"]
"""
ARGS = ["--src", "sample", "--patch", "64", "--step", "224", "--shard-size", "16", "--seed", "3",
        "--progress", "none"]


def _members(d: Path) -> dict:
    out = {}
    for p in sorted(d.glob("shard-*.tar")):
        with tarfile.open(p) as t:
            for m in t.getmembers():
                out[m.name] = t.extractfile(m).read()
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("vocab_synth")
    cfg = d / "mixed.toml"
    cfg.write_text(MIXED)
    one = d / "w1"
    r = CliRunner().invoke(cli, ["synth", "--out", str(one), "--config", str(cfg), "--workers", "1", *ARGS])
    assert r.exit_code == 0, r.output
    two = d / "w2"
    p = subprocess.run([sys.executable, "-m", "cli", "synth", "--out", str(two), "--config", str(cfg),
                        "--workers", "2", *ARGS], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return one, two


def test_worker_count_does_not_change_a_byte(runs):
    one, two = runs
    a = {p.name: p.read_bytes() for p in sorted(one.glob("shard-*.tar"))}
    b = {p.name: p.read_bytes() for p in sorted(two.glob("shard-*.tar"))}
    assert len(a) >= 2 and a == b
    assert (one / "manifest.json").read_bytes() == (two / "manifest.json").read_bytes()


def test_records_hold_the_new_kinds(runs):
    one, _ = runs
    recs = [json.loads(v) for k, v in _members(one).items() if k.endswith(".json")]
    assert len(recs) >= 30
    params = [v["params"] for r in recs for v in r["variants"]]
    s1 = [p["stages"][0] for p in params]
    codecs = {(s.get("compression") or {"codec": "jpeg"})["codec"] for s in s1 if s["jpeg_quality"] or
              s.get("compression")}
    assert len(codecs) >= 4, codecs
    assert {s["blur"]["kind"] for s in s1 if s["blur"]} & {"box", "disk", "motion", "median"}
    assert any("halo" in s or "banding" in s or "dither" in s or "color" in s for s in s1)
    assert all("steps" in s for s in s1)
    assert len({(p["final"].get("compression") or {"codec": "jpeg"})["codec"] for p in params}) >= 3


def test_every_sample_replays(runs):
    one, _ = runs
    r = CliRunner().invoke(cli, ["replay", str(one), "--spread", "12"])
    assert r.exit_code == 0, r.output
