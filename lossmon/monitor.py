"""The pipeline in one place: read → model → detect, for one or more files.

`lossmon check` drives it to the end of the files once; `lossmon watch`
drives it from a reader thread and draws from the UI thread, taking `lock`
for both, so the model is never drawn half-updated.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from lossmon.detect import Alert, Engine, available_detectors
from lossmon.model import RunStore
from lossmon.read import Tailer


@dataclass
class Source:
    """One run file and what reading it has met so far."""

    path: Path
    tailer: Tailer

    @property
    def status(self) -> str:
        return self.tailer.status

    @property
    def error(self) -> str | None:
        return self.tailer.error

    @property
    def malformed(self) -> int:
        return self.tailer.malformed


@dataclass
class Update:
    """What one poll changed."""

    records: int = 0
    alerts: list[Alert] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    more: bool = False  # unread bytes remain: poll again soon


class Monitor:
    """Tails files into a RunStore and an Engine."""

    def __init__(self, paths: list[str | Path], engine: Engine | None = None, store: RunStore | None = None) -> None:
        self.sources = [Source(Path(p), Tailer(Path(p))) for p in paths]
        self.engine = engine if engine is not None else Engine(available_detectors())
        self.store = store if store is not None else RunStore()
        self.lock = threading.RLock()
        self.notices: deque[str] = deque(maxlen=50)
        self.records = 0

    @property
    def malformed(self) -> int:
        return sum(source.malformed for source in self.sources)

    def poll(self) -> Update:
        """Read what is new in every file and run it through model and detectors."""
        update = Update()
        for source in self.sources:
            batch = source.tailer.poll()
            with self.lock:
                for record in batch.records:
                    self.store.add(record)
                    update.alerts.extend(self.engine.feed(record))
                self.records += len(batch.records)
                for notice in batch.notices:
                    self.notices.append(f"{source.path.name}: {notice}")
            update.records += len(batch.records)
            update.notices.extend(batch.notices)
            update.more = update.more or batch.more
        return update

    def read_to_end(self) -> None:
        """Consume everything the files hold now."""
        while self.poll().more:
            pass
