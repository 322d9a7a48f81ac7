"""Reading Keras CSVLogger files, so existing logs can be watched and checked.

A CSVLogger file holds one row per epoch under a header row: an `epoch`
column and one column per metric (loss, accuracy, val_loss, ...; sometimes
learning_rate or lr). It is tailed exactly like a run file (same offsets,
partial lines, truncation and rotation handling, see tailer.py); only the
lines are parsed differently. The whole file is one run named after the
file, and rows become epoch records with step = epoch + 1, since the file
knows no optimizer steps.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lossmon.format import EPOCH, HEADER, MAX_STEP, Record
from lossmon.read.rowlines import open_regular
from lossmon.read.tailer import TailBatch, Tailer

CSV_SUFFIXES = frozenset({".csv", ".tsv"})
_SEPARATORS = (",", ";", "\t")
_LR_COLUMNS = frozenset({"lr", "learning_rate"})


def run_name_for(path: str | os.PathLike[str]) -> str:
    """The run name of a CSV file: its name without the suffix."""
    path = Path(path)
    return path.stem or path.name


def looks_like_csv_log(path: str | os.PathLike[str]) -> bool:
    """True for a file whose first line is a CSVLogger header (a row of
    names with an `epoch` column). Otherwise the suffix (.csv, .tsv)
    decides, unless the first line is a JSON object."""
    try:
        fd = open_regular(path)  # never blocks on a FIFO
    except OSError:
        first = b""
    else:
        try:
            first = os.pread(fd, 4096, 0)
        except OSError:
            first = b""
        finally:
            os.close(fd)
        cut = first.find(b"\n")
        first = first[: cut + 1] if cut >= 0 else first
    if first.endswith(b"\n") and first.strip():
        if _header_columns(first) is not None:
            return True
        if first.lstrip()[:1] == b"{":
            return False  # JSON lines, whatever the name says
    return Path(path).suffix.lower() in CSV_SUFFIXES


def _header_columns(line: bytes) -> tuple[str, list[str]] | None:
    """(separator, column names) when `line` is a CSVLogger header."""
    text = line.strip().lstrip(b"\xef\xbb\xbf")  # a BOM from a spreadsheet
    if not text or text[:1] in (b"{", b"["):
        return None
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for separator in _SEPARATORS:
        names = [name.strip() for name in next(csv.reader([decoded], delimiter=separator))]
        if "epoch" in names and len(set(names)) == len(names):
            return separator, names
    return None


def _count(text: str) -> int | None:
    """An epoch or step cell: ASCII digits only (`isdigit()` also takes
    "²" and other digits int() refuses), else None."""
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def _number(text: str) -> float | None:
    """A cell as a float; None for empty cells, "NA" and non-numbers.
    float() accepts "nan", "inf" and "-inf", as Python's str() writes them."""
    try:
        return float(text)
    except ValueError:
        return None


class CsvTailer(Tailer):
    """Tails a Keras CSVLogger file; the same interface as Tailer.

    The first non-blank line must be the header row; until it has been read
    nothing else is understood. A row with the wrong number of cells or a
    non-integer epoch is counted as malformed and skipped. When the file is
    truncated or replaced, the header is read again.
    """

    def __init__(self, path: str | os.PathLike[str], *, run: str | None = None, **limits: int) -> None:
        super().__init__(path, helper=False, **limits)  # the helper reads JSON lines only
        self.run = run if run is not None else run_name_for(path)
        self._separator: str | None = None
        self._columns: list[str] = []
        self._bad_header = False

    def poll(self) -> TailBatch:
        batch = super().poll()
        if self._bad_header and self.status == "ok":
            self._set_error(f"{self.path}: not a Keras CSVLogger file (its first line has no 'epoch' column)")
        return batch

    def _restart(self, notice: str, batch: TailBatch) -> None:
        super()._restart(notice, batch)
        self._separator = None
        self._columns = []
        self._bad_header = False

    def _line(self, line: bytes, batch: TailBatch) -> None:
        if not line.strip():
            return
        if self._separator is None:
            self._read_header(line, batch)
            return
        record = self._row(line)
        if record is None:
            batch.malformed += 1
        else:
            batch.items.append(record)

    def _read_header(self, line: bytes, batch: TailBatch) -> None:
        found = None if self._bad_header else _header_columns(line)
        if found is None:
            self._bad_header = True
            batch.malformed += 1
            return
        self._separator, self._columns = found
        data = {"kind": HEADER, "run": self.run, "step": 0, "source": "keras-csv", "columns": list(self._columns)}
        batch.items.append(Record(HEADER, self.run, 0, None, None, {}, data))

    def _row(self, line: bytes) -> Record | None:
        try:
            text = line.decode("utf-8").rstrip("\r")
            cells = next(csv.reader([text], delimiter=self._separator))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            return None
        if len(cells) != len(self._columns):
            return None
        row = dict(zip(self._columns, cells))
        epoch = _count(row.pop("epoch"))
        if epoch is None or epoch + 1 >= MAX_STEP:
            return None
        step = epoch + 1
        raw_step = _count(row.pop("step", None) or "")
        if raw_step is not None:
            if raw_step >= MAX_STEP:
                return None  # as a JSON record's step beyond int64
            step = raw_step
        values: dict[str, float] = {}
        for name, cell in row.items():
            number = _number(cell.strip())
            if number is None:
                continue
            values["lr" if name in _LR_COLUMNS else name] = number
        data = {"kind": EPOCH, "run": self.run, "step": step, "epoch": epoch, "logs": values}
        return Record(EPOCH, self.run, step, epoch, None, values, data)


def open_reader(path: str | os.PathLike[str], *, run: str | None = None) -> Tailer:
    """The reader for `path`: CsvTailer for CSVLogger files, else Tailer."""
    if looks_like_csv_log(path):
        return CsvTailer(path, run=run)
    return Tailer(path)
