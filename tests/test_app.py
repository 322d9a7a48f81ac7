"""`lossmon watch` under Textual's pilot: a real file grows, the screen follows."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

import numpy as np
import pytest

from lossmon.show.app import EMPTY_DRAW_GAP, MAX_DRAW_GAP, DataChanged, WatchApp
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


def costly_last_draw(app: WatchApp) -> None:
    """As if the app had just drawn, at great cost: the next redraw of
    streaming data waits MAX_DRAW_GAP."""
    app._draw_cost = 10.0
    app._last_draw = time.monotonic()


@contextlib.asynccontextmanager
async def watching_healthy_start(tmp_path):
    """The app at 100x30 on healthy_start(), its 34 records read; its clock
    just after the records' own times, so the run is not stalled."""
    path = write(tmp_path / "run.jsonl", healthy_start())
    app = WatchApp([path], poll_interval=0.5)
    app.clock = lambda: 1005.0
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 34)
        await settled(pilot, app)
        yield path, app, pilot


async def settled(pilot, app: WatchApp, quiet: float = 0.3, timeout: float = 10.0) -> None:
    """Until the plots are drawn up to date and no draw happens for `quiet`
    seconds: on a busy machine the layout can settle (and the plots redraw
    for their new size) after the first up-to-date frame."""
    deadline = time.monotonic() + timeout
    while True:
        await wait_for(pilot, lambda: drawn_up_to_date(app), timeout=max(deadline - time.monotonic(), 0.1))
        before = [plot.draws for plot in app.query(MetricPlot)]
        await pilot.pause(quiet)
        if drawn_up_to_date(app) and [plot.draws for plot in app.query(MetricPlot)] == before:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the plots kept redrawing")


def drawn_up_to_date(app: WatchApp) -> bool:
    """No draw is pending and every shown plot shows the model as it is."""
    if app._draw_timer is not None or app._values_timer is not None or app._data_posted.is_set():
        return False
    versions = tuple((id(run), run.version) for run in app.shown_runs())
    plots = [plot for panel in app.plot_panels if panel.display for plot in panel.query(MetricPlot)]
    return all(plot._drawn is not None and plot._drawn[0] == versions and plot._drawn[1] == app.view.version for plot in plots)


def healthy_start(n=30):
    rng = np.random.default_rng(1)
    return [header(steps=10, epochs=20)] + [
        batch(i, 0.69 * math.exp(-i / 40) + rng.normal(0, 0.01), accuracy=0.5 + i / 100) for i in range(1, n + 1)
    ] + [epoch(0, 0.6, 0.62, accuracy=0.6, val_accuracy=0.58), epoch(1, 0.5, 0.55, accuracy=0.65, val_accuracy=0.6), epoch(2, 0.45, 0.5, accuracy=0.7, val_accuracy=0.66)]


async def test_curves_then_a_divergence_alert_appear_as_the_file_grows(tmp_path):
    async with watching_healthy_start(tmp_path) as (path, app, pilot):
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        acc_plot = app.query_one("#accuracy-plot", MetricPlot)
        await pilot.pause(0.1)
        assert [line.name for line in loss_plot.lines] == ["loss", "val_loss"]
        assert {line.name for line in acc_plot.lines} == {"accuracy", "val_accuracy"}
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


async def test_two_runs_overlay_with_a_legend_and_alerts_name_their_run(tmp_path):
    from records import training

    bad = write(tmp_path / "bad.jsonl", training([0.7 * 1.4**i for i in range(40)], run="bad", finished=False))
    good = write(tmp_path / "good.jsonl", training([0.7 * math.exp(-i / 20) for i in range(40)], run="good"))
    app = WatchApp([bad, good], poll_interval=0.3)
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one(AlertPanel)
        await wait_for(pilot, lambda: len(app.store.runs) == 2 and panel.alerts)
        await pilot.pause(0.2)
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        assert {line.run for line in loss_plot.lines} == {"bad", "good"}
        legend = str(app.query_one("#loss-panel .plot-legend").render())
        assert "bad:loss" in legend and "good:loss" in legend
        prompt = panel.query_one("#alerts-list").get_option_at_index(0).prompt
        assert "\nbad\n" in str(prompt)  # the alert names its run
        status = str(app.query_one("#status").render())
        assert "bad" in status and "good finished" in status


