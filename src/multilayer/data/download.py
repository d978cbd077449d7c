"""Fetching dataset files: use a verified local copy, else download one, atomically.

``fetch_file`` gives back the path of a file whose MD5 checksum is known to match. The
checksum is either of the *decompressed* content (MNIST publishes these; they hold
whichever mirror or recompressed copy the file came from) or of the *file as downloaded*
(Fashion-MNIST publishes only these), chosen by ``md5_of``.

Policy, in order:

* A file already in ``dataset_dir`` is verified and used. Reading never writes into the
  data directory: a successful verification is remembered in the user's cache directory
  (``multilayer.data.paths.cache_dir() / "verified"``, one small JSON record per file),
  keyed by the file's absolute path, size and modification time, so later loads skip the
  work (decompressing and hashing MNIST's 47 MB of training images takes about 0.3 s).
  Where the cache cannot be written, the files are verified once per process instead.
  The record guards against damaged files, not against tampering.
* A local file whose checksum does NOT match is never overwritten or deleted: it might be
  the user's. ``DataError`` says so, and deleting the file lets the next call download it.
* Otherwise each mirror is tried in turn (``urllib``, with a timeout). The download is
  streamed to a temporary file in ``dataset_dir``, verified, fsync'ed, then moved into
  place with ``os.replace``, so the file name only ever holds a complete, verified file.
  A copy that fails verification is deleted and the next mirror tried.
* If some mirror served bad content and none a good one: ``DataError`` naming the file,
  expected and actual MD5. If no mirror could be reached: ``DatasetNotFoundError`` saying
  which files to put in which directory. Either way nothing is left behind: no temporary
  file, and no directory created for the download.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from multilayer.data.paths import DATA_ENV_VAR, cache_dir
from multilayer.errors import DataError, DatasetNotFoundError
from multilayer.utils.files import atomic_write_bytes, fsync_directory

__all__ = ["Md5Of", "fetch_file", "fetch_files", "file_md5", "mirrors_from_env"]

#: What a checksum covers: the decompressed content of a .gz file, or the file's bytes.
Md5Of = Literal["decompressed", "file"]

#: Seconds to wait for a mirror to connect or send data.
DEFAULT_TIMEOUT = 30.0
# A mirror serving more than this is broken or hostile: stop before filling the disk.
_MAX_DOWNLOAD_BYTES = 2**31
_CHUNK = 2**20
_GZIP_MAGIC = b"\x1f\x8b"
# Failures of a connection (URLError, socket errors, timeouts are all OSErrors), caught
# only around network calls so that a local disk error is not mistaken for one.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)
# Errors the gzip module raises for a damaged stream.
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)

# Verifications done in this process: (path, size, mtime_ns, md5, md5_of).
_verified: set[tuple[str, int, int, str, str]] = set()


def fetch_file(
    name: str,
    dataset_dir: str | os.PathLike[str],
    mirrors: Sequence[str],
    md5: str,
    *,
    md5_of: Md5Of = "decompressed",
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Return the path of ``dataset_dir/name``, verified, downloading it if absent.

    Args:
        name: the file name (no directory part); also the last part of each URL.
        dataset_dir: where the file lives; created only if a download starts.
        mirrors: base URLs tried in order; the file's URL is ``mirror + "/" + name``.
        md5: expected MD5, as 32 hex digits.
        md5_of: ``"decompressed"`` if ``md5`` is the checksum of the gzip-decompressed
            content (a file that is not gzip is hashed as is), ``"file"`` if it is the
            checksum of the file's own bytes.
        timeout: seconds to wait for each mirror.

    Raises:
        DataError: the local file's checksum does not match (it is left untouched), or
            every mirror that answered served content failing verification.
        DatasetNotFoundError: the file is not on disk and no mirror could be reached; the
            message lists the file and the directory to put it in.
    """
    return fetch_files({name: md5}, dataset_dir, mirrors, md5_of=md5_of, timeout=timeout)[name]


