"""benchmarks/gpu_check.py stays runnable as the trainer changes: the shards it makes are read by the trainer's
reader, the command options it passes exist, and its fastest sections run end to end on CPU (``--smoke``)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_shards_are_read_by_the_trainer(gc, tmp_path):
    from trainer.data import iter_val_pairs
    from trainer.losses import USM_CONTEXT
    urls = gc._write_shards(tmp_path, 5, 32, per_shard=2)
    assert len(urls) == 3
    pairs = list(iter_val_pairs(urls))
    assert [k for k, *_ in pairs] == [f"{i:09d}" for i in range(5)]
    for _, hr, lr, scale in pairs:
        assert scale == 4 and hr.shape[0] >= 32 + 2 * USM_CONTEXT and hr.shape == (4 * lr.shape[0], 4 * lr.shape[1], 3)


def test_the_options_it_passes_exist(gc, tmp_path):
    import cli
    opts = gc.fit_options(gc.SMOKE, tmp_path / "vgg.pth", "cpu")
    r = CliRunner().invoke(cli.trainer, ["fit", str(tmp_path / "missing.tar"), "--out", str(tmp_path / "o"),
                                         "--workers", "1", *opts])
    assert r.exit_code == 1 and "missing.tar" in r.output, r.output     # 2 would be an unknown option
    for flag in ("--half", "--fp32", "--device"):
        assert flag in CliRunner().invoke(cli.trainer, ["infer", "--help"]).output


@pytest.mark.slow
def test_smoke_run_of_env_and_infer(tmp_path):
    out = tmp_path / "g.json"
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--device", "cpu",
                        "--only", "env,infer", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(out.read_text())
    sec = res["sections"]
    assert res["mode"] == "smoke" and sec["env"]["cuda_available"] in (True, False)
    assert sec["infer/fp32"]["rc"] == 0 and sec["infer/fp32"]["output"] == [192, 192, 3]
    assert len(sec["infer/fp32"]["seconds_per_image"]) == 2 and sec["infer/fp16_vs_fp32"]["max_grey_levels"] == 0
