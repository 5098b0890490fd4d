"""Preview of the issue-11 kinds: tile labels name the kind and its main parameters, box/disk/motion kernels get
a heat map (median does not: it has no kernel), and `preview --stats` has a panel per new parameter and kind."""
import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data

from cli import degradekit
from degradekit import preview as pv
from degradekit.config import preset
from degradekit.pipeline import sample

IMG = np.zeros((10, 12, 3), np.float32)


@pytest.mark.parametrize("name,st,want", [
    ("blur1", {"blur": {"kind": "motion", "length": 5.25, "angle": -30.0}}, ["blur1 12x10", "motion l=5.2",
                                                                             "angle -30 deg"]),
    ("blur1", {"blur": {"kind": "disk", "radius": 1.5}}, ["blur1 12x10", "disk r=1.50"]),
    ("blur1", {"blur": {"kind": "box", "width": 2.25}}, ["blur1 12x10", "box w=2.25"]),
    ("blur1", {"blur": {"kind": "median", "size": 5}}, ["blur1 12x10", "median 5x5"]),
    ("resize1", {"resize": {"direction": "down", "factor": 0.5, "size_ref": "current", "filter": "lanczos3",
                            "antialias": True, "down_up": {"factor": 0.75, "mode": "area"}}},
     ["resize1 12x10", "down x0.50", "lanczos3 aa via x0.75 area"]),
    ("noise1", {"noise": {"kind": "speckle", "sigma": 12.0, "space": "luma", "seed": 1}},
     ["noise1 12x10", "speckle s=12.0", "luma"]),
    ("noise1", {"noise": {"kind": "gaussian", "sigma": 3.0, "space": "chroma", "seed": 1}},
     ["noise1 12x10", "gauss s=3.0", "chroma"]),
    ("noise1", {"noise": {"kind": "salt_pepper", "amount": 0.005, "salt_ratio": 0.4, "gray": True, "seed": 1}},
     ["noise1 12x10", "s&p 0.0050", "salt 0.40 gray"]),
    ("noise1", {"noise": {"kind": "uniform", "amplitude": 4.0, "space": "rgb", "seed": 1}},
     ["noise1 12x10", "uniform a=4.0", "rgb"]),
    ("jpeg1", {"jpeg_quality": None, "compression": {"codec": "hevc", "quality": 28, "preset": "fast",
                                                     "pix_fmt": "yuv444p"}},
     ["jpeg1 12x10", "hevc q=28", "fast yuv444p"]),
    ("jpeg1", {"jpeg_quality": None, "compression": {"codec": "jpeg", "quality": 80, "subsampling": "444"}},
     ["jpeg1 12x10", "jpeg q=80 444"]),
    ("jpeg1", {"jpeg_quality": None, "compression": {"codec": "avif", "quality": 50, "speed": 8}},
     ["jpeg1 12x10", "avif q=50 speed 8"]),
    ("jpeg1", {"jpeg_quality": None, "compression": {"codec": "jpeg2000", "rate": 20.0}},
     ["jpeg1 12x10", "jpeg2000 1:20.0"]),
    ("halo1", {"halo": {"amount": 0.5, "radius": 1.25, "threshold": 2.0}},
     ["halo1 12x10", "halo a=0.50 r=1.25", "threshold 2.0"]),
    ("banding1", {"banding": {"bits": 5}}, ["banding1 12x10", "banding 5 bits"]),
    ("dither1", {"dither": {"levels": 8, "method": "atkinson"}}, ["dither1 12x10", "dither atkinson", "8 levels"]),
    ("color1", {"color": {"brightness": 0.01, "contrast": 1.02, "saturation": 0.9, "gamma": 1.05}},
     ["color1 12x10", "b=+0.010 c=1.020", "sat=0.900 g=1.050"]),
])
def test_tile_labels_name_kind_and_parameters(name, st, want):
    assert pv._stage_label(name, IMG, {"stages": [st]}) == want


def test_final_label_names_codec_and_filter():
    f = {"resize_first": False, "sinc": None, "filter": "mitchell", "antialias": True,
         "compression": {"codec": "webp", "quality": 70}}
    assert pv._stage_label("final", IMG, {"final": f}) == ["final 12x10", "webp,resize,sinc", "mitchell aa webp q=70"]


