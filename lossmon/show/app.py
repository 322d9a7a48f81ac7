"""`lossmon watch`: the Textual app that tails run files and shows curves and alerts.

A reader thread waits for file events, reads new lines and runs them through
the model and the detectors (see lossmon.monitor); it then posts a
`DataChanged` message and the UI redraws what changed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Static

from lossmon.detect import Engine
from lossmon.monitor import Monitor
from lossmon.read import FileWatcher
from lossmon.show.safe import printable
from lossmon.show.widgets.alert_panel import AlertPanel
from lossmon.show.widgets.metric_plot import MetricPlot, accuracy_lines, loss_lines
from lossmon.show.widgets.status_line import StatusLine, status_text


@dataclass
class DataChanged(Message):
    """New records were read; `alerts` is how many alerts changed."""

    records: int
    alerts: int


class WatchApp(App[None]):
    """Live curves and alerts for one or more run files."""

    CSS_PATH = "app.tcss"
    TITLE = "lossmon"
    BINDINGS = [Binding("q", "quit", "Quit")]

    def __init__(
        self,
        paths: list[str | Path],
        *,
        engine: Engine | None = None,
        polling_only: bool | None = None,
        poll_interval: float = 2.0,
    ) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.monitor = Monitor(self.paths, engine=engine)
        self.polling_only = polling_only
        self.poll_interval = poll_interval
        self.watch_mode = "starting"
        self.clock = time.time  # what "last record Ns ago" is measured against
        self._stop = threading.Event()
        self._watchers = [FileWatcher(p, poll_interval=poll_interval, polling_only=polling_only) for p in self.paths]

    def compose(self) -> ComposeResult:
        names = ", ".join(printable(p.name, 60) for p in self.paths)
        yield Static(Text(f"lossmon · {names}", no_wrap=True, overflow="ellipsis"), id="title")
        with Horizontal(id="body"):
            with Vertical(id="plots"):
                yield MetricPlot("loss", loss_lines, id="loss-plot")
                yield MetricPlot("accuracy", accuracy_lines, id="accuracy-plot")
            yield AlertPanel(id="alerts")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_views()
        self.set_interval(1.0, self.refresh_status)
        self.read_files()

    @work(thread=True, exclusive=True, group="reader")
    def read_files(self) -> None:
        """Reader thread: wait for a file event (or the poll timer), then read."""
        watchers = self._watchers
        for watcher in watchers:
            watcher.start()
        self.watch_mode = "polling" if any(w.mode == "polling" for w in watchers) else "inotify"
        try:
            while not self._stop.is_set():
                update = self.monitor.poll()
                if update.records or update.alerts or update.notices:
                    self.post_message(DataChanged(update.records, len(update.alerts)))
                if update.more:
                    continue
                # One watcher wakes us directly; with several files, poll them in turn.
                if len(watchers) == 1:
                    watchers[0].wait(self.poll_interval)
                else:
                    self._stop.wait(0.25)
        finally:
            for watcher in watchers:
                watcher.stop()

    def on_data_changed(self, message: DataChanged) -> None:
        self.refresh_views()

    def refresh_views(self) -> None:
        with self.monitor.lock:
            run = self.monitor.store.latest
            for plot in self.query(MetricPlot):
                plot.show_run(run)
            self.query_one(AlertPanel).show_alerts(self.monitor.engine.alerts)
            self.refresh_status()

    def refresh_status(self) -> None:
        with self.monitor.lock:
            run = self.monitor.store.latest
            states = []
            for source in self.monitor.sources:
                if source.status == "waiting":
                    states.append(f"waiting for {printable(source.path.name, 60)}")
                elif source.status == "error":
                    states.append(printable(source.error or "read error", 120))
            if self.monitor.notices:
                states.append(self.monitor.notices[-1])
            text = status_text(run, "; ".join(states), self.monitor.malformed, self.watch_mode, self.clock())
        self.query_one(StatusLine).update(text)

    def on_unmount(self) -> None:
        self._stop.set()
        for watcher in self._watchers:
            watcher.stop()  # wakes the reader thread if it is waiting
