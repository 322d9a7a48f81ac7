"""Hostile bytes, round two: what a run file, a path or a pipe can do never
reaches the terminal raw, never changes a verdict and never crashes.

Each test stands for a class of input, not one instance (issue #16)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossmon.format import encode, read_line
from lossmon.monitor import Monitor
from lossmon.read import Tailer
from lossmon.record.writer import RunFileWriter
from lossmon.show.safe import escape, safe_json
from records import batch, end, epoch, header, write

# Controls that do things to a terminal: clear it, retitle it, write the clipboard.
OSC = "\u001b]52;c;cHduZWQ=\u0007\u001b]2;OWNED\u0007\u001b[2J"
# Invisible characters that reorder or hide what is shown.
INVISIBLE = "\u200e\u200f\u061c\u200b\u200d\u2060\ufeff\U000e0041\U000e007f\u202e\u2066\x9b\u00ad"
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def lossmon(*args: object, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lossmon", *map(str, args)], capture_output=True, timeout=timeout, **kw)


def unsafe(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in UNSAFE_CATEGORIES and ch != "\n"]


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert b"Traceback" not in proc.stderr and b"Traceback" not in proc.stdout, proc.stderr.decode(errors="replace")


# ------------------------------------------------------------ 1: one escaping function


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF)))
def test_escape_leaves_no_control_format_or_surrogate_character_and_is_idempotent(text: str) -> None:
    out = escape(text)
    assert not unsafe(out) and "\n" not in out
    assert escape(out) == out
    out.encode("utf-8")  # never a lone surrogate


def test_escape_covers_bidi_zero_width_and_tag_characters() -> None:
    for ch in INVISIBLE + "\ud800\udfff\u2028\u2029\x7f":
        assert escape(ch).isascii() and escape(ch).startswith("\\"), repr(ch)
    assert escape("é 中 😀 ok") == "é 中 😀 ok"  # printable text is left alone


def test_safe_json_is_the_same_document_with_nothing_raw() -> None:
    document = orjson.dumps({"a": OSC + INVISIBLE, "b": [1, 2.5]}, option=orjson.OPT_INDENT_2).decode()
    out = safe_json(document)
    assert json.loads(out) == json.loads(document)
    assert not unsafe(out)


def hostile_status_run(path: Path, text: str) -> Path:
    records = [header(run="r1" + text)] + [batch(s, 0.5, run="r1" + text, **{"m" + text: 0.1}) for s in range(1, 6)]
    records.append(batch(6, math.nan, run="r1" + text, **{"m" + text: math.nan}))
    records.append({**end(6, run="r1" + text, status=text), "reason": text})
    return write(path, records)


@pytest.mark.parametrize("text", [OSC, INVISIBLE], ids=["osc", "invisible"])
def test_every_output_path_escapes_strings_from_the_file(tmp_path: Path, text: str) -> None:
    path = hostile_status_run(tmp_path / "run.jsonl", text)
    hook = tmp_path / "hook.out"
    plain = lossmon("watch", "--plain", "--settle", "0.2", "--on-alert", f"cat >> {hook}", path)
    checked = lossmon("check", path)
    as_json = lossmon("check", "--format", "json", path)
    for proc, code in ((plain, 0), (checked, 1), (as_json, 1)):
        assert_no_traceback(proc)
        assert proc.returncode == code, proc.stderr
        out = proc.stdout.decode("utf-8")
        assert not unsafe(out), (proc.args, [hex(ord(c)) for c in unsafe(out)])
    assert "finished (" in plain.stdout.decode() and "nonfinite" in plain.stdout.decode()
    assert "\\x1b]52" in plain.stdout.decode() or "\\u200e" in plain.stdout.decode()
    assert json.loads(as_json.stdout)["alerts"]
    sent = [json.loads(line) for line in hook.read_text().splitlines()]
    assert sent and sent[0]["detector"] == "nonfinite"


# ------------------------------------------------------------ 7: one set of parsing rules

# Each line's record, whether it is read on its own, with a bare NaN
# elsewhere on the line (the lenient path), or among many lines (the bulk
# decoders): the same every time.
ODD_VALUES = {
    "overflow": (b'1e999', math.inf),
    "neg_overflow": (b'-1e999', -math.inf),
    "huge_int": (b"1" + b"0" * 400, math.inf),
    "minus_nan": (b'"-nan"', math.nan),
    "upper_inf": (b'"INF"', math.inf),
    "infinity": (b'"-infinity"', -math.inf),
}


def batch_line(step: int, value: bytes, extra: bytes = b"") -> bytes:
    return b'{"kind":"batch","run":"r1","step":%d,"logs":{"loss":%s%s},"step_logs":{"loss":%s%s}}' % (step, value, extra, value, extra)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("name", sorted(ODD_VALUES))
def test_a_value_reads_the_same_on_every_path(tmp_path: Path, name: str) -> None:
    raw, want = ODD_VALUES[name]
    alone = read_line(batch_line(1, raw))
    with_nan = read_line(batch_line(1, raw, b',"other":NaN'))
    assert alone is not None and with_nan is not None
    assert same(alone.values["loss"], want) and same(with_nan.values["loss"], want)
    path = tmp_path / "bulk.jsonl"
    lines = [encode(header())] + [batch_line(s, raw) + b"\n" for s in range(1, 101)]
    path.write_bytes(b"".join(lines))
    monitor = Monitor([path])
    monitor.read_to_end()
    assert monitor.malformed == 0 and monitor.records == 101
    values = monitor.store.runs["r1"].batch["loss"].values
    assert len(values) == 100 and all(same(float(v), want) for v in values)


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"\x00" * 100, b"\x00\x00\xef\xbb\xbf  "], ids=["bom", "nul", "nul_bom"])
def test_padding_and_a_bom_before_a_header_keep_the_header(tmp_path: Path, prefix: bytes) -> None:
    for extra in (b"", b',"x":NaN'):
        line = prefix + encode(header())[:-2] + extra + b"}"
        record = read_line(line)
        assert record is not None and record.kind == "header", (prefix, extra)
    path = tmp_path / "run.jsonl"
    path.write_bytes(prefix + encode(header()) + b"\x00" * 50 + b"\n" + b"".join(encode(batch(s, 0.5)) for s in range(1, 50)))
    monitor = Monitor([path])
    monitor.read_to_end()
    assert monitor.malformed == 0 and monitor.records == 50
    assert monitor.store.runs["r1"].header is not None


def test_invalid_utf8_is_malformed_on_every_path() -> None:
    for line in (b'{"kind":"batch","run":"\xed\xa0\x80","step":1}', b'{"kind":"batch","run":"\xed\xa0\x80","step":1,"x":NaN}'):
        assert read_line(line) is None


# ------------------------------------------------------------ 8: lone surrogates


def surrogate_run(path: Path) -> Path:
    lines = [b'{"kind":"header","run":"r\\ud800","step":0,"epochs":1,"steps_per_epoch":10}']
    lines += [b'{"kind":"batch","run":"r\\ud800","step":%d,"time":%d,"logs":{"l\\udfff":0.5,"loss":0.5}}' % (s, 1000 + s) for s in range(1, 6)]
    lines += [b'{"kind":"batch","run":"r\\ud800","step":6,"time":1006,"logs":{"l\\udfff":NaN,"loss":NaN}}']
    lines += [b'{"kind":"end","run":"r\\ud800","step":6,"time":1007,"status":"error\\udc00"}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_lone_surrogates_in_names_break_no_output(tmp_path: Path) -> None:
    path = surrogate_run(tmp_path / "run.jsonl")
    hook = tmp_path / "hook.out"
    as_json = lossmon("check", "--format", "json", path)
    text = lossmon("check", path)
    plain = lossmon("watch", "--plain", "--settle", "0.2", "--on-alert", f"cat >> {hook}", path)
    for proc, code in ((as_json, 1), (text, 1), (plain, 0)):
        assert_no_traceback(proc)
        assert proc.returncode == code, proc.stderr
    document = json.loads(as_json.stdout)
    assert document["alerts"][0]["detector"] == "nonfinite"
    assert "l\\udfff" in text.stdout.decode() and "nonfinite" in plain.stdout.decode()
    assert "nonfinite" in hook.read_text()


async def test_lone_surrogates_with_on_alert_leave_the_app_running(tmp_path: Path) -> None:
    from lossmon.show.app import WatchApp
    from lossmon.show.notify import AlertNotifier

    path = tmp_path / "run.jsonl"
    path.write_bytes(b"")
    hook = tmp_path / "hook.out"
    notifier = AlertNotifier(f"cat >> {hook}")
    app = WatchApp([path], poll_interval=0.2, notifier=notifier)
    app.clock = lambda: 1005.0
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        surrogate_run(path)
        deadline = time.monotonic() + 10
        while not (hook.exists() and "nonfinite" in hook.read_text()):
            assert time.monotonic() < deadline, "no alert announced"
            await pilot.pause(0.1)
        assert app.is_running
        assert not app.notifier.failures


# ------------------------------------------------------------ 4: rewritten in place


def test_a_file_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "run.jsonl", [header(run="old")] + [batch(s, 0.5, run="old") for s in range(1, 4)])
    tailer = Tailer(path)
    first = tailer.poll()
    assert first.count == 4
    inode = os.stat(path).st_ino
    new = [header(run="new")] + [batch(s, 0.5, run="new") for s in range(1, 20)] + [batch(20, math.nan, run="new")]
    with open(path, "r+b") as handle:  # what `cp new.jsonl run.jsonl` does: O_TRUNC, same inode
        handle.truncate(0)
        handle.write(b"".join(encode(r) for r in new))
    assert os.stat(path).st_ino == inode and os.path.getsize(path) > tailer.offset
    again = tailer.poll()
    assert again.notices and again.malformed == 0
    assert [r.run for r in again.records] == ["new"] * len(new)


def test_truncated_and_regrown_to_the_same_length_between_polls_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "run.jsonl", [header(run="r1"), batch(1, 0.5), batch(2, 0.5)])
    tailer = Tailer(path)
    assert tailer.poll().count == 3
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(0)
        handle.write(b"".join(encode(r) for r in [header(run="r1"), batch(1, 0.5), batch(2, 9.5)]))
    assert os.path.getsize(path) == size
    again = tailer.poll()
    assert again.notices and [r.step for r in again.records] == [0, 1, 2]
    assert again.records[-1].values["loss"] == 9.5
    assert tailer.poll().count == 0  # and not again after that


def test_check_and_watch_agree_on_a_copied_over_file(tmp_path: Path) -> None:
    path = write(tmp_path / "run.jsonl", [header(run="old")] + [batch(s, 0.5, run="old") for s in range(1, 40)])
    monitor = Monitor([path])
    monitor.read_to_end()
    other = write(tmp_path / "new.jsonl", [header(run="new")] + [batch(s, 0.5, run="new") for s in range(1, 60)] + [batch(60, math.nan, run="new")])
    subprocess.run(["cp", str(other), str(path)], check=True)
    monitor.read_to_end()
    assert "new" in monitor.store.runs and monitor.malformed == 0
    assert any(a.detector == "nonfinite" and a.run == "new" for a in monitor.engine.alerts)


# ------------------------------------------------------------ 5: torn last lines


def test_a_record_glued_after_a_torn_line_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    torn = encode(batch(7, 0.5, run="dead"))[:40]  # the writer died mid-record
    path.write_bytes(encode(header(run="dead")) + torn + encode(header(run="r2")) + encode(batch(1, math.nan, run="r2")))
    monitor = Monitor([path])
    monitor.read_to_end()
    assert monitor.malformed == 1
    assert monitor.store.runs["r2"].header is not None
    assert any(a.detector == "nonfinite" and a.run == "r2" for a in monitor.engine.alerts)


def test_the_writer_starts_on_a_fresh_line_after_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(encode(header(run="dead")) + encode(batch(7, 0.5, run="dead"))[:40])
    with RunFileWriter(path) as writer:
        writer.write(header(run="r2"))
        writer.write(batch(1, 0.5, run="r2"))
    lines = path.read_bytes().split(b"\n")
    assert read_line(lines[2]).kind == "header" and read_line(lines[3]).run == "r2"
    with RunFileWriter(path) as writer:  # a file that ends well gets no blank line
        writer.write(batch(2, 0.5, run="r2"))
    assert b"\n\n" not in path.read_bytes()


# ------------------------------------------------------------ 6: rename rotation


def test_the_writer_follows_its_path_after_a_rename_rotation(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with pytest.warns(UserWarning, match="renamed or replaced"):
        with RunFileWriter(path) as writer:
            writer.write(header())
            writer.write(batch(1, 0.5))
            os.rename(path, tmp_path / "run.jsonl.1")
            path.touch()
            time.sleep(1.1)
            writer.write(batch(2, 0.5))
            writer.write(batch(3, 0.5))
    rotated = [read_line(line) for line in (tmp_path / "run.jsonl.1").read_bytes().splitlines()]
    fresh = [read_line(line) for line in path.read_bytes().splitlines()]
    assert [r.step for r in rotated] == [0, 1]
    assert [(r.kind, r.step) for r in fresh] == [("header", 0), ("batch", 2), ("batch", 3)]


# ------------------------------------------------------------ 13, 14, 16: paths and pipes


def nan_run(path: Path) -> Path:
    return write(path, [header()] + [batch(s, 0.5) for s in range(1, 6)] + [batch(6, math.nan), end(6)])


def in_process(argv: list[str]) -> dict:
    import contextlib
    import io

    from lossmon.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def test_unreachable_files_are_a_message_and_exit_2_never_a_traceback() -> None:
    import tempfile

    import unprivileged

    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # everyone may enter; only "locked" refuses
        locked = Path(tmp) / "locked"
        locked.mkdir(mode=0o700)
        nan_run(locked / "run.jsonl")
        unreadable = nan_run(Path(tmp) / "unreadable.jsonl")
        unreadable.chmod(0o600)

        def as_nobody() -> list[dict]:
            return [
                in_process(["check", str(locked / "run.jsonl")]),
                in_process(["watch", "--plain", str(locked / "run.jsonl")]),
                in_process(["watch", "--plain", str(locked)]),
                in_process(["watch", "--plain", "--settle", "0", str(unreadable)]),
            ]

        results = unprivileged.call(as_nobody)
    for result in results:
        assert result["code"] == 2, result
        assert "Traceback" not in result["err"] and result["err"].startswith("lossmon: ")
    assert "permission denied" in results[0]["err"] and "permission denied" in results[3]["err"]


def test_odd_names_are_a_message_and_exit_2(tmp_path: Path) -> None:
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    too_long = "x" * 5000 + ".jsonl"
    for name, words in ((str(loop), "symbolic links"), (too_long, "name too long")):
        proc = lossmon("check", name)
        assert_no_traceback(proc)
        assert proc.returncode == 2 and words in proc.stderr.decode(), proc.stderr


def test_the_same_file_under_two_spellings_is_read_once(tmp_path: Path) -> None:
    path = nan_run(tmp_path / "run.jsonl")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.jsonl").symlink_to(path)
    spellings = [str(path), str(tmp_path / "sub" / ".." / "run.jsonl"), str(tmp_path / "link.jsonl")]
    document = json.loads(lossmon("check", "--format", "json", *spellings).stdout)
    assert [run["records"] for run in document["runs"]] == [8]
    assert len(document["alerts"]) == 1
    plain = lossmon("watch", "--plain", "--settle", "0", *spellings).stdout.decode()
    assert plain.count("CRITICAL nonfinite") == 1


def test_output_to_a_full_disk_is_a_message_and_exit_2(tmp_path: Path) -> None:
    path = nan_run(tmp_path / "run.jsonl")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "lossmon", "check", str(path)], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert b"Traceback" not in proc.stderr and b"Exception ignored" not in proc.stderr
    assert proc.returncode == 2 and b"cannot write the output" in proc.stderr


@pytest.mark.parametrize("command", [["check"], ["check", "--format", "json"], ["watch", "--plain", "--settle", "0"]])
def test_a_closed_pipe_ends_quietly(tmp_path: Path, command: list[str]) -> None:
    path = nan_run(tmp_path / "run.jsonl")
    proc = subprocess.Popen([sys.executable, "-m", "lossmon", *command, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # `| head -1` that has already left
    _, err = proc.communicate(timeout=60)
    assert err == b"", err.decode()
    assert proc.returncode == 141


def test_fifos_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "run.jsonl"
    os.mkfifo(fifo)
    config = tmp_path / "lossmon.toml"
    os.mkfifo(config)
    good = nan_run(tmp_path / "good.jsonl")
    for args in (["check", fifo], ["watch", "--plain", fifo], ["check", "--config", config, good]):
        proc = lossmon(*args, timeout=30)
        assert_no_traceback(proc)
        assert proc.returncode == 2 and b"regular file" in proc.stderr, (args, proc.stderr)


async def test_the_app_shows_a_fifo_as_an_error_at_once(tmp_path: Path) -> None:
    from lossmon.show.app import WatchApp

    fifo = tmp_path / "run.jsonl"
    os.mkfifo(fifo)
    app = WatchApp([fifo], poll_interval=0.2)  # constructing it opened nothing blocking
    async with app.run_test(size=(120, 30)) as pilot:
        deadline = time.monotonic() + 10
        while "not a regular file" not in str(app.query_one("StatusLine").render()):
            assert time.monotonic() < deadline
            await pilot.pause(0.1)


def test_a_deeply_nested_config_is_a_message(tmp_path: Path) -> None:
    good = nan_run(tmp_path / "good.jsonl")
    for name, text in (("deep.json", "[" * 100_000 + "]" * 100_000), ("deep.toml", "a = " + "[" * 100_000 + "]" * 100_000)):
        config = tmp_path / name
        config.write_text(text)
        proc = lossmon("check", "--config", config, good)
        assert_no_traceback(proc)
        assert proc.returncode == 2, proc.stderr


# ------------------------------------------------------------ 12: extreme numbers on screen


@pytest.mark.parametrize("extreme", [1e308, 1.7e308, 5e-324])
async def test_extreme_values_and_times_draw_on_every_axis(tmp_path: Path, extreme: float) -> None:
    from lossmon.show.app import WatchApp
    from lossmon.show.widgets.metric_plot import MetricPlot

    records = [{**header(), "start_time": -extreme}]
    for s in range(1, 41):
        rec = batch(s, extreme if s % 2 else -extreme, accuracy=0.5)
        rec["time"] = -extreme if s < 20 else extreme
        records.append(rec)
    records.append({**epoch(0, extreme, -extreme), "time": extreme})
    path = write(tmp_path / "run.jsonl", records)
    app = WatchApp([path], poll_interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 10
        while app.monitor.records < len(records):
            assert time.monotonic() < deadline
            await pilot.pause(0.1)
        for key in ("x", "x", "y", "o", "x", "y", "o", "s"):  # every x axis, log and robust ranges
            await pilot.press(key)
            await pilot.pause(0.3)
            for plot in app.query(MetricPlot):
                plot.render()
        assert app.is_running and app.return_code is None


# ------------------------------------------------------------ 10, 11: numbers beyond C and int64


@pytest.mark.parametrize("pid", [2**31, 2**63 - 1, 2**64 + 5])
def test_a_huge_pid_of_this_host_is_no_crash(tmp_path: Path, pid: int) -> None:
    import socket

    from lossmon.model.health import process_gone

    head = {**header(), "host": socket.gethostname(), "pid": pid}
    assert process_gone(head) is False
    path = write(tmp_path / "run.jsonl", [head] + [batch(s, 0.5) for s in range(1, 5)])
    for args in (["check", path], ["watch", "--plain", "--settle", "0", path]):
        proc = lossmon(*args, timeout=30) if args[0] == "check" else None
        if proc is not None:
            assert_no_traceback(proc)
            assert proc.returncode in (0, 1)
    proc = subprocess.Popen([sys.executable, "-m", "lossmon", "watch", "--plain", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.5)
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()


CSV_ROWS = [
    "epoch,step,loss,val_loss",
    "0,²,0.5,0.6",  # isdigit() says yes, int() says no: the cell is ignored (step = epoch + 1)
    "1,18446744073709551616,0.4,0.5",  # beyond int64
    "18446744073709551616,5,0.4,0.5",
    "٣,5,0.4,0.5",  # an Arabic-Indic digit
    "2,30,0.3,0.4",
    "3,40,nan,0.4",
]


def test_csv_steps_and_epochs_that_are_not_int64_are_malformed(tmp_path: Path) -> None:
    path = tmp_path / "training.csv"
    path.write_text("\n".join(CSV_ROWS) + "\n")
    proc = lossmon("check", "--format", "json", path)
    assert_no_traceback(proc)
    document = json.loads(proc.stdout)
    assert document["malformed_lines"] == 3
    assert document["runs"][0]["step"] == 40
    assert any(alert["detector"] == "nonfinite" for alert in document["alerts"])
    text = lossmon("check", path)
    assert_no_traceback(text)
    assert text.returncode == 1


async def test_the_app_draws_a_csv_log_with_hostile_cells(tmp_path: Path) -> None:
    from lossmon.show.app import WatchApp

    path = tmp_path / "training.csv"
    path.write_text("\n".join(CSV_ROWS) + "\n")
    app = WatchApp([path], poll_interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 10
        while app.monitor.records < 3:
            assert time.monotonic() < deadline
            await pilot.pause(0.1)
        for key in ("x", "x", "x"):
            await pilot.press(key)
            await pilot.pause(0.2)
        assert app.is_running and app.return_code is None


# ------------------------------------------------------------ 2: bounds never change the verdict


def test_check_judges_runs_the_store_dropped_and_says_so(tmp_path: Path) -> None:
    dead = write(tmp_path / "000-dead.jsonl", [header(run="dead")] + [batch(s, 0.5, run="dead") for s in range(1, 20)])
    alone = lossmon("check", dead)
    assert alone.returncode == 1 and b"stalled" in alone.stdout  # died without an end record
    paths = [dead]
    for i in range(1, 65):
        paths.append(write(tmp_path / f"{i:03d}.jsonl", [header(run=f"ok{i}")] + [batch(s, 0.5, run=f"ok{i}") for s in range(1, 4)] + [end(3, run=f"ok{i}")]))
    many = lossmon("check", *paths)
    assert many.returncode == 1, many.stdout
    out = many.stdout.decode()
    assert "stalled" in out and "65 runs and" in out and "not listed above" in out
    document = json.loads(lossmon("check", "--format", "json", *paths).stdout)
    assert document["runs_judged"] == 65 and document["runs_dropped"] == 1
    assert document["records"] == 20 + 64 * 5
    assert any(alert["detector"] == "stalled" and alert["run"] == "dead" for alert in document["alerts"])


# ------------------------------------------------------------ 17: small ones


def test_a_log_value_beyond_the_float_range_keeps_the_record() -> None:
    from lossmon.format import clean_logs

    assert clean_logs({"loss": 0.5, "big": 10**400, "small": -(10**400), "name": "x"}) == {
        "loss": 0.5, "big": "Infinity", "small": "-Infinity",
    }


def test_huge_numbers_print_short() -> None:
    from lossmon.detectors._util import fmt_times
    from lossmon.show.widgets.status_line import ago

    assert fmt_times(1e300) == "1e+300" and fmt_times(250.0) == "250" and fmt_times(12.34) == "12.3"
    assert len(ago(1e308)) < 12 and ago(3 * 86400) == "3.0d"


def test_run_ids_do_not_collide_across_many_workers_in_one_second() -> None:
    from lossmon.keras.callback import _new_run_id

    ids = {_new_run_id(1795367112.0) for _ in range(100_000)}
    assert len(ids) == 100_000


def test_two_files_with_one_run_id_stay_two_runs(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [header()] + [batch(s, 0.5) for s in range(1, 60)] + [end(59)])
    b = write(tmp_path / "b.jsonl", [header()] + [batch(s, 0.5) for s in range(1, 60)] + [batch(60, math.nan), end(60)])
    document = json.loads(lossmon("check", "--format", "json", a, b).stdout)
    assert sorted((run["run"], run["records"]) for run in document["runs"]) == [("r1", 61), ("r1@b.jsonl", 62)]
    assert [(alert["detector"], alert["run"]) for alert in document["alerts"]] == [("nonfinite", "r1@b.jsonl")]
    plain = lossmon("watch", "--plain", "--settle", "0", a, b).stdout.decode()
    assert "r1 finished (completed)" in plain and "r1@b.jsonl finished (completed)" in plain


def test_records_made_from_a_renamed_block_carry_its_name(tmp_path: Path) -> None:
    """Long runs travel as typed column blocks whose rows become Records on
    demand (for a finding's evidence): those carry the renamed id too."""
    a = write(tmp_path / "a.jsonl", [header()] + [batch(s, 0.5) for s in range(1, 300)])
    b = write(tmp_path / "b.jsonl", [header()] + [batch(s, 0.5) for s in range(1, 300)])
    monitor = Monitor([a, b])
    blocks = []
    original = monitor.store.add_block
    monitor.store.add_block = lambda block: (blocks.append(block), original(block))[1]
    monitor.read_to_end()
    renamed = [block for block in blocks if block.run == "r1@b.jsonl"]
    assert renamed and all(block.record(i).run == "r1@b.jsonl" for block in renamed for i in (0, len(block) - 1))
    assert monitor.store.runs["r1"].records == monitor.store.runs["r1@b.jsonl"].records == 300


# ------------------------------------------------------------ 15: memory whatever the file holds


def test_thousands_of_metric_names_cost_little_memory(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "names.jsonl"
    with open(path, "wb") as handle:
        handle.write(encode(header()))
        for i in range(1, 20_001):
            handle.write(encode({"kind": "batch", "run": "r1", "step": i, "time": 1000.0 + i, "logs": {f"m{i}": 0.5}, "step_logs": {f"m{i}": 0.5}}))
    tracemalloc.start()
    try:
        monitor = Monitor([path])
        monitor.read_to_end()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    from lossmon.model.run import MAX_NAMES

    run = monitor.store.runs["r1"]
    assert len(run.batch) == MAX_NAMES and run.names_dropped == 20_000 - MAX_NAMES
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB for 20k metric names"  # 128 KiB a name before


def test_detectors_of_runs_the_store_dropped_are_dropped_too(tmp_path: Path) -> None:
    path = write(tmp_path / "runs.jsonl", [batch(1, 0.5, run=f"run-{i}") for i in range(3000)])
    monitor = Monitor([path])
    monitor.read_to_end()
    assert len(monitor.store.runs) == monitor.store.max_runs
    assert set(monitor.engine._per_run) <= set(monitor.store.runs)


# ------------------------------------------------------------ the classes, fuzzed

HOSTILE_TEXT = st.sampled_from(["\x1b]52;c;eA==\x07", "\u200e", "\u202e", "\U000e0041", "\x9b2J", "[bold]x[/]", "\ud800", "é", "\x00"])
HOSTILE_NUMBER = st.sampled_from([b"1e999", b"-1e999", b"1" + b"0" * 400, b"NaN", b"-Infinity", b'"-nan"', b'"INF"', b"5e-324", b"1.7e308", b"-0.0", b"18446744073709551616"])


@st.composite
def hostile_lines(draw) -> bytes:
    def text() -> bytes:
        return json.dumps("r" + "".join(draw(st.lists(HOSTILE_TEXT, max_size=3)))).encode()

    kind = draw(st.sampled_from([b"header", b"batch", b"epoch", b"end", b"probe"]))
    step = draw(st.sampled_from([b"1", b"2", b"7", b"9223372036854775807", b"18446744073709551616", b"-1"]))
    name, value = text(), draw(HOSTILE_NUMBER)
    run = text() if draw(st.booleans()) else b'"r1"'
    line = b'{"kind":"%s","run":%s,"step":%s,"time":%s,"logs":{%s:%s,"loss":%s},"status":%s,"reason":%s}' % (
        kind, run, step, draw(HOSTILE_NUMBER), name, value, draw(HOSTILE_NUMBER), text(), text())
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\x00\x00", b"garbage", encode(batch(3, 0.5))[:30]]))
    return prefix + line


@settings(max_examples=30, deadline=None)
@given(lines=st.lists(hostile_lines(), min_size=1, max_size=40))
def test_check_and_plain_survive_every_class_of_hostile_line(lines: list[bytes]) -> None:
    import contextlib
    import io
    import tempfile

    from lossmon.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.jsonl"
        path.write_bytes(encode(header()) + b"\n".join(lines) + b"\n")
        for args in (["check", str(path)], ["check", "--format", "json", str(path)]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(args)
            assert code in (0, 1), err.getvalue()
            text = out.getvalue()
            assert not unsafe(text), [hex(ord(c)) for c in unsafe(text)]
            text.encode("utf-8")
            if "json" in args:
                json.loads(text)
        import threading

        from lossmon.show.plain import watch_plain

        out, err, stop = io.StringIO(), io.StringIO(), threading.Event()
        timer = threading.Timer(0.3, stop.set)
        timer.start()
        try:
            assert watch_plain([path], out=out, err=err, settle=0, poll_interval=0.05, stop=stop) == 0
        finally:
            timer.cancel()
        assert not unsafe(out.getvalue() + err.getvalue())


def test_names_beyond_the_budget_are_counted_and_said(tmp_path: Path) -> None:
    from lossmon.model.run import MAX_NAMES

    path = tmp_path / "names.jsonl"
    with open(path, "wb") as handle:
        handle.write(encode(header()))
        for i in range(1, MAX_NAMES + 101):
            handle.write(encode({"kind": "batch", "run": "r1", "step": i, "time": 1000.0 + i, "logs": {f"m{i}": 0.5}}))
        handle.write(encode(end(MAX_NAMES + 100)))
    monitor = Monitor([path])
    monitor.read_to_end()
    run = monitor.store.runs["r1"]
    assert len(run.batch) == MAX_NAMES and run.names_dropped == 100
    document = json.loads(lossmon("check", "--format", "json", path).stdout)
    assert document["values_not_kept"] == {"r1": 100}
    assert "100 values not kept" in lossmon("check", path).stdout.decode()
    assert "values of the rest are not kept" in lossmon("watch", "--plain", "--settle", "0", path).stdout.decode()


@pytest.mark.parametrize("text", [OSC, INVISIBLE], ids=["osc", "invisible"])
async def test_the_app_escapes_strings_from_the_file_everywhere(tmp_path: Path, text: str) -> None:
    from textual.widgets import Static

    from lossmon.show.app import WatchApp

    path = hostile_status_run(tmp_path / "run.jsonl", text)
    app = WatchApp([path], poll_interval=0.2)
    app.clock = lambda: 1005.0
    async with app.run_test(size=(200, 50)) as pilot:
        deadline = time.monotonic() + 10
        while not app.monitor.engine.alerts or app.monitor.records < 8:
            assert time.monotonic() < deadline, "no alert"
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        app.refresh_status()
        await pilot.press("enter")  # the alert's details
        await pilot.pause(0.3)
        shown = "\n".join(str(widget.render()) for screen in (app.screen, app) for widget in screen.query(Static))
        assert "finished (" in shown and "nonfinite" in shown
        assert not unsafe(shown), [hex(ord(c)) for c in unsafe(shown)]


def test_an_old_critical_alert_still_decides_the_exit_status(tmp_path: Path) -> None:
    """More alerts than the engine lists: the NaN's critical alert leaves the
    list, but the verdict counts it and the report says so."""
    records = [header(run="nan")] + [batch(s, 0.5, run="nan") for s in range(1, 6)] + [batch(6, math.nan, run="nan"), end(6, run="nan")]
    for i in range(1010):
        records += [header(run=f"lr{i}", lr=1.0), end(0, run=f"lr{i}")]
    path = write(tmp_path / "run.jsonl", records)
    proc = lossmon("check", "--fail-on", "critical", path)
    assert proc.returncode == 1, proc.stdout[-500:]
    assert b"critical nonfinite in run nan" in proc.stdout
    document = json.loads(lossmon("check", "--format", "json", "--fail-on", "critical", path).stdout)
    assert document["worst_unlisted"]["detector"] == "nonfinite"


def test_a_crashed_screen_is_not_exit_0(tmp_path: Path) -> None:
    """The TUI, on a real pseudo-terminal, failing while it starts: Textual
    prints why, and the exit status says it failed (it was 0)."""
    import pty
    import select

    path = write(tmp_path / "run.jsonl", [header()])
    code = (
        "import sys\nimport lossmon.show.app as app\n"
        "def boom(self):\n    raise RuntimeError('screen failed')\n"
        "app.WatchApp.on_mount = boom\n"
        "from lossmon.cli import main\nsys.exit(main(['watch', sys.argv[1]]))\n"
    )
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        proc.wait(timeout=10)
    finally:
        proc.kill()
        os.close(master)
    assert b"screen failed" in seen
    assert proc.returncode == 3


async def test_the_app_says_what_the_memory_budget_left_out(tmp_path: Path) -> None:
    from lossmon.model.run import MAX_NAMES
    from lossmon.show.app import WatchApp

    path = tmp_path / "many.jsonl"
    with open(path, "wb") as handle:
        for i in range(70):
            handle.write(encode(batch(1, 0.5, run=f"run-{i}")))
        for i in range(1, MAX_NAMES + 10):
            handle.write(encode({"kind": "batch", "run": "run-69", "step": 1 + i, "time": 1000.0 + i, "logs": {f"m{i}": 0.5}}))
    app = WatchApp([path], poll_interval=0.2)
    app.clock = lambda: 1005.0
    async with app.run_test(size=(250, 30)) as pilot:
        deadline = time.monotonic() + 20
        while app.monitor.records < 70 + MAX_NAMES + 9:
            assert time.monotonic() < deadline
            await pilot.pause(0.1)
        app.refresh_status()
        status = str(app.query_one("StatusLine").render())
        assert "6 older runs dropped" in status and "the rest not kept" in status
