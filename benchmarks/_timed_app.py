"""A WatchApp that notes when each data change reached the screen.

It notes when a DataChanged arrived and, through call_after_refresh, when
the screen refresh after the app's data draw was painted (the app may defer
that draw while records stream in), and when the refresh of the latest
values (legends, status line), which is never deferred, was painted.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path


def timed_app_class():
    from lossmon.show import app as app_module
    from lossmon.show.app import DataChanged, WatchApp

    class TimedApp(WatchApp):
        CSS_PATH = str(Path(app_module.__file__).parent / WatchApp.CSS_PATH)  # relative to the app's module

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.painted: list[tuple[float, int, int]] = []  # (when, records, alerts)
            self.values_painted: list[tuple[float, int]] = []  # (when, records) of the legend/status refresh
            self.redraws: list[float] = []  # seconds from a DataChanged to its paint
            self.draw_costs: list[float] = []  # seconds from the start of a draw to its paint

        def on_data_changed(self, message: DataChanged) -> None:
            self._changed_at = time.perf_counter()
            super().on_data_changed(message)

        def _draw_new_data(self) -> None:
            # The app may defer a draw (coalescing while records stream):
            # time the draw that actually puts the data on screen.
            records, alerts = self.monitor.records, len(self.monitor.engine.alerts)
            started = getattr(self, "_changed_at", time.perf_counter())
            drawing = time.perf_counter()
            super()._draw_new_data()

            def done() -> None:
                now = time.perf_counter()
                self.painted.append((now, records, alerts))
                self.redraws.append(now - started)
                self.draw_costs.append(now - drawing)

            self.call_after_refresh(done)

        def refresh_values(self) -> None:
            # Every record's numbers (legend values, step counter) are drawn at once.
            records = self.monitor.records
            super().refresh_values()
            self.call_after_refresh(lambda: self.values_painted.append((time.perf_counter(), records)))

        def refresh_alerts(self) -> None:
            # New alerts are drawn at once, ahead of the curves: note that paint too.
            alerts = len(self.monitor.engine.alerts)
            super().refresh_alerts()
            self.call_after_refresh(lambda: self.painted.append((time.perf_counter(), 0, alerts)))

    return TimedApp


async def painted(app, records: int = 0, alerts: int = 0) -> float:
    """Wait for the first refresh that shows at least that many records/alerts."""
    while True:
        for when, r, a in app.painted:
            if r >= records and a >= alerts:
                return when
        await asyncio.sleep(0.001)


async def values_shown(app, records: int) -> float:
    """Wait for the first legend/status refresh that shows that many records."""
    while True:
        for when, r in app.values_painted:
            if r >= records:
                return when
        await asyncio.sleep(0.001)
