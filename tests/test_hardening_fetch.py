"""`degradekit data fetch` under attack and on a full disk (issue 9): unpack bounds, free space, one-line errors.

Served by the local HTTP server of test_fetch (127.0.0.1); full disks are real small tmpfs mounts."""
import dataclasses
import io
import zipfile

from click.testing import CliRunner

from cli import degradekit as cli
from degradekit.synth import fetch as fetch_mod
from test_fetch import _png, _zip, server  # noqa: F401  (the server fixture)
from test_hardening_synth import tmpfs


def _fetch(server, root, data: bytes):  # noqa: F811
    server.files["/d.zip"] = data
    return CliRunner().invoke(cli, ["data", "fetch", "DIV2K", "--data-root", str(root), "--url",
                                    server.url + "/d.zip"])


def _error_line(r) -> str:
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    errs = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(errs) == 1 and "Traceback" not in r.output, r.output
    return errs[0]


def _nothing_unpacked(root):
    assert not (root / "DIV2K" / "DIV2K_train_HR").exists()
    assert not [p for p in root.rglob("*") if ".unpacking-" in p.name]


def test_zip_bomb_is_refused_before_writing(server, tmp_path):  # noqa: F811
    bomb = _zip({"DIV2K_train_HR/0001.png": _png(1), "DIV2K_train_HR/0002.png": b"\0" * (20 << 20)})
    assert len(bomb) < 100_000
    root = tmp_path / "data"
    line = _error_line(_fetch(server, root, bomb))
    assert "member DIV2K_train_HR/0002.png" in line and "zip bomb" in line, line
    _nothing_unpacked(root)
    assert not (root / ".downloads" / "checksums.json").exists()  # a refused archive is not the reference


def test_absolute_bound_from_the_dataset_size(server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setitem(fetch_mod.ARCHIVES, "DIV2K", dataclasses.replace(fetch_mod.ARCHIVES["DIV2K"],
                                                                         max_unpacked=5000))
    imgs = {f"DIV2K_train_HR/{i:04d}.png": _png(i) for i in range(1, 4)}  # ~5.8 kB each, incompressible
    root = tmp_path / "data"
    line = _error_line(_fetch(server, root, _zip(imgs)))
    assert "member DIV2K_train_HR/0001.png" in line and "at most 5.0 kB for DIV2K" in line, line
    _nothing_unpacked(root)


def test_file_and_folder_of_the_same_name_is_one_line(server, tmp_path):  # noqa: F811
    for order in (("a.png", "a.png/b.png"), ("a.png/b.png", "a.png")):
        root = tmp_path / f"data{len(order[0])}"
        z = _zip({f"DIV2K_train_HR/{n}": _png(i) for i, n in enumerate(order)})
        line = _error_line(_fetch(server, root, z))
        assert f"member DIV2K_train_HR/{order[1]}: cannot unpack" in line, line
        _nothing_unpacked(root)


def _big_images(n=3, size=200):
    return _zip({f"DIV2K_train_HR/{i:04d}.png": _png(i, size, size) for i in range(n)})  # ~120 kB each


def test_full_disk_while_downloading(server, tmp_path):  # noqa: F811
    with tmpfs(tmp_path / "m", "96k") as root:
        line = _error_line(_fetch(server, root, _big_images()))
        assert "DIV2K_train_HR.zip.part: cannot write the download: No space left on device" in line, line
        _nothing_unpacked(root)


def test_free_space_checked_before_unpacking(server, tmp_path):  # noqa: F811
    data = _big_images()
    with tmpfs(tmp_path / "m", f"{len(data) // 1024 + 120}k") as root:  # the archive fits, its contents do not
        line = _error_line(_fetch(server, root, data))
        assert "needs" in line and "free: nothing unpacked" in line, line
        _nothing_unpacked(root)
        assert (root / ".downloads" / "DIV2K_train_HR.zip").exists()  # kept: free space, fetch again


def test_full_disk_while_unpacking(server, tmp_path):  # noqa: F811
    # 400 members of 64 bytes: 25 kB declared (the free-space check passes) but 1.6 MB of tmpfs pages
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        for i in range(400):
            z.writestr(f"DIV2K_train_HR/{i:04d}.png", bytes([i % 256]) * 64)
    with tmpfs(tmp_path / "m", "512k") as root:
        line = _error_line(_fetch(server, root, b.getvalue()))
        assert "member DIV2K_train_HR/" in line and "cannot unpack: No space left on device" in line, line
        _nothing_unpacked(root)
