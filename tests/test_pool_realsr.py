"""Pool folder loading/validation and the RealSR pipeline (alignment, replay, determinism, engine hooks)."""
import hashlib
import json

import numpy as np
import pytest

from degradekit.kernels import gaussian_kernel
from degradekit.pool import Pool, PoolError
from degradekit.pool import build as pb
from degradekit.pool import realsr
from degradekit.pool.kernelgan import kernel_quality, kernel_x4_from_x2, postprocess_kernel


def make_pool(path, kernels, noise_patches=(), scale=4, outlier=()):
    """A pool folder with known x2 kernels (no KernelGAN run), written through the real assembly code."""
    path.mkdir(parents=True, exist_ok=True)
    for sub in ("kernels", "noise", ".progress"):
        (path / sub).mkdir(exist_ok=True)
    settings = pb.BuildSettings(scale=scale)
    entries = []
    n = max(len(kernels), len(noise_patches))
    for i in range(n):
        sha = hashlib.sha256(f"img{i}".encode()).hexdigest()
        iid = pb.image_id(f"img{i}.png", sha)
        marker = {"sha256": sha, "id": iid, "path": f"img{i}.png", "status": "ok", "size": [512, 512],
                  "kernel": None, "kernel_key": settings.kernel_key(), "noise": [], "noise_key": settings.noise_key()}
        if i < len(kernels):
            raw = np.pad(kernels[i], (13 - kernels[i].shape[0]) // 2)
            k2 = postprocess_kernel(raw)
            q = kernel_quality(raw, k2, {"gan": 0.5})
            q["outlier"] = ["forced by the test"] if i in outlier else []
            rec = {"id": iid, "source": {"path": f"img{i}.png", "sha256": sha}, "quality": q,
                   "outlier": bool(q["outlier"]), "raw": raw.tolist(), "x2": k2.tolist()}
            if scale == 4:
                rec["x4"] = kernel_x4_from_x2(k2).tolist()
            (path / "kernels" / f"{iid}.json").write_text(json.dumps(rec))
            marker["kernel"] = iid
        if i < len(noise_patches):
            from degradekit.imageio import write_png

            nid = f"{iid}-y00000-x00000"
            write_png(path / "noise" / f"{nid}.png", noise_patches[i])
            marker["noise"] = [{"id": nid, "file": f"noise/{nid}.png", "source": f"img{i}.png", "y": 0, "x": 0,
                                "mean": 0.0, "var": 0.0}]
        (path / ".progress" / f"{sha}.json").write_text(json.dumps(marker))
        entries.append({"path": f"img{i}.png", "sha256": sha})
    pb.assemble(path, entries, settings)
    return path


def _noise_patch(seed, sd=3.0, size=96):
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(128 + rng.normal(0, sd, (size, size, 3))), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    ks = [gaussian_kernel(13, 1.6, 0.9, 0.5), gaussian_kernel(13, 1.2, 1.2, 0.0), gaussian_kernel(11, 2.0, 1.0, 2.0)]
    return make_pool(tmp_path_factory.mktemp("pool") / "P", ks, [_noise_patch(0), _noise_patch(1, 5.0)])


def _hr(h=96, w=120, seed=0):
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:100 + h, 150:150 + w])


