"""Reading files that may come from someone else: every string and size in them is data, checked before use.

Four rules, used by every loader of the toolkit:

* :func:`checked_env_id`: an environment id stored in a file (a policy's metadata, a run's
  ``config.json``) never names a module to import. ``gymnasium.make("pkg.mod:Env-v0")``
  imports ``pkg.mod`` first, so such an id is refused unless the user gave the same id
  themselves (on the command line or as a Python argument).
* :func:`read_npz`: ``.npz`` archives are opened with :mod:`zipfile` and only the members the
  format defines are read; each member's declared size is checked against :data:`MAX_BYTES`,
  against its compressed size (DEFLATE cannot expand more than :data:`DEFLATE_MAX_RATIO`
  times) and against its ``.npy`` header's shape before numpy allocates anything
  (``np.load`` allocates the declared shape up front).
* :func:`load_torch`: torch files are read with ``weights_only=True`` (no code runs) after
  checking the file size and the archive's members; every tensor must hold no more elements
  than its data (a stride-0 view could otherwise declare terabytes in a few bytes) and
  every floating-point tensor must be finite.
* :func:`check_stored_widths`, :func:`check_stored_count` and :func:`check_stored_floats`:
  layer widths, counts and network sizes that a file declares (and the toolkit then
  allocates) stay within :data:`MAX_WIDTH`, :data:`MAX_FLOATS` and friends; loaders also
  check them against the tensors they describe.

torch is imported only inside :func:`load_torch`, so the tabular side (which reads
``.npz`` files through :func:`read_npz`) never needs it.
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

import numpy as np

from agents.run_folder import first_line

#: The most bytes a loader reads or decompresses from one file (the members it reads, together).
MAX_BYTES = 4 * 2**30
#: DEFLATE encodes at best 258 bytes in 2 bits: a member declaring more than this times its compressed
#: size (plus a small header allowance) is lying about its size.
DEFLATE_MAX_RATIO = 1032
_DEFLATE_SLACK = 1024
#: Limits on network and buffer sizes a file may declare (a setting in config.json, a checkpoint's hyperparameters).
MAX_WIDTH = 8192
MAX_LAYERS = 16
MAX_CRITICS = 64
MAX_BUFFER_SIZE = 10_000_000
MAX_BATCH_SIZE = 65_536
#: The most floats a file's settings may declare for the hidden-to-hidden weights of its networks, or for
#: one minibatch's hidden activations (2^28 floats: 1 GiB).
MAX_FLOATS = 2**28
#: npy dtypes a loader accepts: booleans, numbers and fixed-width strings (never objects or records).
_PLAIN_KINDS = "biufUS"
_CHUNK = 2**20


class RefusedFile(ValueError):
    """A file (or a value in it) these checks refuse: ``str(error)`` is ``"SOURCE: PROBLEM"``.

    Loaders re-raise it in their own words from :attr:`source` and :attr:`problem`.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source, self.problem = source, problem


# ------------------------------------------------------------------ env ids
def checked_env_id(env_id: Any, source: str, given: str | None = None) -> str:
    """``env_id`` read from ``source``, refused if it would make Gymnasium import a module the user did not name.

    Parameters
    ----------
    env_id:
        The id stored in the file.
    source:
        The file it came from (named in the error).
    given:
        The id the user passed (command line, Python argument), if any: an id with a module
        part (``"pkg.mod:Env-v0"``) is accepted only when it equals this one.

    Raises
    ------
    ValueError
        For a non-string or empty id, or an id with a module part the user did not give.
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"{source} does not record a usable environment id (got {env_id!r})")
    module, colon, _ = env_id.partition(":")
    if colon and env_id != given:
        raise ValueError(
            f"{source} names the environment {env_id!r}, which would import the Python module {module!r}; "
            f"ids read from files never import code: pass --env {env_id} (or env={env_id!r}) yourself to run it"
        )
    return env_id


# ------------------------------------------------------------------- sizes
def check_stored_widths(widths: Any, name: str, source: str) -> tuple[int, ...]:
    """Hidden layer widths declared by ``source``: at most :data:`MAX_LAYERS` integers in [1, :data:`MAX_WIDTH`]."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (list, tuple)):
        raise RefusedFile(source, f"{name} must be a list of layer widths, got {widths!r}")
    if len(widths) > MAX_LAYERS:
        raise RefusedFile(source, f"{name} declares {len(widths)} layers, more than the {MAX_LAYERS} a file "
                                  "may declare")
    return tuple(check_stored_count(width, name, source, MAX_WIDTH) for width in widths)


