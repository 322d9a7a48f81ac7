"""What `lossmon watch` looks like at 80x24 and 160x48, with fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossmon.show.app import WatchApp
from records import batch, end, epoch, header, write
from test_app import wait_for


def settled(app) -> bool:
    """No paced redraw or value refresh is still to come."""
    return app._draw_timer is None and app._values_timer is None


async def final_frame(pilot, app) -> None:
    """Let the screen settle, then draw once more: a draw that came while
    the layout was still moving was made for an older plot size (a
    different set of ticks), and on a busy machine that happens."""
    await pilot.pause(0.3)
    app.refresh_views()
    await pilot.pause(0.3)


def fixed_run(path):
    """A run that learns for 3 epochs, then the learning rate blows it up."""
    rng = np.random.default_rng(7)
    records = [header(lr=1.0, epochs=6, steps=20)]
    losses = []
    for step in range(1, 121):
        if step <= 60:
            loss = 0.69 * math.exp(-step / 50) + rng.normal(0, 0.01)
        else:
            loss = min(0.4 * 1.15 ** (step - 60), 12.0) + rng.normal(0, 0.2)
        losses.append(loss)
        records.append(batch(step, loss, steps_per_epoch=20, accuracy=min(0.5 + step / 200, 0.8)))
        if step % 20 == 0:
            e = step // 20 - 1
            mean = float(np.mean(losses[-20:]))
            records.append(epoch(e, mean, mean * 1.1, steps_per_epoch=20, accuracy=0.6, val_accuracy=0.55))
    records.append(end(120))
    return write(path, records), len(records)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_watch_layout(snap_compare, tmp_path, size):
    path, count = fixed_run(tmp_path / "run.jsonl")
    app = WatchApp([path], poll_interval=0.5)
    app.clock = lambda: 1000.0 + 120 * 0.1 + 5  # five seconds after the last record

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.monitor.records == count and settled(app))
        await final_frame(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=loaded)


def test_two_runs_overlaid(snap_compare, tmp_path):
    from records import training

    bad = write(tmp_path / "bad.jsonl", training([min(0.7 * 1.3**i, 20.0) for i in range(60)], run="bad-lr"))
    good = write(tmp_path / "good.jsonl", training([0.7 * math.exp(-i / 25) for i in range(60)], run="good-lr"))
    app = WatchApp([bad, good], poll_interval=0.5)
    app.clock = lambda: 2005.0

    async def loaded(pilot):
        await wait_for(pilot, lambda: len(app.store.runs) == 2 and app.monitor.records == 2 * (1 + 60 + 6 + 1) and settled(app))
        await final_frame(pilot, app)

    assert snap_compare(app, terminal_size=(160, 48), run_before=loaded)


@pytest.mark.parametrize("size", [(80, 24), (160, 48), (120, 30)])
async def test_every_plot_is_drawn_for_the_size_it_has_once_layout_settles(tmp_path, size):
    """The first draw comes before layout has settled; a plot that then gets
    its real size must be drawn again (ticks, epoch lines and buckets depend
    on it), not only have its old figure stretched: epoch lines were missing
    on a cold open until something else redrew the plot."""
    from lossmon.show.widgets.metric_plot import MetricPlot

    path, count = fixed_run(tmp_path / "run.jsonl")
    app = WatchApp([path], poll_interval=0.5)
    app.clock = lambda: 1000.0 + 120 * 0.1 + 5
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == count and settled(app))
        await pilot.pause(0.3)
        plots = [plot for plot in app.query(MetricPlot) if plot.display and plot.parent.display]
        assert plots
        for plot in plots:
            assert plot._drawn is not None and plot._drawn[2:4] == (plot.size.width, plot.size.height), plot.id
        before = {plot.id: "".join(strip.text for strip in plot._strips or []) for plot in plots}
        await pilot.resize_terminal(size[0] + 20, size[1] + 6)
        await pilot.pause(0.3)
        await pilot.resize_terminal(*size)
        await pilot.pause(0.5)
        after = {plot.id: "".join(strip.text for strip in plot._strips or []) for plot in plots}
        assert after == before  # the same picture as a plot that was never drawn at another size
