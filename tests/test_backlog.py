"""A helper process decodes the end of a long backlog (read/backlog.py).

It changes who decodes, never what comes out: the records, the malformed
count and where reading stands afterwards are those of reading alone, and
a helper that dies, cannot start or meets a replaced or truncated file
leaves the reader to go on by itself. These tests lower the threshold so
small files get a helper, and check that one really ran.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossmon.block import BatchBlock
from lossmon.read import backlog as backlog_module
from lossmon.read import open_reader
from lossmon.read.tailer import NOTICE_REPLACED, NOTICE_TRUNCATED, Tailer
from test_fastlines import as_tuples, batch_line, other_lines


def good_line(step: int, run: str = "a") -> bytes:
    loss = 1.0 / step
    return orjson.dumps({"kind": "batch", "run": run, "step": step, "epoch": step // 100, "batch": step % 100,
                         "time": 1000.0 + step, "logs": {"loss": loss, "accuracy": 0.5},
                         "step_logs": {"loss": loss, "accuracy": 0.5}})


def file_of(path: Path, lines: list[bytes], tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines) + tail)
    return path


def reader(path: Path, helper: bool, **limits: int) -> Tailer:
    tailer = Tailer(path, helper=helper, **limits)
    tailer.helper_min_bytes = 1 if helper else None  # any backlog
    return tailer


def drain(tailer: Tailer) -> tuple[list, int, list[str], bool]:
    """Records, malformed count and notices up to the end; whether a helper ran."""
    records, malformed, notices, helped = [], 0, [], False
    while True:
        batch = tailer.poll()
        helped = helped or tailer._backlog is not None
        records += batch.records
        malformed += batch.malformed
        notices += batch.notices
        if not batch.more:
            return records, malformed, notices, helped


def items_of(tailer: Tailer) -> list:
    """Records and blocks, as the reader hands them on, up to the end."""
    items = []
    while True:
        batch = tailer.poll()
        items += batch.items
        if not batch.more:
            return items


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.one_of(batch_line(), other_lines, st.builds(good_line, st.integers(1, 10**6))), min_size=80, max_size=400),
    poll_bytes=st.integers(300, 4000),
    max_line=st.sampled_from([16 * 1024 * 1024, 120]),
    tail=st.sampled_from([b"", b'{"kind":"batch","run":"a","st']),
)
def test_a_helper_reads_exactly_what_reading_alone_reads(tmp_path_factory, lines, poll_bytes, max_line, tail):
    """Any lines (junk, over-long ones, a half-written last one): the same
    records, malformed lines and final reading state."""
    path = file_of(tmp_path_factory.mktemp("backlog") / "run.jsonl", lines, tail)
    alone = reader(path, False, max_bytes_per_poll=poll_bytes, max_line_bytes=max_line)
    helped = reader(path, True, max_bytes_per_poll=poll_bytes, max_line_bytes=max_line)
    expected, got = drain(alone), drain(helped)
    assert got[3] and not expected[3]
    assert as_tuples(got[0]) == as_tuples(expected[0])
    assert got[1:3] == expected[1:3]
    assert (helped.offset, helped._partial, helped._skipping) == (alone.offset, alone._partial, alone._skipping)
    assert helped.records_read == alone.records_read and helped.malformed == alone.malformed


def test_the_line_cut_at_the_backlogs_end_is_completed_later(tmp_path: Path) -> None:
    path = file_of(tmp_path / "run.jsonl", [good_line(s) for s in range(1, 2000)], good_line(2000)[:30])
    tailer = reader(path, True, max_bytes_per_poll=20_000)
    records, _, _, helped = drain(tailer)
    assert helped and [r.step for r in records] == list(range(1, 2000))
    with open(path, "ab") as handle:
        handle.write(good_line(2000)[30:] + b"\n")
    assert [r.step for r in tailer.poll().records] == [2000]


def test_a_helper_that_dies_leaves_the_reader_to_go_on(tmp_path: Path) -> None:
    lines = [good_line(s) for s in range(1, 5000)]
    path = file_of(tmp_path / "run.jsonl", lines)
    tailer = reader(path, True, max_bytes_per_poll=20_000)
    records = []
    while tailer._backlog is None or tailer._limit is not None:  # the head
        records += tailer.poll().records
    records += tailer.poll().records  # one slice from the helper
    tailer._backlog._process.kill()
    rest, _, _, _ = drain(tailer)
    assert [r.step for r in records + rest] == list(range(1, 5000))
    assert tailer._backlog is None and tailer.offset == path.stat().st_size


def test_without_a_helper_process_the_reader_reads_alone(tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("no processes left")

    monkeypatch.setattr(backlog_module.subprocess, "Popen", refuse)
    path = file_of(tmp_path / "run.jsonl", [good_line(s) for s in range(1, 3000)])
    tailer = reader(path, True, max_bytes_per_poll=20_000)
    records, malformed, _, helped = drain(tailer)
    assert not helped and malformed == 0 and [r.step for r in records] == list(range(1, 3000))
    assert tailer.helper_min_bytes is None  # tried once


def read_while_changing(tmp_path: Path, change) -> tuple[list[int], list[str]]:
    """Read a long file with a helper, calling `change(path)` once the
    helper's first slice is in; the steps and notices that come out."""
    path = file_of(tmp_path / "run.jsonl", [good_line(s) for s in range(1, 20_000)])
    tailer = reader(path, True, max_bytes_per_poll=8_000)
    steps, notices = [], []
    while tailer._backlog is None or tailer._limit is not None:  # the head
        steps += [r.step for r in tailer.poll().records]
    steps += [r.step for r in tailer.poll().records]  # one slice from the helper
    change(path)
    records, _, more_notices, _ = drain(tailer)
    return steps + [r.step for r in records], notices + more_notices


