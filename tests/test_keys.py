"""Every key binding of `lossmon watch`, pressed under Textual's pilot."""

from __future__ import annotations

import asyncio
import math

import numpy as np
from rich.console import Console

from lossmon.show.app import WatchApp
from lossmon.show.keys import KEYS
from lossmon.show.widgets.alert_panel import AlertPanel
from lossmon.show.widgets.alert_screen import AlertScreen
from lossmon.show.widgets.filter_screen import FilterScreen
from lossmon.show.widgets.help_screen import HelpScreen, help_table
from lossmon.show.widgets.metric_plot import MetricPlot
from records import batch, end, epoch, header, write
from test_app import wait_for

PRESSED: set[str] = set()


async def press(pilot, *keys):
    PRESSED.update(keys)
    await pilot.press(*keys)
    await pilot.pause(0.05)


def blow_up_run(path, finished=True):
    """Three good epochs, then the loss explodes (a divergence alert)."""
    rng = np.random.default_rng(3)
    records = [header(lr=1.0, epochs=6, steps=20)]
    losses = []
    for step in range(1, 121):
        loss = 0.69 * math.exp(-step / 50) + rng.normal(0, 0.01) if step <= 60 else min(0.4 * 1.15 ** (step - 60), 12.0)
        losses.append(loss)
        records.append(batch(step, loss, steps_per_epoch=20, accuracy=min(0.5 + step / 200, 0.8)))
        if step % 20 == 0:
            mean = float(np.mean(losses[-20:]))
            records.append(epoch(step // 20 - 1, mean, mean * 1.1, steps_per_epoch=20, accuracy=0.6, val_accuracy=0.55))
    if finished:
        records.append(end(120))
    return write(path, records), len(records)


def spiky_run(path):
    """A healthy run with one spike of 40 at step 50."""
    rng = np.random.default_rng(5)
    records = [header(epochs=6, steps=20)]
    for step in range(1, 121):
        loss = 40.0 if step == 50 else 0.69 * math.exp(-step / 50) + rng.normal(0, 0.01)
        records.append(batch(step, loss, steps_per_epoch=20, accuracy=min(0.5 + step / 200, 0.8)))
        if step % 20 == 0:
            records.append(epoch(step // 20 - 1, 0.5, 0.55, steps_per_epoch=20, accuracy=0.6, val_accuracy=0.55))
    return write(path, records), len(records)


async def loaded_app(pilot, app, count, alerts=True):
    await wait_for(pilot, lambda: app.monitor.records == count)
    if alerts:
        await wait_for(pilot, lambda: app.query_one(AlertPanel).alerts)
    await pilot.pause(0.1)


def status(app) -> str:
    return str(app.query_one("#status").render())


def title(app) -> str:
    return str(app.query_one("#title").render())


async def test_curve_keys(tmp_path):
    path, count = spiky_run(tmp_path / "run.jsonl")
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded_app(pilot, app, count, alerts=False)
        loss = app.query_one("#loss-plot", MetricPlot)
        view = app.view
        assert view.smooth and view.smoothing == 0.6 and "smooth 0.6" in title(app)

        draws = loss.draws
        await press(pilot, "s")
        assert not view.smooth and "raw" in title(app) and loss.draws > draws
        await press(pilot, "s")
        assert view.smooth
        await press(pilot, "full_stop")
        assert view.smoothing == 0.7 and "smooth 0.7" in title(app)
        await press(pilot, "comma", "comma")
        assert view.smoothing == 0.5

        robust = loss.y_range
        assert robust is not None and robust[1] < 2  # the spike does not set the scale
        assert loss.off_scale == 1 and "1 off-scale" in str(app.query_one("#loss-panel .plot-legend").render())
        await press(pilot, "o")
        assert not view.robust and loss.y_range[1] >= 40 and loss.off_scale == 0
        await press(pilot, "o")

        await press(pilot, "y")
        assert view.log_y and "log" in title(app)
        lo, hi = loss.y_range
        assert -1.5 < lo < -1 and -0.5 < hi < 0  # log10 of 0.056 .. 0.69; the spike of 40 is off-scale
        await press(pilot, "y")
        assert not view.log_y

        await press(pilot, "x")
        assert view.x_axis == "epoch" and "x epoch" in title(app)
        await press(pilot, "x")
        assert view.x_axis == "time"
        await press(pilot, "x")
        assert view.x_axis == "step"


async def test_follow_zoom_and_pan_keys(tmp_path):
    path, count = blow_up_run(tmp_path / "run.jsonl")
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded_app(pilot, app, count)
        view = app.view
        assert view.following and "following" in title(app) and "PAUSED" not in status(app)
        await press(pilot, "plus")
        assert view.span == 60 and not view.following
        assert "PAUSED" in title(app) and "PAUSED (f follows)" in status(app)
        await press(pilot, "equals_sign")
        assert view.span == 30
        right = view.right
        await press(pilot, "left")
        assert view.right < right
        await press(pilot, "h")
        await press(pilot, "right")
        await press(pilot, "l")
        assert view.right == right
        await press(pilot, "f")
        assert view.following and view.span == 30 and "following (zoomed)" in title(app)
        await press(pilot, "minus", "minus")
        assert view.span is None
        await press(pilot, "plus")
        assert not view.following
        await press(pilot, "f")
        assert view.following


async def test_filter_help_and_quit_keys(tmp_path):
    path, count = blow_up_run(tmp_path / "run.jsonl")
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded_app(pilot, app, count)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=120, record=True)
        console.print(help_table())
        text = console.export_text()
        assert app.screen.query_one("#help-table")
        for key in KEYS:
            assert key.description in text
        await press(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)

        await press(pilot, "slash")
        assert isinstance(app.screen, FilterScreen)
        await pilot.press(*"acc", "enter")
        await pilot.pause(0.1)
        assert app.view.filter == "acc" and "filter acc" in title(app)
        assert not app.query_one("#loss-panel").display
        assert app.query_one("#accuracy-panel").display
        await press(pilot, "slash")
        await pilot.press("ctrl+a", "ctrl+k", "enter")
        await pilot.pause(0.1)
        assert app.view.filter == "" and app.query_one("#loss-panel").display

        await press(pilot, "q")
        await asyncio.sleep(0)
    assert app.return_code == 0


async def test_alert_keys_open_mark_and_mute(tmp_path):
    path, count = blow_up_run(tmp_path / "run.jsonl")
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded_app(pilot, app, count)
        panel = app.query_one(AlertPanel)
        cause = panel.selected  # the root cause is selected: the learning rate, the divergence under it
        assert cause is not None and cause.detector == "lr_config" and panel.depths[0] == 0
        assert "divergence" in [s.detector for s in cause.symptoms]
        panel.query_one("#alerts-list").focus()
        await press(pilot, "down")
        alert = panel.selected
        assert alert.detector == "divergence" and alert.caused_by is cause
        await press(pilot, "enter")
        assert isinstance(app.screen, AlertScreen)
        assert app.view.marker == (alert.run, alert.step)
        full = str(app.screen.query_one("#alert-full").render())
        assert "Try:" in full and "Evidence" in full and f"step {alert.step}" in full and "A symptom of lr_config" in full
        await press(pilot, "escape")
        assert not isinstance(app.screen, AlertScreen)
        assert f"alert at step {alert.step}" in str(app.query_one("#loss-panel .plot-legend").render())
        await press(pilot, "escape")
        assert app.view.marker is None

        await press(pilot, "m")
        assert "divergence" in panel.muted and all(a.detector != "divergence" for a in panel.alerts)
        assert "muted" in str(panel.query_one("#alerts-title").render())
        await press(pilot, "M")
        assert not panel.muted and any(a.detector == "divergence" for a in panel.alerts)


async def test_command_palette_lists_every_action(tmp_path):
    path, count = blow_up_run(tmp_path / "run.jsonl")
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded_app(pilot, app, count)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for key in KEYS:
            if key.action != "quit":
                assert key.description in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"log-scale")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.view.log_y


def test_every_binding_was_pressed():
    """Runs after the tests above (file order): no key goes untested."""
    for key in KEYS:
        names = key.keys.split(",")
        assert PRESSED & set(names), f"no test presses {key.keys}"
