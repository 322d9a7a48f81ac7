"""Many complete lines decoded in one call: the fast path of a cold open.

Parsing a line into a dict and validating it costs a few microseconds in
Python, and a long run has millions of batch lines. msgspec decodes a whole
slice of JSON lines into typed objects in one call, and the batch rows among
them go straight into column blocks (lossmon/block.py) without a Record each.

Two decoders, fastest first. Once the reader has seen which value names a
file's batch records carry, a `Typed` decoder built for exactly those names
checks every batch line in C (kind, run, step range, the same names in
`logs` and `step_logs`, all floats) and the batch columns come out with one
pass per field (`Typed.take`). Failing that (a new metric, a "NaN" string),
the general decoder reads `logs` as dicts and `take` groups rows in Python.

This path only has to be right about well-formed lines. Any surprise in a
slice (a value of an unexpected type, bare NaN, bad UTF-8, a blank line, a
line that is not an object) sends the whole slice back to the line-by-line
path, which knows every rule of docs/format.md; a line that decodes but is
not a valid batch record (a header, an epoch, a negative step) goes there
on its own.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Annotated, Any, Optional, Union

import msgspec
import numpy as np

from lossmon.block import BatchBlock
from lossmon.format import BATCH, KINDS, MAX_STEP, Record, epoch_of, read_line, to_float
from lossmon.read.rowlines import ChunkLines, RowLines

MIN_LINES = 32  # below this, one call saves nothing over the line-by-line path
MAX_TYPED_NAMES = 64  # more value names than this: the general decoder


def _line_type(value: Any) -> type:
    """The fields of a line that batch records use, logs values typed `value`."""
    return msgspec.defstruct(
        "Line",
        [
            ("kind", str, ""),
            ("run", Optional[str], None),
            ("step", Optional[int], None),
            ("epoch", Optional[int], None),
            ("batch", Any, None),
            ("time", Optional[float], None),
            ("logs", Optional[dict[str, value]], None),
            ("step_logs", Optional[dict[str, value]], None),
        ],
        gc=False,  # millions of them: keep them away from the garbage collector
    )


# All-float logs first (the common case); then logs with "NaN"-like strings.
_STRICT = msgspec.json.Decoder(_line_type(float))
_LOOSE = msgspec.json.Decoder(_line_type(Union[float, str]))


def decode(data: bytes, count: int) -> tuple[list[Any], bool] | None:
    """The `count` lines in `data` (each ending in a newline) as typed rows,
    and whether their logs are all floats, or None when the slice must
    take the line-by-line path."""
    for decoder, strict in ((_STRICT, True), (_LOOSE, False)):
        try:
            rows = decoder.decode_lines(data)
        except msgspec.ValidationError:
            continue
        except (msgspec.MsgspecError, ValueError, RecursionError):
            return None
        if len(rows) != count:  # blank lines are skipped: positions no longer match
            return None
        return rows, strict
    return None


class Typed:
    """A decoder for the lines of a file whose batch records all carry the
    value names `names`, in `logs` and in `step_logs`, as floats.

    Batch lines become `BatchLine` structs; other known kinds decode to
    empty structs (their lines take the line-by-line path); anything else
    fails validation and the slice goes to the general decoder.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        fields = [f"v{i}" for i in range(len(self.names))]  # any metric name, as a safe attribute
        logs = msgspec.defstruct(
            "Logs", [(f, float) for f in fields], rename=dict(zip(fields, self.names)), forbid_unknown_fields=True, gc=False
        )
        self.line = msgspec.defstruct(
            "BatchLine",
            [
                ("run", str),
                ("step", Annotated[int, msgspec.Meta(ge=0, le=MAX_STEP - 1)]),
                ("logs", logs),
                ("step_logs", logs),
                # Absent: -1 and NaN, so the columns come out in one pass each;
                # an explicit null fails here and takes the general decoder.
                ("epoch", Annotated[int, msgspec.Meta(ge=0, le=MAX_STEP - 1)], -1),
                ("batch", Any, None),
                ("time", float, math.nan),
            ],
            tag_field="kind",
            tag=BATCH,
            gc=False,
        )
        others = [msgspec.defstruct(f"Other_{k}", [], tag_field="kind", tag=k, gc=False) for k in sorted(KINDS - {BATCH})]
        self.decoder = msgspec.json.Decoder(Union[(self.line, *others)])  # type: ignore[valid-type]
        self._getters = {name: attrgetter(f"step_logs.{f}") for name, f in zip(self.names, fields)}

    def decode(self, data: bytes, count: int) -> list[Any] | None:
        """The `count` lines in `data` as structs, or None if any line is not
        a batch line of these names or another known kind."""
        try:
            rows = self.decoder.decode_lines(data)
        except (msgspec.MsgspecError, ValueError, RecursionError):
            return None
        return rows if len(rows) == count else None

    def take(self, rows: list[Any], lines: ChunkLines, items: list[Any], slow: Callable[[bytes], None]) -> None:
        """Like `take`, for rows this decoder made from `lines`."""
        others = _positions_not_of(self.line, list(map(type, rows)))
        start = 0
        for stop in [*others, len(rows)]:
            if stop > start:
                self._blocks(rows[start:stop], lines, start, items)
            if stop < len(rows):
                slow(lines.lines[stop])
            start = stop + 1

    def _blocks(self, rows: list[Any], lines: ChunkLines, first: int, items: list[Any]) -> None:
        """Consecutive batch rows (lines `first`... of `lines`) as blocks,
        cut where the run changes or the step does not increase."""
        n = len(rows)
        steps = np.fromiter(map(_STEP, rows), np.int64, n)
        runs = list(map(_RUN, rows))
        cuts = np.flatnonzero(steps[1:] <= steps[:-1]) + 1
        if runs.count(runs[0]) != n:
            cuts = np.union1d(cuts, [i for i in range(1, n) if runs[i] != runs[i - 1]])
        epochs = np.fromiter(map(_EPOCH, rows), np.int64, n)
        times = np.fromiter(map(_TIME, rows), np.float64, n)
        columns = {name: np.fromiter(map(get, rows), np.float64, n) for name, get in self._getters.items()}
        bounds = [0, *cuts.tolist(), n]
        for a, b in zip(bounds, bounds[1:]):
            part = {name: column[a:b] for name, column in columns.items()}
            typed_rows = TypedRows(runs[a], steps[a:b], epochs[a:b], times[a:b], part, lines, first + a)
            items.append(BatchBlock.of_columns(runs[a], typed_rows, steps[a:b], epochs[a:b], times[a:b], columns=part))


