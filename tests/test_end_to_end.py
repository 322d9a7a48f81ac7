"""The whole path on real parts: a Keras fit in its own process writes through
LossmonCallback while the reader and the app follow the file."""

from __future__ import annotations

import subprocess
import sys
import time

from lossmon.format import decode
from lossmon.monitor import Monitor
from lossmon.show.app import WatchApp
from lossmon.show.widgets.alert_panel import AlertPanel
from lossmon.show.widgets.metric_plot import MetricPlot
from test_app import wait_for


def start(scenario: str, path, pace: float, epochs: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "lossmon.scenarios", scenario, str(path), "--pace", str(pace), "--epochs", str(epochs)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def record_times(path) -> dict[int, float]:
    times = {}
    for line in path.read_bytes().splitlines():
        record = decode(line)
        if record is not None and record.kind == "batch":
            times[record.step] = record.time
    return times


def test_tailer_reads_a_live_keras_fit_while_it_writes(tmp_path):
    path = tmp_path / "run.jsonl"
    trainer = start("healthy", path, pace=0.01, epochs=3)
    monitor = Monitor([path])
    growth = []
    try:
        deadline = time.monotonic() + 120
        while trainer.poll() is None and time.monotonic() < deadline:
            update = monitor.poll()
            if update.records:
                growth.append(update.records)
            time.sleep(0.05)
        out = trainer.communicate(timeout=60)[0]
        assert trainer.returncode == 0, out
    finally:
        trainer.kill()
    monitor.read_to_end()
    assert len(growth) >= 3  # records arrived while training ran, not all at the end
    run = monitor.store.latest
    assert run.status == "completed"
    assert run.header["optimizer"]["class"] == "Adam"
    steps = run.batch["loss"].steps.tolist()
    assert steps == list(range(1, len(steps) + 1))
    assert monitor.malformed == 0
    assert [a for a in monitor.engine.alerts if a.severity.value != "info"] == []


async def test_watch_shows_curves_and_a_divergence_alert_within_a_second(tmp_path):
    path = tmp_path / "run.jsonl"
    trainer = start("high_lr", path, pace=0.05, epochs=3)
    app = WatchApp([path], poll_interval=1.0)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(AlertPanel)
            await wait_for(pilot, lambda: any(a.detector == "divergence" for a in panel.alerts), timeout=120)
            seen = time.time()
            alert = next(a for a in panel.alerts if a.detector == "divergence")
            written = record_times(path)[alert.step]
            assert seen - written < 1.0, f"alert shown {seen - written:.2f}s after its record"
            loss = app.query_one("#loss-plot", MetricPlot)
            acc = app.query_one("#accuracy-plot", MetricPlot)
            # the curves follow at their own pace: within about a second of the first batches
            await wait_for(pilot, lambda: not loss.empty and not acc.empty, timeout=3.0)
            assert "loss" in [line.label for line in loss.lines]
            assert "accuracy" in [line.label for line in acc.lines]
    finally:
        trainer.kill()
        trainer.wait(timeout=30)
