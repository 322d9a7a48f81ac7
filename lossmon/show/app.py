"""`lossmon watch`: the Textual app that tails run files and shows curves and alerts.

A reader thread waits for file events, reads new lines and runs them through
the model and the detectors (see lossmon.monitor); it then posts a
`DataChanged` message and the UI redraws what changed. Keys come from
lossmon.show.keys, which also feeds the help screen and the command palette.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from lossmon.detect import Engine
from lossmon.model.health import TimedStore
from lossmon.model.run import MAX_NAMES
from lossmon.monitor import Monitor
from lossmon.show.ticks import feed_ticks, stalled_runs
from lossmon.read import FileWatcher
from lossmon.read.pacer import ReadPacer
from lossmon.show.keys import KEYS, bindings
from lossmon.show.notify import AlertNotifier
from lossmon.show.panels import PANELS
from lossmon.show.safe import printable
from lossmon.show.view import ViewState
from lossmon.show.widgets.alert_panel import AlertPanel
from lossmon.show.widgets.alert_screen import AlertScreen
from lossmon.show.widgets.filter_screen import FilterScreen
from lossmon.show.widgets.help_screen import HelpScreen
from lossmon.show.widgets.metric_plot import PlotPanel, data_extent, x_of
from lossmon.show.widgets.status_line import StatusLine, status_text

MAX_RUNS_SHOWN = 6
TICK_SECONDS = 1.0  # how often silent runs are judged (the stalled detector)
# Redraws on new data: at once after a quiet spell (low latency), but while
# records stream in, at most one per DRAW_COST_FACTOR times the cost of the
# last draw (so drawing takes about 1% of a core), within these bounds. The
# legends' latest values and the status line follow every record at once,
# unless new data keeps coming within STREAMING_GAP: then once per
# VALUES_GAP. A new or resolved alert is painted at once. Together these
# keep `watch` under 5% of a core while a run writes 100 records a second
# (benchmarks/idle_cpu.py) and show a record a second as it comes.
DRAW_COST_FACTOR = 100.0
MIN_DRAW_GAP = 0.2
MAX_DRAW_GAP = 8.0
EMPTY_DRAW_GAP = 1.0  # while the plots show no curve yet
VALUES_GAP = 1.0
STREAMING_GAP = 0.5
ALERT_FIRST = 0.05  # seconds a plot redraw waits behind a new alert's paint
PANEL_MIN_HEIGHT = 9
WIDE_PLOTS = 110  # plot area this wide or wider gets two columns of panels


@dataclass
class DataChanged(Message):
    """New records were read; `alerts` is how many alerts opened or resolved."""

    records: int
    alerts: int


class WatchApp(App[None]):
    """Live curves and alerts for one or more run files."""

    CSS_PATH = "app.tcss"
    TITLE = "lossmon"
    BINDINGS = bindings()

    def __init__(
        self,
        paths: list[str | Path],
        *,
        engine: Engine | None = None,
        polling_only: bool | None = None,
        poll_interval: float = 2.0,
        notifier: AlertNotifier | None = None,
    ) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.store = TimedStore()
        self.monitor = Monitor(self.paths, engine=engine, store=self.store)
        self.polling_only = polling_only
        self.poll_interval = poll_interval
        self.notifier = notifier or AlertNotifier()
        self.view = ViewState()
        self.watch_mode = "starting"
        self.clock = time.time  # what "last record Ns ago" is measured against
        self.bells = 0
        self._last_draw = 0.0  # monotonic time of the last data-driven draw
        self._draw_cost = 0.0  # seconds the last one took, rendering included
        self._draw_timer: Timer | None = None
        self._last_values = 0.0  # monotonic time of the last refresh of the latest values
        self._last_data = 0.0  # monotonic time of the last DataChanged
        self._values_timer: Timer | None = None
        self._resize_pending = False  # a redraw for a plot that got a new size is on its way
        self._status_shown: str | None = None
        self._stop = threading.Event()
        self._data_posted = threading.Event()  # a DataChanged is on its way to the UI
        self._caught_up = threading.Event()  # the files' history has been read once
        self._primed = False  # the history's alerts are marked as announced
        self._history_drawn = False  # a frame with all of the history has been drawn
        self._watchers = [FileWatcher(p, poll_interval=poll_interval, polling_only=polling_only) for p in self.paths]

    # -- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with Horizontal(id="body"):
            with Container(id="plots"):
                for panel in PANELS:
                    yield PlotPanel(panel)
            yield AlertPanel(id="alerts")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        # Kept, so updates reach them while a help or details screen is on top.
        self.alert_panel = self.query_one(AlertPanel)
        self.status_line = self.query_one(StatusLine)
        self.plot_panels = list(self.query(PlotPanel))
        self.plots_box = self.query_one("#plots")
        self.title_bar = self.query_one("#title", Static)
        self.refresh_views()
        self.set_interval(1.0, self._status_tick)
        self.read_files()

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_views)

    def plot_resized(self) -> None:
        """A plot got a new size (layout settling, a panel shown or hidden):
        redraw the plots once, after this layout pass."""
        if not self._resize_pending:
            self._resize_pending = True
            self.call_after_refresh(self._after_plot_resize)

    def _after_plot_resize(self) -> None:
        self._resize_pending = False
        self.refresh_views()

    # -- reading --------------------------------------------------------------

    @work(thread=True, exclusive=True, group="reader")
    def read_files(self) -> None:
        """Reader thread: wait for a file event (or the poll timer), then read."""
        watchers = self._watchers
        for watcher in watchers:
            watcher.start()
        self.watch_mode = "polling" if any(w.mode == "polling" for w in watchers) else "inotify"
        next_tick = time.monotonic() + TICK_SECONDS
        pacer = ReadPacer(watchers[0], self._stop) if len(watchers) == 1 else None
        try:
            while not self._stop.is_set():
                update = self.monitor.poll()
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_SECONDS
                    ticked = feed_ticks(self.monitor, self.clock())
                    update.alerts.extend(ticked)
                    update.news += len(self.monitor.engine.news)  # opened (or came back) or resolved
                if not update.more:
                    self._caught_up.set()  # before the message, so the UI sees it with the data
                if (update.records or update.alerts or update.notices) and not self._data_posted.is_set():
                    # One message in flight is enough: the UI reads the model, not the message.
                    self._data_posted.set()
                    # Alerts that opened or resolved are drawn at once; updates of open ones can wait.
                    self.post_message(DataChanged(update.records, update.news))
                if update.more:
                    continue
                # One watcher wakes us directly; with several files, poll them in turn.
                if pacer is not None:
                    pacer.wait(min(self.poll_interval, TICK_SECONDS), got_records=update.records > 0)
                else:
                    self._stop.wait(min(0.25, self.poll_interval))
        finally:
            for watcher in watchers:
                watcher.stop()

    def on_data_changed(self, message: DataChanged) -> None:
        self._data_posted.clear()
        if message.alerts:
            self.refresh_alerts()  # alerts are the point: never wait for the curves
        self._values_due()  # the latest numbers too: one line per panel, cheap
        if self._caught_up.is_set() and not self._history_drawn:
            # The history is all read: the first full frame, at once, not
            # seconds later at the pace of a stream.
            self._history_drawn = True
            if self._draw_timer is not None:
                self._draw_timer.stop()
                self._draw_timer = None
            self._last_draw = 0.0
        if self._draw_timer is not None:
            return  # a draw is already due; it will show these records too
        gap = min(MAX_DRAW_GAP, max(MIN_DRAW_GAP, DRAW_COST_FACTOR * self._draw_cost))
        if all(p.plot.empty for p in self.plot_panels if p.display):
            gap = min(gap, EMPTY_DRAW_GAP)  # a run's first curves: soon, not after a paced wait
        wait = self._last_draw + gap - time.monotonic()
        if message.alerts:
            wait = max(wait, ALERT_FIRST)  # let the alert's frame go out before the plots' costly one
        if wait <= 0:
            self._draw_new_data()
        else:
            self._draw_timer = self.set_timer(wait, self._draw_new_data)

    def _values_due(self) -> None:
        """Refresh the latest values now; while records stream (new data
        within STREAMING_GAP of the last), once VALUES_GAP has passed."""
        now = time.monotonic()
        streaming = now - self._last_data < STREAMING_GAP
        self._last_data = now
        if self._values_timer is not None:
            return
        wait = self._last_values + VALUES_GAP - now if streaming else 0.0
        if wait > 0:
            self._values_timer = self.set_timer(wait, self._values_now)
        else:
            self._values_now()

    def _values_now(self) -> None:
        self._values_timer = None
        self._last_values = time.monotonic()
        self.refresh_values()

    def _draw_new_data(self) -> None:
        self._draw_timer = None
        start = time.perf_counter()
        if not self.refresh_views():
            return  # nothing new on the plots: no draw to pace from, and no measure of a draw's cost
        self._last_draw = time.monotonic()

        def painted() -> None:  # the cost is the whole of it: data, plotext and compositing
            self._draw_cost = time.perf_counter() - start

        self.call_after_refresh(painted)

    # -- drawing --------------------------------------------------------------

    def shown_runs(self) -> list:
        return list(self.store.runs.values())[-MAX_RUNS_SHOWN:]

    def _showing(self) -> bool:
        """Whether the widgets are there to update: mounted, and the app not
        shutting down (its last messages are handled as it closes them)."""
        return hasattr(self, "alert_panel") and self.is_running and self.alert_panel.is_attached

    def refresh_views(self) -> bool:
        """Plots, alerts and title from the model; True when a plot was redrawn."""
        if not self._showing():
            return False
        drawn = False
        with self.monitor.lock:
            runs = self.shown_runs()
            self._layout(runs)
            for plot_panel in self.plot_panels:
                if plot_panel.display:
                    drawn = plot_panel.show_runs(runs, self.store.clocks, self.view, self.no_color) or drawn
        self.refresh_alerts()
        self._refresh_title()
        return drawn

    def refresh_values(self) -> None:
        """Step counter and each curve's latest value, without a plot redraw."""
        if not self._showing():
            return
        with self.monitor.lock:
            for plot_panel in self.plot_panels:
                if plot_panel.display:
                    plot_panel.show_values()
        self.refresh_status()

    def refresh_alerts(self) -> None:
        """The alert panel, the bell and --on-alert, and the status line:
        cheap, so they are updated at once even while curve redraws wait."""
        if not self._showing():
            return
        panel = self.alert_panel
        with self.monitor.lock:
            alerts = self.monitor.engine.alerts
            panel.show_alerts(alerts, many_runs=len(self.store.runs) > 1)
            if self._caught_up.is_set() and not self._primed:
                self.notifier.prime(alerts)  # the history's alerts: shown, not announced
                self._primed = True
            fresh = self.notifier.fresh(alerts, panel.muted) if self._primed else []
        if fresh:
            if self.notifier.wants_bell(fresh):
                self.bells += 1
                self.bell()
            self.notifier.run_command(fresh)
        self.refresh_status()

    def _layout(self, runs: list) -> None:
        """Show the panels that have data, as many as fit; two columns when wide."""
        plots = self.plots_box
        panels = self.plot_panels
        wanted = [p for p in panels if p.panel.key == "loss" or p.has_data(runs, self.view)]
        if self.view.filter and len(wanted) > 1:
            wanted = [p for p in wanted if p.has_data(runs, self.view)] or wanted[:1]
        width, height = plots.size.width or self.size.width, plots.size.height or self.size.height
        columns = 2 if width >= WIDE_PLOTS and len(wanted) >= 3 else 1
        rows_fit = max(1, height // PANEL_MIN_HEIGHT)
        wanted = wanted[: rows_fit * columns]
        for p in panels:
            p.display = p in wanted
            p.styles.column_span = 2 if columns == 2 and p is wanted[-1] and len(wanted) % 2 else 1
        plots.styles.grid_size_columns = columns
        plots.styles.grid_size_rows = max(1, -(-len(wanted) // columns))

    def _refresh_title(self) -> None:
        names = ", ".join(printable(p.name, 40) for p in self.paths)
        view = self.view
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("lossmon ", style="bold")
        modes = Text()
        modes.append(f"smooth {view.smoothing:.1f}" if view.smooth else "raw", style="bold")
        modes.append(" · log" if view.log_y else " · linear")
        modes.append(f" · x {view.x_axis}")
        if not view.robust:
            modes.append(" · full range")
        if view.filter:
            modes.append(f" · filter {printable(view.filter, 30)!s}", style="bold yellow")
        if view.following:
            modes.append(" · following" + (" (zoomed)" if view.span is not None else ""), style="green")
        else:
            modes.append(" · PAUSED", style="bold yellow")
        room = max(10, self.size.width - 4 - len(modes.plain) - 8)
        text.append(printable(names, room), style="dim")
        text.append("  ")
        text.append_text(modes)
        self.title_bar.update(text, layout=False)  # one fixed line: no layout pass

    def _status_tick(self) -> None:
        """Once a second, for "last record Ns ago"; while records stream the
        refresh of the latest values shows the status too."""
        if time.monotonic() - self._last_data >= STREAMING_GAP:
            self.refresh_status()

    def refresh_status(self) -> None:
        if not self._showing():
            return
        with self.monitor.lock:
            runs = self.shown_runs()
            states = []
            for source in self.monitor.sources:
                if source.status == "waiting":
                    states.append(f"waiting for {printable(source.path.name, 60)}")
                elif source.status == "error":
                    states.append(printable(source.error or "read error", 120))
            if self.monitor.notices:
                states.append(printable(self.monitor.notices[-1], 120))
            if any(run.names_dropped for run in self.store.runs.values()):
                states.append(f"over {MAX_NAMES} metric names of a kind: the rest not kept")
            if self.store.evicted_runs:
                states.append(f"{self.store.evicted_runs} older runs dropped (the newest {self.store.max_runs} kept)")
            states.extend(self.notifier.failures[-1:])
            text = status_text(runs, self.store.clocks, "; ".join(states), self.monitor.malformed, self.watch_mode,
                               self.clock(), pinned=not self.view.following, stalled=stalled_runs(self.monitor))
        if text.plain != self._status_shown:  # a second passing changes nothing most of the time
            self._status_shown = text.plain
            self.status_line.update(text, layout=False)  # one fixed line: no layout pass

    def _view_changed(self) -> None:
        self.view.changed()
        self.refresh_views()

    def _extent(self) -> tuple[float, float]:
        with self.monitor.lock:
            return data_extent(self.shown_runs(), self.store.clocks, self.view.x_axis)

    # -- actions (keys in lossmon.show.keys) -----------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_smoothing(self) -> None:
        self.view.smooth = not self.view.smooth
        self._view_changed()

    def action_smoothing(self, delta: float) -> None:
        self.view.smoothing = round(min(0.99, max(0.0, self.view.smoothing + delta)), 2)
        if self.view.smoothing >= 0.95 and delta > 0:
            self.view.smoothing = 0.95
        self.view.smooth = self.view.smoothing > 0
        self._view_changed()

    def action_toggle_log(self) -> None:
        self.view.log_y = not self.view.log_y
        self._view_changed()

    def action_toggle_robust(self) -> None:
        self.view.robust = not self.view.robust
        self._view_changed()

    def action_next_x_axis(self) -> None:
        self.view.next_x_axis()
        self._view_changed()

    def action_zoom(self, factor: float) -> None:
        left, right = self._extent()
        self.view.zoom(factor, left, right)
        self.refresh_views()

    def action_pan(self, fraction: float) -> None:
        left, right = self._extent()
        self.view.pan(fraction, left, right)
        self.refresh_views()

    def action_follow(self) -> None:
        self.view.follow()
        self.refresh_views()

    def action_filter(self) -> None:
        def apply(value: str | None) -> None:
            if value is not None:
                self.view.filter = value
                self._view_changed()

        self.push_screen(FilterScreen(self.view.filter), apply)

    def action_mute(self) -> None:
        panel = self.alert_panel
        alert = panel.selected
        if alert is None:
            self.notify("No alert selected.", severity="warning")
            return
        panel.mute(alert.detector)
        self.notify(f"Muted {printable(alert.detector, 40)} for this session (M unmutes).")

    def action_unmute_all(self) -> None:
        panel = self.alert_panel
        for detector in list(panel.muted):
            panel.mute(detector, muted=False)

    def action_clear_marker(self) -> None:
        if self.view.marker is not None:
            self.view.marker = None
            self._view_changed()

    def on_alert_panel_opened(self, message: AlertPanel.Opened) -> None:
        alert = message.alert
        self.view.marker = (alert.run, alert.step)
        with self.monitor.lock:
            run = self.store.runs.get(alert.run)
            if run is not None and self.view.span is not None:
                xs = x_of(run, [alert.step], self.view.x_axis, self.store.clocks.get(run.id))
                left, right = data_extent(self.shown_runs(), self.store.clocks, self.view.x_axis)
                window = self.view.window(right, left)
                if xs is not None and window is not None and not window[0] <= xs[0] <= window[1]:
                    self.view.right = float(xs[0]) + self.view.span / 2
        self._view_changed()
        self.push_screen(AlertScreen(alert))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key in KEYS:
            if key.action != "quit":
                yield SystemCommand(key.description, f"key: {key.label}", lambda a=key.action: self.run_action(a))

    def on_unmount(self) -> None:
        self._stop.set()
        for watcher in self._watchers:
            watcher.stop()  # wakes the reader thread if it is waiting