class TypedRows(Sequence[Record]):
    """The rows of a typed block: row i is made into a Record only when
    someone asks for it, from its source line (`lines`, from line `first`)
    exactly as the line-by-line path makes it. If that line cannot be had
    (a block from the helper process whose file changed since), the Record
    says what the columns say, without the line's `logs` and `batch`.
    """

    __slots__ = ("epochs", "first", "lines", "run", "step_logs", "steps", "times")

    def __init__(
        self,
        run: str,
        steps: np.ndarray,
        epochs: np.ndarray,
        times: np.ndarray,
        step_logs: dict[str, np.ndarray],
        lines: RowLines,
        first: int = 0,
    ) -> None:
        self.run, self.steps, self.epochs, self.times, self.step_logs = run, steps, epochs, times, step_logs
        self.lines, self.first = lines, first

    def __len__(self) -> int:
        return len(self.steps)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        lines, first = self.lines.portable(self.first, len(self))
        return TypedRows, (self.run, self.steps, self.epochs, self.times, self.step_logs, lines, first)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            start, _, step = index.indices(len(self))
            if step != 1:
                raise ValueError("TypedRows slices are contiguous")
            cut = self.steps[index], self.epochs[index], self.times[index], {k: v[index] for k, v in self.step_logs.items()}
            return TypedRows(self.run, *cut, self.lines, self.first + start)
        row = range(len(self))[index]  # IndexError out of range
        step, epoch, time = int(self.steps[row]), int(self.epochs[row]), float(self.times[row])
        epoch_or_none, time_or_none = (None if epoch < 0 else epoch), (None if math.isnan(time) else time)
        values = {name: float(column[row]) for name, column in self.step_logs.items()}
        line = self.lines.line(self.first + row)
        record = read_line(line) if line is not None else None
        if record is not None and record.kind == BATCH:
            if (record.run, record.step, record.epoch, record.time, record.values) == (self.run, step, epoch_or_none, time_or_none, values):
                return record
        data: dict[str, Any] = {"kind": BATCH, "run": self.run, "step": step}
        for key, value in (("epoch", epoch_or_none), ("time", time_or_none), ("step_logs", dict(values))):
            if value is not None:
                data[key] = value
        return Record(BATCH, self.run, step, epoch_or_none, time_or_none, values, data)


