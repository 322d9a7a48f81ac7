"""Many complete lines decoded in one call: the fast path of a cold open.

Parsing a line into a dict and validating it costs a few microseconds in
Python, and a long run has millions of batch lines. msgspec decodes a whole
slice of JSON lines into typed objects in one call, and the batch rows among
them go straight into column blocks (lossmon/block.py) without a Record each.

This path only has to be right about well-formed lines. Any surprise in a
slice (a value of an unexpected type, bare NaN, bad UTF-8, a blank line, a
line that is not an object) sends the whole slice back to the line-by-line
path, which knows every rule of docs/format.md; a line that decodes but is
not a valid batch record (a header, an epoch, a negative step) goes there
on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Union

import msgspec

from lossmon.block import BatchBlock
from lossmon.format import MAX_STEP, BATCH, Record, to_float

MIN_LINES = 32  # below this, one call saves nothing over the line-by-line path


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
            items.append(BatchBlock(run, group.copy(), values.copy(), row_record))
            group.clear()
            values.clear()

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


def row_record(row: Any, values: dict[str, float]) -> Record:
    """A decoded batch row as the Record the line-by-line path would make."""
    data = {"kind": BATCH, "run": row.run, "step": row.step}
    for key in ("epoch", "batch", "time", "logs", "step_logs"):
        value = getattr(row, key)
        if value is not None:
            data[key] = value
    return Record(BATCH, row.run, row.step, row.epoch, row.time, values, data)
