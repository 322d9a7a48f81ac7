"""Telling the outside world: the terminal bell and `--on-alert CMD`.

Only new alerts, or ones that became more severe, are announced, and never
those of muted detectors. The user's command gets the alert as one JSON
object on its standard input and runs in the background, so a slow chat
hook cannot stall the watcher.
"""

from __future__ import annotations

import subprocess
import threading
from typing import Iterable

import orjson

from lossmon.detect import Alert, Severity
from lossmon.format import json_safe

COMMAND_TIMEOUT = 30.0


class AlertNotifier:
    def __init__(self, command: str | None = None, bell: bool = False) -> None:
        self.command = command
        self.bell = bell
        self.failures: list[str] = []
        self._seen: dict[int, int] = {}  # id(alert) -> severity rank announced
        self._threads: list[threading.Thread] = []

    def fresh(self, alerts: Iterable[Alert], muted: set[str] | frozenset[str] = frozenset()) -> list[Alert]:
        """Alerts not announced yet (or now more severe); marks them announced."""
        out = []
        for alert in alerts:
            if not alert.active or alert.detector in muted:
                continue
            rank = alert.severity.rank
            if self._seen.get(id(alert), -1) < rank:
                self._seen[id(alert)] = rank
                out.append(alert)
        return out

    def prime(self, alerts: Iterable[Alert]) -> None:
        """Mark alerts as announced without announcing them: those raised by
        a file's history, read when the watcher starts, are old news."""
        for alert in alerts:
            self._seen[id(alert)] = alert.severity.rank

    def wants_bell(self, alerts: list[Alert]) -> bool:
        return self.bell and any(a.severity is Severity.CRITICAL for a in alerts)

    def run_command(self, alerts: list[Alert]) -> None:
        if not self.command:
            return
        for alert in alerts:
            payload = orjson.dumps(json_safe(alert.to_json())) + b"\n"
            thread = threading.Thread(target=self._run, args=(payload,), daemon=True)
            thread.start()
            self._threads.append(thread)
        self._threads = [t for t in self._threads if t.is_alive()]

    def _run(self, payload: bytes) -> None:
        try:
            subprocess.run(self.command, shell=True, input=payload, timeout=COMMAND_TIMEOUT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            self.failures.append(f"--on-alert failed: {exc}")

    def wait(self, timeout: float = 5.0) -> None:
        """Let running commands finish (used when a plain watch exits)."""
        for thread in self._threads:
            thread.join(timeout)
