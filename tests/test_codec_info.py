"""degradekit.ops.codec_info: availability that reflects the installed libraries, one-line refusals, and the
library versions that the manifest records."""

import json
import subprocess
import sys

import cv2
import PIL
import pytest
from PIL import features

from degradekit.ops import codec_info as C


def test_available_lists_every_kind_and_the_still_codecs_work_here():
    a = C.available()
    assert list(a) == list(C.KINDS) and all(isinstance(v, bool) for v in a.values())
    assert a["jpeg"] and a["webp"] == features.check("webp") and a["jpeg2000"] == features.check("jpg_2000")
    for k in C.KINDS:
        if a[k]:
            C.require(k)  # no error
        else:
            with pytest.raises(ValueError, match=f"codec '{k}': not available"):
                C.require(k)


def test_require_unknown_kind_one_line():
    for bad in ("h265", "JPEG", "", 3):
        with pytest.raises(ValueError, match=r"unknown \(expected one of jpeg, webp, avif") as e:
            C.require(bad)
        assert "\n" not in str(e.value)


def test_missing_pillow_feature_is_unavailable(monkeypatch):
    real = features.check
    monkeypatch.setattr(features, "check", lambda f: False if f in ("webp", "avif") else real(f))
    C._still_reason.cache_clear()
    try:
        a = C.available()
        assert a["webp"] is False and a["avif"] is False and a["jpeg"] is True
        with pytest.raises(ValueError, match=r"codec 'webp': not available \(Pillow .* without WebP") as e:
            C.require("webp")
        assert "\n" not in str(e.value)
        from degradekit.ops.webp import webp
        import numpy as np

        with pytest.raises(ValueError, match="codec 'webp': not available"):
            webp(np.zeros((4, 4, 3), np.float32), 50)
    finally:
        C._still_reason.cache_clear()


def test_no_pyav_means_no_video_kinds(monkeypatch):
    from degradekit.ops import video as V

    monkeypatch.setattr(V, "_import_av", lambda: None)
    a = C.available()
    assert not any(a[k] for k in V.CODECS) and a["jpeg"]
    with pytest.raises(ValueError, match=r"^codec 'h264': not available \(PyAV is not installed: "
                                         r"pip install 'degradekit\[video\]'\)$"):
        C.require("h264")
    assert "pyav" not in C._video_versions()


def test_still_codecs_do_not_import_pyav():
    code = ("import sys; from degradekit.ops import codec_info as C; [C.require(k) for k in "
            "('jpeg', 'webp', 'avif', 'jpeg2000')]; import degradekit.ops.video; print('av' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_library_versions():
    v = C.library_versions()
    json.dumps(v)
    assert list(v) == sorted(v) and all(isinstance(x, str) and x for x in v.values())
    assert v["opencv"] == cv2.__version__ and "libjpeg-turbo" in v["libjpeg-turbo"]
    assert v["pillow"] == PIL.__version__ and v["libwebp"] == features.version("webp")
    assert v["openjpeg"] == features.version("jpg_2000")
    try:
        import av
    except ImportError:
        return
    assert v["pyav"] == av.__version__
    assert v["libavcodec"] == ".".join(map(str, av.library_versions["libavcodec"]))
    a = C.available()
    if a["h264"]:
        assert v["libx264"].startswith("core ") and v["libx264"][5:8].isdigit()
    if a["hevc"]:
        assert v["libx265"][0].isdigit()
    if a["av1"]:
        assert v["libsvtav1"] and v["libdav1d"][0].isdigit()


def test_manifest_records_versions_and_replay_reports_a_difference(tmp_path):
    import skimage.data
    from click.testing import CliRunner
    from PIL import Image

    from cli import degradekit as cli

    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(skimage.data.astronaut()).resize((64, 64), Image.LANCZOS).save(src / "a.png")
    out = tmp_path / "shards"
    r = CliRunner().invoke(cli, ["synth", "--src", str(src), "--out", str(out), "--patch", "64", "--shard-size", "1",
                                 "--workers", "1", "--progress", "none", "--seed", "3"])
    assert r.exit_code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    assert man["codecs"] == C.library_versions()
    r = CliRunner().invoke(cli, ["replay", str(out), "0"])
    assert r.exit_code == 0 and "codec libraries" not in r.output, r.output
    man["codecs"]["libwebp"] = "0.0.1"
    man["codecs"]["libfoo"] = "9"
    (out / "manifest.json").write_text(json.dumps(man))
    r = CliRunner().invoke(cli, ["replay", str(out), "0"])
    assert r.exit_code == 0 and "matches byte for byte" in r.output, r.output  # informational: bytes decide
    lines = [ln for ln in r.output.splitlines() if "codec libraries differ from the recording" in ln]
    assert len(lines) == 1
    assert f"libfoo 9 -> none, libwebp 0.0.1 -> {features.version('webp')}" in lines[0]
