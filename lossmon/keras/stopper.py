"""`stop_on`: run the detectors inside the training process and stop `fit`.

Like `keras.callbacks.TerminateOnNaN`, but for every detector: the records
the callback writes are fed, as they are written, to the same detectors
`lossmon watch` runs, and the first alert at the chosen severity or above
stops the training. The detectors never import TensorFlow and cost a few
microseconds per record.
"""

from __future__ import annotations

from typing import Any

from lossmon.detect import Alert, Engine, Severity, available_detectors
from lossmon.format import to_record

LEVELS = ("warning", "critical")


class Stopper:
    """Feeds records to a detection engine; remembers the first alert at `level`."""

    def __init__(self, level: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"stop_on must be one of {LEVELS} or None, not {level!r}")
        self.level = Severity(level)
        self.engine = Engine(available_detectors())
        self.alert: Alert | None = None

    def feed(self, record: dict[str, Any]) -> Alert | None:
        """Observe one record; return the alert that should stop the run, once."""
        if self.alert is not None:
            return None
        parsed = to_record(record)
        if parsed is None:
            return None
        for alert in self.engine.feed(parsed):
            if alert.active and alert.severity.rank >= self.level.rank:
                self.alert = alert
                return alert
        return None

    @property
    def reason(self) -> str | None:
        if self.alert is None:
            return None
        return f"stop_on={self.level.value}: {self.alert.detector}: {self.alert.message}"