def test_a_file_replaced_under_the_helper_is_read_anew(tmp_path: Path) -> None:
    def rotate(path: Path) -> None:
        path.rename(path.with_suffix(".1"))
        file_of(path, [good_line(s, "b") for s in range(1, 301)])

    steps, notices = read_while_changing(tmp_path, rotate)
    cut = steps.index(1, 1)  # where the new file starts
    assert steps[:cut] == list(range(1, cut + 1)) and steps[cut:] == list(range(1, 301))
    assert notices == [NOTICE_REPLACED]


def test_a_file_truncated_under_the_helper_is_read_from_the_start(tmp_path: Path) -> None:
    def truncate(path: Path) -> None:
        file_of(path, [good_line(s, "b") for s in range(1, 301)])  # same file, shorter

    steps, notices = read_while_changing(tmp_path, truncate)
    cut = steps.index(1, 1)
    assert steps[:cut] == list(range(1, cut + 1)) and steps[cut:] == list(range(1, 301))
    assert notices == [NOTICE_TRUNCATED]


def test_small_backlogs_and_csv_logs_get_no_helper(tmp_path: Path) -> None:
    path = file_of(tmp_path / "run.jsonl", [good_line(s) for s in range(1, 3000)])
    assert not drain(Tailer(path))[3]  # far below HELPER_MIN_BYTES
    csv = tmp_path / "log.csv"
    csv.write_text("epoch,loss\n" + "".join(f"{e},{1 / (e + 1)}\n" for e in range(5000)))
    tailer = open_reader(csv)
    records, _, _, helped = drain(tailer)
    assert tailer.helper_min_bytes is None and not helped and len(records) == 5001  # a header, then the rows


