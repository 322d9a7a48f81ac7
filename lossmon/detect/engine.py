"""Runs every detector over every run and keeps the alert list.

Alerts are edge-triggered: a Finding for a condition that is not active
opens an alert; further Findings update it (evidence, message, a higher
severity); a Clear resolves it. A condition that returns later opens a new
alert. A detector that `defers_to` a root cause opens nothing while that
cause has an active alert on the same run.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from lossmon.detect.base import Alert, Clear, Detector, Finding
from lossmon.format import Record

MAX_ALERTS = 1000  # the alert list is for people: the newest thousand is plenty


class Engine:
    """Feeds records to per-run detector instances; collects alerts."""

    def __init__(
        self,
        detectors: Mapping[str, type[Detector]],
        options: Mapping[str, Mapping[str, Any]] | None = None,
        disabled: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        self.classes = {k: v for k, v in detectors.items() if k not in disabled}
        self.options = options or {}
        self.alerts: list[Alert] = []
        self._active: dict[tuple[str, str, str], Alert] = {}
        self._per_run: dict[str, list[Detector]] = {}
        self._broken: set[str] = set()

    def feed(self, record: Record) -> list[Alert]:
        """Observe one record; return the alerts it opened, changed or resolved."""
        changed: list[Alert] = []
        for detector in self._detectors_for(record.run):
            if detector.kinds is not None and record.kind not in detector.kinds:
                continue
            if detector.id in self._broken:
                continue
            try:
                verdicts = list(detector.observe(record) or ())
            except Exception as exc:  # one faulty detector must not silence the rest
                self._broken.add(detector.id)
                warnings.warn(f"detector {detector.id!r} failed and was switched off: {exc!r}", stacklevel=2)
                continue
            for verdict in verdicts:
                if isinstance(verdict, Finding) and self._deferred(record.run, detector, verdict.key):
                    continue
                alert = self._apply(record, detector.id, verdict)
                if alert is not None:
                    changed.append(alert)
        return changed

    def forget(self, run: str) -> None:
        """Drop a run's detector state when the store evicts the run, so a
        file naming endless run ids cannot grow memory without bound."""
        self._per_run.pop(run, None)
        for ident in [ident for ident in self._active if ident[0] == run]:
            del self._active[ident]

    def _deferred(self, run: str, detector: Detector, key: str) -> bool:
        """A new alert of a symptom waits while one of its causes is active."""
        if not detector.defers_to or (run, detector.id, key) in self._active:
            return False
        return any(run == r and d in detector.defers_to for r, d, _ in self._active)

    def _detectors_for(self, run: str) -> list[Detector]:
        detectors = self._per_run.get(run)
        if detectors is None:
            detectors = []
            for det_id, cls in self.classes.items():
                try:
                    detectors.append(cls(**self.options.get(det_id, {})))
                except Exception as exc:
                    self._broken.add(det_id)
                    warnings.warn(f"detector {det_id!r} could not start: {exc!r}", stacklevel=2)
            self._per_run[run] = detectors
        return detectors

    def _apply(self, record: Record, det_id: str, verdict: Finding | Clear) -> Alert | None:
        ident = (record.run, det_id, verdict.key)
        alert = self._active.get(ident)
        if isinstance(verdict, Clear):
            if alert is None:
                return None
            alert.active = False
            alert.last_step = record.step
            del self._active[ident]
            return alert
        if alert is None:
            alert = Alert(
                run=record.run,
                detector=det_id,
                severity=verdict.severity,
                step=record.step,
                epoch=record.epoch,
                message=verdict.message,
                hint=verdict.hint,
                evidence=dict(verdict.evidence),
                key=verdict.key,
                last_step=record.step,
            )
            self._active[ident] = alert
            self.alerts.append(alert)
            if len(self.alerts) > MAX_ALERTS:  # keep the newest; active ones stay in _active
                del self.alerts[: len(self.alerts) - MAX_ALERTS]
            return alert
        alert.message = verdict.message
        alert.hint = verdict.hint
        alert.evidence = dict(verdict.evidence)
        alert.last_step = record.step
        if verdict.severity.rank > alert.severity.rank:
            alert.severity = verdict.severity
        return alert
