"""``get_file``: a file from a URL, cached on disk, as ``keras.utils.get_file``.

Where Keras would fail with a bare ``Exception`` when the machine is offline, this raises
`multilayer.errors.DatasetNotFoundError` naming the URL, the reason and the path where a
copy of the file can be put by hand (it is then used as is, after checking ``file_hash``).
Downloads go to a temporary file next to the target and are moved into place only once
complete and verified, so the cache never holds a partial file. Archives are extracted only
when every member stays inside the extraction directory (no absolute paths, no ``..``, no
links out) and their declared sizes add up to at most `MAX_EXTRACTED_BYTES`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from multilayer.errors import DataError, DatasetNotFoundError

__all__ = ["MAX_EXTRACTED_BYTES", "get_file", "hash_file", "validate_file"]

#: Seconds to wait for the server to connect or send data.
TIMEOUT = 30.0
#: Archives whose members declare more than this in total are refused (zip/tar bombs).
MAX_EXTRACTED_BYTES = 2**33
_CHUNK = 2**20


def _keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser())


def _writable_dir(base: Path) -> Path:
    """``base`` if it can be created and written, else ``<tmp>/.keras`` (as Keras)."""
    with contextlib.suppress(OSError):
        base.mkdir(parents=True, exist_ok=True)
    if base.is_dir() and os.access(base, os.W_OK):
        return base
    return Path(tempfile.gettempdir()) / ".keras"


def _hasher(algorithm: str, file_hash: str | None) -> Any:
    if algorithm == "sha256" or (
        algorithm == "auto" and file_hash is not None and len(file_hash) == 64
    ):
        return hashlib.sha256()
    if algorithm in ("md5", "auto"):
        return hashlib.md5()
    raise ValueError(f"hash_algorithm must be 'auto', 'sha256' or 'md5', got {algorithm!r}")


def hash_file(fpath: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """The hex digest of a file (``"sha256"`` or ``"md5"``)."""
    hasher = _hasher(algorithm, None)
    with open(fpath, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath: str | os.PathLike[str], file_hash: str, algorithm: str = "auto") -> bool:
    """Whether the file's hash (sha256 for a 64-digit ``file_hash``, else md5) matches."""
    hasher = _hasher(algorithm, file_hash)
    with open(fpath, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest() == str(file_hash).lower()


def get_file(
    fname: str | None = None,
    origin: str | None = None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: str | list[str] | None = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    force_download: bool = False,
) -> str:
    """Download ``origin`` to ``cache_dir/cache_subdir/fname`` unless already there.

    Args:
        fname: the local file name (the URL's last path component by default); not a path.
        origin: the URL (``http(s)://``, ``ftp://`` or ``file://``).
        untar: deprecated Keras spelling of ``extract=True`` for tar archives.
        md5_hash: deprecated Keras spelling of ``file_hash`` with md5.
        file_hash: expected sha256 (64 hex digits) or md5 of the file. A cached file that
            does not match is downloaded again; a download that does not match is discarded.
        cache_subdir: subdirectory of ``cache_dir`` (an absolute path is used as is).
        hash_algorithm: ``"auto"``, ``"sha256"`` or ``"md5"``.
        extract: extract the downloaded tar or zip archive and return the directory.
        archive_format: ``"auto"`` (tar then zip), ``"tar"``, ``"zip"`` or None.
        cache_dir: default ``$KERAS_HOME``, else ``~/.keras`` (a temporary directory's
            ``.keras`` when that cannot be written), as Keras.
        force_download: download even when a cached copy exists.

    Returns:
        The path of the file, or of the extraction directory with ``extract``/``untar``.

    Raises:
        DatasetNotFoundError: the file is not cached and cannot be downloaded (offline, DNS
            failure, HTTP error...), with the path where to put a copy by hand.
        DataError: the downloaded file does not match ``file_hash``, or an archive is
            unsafe or not an archive of the expected format.
        ValueError: no ``origin``, or an ``fname`` that is a path.
    """
    if not origin:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    _hasher(hash_algorithm, file_hash)  # validates hash_algorithm before any work
    base = _writable_dir(Path(cache_dir).expanduser() if cache_dir else _keras_home())
    datadir = base / cache_subdir
    provided = fname
    if fname is None:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(
                f"Can't parse the file name from the origin provided: {origin!r}. "
                "Please specify the `fname` argument."
            )
    fname = os.fspath(fname)
    if os.sep in fname or "/" in fname or fname in (".", ".."):
        raise ValueError(
            "Paths are not accepted as the `fname` argument. To choose the file's directory, "
            f"use `cache_dir` and `cache_subdir`. Received: fname={fname!r}"
        )
    if extract or untar:
        if provided and "." in fname:
            target = datadir / fname
            extraction_dir = datadir / f"{fname[: fname.find('.')]}_extracted"
        else:
            target = datadir / f"{fname}_archive"
            extraction_dir = datadir / fname
    else:
        target = datadir / fname

    download = force_download or not target.exists()
    if (
        not download
        and file_hash is not None
        and not validate_file(target, file_hash, hash_algorithm)
    ):
        print(
            f"A local file was found at {target}, but its {hash_algorithm} hash does not "
            f"match {file_hash}: downloading it again."
        )
        download = True
    if download:
        _download(origin, target, file_hash, hash_algorithm)

    if extract or untar:
        _extract(target, extraction_dir, "tar" if untar else archive_format)
        return str(extraction_dir)
    return str(target)


def _download(origin: str, target: Path, file_hash: str | None, algorithm: str) -> None:
    def unreachable(reason: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"get_file: cannot download {origin}: {reason}. If this machine is offline, "
            f"fetch the file elsewhere and put it at {target}; get_file then uses it"
            + (" (after checking file_hash)" if file_hash else "")
            + "."
        )

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            error.errno, f"get_file: cannot create {target.parent}: {error.strerror}"
        ) from None
    print(f"Downloading data from {origin}")
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        hasher = _hasher(algorithm, file_hash)
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(origin, timeout=TIMEOUT) as response:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        hasher.update(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as error:
                raise unreachable(f"HTTP error {error.code} ({error.reason})") from None
            except urllib.error.URLError as error:
                raise unreachable(str(error.reason)) from None
            except (OSError, http.client.HTTPException, ValueError) as error:
                raise unreachable(str(error) or type(error).__name__) from None
            out.flush()
            os.fsync(out.fileno())
        if file_hash is not None and hasher.hexdigest() != str(file_hash).lower():
            raise DataError(
                f"get_file: incomplete or corrupted download of {origin}: its {hasher.name} "
                f"hash is {hasher.hexdigest()}, expected {file_hash}. Nothing was saved."
            )
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _extract(archive: Path, destination: Path, archive_format: str | list[str] | None) -> None:
    if archive_format is None:
        formats: list[str] = []
    elif archive_format == "auto":
        formats = ["tar", "zip"]
    elif isinstance(archive_format, str):
        formats = [archive_format]
    else:
        formats = list(archive_format)
    for kind in formats:
        if kind not in ("tar", "zip"):
            raise ValueError(f"archive_format must be 'auto', 'tar', 'zip' or None, got {kind!r}")
    for kind in formats:
        if kind == "tar" and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                _check_members(
                    archive,
                    destination,
                    [(m.name, m.size) for m in members],
                    [m.name for m in members if m.issym() or m.islnk() or m.isdev()],
                )
                # filter="data" (Python >= 3.10.12 / 3.11.4) re-checks every member as it is
                # written; older versions rely on the checks above (no links, no escapes).
                if hasattr(tarfile, "data_filter"):
                    _extract_into(destination, functools.partial(tar.extractall, filter="data"))
                else:
                    _extract_into(destination, tar.extractall)
            return
        if kind == "zip" and zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                infos = zipped.infolist()
                _check_members(archive, destination, [(i.filename, i.file_size) for i in infos], [])
                _extract_into(destination, zipped.extractall)
            return
    raise DataError(
        f"get_file: {archive} is not a {' or '.join(formats) or 'supported'} archive, so it "
        "cannot be extracted"
    )


def _check_members(
    archive: Path, destination: Path, members: list[tuple[str, int]], links: list[str]
) -> None:
    root = destination.resolve()
    total = 0
    for name, size in members:
        resolved = (root / name).resolve()
        if os.path.isabs(name) or (resolved != root and root not in resolved.parents):
            raise DataError(f"get_file: refusing {archive}: member {name!r} escapes {destination}")
        total += max(int(size), 0)
    if links:
        raise DataError(f"get_file: refusing {archive}: it holds links or devices ({links[0]!r})")
    if total > MAX_EXTRACTED_BYTES:
        raise DataError(
            f"get_file: refusing {archive}: its members declare {total} bytes, more than "
            f"the limit of {MAX_EXTRACTED_BYTES}"
        )


def _extract_into(destination: Path, extract_all: Callable[[Path], object]) -> None:
    """Extract into a temporary sibling, then move it into place (no half-extracted dir)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        extract_all(staging)
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
