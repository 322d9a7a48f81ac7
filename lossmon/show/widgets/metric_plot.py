"""One panel of curves: a legend line above a plotext plot.

The plot is rebuilt only when a run, the view or the size changed, and data
is downsampled to the plot's width, so drawing costs the same at step 100
and at step 10 million.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.strip import Strip
from textual.widgets import Static
from textual_plotext import PlotextPlot

from lossmon.model import Run, Series, downsample
from lossmon.show import curves
from lossmon.show.panels import Line, Panel, short_labels
from lossmon.show.plot_strips import figure_strips
from lossmon.show.safe import printable
from lossmon.show.view import ViewState

Color = tuple[int, int, int]
TRAIN_COLOR: Color = (0, 200, 220)
VAL_COLOR: Color = (255, 150, 0)
LINE_COLORS: tuple[Color, ...] = ((80, 200, 80), (220, 90, 220), (100, 140, 255), (230, 210, 60), (0, 200, 220), (255, 150, 0))
RUN_COLORS: tuple[Color, ...] = ((0, 200, 220), (255, 150, 0), (80, 200, 80), (220, 90, 220), (230, 210, 60), (100, 140, 255))
ALERT_COLOR: Color = (255, 60, 60)
BOUNDARY_COLOR: Color = (70, 70, 80)
MAX_BOUNDARIES = 40


def faint(color: Color) -> Color:
    return tuple(int(c * 0.4) for c in color)  # type: ignore[return-value]


def rich_color(color: Color) -> str:
    return f"rgb({color[0]},{color[1]},{color[2]})"


def x_of(run: Run, steps: np.ndarray, axis: str, clock: Series | None) -> np.ndarray | None:
    """Steps in the units of the chosen x axis (None: not available)."""
    if axis == "epoch":
        return curves.step_to_epoch(steps, run.epoch_steps, run.steps_per_epoch)
    if axis == "time":
        if clock is None or not len(clock):
            return None
        start = (run.header or {}).get("start_time")
        start = float(start) if type(start) in (int, float) and abs(start) <= curves.PLOT_LIMIT else None
        with np.errstate(over="ignore", invalid="ignore"):
            times = curves.step_to_time(steps, clock.steps, curves.bounded(clock.values), start)
        return None if times is None else curves.bounded(times)
    return np.asarray(steps, dtype=np.float64)


def data_extent(runs: list[Run], clocks: dict[str, Series], axis: str) -> tuple[float, float]:
    """Left and right end of the data on the x axis, over all runs."""
    right = 1.0
    for run in runs:
        xs = x_of(run, np.array([run.step]), axis, clocks.get(run.id))
        if xs is not None and np.isfinite(xs[0]):
            right = max(right, float(xs[0]))
    return 0.0, right


@dataclass
class Curve:
    """A line ready to draw: x in axis units, raw and smoothed y."""

    line: Line
    color: Color
    marker: str
    xs: np.ndarray
    raw: np.ndarray
    smooth: np.ndarray | None


class MetricPlot(PlotextPlot):
    """The plot part of a panel; `lines`, `legend` and `notes` describe the last draw."""

    def __init__(self, panel: Panel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.panel = panel
        self.lines: list[Line] = []
        self.legend = Text()
        self.notes = Text()
        self.keys: list[tuple[str, Color, str, Series]] = []  # label, colour, marker, series of each curve
        self.y_range: tuple[float, float] | None = None
        self.off_scale = 0
        self.empty = True
        self.draws = 0  # how often the data was rebuilt; stays put while nothing changes
        self._drawn: tuple | None = None
        self._strips: list[Strip] | None = None  # the figure's rows, as last built
        self._strips_key: tuple | None = None  # (draws, size, theme) they were built for

    def log_scale(self, view: ViewState) -> bool:
        """Panels whose values span decades (gradient norms) start in log
        scale; the `y` key flips every panel."""
        return view.log_y != self.panel.log_by_default

    def lines_for(self, runs: list[Run], view: ViewState) -> list[Line]:
        out = []
        for run in runs:
            out.extend(line for line in self.panel.picker(run) if view.matches(line.name))
        return out

    def show_runs(self, runs: list[Run], clocks: dict[str, Series], view: ViewState, no_color: bool = False) -> bool:
        """Redraw if anything changed since the last draw; True when it did."""
        key = (tuple((id(r), r.version) for r in runs), view.version, self.size.width, self.size.height, no_color)
        if key == self._drawn:
            return False
        self._drawn = key
        self.draws += 1
        self._draw(runs, clocks, view, no_color)
        self.refresh()
        return True

    def on_resize(self) -> None:
        """A new size needs a new draw, not only new strips: ticks, epoch
        lines and buckets are chosen for the size (the first draw often
        comes before layout has settled, which left epoch lines missing on
        a cold open until something else redrew the plot)."""
        self._drawn = None
        resized = getattr(self.app, "plot_resized", None)
        if resized is not None:
            resized()

    def render_line(self, y: int) -> Strip:
        """A row of the figure, read straight from plotext's character matrix
        (show/plot_strips.py); the usual ANSI path if it cannot be read."""
        key = (self.draws, self.size, self.app.theme, self.theme)
        if key != self._strips_key:
            self._strips_key = key
            self._strips = self._figure_strips()
        if self._strips is None:
            return super().render_line(y)
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def _figure_strips(self) -> list[Strip] | None:
        """Build the figure as PlotextPlot.render does, without writing it out as ANSI."""
        width, height = self.size
        plt = self.plt
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        strips = figure_strips(plt)
        if strips is None:
            return None
        base = self.visual_style.rich_style
        return [strip.apply_style(base).crop_extend(0, width, base) for strip in strips[:height]]

    def _curves(self, runs: list[Run], clocks: dict[str, Series], view: ViewState, no_color: bool) -> list[Curve]:
        many = len(runs) > 1
        out: list[Curve] = []
        for index, run in enumerate(runs):
            lines = [line for line in self.panel.picker(run) if view.matches(line.name)]
            colors = _single_run_colors(lines)
            for line in lines:
                self.lines.append(line)
                color = RUN_COLORS[index % len(RUN_COLORS)] if many else colors[line.name]
                marker = "braille"
                if line.is_val or not line.per_step:
                    marker = "•" if (many or no_color) else "braille"
                xs = x_of(run, line.series.steps, view.x_axis, clocks.get(run.id))
                if xs is None:
                    continue
                raw = np.array(line.series.values, dtype=np.float64)
                if self.log_scale(view):
                    with np.errstate(divide="ignore", invalid="ignore"):
                        raw = np.where(raw > 0, np.log10(np.where(raw > 0, raw, 1.0)), np.where(np.isfinite(raw), -np.inf, raw))
                smooth = None
                if view.smooth and line.per_step and len(raw) >= 3 and view.smoothing > 0:
                    smooth = curves.ema(np.where(np.isneginf(raw), np.nan, raw), view.smoothing)
                out.append(Curve(line, color, marker, xs, raw, smooth))
        return out

    def _draw(self, runs: list[Run], clocks: dict[str, Series], view: ViewState, no_color: bool) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.lines = []
        self.keys = []
        self.notes = Text(no_wrap=True, overflow="ellipsis")
        self.off_scale = 0
        self.y_range = None
        curves_ = self._curves(runs, clocks, view, no_color)
        left, right = data_extent(runs, clocks, view.x_axis)
        window = view.window(right, left)
        x_lo, x_hi = window if window is not None else (left, right)

        # y range from what is visible
        visible = []
        for c in curves_:
            keep = (c.xs >= x_lo) & (c.xs <= x_hi)
            visible.append(c.raw[keep][np.isfinite(c.raw[keep])])
        pool = curves.bounded(np.concatenate(visible)) if visible else np.array([])
        y_range = (curves.robust_range(pool) if view.robust else curves.full_range(pool)) if len(pool) else None
        self.empty = y_range is None
        buckets = max(self.size.width // 2, 20)  # braille: 2 points per cell, min and max per bucket
        many = len(runs) > 1
        first_bad: tuple[float, int] | None = None
        names = short_labels([run.id for run in runs])
        for c in curves_:
            label = printable(c.line.name if not many else f"{names[c.line.run]}:{c.line.name}", 40)
            self.keys.append((label, c.color, c.marker, c.line.series))
            bad = ~np.isfinite(c.raw) & ~np.isneginf(c.raw) if self.log_scale(view) else ~np.isfinite(c.raw)
            if bad.any():
                at = int(np.argmax(bad))
                if first_bad is None or c.xs[at] < first_bad[0]:
                    first_bad = (float(c.xs[at]), int(c.line.series.steps[at]))
            if y_range is None:
                continue
            lo, hi = y_range
            layers = []
            if c.smooth is not None:
                if not no_color:
                    layers.append((c.raw, faint(c.color), "braille"))
                layers.append((c.smooth, c.color, c.marker))
            else:
                layers.append((c.raw, c.color, c.marker))
            for ys, color, marker in layers:
                xs, ys = curves.crop(c.xs, ys, window)
                finite = np.isfinite(ys)
                xs, ys = xs[finite], ys[finite]
                if not len(xs):
                    continue
                xs, ys = downsample(xs, ys, buckets)
                plt.plot(xs.tolist(), np.clip(ys, lo, hi).tolist(), color=color, marker=marker)
            # mark raw points beyond the range at the edge they were clipped to
            xs, ys = curves.crop(c.xs, c.raw, window)
            out_hi, out_lo = xs[ys > hi], xs[np.isfinite(ys) & (ys < lo)]
            for out, edge, marker in ((out_hi, hi, "▲"), (out_lo, lo, "▼")):
                if len(out):
                    shown = _one_per_column(out, x_lo, x_hi, buckets)  # one per two cells; the legend counts all
                    plt.scatter(shown.tolist(), [edge] * len(shown), marker=marker, color=ALERT_COLOR)
            self.off_scale += len(out_hi) + len(out_lo)

        if y_range is not None:
            self._boundaries(runs, clocks, view, x_lo, x_hi)
            if first_bad is not None and x_lo <= first_bad[0] <= x_hi:
                plt.vline(first_bad[0], ALERT_COLOR)
            if view.marker is not None:
                self._alert_marker(runs, clocks, view, x_lo, x_hi)
            self._axes(y_range, view, x_lo, x_hi)
            self.y_range = y_range
        else:
            plt.xlim(x_lo, x_hi)
        if first_bad is not None:
            self.notes.append(f"non-finite from step {first_bad[1]}", style="bold red")
        if self.off_scale:
            self.notes.append(("  " if self.notes else "") + f"{self.off_scale} off-scale ▲▼", style="red")
        self.legend = self.legend_text()
        if not self.lines:
            self.legend.append("(filtered out)" if view.filter else "(no data yet)", style="dim")

    def legend_text(self) -> Text:
        """Each curve's key and its latest value: the value changes with every
        record, so the app refreshes this line at once, ahead of the paced
        redraw of the plot itself."""
        legend = Text(no_wrap=True, overflow="ellipsis")
        for label, color, marker, series in self.keys:
            if legend:
                legend.append("  ")
            legend.append("━ " if marker == "braille" else "• ", style=rich_color(color))
            legend.append(label)
            last = series.last()
            if last is not None:
                legend.append(f" {curves.format_value(last[1])}", style="bold")
        return legend

    def _boundaries(self, runs: list[Run], clocks: dict[str, Series], view: ViewState, x_lo: float, x_hi: float) -> None:
        """Epoch boundaries on per-step curves, faint, unless too dense to help."""
        if not any(line.per_step for line in self.lines) or not runs:
            return
        run = runs[-1]
        if not run.epoch_steps:
            return
        xs = x_of(run, np.asarray(run.epoch_steps), view.x_axis, clocks.get(run.id))
        if xs is None:
            return
        xs = xs[(xs > x_lo) & (xs < x_hi)]
        if 0 < len(xs) <= min(MAX_BOUNDARIES, max(self.size.width // 4, 1)):
            for x in xs:
                self.plt.vline(float(x), BOUNDARY_COLOR)

    def _alert_marker(self, runs: list[Run], clocks: dict[str, Series], view: ViewState, x_lo: float, x_hi: float) -> None:
        run_id, step = view.marker  # type: ignore[misc]
        run = next((r for r in runs if r.id == run_id), None)
        if run is None:
            return
        xs = x_of(run, np.array([step]), view.x_axis, clocks.get(run.id))
        if xs is not None and x_lo <= xs[0] <= x_hi:
            self.plt.vline(float(xs[0]), (255, 0, 255))
            self.notes.append(("  " if self.notes else "") + f"│ alert at step {step}", style="bold magenta")

    def _axes(self, y_range: tuple[float, float], view: ViewState, x_lo: float, x_hi: float) -> None:
        plt = self.plt
        lo, hi = y_range
        pad = (hi - lo) * 0.04
        plt.ylim(lo - pad, hi + pad)
        rows = max(3, min(6, self.size.height // 3))
        if self.log_scale(view):
            ticks, labels = curves.log_ticks(lo, hi)
        else:
            ticks = curves.nice_ticks(lo, hi, rows)
            if len(ticks) >= 2 and ticks[0] - lo > 0.6 * (ticks[1] - ticks[0]):
                ticks.insert(0, float(f"{lo:.2g}"))  # label the bottom of the curve too
            labels = [curves.format_tick(t) for t in ticks]
        plt.yticks(ticks, labels)
        if x_hi <= x_lo:
            x_hi = x_lo + 1
        plt.xlim(x_lo, x_hi)
        columns = max(2, min(8, self.size.width // 14))
        xticks = curves.nice_ticks(x_lo, x_hi, columns, integer=view.x_axis == "step")
        plt.xticks(xticks, [_x_label(t, view.x_axis) for t in xticks])


def _one_per_column(xs: np.ndarray, x_lo: float, x_hi: float, columns: int) -> np.ndarray:
    """The first of `xs` in each of `columns` equal slices of [x_lo, x_hi]."""
    if x_hi <= x_lo:
        return xs[:1]
    slots = np.floor((xs - x_lo) / (x_hi - x_lo) * columns)
    _, first = np.unique(slots, return_index=True)
    return xs[np.sort(first)]


def _single_run_colors(lines: list[Line]) -> dict[str, Color]:
    """Training cyan, its validation twin orange, anything else its own colour."""
    names = {line.name for line in lines}
    colors: dict[str, Color] = {}
    extra = iter(LINE_COLORS * 8)
    trains = [line.name for line in lines if not line.is_val]
    for line in lines:
        if not line.is_val and line.name == trains[0]:
            colors[line.name] = TRAIN_COLOR
        elif line.is_val and line.name[4:] in names and colors.get(line.name[4:]) == TRAIN_COLOR:
            colors[line.name] = VAL_COLOR
        else:
            colors[line.name] = next(extra, (255, 255, 255))
    return colors


def _x_label(value: float, axis: str) -> str:
    if axis == "time" and abs(value) < 1e9:
        seconds = int(round(value))
        if abs(value) >= 3600:
            return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"
        if abs(value) >= 60:
            return f"{seconds // 60}m{seconds % 60:02d}"
        return curves.format_tick(value) + "s"
    return curves.format_tick(value)


class PlotPanel(Vertical):
    """A title-and-legend line over a MetricPlot."""

    def __init__(self, panel: Panel) -> None:
        super().__init__(id=f"{panel.key}-panel", classes="plot-panel")
        self.panel = panel
        self.plot = MetricPlot(panel, id=f"{panel.key}-plot")
        self._log = False  # the last draw was in log scale
        self._shown: str | None = None  # the title line on screen

    def compose(self) -> ComposeResult:
        yield Static(Text(self.panel.title, style="bold"), classes="plot-legend")
        yield self.plot

    def has_data(self, runs: list[Run], view: ViewState) -> bool:
        return bool(self.plot.lines_for(runs, view))

    def on_resize(self) -> None:
        self.show_values()  # what the title line can hold depends on its width

    def show_runs(self, runs: list[Run], clocks: dict[str, Series], view: ViewState, no_color: bool = False) -> bool:
        """Redraw the plot if anything changed; True when it did."""
        if not self.plot.show_runs(runs, clocks, view, no_color):
            return False
        self._log = self.plot.log_scale(view)
        self.show_values()
        return True

    def show_values(self) -> None:
        """The title line with each curve's latest value: cheap, so it is
        updated for every new record while the plot redraws are paced.
        Where the line is too short, the values stay: the off-scale note
        goes first (the plot's own arrows mark those points), then the
        panel's title if that makes them fit (the curves' names say it)."""
        plot = self.plot
        legend = plot.legend_text() if plot.keys else plot.legend  # no curves: "(no data yet)"
        line = self.query_one(".plot-legend", Static)
        width = line.size.width or 10**6
        title = self.panel.title + (" (log)" if self._log else "")
        short = "(log)" if self._log else ""
        if len(title) + 2 + legend.cell_len > width and len(short) + 2 + legend.cell_len <= width:
            title = short  # without it, the values fit
        header = Text(no_wrap=True, overflow="ellipsis")
        if title:
            header.append(title, style="bold")
            header.append("  ")
        header.append_text(legend)
        if plot.notes and header.cell_len + 2 + plot.notes.cell_len <= width:
            header.append("  ")
            header.append_text(plot.notes)
        if header.plain != self._shown:
            self._shown = header.plain
            line.update(header, layout=False)  # one line: no layout pass