async def test_the_root_cause_is_selected_and_its_symptoms_are_nested_under_it(tmp_path):
    from lossmon.detect import Alert, Severity

    path = write(tmp_path / "run.jsonl", healthy_start(3))
    app = WatchApp([path])
    app.clock = lambda: 1005.0  # not stalled: no alert of the app's own comes in between
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 7)
        await pilot.pause(0.2)
        panel = app.query_one(AlertPanel)
        lone = Alert("r1", "plateau", Severity.WARNING, 2, 0, "flat", "wait", {})
        symptom = Alert("r1", "spike", Severity.WARNING, 3, 0, "a spike", "clip", {})
        cause = Alert("r1", "divergence", Severity.CRITICAL, 5, 0, "runs away", "lower lr", {})
        symptom.caused_by, cause.symptoms = cause, [symptom]
        panel.show_alerts([lone, symptom, cause])  # in the order they opened
        await pilot.pause()
        assert panel.alerts == [cause, symptom, lone] and panel.depths == [0, 1, 0]
        assert panel.selected is cause  # the root cause, though its symptom opened first
        assert "lower lr" in str(panel.query_one("#alert-details").render())
        prompt = str(panel.query_one("#alerts-list").get_option_at_index(1).prompt)
        assert prompt.startswith("↳ WARN spike")
        panel.query_one("#alerts-list").focus()
        await pilot.press("down")  # the user picks the symptom ...
        await pilot.pause()
        assert panel.selected is symptom
        info = Alert("r1", "plateau", Severity.INFO, 12, 0, "slow", "", {}, key="x")
        panel.show_alerts([lone, symptom, cause, info])  # ... and an update does not take it away
        await pilot.pause()
        assert panel.alerts[-1] is info and panel.selected is symptom
        panel.mute("divergence")  # a muted cause: its symptom moves up in its place
        await pilot.pause()
        assert panel.alerts[0] is symptom and panel.depths[0] == 0


async def test_on_alert_command_and_bell_on_critical(tmp_path):
    from lossmon.show.notify import AlertNotifier

    out = tmp_path / "alerts.jsonl"
    notifier = AlertNotifier(f"cat >> {out}", bell=True)
    # history: an alert that was already in the file is shown but not announced
    old = healthy_start(10)[:1] + [batch(i, 0.69, run="old") for i in range(1, 4)] + [batch(4, math.nan, run="old")]
    path = write(tmp_path / "run.jsonl", old)
    app = WatchApp([path], poll_interval=0.3, notifier=notifier)
    # The records' own times, not today's: else the first tick finds both runs
    # silent for decades and a stalled warning can go out before the NaN's alert.
    app.clock = lambda: 1005.0
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: any(a.run == "old" for a in app.query_one(AlertPanel).alerts))
        await pilot.pause(0.5)
        assert app.bells == 0 and not out.exists()
        write(path, healthy_start(10) + [batch(11, math.nan), batch(12, math.nan)])
        await wait_for(pilot, lambda: app.bells >= 1)
        notifier.wait()
        await wait_for(pilot, lambda: out.exists() and "nonfinite" in out.read_text())
    import orjson

    sent = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert sent[0]["detector"] == "nonfinite" and sent[0]["severity"] == "critical" and sent[0]["state"] == "active"


async def test_crashed_and_stalled_runs_in_the_status_line(tmp_path):
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    crashed = header(run="c1")
    crashed.update(host=socket.gethostname(), pid=gone.pid)
    path = write(tmp_path / "crashed.jsonl", [crashed, batch(1, 0.7, run="c1"), batch(2, 0.6, run="c1")])
    app = WatchApp([path], poll_interval=0.3)
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 3)
        app.refresh_status()
        assert "c1 crashed" in str(app.query_one("#status").render())

    path = write(tmp_path / "stalled.jsonl", healthy_start(10))
    app = WatchApp([path], poll_interval=0.3)
    app.clock = lambda: 1000.0 + 1.0 + 3600  # an hour after the last record
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 14)
        # the stalled detector is fed clock ticks by the reader: its alert and the status line agree
        await wait_for(pilot, lambda: any(a.detector == "stalled" for a in app.alert_panel.alerts), timeout=5)
        app.refresh_status()
        assert "r1 stalled" in str(app.query_one("#status").render())
    app = WatchApp([path], poll_interval=0.3)
    app.clock = lambda: 1000.0 + 1.0 + 2  # two seconds after
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 14)
        app.refresh_status()
        text = str(app.query_one("#status").render())
        assert "r1 live" in text and "ETA" in text and "steps/s" in text


