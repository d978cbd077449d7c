"""Fetching dataset files: use a verified local copy, else download one, atomically.

``fetch_file`` gives back the path of a file known to be the expected one. What is
expected is either one MD5 checksum, of the *decompressed* content (MNIST publishes
these; they hold whichever mirror or recompressed copy the file came from) or of the
*file as downloaded*, chosen by ``md5_of``; or a ``FileCheck``, for datasets whose
publishers give only the MD5 of their own ``.gz`` files (Fashion-MNIST): the file is
accepted if its own MD5 matches, else if its decompressed content matches a known
content MD5, else if its decompressed content passes the dataset's structural checks
(``ContentCheck``: exact size, header, label balance...). See ``FileCheck`` for exactly
what each route guarantees.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from multilayer.data.paths import DATA_ENV_VAR, cache_dir
from multilayer.errors import DataError, DatasetNotFoundError
from multilayer.utils.files import atomic_write_bytes, fsync_directory

__all__ = [
    "ContentCheck",
    "FileCheck",
    "Md5Of",
    "fetch_file",
    "fetch_files",
    "file_md5",
    "mirrors_from_env",
]

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

# Verifications done in this process: (path, size, mtime_ns, what was expected as JSON).
_verified: set[tuple[str, int, int, str]] = set()


class ContentCheck(Protocol):
    """A streaming check of a file's decompressed content, made fresh for each file."""

    def update(self, chunk: bytes) -> bool:
        """Take the next chunk of decompressed content; False: stop, the verdict is known."""
        ...

    def problem(self) -> str | None:
        """After the last chunk: why the content is not the expected one, or None."""
        ...


@dataclass(frozen=True)
class FileCheck:
    """What a dataset file must be, when no single checksum covers every faithful copy.

    A file is accepted by the first route that applies, in this order:

    1. ``md5`` (the MD5 of the file's own bytes, as the publisher gives it) matches: the
       file is bit for bit the published one.
    2. Otherwise, if ``content_md5`` (the MD5 of the decompressed content) is known, it
       must match: the file is a recompressed but faithful copy. Nothing else is tried.
    3. Otherwise, if ``content_check`` is given, the decompressed content must pass it
       (and, for a gzip file, gzip's own CRC-32 and length checks; a file that is not
       gzip is checked as it is). This proves the structure the check
       describes (sizes, header, label balance...), **not** that every byte is the
       published one: a copy with altered pixels, or with labels swapped between
       samples, passes it.
    4. Otherwise the file is refused.

    ``content_check`` makes a new ``ContentCheck``; its ``str()`` must identify it (a
    frozen dataclass's repr does), since it keys the verification records.
    """

    md5: str | None = None
    content_md5: str | None = None
    content_check: Callable[[], ContentCheck] | None = None

    def __post_init__(self) -> None:
        if self.md5 is None and self.content_md5 is None and self.content_check is None:
            raise ValueError("a FileCheck needs md5, content_md5 or content_check")

    def record(self) -> dict[str, str | None]:
        """What a verification record stores of this expectation."""
        return {
            "file_md5": _lower(self.md5),
            "content_md5": _lower(self.content_md5),
            "content_check": None if self.content_check is None else str(self.content_check),
        }


def _lower(md5: str | None) -> str | None:
    return None if md5 is None else md5.lower()


@dataclass(frozen=True)
class _Rule:
    """An expectation, normalised: how to verify a file and how to record that it was."""

    check: FileCheck
    record: dict[str, str | None]

    @property
    def key(self) -> str:
        return json.dumps(self.record, sort_keys=True)


def _rule(expected: str | FileCheck, md5_of: str) -> _Rule:
    if isinstance(expected, FileCheck):
        return _Rule(expected, expected.record())
    md5 = expected.lower()
    check = FileCheck(md5=md5) if md5_of == "file" else FileCheck(content_md5=md5)
    return _Rule(check, {"md5": md5, "md5_of": md5_of})


