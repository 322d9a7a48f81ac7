"""The bulk decoder reads exactly what the line-by-line reader reads.

A cold open decodes whole slices of the file in one call (read/fastlines.py)
and falls back to the line-by-line path for any slice it is not sure of. The
records that come out, and the count of malformed lines, must be the same
either way, whatever the lines hold.
"""

from __future__ import annotations

import math

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossmon.block import BatchBlock
from lossmon.format import decode
from lossmon.read import Tailer
from lossmon.read.fastlines import MIN_LINES

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(-5, 5),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "inf", "fast", True, None, [1.0], {"x": 1.0}]),
)
logs = st.one_of(st.none(), st.dictionaries(st.sampled_from(["loss", "accuracy", "val_loss", "mae"]), values, max_size=3))


@st.composite
def batch_line(draw) -> bytes:
    record = {"kind": "batch", "run": draw(st.sampled_from(["a", "a", "a", "b", 7])), "step": draw(st.integers(-2, 60))}
    for key, strategy in (
        ("epoch", st.one_of(st.integers(0, 3), st.none(), st.just(1.5))),
        ("batch", st.one_of(st.integers(0, 9), st.just("x"))),
        ("time", st.one_of(st.floats(1000, 2000), st.integers(1000, 2000), st.just("NaN"))),
        ("logs", logs),
        ("step_logs", logs),
    ):
        if draw(st.booleans()) or key == "step_logs":
            record[key] = draw(strategy)
    return orjson.dumps(record)


other_lines = st.sampled_from(
    [
        b'{"kind":"header","run":"a","step":0,"optimizer":{"class":"Adam"},"loss":"mse"}',
        b'{"kind":"epoch","run":"a","step":10,"epoch":0,"time":1500.0,"logs":{"loss":0.5},"lr":0.001}',
        b'{"kind":"probe","run":"a","step":10,"grad_norm":1.5,"layers":{"d":{"dead_fraction":0.1}}}',
        b'{"kind":"end","run":"a","step":60,"status":"completed"}',
        b'{"kind":"batch","run":"a","step":3,"logs":{"loss":NaN}}',
        b'{"kind":"batch","run":"a","step":3,"logs":{"loss":1e400}}',
        b'{"kind":"nope","run":"a","step":1}',
        b"[1, 2]",
        b"",
        b"   ",
        b"\xff\xfe not json",
        b'{"kind":"batch","run":"a","step":4,"logs":{"loss":0.1,"loss":"NaN"}}',
    ]
)


def as_tuples(records) -> list[tuple]:
    out = []
    for r in records:
        batch_index = r.data.get("batch") if isinstance(r.data, dict) else None
        time = "nan" if r.time is not None and math.isnan(r.time) else r.time
        shown = {k: "nan" if math.isnan(v) else v for k, v in r.values.items()}
        out.append((r.kind, r.run, r.step, r.epoch, time, shown, batch_index))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.one_of(batch_line(), batch_line(), other_lines), min_size=MIN_LINES + 1, max_size=120),
    poll_bytes=st.one_of(st.just(1 << 20), st.integers(200, 6000)),
)
def test_bulk_and_line_by_line_reading_agree(tmp_path_factory, lines, poll_bytes):
    """Whole or in slices that cut lines anywhere: the same records."""
    path = tmp_path_factory.mktemp("fast") / "run.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    records, malformed, count, _ = read_in_polls(path, poll_bytes)
    assert_same_as_line_by_line(lines, records, malformed)
    assert count == len(records)


def read_in_polls(path, poll_bytes: int) -> tuple[list, int, int, Tailer]:
    """Records, malformed lines and the item count of reading `path` to its end."""
    tailer = Tailer(path, max_bytes_per_poll=poll_bytes)
    records, malformed, count = [], 0, 0
    while True:
        batch = tailer.poll()
        records += batch.records
        malformed += batch.malformed
        count += batch.count
        if not batch.more:
            return records, malformed, count, tailer


def assert_same_as_line_by_line(lines: list[bytes], records: list, malformed: int) -> None:
    expected = [record for record in (decode(line) for line in lines if line.strip()) if record is not None]
    assert as_tuples(records) == as_tuples(expected)
    assert malformed == sum(1 for line in lines if line.strip() and decode(line) is None)


def test_a_clean_slice_of_batch_lines_becomes_blocks(tmp_path):
    """The fast path is really taken for well-formed batch lines, with an
    epoch record between them splitting the blocks."""
    lines = [
        orjson.dumps({"kind": "batch", "run": "a", "step": s, "epoch": 0, "batch": s - 1, "time": 1000.0 + s,
                      "logs": {"loss": 1.0 / s}, "step_logs": {"loss": 1.0 / s}})
        for s in range(1, 101)
    ]
    lines.insert(50, b'{"kind":"epoch","run":"a","step":50,"epoch":0,"logs":{"loss":0.02}}')
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    batch = Tailer(path).poll()
    kinds = [type(item).__name__ if isinstance(item, BatchBlock) else item.kind for item in batch.items]
    assert kinds == ["BatchBlock", "epoch", "BatchBlock"]
    first = batch.items[0]
    assert first.steps.tolist() == list(range(1, 51)) and first.column("loss")[1] == 0.5
    assert first.record(1).data["batch"] == 1


