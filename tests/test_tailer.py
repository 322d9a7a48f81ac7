"""Tailer: incremental, crash-proof reading of a run file on real files."""

from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossmon.format import decode, encode
from lossmon.read import TailBatch, Tailer
from lossmon.read.tailer import NOTICE_REPLACED, NOTICE_TRUNCATED, NOTICE_VANISHED

import unprivileged


def rec(step: int, loss: float = 0.5, run: str = "r1") -> dict:
    return {"kind": "batch", "run": run, "step": step, "epoch": 0, "time": 1.0, "logs": {"loss": loss}}


def lines(*steps: int) -> bytes:
    return b"".join(encode(rec(s)) for s in steps)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def steps(batch: TailBatch) -> list[int]:
    return [r.step for r in batch.records]


def drain(tailer: Tailer) -> TailBatch:
    """Poll until nothing is left, merging the batches."""
    total = TailBatch()
    while True:
        batch = tailer.poll()
        total.items += batch.items
        total.malformed += batch.malformed
        total.notices += batch.notices
        if not batch.more:
            return total


# ------------------------------------------------------------ basics


def test_reads_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(lines(0, 1, 2))
    tailer = Tailer(path)
    batch = tailer.poll()
    assert steps(batch) == [0, 1, 2]
    assert batch.malformed == 0 and batch.notices == [] and not batch.more
    assert tailer.status == "ok" and tailer.error is None
    assert tailer.records_read == 3 and tailer.offset == path.stat().st_size
    assert batch.records[0].values == {"loss": 0.5}
    assert steps(tailer.poll()) == []


