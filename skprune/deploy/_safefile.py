"""The file layer of :func:`skprune.save`: a safetensors file, read with bounds, written atomically.

Tensors are (de)serialized by the `safetensors <https://huggingface.co/docs/safetensors>`_
library. Before any tensor is built, the header is parsed and checked here:
the header length is capped, every tensor's dtype and shape must match its
byte range, and byte ranges must lie inside the file without overlapping.
The format is decided from the parsed header (its ``__metadata__.format``),
never from the first bytes of the file: those are the header length.

A digest (SHA-256) covers the configuration and, per tensor, its name,
dtype, shape and bytes, so any change to the file that would change the
model is refused; a change of layout only (offsets, header whitespace) is
harmless and accepted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
import tempfile
from pathlib import Path

import torch

from ..exceptions import PersistenceError

__all__ = ["read_file", "write_file", "tensor_digest", "MAX_HEADER", "MAX_JSON_DEPTH"]

#: Largest header (JSON) accepted, in bytes.
MAX_HEADER = 64 * 2**20
#: Deepest nesting of JSON accepted in the header or the configuration.
MAX_JSON_DEPTH = 64

DTYPE_SIZES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
TORCH_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in TORCH_DTYPES.items()}


def not_skprune(path, detail: str) -> PersistenceError:
    return PersistenceError(
        f"{str(path)!r} is not a skprune file ({detail}). skprune.load reads only files written by "
        "skprune.save and never unpickles; for a pickle or torch.save file use pickle/torch.load "
        "yourself, and only on files you trust."
    )


def _json_depth_ok(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the nesting of brackets in ``text`` (outside strings) stays within ``limit``."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


def parse_json(text: str, what: str, path):
    """``json.loads`` that refuses deep nesting and never raises anything but PersistenceError."""
    if not _json_depth_ok(text):
        raise PersistenceError(f"{str(path)!r}: its {what} is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and int-digit limits are ValueErrors
        raise PersistenceError(f"{str(path)!r}: its {what} is not valid JSON ({exc}).") from None


def tensor_digest(config: str, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the configuration and of each tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    digest.update(config.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(b"\0" + name.encode("utf-8") + b"\0")
        digest.update(f"{DTYPE_NAMES[tensor.dtype]}{list(tensor.shape)}".encode())
        if tensor.numel():
            digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _open_regular(path) -> tuple[int, int]:
    """An open descriptor of ``path`` and its size, if it is a regular file (symlinks followed).

    Opened without blocking (a FIFO never blocks the open) and checked on the
    descriptor itself, so nothing can be swapped between the check and the read.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise PersistenceError(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise PersistenceError(
            f"{str(path)!r} is not a regular file (it is a device, FIFO, socket or directory); "
            "skprune.load reads only regular files."
        )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise PersistenceError(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from None
    info = os.fstat(fd)  # the file opened, not the one stat()ed: no swap in between
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PersistenceError(f"{str(path)!r} is not a regular file; skprune.load reads only those.")
    return fd, info.st_size


def _read_exactly(fd, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, min(remaining, 2**24))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_file(path) -> tuple[dict, dict, bytes, int]:
    """Parse and check a skprune file.

    The 8-byte header length is read first, then the header (at most
    :data:`MAX_HEADER` bytes, within the file), and every tensor description
    is checked against the file's size before the tensor bytes are read.
    Returns ``(metadata, entries, blob, body_start)``: the ``__metadata__``
    strings, the tensor descriptions and the file's bytes. No tensor is
    allocated yet.
    """
    fd, size = _open_regular(path)
    try:
        first = _read_exactly(fd, 8)
        if len(first) < 8:
            raise not_skprune(path, f"it has {len(first)} bytes, fewer than a header needs")
        (n,) = struct.unpack("<Q", first)
        if n > size - 8 or n > MAX_HEADER or n < 2:
            raise not_skprune(path, _guess(first + _read_exactly(fd, min(size - 8, 16))))
        head = _read_exactly(fd, n)
        metadata, header = _parse_header(path, first + head, n, size - 8 - n)
        body = _read_exactly(fd, size - 8 - n)
    finally:
        os.close(fd)
    blob = first + head + body
    if len(blob) != size:
        raise PersistenceError(f"{str(path)!r} changed while it was read.")
    return metadata, header, blob, 8 + n


def _parse_header(path, blob: bytes, n: int, body_size: int) -> tuple[dict, dict]:
    """The metadata and tensor descriptions of a header, checked against a body of ``body_size`` bytes."""
    try:
        text = blob[8 : 8 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise not_skprune(path, _guess(blob)) from None
    try:
        header = parse_json(text, "header", path)
    except PersistenceError:
        raise not_skprune(path, _guess(blob)) from None
    if not isinstance(header, dict):
        raise not_skprune(path, "its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or metadata.get("format") != "skprune":
        marker = metadata.get("format") if isinstance(metadata, dict) else None
        raise not_skprune(path, f"a safetensors file with format marker {str(marker)[:40]!r}, not 'skprune'")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise PersistenceError(f"{str(path)!r}: its metadata must map strings to strings.")
    ranges = []
    for name, info in header.items():
        try:
            dtype = info["dtype"]
            shape = info["shape"]
            start, end = info["data_offsets"]
            valid = (
                isinstance(info, dict)
                and set(info) == {"dtype", "shape", "data_offsets"}
                and dtype in DTYPE_SIZES
                and isinstance(shape, list)
                and len(shape) <= 8
                and all(type(s) is int and 0 <= s <= body_size for s in shape)
                and type(start) is int
                and type(end) is int
            )
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise PersistenceError(f"{str(path)!r}: invalid description of tensor {name!r}.")
        if not 0 <= start <= end <= body_size:
            raise PersistenceError(f"{str(path)!r}: tensor {name!r} lies outside the file's data.")
        if end - start != math.prod(shape) * DTYPE_SIZES[dtype]:
            raise PersistenceError(
                f"{str(path)!r}: tensor {name!r} declares dtype {dtype} and shape {shape} but has "
                f"{end - start} bytes."
            )
        ranges.append((start, end, name))
    ranges.sort()
    position = 0
    for start, end, name in ranges:
        if start < position:
            raise PersistenceError(f"{str(path)!r}: tensor {name!r} overlaps another tensor's bytes.")
        position = end
    return metadata, header


def _guess(blob: bytes) -> str:
    """Why a file without a valid header is not ours (a hint only; never decides the format)."""
    if blob[:2] == b"PK":
        return "no valid header; it looks like a ZIP archive, such as a torch.save file, which holds a pickle"
    if blob[:1] == b"\x80":
        return "no valid header; it looks like a pickle, which could run code when loaded"
    return "no valid safetensors header"


def load_tensors(path, blob: bytes) -> dict[str, torch.Tensor]:
    """Tensors of an already checked file, built by the safetensors library."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        return st_load(blob)
    except (SafetensorError, ValueError, RuntimeError, TypeError) as exc:
        raise PersistenceError(f"{str(path)!r}: its tensors cannot be read ({exc}).") from None


def write_file(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically: a temporary file in the same folder, then a rename.

    The file gets the permissions that writing it in place would give: an
    existing file's, else those the umask leaves (``mkstemp`` alone would
    make every saved model readable by its owner only).
    """
    from safetensors.torch import save as st_save

    data = st_save(tensors, metadata=metadata)
    path = Path(path)
    _check_target(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{str(path)!r} is a directory; skprune.save needs a file path, e.g. model.skp."
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot save to {str(path)!r}: the folder {str(path.parent)!r} does not exist."
        )
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, mode)  # mkstemp makes it owner-only; give what writing the file in place would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _check_target(path)  # again: nothing may have been put there meanwhile
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check_target(path: Path) -> None:
    """Refuse to replace anything at ``path`` but a regular file: no symlink, device, FIFO or socket.

    ``save`` replaces the path itself (a rename), so a symbolic link would be
    replaced, not followed; it is refused instead, so that saving never
    silently turns a link into a file.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise PersistenceError(f"Cannot save to {str(path)!r}: {exc.strerror or exc}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(
            f"{str(path)!r} is a directory; skprune.save needs a file path, e.g. model.skp."
        )
    if stat.S_ISLNK(info.st_mode):
        raise PersistenceError(
            f"{str(path)!r} is a symbolic link; skprune.save writes only regular files and never "
            f"replaces or follows a link. Save to the file it points to ({os.path.realpath(path)!r}) "
            "or remove the link first."
        )
    if not stat.S_ISREG(info.st_mode):
        raise PersistenceError(
            f"{str(path)!r} exists and is not a regular file (a device, FIFO or socket); "
            "skprune.save replaces only regular files. Choose another path."
        )


def _file_mode(path: Path) -> int:
    """The permission bits a file written at ``path`` gets: an existing file's, else the umask's."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    umask = None
    try:  # Linux >= 4.7 reports it without changing it
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    if umask is None:
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask
