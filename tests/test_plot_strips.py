"""Plot rows read straight from plotext's matrix look exactly like the ANSI path.

MetricPlot skips textual-plotext's round trip through ANSI text (see
lossmon/show/plot_strips.py). Every cell must still carry the character,
colours and weight that the usual path gives, and a figure it cannot read
falls back to that path.
"""

from __future__ import annotations

from textual.visual import Visual

import lossmon.show.widgets.metric_plot as metric_plot
from lossmon.show.app import WatchApp
from lossmon.show.plot_strips import figure_strips
from lossmon.show.widgets.metric_plot import MetricPlot
from records import batch, write
from test_app import healthy_start, wait_for


def cells(strips) -> list[list[tuple]]:
    rows = []
    for strip in strips:
        row = []
        for segment in strip:
            style = segment.style
            color = style.color.triplet if style and style.color else None
            bgcolor = style.bgcolor.triplet if style and style.bgcolor else None
            row += [(char, color, bgcolor, bool(style and style.bold)) for char in segment.text]
        rows.append(row)
    return rows


def ansi_rows(plot: MetricPlot):
    width, height = plot.size
    return cells(Visual.to_strips(plot, plot._render(), width, height, plot.visual_style))


def shown_rows(plot: MetricPlot):
    return cells([plot.render_line(y) for y in range(plot.size.height)])


def records():
    spike = [batch(i, 0.3 * (40 if i == 36 else 1), accuracy=0.7) for i in range(31, 40)]
    return healthy_start() + spike  # curves, validation dots, an off-scale marker


async def test_rows_match_the_ansi_rendering_cell_for_cell(tmp_path):
    path = write(tmp_path / "run.jsonl", records())
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == len(records()))
        await pilot.pause(0.3)
        for keys in ((), ("y",), ("s",)):  # as drawn, in log scale, raw
            for key in keys:
                await pilot.press(key)
                await pilot.pause(0.3)
            plots = [p for p in app.query(MetricPlot) if p.display and p.parent.display and p.lines]
            assert len(plots) >= 2
            for plot in plots:
                shown = shown_rows(plot)
                assert shown == ansi_rows(plot)
                assert any("\u2801" <= cell[0] <= "\u28ff" for row in shown for cell in row)  # curves are there


async def test_a_figure_it_cannot_read_is_rendered_the_usual_way(tmp_path, monkeypatch):
    monkeypatch.setattr(metric_plot, "figure_strips", lambda figure: None)
    path = write(tmp_path / "run.jsonl", records())
    app = WatchApp([path], poll_interval=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.monitor.records == len(records()))
        await pilot.pause(0.3)
        plot = app.query_one("#loss-plot", MetricPlot)
        shown = shown_rows(plot)
        assert shown == ansi_rows(plot)
        assert any("\u2801" <= cell[0] <= "\u28ff" for row in shown for cell in row)


def test_something_that_is_not_a_plotext_figure_gives_none():
    assert figure_strips(object()) is None
