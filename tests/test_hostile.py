"""Hostile bytes: malformed input is skipped and counted, memory stays bounded,
and untrusted text is shown literally (never as markup or terminal escapes)."""

from __future__ import annotations

import math
import os
import time
import tracemalloc
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossmon.cli import main
from lossmon.format import decode, encode, is_blank
from lossmon.model import RunStore
from lossmon.monitor import Monitor
from records import batch, end, epoch, header, write

MARKUP = "[bold red]R[/]"
LINK = "[link=https://evil.example]L[/link]"
CLICK = "[@click=app.quit]C[/]"
ESCAPES = "\x1b[31m\x1b]0;pwned\x07\x9b2J\r\x08"
HOSTILE = MARKUP + LINK + CLICK + ESCAPES


def monitor_of(path: Path) -> Monitor:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a detector switched off for odd input would warn
        monitor = Monitor([path])
        monitor.read_to_end()
    return monitor


# ------------------------------------------------------------ malformed input


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=6))
def test_random_bytes_between_records_are_skipped_and_counted(tmp_path: Path, junk: list[bytes]) -> None:
    good = [encode(r) for r in [header(), batch(1, 0.7), batch(2, 0.6), epoch(0, 0.65, 0.7)]]
    parts = []
    for index, line in enumerate(good):
        parts.append(line)
        if index < len(junk):
            parts.append(junk[index] + b"\n")
    content = b"".join(parts)
    path = tmp_path / f"junk-{os.urandom(4).hex()}.jsonl"
    path.write_bytes(content)
    lines = content.split(b"\n")[:-1]
    decoded = [decode(line) for line in lines]
    monitor = monitor_of(path)
    assert monitor.records == sum(r is not None for r in decoded) >= 4
    assert monitor.malformed == sum(r is None and not is_blank(line) for r, line in zip(decoded, lines))
    assert monitor.sources[0].status == "ok"


def test_odd_lines_of_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    bad = [
        b"\xff\xfe\xfd invalid utf-8",
        b'{"kind":"batch","run":"r1","step":3,"logs":{"loss":"\xff"}}',  # invalid UTF-8 inside JSON
        b"[" * 100_000,  # deeply nested arrays
        b'{"a":' * 5000 + b"NaN" + b"}" * 5000,  # deep, and takes the NaN-tolerant slow path
        b'{"kind":"batch","run":"r1","step":18446744073709551615}',  # beyond int64
        b'{"kind":"batch","run":"r1","step":-1}',
        b'{"kind":"batch","run":5,"step":1}',
        b'{"kind":"nope","run":"r1","step":1}',
        b'"just a string"',
        b"null",
    ]
    odd_types = [
        {"kind": "header", "run": "r1", "step": 0, "optimizer": 5, "epochs": "ten", "steps_per_epoch": -3,
         "model": [], "metrics": {"x": 1}, "loss": None},
        {"kind": "batch", "run": "r1", "step": 1, "epoch": "zero", "time": [1], "logs": "loss=1",
         "step_logs": {"loss": {"nested": 1}, "accuracy": True}},
        {"kind": "batch", "run": "r1", "step": 2, "epoch": 0, "time": "soon", "logs": {"loss": 1e308, "acc": -1e308},
         "step_logs": None},
        {"kind": "epoch", "run": "r1", "step": 10, "epoch": -5, "logs": [], "lr": "fast"},
        {"kind": "probe", "run": "r1", "step": 10, "layers": {"d": "x", "e": {"grad_norm": "NaN"}}},
        {"kind": "end", "run": "r1", "step": 10, "status": 42, "reason": {"why": 1}},
    ]
    with open(path, "wb") as handle:
        for line in bad:
            handle.write(line + b"\n")
        for record in odd_types:
            handle.write(encode(record))
    monitor = monitor_of(path)
    assert monitor.malformed == len(bad)
    assert monitor.records == len(odd_types)
    run = monitor.store.runs["r1"]
    assert run.status == "ended" and run.step == 10


def test_out_of_order_and_repeated_steps_after_a_resume(tmp_path: Path) -> None:
    records = [header(steps=10)] + [batch(s, 0.7 - s / 200) for s in range(1, 61)]
    records += [header(steps=10)] + [batch(s, 0.5 - s / 400) for s in range(30, 91)]  # resumed from a checkpoint
    records += [batch(s, 0.3) for s in (200, 150, 100, 5)]  # out of order
    path = write(tmp_path / "run.jsonl", records)
    monitor = monitor_of(path)
    assert monitor.records == len(records) and monitor.malformed == 0
    run = monitor.store.runs["r1"]
    assert run.step == 200 and len(run.batch["loss"]) == 125


