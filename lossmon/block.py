"""Batch records as columns, many at a time.

Batch records are nearly every line of a run file: a week-long job writes
millions. Handling them one by one in Python costs microseconds per record
in every stage, which made opening a long run slow. So consecutive batch
records of one run travel as a `BatchBlock`: the reader decodes a slice of
the file straight into one (lossmon/read/fastlines.py), the model copies its
columns into the series, and a detector that overrides
`Detector.observe_block` reads whole numpy columns at once. A block holds
records with strictly increasing steps and the same value names, so every
column is complete.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Union

import numpy as np

from lossmon.format import BATCH, Record

# Turns a source line of a block into its Record, on demand (None: it cannot).
LineToRecord = Callable[[bytes], Union[Record, None]]


class BatchBlock:
    """Consecutive batch records of one run; columns are built on first use.

    `rows` are Records, a sequence that makes the Record of a row when a
    detector asks for it (a Finding's row), or source lines with
    `to_record` to parse one: most rows of a long run never become objects
    of their own, and a block of columns is cheap to send to another
    process (lossmon/read/backlog.py). The reader hands over the columns
    (`of_columns`); each row's values dict is only made if someone asks.
    """

    __slots__ = ("_columns", "_epochs", "_records", "_steps", "_times", "_values", "names", "rows", "run", "to_record")

    def __init__(
        self, run: str, rows: Sequence[Any], values: Sequence[dict[str, float]], to_record: LineToRecord | None = None
    ) -> None:
        self.run = run
        self.rows = rows
        self._values: Sequence[dict[str, float]] | None = values  # each row's values, all with the same names
        self.to_record = to_record
        self.names = frozenset(values[0]) if values else frozenset()
        self._columns: dict[str, np.ndarray] = {}
        self._steps: np.ndarray | None = None
        self._epochs: np.ndarray | None = None
        self._times: np.ndarray | None = None
        self._records: list[Record] | None = None

    @classmethod
    def of_records(cls, run: str, records: Sequence[Record]) -> BatchBlock:
        return cls(run, records, [r.values for r in records])

    @classmethod
    def of_columns(
        cls,
        run: str,
        rows: Sequence[Any],
        steps: np.ndarray,
        epochs: np.ndarray,
        times: np.ndarray,
        to_record: LineToRecord | None = None,
        *,
        columns: dict[str, np.ndarray] | None = None,
        values: Sequence[dict[str, float]] = (),
    ) -> BatchBlock:
        """A block whose columns the reader has built: `epochs` -1 and
        `times` NaN where a row has none, and either one float column per
        value name or each row's values."""
        block = cls(run, rows, values, to_record)
        if columns is not None:
            block._values = None
            block.names = frozenset(columns)
            block._columns = columns
        block._steps, block._epochs, block._times = steps, epochs, times
        return block

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def values(self) -> Sequence[dict[str, float]]:
        """Each row's values by name."""
        if self._values is None:
            names = list(self._columns)
            lists = [self._columns[name].tolist() for name in names]
            self._values = [dict(zip(names, row)) for row in zip(*lists)] if names else [{} for _ in self.rows]
        return self._values

    def record(self, row: int) -> Record:
        if self.to_record is None:
            record = self.rows[row]
        else:
            record = self.to_record(self.rows[row])
        if record is None:  # unreachable: the reader only blocks lines its parser takes; say what the columns say
            epoch, time = int(self.epochs[row]), float(self.times[row])
            values = {name: float(self.column(name)[row]) for name in self.names}  # type: ignore[index]
            record = Record(BATCH, self.run, int(self.steps[row]), None if epoch < 0 else epoch, None if math.isnan(time) else time, values)
        elif record.run != self.run:  # the block was renamed (a run id two files share): it decides
            record.run = self.run
        return record

    @property
    def records(self) -> list[Record]:
        """Every row as a Record (for detectors that read records one by one)."""
        if self._records is None:
            self._records = [self.record(i) for i in range(len(self.rows))]
        return self._records

    def slice(self, start: int, stop: int) -> BatchBlock:
        """Rows start..stop-1 as a block of their own, sharing built columns."""
        part = BatchBlock(self.run, self.rows[start:stop], (), self.to_record)
        part.names = self.names
        part._values = None if self._values is None else self._values[start:stop]
        part._columns = {name: column[start:stop] for name, column in self._columns.items()}
        for attr in ("_steps", "_epochs", "_times"):
            built = getattr(self, attr)
            if built is not None:
                setattr(part, attr, built[start:stop])
        return part

    def column(self, name: str) -> np.ndarray | None:
        """The float values of `name` for every row, or None when absent."""
        if name not in self.names:
            return None
        column = self._columns.get(name)
        if column is None:
            column = np.array([v[name] for v in self.values], dtype=np.float64)
            self._columns[name] = column
        return column

    @property
    def steps(self) -> np.ndarray:
        if self._steps is None:
            self._steps = np.array([r.step for r in self.rows], dtype=np.int64)
        return self._steps

    @property
    def epochs(self) -> np.ndarray:
        """Epoch indices, -1 where a row has none."""
        if self._epochs is None:
            self._epochs = np.array([-1 if r.epoch is None else r.epoch for r in self.rows], dtype=np.int64)
        return self._epochs

    @property
    def times(self) -> np.ndarray:
        """Record times, NaN where a row has none."""
        if self._times is None:
            nan = math.nan
            self._times = np.array([nan if r.time is None else r.time for r in self.rows], dtype=np.float64)
        return self._times


Item = Union[Record, BatchBlock]  # what the reader hands on: records and blocks, in file order


def split_blocks(items: Sequence[Item], last_steps: dict[str, int]) -> list[Item]:
    """`items` in order, runs of batch records grouped into blocks.

    A batch record whose step is not above the last batch step seen for its
    run (`last_steps`, updated here) stays a single Record: detectors drop
    such repeats after a resume, and a block must have increasing steps.
    Blocks that come in are cut the same way.
    """
    out: list[Item] = []
    i, n = 0, len(items)
    while i < n:
        first = items[i]
        if isinstance(first, BatchBlock):
            out += _fresh_part(first, last_steps)
            i += 1
            continue
        if first.kind != BATCH or first.step <= last_steps.get(first.run, -1):
            out.append(first)
            i += 1
            continue
        run, keys, prev = first.run, first.values.keys(), first.step
        j = i + 1
        while j < n:
            record = items[j]
            if (
                isinstance(record, BatchBlock)
                or record.kind != BATCH
                or record.run != run
                or record.step <= prev
                or record.values.keys() != keys
            ):
                break
            prev = record.step
            j += 1
        last_steps[run] = prev
        out.append(BatchBlock.of_records(run, items[i:j]))
        i = j
    return out


def _fresh_part(block: BatchBlock, last_steps: dict[str, int]) -> list[Item]:
    """A block's leading rows that repeat steps already seen, as single
    records, then the rest as a block."""
    size = len(block)
    if not size:
        return []
    last = last_steps.get(block.run, -1)
    steps = block.steps
    if steps[0] > last:  # the usual case, and cheaper to see than to search for
        last_steps[block.run] = int(steps[-1])
        return [block]
    first = int(np.searchsorted(steps, last, side="right"))
    out: list[Item] = [block.record(row) for row in range(first)]
    if first < size:
        out.append(block.slice(first, size))
        last_steps[block.run] = int(steps[-1])
    return out