@functools.lru_cache(maxsize=16)
def typed(names: tuple[str, ...]) -> Typed | None:
    """The `Typed` decoder for these names, shared by the files that use
    them; None if msgspec cannot build one (it refuses field names with a
    quote, a backslash or a control character): the general decoder reads on."""
    try:
        return Typed(names)
    except (TypeError, ValueError):
        return None


_STEP, _RUN, _EPOCH, _TIME = map(attrgetter, ("step", "run", "epoch", "time"))


def _positions_not_of(kind: type, types: list[type]) -> list[int]:
    """Where `types` holds another type than `kind`: a header or epoch line
    among thousands of batch lines, found by list.index in C."""
    found = []
    for other in set(types) - {kind}:
        at = -1
        for _ in range(types.count(other)):
            at = types.index(other, at + 1)
            found.append(at)
    return sorted(found)


def learn_names(decoded: tuple[list[Any], bool]) -> tuple[str, ...] | None:
    """The value names of the last batch row the general decoder made whose
    `logs` and `step_logs` both carry them all as floats: what a `Typed`
    decoder for the lines that follow should expect."""
    rows, strict = decoded
    for row in reversed(rows):
        logs, step_logs = row.logs, row.step_logs
        if row.kind != BATCH or not logs or not step_logs or logs.keys() != step_logs.keys():
            continue
        if strict or all(type(v) is float for v in (*logs.values(), *step_logs.values())):
            return tuple(step_logs) if len(step_logs) <= MAX_TYPED_NAMES else None
    return None


def take(decoded: tuple[list[Any], bool], lines: list[bytes], items: list[Any], slow: Callable[[bytes], None]) -> None:
    """Append the decoded lines to `items` in order: runs of valid batch rows
    of one run, with the same value names and increasing steps, as blocks;
    every other line through `slow` (which appends what it makes of it)."""
    rows, strict = decoded
    group: list[Any] = []
    values: list[dict[str, float]] = []
    run, keys, prev = None, None, -1

    def flush() -> None:
        if group:
            epochs = np.array([-1 if (epoch := epoch_of(r.epoch)) is None else epoch for r in group], np.int64)
            times = np.array([math.nan if r.time is None else r.time for r in group], np.float64)
            steps = np.fromiter(map(_STEP, group), np.int64, len(group))
            part = [lines[i] for i in indexes]
            items.append(BatchBlock.of_columns(run, part, steps, epochs, times, read_line, values=values.copy()))
            group.clear()
            values.clear()
            indexes.clear()

    indexes: list[int] = []

    for index, row in enumerate(rows):
        step = row.step
        if row.kind != BATCH or row.run is None or step is None or not 0 <= step < MAX_STEP:
            flush()
            slow(lines[index])
            continue
        logs, step_logs = row.logs, row.step_logs
        if strict:  # logs updated by step_logs; nearly always the same names
            if step_logs is None or not logs or logs.keys() == step_logs.keys():
                row_values = logs or {} if step_logs is None else step_logs
            else:
                row_values = {**logs, **step_logs}
        else:
            row_values = _numbers(logs)
            row_values.update(_numbers(step_logs))
        if row.run != run or step <= prev or row_values.keys() != keys:
            flush()
            run, keys = row.run, row_values.keys()
        group.append(row)
        values.append(row_values)
        indexes.append(index)
        prev = step
    flush()


def _numbers(logs: dict[str, float | str] | None) -> dict[str, float]:
    """The numeric entries of a logs object ("NaN" and the like as floats)."""
    out: dict[str, float] = {}
    for key, value in (logs or {}).items():
        number = to_float(value)
        if number is not None:
            out[key] = number
    return out


