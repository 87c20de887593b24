"""The CSV and Parquet files the library's sub-commands read and write.

One reader for every command, so that ``fuse``, ``synthesize``, ``evaluate`` and
``compare`` accept the same file types and reject an unusable file the same way: an
:class:`InputError` whose message names the file, its role on the command line and the
problem, which the command prints as one line before returning :data:`EXIT_USAGE`
(a traceback would bury the file name). The format follows the extension, never
the content, so a misnamed file fails loudly instead of being half-parsed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synth_assets.common.files import atomic_path

#: Exit status of a command whose inputs or arguments are unusable (as argparse's own errors).
EXIT_USAGE = 2

#: File extensions by format; ``.pq`` is a common short name for Parquet.
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


class InputError(ValueError):
    """A file or argument a command cannot use; the message names the file (and column)."""


def table_format(path: Path, role: str) -> str:
    """``"csv"`` or ``"parquet"`` from the extension; anything else is an :class:`InputError`."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(f"{role} file {path}: unsupported file type {suffix or '(none)'!r}; use .csv, .parquet or .pq")


def read_table(path: Path, role: str, *, require_rows: bool = False) -> pd.DataFrame:
    """Read a CSV or Parquet file; every failure becomes an :class:`InputError` naming it.

    ``role`` says which input it is ("donor", "training", ...), because one command often
    takes several files of the same type. ``require_rows`` rejects a table with no rows,
    for commands that would otherwise fail later with an error that no longer names the file.
    """
    path = Path(path)
    kind = table_format(path, role)
    if not path.is_file():
        raise InputError(f"cannot read {role} file {path}: {role} file {path} does not exist")
    try:
        table = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except Exception as error:  # parser, encoding, Arrow and OS errors alike mean "unreadable"
        raise InputError(f"cannot read {role} file {path}: {error}") from error
    if require_rows and table.empty:
        raise InputError(f"{role} file {path} holds no rows")
    if kind == "csv":
        _refuse_wrong_delimiter(table, path, role)
    return table


#: Delimiters other than the comma that a one-column header betrays.
_OTHER_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'"}


def _refuse_wrong_delimiter(table: pd.DataFrame, path: Path, role: str) -> None:
    """A CSV that parses as one column whose name holds ``;``, a tab or ``|`` was written with another delimiter.

    Read as is, it would be one text column: synthesised, fused or evaluated "successfully",
    and meaningless.
    """
    if table.shape[1] != 1:
        return
    header = str(table.columns[0])
    found = [name for delimiter, name in _OTHER_DELIMITERS.items() if delimiter in header]
    if found:
        raise InputError(
            f"{role} file {path} parses as one column named {header!r}: it looks delimited by "
            f"{found[0]}, not commas; write it comma-separated"
        )


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet by extension, atomically: a reader never sees half a file.

    Through :func:`synth_assets.common.files.atomic_path`: a crash leaves the old file or
    none, never a truncated one a later step would take for a result.
    """
    path = Path(path)
    kind = table_format(path, "output")
    if not path.parent.is_dir():
        raise InputError(f"output folder {path.parent} does not exist")
    with atomic_path(path) as temporary:
        if kind == "csv":
            table.to_csv(temporary, index=False)
        else:
            table.to_parquet(temporary, index=False)