def test_appends_are_read_incrementally(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(lines(0))
    tailer = Tailer(path)
    assert steps(tailer.poll()) == [0]
    append(path, lines(1, 2))
    assert steps(tailer.poll()) == [1, 2]
    assert tailer.records_read == 3


def test_partial_line_is_held_back_until_complete(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    line = encode(rec(7))
    path.write_bytes(lines(6) + line[:10])
    tailer = Tailer(path)
    batch = tailer.poll()
    assert steps(batch) == [6] and batch.malformed == 0
    append(path, line[10:-1])  # everything but the newline
    batch = tailer.poll()
    assert steps(batch) == [] and batch.malformed == 0
    append(path, b"\n")
    assert steps(tailer.poll()) == [7]
    assert tailer.malformed == 0


valid_records = st.lists(
    st.builds(
        rec,
        step=st.integers(0, 10**9),
        loss=st.floats(allow_nan=False, allow_infinity=False),
        run=st.text(max_size=8),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=valid_records,
    junk=st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=3),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
    per_poll=st.integers(1, 64),
)
def test_any_split_into_appends_reads_like_whole_file(
    tmp_path: Path, records: list[dict], junk: list[bytes], cuts: list[int], per_poll: int
) -> None:
    content = b"".join(encode(r) for r in records) + b"".join(j + b"\n" for j in junk)
    expected = [r for r in (decode(x) for x in content.split(b"\n")[:-1]) if r is not None]
    expected_bad = sum(1 for x in content.split(b"\n")[:-1] if x.strip() and decode(x) is None)

    path = tmp_path / f"split-{os.urandom(6).hex()}.jsonl"
    path.touch()
    tailer = Tailer(path, max_bytes_per_poll=per_poll)
    positions = sorted({c % (len(content) + 1) for c in cuts} | {0, len(content)})
    got, bad = [], 0
    for a, b in itertools.pairwise(positions):
        append(path, content[a:b])
        batch = drain(tailer)
        got += batch.records
        bad += batch.malformed
        assert batch.notices == []
    assert got == expected
    assert bad == expected_bad == tailer.malformed
    assert tailer.offset == len(content)


def test_max_bytes_per_poll_chunks_a_backlog(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    data = lines(*range(100))
    path.write_bytes(data)
    tailer = Tailer(path, max_bytes_per_poll=len(data) // 4 + 1)
    polls = []
    while True:
        batch = tailer.poll()
        polls.append(batch)
        if not batch.more:
            break
    assert len(polls) == 4
    assert all(b.more for b in polls[:-1])
    assert [s for b in polls for s in steps(b)] == list(range(100))


def test_more_is_false_when_budget_ends_exactly_at_eof(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    data = lines(0, 1)
    path.write_bytes(data)
    batch = Tailer(path, max_bytes_per_poll=len(data)).poll()
    assert steps(batch) == [0, 1] and not batch.more


# ------------------------------------------------------------ truncation and replacement


def test_truncation_restarts_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(lines(0, 1, 2, 3))
    tailer = Tailer(path)
    assert steps(tailer.poll()) == [0, 1, 2, 3]
    path.write_bytes(lines(10))  # rewritten shorter, same inode
    batch = tailer.poll()
    assert batch.notices == [NOTICE_TRUNCATED]
    assert steps(batch) == [10]
    assert tailer.offset == path.stat().st_size


def test_truncation_drops_held_back_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(lines(0, 1) + b'{"kind": "bat')
    tailer = Tailer(path)
    assert steps(tailer.poll()) == [0, 1]
    path.write_bytes(lines(5))
    batch = tailer.poll()
    assert batch.notices == [NOTICE_TRUNCATED]
    assert steps(batch) == [5] and batch.malformed == 0


def test_replacement_by_rename_restarts(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(lines(0, 1))
    tailer = Tailer(path)
    assert steps(tailer.poll()) == [0, 1]
    new = tmp_path / "run.jsonl.new"
    new.write_bytes(lines(20, 21, 22, 23))  # longer than the old file: size alone would not tell
    os.replace(path, tmp_path / "run.jsonl.1")
    os.replace(new, path)
    batch = tailer.poll()
    assert batch.notices == [NOTICE_REPLACED]
    assert steps(batch) == [20, 21, 22, 23]


def test_delete_then_recreate(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(lines(0, 1, 2))
    tailer = Tailer(path)
    tailer.poll()
    path.unlink()
    batch = tailer.poll()
    assert batch.notices == [NOTICE_VANISHED] and tailer.status == "waiting"
    assert tailer.poll().notices == []  # said once
    path.write_bytes(lines(0, 1, 2, 3))  # may even reuse the inode
    batch = tailer.poll()
    assert batch.notices == [NOTICE_REPLACED]
    assert steps(batch) == [0, 1, 2, 3]
    assert tailer.status == "ok"


# ------------------------------------------------------------ missing and unreadable files


def test_missing_file_waits_then_reads(tmp_path: Path) -> None:
    path = tmp_path / "later" / "run.jsonl"
    tailer = Tailer(path)
    batch = tailer.poll()
    assert batch == TailBatch()
    assert tailer.status == "waiting" and tailer.error is None
    path.parent.mkdir()
    path.write_bytes(lines(0, 1))
    batch = tailer.poll()
    assert steps(batch) == [0, 1] and batch.notices == []
    assert tailer.status == "ok"


def test_directory_is_an_error_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.mkdir()
    tailer = Tailer(path)
    assert tailer.poll() == TailBatch()
    assert tailer.status == "error"
    assert "is a directory" in (tailer.error or "")
    path.rmdir()
    path.write_bytes(lines(0))  # fixed: the error clears
    assert steps(tailer.poll()) == [0]
    assert tailer.status == "ok" and tailer.error is None


def test_parent_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    parent = tmp_path / "notadir"
    parent.write_bytes(b"")
    tailer = Tailer(parent / "run.jsonl")
    assert tailer.poll() == TailBatch()
    assert tailer.status == "error"
    assert "not a directory" in (tailer.error or "")


def test_fifo_is_an_error_and_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    os.mkfifo(path)
    tailer = Tailer(path)
    assert tailer.poll() == TailBatch()
    assert tailer.status == "error"
    assert "not a regular file" in (tailer.error or "")


def test_unreadable_file_is_an_error() -> None:
    # A directory of our own, traversable by everyone, so only the file's mode refuses.
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        path = Path(tmp) / "run.jsonl"
        path.write_bytes(lines(0))
        path.chmod(0)

        def poll() -> tuple[str, str, int]:
            tailer = Tailer(path)
            count = len(tailer.poll().records)
            return tailer.status, tailer.error or "", count

        status, error, count = unprivileged.call(poll)
    assert count == 0
    assert status == "error"
    assert error == f"permission denied: {path}"


# ------------------------------------------------------------ malformed input


def test_malformed_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    bad = [
        b"garbage",
        b"\xff\xfe\x80 not utf-8",
        b'{"kind": "batch", "run": "r1", "step": 1, "logs": {"loss": NaN} \xff}',
        b"[1, 2, 3]",
        b'"just a string"',
        b"42",
        b"null",
        b'{"kind": "batch", "run": "r1", "step": "3"}',
        b'{"kind": "batch", "run": 5, "step": 3}',
        b'{"kind": "bogus", "run": "r1", "step": 3}',
        b'{"kind": "batch", "run": "r1", "step": -1}',
        b'{"kind": "batch", "run": "r1", "step": 2',
        b"[" * 100_000,
        os.urandom(300).replace(b"\n", b""),
    ]
    data = lines(0) + b"\n".join(bad) + b"\n" + lines(1) + b"\n   \n\n" + lines(2)
    path.write_bytes(data)
    tailer = Tailer(path)
    batch = tailer.poll()
    assert steps(batch) == [0, 1, 2]
    assert batch.malformed == len(bad)  # blank lines are not counted
    assert tailer.malformed == len(bad) and tailer.status == "ok"


def test_bare_nan_tokens_from_python_json_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    record = {**rec(3), "logs": {"loss": math.nan, "val_loss": math.inf, "acc": 0.9}}
    path.write_bytes(json.dumps(record).encode() + b"\n")  # writes bare NaN / Infinity
    batch = Tailer(path).poll()
    assert batch.malformed == 0
    (got,) = batch.records
    assert math.isnan(got.values["loss"]) and got.values["val_loss"] == math.inf
    assert got.values["acc"] == 0.9


def test_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(lines(0, 1).replace(b"\n", b"\r\n"))
    assert steps(Tailer(path).poll()) == [0, 1]


def test_overlong_line_is_skipped_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    cap = 64 * 1024
    huge = 24 * 1024 * 1024
    with open(path, "wb") as f:
        f.write(lines(0))
        f.write(b'{"kind": "batch", "run": "r1", "step": 1, "pad": "')
        block = b"x" * (1024 * 1024)
        for _ in range(huge // len(block)):
            f.write(block)
        f.write(b'"}\n')
        f.write(lines(2))
    tailer = Tailer(path, max_line_bytes=cap, max_bytes_per_poll=64 * 1024 * 1024)
    tracemalloc.start()
    try:
        batch = tailer.poll()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert steps(batch) == [0, 2]
    assert batch.malformed == 1
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while skipping a {huge}-byte line"


def test_overlong_line_split_across_polls_is_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(lines(0) + b"y" * 500)
    tailer = Tailer(path, max_line_bytes=100)
    batch = tailer.poll()
    assert steps(batch) == [0] and batch.malformed == 1
    append(path, b"y" * 500)
    assert tailer.poll().malformed == 0
    append(path, b"yyy\n" + lines(1))
    batch = tailer.poll()
    assert steps(batch) == [1] and batch.malformed == 0
    assert tailer.malformed == 1


def test_line_exactly_at_the_cap_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    line = encode(rec(4))
    path.write_bytes(line)
    batch = Tailer(path, max_line_bytes=len(line) - 1).poll()  # cap excludes the newline
    assert steps(batch) == [4] and batch.malformed == 0
    batch = Tailer(path, max_line_bytes=len(line) - 2).poll()
    assert steps(batch) == [] and batch.malformed == 1
