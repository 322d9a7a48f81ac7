"""RunFileWriter: strict JSON lines, one write per record, never raises."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from lossmon.format import decode
from lossmon.record import LossmonWarning, RunFileWriter
from lossmon.record import writer as writer_module
import unprivileged


def _no_constants(token: str) -> float:
    raise AssertionError(f"bare {token} in the run file: not RFC 8259 JSON")


def strict_lines(path) -> list[dict]:
    """Every line parsed by a JSON parser that refuses NaN/Infinity tokens."""
    with open(path, "rb") as file:
        data = file.read()
    assert data.endswith(b"\n")
    return [json.loads(line, parse_constant=_no_constants) for line in data.splitlines()]


def lossmon_warnings(caught) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, LossmonWarning)]


def test_records_round_trip(tmp_path):
    path = tmp_path / "sub" / "dir" / "run.jsonl"  # parents are created
    records = [
        {"kind": "header", "run": "r1", "step": 0, "format": 1, "model": {"layers": []}},
        {"kind": "batch", "run": "r1", "step": 1, "epoch": 0, "time": 12.5,
         "logs": {"loss": 0.7}, "step_logs": {"loss": 0.7}},
        {"kind": "epoch", "run": "r1", "step": 1, "epoch": 0, "logs": {"val_loss": 0.6}, "lr": 0.001},
        {"kind": "end", "run": "r1", "step": 1, "epoch": 0, "status": "completed"},
    ]
    with RunFileWriter(path) as writer:
        assert all(writer.write(record) for record in records)
    assert strict_lines(path) == records
    with open(path, "rb") as file:
        decoded = [decode(line) for line in file]
    assert [r.kind for r in decoded] == ["header", "batch", "epoch", "end"]
    assert decoded[1].step == 1 and decoded[1].time == 12.5
    assert decoded[1].values == {"loss": 0.7}
    assert decoded[2].values == {"val_loss": 0.6, "lr": 0.001}


def test_non_finite_floats_are_strings(tmp_path):
    path = tmp_path / "run.jsonl"
    writer = RunFileWriter(path)
    writer.write({"kind": "batch", "run": "r", "step": 1, "steps_per_epoch": None,
                  "logs": {"loss": math.nan, "up": math.inf, "down": -math.inf, "ok": 1.5}})
    # numpy values, as callers may hand them over, follow the same rule
    writer.write({"kind": "batch", "run": "r", "step": 2,
                  "logs": {"loss": np.float32("nan"), "grads": np.array([1.0, np.inf])}})
    writer.close()
    first, second = strict_lines(path)
    assert first["logs"] == {"loss": "NaN", "up": "Infinity", "down": "-Infinity", "ok": 1.5}
    assert first["steps_per_epoch"] is None  # a real None stays null
    assert second["logs"] == {"loss": "NaN", "grads": [1.0, "Infinity"]}
    with open(path, "rb") as file:
        record = decode(file.readline())
    assert math.isnan(record.values["loss"]) and record.values["up"] == math.inf


def test_unserialisable_values_do_not_raise(tmp_path):
    path = tmp_path / "run.jsonl"
    writer = RunFileWriter(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stringified value needs no warning
        assert writer.write({"kind": "batch", "run": "r", "step": 1, "thing": object(), 3: "x"})
    writer.close()
    (line,) = strict_lines(path)
    assert line["thing"].startswith("<object object")
    assert line["3"] == "x"


def test_each_record_is_visible_at_once(tmp_path):
    path = tmp_path / "run.jsonl"
    writer = RunFileWriter(path)
    with open(path, "rb") as reader:
        for step in range(1, 4):
            writer.write({"kind": "batch", "run": "r", "step": step})
            assert decode(reader.readline()).step == step  # no userspace buffer
    writer.close()


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def trickle(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:7]))

    path = tmp_path / "run.jsonl"
    writer = RunFileWriter(path)
    monkeypatch.setattr(writer_module.os, "write", trickle)
    assert writer.write({"kind": "batch", "run": "r", "step": 1, "logs": {"loss": 0.25}})
    monkeypatch.undo()
    writer.close()
    assert len(calls) > 1
    assert strict_lines(path) == [{"kind": "batch", "run": "r", "step": 1, "logs": {"loss": 0.25}}]


def test_full_disk_warns_once_and_never_raises():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        writer = RunFileWriter("/dev/full")
        assert writer.write({"kind": "batch", "run": "r", "step": 1}) is False
        assert writer.write({"kind": "batch", "run": "r", "step": 2}) is False
        writer.close()
    (warning,) = lossmon_warnings(caught)
    assert "/dev/full" in str(warning.message)
    assert "No space left" in str(warning.message)


def test_parent_is_a_file_warns_once_and_never_raises(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    path = blocker / "run.jsonl"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        writer = RunFileWriter(path)
        assert writer.write({"kind": "header", "run": "r", "step": 0}) is False
        assert writer.write({"kind": "batch", "run": "r", "step": 1}) is False
    (warning,) = lossmon_warnings(caught)
    assert str(path) in str(warning.message)
    assert not writer.ok


def test_read_only_directory_warns_once():
    # A directory of our own, traversable by everyone, that only root may write.
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o555)
        path = Path(tmp) / "run.jsonl"

        def write_twice() -> list:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                writer = RunFileWriter(path)
                results = [writer.write({"kind": "batch", "run": "r", "step": s}) for s in (1, 2)]
            return [results, [str(w.message) for w in lossmon_warnings(caught)]]

        results, messages = unprivileged.call(write_twice)
        os.chmod(tmp, 0o755)
    assert results == [False, False]
    assert len(messages) == 1 and str(path) in messages[0]


def test_close_is_idempotent(tmp_path):
    writer = RunFileWriter(tmp_path / "run.jsonl")
    writer.close()
    writer.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert writer.write({"kind": "batch", "run": "r", "step": 1}) is False


def test_writer_does_not_import_tensorflow():
    code = "import sys, lossmon.record; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------- two processes

RECORDS_PER_PROCESS = 3000
PADDING = "x" * 1500  # lines larger than a pipe buffer's atomic size


def _append_many(path: str, writer_id: int, start) -> None:
    start.wait()  # both processes begin writing together
    writer = RunFileWriter(path)
    for i in range(RECORDS_PER_PROCESS):
        writer.write({"kind": "batch", "run": f"w{writer_id}", "step": i, "pad": PADDING})
    writer.close()


def test_two_processes_never_interleave(tmp_path):
    path = str(tmp_path / "shared.jsonl")
    context = multiprocessing.get_context("spawn")  # no fork of a TF process
    start = context.Barrier(2)
    workers = [context.Process(target=_append_many, args=(path, k, start)) for k in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    steps: dict[str, list[int]] = {"w1": [], "w2": []}
    with open(path, "rb") as file:
        lines = file.read().split(b"\n")
    assert lines.pop() == b""
    switches, previous = 0, None
    for line in lines:
        if not line:
            continue  # a blank line (a writer that opened mid-write of the other, playing safe) loses nothing
        record = decode(line)
        assert record is not None, line[:80]
        assert record.data["pad"] == PADDING
        steps[record.run].append(record.step)
        switches += previous is not None and record.run != previous
        previous = record.run
    # every record is there, whole, in each writer's own order
    assert steps["w1"] == list(range(RECORDS_PER_PROCESS))
    assert steps["w2"] == list(range(RECORDS_PER_PROCESS))
    assert switches > 1, "the processes did not overlap: the test proved nothing"
