"""Reading ``.npz`` archives of arrays that come from outside, without trusting them.

``numpy.load`` is not made for hostile files: it accepts a plain ``.npy`` whatever the
file's name, allocates whatever shape a member's header declares, and decompresses
members without limit (a 2 MB zip bomb can reach gigabytes). `read_npz` opens the file as
a zip archive, reads each wanted member's ``.npy`` header first, checks its dtype and the
size it declares against the member's size in the archive and against ``max_bytes`` for
all members together, and only then reads the data, in slices, so memory grows only as
data actually arrives. Every problem is a `DataError` naming the file and the member.
"""

from __future__ import annotations

import errno
import io
import math
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from multilayer.errors import DataError

__all__ = ["MAX_NPZ_BYTES", "read_npz"]

#: Largest total size of the arrays `read_npz` reads unless told otherwise (2 GiB, as for
#: IDX files: `multilayer.data.idx.MAX_PAYLOAD_BYTES`).
MAX_NPZ_BYTES = 2**31

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive
_NPY_MAGIC = b"\x93NUMPY"
_CHUNK = 4 * 2**20
_MAX_HEADER = 10_000  # bytes of a .npy header, as numpy's own default limit
# What the zip and decompression modules raise for damaged archives and members.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError)


def read_npz(
    path: str | os.PathLike[str],
    keys: Sequence[str],
    *,
    max_bytes: int = MAX_NPZ_BYTES,
) -> dict[str, np.ndarray]:
    """Read the arrays ``keys`` from the ``.npz`` file at ``path``.

    Only numeric and boolean arrays are accepted (no Python objects, strings or records);
    other members of the archive are ignored.

    Args:
        path: an ``.npz`` file as written by ``numpy.savez`` or ``numpy.savez_compressed``.
        keys: the names of the arrays to read (each stored as member ``<key>.npy``).
        max_bytes: refuse the file if the arrays together declare more bytes than this,
            before reading any of them.

    Returns:
        key -> array, in the order of ``keys``.

    Raises:
        DataError: not a zip archive (for example a ``.npy`` file renamed ``.npz``), a
            damaged or encrypted archive, a missing array, a damaged ``.npy`` header, an
            unsupported dtype, a declared size larger than ``max_bytes`` or than the member
            holds, or truncated data.
        OSError: the file cannot be read (``FileNotFoundError``...).
    """
    path = Path(path)
    with open(path, "rb") as raw:
        magic = raw.read(6)
        if magic.startswith(_NPY_MAGIC):
            raise DataError(
                f"{path} is a single .npy array, not an .npz archive: save the arrays "
                f"{', '.join(keys)} together with numpy.savez"
            )
        if not magic.startswith(_ZIP_MAGIC):
            raise DataError(f"{path} is not an .npz file (not a zip archive)")
        try:
            with zipfile.ZipFile(raw) as archive:
                return _read_members(path, archive, keys, max_bytes)
        except _ZIP_ERRORS as error:
            raise DataError(f"{path} is a damaged .npz file ({_reason(error)})") from None
        except RuntimeError as error:  # encrypted members
            raise DataError(f"{path}: cannot read the archive ({error})") from None
        except OSError as error:
            if error.errno != errno.EINVAL:  # a real I/O error, not the file's fault
                raise
            # Offsets in the archive that point before the start of the file.
            raise DataError(f"{path} is a damaged .npz file ({_reason(error)})") from None


def _read_members(
    path: Path, archive: zipfile.ZipFile, keys: Sequence[str], max_bytes: int
) -> dict[str, np.ndarray]:
    members = {info.filename: info for info in archive.infolist()}
    missing = [key for key in keys if f"{key}.npy" not in members]
    if missing:
        raise DataError(
            f"{path}: missing arrays {missing}; an .npz dataset needs {', '.join(keys)}"
        )
    # First every header, so that nothing is allocated for a file that declares too much.
    headers = {}
    total = 0
    for key in keys:
        info = members[f"{key}.npy"]
        with archive.open(info) as stream:
            header = _read_header(path, key, stream, info.file_size, max_bytes)
        headers[key] = header
        total += header[3]
        if total > max_bytes:
            raise DataError(
                f"{path}: the arrays declare more than {max_bytes} bytes together (up to "
                f"{key!r}: {total} bytes); refusing to read them"
            )
    arrays = {}
    for key in keys:
        shape, fortran, dtype, nbytes, offset = headers[key]
        with archive.open(members[f"{key}.npy"]) as stream:
            _skip(stream, offset)
            data = _read_exactly(path, key, stream, nbytes)
        array = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
        array = array.reshape(shape, order="F" if fortran else "C")
        arrays[key] = array
    return arrays


def _read_header(path: Path, key: str, stream, member_size: int, max_bytes: int):
    """``(shape, fortran_order, dtype, nbytes, data_offset)`` of a member, checked."""
    what = f"{path}: array {key!r}"
    prefix = stream.read(_MAX_HEADER + 16)
    if not prefix.startswith(_NPY_MAGIC):
        raise DataError(f"{what} is not a .npy array")
    fp = io.BytesIO(prefix)
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                fp, max_header_size=_MAX_HEADER
            )
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                fp, max_header_size=_MAX_HEADER
            )
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as error:
        # The header is a Python literal parsed from untrusted bytes: damaged ones raise
        # ValueError, SyntaxError, TypeError, tokenize.TokenError...
        raise DataError(f"{what} has a damaged .npy header ({_reason(error)})") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise DataError(
            f"{what} has dtype {dtype}: expected numbers (integers or floats), not objects, "
            "strings or records"
        )
    if dtype.subdtype is not None:
        raise DataError(f"{what} has a sub-array dtype {dtype}: expected a plain numeric dtype")
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    # Empty dimensions count as 1 here: (0, 10**15) holds nothing but is no sane array.
    if math.prod(max(d, 1) for d in shape) * dtype.itemsize > max_bytes:
        raise DataError(
            f"{what} declares shape {shape} of {dtype}, larger than the {max_bytes} bytes "
            "allowed; refusing to read it"
        )
    offset = fp.tell()
    if offset + nbytes != member_size:
        raise DataError(
            f"{what} declares shape {shape} of {dtype} ({nbytes} bytes), but the archive "
            f"holds {max(member_size - offset, 0)} bytes of data for it"
        )
    return shape, fortran, dtype, nbytes, offset


def _skip(stream, count: int) -> None:
    while count:
        chunk = stream.read(min(count, _CHUNK))
        if not chunk:
            raise EOFError("unexpected end of member")
        count -= len(chunk)


def _read_exactly(path: Path, key: str, stream, nbytes: int) -> bytearray:
    """``nbytes`` bytes from ``stream``, growing the buffer only as data arrives."""
    data = bytearray()
    while len(data) < nbytes:
        chunk = stream.read(min(_CHUNK, nbytes - len(data)))
        if not chunk:
            raise DataError(
                f"{path}: array {key!r} is truncated: expected {nbytes} bytes, found {len(data)}"
            )
        data += chunk
    stream.read(1)  # reaching the end makes zipfile check the member's CRC
    return data


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__