@st.composite
def typed_batch_line(draw) -> bytes:
    """Mostly what a long run holds (the same names in logs and step_logs,
    floats), with the odd line the typed decoder must refuse or cut at."""
    loss, acc = draw(st.floats(0, 10)), draw(st.floats(0, 1))
    record = {
        "kind": "batch",
        "run": draw(st.sampled_from(["a"] * 8 + ["b"])),
        "step": draw(st.one_of(st.integers(0, 500), st.integers(0, 500), st.sampled_from([-1, 2**63 - 1, 2**63]))),
        "epoch": draw(st.one_of(st.integers(0, 9), st.integers(0, 9), st.none(), st.sampled_from([-3, 2**53 + 1, 2**62]))),
        "batch": draw(st.integers(0, 99)),
        "time": draw(st.one_of(st.floats(1000, 2000), st.integers(1000, 2000), st.none())),
        "logs": {"loss": loss, "accuracy": acc},
        "step_logs": {"loss": loss, "accuracy": acc},
    }
    twist = draw(st.sampled_from([None] * 12 + ["extra", "missing", "nan", "no_step_logs", "no_time"]))
    if twist == "extra":
        record["step_logs"]["mae"] = 0.5
    elif twist == "missing":
        del record["logs"]["accuracy"]
    elif twist == "nan":
        record["step_logs"]["loss"] = "NaN"
    elif twist == "no_step_logs":
        del record["step_logs"]
    elif twist == "no_time":
        del record["time"]
    return orjson.dumps(record)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(
    lines=st.lists(st.one_of(*[typed_batch_line()] * 6, other_lines), min_size=4 * MIN_LINES, max_size=300),
    poll_bytes=st.integers(4000, 12000),
)
def test_the_typed_decoder_reads_what_the_line_by_line_path_reads(tmp_path_factory, lines, poll_bytes):
    """Once a file's value names are learnt, later slices go through the
    decoder typed for them: the records are still exactly the same."""
    clean = orjson.dumps({"kind": "batch", "run": "a", "step": 0, "logs": {"loss": 1.0, "accuracy": 0.5},
                          "step_logs": {"loss": 1.0, "accuracy": 0.5}})
    lines = [clean] * (poll_bytes // len(clean) + 2) + lines  # the first slice teaches the names
    path = tmp_path_factory.mktemp("typed") / "run.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    records, malformed, _, tailer = read_in_polls(path, poll_bytes)
    assert_same_as_line_by_line(lines, records, malformed)
    assert tailer._typed is not None and tailer._typed.names == ("loss", "accuracy")


def test_the_typed_decoder_is_used_and_keeps_each_rows_logs(tmp_path):
    lines = [
        orjson.dumps({"kind": "batch", "run": "a", "step": s, "epoch": s // 100, "batch": s % 100, "time": 1000.0 + s,
                      "logs": {"loss": 2.0 / s, "accuracy": 0.5}, "step_logs": {"loss": 1.0 / s, "accuracy": 0.5}})
        for s in range(1, 401)
    ]
    lines.insert(200, b'{"kind":"epoch","run":"a","step":200,"epoch":1,"logs":{"loss":0.02}}')
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    tailer = Tailer(path, max_bytes_per_poll=len(b"\n".join(lines[:100])))
    first = tailer.poll()
    assert tailer._typed is not None  # learnt from the first slice
    second = tailer.poll()
    blocks = [item for item in second.items if isinstance(item, BatchBlock)]
    assert blocks and all(block._values is None for block in blocks)  # columns straight from the typed rows
    block = blocks[-1]
    row = len(block) - 1
    record = block.record(row)
    step = int(block.steps[row])
    assert record.step == step and record.values == {"loss": 1.0 / step, "accuracy": 0.5}
    assert record.data["logs"] == {"loss": 2.0 / step, "accuracy": 0.5} and record.data["batch"] == step % 100
    assert block.values[row] == record.values and first.count + second.count < len(lines)


def test_any_metric_names_go_through_the_typed_decoder(tmp_path):
    """Names msgspec can take get the typed decoder; a name it refuses (a
    quote, a backslash, a control character) leaves the general one."""
    for names, typed in ((["", "kind", "step", "val loss/ä", "__init__", "v0"], True), (["loss", 'a"b', "c\\d"], False)):
        lines = [
            orjson.dumps({"kind": "batch", "run": "a", "step": s, "epoch": 0, "batch": s,
                          "logs": {name: s + i for i, name in enumerate(names)},
                          "step_logs": {name: s * 10.0 + i for i, name in enumerate(names)}})
            for s in range(1, 301)
        ]
        path = tmp_path / f"run-{typed}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        records, malformed, _, tailer = read_in_polls(path, len(lines[0]) * 60)
        assert_same_as_line_by_line(lines, records, malformed)
        assert (tailer._typed is not None) == typed
        assert records[-1].values == {name: 3000.0 + i for i, name in enumerate(names)}
        assert records[-1].data["logs"][names[1]] == 301
