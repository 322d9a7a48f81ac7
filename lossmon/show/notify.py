"""Telling the outside world: the terminal bell and `--on-alert CMD`.

They speak in incidents (lossmon/detect/engine.py): a root incident is
announced once when it opens, even when it opened and resolved between two
reads, and once more when it (or a symptom under it) escalates to
CRITICAL; never again for its flapping, never for a symptom on its own
(it comes with its cause), never for muted detectors. The user's command
gets the incident as one JSON object on its standard input (`payload`); at most
MAX_COMMANDS run at once, in the background, the rest wait their turn, so a
slow chat hook can stall neither the watcher nor the machine.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import deque
from typing import Iterable, Sequence

import orjson

from lossmon.detect import Alert, Severity
from lossmon.detect.engine import ordered
from lossmon.format import json_safe

COMMAND_TIMEOUT = 30.0
MAX_COMMANDS = 4  # --on-alert commands running at once; the rest queue


def payload(alert: Alert) -> dict:
    """What `--on-alert CMD` reads: the incident as `check --format json`
    writes it, and its symptoms' incidents in full under
    `symptom_incidents` (a hook has no list to look their ids up in)."""
    data = alert.to_json()
    data["symptom_incidents"] = [symptom.to_json() for symptom in alert.tree()[1:]]
    return data


class AlertNotifier:
    def __init__(self, command: str | None = None, bell: bool = False, max_commands: int = MAX_COMMANDS) -> None:
        self.command = command
        self.bell = bell
        self.max_commands = max(1, max_commands)
        self.failures: list[str] = []
        self.commands_run = 0
        self.most_running = 0  # the most commands that ran at once
        self._seen: dict[int, int] = {}  # id(root incident) -> severity rank announced
        self._queue: deque[bytes] = deque()
        self._workers = 0
        self._idle = threading.Condition()

    def fresh(self, alerts: Sequence[Alert], muted: set[str] | frozenset[str] = frozenset()) -> list[Alert]:
        """Root incidents to announce now (see the module's docstring);
        marks them announced."""
        out = []
        for depth, alert in ordered(alerts):
            if depth or alert.detector in muted:
                continue
            rank = alert.worst.rank
            seen = self._seen.get(id(alert))
            if seen is None or (rank == Severity.CRITICAL.rank and seen < rank):
                self._seen[id(alert)] = rank
                out.append(alert)
        return out

    def prime(self, alerts: Iterable[Alert]) -> None:
        """Mark incidents as announced without announcing them: those raised
        by a file's history, read when the watcher starts, are old news."""
        for alert in alerts:
            self._seen[id(alert)] = alert.worst.rank

    def wants_bell(self, alerts: list[Alert]) -> bool:
        return self.bell and any(a.worst is Severity.CRITICAL for a in alerts)

    def run_command(self, alerts: list[Alert]) -> None:
        """Queue the command once per incident; start workers up to MAX_COMMANDS."""
        if not self.command or not alerts:
            return
        with self._idle:
            self._queue.extend(orjson.dumps(json_safe(payload(alert))) + b"\n" for alert in alerts)
            for _ in range(min(self.max_commands - self._workers, len(self._queue))):
                self._workers += 1
                threading.Thread(target=self._work, daemon=True).start()
            self.most_running = max(self.most_running, self._workers)

    def _work(self) -> None:
        while True:
            with self._idle:
                if not self._queue:
                    self._workers -= 1
                    self._idle.notify_all()
                    return
                payload = self._queue.popleft()
            self._run(payload)

    def _run(self, payload: bytes) -> None:
        try:
            subprocess.run(self.command, shell=True, input=payload, timeout=COMMAND_TIMEOUT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            self.failures.append(f"--on-alert failed: {exc}")
        with self._idle:
            self.commands_run += 1

    def wait(self, timeout: float = 5.0) -> None:
        """Let queued and running commands finish, up to `timeout` seconds
        (used when a plain watch exits)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._queue or self._workers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._idle.wait(left)