def test_epochs_beyond_int64_or_below_zero_are_ignored_in_long_runs(tmp_path: Path) -> None:
    """Long runs of batch lines go through the bulk decoders, which put
    epochs in int64 columns: an epoch that does not fit is ignored, as a
    value of the wrong type is, and never stops the reader."""
    for bad in (2**70, -(2**70), 2**63, -3):
        path = tmp_path / f"epoch-{bad}.jsonl"
        lines = [b'{"kind":"batch","run":"r1","step":%d,"epoch":%d,"logs":{"loss":1.0},"step_logs":{"loss":1.0}}' % (s, bad)
                 for s in range(1, 300)]
        lines.insert(150, b'{"kind":"batch","run":"r1","step":150,"epoch":"one","logs":{"loss":"NaN"}}')  # also the general decoder
        path.write_bytes(b"\n".join(lines) + b"\n")
        monitor = monitor_of(path)
        assert monitor.records == len(lines) and monitor.malformed == 0
        run = monitor.store.runs["r1"]
        assert run.step == 299 and run.epoch_index is None
        assert decode(lines[0]).epoch is None


def test_a_100_mb_line_is_skipped_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    write(path, [header(), batch(1, 0.7)])
    with open(path, "ab") as handle:
        block = b'{"kind":"batch","run":"r1","step":2,"logs":{"loss":' + b"1" * (1 << 20)
        handle.write(block)
        filler = b"9" * (1 << 20)
        for _ in range(99):
            handle.write(filler)
        handle.write(b"}}\n")
    write(path, [batch(3, 0.5)])
    tracemalloc.start()
    try:
        monitor = monitor_of(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert monitor.records == 3 and monitor.malformed == 1
    assert peak < 48 * 2**20, f"peak {peak / 2**20:.0f} MiB while skipping a 100 MB line"


def test_many_runs_in_one_file_keep_the_store_bounded(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    write(path, [batch(1, 0.5, run=f"run-{i}") for i in range(500)])
    monitor = monitor_of(path)
    assert monitor.records == 500
    assert len(monitor.store.runs) <= monitor.store.max_runs
    assert list(monitor.store.runs)[-1] == "run-499"

    store, dropped = RunStore(max_runs=2), []
    store.on_evict = dropped.append  # how the Monitor lets per-run detector state go
    for name in "abcd":
        store.add(decode(encode(batch(1, 0.5, run=name))))
    assert list(store.runs) == ["c", "d"] and dropped == ["a", "b"]


# ------------------------------------------------------------ hostile text


def hostile_run(path: Path) -> Path:
    """A run whose run id, optimizer, metric names and end reason are hostile,
    with a NaN in a hostile metric so that an alert quotes it."""
    head = header(run=HOSTILE, optimizer=CLICK + ESCAPES)
    records = [head] + [batch(s, 0.5, run=HOSTILE, **{HOSTILE: 0.1}) for s in range(1, 6)]
    records.append(batch(6, 0.5, run=HOSTILE, **{HOSTILE: math.nan}))
    records.append({**end(6, run=HOSTILE, status=MARKUP), "reason": LINK + ESCAPES})
    return write(path, records)


def assert_literal(text: str) -> None:
    """No terminal control character got through, and the markup is visible."""
    assert not any(ch in text for ch in "\x1b\x07\x9b\x08\r"), repr(text)
    for tag in ("[bold red]", "[link=https://evil.example]", "[@click=app.quit]"):
        assert tag in text, f"{tag} was interpreted, not shown: {text!r}"


def test_check_text_output_shows_hostile_names_literally(tmp_path: Path, capsys) -> None:
    path = hostile_run(tmp_path / "run.jsonl")
    code = main(["check", str(path)])
    out = capsys.readouterr().out
    assert code == 1 and "nonfinite" in out
    assert_literal(out)
    assert "\\x1b[31m" in out  # escapes are shown as visible text


async def test_app_shows_hostile_names_literally(tmp_path: Path) -> None:
    from textual.widgets import Static

    from lossmon.show.app import WatchApp

    path = hostile_run(tmp_path / "[bold red]F\x1b[31m.jsonl")  # the file name shows in the title
    app = WatchApp([path], poll_interval=0.3)
    async with app.run_test(size=(200, 50)) as pilot:
        deadline = time.monotonic() + 10
        while not app.monitor.engine.alerts:
            assert time.monotonic() < deadline, "no alert"
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        await pilot.press("enter")  # open the alert's details
        await pilot.pause(0.2)
        shown = "\n".join(str(widget.render()) for widget in app.screen.query(Static))
        shown += "\n".join(str(widget.render()) for widget in app.query(Static))
        assert "nonfinite" in shown
        assert_literal(shown)
        assert app.is_running  # the [@click=app.quit] text did nothing
