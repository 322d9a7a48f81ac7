"""When the reader looks at a file again.

After a quiet spell, at once on a file event: a lone record shows up within
milliseconds. While records stream in, inotify fires once per append and
handling each event (watchdog's thread, a read, a message to the UI) costs
more than the record is worth; the pacer then switches file events off and
reads every `batch` seconds, many records per pass, until a pass finds
nothing new. Then events go back on, and the next record is judged afresh:
the last event seen while streaming says nothing about it.
"""

from __future__ import annotations

import threading
import time

from lossmon.read.watcher import FileWatcher


class ReadPacer:
    """Wraps a started FileWatcher; `wait()` between two reads of the file."""

    def __init__(self, watcher: FileWatcher, stop: threading.Event, *, gap: float = 0.05, batch: float = 0.1) -> None:
        self.watcher = watcher
        self.stop = stop
        self.gap = gap  # events closer than this (over 20 a second) mean records are streaming
        self.batch = batch  # seconds between reads while they stream
        self.streaming = False
        self._last_event = 0.0

    def wait(self, timeout: float, got_records: bool) -> None:
        """Block until the next read is due; `got_records`: the last read found some."""
        if self.streaming:
            if got_records:
                self.stop.wait(self.batch)
                return
            self.streaming = False  # quiet again: back to file events
            if not self.stop.is_set():
                self.watcher.start()
            self._last_event = 0.0  # or a lone record right after would count as the stream going on
            return  # read once more at once: a record may have come while events were off
        if not self.watcher.wait(timeout):
            return
        now = time.monotonic()
        if now - self._last_event < self.gap:
            self.streaming = True
            self.watcher.stop()
            self.stop.wait(self.batch)
        self._last_event = now