def check_stored_count(value: Any, name: str, source: str, limit: int, minimum: int = 1) -> int:
    """An integer ``value`` in [``minimum``, ``limit``] declared by ``source`` (``ValueError`` naming it otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not minimum <= value <= limit:
        raise RefusedFile(source, f"{name} must be an integer in [{minimum}, {limit}] (agents.untrusted's limit on "
                                  f"what a file may declare), got {value!r}")
    return int(value)


def check_stored_floats(count: int, what: str, source: str) -> None:
    """Refuse settings from ``source`` whose ``what`` (weights, activations) come to more than :data:`MAX_FLOATS`."""
    if count > MAX_FLOATS:
        raise RefusedFile(source, f"{what} come to {count} floats, more than the {MAX_FLOATS} a file's settings may "
                                  "declare")


def _too_large(size: int, source: str, what: str) -> RefusedFile:
    return RefusedFile(source, f"{what} is {size} bytes, more than the {MAX_BYTES} a loader reads "
                               "(agents.untrusted.MAX_BYTES)")


def check_zip_members(archive: zipfile.ZipFile, names: Collection[str], source: str, stored_only: bool = False) -> int:
    """Check the declared sizes of the members ``names`` of ``archive`` before any is read; return their total.

    Each must be stored or DEFLATE-compressed (``stored_only``: stored, as torch writes), declare
    no more than its compressed size allows, and together they must fit in :data:`MAX_BYTES`.
    """
    total = 0
    for name in names:
        info = archive.getinfo(name)
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise RefusedFile(source, f"member {name!r} declares {info.file_size} bytes but stores "
                                          f"{info.compress_size}")
        elif info.compress_type == zipfile.ZIP_DEFLATED and not stored_only:
            if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + _DEFLATE_SLACK:
                raise RefusedFile(source, f"member {name!r} declares {info.file_size} bytes, more than "
                                          f"{info.compress_size} compressed bytes can hold")
        else:
            expected = "stored" if stored_only else "stored or DEFLATE-compressed"
            raise RefusedFile(source, f"member {name!r} uses zip compression method {info.compress_type}, "
                                      f"not {expected}")
        total += info.file_size
        if total > MAX_BYTES:
            raise _too_large(total, source, "the members read")
    return total


# -------------------------------------------------------------------- npz
def read_npz(
    path: str | Path, wanted: Collection[str] | Callable[[str], bool], source: str | None = None,
) -> dict[str, np.ndarray]:
    """The arrays ``wanted`` of the ``.npz`` archive ``path``, read without trusting any size it declares.

    Parameters
    ----------
    path:
        The archive.
    wanted:
        The array names the format defines (or a predicate on names); other members are never read.
    source:
        Name for error messages (default: ``path``).

    Returns
    -------
    dict
        Name -> array for every wanted array present (callers check what is missing).

    Raises
    ------
    ValueError
        Naming the file and the problem: not a zip archive, a member compressed another way,
        a declared size beyond :data:`MAX_BYTES` or beyond what its compressed bytes hold, an
        ``.npy`` header whose shape disagrees with the member's size, a dtype other than
        booleans, numbers and strings, or a truncated member.
    """
    source = str(path) if source is None else source
    keep = wanted if callable(wanted) else (lambda name, names=frozenset(wanted): name in names)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename[: -len(".npy")]: info.filename for info in archive.infolist()
                       if info.filename.endswith(".npy") and keep(info.filename[: -len(".npy")])}
            check_zip_members(archive, members.values(), source)
            return {key: _read_member(archive, member, source) for key, member in members.items()}
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error) as error:
        raise RefusedFile(source, f"not a readable .npz archive ({error})") from None


def _read_member(archive: zipfile.ZipFile, member: str, source: str) -> np.ndarray:
    declared = archive.getinfo(member).file_size
    with archive.open(member) as handle:
        try:
            version = np.lib.format.read_magic(handle)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = header(handle)
        except ValueError as error:
            raise RefusedFile(source, f"member {member!r} is not an .npy array ({error})") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _PLAIN_KINDS:
            raise RefusedFile(source, f"member {member!r} has dtype {dtype}; only booleans, numbers and strings "
                                      "are read")
        if any(int(n) < 0 for n in shape):
            raise RefusedFile(source, f"member {member!r} declares the negative shape {shape}")
        # Python integers: a crafted shape cannot overflow the product.
        nbytes = math.prod(int(n) for n in shape) * dtype.itemsize
        if nbytes != declared - handle.tell():
            raise RefusedFile(source, f"member {member!r} declares shape {shape} of {dtype} ({nbytes} bytes) "
                                      f"but holds {declared - handle.tell()} bytes of data")
        array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
        data = array.reshape(-1, order="A").view(np.uint8)  # the array's own memory, filled in chunks
        offset = 0
        while offset < nbytes:
            chunk = handle.read(min(_CHUNK, nbytes - offset))
            if not chunk:
                raise RefusedFile(source, f"member {member!r} is truncated")
            data[offset: offset + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            offset += len(chunk)
    return array


# ------------------------------------------------------------------ torch
def load_torch(path_or_bytes: str | Path | bytes, source: str | None = None, finite: bool = True) -> Any:
    """``torch.load(..., weights_only=True)`` of a torch file whose sizes are checked first and whose tensors after.

    Parameters
    ----------
    path_or_bytes:
        The file, or its bytes (a member of another archive).
    source:
        Name for error messages (default: the path).
    finite:
        Refuse floating-point tensors holding NaN or infinite values (weights); ``False`` for
        files that also hold data, whose callers check the weights themselves.

    Raises
    ------
    ValueError
        Naming the file and the problem: larger than :data:`MAX_BYTES`, not torch's zip
        format, compressed members, unreadable, a tensor declaring more elements than its
        data holds, or a floating-point tensor with a NaN or infinite value (named by its key).
    """
    import torch

    if isinstance(path_or_bytes, bytes):
        source = source or "torch data"
        size, opener = len(path_or_bytes), lambda: io.BytesIO(path_or_bytes)
    else:
        source = source or str(path_or_bytes)
        size, opener = Path(path_or_bytes).stat().st_size, lambda: open(path_or_bytes, "rb")
    if size > MAX_BYTES:
        raise _too_large(size, source, "the file")
    with opener() as handle:
        if not zipfile.is_zipfile(handle):
            raise RefusedFile(source, "not a torch file (torch.save's zip format)")
        try:
            with zipfile.ZipFile(handle) as archive:
                check_zip_members(archive, archive.namelist(), source, stored_only=True)
            handle.seek(0)
            state = torch.load(handle, weights_only=True, map_location="cpu")
        except RefusedFile:
            raise
        except Exception as error:  # corrupt, foreign or unsafe (weights_only refuses code) file
            raise RefusedFile(source, f"not a readable torch file ({first_line(error)})") from None
    for name, tensor in _tensors(state):
        if tensor.layout != torch.strided:
            raise RefusedFile(source, f"tensor {name} has layout {tensor.layout}; only dense tensors are read")
        storage = tensor.untyped_storage().nbytes()
        if tensor.numel() * tensor.element_size() > storage:
            raise RefusedFile(source, f"tensor {name} declares shape {tuple(tensor.shape)}, more elements than its "
                                      f"{storage} bytes of data")
    bad = first_non_finite(state) if finite else None
    if bad is not None:
        raise RefusedFile(source, f"{bad} holds NaN or infinite values")
    return state


def _tensors(state: Any, name: str = "") -> Iterator[tuple[str, Any]]:
    """``(key path, tensor)`` for every tensor in nested dicts, lists and tuples."""
    if isinstance(state, dict):
        for key, value in state.items():
            yield from _tensors(value, f"{name}.{key}" if name else str(key))
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            yield from _tensors(value, f"{name}.{index}" if name else str(index))
    elif hasattr(state, "is_floating_point") and hasattr(state, "untyped_storage"):
        yield name, state


def first_non_finite(state: Any) -> str | None:
    """The key path of the first floating-point tensor in ``state`` (nested dicts, lists) holding NaN or inf.

    ``None`` if every one is finite.
    """
    import torch

    for name, tensor in _tensors(state):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name or "the tensor"
    return None