def test_blocks_come_through_a_pipe_whole(tmp_path: Path) -> None:
    """What the helper sends is what the reader made: every record of every
    block (typed and general, sliced too), its data included."""
    lines = [good_line(s) for s in range(1, 3000)]
    lines[1500] = b'{"kind":"batch","run":"a","step":1501,"batch":"x","logs":{"loss":"NaN"},"step_logs":{"loss":0.5}}'
    lines.insert(2000, b'{"kind":"epoch","run":"a","step":2000,"epoch":19,"logs":{"loss":0.1}}')
    path = file_of(tmp_path / "run.jsonl", lines)
    items = items_of(reader(path, False, max_bytes_per_poll=60_000))
    blocks = [item for item in items if isinstance(item, BatchBlock)]
    assert {type(block.rows).__name__ for block in blocks} == {"TypedRows", "list"}  # both decoders
    items += [block.slice(3, len(block) - 2) for block in blocks]
    for item in items:
        copy = pickle.loads(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
        if isinstance(item, BatchBlock):
            assert [(r, r.data) for r in copy.records] == [(r, r.data) for r in item.records]
            assert copy.names == item.names and all((copy.column(n) == item.column(n)).all() for n in item.names)
        else:
            assert (copy, copy.data) == (item, item.data)


def test_a_sent_block_whose_file_changed_says_what_its_columns_say(tmp_path: Path) -> None:
    """A typed block crosses the pipe as columns and the byte range of its
    lines, which are read again if a row's Record is asked for. If the file
    was replaced, cut or rewritten in between, the Record is made from the
    columns: the same step, epoch, time and values, without the line's
    `logs` and `batch`; never the changed line's values."""
    path = tmp_path / "run.jsonl"

    def replace() -> None:
        path.rename(tmp_path / "old.jsonl")
        path.write_bytes((tmp_path / "old.jsonl").read_bytes())  # same bytes, another file

    def cut() -> None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    def rewrite() -> None:
        path.write_bytes(path.read_bytes().replace(b'"accuracy":0.5', b'"accuracy":0.7'))  # same length

    for change in (replace, cut, rewrite):
        file_of(path, [good_line(s) for s in range(1, 3000)])
        items = items_of(reader(path, False, max_bytes_per_poll=60_000))
        blocks = [item for item in items if isinstance(item, BatchBlock) and type(item.rows).__name__ == "TypedRows"]
        sent = [pickle.dumps(block, protocol=pickle.HIGHEST_PROTOCOL) for block in blocks]
        whole = [record for block in blocks for record in block.records]
        change()
        got = [record for message in sent for record in pickle.loads(message).records]
        assert [(r.step, r.epoch, r.time, r.values) for r in got] == [(r.step, r.epoch, r.time, r.values) for r in whole]
        unread = [r for r in got if "logs" not in r.data]
        assert unread and all("batch" not in r.data and r.data["step_logs"] == r.values for r in unread)
        if change is cut:  # the first half is still there and still read
            assert got[0].data == whole[0].data and len(unread) < len(got)
        else:
            assert len(unread) == len(got)


def helper_slices(tmp_path: Path, monkeypatch) -> list:
    """Every message the helper sends while a long file is drained; the
    records must come out whole either way."""
    received = []
    original = backlog_module.Backlog.receive

    def spy(self, timeout):
        got = original(self, timeout)
        if got is not None:
            received.append(got)
        return got

    monkeypatch.setattr(backlog_module.Backlog, "receive", spy)
    path = file_of(tmp_path / "run.jsonl", [good_line(s) for s in range(1, 20_000)])
    records, _, _, helped = drain(reader(path, True, max_bytes_per_poll=50_000))
    assert helped and [r.step for r in records] == list(range(1, 20_000))
    slices = [got for got in received if not got.last]
    assert all(a.end == b.start for a, b in zip(slices, slices[1:]))  # contiguous, in order
    assert received[-1].last and received[-1].start == path.stat().st_size
    return slices


def test_the_reader_takes_slices_itself_when_it_has_caught_up(tmp_path: Path, monkeypatch) -> None:
    """The decoding is shared by speed: the reader reads the head while the
    helper starts, then waits for it and asks, so the helper leaves it the
    first slice; it also asks whenever nothing is queued behind a slice.
    (The helper starts half a second late here: on a loaded machine the
    reader could otherwise still be on the head when the helper is ready.)"""
    monkeypatch.setattr(backlog_module, "_CHILD", "import time; time.sleep(0.5); " + backlog_module._CHILD)
    slices = helper_slices(tmp_path, monkeypatch)
    assert slices[0].yours
    assert any(not got.yours for got in slices)


def test_a_reader_that_never_asks_leaves_every_slice_to_the_helper(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(backlog_module.Backlog, "ask", lambda self: None)
    assert not any(got.yours for got in helper_slices(tmp_path, monkeypatch))
