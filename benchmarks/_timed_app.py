"""A WatchApp that notes when each data change reached the screen.

Textual calls message handlers along the class hierarchy, subclass first,
so the app's own DataChanged handler still runs (and redraws); this one only
notes the time it started and, through call_after_refresh, the time the
next screen refresh was painted.
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
            self.redraws: list[float] = []  # seconds from a DataChanged to its paint

        def on_data_changed(self, message: DataChanged) -> None:
            started = time.perf_counter()
            records, alerts = self.monitor.records, len(self.monitor.engine.alerts)

            def done() -> None:
                now = time.perf_counter()
                self.painted.append((now, records, alerts))
                self.redraws.append(now - started)

            self.call_after_refresh(done)

    return TimedApp


async def painted(app, records: int = 0, alerts: int = 0) -> float:
    """Wait for the first refresh that shows at least that many records/alerts."""
    while True:
        for when, r, a in app.painted:
            if r >= records and a >= alerts:
                return when
        await asyncio.sleep(0.001)
