"""`lossmon watch` under Textual's pilot: a real file grows, the screen follows."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np

from lossmon.show.app import WatchApp
from lossmon.show.widgets.alert_panel import AlertPanel
from lossmon.show.widgets.metric_plot import MetricPlot
from records import batch, end, epoch, header, write


async def wait_for(pilot, condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def has_braille(widget: MetricPlot) -> bool:
    rendered = str(widget.render())
    return any("\u2801" <= ch <= "\u28ff" for ch in rendered)


def healthy_start(n=30):
    rng = np.random.default_rng(1)
    return [header(steps=10, epochs=20)] + [
        batch(i, 0.69 * math.exp(-i / 40) + rng.normal(0, 0.01), accuracy=0.5 + i / 100) for i in range(1, n + 1)
    ] + [epoch(0, 0.6, 0.62, accuracy=0.6, val_accuracy=0.58), epoch(1, 0.5, 0.55, accuracy=0.65, val_accuracy=0.6), epoch(2, 0.45, 0.5, accuracy=0.7, val_accuracy=0.66)]


async def test_curves_then_a_divergence_alert_appear_as_the_file_grows(tmp_path):
    path = write(tmp_path / "run.jsonl", healthy_start())
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        acc_plot = app.query_one("#accuracy-plot", MetricPlot)
        await wait_for(pilot, lambda: app.monitor.records == 34)
        await pilot.pause(0.1)
        assert [line.label for line in loss_plot.lines] == ["loss", "val_loss"]
        assert {line.label for line in acc_plot.lines} == {"accuracy", "val_accuracy"}
        assert has_braille(loss_plot) and has_braille(acc_plot)
        assert app.query_one(AlertPanel).alerts == []

        # the learning rate was too high: the loss climbs by an order of magnitude
        write(path, [batch(i, 0.5 * 1.5 ** (i - 30)) for i in range(31, 45)])
        appended = time.monotonic()
        panel = app.query_one(AlertPanel)
        await wait_for(pilot, lambda: any(a.detector == "divergence" for a in panel.alerts), timeout=5)
        assert time.monotonic() - appended < 3.0
        assert max(np.nanmax(line.series.values) for line in loss_plot.lines) > 5  # the plot has the climb
        status = str(app.query_one("#status").render())
        assert "step 44" in status


async def test_nan_alert_and_status_of_a_finished_run(tmp_path):
    records = healthy_start(10) + [batch(11, math.nan), batch(12, math.nan), end(12)]
    path = write(tmp_path / "run.jsonl", records)
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(AlertPanel)
        await wait_for(pilot, lambda: any(a.detector == "nonfinite" for a in panel.alerts))
        await pilot.pause(0.1)
        details = str(app.query_one("#alert-details").render())
        assert "nonfinite" in details and "Try:" in details
        status = str(app.query_one("#status").render())
        assert "completed" in status


async def test_waits_for_a_missing_file_then_reads_it(tmp_path):
    path = tmp_path / "late.jsonl"
    app = WatchApp([path], poll_interval=0.3)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert "waiting for late.jsonl" in str(app.query_one("#status").render())
        write(path, healthy_start(5))
        await wait_for(pilot, lambda: app.monitor.records > 0)


async def test_malformed_lines_and_hostile_names_are_shown_literally(tmp_path):
    path = tmp_path / "run.jsonl"
    hostile = "[bold red]x[/]\x1b[31m"
    write(path, [header(run=hostile), batch(1, 0.7, run=hostile), batch(2, 0.6, run=hostile)])
    with open(path, "ab") as handle:
        handle.write(b"{not json\n")
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 3 and app.monitor.malformed == 1)
        await pilot.pause(0.1)
        status = str(app.query_one("#status").render())
        assert "1 malformed line" in status
        assert "[bold red]x[/]\\x1b[31m" in status


async def test_nothing_is_redrawn_when_nothing_changed(tmp_path):
    path = write(tmp_path / "run.jsonl", healthy_start())
    app = WatchApp([path], poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        await wait_for(pilot, lambda: app.monitor.records == 34)
        await pilot.pause(0.3)
        draws = loss_plot.draws
        await pilot.pause(1.2)  # several polls and a status tick, no new data
        assert loss_plot.draws == draws
        write(path, [batch(31, 0.3)])
        await wait_for(pilot, lambda: loss_plot.draws > draws)


async def test_q_quits(tmp_path):
    path = write(tmp_path / "run.jsonl", healthy_start(3))
    app = WatchApp([path])
    async with app.run_test() as pilot:
        await pilot.press("q")
        await asyncio.sleep(0)
    assert app.return_code == 0
