from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from draw2digit.training import data

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_loads_and_verifies_both_splits(mnist_dir, monkeypatch):
    monkeypatch.setenv(data.ENV_DATA_DIR, str(mnist_dir))
    train, test = data.load_mnist(download=False)
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert np.bincount(test.labels).tolist() == TEST_COUNTS
    assert np.bincount(train.labels)[:3].tolist() == [5923, 6742, 5958]
    assert train.images.max() == 255 and train.images.min() == 0


def test_corrupted_file_is_rejected(mnist_dir, tmp_path, monkeypatch):
    for name in data.FILES:
        shutil.copy(mnist_dir / name, tmp_path / name)
    raw = bytearray(gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one wrong label
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path))
    with pytest.raises(data.DataIntegrityError, match="SHA-256"):
        data.load_split("test", download=False)


def test_header_checked():
    spec = data.FILES["t10k-labels-idx1-ubyte.gz"]
    bogus = gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20)
    with pytest.raises(data.DataIntegrityError, match="header"):
        data.parse_idx(bogus, spec, verify=False)
    with pytest.raises(data.DataIntegrityError, match="gzip"):
        data.parse_idx(b"not gzip", spec)


def test_missing_files_offline_message_names_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path))
    with pytest.raises(data.DataError) as err:
        data.load_split("test", download=True, progress=False)
    msg = str(err.value)
    assert data.ENV_DATA_DIR in msg and "t10k-images-idx3-ubyte.gz" in msg
    assert not list(Path(data.cache_dir()).glob("*")), "nothing half-written is left in the cache"


class _Server:
    """A loopback HTTP server for the download tests, serving one folder."""

    def __init__(self, folder: Path):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *a, **k: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_from_mirror_verifies_and_caches(mnist_dir, tmp_path, monkeypatch):
    served = tmp_path / "mirror"
    served.mkdir()
    for name in data.SPLITS["test"]:
        shutil.copy(mnist_dir / name, served / name)
    monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
    with _Server(served) as server:
        monkeypatch.setenv(data.ENV_MIRRORS, "http://127.0.0.1:9/ " + server.url)  # first mirror is down
        test = data.load_split("test", progress=False)
    assert np.bincount(test.labels).tolist() == TEST_COUNTS
    cached = sorted(p.name for p in data.cache_dir().iterdir())
    assert cached == sorted(data.SPLITS["test"])
    # A second load uses the cache: no server needed.
    assert data.load_split("test", download=False).images.shape == (10000, 28, 28)


def test_corrupted_download_leaves_cache_clean(mnist_dir, tmp_path, monkeypatch):
    served = tmp_path / "mirror"
    served.mkdir()
    good = (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(good[:-100])  # truncated
    monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
    with _Server(served) as server:
        monkeypatch.setenv(data.ENV_MIRRORS, server.url)
        with pytest.raises(data.DataError, match="could not download t10k-labels"):
            data.locate("t10k-labels-idx1-ubyte.gz", progress=False)
    assert list(data.cache_dir().iterdir()) == [], "no partial or corrupted file may stay in the cache"