def fetch_file(
    name: str,
    dataset_dir: str | os.PathLike[str],
    mirrors: Sequence[str],
    md5: str | FileCheck,
    *,
    md5_of: Md5Of = "decompressed",
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Return the path of ``dataset_dir/name``, verified, downloading it if absent.

    Args:
        name: the file name (no directory part); also the last part of each URL.
        dataset_dir: where the file lives; created only if a download starts.
        mirrors: base URLs tried in order; the file's URL is ``mirror + "/" + name``.
        md5: expected MD5, as 32 hex digits, or a ``FileCheck``.
        md5_of: for an MD5 given as a string: ``"decompressed"`` if it is the checksum of
            the gzip-decompressed content (a file that is not gzip is hashed as is),
            ``"file"`` if it is the checksum of the file's own bytes.
        timeout: seconds to wait for each mirror.

    Raises:
        DataError: the local file fails verification (it is left untouched), or every
            mirror that answered served content failing verification.
        DatasetNotFoundError: the file is not on disk and no mirror could be reached; the
            message lists the file and the directory to put it in.
    """
    return fetch_files({name: md5}, dataset_dir, mirrors, md5_of=md5_of, timeout=timeout)[name]


def fetch_files(
    files: Mapping[str, str | FileCheck],
    dataset_dir: str | os.PathLike[str],
    mirrors: Sequence[str],
    *,
    md5_of: Md5Of = "decompressed",
    timeout: float = DEFAULT_TIMEOUT,
    title: str | None = None,
) -> dict[str, Path]:
    """``fetch_file`` for several files of one dataset, in order.

    Args:
        files: file name -> expected MD5 or ``FileCheck``.
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
    for name, expected in files.items():
        try:
            paths[name] = _fetch(name, dataset_dir, mirrors, _rule(expected, md5_of), timeout)
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
    name: str, dataset_dir: Path, mirrors: Sequence[str], rule: _Rule, timeout: float
) -> Path:
    if not name or name != Path(name).name or name in (".", ".."):
        raise ValueError(f"file name must be a plain name without directories, not {name!r}")
    target = dataset_dir / name
    if target.is_file():
        _verify_local(target, rule)
        return target

    network: list[tuple[str, str]] = []
    bad: list[tuple[str, str]] = []
    created: list[Path] = []
    try:
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                _download(url, target, rule, timeout, created)
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


def _download(url: str, target: Path, rule: _Rule, timeout: float, created: list[Path]) -> None:
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
            size = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := _read_chunk(response):
                    size += len(chunk)
                    if size > _MAX_DOWNLOAD_BYTES:
                        raise _BadContent(f"served more than {_MAX_DOWNLOAD_BYTES} bytes")
                    out.write(chunk)
                out.flush()
                problem = _problem(tmp, rule)
                if problem is not None:
                    raise _BadContent(problem)
                os.fsync(out.fileno())  # the data is on disk before its name is
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    fsync_directory(target.parent)
    _remember(target, rule)


def _read_chunk(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read(_CHUNK)
    except _NETWORK_ERRORS as exc:
        raise _NetworkFailure(_network_reason(exc)) from exc


def _verify_local(path: Path, rule: _Rule) -> None:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, rule.key)
    if key in _verified or _record_matches(key, rule):
        _verified.add(key)
        return
    problem = _problem(path, rule)
    if problem is not None:
        raise DataError(
            f"{path}: {problem}; the file is damaged or not the expected one: delete it to "
            "download it again (it is never overwritten automatically)"
        )
    _remember(path, rule)


def _problem(path: Path, rule: _Rule) -> str | None:
    """Why the file at ``path`` is not the expected one, or None if it is."""
    check = rule.check
    prefix = ""
    try:
        if check.md5 is not None:
            actual = _content_md5(path, "file")
            if actual == check.md5.lower():
                return None
            if check.content_md5 is None and check.content_check is None:
                return f"MD5 of the file is {actual}, expected {check.md5.lower()}"
            prefix = (
                f"MD5 of the file is {actual}, not the published {check.md5.lower()} (a "
                "recompressed copy?), so its decompressed content was verified instead: "
            )
        if check.content_md5 is not None:
            actual = _content_md5(path, "decompressed")
            if actual != check.content_md5.lower():
                return (
                    f"{prefix}MD5 of the decompressed content is {actual}, expected "
                    f"{check.content_md5.lower()}"
                )
            return None
        if check.content_check is not None:
            found = _run_content_check(path, check.content_check())
            return None if found is None else prefix + found
    except _GZIP_ERRORS as exc:
        return prefix + _gzip_reason(exc)
    raise AssertionError("unreachable: FileCheck requires at least one field")


def _run_content_check(path: Path, content_check: ContentCheck) -> str | None:
    """Stream the decompressed content of ``path`` (as is if it is not gzip) through
    ``content_check``.

    Stops as soon as the check has its verdict (so a gzip bomb costs no more than the
    expected size); otherwise reads to the end, where gzip verifies each member's CRC-32
    and length (raising _GZIP_ERRORS if they do not match).
    """
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        with stream:
            while chunk := stream.read(_CHUNK):
                if not content_check.update(chunk):
                    break
    return content_check.problem()


def _remember(path: Path, rule: _Rule) -> None:
    """Record that ``path`` (as it is now) is the expected file, in memory and in the
    user's cache directory (never next to the file)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, rule.key)
    _verified.add(key)
    record = {"path": key[0], "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **rule.record}
    # An unwritable cache only means verifying again next time, which is slower.
    with contextlib.suppress(OSError):
        record_path = _record_path(key[0])
        record_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(record_path, json.dumps(record).encode())


def _record_matches(key: tuple[str, int, int, str], rule: _Rule) -> bool:
    try:
        with open(_record_path(key[0]), "rb") as file:
            record = json.loads(file.read(4096))
        expected = {"path": key[0], "size": key[1], "mtime_ns": key[2], **rule.record}
        return isinstance(record, dict) and record == expected
    except (OSError, ValueError):
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
