"""Files that change under the reader: each fault gives a clear status or error
through Monitor, `lossmon check` and the app, never a traceback."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

from lossmon.cli import main
from lossmon.monitor import Monitor
from lossmon.read.tailer import NOTICE_REPLACED, NOTICE_TRUNCATED, NOTICE_VANISHED
from records import batch, header, write

import unprivileged


def steps_of(monitor: Monitor) -> list[int]:
    run = monitor.store.runs.get("r1")
    return [] if run is None else run.batch["loss"].steps.tolist()


def test_a_file_through_late_creation_truncation_rotation_deletion_and_recreation(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    monitor = Monitor([path])
    source = monitor.sources[0]

    assert monitor.poll().records == 0  # not there yet
    assert source.status == "waiting" and source.error is None

    write(path, [header(), batch(1, 0.7), batch(2, 0.6)])
    assert monitor.poll().records == 3 and source.status == "ok"

    path.write_bytes(b"")  # truncated: a new run starts in the same file
    write(path, [batch(1, 0.9)])
    update = monitor.poll()
    assert update.notices == [NOTICE_TRUNCATED] and update.records == 1

    path.rename(tmp_path / "run.jsonl.1")  # rotated
    write(path, [batch(5, 0.5)])
    update = monitor.poll()
    assert update.notices == [NOTICE_REPLACED] and update.records == 1

    path.unlink()  # deleted
    update = monitor.poll()
    assert update.notices == [NOTICE_VANISHED] and source.status == "waiting"
    assert monitor.poll().notices == []  # said once

    write(path, [batch(7, 0.4)])  # and back
    update = monitor.poll()
    assert update.notices == [NOTICE_REPLACED] and update.records == 1
    assert steps_of(monitor) == [1, 2, 1, 5, 7]
    assert [n.split(": ", 1)[1] for n in monitor.notices] == [
        NOTICE_TRUNCATED, NOTICE_REPLACED, NOTICE_VANISHED, NOTICE_REPLACED]


def test_a_directory_where_the_file_should_be(tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.jsonl"
    path.mkdir()
    monitor = Monitor([path])
    monitor.read_to_end()
    assert monitor.sources[0].status == "error"
    assert "is a directory" in monitor.sources[0].error
    path.rmdir()  # replaced by a real file: reading resumes
    write(path, [header(), batch(1, 0.7)])
    monitor.read_to_end()
    assert monitor.sources[0].status == "ok" and monitor.records == 2

    other = tmp_path / "dir.jsonl"
    other.mkdir()
    assert main(["check", str(other)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "is a directory" in err and "Traceback" not in err


def test_no_read_permission_is_a_clear_error() -> None:
    # A directory of our own that everyone can enter; the file only root may read.
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        path = Path(tmp) / "run.jsonl"
        write(path, [header(), batch(1, 0.7)])
        os.chmod(path, 0o600)

        def as_nobody() -> dict:
            monitor = Monitor([path])
            monitor.read_to_end()
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(["check", str(path)])
            return {"status": monitor.sources[0].status, "error": monitor.sources[0].error,
                    "code": code, "stderr": err.getvalue()}

        seen = unprivileged.call(as_nobody)
    assert seen["status"] == "error" and "permission denied" in seen["error"]
    assert seen["code"] == 2 and "permission denied" in seen["stderr"] and "Traceback" not in seen["stderr"]


def test_check_on_a_missing_file_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "nowhere.jsonl")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "not found" in err


async def test_the_app_reports_a_directory_and_then_a_rotation(tmp_path: Path) -> None:
    from lossmon.show.app import WatchApp

    path = tmp_path / "run.jsonl"
    path.mkdir()
    app = WatchApp([path], poll_interval=0.2, polling_only=True)
    async with app.run_test(size=(160, 30)) as pilot:

        async def status_shows(text: str) -> None:
            deadline = time.monotonic() + 10
            while text not in str(app.query_one("#status").render()):
                assert time.monotonic() < deadline, str(app.query_one("#status").render())
                await pilot.pause(0.05)

        await status_shows("is a directory")
        path.rmdir()
        write(path, [header(), batch(1, 0.7), batch(2, 0.6)])
        deadline = time.monotonic() + 10
        while app.monitor.records < 3:
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        path.rename(tmp_path / "run.jsonl.1")
        write(path, [header(), batch(1, 0.9)])
        await status_shows("file was replaced")
        assert app.is_running


async def test_news_that_reaches_the_app_as_it_shuts_down_is_dropped(tmp_path: Path, monkeypatch) -> None:
    """The reader's last message can be handled while the app closes its
    widgets (quitting as an alert arrives): it must not end in a traceback."""
    from lossmon.show.app import DataChanged, WatchApp

    close_all = WatchApp._close_all

    async def closing_with_news(app: WatchApp) -> None:
        await app.query_one("#alerts-list").remove()  # pruning goes child first
        app.alert_panel._shown = []  # and the news changed the alerts
        try:
            app.on_data_changed(DataChanged(records=1, alerts=1))
            app.refresh_views()
            app.refresh_values()
        except Exception as exc:  # noqa: BLE001 - raised here, it would hang the shutdown
            errors.append(exc)
        await close_all(app)

    errors: list[Exception] = []
    monkeypatch.setattr(WatchApp, "_close_all", closing_with_news)
    path = write(tmp_path / "run.jsonl", [header(), batch(1, 0.7), batch(2, float("nan"))])
    app = WatchApp([path], poll_interval=0.2)
    async with app.run_test(size=(120, 30)) as pilot:
        deadline = time.monotonic() + 10
        while not app.monitor.engine.alerts:
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
    assert errors == []
