"""MNIST from the four original IDX files: find, download, verify, parse.

Search order: ``$DRAW2DIGIT_DATA_DIR``, then the per-user cache directory. Only
when a file is in neither place is it downloaded (into the cache), and a download
is verified before it is renamed into place, so the cache never holds a
half-written or corrupted file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from draw2digit.paths import user_path

ENV_DATA_DIR = "DRAW2DIGIT_DATA_DIR"
ENV_CACHE_DIR = "DRAW2DIGIT_CACHE_DIR"
ENV_MIRRORS = "DRAW2DIGIT_MNIST_MIRRORS"

#: Public mirrors that serve the original files byte for byte (tried in order).
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


@dataclass(frozen=True)
class IdxFile:
    name: str
    magic: int
    shape: tuple[int, ...]
    gz_sha256: str
    raw_sha256: str


# Published SHA-256 values; the raw ones also accept files that were re-gzipped.
FILES: dict[str, IdxFile] = {
    f.name: f
    for f in (
        IdxFile(
            "train-images-idx3-ubyte.gz",
            0x00000803,
            (60000, 28, 28),
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        IdxFile(
            "train-labels-idx1-ubyte.gz",
            0x00000801,
            (60000,),
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        IdxFile(
            "t10k-images-idx3-ubyte.gz",
            0x00000803,
            (10000, 28, 28),
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        IdxFile(
            "t10k-labels-idx1-ubyte.gz",
            0x00000801,
            (10000,),
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    )
}

SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class DataError(Exception):
    """MNIST could not be found, fetched or trusted; the message says what to do."""


class DataIntegrityError(DataError):
    """A file does not match its published checksum or IDX header."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (n, 28, 28) uint8, 0 = paper, 255 = ink
    labels: np.ndarray  # (n,) uint8


def cache_dir() -> Path:
    """Where downloaded MNIST files are kept."""
    return user_path(ENV_CACHE_DIR, "cache", "mnist")


def search_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        dirs.append(Path(env))
    dirs.append(cache_dir())
    return dirs


def mirrors() -> list[str]:
    env = os.environ.get(ENV_MIRRORS)
    if env:
        return [m if m.endswith("/") else m + "/" for m in env.split()]
    return list(MIRRORS)


def parse_idx(packed: bytes, spec: IdxFile, *, verify: bool = True) -> np.ndarray:
    """Decompress and parse one IDX file, checking the published digest and header."""
    try:
        raw = gzip.decompress(packed)
    except (OSError, EOFError) as exc:
        raise DataIntegrityError(f"{spec.name}: not a valid gzip file ({exc})") from exc
    if verify:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != spec.raw_sha256:
            raise DataIntegrityError(
                f"{spec.name}: SHA-256 of the data is {digest}, expected {spec.raw_sha256}"
            )
    if len(raw) < 8:
        raise DataIntegrityError(f"{spec.name}: too short for an IDX header")
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    if magic != spec.magic or tuple(dims) != spec.shape:
        raise DataIntegrityError(
            f"{spec.name}: header {magic:#010x} {dims}, expected {spec.magic:#010x} {spec.shape}"
        )
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(spec.shape)):
        raise DataIntegrityError(f"{spec.name}: {data.size} data bytes, expected {np.prod(spec.shape)}")
    return data.reshape(spec.shape)


def _download(name: str, dest_dir: Path, *, progress: bool, timeout: float) -> Path:
    """Fetch one file from the first mirror that serves a verified copy."""
    spec = FILES[name]
    dest_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for base in mirrors():
        url = base + name
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out, progress=progress, timeout=timeout)
            parse_idx(tmp.read_bytes(), spec)  # raises on a corrupted copy
            final = dest_dir / name
            os.replace(tmp, final)
            return final
        except (urllib.error.URLError, OSError, DataIntegrityError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(
        f"could not download {name} ({'; '.join(errors)}). Offline? Put the four MNIST files "
        f"({', '.join(FILES)}) in a folder and set {ENV_DATA_DIR} to it."
    )


def _fetch(url: str, out, *, progress: bool, timeout: float) -> None:
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=url.rsplit("/", 1)[-1],
            disable=not progress,
        ) as bar:
            received = 0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")


def locate(name: str, *, download: bool = True, progress: bool = True, timeout: float = 30.0) -> Path:
    """Path of a verified-to-exist file, downloading it into the cache if needed."""
    if name not in FILES:
        raise KeyError(name)
    for d in search_dirs():
        if (d / name).is_file():
            return d / name
    if not download:
        raise DataError(_missing_message([name]))
    return _download(name, cache_dir(), progress=progress, timeout=timeout)


def _missing_message(names: list[str]) -> str:
    where = ", ".join(str(d) for d in search_dirs())
    return (
        f"MNIST file(s) not found: {', '.join(names)} (looked in {where}). "
        f"Set {ENV_DATA_DIR} to a folder holding {', '.join(FILES)}."
    )


def load_split(split: str = "train", *, download: bool = True, progress: bool = True) -> Split:
    """Images and labels of ``train`` (60k) or ``test`` (10k), checksummed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, not {split!r}")
    img_name, lbl_name = SPLITS[split]
    arrays = []
    for name in (img_name, lbl_name):
        path = locate(name, download=download, progress=progress)
        try:
            arrays.append(parse_idx(path.read_bytes(), FILES[name]))
        except DataIntegrityError as exc:
            raise DataIntegrityError(f"{path}: {exc}. Delete it and try again.") from exc
    return Split(images=arrays[0], labels=arrays[1])


def load_mnist(*, download: bool = True, progress: bool = True) -> tuple[Split, Split]:
    """(train, test) splits."""
    return load_split("train", download=download, progress=progress), load_split(
        "test", download=download, progress=progress
    )


def dataset_checksums() -> dict[str, str]:
    """SHA-256 of each .gz, for the model card."""
    return {name: spec.gz_sha256 for name, spec in FILES.items()}


def split_train_validation(
    train: Split, validation_size: int, seed: int, limit: int | None = None
) -> tuple[Split, Split]:
    """A seeded shuffle, then the last ``validation_size`` images are held out."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train.labels))
    val_idx, train_idx = order[:validation_size], order[validation_size:]
    if limit is not None:
        train_idx = train_idx[:limit]
        val_idx = val_idx[: max(1, min(validation_size, limit // 5))]
    return (
        Split(train.images[train_idx], train.labels[train_idx]),
        Split(train.images[val_idx], train.labels[val_idx]),
    )