async def test_no_color_draws_without_colour(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    path = write(tmp_path / "run.jsonl", healthy_start())
    app = WatchApp([path], poll_interval=0.5)
    assert app.no_color
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 34)
        await pilot.pause(0.2)
        assert has_braille(app.query_one("#loss-plot", MetricPlot))
        legend = str(app.query_one("#loss-panel .plot-legend").render())
        assert "• val_loss" in legend  # validation is told apart by its marker, not a colour


async def test_data_keeps_arriving_while_the_help_screen_is_open(tmp_path):
    path = write(tmp_path / "run.jsonl", healthy_start(5))
    app = WatchApp([path], poll_interval=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 9)
        await pilot.press("question_mark")
        write(path, [batch(31, 0.5), batch(32, 0.45)])
        await wait_for(pilot, lambda: app.monitor.records == 11)
        await wait_for(pilot, lambda: "step 32" in str(app.status_line.render()), timeout=3.0)  # within VALUES_GAP


async def test_latest_values_show_at_once_while_the_plot_redraw_waits(tmp_path):
    """While records stream, plot redraws are paced; the legend's latest
    value and the step counter are not."""
    async with watching_healthy_start(tmp_path) as (path, app, pilot):
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        await pilot.pause(0.2)
        costly_last_draw(app)
        draws = loss_plot.draws
        write(path, [batch(31, 0.1234, accuracy=0.875)])
        legend = app.query_one("#loss-panel .plot-legend")
        await wait_for(pilot, lambda: "0.1234" in str(legend.render()), timeout=1.0)
        assert "0.875" in str(app.query_one("#accuracy-panel .plot-legend").render())
        assert "step 31" in str(app.query_one("#status").render())
        assert loss_plot.draws == draws  # the plot itself has not been redrawn yet
        await wait_for(pilot, lambda: loss_plot.draws > draws, timeout=MAX_DRAW_GAP + 2.0)  # but it follows


@pytest.mark.parametrize("size", [(160, 40), (80, 24)])
async def test_a_narrow_legend_keeps_the_values_and_drops_the_rest_first(tmp_path, size):
    path = write(tmp_path / "run.jsonl", healthy_start() + [batch(i, 0.3 * (40 if i == 36 else 1)) for i in range(31, 40)])
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 43)
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        await wait_for(pilot, lambda: loss_plot.off_scale == 1)
        await pilot.pause(0.2)
        line = app.query_one("#loss-panel .plot-legend")
        legend = str(line.render())
        assert "val_loss 0.5" in legend and len(legend) <= line.size.width  # every curve's last value, not cut off
        assert ("1 off-scale" in legend) == (size[0] > 100)
        accuracy = app.query_one("#accuracy-panel .plot-legend")
        assert "val_accuracy 0.66" in str(accuracy.render()) and len(str(accuracy.render())) <= accuracy.size.width


async def test_a_draw_with_nothing_new_leaves_the_pacing_alone(tmp_path):
    """A paced draw that finds the plots up to date (the records it was
    due for were drawn already) measures no draw: the cost of the last real
    one keeps pacing the stream, or the next records would be drawn at once."""
    async with watching_healthy_start(tmp_path) as (path, app, pilot):
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        await pilot.pause(0.3)
        costly_last_draw(app)
        last, draws = app._last_draw, loss_plot.draws
        app._draw_new_data()
        await pilot.pause(0.3)
        assert loss_plot.draws == draws
        assert (app._draw_cost, app._last_draw) == (10.0, last)


