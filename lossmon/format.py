"""The run-file format: one JSON object per line, shared by writer and reader.

Both sides of the pipeline import this module, so the record layout lives in
exactly one place. docs/format.md is the human description of the same thing.
It must stay free of TensorFlow and Textual imports.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

FORMAT_VERSION = 1
MAX_STEP = 2**63  # steps are stored as int64; a larger one is malformed

HEADER = "header"
BATCH = "batch"
EPOCH = "epoch"
END = "end"
PROBE = "probe"
KINDS = frozenset({HEADER, BATCH, EPOCH, END, PROBE})

# End-record statuses.
COMPLETED = "completed"
STOPPED_EARLY = "stopped_early"
INTERRUPTED = "interrupted"
ERROR = "error"

# Non-finite floats are written as these strings, so every line is RFC 8259 JSON.
_NONFINITE_OUT = {math.inf: "Infinity", -math.inf: "-Infinity"}
# ... and read back from these spellings, in any case (docs/format.md).
_NONFINITE_IN = {
    "nan": math.nan,
    "+nan": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
}
_NONFINITE_EXACT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # what writers write


# ---------------------------------------------------------------- writing


def json_number(value: float) -> float | str:
    """A float as the run file stores it: finite as is, otherwise a string."""
    if value != value:
        return "NaN"
    return _NONFINITE_OUT.get(value, value)


def clean_logs(logs: dict[str, Any] | None) -> dict[str, float | str]:
    """Keep the scalar entries of a Keras logs dict, JSON-safe."""
    out: dict[str, float | str] = {}
    if not logs:
        return out
    for key, value in logs.items():
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range (10**400): ±inf, not the whole record lost
            number = math.inf if value > 0 else -math.inf
        except (TypeError, ValueError):
            continue
        out[str(key)] = json_number(number)
    return out


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _no_surrogates(text: str) -> str:
    """`text` with each lone surrogate (which UTF-8 cannot encode) spelled
    out as the six characters of its JSON escape, e.g. `\\ud800`."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def json_safe(value: Any) -> Any:
    """`value` as plain strict JSON: non-finite floats as strings, numpy
    values unwrapped, lone surrogates spelled out, anything else unknown
    as its string."""
    if isinstance(value, str):
        return _no_surrogates(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -(2**63) <= value < 2**64:
            return value
        try:  # beyond what JSON readers take as an integer
            return float(value)
        except OverflowError:
            return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, dict):
        return {_no_surrogates(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, tensors
    if tolist is not None:
        try:
            return json_safe(tolist())
        except Exception:
            pass
    return _no_surrogates(str(value))


def encode(record: dict[str, Any]) -> bytes:
    """One record as one strict-JSON line, newline included; never raises.

    orjson writes NaN and Infinity as `null`, so a line with a `null` in it
    takes the slow path that spells them out.
    """
    try:
        line = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # orjson.JSONEncodeError: a value orjson cannot write
        line = b"null"
    if b"null" in line:
        line = orjson.dumps(json_safe(record))
    return line + b"\n"


# ---------------------------------------------------------------- reading


def to_float(value: Any) -> float | None:
    """A metric value as read from a file, or None when it is not a number.

    Numbers are floats (an integer beyond the float range is ±inf); a
    string is a number only when it spells a non-finite value: nan, inf or
    infinity, optionally signed, in any case."""
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if type(value) is str:
        number = _NONFINITE_EXACT.get(value)
        if number is None and len(value) <= 9:
            number = _NONFINITE_IN.get(value.lower())
        return number
    return None


def _constant(token: str) -> float:
    return _NONFINITE_EXACT[token]


_PADDING = b" \t\r\n\x00"
_BOM = b"\xef\xbb\xbf"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_line(line: bytes) -> Any:
    """Parse one line; raise ValueError when it is not JSON.

    One set of rules for every line, whichever decoder reads it first
    (docs/format.md, "Reading rules"): strict RFC 8259 JSON in UTF-8, with
    these allowances, each also taken by the lenient path below when the
    strict decoders refuse a line:

    - NUL bytes, whitespace and one UTF-8 BOM around the object are
      padding (NUL runs are what a crashed file system leaves behind);
    - the bare tokens NaN, Infinity and -Infinity (Python's json writes
      them) are numbers, and so is a number beyond the float range (±inf);
    - a lone surrogate escape (\\ud800) in a string, which UTF-8 cannot
      carry, is kept as its six characters of text.

    Invalid UTF-8 and anything else that is not JSON is malformed.
    """
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    text = line.strip(_PADDING)
    if text.startswith(_BOM):
        text = text[len(_BOM) :].strip(_PADDING)
    try:
        decoded = text.decode("utf-8")
        obj = json.loads(decoded, parse_constant=_constant)
        if _SURROGATE_ESCAPE.search(decoded) is not None:
            obj = _spell_surrogates(obj)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError("not valid JSON") from exc
    return obj


def _spell_surrogates(obj: Any) -> Any:
    if type(obj) is str:
        return _no_surrogates(obj)
    if type(obj) is dict:
        return {_no_surrogates(key): _spell_surrogates(value) for key, value in obj.items()}
    if type(obj) is list:
        return [_spell_surrogates(item) for item in obj]
    return obj


def _numbers(raw: Any) -> dict[str, float]:
    """The numeric entries of a logs object, as floats.

    Hot path (once or twice per record on a cold open): the common case of
    all-float logs is one comprehension; anything else takes the slow loop.
    """
    if type(raw) is not dict:
        return {}
    out = {key: value for key, value in raw.items() if type(value) is float}
    if len(out) == len(raw):
        return out
    out = {}
    for key, value in raw.items():
        number = to_float(value)
        if number is not None:
            out[key] = number
    return out


def _all_floats(logs: Any, step_logs: Any) -> dict[str, float] | None:
    """logs updated by step_logs, when every value that survives the merge
    is a float (the common case: one merge, one pass); None otherwise."""
    if type(logs) is not dict or type(step_logs) is not dict:
        return None
    merged = {**logs, **step_logs}
    for value in merged.values():
        if type(value) is not float:
            return None
    return merged


def _probe_values(obj: dict[str, Any]) -> dict[str, float]:
    """A probe record flattened: its top-level numbers ("probe_loss",
    "grad_norm", ...) plus "<measure>/<layer>" for each layer's numbers."""
    values = _numbers(obj)
    values.pop("step", None)
    values.pop("epoch", None)
    values.pop("time", None)
    layers = obj.get("layers")
    if type(layers) is dict:
        for layer, measures in layers.items():
            for measure, value in _numbers(measures).items():
                values[f"{measure}/{layer}"] = value
    return values


@dataclass(slots=True)
class Record:
    """A validated record. `values` holds the numbers detectors and plots use.

    For batch records, `values` are the per-step values (recovered from
    Keras' running means by the writer) where present, else the logs as
    written. For epoch records they are the epoch logs plus `lr`. For probe
    records, the probe's numbers, per-layer ones named "<measure>/<layer>".
    """

    kind: str
    run: str
    step: int
    epoch: int | None = None
    time: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def to_record(obj: Any) -> Record | None:
    """Validate a parsed line; None when it is not a lossmon record."""
    if type(obj) is not dict:
        return None
    kind = obj.get("kind")
    if kind not in KINDS:
        return None
    run = obj.get("run")
    step = obj.get("step")
    if type(run) is not str or type(step) is not int or not 0 <= step < MAX_STEP:
        return None
    epoch = epoch_of(obj.get("epoch"))
    time = obj.get("time")
    if type(time) is not float:
        time = to_float(time)
    if kind == BATCH:
        logs, step_logs = obj.get("logs"), obj.get("step_logs")
        values = _all_floats(logs, step_logs)
        if values is None:
            values = _numbers(logs)
            values.update(_numbers(step_logs))
    elif kind == EPOCH:
        values = _numbers(obj.get("logs"))
        lr = to_float(obj.get("lr"))
        if lr is not None:
            values["lr"] = lr
    elif kind == PROBE:
        values = _probe_values(obj)
    else:
        values = {}
    return Record(kind, run, step, epoch, time, values, obj)


def epoch_of(value: Any) -> int | None:
    """An epoch as records carry it: an integer from 0 to MAX_STEP - 1, or
    None (a value of another type or out of range is ignored)."""
    return value if type(value) is int and 0 <= value < MAX_STEP else None


def decode(line: bytes) -> Record | None:
    """Parse and validate one line; None when it is malformed."""
    try:
        return to_record(parse_line(line))
    except ValueError:
        return None


def read_line(line: bytes) -> Record | None:
    """`decode`, trying strict JSON with orjson first: the fast path for the
    lines a writer makes; the lenient parser only for bare NaN tokens and
    the like. None when the line is malformed (or blank)."""
    try:
        return to_record(orjson.loads(line))
    except orjson.JSONDecodeError:
        try:
            return decode(line)
        except (ValueError, RecursionError):  # decode() should catch these; be safe anyway
            return None


GLUE_MARK = b'{"kind"'  # how every record a writer makes begins
_GLUE_TRIES = 4


def is_blank(line: bytes) -> bool:
    """A line of padding only (whitespace, NUL bytes): not damage."""
    return not line.strip(_PADDING)


def recover_glued(line: bytes) -> Record | None:
    """The record glued after garbage on a malformed line, if any: a torn
    last line (disk full, a writer killed mid-record) followed by the next
    writer's first record, without a newline between them."""
    at = line.find(GLUE_MARK, 1)
    for _ in range(_GLUE_TRIES):
        if at < 0:
            return None
        record = read_line(line[at:])
        if record is not None:
            return record
        at = line.find(GLUE_MARK, at + 1)
    return None
