"""File-reading helpers shared by the dataset loaders.

Every helper turns bad input into a one-line :class:`DataError` naming the file (and key or line):
HDF5 files with missing keys or wrong dtypes/shapes, truncated files, text tables with bad rows,
missing dataset folders. It also holds the per-cloud resampling used by variable-size sources.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from dd3d.errors import ConfigError, DataError

_KIND_NAMES = {"f": "float", "iu": "integer"}


@dataclass(frozen=True)
class Key:
    """What one HDF5 dataset must look like.

    ``shapes`` lists the accepted shapes; each entry is a tuple of ints (fixed size) or names
    (a dimension that must agree with the same name in other keys of the file), e.g.
    ``("N", "P", 3)``.
    """

    name: str
    kinds: str
    shapes: tuple[tuple[int | str, ...], ...]
    optional: bool = False

    def describe(self) -> str:
        dims = " or ".join("(" + ", ".join(map(str, s)) + ")" for s in self.shapes)
        return f"{dims} {_KIND_NAMES.get(self.kinds, self.kinds)}"


def missing_root(root: Path, layout: str, key_files: str, problem: str = "dataset folder not found"
                 ) -> DataError:
    """The error for a dataset folder that is absent or does not hold the expected files."""
    return DataError(
        f"{root}: {problem}; expected the {layout} layout ({key_files}); "
        "see docs/datasets.md"
    )


def check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _unreadable(path: Path) -> DataError:
    return DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?)")


def read_h5(path: Path, keys: Sequence[Key]) -> dict[str, np.ndarray]:
    """Read the given keys of one HDF5 file, checking dtype kind, shape and agreeing dimensions."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with h5py.File(path, "r") as file:
            return _read_keys(path, file, keys)
    except (OSError, RuntimeError) as exc:
        raise _unreadable(path) from exc


def _read_keys(path: Path, file: h5py.File, keys: Sequence[Key]) -> dict[str, np.ndarray]:
    found = sorted(file.keys())
    sizes: dict[str, tuple[int, str]] = {}
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        node = file.get(key.name)
        if not isinstance(node, h5py.Dataset):
            if key.optional:
                continue
            raise DataError(
                f"{path}: missing key {key.name!r} (found: {', '.join(found) or 'nothing'}); "
                f"expected {key.name!r} {key.describe()}"
            )
        if node.dtype.kind not in key.kinds:
            raise DataError(
                f"{path}: key {key.name!r} has dtype {node.dtype}, expected {key.describe()}"
            )
        _match_shape(path, key, node.shape, sizes)
        arrays[key.name] = np.asarray(node[()])
    return arrays


def _match_shape(path: Path, key: Key, actual: tuple[int, ...],
                 sizes: dict[str, tuple[int, str]]) -> None:
    """Check ``actual`` fits an accepted shape; records named dimensions in ``sizes``."""
    for spec in key.shapes:
        if len(spec) != len(actual) or any(
            isinstance(want, int) and want != got for want, got in zip(spec, actual)
        ):
            continue
        for want, got in zip(spec, actual):
            if isinstance(want, str) and want in sizes and sizes[want][0] != got:
                size, other = sizes[want]
                raise DataError(
                    f"{path}: key {key.name!r} has shape {actual} but key {other!r} has "
                    f"{want}={size}; expected {key.describe()}"
                )
        for want, got in zip(spec, actual):
            if isinstance(want, str):
                sizes.setdefault(want, (got, key.name))
        return
    raise DataError(f"{path}: key {key.name!r} has shape {actual}, expected {key.describe()}")


def read_h5_files(files: Sequence[Path], keys: Sequence[Key],
                  check: Callable[[Path, dict[str, np.ndarray]], None] | None = None
                  ) -> dict[str, np.ndarray]:
    """Read ``keys`` from every file and concatenate them along the first axis.

    ``check(path, arrays)`` validates each file's contents before merging (so its messages can
    name the file). An optional key is returned only when every file has it. Items of different
    shapes across files (e.g. 1024 points in one file, 2048 in the next) are an error.
    """
    per_file = [read_h5(path, keys) for path in files]
    if check is not None:
        for path, data in zip(files, per_file):
            check(path, data)
    merged: dict[str, np.ndarray] = {}
    for key in keys:
        if not all(key.name in data for data in per_file):
            continue
        first = per_file[0][key.name].shape[1:]
        for data, path in zip(per_file, files):
            if data[key.name].shape[1:] != first:
                raise DataError(
                    f"{path}: key {key.name!r} has items of shape {data[key.name].shape[1:]}, "
                    f"but {files[0]} has {first}; all files of a split must agree"
                )
        merged[key.name] = np.concatenate([data[key.name] for data in per_file])
    return merged


def files_source(files: Sequence[Path]) -> str:
    """How a split read from ``files`` is named in messages (a file, or a folder and its files)."""
    if len(files) == 1:
        return str(files[0])
    return f"{files[0].parent} ({', '.join(path.name for path in files)})"


def read_lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a small text file, stripped, with their 1-based line numbers."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as a text file ({exc})") from exc
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()]


def load_text_table(path: Path, columns: int | None = None, min_columns: int = 3, keep: int | None = None
                    ) -> np.ndarray:
    """Read a numeric text table (whitespace or comma separated) as a float64 (rows, cols) array.

    ``columns`` demands an exact column count; otherwise at least ``min_columns``. ``keep`` parses
    only the first ``keep`` (>= ``min_columns``) columns (faster; the rest, e.g. normals, are not
    checked). A bad row is reported with its 1-based line number. Line ends may be LF or CRLF.
    """
    try:
        with path.open("r") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as a text file ({exc})") from exc
    delimiter = "," if "," in first else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=np.float64,
                               usecols=None if keep is None else range(keep))
    except (ValueError, UnicodeDecodeError):
        table = None
    if table is not None and table.size == 0:
        raise DataError(f"{path}: file holds no points")
    if table is None or not _columns_ok(table.shape[1], columns, min_columns):
        line, text = _first_bad_line(path, delimiter, columns, min_columns)
        expected = str(columns) if columns is not None else f"at least {min_columns}"
        raise DataError(f"{path}: line {line}: expected {expected} numeric columns, got {text!r}")
    finite = np.isfinite(table).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise DataError(f"{path}: line {line_of_row(path, row)}: NaN or Inf value")
    return table


def _columns_ok(count: int, columns: int | None, min_columns: int) -> bool:
    return count == columns if columns is not None else count >= min_columns


def _first_bad_line(path: Path, delimiter: str | None, columns: int | None, min_columns: int
                    ) -> tuple[int, str]:
    """Locate the first line that is not a row of the expected numeric columns."""
    with path.open("r", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split(delimiter)
            if not _columns_ok(len(fields), columns, min_columns) or not all(
                map(_is_number, fields)
            ):
                return number, text[:80]
    return 1, ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def line_of_row(path: Path, row: int) -> int:
    """The 1-based line number of data row ``row`` of a text table (blank/comment lines skipped)."""
    with path.open("r", errors="replace") as handle:
        seen = -1
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if text and not text.startswith("#"):
                seen += 1
                if seen == row:
                    return number
    return row + 1


def resample(count: int, points: int, seed: int, index: int) -> np.ndarray:
    """Indices choosing exactly ``points`` of ``count`` points, deterministic from (seed, index).

    A random subset without replacement when the cloud has enough points, else with replacement.
    """
    rng = np.random.default_rng((seed, index))
    return rng.choice(count, size=points, replace=count < points)