async def test_a_runs_first_curves_are_drawn_within_a_second_whatever_the_pacing(tmp_path):
    """Watching a run that has only written its header: when its first
    batches stream in, the curves show within about a second, not after a
    paced wait of up to MAX_DRAW_GAP."""
    path = write(tmp_path / "run.jsonl", [header(steps=10, epochs=20)])
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 1)
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        await wait_for(pilot, lambda: loss_plot.draws > 0)
        await pilot.pause(0.3)
        assert loss_plot.empty
        costly_last_draw(app)
        start = time.monotonic()
        write(path, [batch(step, 0.7 - step / 100) for step in range(1, 6)])
        await wait_for(pilot, lambda: not loss_plot.empty, timeout=MAX_DRAW_GAP)
        assert time.monotonic() - start < EMPTY_DRAW_GAP + 1.0
        assert has_braille(loss_plot)


async def test_the_whole_history_is_drawn_as_soon_as_it_is_read(tmp_path):
    """A cold open reads a long history in many polls, which look like a
    stream of records, whose plot redraws are paced; but the frame with all
    of the history is drawn at once, not seconds later."""
    async with watching_healthy_start(tmp_path) as (path, app, pilot):
        loss_plot = app.query_one("#loss-plot", MetricPlot)
        app._stop.set()  # the reader thread ends: this test plays its part
        await pilot.pause(1.5)
        app._caught_up.clear()  # as if the history were still being read...
        app._history_drawn = False
        costly_last_draw(app)  # ...after a costly draw
        draws = loss_plot.draws
        write(path, [batch(step, 0.3) for step in range(31, 41)])
        app.monitor.poll()
        app.post_message(DataChanged(records=5, alerts=0))
        await pilot.pause(0.5)
        assert loss_plot.draws == draws  # more history to come: paced
        app._caught_up.set()  # the reader's last poll of the history
        app.post_message(DataChanged(records=5, alerts=0))
        await wait_for(pilot, lambda: loss_plot.draws > draws, timeout=1.0)


async def test_an_alert_that_keeps_updating_updates_its_line_in_the_list(tmp_path):
    path = write(tmp_path / "run.jsonl", healthy_start() + [batch(i, 0.5 * 1.5 ** (i - 30)) for i in range(31, 45)])
    app = WatchApp([path], poll_interval=0.5)
    app.clock = lambda: 1005.0
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(AlertPanel)
        await wait_for(pilot, lambda: any(a.detector == "divergence" for a in panel.alerts))
        listing = app.query_one("#alerts-list")
        count = listing.option_count
        write(path, [batch(i, 0.5 * 1.5 ** 14 + i) for i in range(45, 50)])
        await wait_for(pilot, lambda: "step 49" in str(listing.get_option_at_index(0).prompt), timeout=5)
        assert listing.option_count == count  # the same alerts: lines replaced, not added


async def test_the_status_line_and_the_stalled_alert_agree(tmp_path):
    """A run writing every 0.1 s that has been silent for 15 s: the stalled
    detector says so (ten times its rhythm, at least 10 s), and so must the
    status line; once a record arrives, both say it lives. With the
    detector switched off, the status line judges silence on its own."""
    from lossmon.detect import Engine, available_detectors

    path = write(tmp_path / "run.jsonl", healthy_start(30)[:31])
    app = WatchApp([path], poll_interval=0.3)
    app.clock = lambda: 1000.0 + 3.0 + 15  # the last record is at 1003.0
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: any(a.detector == "stalled" and a.active for a in app.monitor.engine.alerts), timeout=5)
        app.refresh_status()
        assert "r1 stalled" in str(app.query_one("#status").render())
        app.clock = lambda: 1000.0 + 3.1 + 1
        write(path, [batch(31, 0.4)])
        await wait_for(pilot, lambda: not any(a.active for a in app.monitor.engine.alerts if a.detector == "stalled"), timeout=5)
        app.refresh_status()
        assert "r1 live" in str(app.query_one("#status").render())
    engine = Engine(available_detectors(), disabled={"stalled"})
    app = WatchApp([path], poll_interval=0.3, engine=engine)
    app.clock = lambda: 1000.0 + 3.1 + 3600
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == 32)
        app.refresh_status()
        assert "r1 stalled" in str(app.query_one("#status").render())