def fetch_files(
    files: Mapping[str, str],
    dataset_dir: str | os.PathLike[str],
    mirrors: Sequence[str],
    *,
    md5_of: Md5Of = "decompressed",
    timeout: float = DEFAULT_TIMEOUT,
    title: str | None = None,
) -> dict[str, Path]:
    """``fetch_file`` for several files of one dataset, in order.

    Args:
        files: file name -> expected MD5.
        dataset_dir, mirrors, md5_of, timeout: as for ``fetch_file``.
        title: the dataset's name for messages (default: the directory's name).

    Returns:
        File name -> verified path, in the order of ``files``.

    Raises:
        DataError: as for ``fetch_file``.
        DatasetNotFoundError: a file is missing and no mirror could be reached (the others
            are not tried then); the message lists every file still missing.
    """
    dataset_dir = Path(dataset_dir)
    _check_md5_of(md5_of)
    paths = {}
    for name, md5 in files.items():
        try:
            paths[name] = _fetch(name, dataset_dir, mirrors, md5.lower(), md5_of, timeout)
        except _Unreachable as exc:
            missing = [n for n in files if not (dataset_dir / n).is_file()]
            raise DatasetNotFoundError(
                _offline_message(title or dataset_dir.name, dataset_dir, missing, exc.failures)
            ) from None
    return paths


def file_md5(path: str | os.PathLike[str], md5_of: Md5Of = "decompressed") -> str:
    """The MD5 (hex) of a file's bytes, or of its gzip-decompressed content.

    Memory use is constant whatever the size.

    Raises:
        DataError: ``md5_of="decompressed"`` and the file is gzip but corrupt.
    """
    _check_md5_of(md5_of)
    try:
        return _content_md5(Path(path), md5_of)
    except _GZIP_ERRORS as exc:
        raise DataError(f"{os.fspath(path)}: {_gzip_reason(exc)}") from None


def mirrors_from_env(
    mirrors: Sequence[str] | str | None, env_var: str, defaults: Sequence[str]
) -> list[str]:
    """The mirror list to use: ``mirrors`` if given, else ``$env_var``, else ``defaults``.

    The environment variable (or a single string) holds URLs separated by commas or
    whitespace.
    """
    if isinstance(mirrors, str):
        return _split_urls(mirrors)
    if mirrors is not None:
        return list(mirrors)
    from_env = _split_urls(os.environ.get(env_var, ""))
    return from_env or list(defaults)


def _split_urls(text: str) -> list[str]:
    return [url for url in re.split(r"[,\s]+", text) if url]


def _check_md5_of(md5_of: str) -> None:
    if md5_of not in ("decompressed", "file"):
        raise ValueError(f"md5_of must be 'decompressed' or 'file', not {md5_of!r}")


class _Unreachable(Exception):
    """No mirror could be reached; ``failures`` lists (url, reason)."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        super().__init__(failures)
        self.failures = failures


class _BadContent(Exception):
    """A mirror served something that is not the expected file."""


class _NetworkFailure(Exception):
    """A mirror could not be reached or broke the connection."""


def _fetch(
    name: str, dataset_dir: Path, mirrors: Sequence[str], md5: str, md5_of: str, timeout: float
) -> Path:
    if not name or name != Path(name).name or name in (".", ".."):
        raise ValueError(f"file name must be a plain name without directories, not {name!r}")
    target = dataset_dir / name
    if target.is_file():
        _verify_local(target, md5, md5_of)
        return target

    network: list[tuple[str, str]] = []
    bad: list[tuple[str, str]] = []
    created: list[Path] = []
    try:
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                _download(url, target, md5, md5_of, timeout, created)
                return target
            except _BadContent as exc:
                bad.append((url, str(exc)))
            except _NetworkFailure as exc:
                network.append((url, str(exc)))
    finally:
        if not target.is_file():
            # Remove directories made for a download that failed (only if still empty).
            for directory in reversed(created):
                with contextlib.suppress(OSError):
                    directory.rmdir()

    if bad:
        lines = "\n".join(f"  {url}: {reason}" for url, reason in bad + network)
        raise DataError(
            f"{name}: no mirror served a valid copy, nothing was saved in "
            f"{dataset_dir.absolute()}:\n{lines}"
        )
    if not mirrors:
        network.append(("(no mirror)", "the list of mirrors is empty"))
    raise _Unreachable(network)


def _download(
    url: str, target: Path, md5: str, md5_of: str, timeout: float, created: list[Path]
) -> None:
    """Download ``url`` to ``target`` via a verified temporary file in the same directory.

    Raises _BadContent (checksum, size or gzip error) or _NetworkFailure; in both cases
    the temporary file is gone. Local disk errors propagate as they are.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "multilayer"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (*_NETWORK_ERRORS, ValueError) as exc:  # ValueError: malformed URL
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # an HTTPError holds the open connection
        raise _NetworkFailure(_network_reason(exc)) from exc
    with response:
        if not created and not target.parent.is_dir():
            created.extend(_make_dirs(target.parent))
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
        tmp = Path(tmp_name)
        try:
            file_hash = hashlib.md5(usedforsecurity=False)
            size = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := _read_chunk(response):
                    size += len(chunk)
                    if size > _MAX_DOWNLOAD_BYTES:
                        raise _BadContent(f"served more than {_MAX_DOWNLOAD_BYTES} bytes")
                    file_hash.update(chunk)
                    out.write(chunk)
                out.flush()
                if md5_of == "file":
                    actual, what = file_hash.hexdigest(), "file"
                else:
                    try:
                        actual, what = _content_md5(tmp, md5_of), "decompressed content"
                    except _GZIP_ERRORS as exc:
                        raise _BadContent(_gzip_reason(exc)) from None
                if actual != md5:
                    raise _BadContent(f"MD5 of the {what} is {actual}, expected {md5}")
                os.fsync(out.fileno())  # the data is on disk before its name is
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    fsync_directory(target.parent)
    _remember(target, md5, md5_of)


