"""degradekit data fetch against a local HTTP server (127.0.0.1) serving archives the test builds.

The project never downloads anything in tests: the URL table is overridden with $DEGRADEKIT_URL_<NAME>/--url.
"""
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import degradekit as cli
from degradekit.synth.fetch import ARCHIVES, DATASET_ARCHIVES
from degradekit.synth.sources import DATASETS, resolve_sources


def _png(seed, h=40, w=48):
    b = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(b, "PNG")
    return b.getvalue()


def _zip(files: dict) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return b.getvalue()


def _tar(files: dict) -> bytes:
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return b.getvalue()


class _Server:
    """Serves ``files[path] = bytes`` with Range support; ``cut_next`` drops the connection mid-body once."""

    def __init__(self):
        self.files, self.requests, self.cut_next, self.ranges = {}, [], None, True
        srv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.requests.append((self.path, self.headers.get("Range")))
                data = srv.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and srv.ranges:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if srv.cut_next is not None:
                    n, srv.cut_next = srv.cut_next, None
                    self.wfile.write(body[:n])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def test_url_table_is_complete():
    assert ARCHIVES["DIV2K"].url == "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip"
    assert ARCHIVES["Flickr2K"].url == "https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar"
    assert ARCHIVES["OST"].url.endswith("OST_dataset.zip")
    assert set(DATASET_ARCHIVES) == set(DATASETS)
    for name, archives in DATASET_ARCHIVES.items():
        assert sorted(DATASETS[name]) == sorted(ARCHIVES[a].target for a in archives)


def test_fetch_resumes_cut_download_verifies_and_unpacks(server, tmp_path, monkeypatch):
    imgs = {f"DIV2K_train_HR/{i:04d}.png": _png(i) for i in range(1, 4)}
    junk = {"DIV2K_train_HR/readme.txt": b"x", "DIV2K_train_LR_bicubic/X4/0001x4.png": _png(9, 10, 12)}
    archive = _zip({**imgs, **junk})
    server.files["/DIV2K_train_HR.zip"] = archive
    monkeypatch.setenv("DEGRADEKIT_URL_DIV2K", server.url + "/DIV2K_train_HR.zip")
    root = tmp_path / "data"
    half = len(archive) // 2
    server.cut_next = half
    r = CliRunner().invoke(cli, ["data", "fetch", "DIV2K", "--data-root", str(root)])
    assert r.exit_code == 1 and "interrupted" in r.output and "run the same command again to resume" in r.output
    part = root / ".downloads" / "DIV2K_train_HR.zip.part"
    assert part.stat().st_size == half and not (root / "DIV2K").exists()
    # the missing dataset error names the folders looked in and where the archive lives
    with pytest.raises(Exception) as ei:
        resolve_sources("DIV2K", data_root_value=str(root))
    msg = str(ei.value)
    assert str(root / "DIV2K" / "DIV2K_train_HR") in msg and ARCHIVES["DIV2K"].url in msg and "data fetch" in msg
    r = CliRunner().invoke(cli, ["data", "fetch", "div2k", "--data-root", str(root)])
    assert r.exit_code == 0, r.output
    assert server.requests[-1] == ("/DIV2K_train_HR.zip", f"bytes={half}-")   # resumed, not restarted
    assert "resuming" in r.output and "recorded sha256" in r.output
    out = root / "DIV2K" / "DIV2K_train_HR"
    assert sorted(p.name for p in out.iterdir()) == ["0001.png", "0002.png", "0003.png"]  # HR images only
    for name, data in imgs.items():
        assert (root / "DIV2K" / name).read_bytes() == data
    assert not (root / ".downloads" / "DIV2K_train_HR.zip").exists() and not part.exists()
    import hashlib
    rec = json.loads((root / ".downloads" / "checksums.json").read_text())
    assert rec["DIV2K_train_HR.zip"] == {"bytes": len(archive), "sha256": hashlib.sha256(archive).hexdigest()}
    src = resolve_sources("DIV2K", data_root_value=str(root))
    assert [p.name for p in src.files] == ["0001.png", "0002.png", "0003.png"]
    # already there: nothing downloaded
    n = len(server.requests)
    r = CliRunner().invoke(cli, ["data", "fetch", "DIV2K", "--data-root", str(root)])
    assert r.exit_code == 0 and "already holds" in r.output and len(server.requests) == n
    # the server now serves different bytes: the recorded sha256 catches it
    server.files["/DIV2K_train_HR.zip"] = _zip({**imgs, "DIV2K_train_HR/0004.png": _png(4)})
    r = CliRunner().invoke(cli, ["data", "fetch", "DIV2K", "--data-root", str(root), "--force"])
    assert r.exit_code == 1 and "differs from the one recorded" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["0001.png", "0002.png", "0003.png"]  # nothing lost