# ------------------------------------------------------------------------------------------ the Pool
def test_pool_protocol(pool_dir):
    p = Pool.load(pool_dir, scale=4)
    assert len(p.kernel_ids(4)) == 3 and len(p.kernel_ids(2)) == 3 and p.kernel_ids(1) == ()
    assert all(i.endswith("@x4") for i in p.kernel_ids(4))
    for s in (2, 4):
        for kid in p.kernel_ids(s):
            k = p.kernel(kid)
            assert k.dtype == np.float64 and k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
            assert abs(k.sum() - 1) < 1e-9 and k.min() >= 0
            cy = (k.sum(1) * np.arange(k.shape[0])).sum()
            assert abs(cy - k.shape[0] // 2) < 5e-3
    assert len(p.noise_ids()) == 2
    n = p.noise(p.noise_ids()[1])
    assert n.dtype == np.float32 and n.shape == (96, 96, 3)
    assert np.abs(n.mean(axis=(0, 1))).max() < 1e-6 and 3 < n.std() * 255 < 7
    assert p.digest() == Pool.load(pool_dir).digest() and len(p.digest()) == 64
    with pytest.raises(PoolError, match="no kernel with id"):
        p.kernel("nope@x4")


def test_outliers_left_out_unless_asked(tmp_path):
    d = make_pool(tmp_path / "P", [gaussian_kernel(13, 1.5, 1, 0), gaussian_kernel(13, 1.1, 1, 0)], outlier={1})
    p = Pool.load(d, scale=4)
    assert len(p.kernel_ids(4)) == 1
    assert len(Pool.load(d, include_outliers=True).kernel_ids(4)) == 2
    meta = json.loads((d / "pool.json").read_text())
    assert meta["counts"]["outliers"] == 1 and meta["rejected"][0]["kind"] == "kernel"


def test_relative_width_outlier(tmp_path):
    """With >= 5 kernels, one far wider than the pool's median (a KernelGAN run that drifted) is left out."""
    ks = [gaussian_kernel(13, 1.4 + 0.05 * i, 1.0, 0.3 * i) for i in range(5)] + [gaussian_kernel(13, 8.0, 6.0, 0)]
    d = make_pool(tmp_path / "P", ks)
    meta = json.loads((d / "pool.json").read_text())
    assert len(meta["kernels"]["outliers"]) == 1 and meta["kernels"]["outliers"][0] == meta["kernels"]["ids"][5]
    assert "pool median" in meta["rejected"][-1]["reason"]
    p = Pool.load(d, scale=4)
    assert len(p.kernel_ids(4)) == 5 and not any(i.startswith(meta["kernels"]["ids"][5]) for i in p.kernel_ids(2))


def _one_line_error(path, **kw):
    with pytest.raises(PoolError) as e:
        Pool.load(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return msg


def test_bad_pools_rejected_with_one_line(tmp_path, pool_dir):
    assert "no such folder" in _one_line_error(tmp_path / "missing")
    (tmp_path / "empty_dir").mkdir()
    assert "pool.json missing" in _one_line_error(tmp_path / "empty_dir")
    # empty pool: nothing usable
    empty = make_pool(tmp_path / "E", [], [])
    assert "empty pool" in _one_line_error(empty)
    # x2-only pool asked for x4
    x2 = make_pool(tmp_path / "X2", [gaussian_kernel(13, 1.5, 1, 0)], scale=2)
    assert "no kernels for x4" in _one_line_error(x2, scale=4)
    Pool.load(x2, scale=2)
    # noise only, asked for kernels
    nz = make_pool(tmp_path / "N", [], [_noise_patch(3)])
    assert "no kernels for x2" in _one_line_error(nz, scale=2)
    # all kernels outliers
    allout = make_pool(tmp_path / "O", [gaussian_kernel(13, 1.5, 1, 0)], outlier={0})
    assert "outliers" in _one_line_error(allout, scale=4)
    # corrupt npz
    import shutil

    bad = tmp_path / "C"
    shutil.copytree(pool_dir, bad)
    (bad / "kernels.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    assert "kernels.npz is corrupt" in _one_line_error(bad)
    # missing noise file
    miss = tmp_path / "M"
    shutil.copytree(pool_dir, miss)
    victim = sorted((miss / "noise").iterdir())[0]
    victim.unlink()
    assert f"noise/{victim.name} missing" in _one_line_error(miss)
    # corrupt pool.json
    cj = tmp_path / "J"
    shutil.copytree(pool_dir, cj)
    (cj / "pool.json").write_text("{not json")
    assert "pool.json is corrupt" in _one_line_error(cj)
    # kernels that do not sum to 1
    ns = tmp_path / "S"
    shutil.copytree(pool_dir, ns)
    with np.load(ns / "kernels.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["x4"] = arrays["x4"] * 2
    np.savez(ns / "kernels.npz", **arrays)
    assert "do not sum to 1" in _one_line_error(ns)


def test_corrupt_noise_png_detected_when_read(tmp_path, pool_dir):
    import shutil

    d = tmp_path / "P"
    shutil.copytree(pool_dir, d)
    f = sorted((d / "noise").iterdir())[0]
    f.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    p = Pool.load(d)
    nid = f.stem
    with pytest.raises(PoolError, match=f"noise/{f.name} is corrupt"):
        p.noise(nid)


# ------------------------------------------------------------------------------------- the pipeline
def test_decimation_grid_is_the_pixel_centre_grid():
    """A linear ramp blurred with a symmetric kernel and decimated must read f(s*i + (s-1)/2): the same
    pixel-centre convention as cv2.resize INTER_AREA (a half-pixel error shows up as b/2 per pixel)."""
    from degradekit.ops.blur import blur

    h, w = 64, 96
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a, by, bx = 0.1, 0.004, 0.007
    img = np.repeat((a + by * yy + bx * xx)[..., None], 3, axis=2).astype(np.float32)
    for s in (2, 4):
        k = realsr.decimation_kernel(gaussian_kernel(13, 1.7, 0.9, 0.7), s)
        lr = blur(img, k)[::s, ::s]
        i, j = np.mgrid[0:h // s, 0:w // s]
        want = a + by * (s * i + (s - 1) / 2) + bx * (s * j + (s - 1) / 2)
        m = slice(3, -3)
        assert np.abs(lr[m, m, 0] - want[m, m]).max() < 2e-5
        import cv2

        area = cv2.resize(img, (w // s, h // s), interpolation=cv2.INTER_AREA)
        assert np.abs(area[m, m, 0] - want[m, m]).max() < 2e-5


def test_apply_matches_a_reference_implementation(pool_dir):
    """apply_realsr = float blur + decimate + zero-mean noise crop, rounded once (no uint8 truncation)."""
    import cv2

    pool = Pool.load(pool_dir, scale=4)
    hr = _hr(96, 128)
    kid = pool.kernel_ids(4)[0]
    nid = pool.noise_ids()[0]
    params = realsr.RealsrParams(scale=4, cleanup=False, kernel_id=kid, noise={"id": nid, "u": 0.25, "v": 0.5})
    lr = realsr.apply_realsr(hr, params, pool)
    assert lr.shape == (24, 32, 3) and lr.dtype == np.uint8
    k = realsr.decimation_kernel(pool.kernel(kid), 4)
    ref = cv2.filter2D(hr.astype(np.float64) / 255, -1, k, borderType=cv2.BORDER_REFLECT_101)[::4, ::4]
    noise = pool.noise(nid)
    y0 = int(0.25 * (96 - 24 + 1))
    x0 = int(0.5 * (96 - 32 + 1))
    ref = np.clip(ref + noise[y0:y0 + 24, x0:x0 + 32], 0, 1)
    ref8 = np.clip(np.rint(ref * 255), 0, 255)
    assert np.abs(lr.astype(np.float64) - ref8).max() <= 1
    # no truncation bias: the mean error is ~0, not -0.5 grey levels
    assert abs(float((lr.astype(np.float64) - ref * 255).mean())) < 0.05


def test_sample_replay_is_byte_exact_and_deterministic(pool_dir):
    pool = Pool.load(pool_dir, scale=4)
    hr = _hr(100, 124)
    cfg = realsr.RealsrConfig(scale=4, jpeg_prob=0.5)
    seen = set()
    for seed in range(6):
        p = realsr.sample_realsr(np.random.default_rng(seed), cfg, pool)
        lr = realsr.apply_realsr(hr, p, pool)
        assert lr.shape == (25, 31, 3)
        back = realsr.RealsrParams.from_dict(json.loads(json.dumps(p.to_dict())))
        assert back == p
        assert realsr.apply_realsr(hr, back, pool).tobytes() == lr.tobytes()
        q = realsr.sample_realsr(np.random.default_rng(seed), cfg, pool)
        assert q == p and realsr.apply_realsr(hr, q, pool).tobytes() == lr.tobytes()
        seen.add((p.kernel_id, p.noise["id"], p.jpeg_quality is None))
    assert len(seen) > 2  # the draws do vary
    # a reloaded pool gives the same bytes
    p = realsr.sample_realsr(np.random.default_rng(0), cfg, pool)
    assert realsr.apply_realsr(hr, p, Pool.load(pool_dir)).tobytes() == realsr.apply_realsr(hr, p, pool).tobytes()


def test_final_step_and_cleanup_options(pool_dir):
    pool = Pool.load(pool_dir, scale=2)
    hr = _hr(96, 96)
    cfg = realsr.RealsrConfig(scale=2, cleanup=True, final=True, final_sinc_prob=1.0)
    p = realsr.sample_realsr(np.random.default_rng(5), cfg, pool)
    assert p.final is not None and p.final["sinc"] is not None and p.cleanup
    lr = realsr.apply_realsr(hr, p, pool)
    assert lr.shape == (24, 24, 3)
    assert realsr.hr_target(hr, p).shape == (48, 48, 3)
    d = json.loads(json.dumps(p.to_dict()))
    assert realsr.apply_realsr(hr, d, pool).tobytes() == lr.tobytes()
    plain = realsr.RealsrParams(scale=2, cleanup=True, kernel_id=p.kernel_id, noise=p.noise)
    assert realsr.apply_realsr(hr, plain, pool).tobytes() != lr.tobytes()


def test_config_and_params_validation(pool_dir):
    with pytest.raises(ValueError, match="scale"):
        realsr.RealsrConfig(scale=3)
    with pytest.raises(ValueError, match="jpeg_range"):
        realsr.RealsrConfig(jpeg_range=(90, 20))
    with pytest.raises(ValueError, match="final"):
        realsr.RealsrConfig(final=True, jpeg_prob=0.5)
    with pytest.raises(ValueError, match="unknown key"):
        realsr.RealsrConfig.from_dict({"scale": 4, "blur": 1})
    assert realsr.RealsrConfig.from_dict(realsr.realsr_preset(2).to_dict()) == realsr.realsr_preset(2)
    with pytest.raises(ValueError, match="unknown keys"):
        realsr.RealsrParams.from_dict({"scale": 4, "cleanup": False, "kernel_id": "a@x4", "extra": 1})
    with pytest.raises(ValueError, match="noise"):
        realsr.RealsrParams.from_dict({"scale": 4, "cleanup": False, "kernel_id": "a@x4",
                                       "noise": {"id": "n", "u": 1.0, "v": 0.0}})
    # noise asked from a pool without noise: a PoolError before anything is drawn
    with pytest.raises(PoolError, match="no noise patches"):
        realsr.check_pool_for(realsr.RealsrConfig(scale=4), _NoNoise(Pool.load(pool_dir)))


class _NoNoise:
    def __init__(self, p):
        self.p, self.path = p, p.path

    def kernel_ids(self, s):
        return self.p.kernel_ids(s)

    def noise_ids(self):
        return ()


def test_engine_uses_the_pool_through_its_hooks(pool_dir):
    """The Real-ESRGAN engine draws pool kernels/noise via pool_prob; replay through JSON is exact."""
    import dataclasses

    import degradekit
    from degradekit.config import preset

    cfg = preset("realesrgan")
    stages = tuple(dataclasses.replace(st, blur_prob=1.0, kernel=dataclasses.replace(st.kernel, pool_prob=1.0),
                                       noise_prob=1.0, noise=dataclasses.replace(st.noise, pool_prob=1.0))
                   for st in cfg.stages)
    cfg = dataclasses.replace(cfg, stages=stages)
    pool = Pool.load(pool_dir, scale=cfg.scale)
    hr = _hr(96, 96)
    lr, params = degradekit.degrade(hr, cfg, seed=3, pool=pool)
    d = params.to_dict()
    text = json.dumps(d)
    assert "@x4" in text and "-y00000-x00000" in text
    assert degradekit.apply(hr, json.loads(text), pool).tobytes() == lr.tobytes()


def test_sheets_write_pngs(pool_dir, tmp_path):
    from degradekit.imageio import read_image
    from degradekit.pool.sheets import kernel_grid, noise_sheet

    pool = Pool.load(pool_dir)
    kernel_grid(pool, tmp_path / "k.png")
    noise_sheet(pool, tmp_path / "n.png")
    k = read_image(tmp_path / "k.png")
    n = read_image(tmp_path / "n.png")
    assert k.shape[0] > 96 * 2 and k.shape[1] >= 96 * 3  # two scales, three kernels
    assert n.shape[0] > 128 and n.shape[1] >= 128 * 2
    assert not np.all(k == 255) and not np.all(n == 255)
