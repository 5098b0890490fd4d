"""Kernel builders against the published implementation's kernels (tests/data/kernels.npz, 1050 rows)."""
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from degradekit import kernels as K
from degradekit.params import KernelParams

DATA = Path(__file__).parent / "data" / "kernels.npz"


@pytest.fixture(scope="module")
def ref():
    d = np.load(DATA)
    return {k: d[k] for k in d.files}


def _centre(k: np.ndarray, n: int = 21) -> np.ndarray:
    p = (n - k.shape[0]) // 2
    return np.pad(k, p)


def _build(kind: str, row: np.ndarray) -> np.ndarray:
    _, size, sx, sy, th, beta, om = row
    size = int(size)
    if kind in ("iso", "aniso"):
        return K.gaussian_kernel(size, sx, sy, th)
    if kind.startswith("generalized"):
        return K.generalized_gaussian_kernel(size, sx, sy, th, beta)
    if kind.startswith("plateau"):
        return K.plateau_kernel(size, sx, sy, th, beta)
    return K.sinc_kernel(size, om)


def test_reference_layout(ref):
    assert ref["kernels"].shape == (1050, 21, 21)
    assert list(ref["kinds"]) == list(K.KINDS) + ["sinc"]
    # every kind and every size is covered
    assert sorted(set(ref["params"][:, 0].astype(int))) == list(range(7))
    assert sorted(set(ref["params"][:, 1].astype(int))) == list(range(7, 22, 2))


@pytest.mark.parametrize("kind_index", range(7))
def test_kernels_match_reference(ref, kind_index):
    kind = str(ref["kinds"][kind_index])
    rows = np.flatnonzero(ref["params"][:, 0] == kind_index)
    assert len(rows) == 150
    for r in rows:
        row = ref["params"][r]
        k = _build(kind, row)
        size = int(row[1])
        assert k.dtype == np.float64 and k.shape == (size, size)
        assert abs(k.sum() - 1.0) < 1e-12
        err = np.abs(_centre(k) - ref["kernels"][r]).max()
        assert err < 1e-7, (kind, row, err)


def test_build_kernel_dispatch_matches_builders(ref):
    # build_kernel(KernelParams) is what the pipeline uses: same numbers as the public builders
    names = list(ref["kinds"])
    for r in range(0, 1050, 37):
        row = ref["params"][r]
        kind = str(names[int(row[0])])
        _, size, sx, sy, th, beta, om = row
        kp = KernelParams(kind=kind, size=int(size),
                          **({"omega_c": float(om)} if kind == "sinc" else
                             {"sigma_x": float(sx), "sigma_y": float(sy), "theta": float(th),
                              **({"beta": float(beta)} if kind[0] in "gp" else {})}))
        np.testing.assert_array_equal(K.build_kernel(kp), _build(kind, row))


def test_sinc_centre_and_formula():
    # centre value omega_c^2 / (4 pi) before normalisation; off-centre omega J1(omega r) / (2 pi r)
    size, om = 9, 2.0
    k = K.sinc_kernel(size, om)
    ax = np.arange(-4, 5, dtype=np.float64)
    r = np.hypot(ax[:, None], ax[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = om * special.j1(om * r) / (2 * np.pi * r)
    raw[4, 4] = om ** 2 / (4 * np.pi)
    np.testing.assert_allclose(k, raw / raw.sum(), rtol=0, atol=1e-15)
    # the centre value is the r -> 0 limit of the formula (continuity)
    eps = 1e-6
    assert abs(om * special.j1(om * eps) / (2 * np.pi * eps) - om ** 2 / (4 * np.pi)) < 1e-9


def test_sinc_pad_to_is_zero_padding_after_normalisation():
    k = K.sinc_kernel(7, 1.3)
    kp = K.sinc_kernel(7, 1.3, pad_to=21)
    assert kp.shape == (21, 21)
    np.testing.assert_array_equal(kp[7:14, 7:14], k)
    assert np.count_nonzero(kp) == np.count_nonzero(k)
    np.testing.assert_array_equal(K.sinc_kernel(21, 1.3, pad_to=21), K.sinc_kernel(21, 1.3))


def test_gaussian_closed_form_axes_and_rotation():
    # p = (x = column offset, y = row offset): sigma_x widens the kernel along columns
    k = K.gaussian_kernel(21, 3.0, 0.5, 0.0)
    assert k[10, :].std() > k[:, 10].std()
    assert k[10, 13] > k[13, 10]
    # rotating by pi/2 swaps the axes
    np.testing.assert_allclose(K.gaussian_kernel(21, 3.0, 0.5, np.pi / 2), k.T, atol=1e-15)
    # closed form for an isotropic Gaussian
    ax = np.arange(-5, 6)
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 1.7 ** 2))
    np.testing.assert_allclose(K.gaussian_kernel(11, 1.7, 1.7, 0.0), g / g.sum(), atol=1e-15)
    # beta = 1 turns the generalized Gaussian into the Gaussian
    np.testing.assert_allclose(K.generalized_gaussian_kernel(15, 1.2, 2.1, 0.4, 1.0),
                               K.gaussian_kernel(15, 1.2, 2.1, 0.4), atol=1e-15)


@pytest.mark.parametrize("call", [
    lambda: K.gaussian_kernel(8, 1.0, 1.0, 0.0),
    lambda: K.gaussian_kernel(0, 1.0, 1.0, 0.0),
    lambda: K.gaussian_kernel(7, 0.0, 1.0, 0.0),
    lambda: K.generalized_gaussian_kernel(7, 1.0, 1.0, 0.0, -1.0),
    lambda: K.plateau_kernel(7, 1.0, float("nan"), 0.0, 1.0),
    lambda: K.sinc_kernel(7, 0.0),
    lambda: K.sinc_kernel(7, 1.0, pad_to=20),
])
def test_builders_reject_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


def test_pool_kernel_lookup():
    class Pool:
        def kernel(self, kid):
            return {"a": np.full((5, 5), 1 / 25)}[kid]

    np.testing.assert_array_equal(K.build_kernel(KernelParams(kind="pool", pool_id="a"), Pool()),
                                  np.full((5, 5), 1 / 25))
    with pytest.raises(ValueError, match="no pool"):
        K.build_kernel(KernelParams(kind="pool", pool_id="a"))