def test_corrupt_archive_rejected_nothing_unpacked(server, tmp_path):
    archive = bytearray(_zip({"DIV2K_train_HR/0001.png": _png(1, 200, 200)}))
    archive[60] ^= 0xFF  # inside the compressed data of the only member
    server.files["/d.zip"] = bytes(archive)
    root = tmp_path / "data"
    r = CliRunner().invoke(cli, ["data", "fetch", "DIV2K", "--data-root", str(root), "--url", server.url + "/d.zip"])
    assert r.exit_code == 1 and "corrupt" in r.output
    assert not (root / "DIV2K").exists() and (root / ".downloads" / "DIV2K_train_HR.zip.bad").exists()
    assert not (root / ".downloads" / "checksums.json").exists()


def test_tar_archive_no_range_server_and_df2k_source(server, tmp_path, monkeypatch):
    server.files["/div.zip"] = _zip({"DIV2K_train_HR/0001.png": _png(1)})
    server.files["/f.tar"] = _tar({"Flickr2K/Flickr2K_HR/000001.png": _png(2),
                                   "Flickr2K/Flickr2K_LR_bicubic/X4/000001x4.png": _png(3, 10, 12)})
    monkeypatch.setenv("DEGRADEKIT_URL_DIV2K", server.url + "/div.zip")
    monkeypatch.setenv("DEGRADEKIT_URL_FLICKR2K", server.url + "/f.tar")
    monkeypatch.setenv("DEGRADEKIT_DATA", str(tmp_path / "envroot"))
    server.ranges = False
    server.cut_next = 100
    r = CliRunner().invoke(cli, ["data", "fetch", "DF2K"])
    assert r.exit_code == 1 and "interrupted" in r.output
    r = CliRunner().invoke(cli, ["data", "fetch", "DF2K", "--keep"])   # restarts from 0: no Range support
    assert r.exit_code == 0, r.output
    root = tmp_path / "envroot"
    assert (root / ".downloads" / "Flickr2K.tar").exists()  # --keep
    src = resolve_sources("df2k")
    assert src.rels == ("DIV2K/DIV2K_train_HR/0001.png", "Flickr2K/Flickr2K_HR/000001.png")
    r = CliRunner().invoke(cli, ["data", "list"])
    assert "DIV2K/DIV2K_train_HR (1 files)" in r.output and "OST/OutdoorSceneTrain_v2 (missing)" in r.output
    r = CliRunner().invoke(cli, ["data", "fetch", "DF2K", "--url", "http://x"])
    assert r.exit_code == 1 and "single archive" in r.output


def test_http_error_is_one_line(server, tmp_path):
    r = CliRunner().invoke(cli, ["data", "fetch", "OST", "--data-root", str(tmp_path),
                                 "--url", server.url + "/missing.zip"])
    assert r.exit_code == 1 and "HTTP 404" in r.output and r.output.count("\n") == 2  # "downloading" + error


def test_help():
    for args in (["data", "--help"], ["data", "fetch", "--help"], ["data", "list", "--help"]):
        assert CliRunner().invoke(cli, args).exit_code == 0