def test_contact_sheet_heat_maps_for_new_kernels():
    """One heat-map tile per drawn kernel except median; rows hold the applied tiles, names in order."""
    hr = np.ascontiguousarray(data.astronaut()[100:196, 150:246])
    cfg = preset("realworld")
    seeds = list(range(6))
    sheet, recs = pv.contact_sheet(hr, cfg, seeds, tile=48)
    assert sheet.dtype == np.uint8
    kinds = [st["blur"]["kind"] for r in recs for st in r["stages"] if st["blur"]]
    assert {"disk", "motion"} <= set(kinds) or {"disk", "median"} <= set(kinds)
    # the width of each row = tiles x (48 + 2); count them from the record
    for seed, rec in zip(seeds, recs):
        stages = __import__("degradekit.pipeline", fromlist=["x"]).apply_stages(hr, rec)
        steps = [n for n, _ in stages if not n.startswith("final_") and not (n.startswith("jpeg") and n != "jpeg1")]
        kernels = sum(1 for st in rec["stages"] if st["blur"] and st["blur"]["kind"] != "median")
        kernels += rec["final"]["sinc"] is not None
        tiles = 1 + len(steps) + 1 + kernels  # HR, steps (usm ... final), LR zoom, kernels
        row = sheet[seeds.index(seed) * (48 + 3 * 12 + 4)]
        nonwhite = np.flatnonzero((row != 255).any(axis=1))
        assert nonwhite.max() < tiles * 50 <= sheet.shape[1]


def test_stats_panels_for_every_new_parameter():
    rng = np.random.default_rng(1)
    recs = [sample(rng, preset("realworld")).to_dict() for _ in range(3000)]
    cols = {}
    for r in recs:
        for k, v in pv._plot_values(r).items():
            cols.setdefault(k, []).append(v)
    for key in ("final.codec", "stage1.codec", "final.quality (webp)", "final.speed (avif)", "final.preset (h264)",
                "final.pix_fmt (h264)", "final.filter", "final.antialias", "stage1.resize.filter",
                "stage1.resize.down_up.factor", "stage1.blur.radius", "stage1.blur.length", "stage1.blur.angle",
                "stage1.blur.width", "stage1.blur.size (median)", "stage1.noise.space", "stage1.noise.amplitude",
                "stage1.noise.sigma (speckle)", "stage1.noise.amount", "stage1.noise.salt_ratio",
                "stage1.halo.amount", "stage1.banding.bits", "stage1.dither.method", "stage1.dither.levels",
                "stage1.extras", "stage2.order", "stage1.subsampling (jpeg)"):
        assert key in cols, key
    assert set(cols["stage2.order"]) <= {"".join(p) for p in __import__("itertools").permutations("BRHN")}
    assert len(set(cols["stage2.order"])) == 24
    img = pv.param_histograms(recs)
    assert img.shape[1] == 4 * 240 and img.shape[0] > 20 * 150   # about 100 panels, 4 a row


def test_cli_stats_realworld(tmp_path):
    out = tmp_path / "s.png"
    r = CliRunner().invoke(degradekit, ["preview", "--stats", "500", "--preset", "realworld", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 10000


def test_too_small_message_names_the_image_size_not_the_crop(tmp_path):
    """(issue 9) a 100000x1 image used to be reported as "400x1"."""
    import cv2

    p = tmp_path / "strip.png"
    cv2.imwrite(str(p), np.zeros((1, 100000, 3), np.uint8))
    r = CliRunner().invoke(degradekit, ["preview", str(p), "--out", str(tmp_path / "o.png")])
    assert r.exit_code == 1
    assert r.output.strip() == f"Error: {p}: 100000x1 is too small (its crop is 400x1) (at least 21x21 px)"


def test_bar_labels_stay_distinct():
    from degradekit.drawing import short_labels

    assert short_labels(["bicubic_a50", "bicubic_a75", "lanczos3", "box", "floyd_steinberg"]) == \
        ["bicu_a50", "bicu_a75", "lanczos3", "box", "floyd_st"]
    assert short_labels(["yuv420p", "yuv420p10le", "yuv444p10le"]) == ["yuv420p", "yuv420p1", "yuv444p1"]