def _read_chunk(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read(_CHUNK)
    except _NETWORK_ERRORS as exc:
        raise _NetworkFailure(_network_reason(exc)) from exc


def _verify_local(path: Path, md5: str, md5_of: str) -> None:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, md5, md5_of)
    if key in _verified or _record_matches(key):
        _verified.add(key)
        return
    what = "file" if md5_of == "file" else "decompressed content"
    try:
        actual = _content_md5(path, md5_of)
    except _GZIP_ERRORS as exc:
        raise DataError(
            f"{path}: {_gzip_reason(exc)}; the file is damaged: delete it to download it "
            "again (it is never overwritten automatically)"
        ) from None
    if actual != md5:
        raise DataError(
            f"{path}: MD5 of the {what} is {actual}, expected {md5}; the file is damaged or "
            "not the expected one: delete it to download it again (it is never overwritten "
            "automatically)"
        )
    _remember(path, md5, md5_of)


def _remember(path: Path, md5: str, md5_of: str) -> None:
    """Record that ``path`` (as it is now) matches ``md5``, in memory and in the user's
    cache directory (never next to the file)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, md5, md5_of)
    _verified.add(key)
    record = {
        "path": key[0],
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "md5": md5,
        "md5_of": md5_of,
    }
    # An unwritable cache only means verifying again next time, which is slower.
    with contextlib.suppress(OSError):
        record_path = _record_path(key[0])
        record_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(record_path, json.dumps(record).encode())


def _record_matches(key: tuple[str, int, int, str, str]) -> bool:
    try:
        with open(_record_path(key[0]), "rb") as file:
            record = json.loads(file.read(4096))
        fields = ("path", "size", "mtime_ns", "md5", "md5_of")
        return tuple(record[field] for field in fields) == key
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _record_path(resolved: str) -> Path:
    """Where the verification record of the file at ``resolved`` (absolute) lives."""
    name = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()
    return cache_dir() / "verified" / f"{name}.json"


def _content_md5(path: Path, md5_of: str) -> str:
    """MD5 of the file, or of its decompressed content; raises _GZIP_ERRORS if corrupt."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as raw:
        gzipped = md5_of == "decompressed" and raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        with stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _make_dirs(directory: Path) -> list[Path]:
    """``mkdir -p``; returns the directories it created, outermost first."""
    missing = []
    for parent in (directory, *directory.parents):
        if parent.exists():
            break
        missing.append(parent)
    directory.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _gzip_reason(exc: BaseException) -> str:
    return f"not a valid gzip file ({str(exc) or type(exc).__name__})"


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _offline_message(
    title: str, dataset_dir: Path, missing: list[str], failures: list[tuple[str, str]]
) -> str:
    directory = dataset_dir.absolute()
    tried = "\n".join(f"  {url}: {reason}" for url, reason in failures)
    files = "\n".join(f"  {name}" for name in missing)
    return (
        f"{title}: missing from {directory} and could not be downloaded:\n{tried}\n"
        f"To use it without internet access, place these files in {directory}:\n{files}\n"
        f"(or set the environment variable {DATA_ENV_VAR} to a directory whose "
        f"'{dataset_dir.name}' subdirectory holds them)."
    )
