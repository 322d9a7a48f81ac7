"""Runs every detector over every run and keeps the incident list.

An incident is one problem of one run: one per (run, detector, key) for as
long as its condition keeps coming back. A Finding for a condition that is
not active opens it (or, when the same condition cleared no longer ago
than `near`'s window, counts one more occurrence of the incident it
continues); further Findings update it (latest evidence and message, a
higher severity); a Clear resolves it until it returns. Each incident keeps
its first and last step, its occurrences and its peak: where its worst
occurrence opened, with the highest severity that occurrence reached.

Causes and symptoms come from `Detector.defers_to`: an incident of a
detector that defers to another opens attached to an incident of that
other detector that is open on the run (or cleared within the window),
and a cause that opens adopts the recent unattached incidents of the
detectors that defer to it. `ordered` lists them root cause first.

Everything here is decided at rows that any split of the records into
blocks reports the same way (where a condition opens or clears), so the
incidents are the same whether records arrive one by one or in blocks.
"""

from __future__ import annotations

import math
import operator
import warnings
from functools import partial
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lossmon.detect.base import Alert, Clear, Detector, Finding, Severity, Verdict
from lossmon.block import BatchBlock, split_blocks
from lossmon.format import BATCH, Record

MAX_ALERTS = 1000  # the incident list is for people: the newest thousand is plenty
# A condition that clears and comes back within this window continues the
# same incident (and a symptom this soon after its cause is attached to it):
# within REOPEN_EPOCHS epochs, or REOPEN_STEPS steps, or REOPEN_SHARE of the
# steps the run has taken so far, whichever is the most.
REOPEN_EPOCHS = 3
REOPEN_STEPS = 50
REOPEN_SHARE = 0.25
# Blocks shorter than this go to a detector's observe() row by row: numpy's
# cost per call (tens of microseconds over a detector's dozen calls) is more
# than a few rows of plain Python, and live reads bring a record or two.
SMALL_BLOCK = 16


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
        self.alerts: list[Alert] = []  # incidents in the order they opened; `ordered` sorts them for people
        self._active: dict[tuple[str, str, str], Alert] = {}
        self._latest: dict[str, dict[tuple[str, str], Alert]] = {}  # per run, the newest incident of each (detector, key)
        self._openings: dict[tuple[str, str, str], dict[str, Any]] = {}  # active ones: where this occurrence opened
        self.dropped = 0  # incidents the MAX_ALERTS cap took off the list
        self.dropped_critical = 0  # of which had reached CRITICAL: they still fail `lossmon check`
        self._per_run: dict[str, list[Detector]] = {}
        self._readers_by_kind: dict[str, dict[str, list[tuple[int, Detector]]]] = {}  # per run, per record kind
        self._broken: set[str] = set()
        self._last_batch_step: dict[str, int] = {}  # per run: blocks need increasing steps
        self.news: list[Alert] = []  # alerts the latest feed opened or resolved
        self._causes = frozenset(cause for cls in self.classes.values() for cause in cls.defers_to)

    def feed(self, record: Record) -> list[Alert]:
        """Observe one record; return the alerts it opened, changed or resolved."""
        return self.feed_many([record])

    def feed_many(self, records: Sequence[Record]) -> list[Alert]:
        """Observe records in order; return the alerts they opened, changed or
        resolved (each once). Runs of batch records go to the detectors as
        blocks, which is what makes a cold open of a long run fast."""
        return self.feed_items(self.split(records))

    def split(self, records: Sequence[Record | BatchBlock]) -> list[Record | BatchBlock]:
        """`records` with runs of batch records grouped into blocks, as
        `feed_items` takes them; the model can take the same blocks."""
        return split_blocks(records, self._last_batch_step)

    def feed_items(self, items: Sequence[Record | BatchBlock]) -> list[Alert]:
        """`feed_many` for records already split (by `split`, once, in order)."""
        changed: dict[int, Alert] = {}
        self.news = []
        for item in items:
            if isinstance(item, BatchBlock):
                self._feed_block(item, changed)
            else:
                self._feed_record(item, changed)
        return list(changed.values())

    def _feed_record(self, record: Record, changed: dict[int, Alert]) -> None:
        for _, detector in self._readers(record.run, record.kind):
            for verdict in self._call(detector, detector.observe, record):
                self._take(record, detector, verdict, changed)

    def _feed_block(self, block: BatchBlock, changed: dict[int, Alert]) -> None:
        """All detectors' verdicts on a block, applied in row order (then in
        detector order, as one record at a time would)."""
        small = len(block) < SMALL_BLOCK
        pending: list[tuple[int, int, Detector, Verdict]] = []
        for order, detector in self._readers(block.run, BATCH):
            # A short block goes to the base class's observe_block, which feeds observe() row by row.
            reader = partial(Detector.observe_block, detector) if small else detector.observe_block
            pending += [(row, order, detector, v) for row, v in self._call(detector, reader, block)]
        if len(pending) > 1:
            pending.sort(key=_ROW_THEN_ORDER)
        for row, _, detector, verdict in pending:
            self._take(block.record(row), detector, verdict, changed)

    def _call(self, detector: Detector, method: Callable[[Any], Any], arg: Any) -> list[Any]:
        """A detector's verdicts (for a block, (row, verdict) pairs, rows
        checked); a detector that raises or answers nonsense is switched off,
        so one faulty detector never silences the rest."""
        if detector.id in self._broken:
            return []
        try:
            verdicts = list(method(arg) or ())
            if not verdicts:  # the usual answer: nothing to check
                return verdicts
            if isinstance(arg, BatchBlock):
                verdicts = [(operator.index(row), verdict) for row, verdict in verdicts]
                bad = [(r, v) for r, v in verdicts if not 0 <= r < len(arg) or not isinstance(v, (Finding, Clear))]
            else:
                bad = [v for v in verdicts if not isinstance(v, (Finding, Clear))]
            if bad:
                raise ValueError(f"not a verdict for this input: {bad[0]!r}")
            return verdicts
        except Exception as exc:
            self._broken.add(detector.id)
            warnings.warn(f"detector {detector.id!r} failed and was switched off: {exc!r}", stacklevel=3)
            return []

    def _take(self, record: Record, detector: Detector, verdict: Verdict, changed: dict[int, Alert]) -> None:
        for alert in self._apply(record, detector, verdict):
            changed[id(alert)] = alert

    def forget(self, run: str) -> None:
        """Drop a run's detector state when the store evicts the run, so a
        file naming endless run ids cannot grow memory without bound."""
        self._per_run.pop(run, None)
        self._readers_by_kind.pop(run, None)
        self._last_batch_step.pop(run, None)
        self._latest.pop(run, None)
        for table in (self._active, self._openings):
            for ident in [ident for ident in table if ident[0] == run]:
                del table[ident]

    def ordered(self) -> list[tuple[int, Alert]]:
        """The incidents as people read them, with their depth: see `ordered`."""
        return ordered(self.alerts)

    def failing(self, fail_on: Severity) -> list[Alert]:
        """The root incidents that make `lossmon check --fail-on` fail (see
        `fails`); a symptom counts only through its cause."""
        listed = {id(alert) for alert in self.alerts}
        unlisted = [alert for alert in self._active.values() if id(alert) not in listed]  # dropped by the cap
        roots = [alert for depth, alert in ordered([*self.alerts, *unlisted]) if depth == 0]
        return [root for root in roots if any(fails(alert, fail_on) for alert in root.tree())]

    def fails(self, fail_on: Severity) -> bool:
        """Whether `lossmon check --fail-on` exits 1: the one place that says so."""
        return bool(self.failing(fail_on)) or self.dropped_critical > 0

    def _readers(self, run: str, kind: str) -> list[tuple[int, Detector]]:
        """The run's detectors that read records of `kind`, worked out once:
        a cold open asks for every block and record."""
        by_kind = self._readers_by_kind.setdefault(run, {})
        readers = by_kind.get(kind)
        if readers is None:
            readers = by_kind[kind] = [
                (order, d) for order, d in enumerate(self._detectors_for(run)) if d.kinds is None or kind in d.kinds
            ]
        return readers

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

    def _apply(self, record: Record, detector: Detector, verdict: Verdict) -> list[Alert]:
        """The incidents a verdict opened, changed or resolved."""
        ident = (record.run, detector.id, verdict.key)
        alert = self._active.get(ident)
        if isinstance(verdict, Clear):
            if alert is None:
                return []
            alert.active = False
            alert.last_step, alert.last_epoch = record.step, record.epoch
            del self._active[ident]
            del self._openings[ident]
            self.news.append(alert)
            return [alert]
        if alert is not None:  # the usual verdict: a condition that still holds
            self._update(alert, record, verdict, self._openings[ident], detector.peak_key)
            return [alert]
        alert = self._latest.get(record.run, {}).get((detector.id, verdict.key))
        again = alert is not None and self.near(record, alert)
        opening = _moment(record, verdict, alert.occurrences + 1 if again else 1)
        self._openings[ident] = opening
        if again:  # it came back: the same incident
            alert.occurrences += 1
            alert.active = True
            self._update(alert, record, verdict, opening, detector.peak_key)
        else:
            alert = self._open(record, detector, verdict, opening, alert)
        self._active[ident] = alert
        self.news.append(alert)
        return [alert, *self._adopt(alert, record)]

    def _open(self, record: Record, detector: Detector, verdict: Finding, opening: dict[str, Any], before: Alert | None) -> Alert:
        alert = Alert(
            run=record.run,
            detector=detector.id,
            severity=verdict.severity,
            step=record.step,
            epoch=record.epoch,
            message=verdict.message,
            hint=verdict.hint,
            evidence=dict(verdict.evidence),
            key=verdict.key,
            last_step=record.step,
            last_epoch=record.epoch,
            number=before.number + 1 if before is not None else 1,
            peak=dict(opening),
        )
        self._latest.setdefault(record.run, {})[(detector.id, verdict.key)] = alert
        cause = self._cause_for(alert, record, detector.defers_to)
        if cause is not None:
            _attach(alert, cause)
        self.alerts.append(alert)
        if len(self.alerts) > MAX_ALERTS:
            self._cap()
        return alert

    @staticmethod
    def _update(alert: Alert, record: Record, verdict: Finding, opening: dict[str, Any], peak_key: str) -> None:
        """A Finding for an incident that holds: the latest evidence, the
        highest severity, and its peak. With a `peak_key`, the peak is the
        Finding where that evidence was highest (the first on ties), with the
        highest severity its occurrence reached; without, where its worst
        occurrence opened."""
        alert.message = verdict.message
        alert.hint = verdict.hint
        alert.evidence = dict(verdict.evidence)
        alert.last_step, alert.last_epoch = record.step, record.epoch
        rank = verdict.severity.rank
        if rank > alert.severity.rank:
            alert.severity = verdict.severity
        if rank > Severity(opening["severity"]).rank:
            opening["severity"] = verdict.severity.value  # the highest this occurrence reached
        peak = alert.peak
        if peak_key:
            score, best = _score(verdict.evidence, peak_key), _score(peak["evidence"], peak_key)
            if score is not None and (best is None or score > best):
                alert.peak = _moment(record, verdict, alert.occurrences)
                alert.peak["severity"] = opening["severity"]
            elif peak["occurrence"] == alert.occurrences:
                peak["severity"] = opening["severity"]
        elif Severity(opening["severity"]).rank > Severity(peak["severity"]).rank:
            alert.peak = dict(opening)

    def near(self, record: Record, earlier: Alert) -> bool:
        """Whether `record` comes soon enough after `earlier`'s last step to
        continue it (or, for a symptom, to be explained by it): see
        REOPEN_EPOCHS, REOPEN_STEPS, REOPEN_SHARE."""
        if earlier.active:
            return True
        if record.step - earlier.last_step <= max(REOPEN_STEPS, REOPEN_SHARE * record.step):
            return True
        return record.epoch is not None and earlier.last_epoch is not None and record.epoch - earlier.last_epoch <= REOPEN_EPOCHS

    def _cause_for(self, alert: Alert, record: Record, causes: tuple[str, ...]) -> Alert | None:
        """The open (or recent) incident of one of `causes` on the run that
        explains `alert`: an active one before a resolved one, then the
        nearest (divergence, itself caused by the learning rate, before the
        learning rate), then the earliest."""
        if not causes:
            return None
        found = [
            cause
            for (det_id, _), cause in self._latest[alert.run].items()
            if det_id in causes and cause is not alert and _explains(cause) and self.near(record, cause)
        ]
        return min(found, key=lambda cause: (not cause.active, -_depth(cause), cause.step), default=None)

    def _adopt(self, cause: Alert, record: Record) -> list[Alert]:
        """A cause that opens takes in the unattached, active or recent
        incidents of the detectors that defer to it (a spike seen a few
        steps before the smoothed loss shows the divergence)."""
        if cause.detector not in self._causes or not _explains(cause):
            return []
        ancestors = {id(alert) for alert in _chain(cause)}
        adopted = []
        for (det_id, _), symptom in self._latest[cause.run].items():
            if symptom.caused_by is not None or id(symptom) in ancestors:
                continue
            cls = self.classes.get(det_id)
            if cls is not None and cause.detector in cls.defers_to and self.near(record, symptom):
                _attach(symptom, cause)
                adopted.append(symptom)
        return [cause, *adopted] if adopted else []

    def _cap(self) -> None:
        """Keep MAX_ALERTS incidents: drop the oldest trees that are over
        (all resolved), else the oldest; count what was dropped, so the
        verdict (exit code) never depends on the cap."""
        excess = len(self.alerts) - MAX_ALERTS
        drop: dict[int, Alert] = {}
        for over in (True, False):
            for alert in self.alerts:
                if len(drop) >= excess:
                    break
                root = alert.root
                if id(root) not in drop and (not over or not any(a.active for a in root.tree())):
                    drop.update((id(a), a) for a in root.tree())
        gone = [alert for alert in self.alerts if id(alert) in drop]
        self.alerts[:] = [alert for alert in self.alerts if id(alert) not in drop]
        self.dropped += len(gone)
        self.dropped_critical += sum(1 for alert in gone if alert.severity is Severity.CRITICAL)


def _moment(record: Record, verdict: Finding, occurrence: int) -> dict[str, Any]:
    """A Finding as an incident's peak keeps it."""
    return {
        "step": record.step,
        "epoch": record.epoch,
        "severity": verdict.severity.value,
        "message": verdict.message,
        "evidence": dict(verdict.evidence),
        "occurrence": occurrence,
    }


def _score(evidence: dict[str, Any], key: str) -> float | None:
    """The evidence's `key` as a number to rank moments by (None: not one)."""
    value = evidence.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _explains(cause: Alert) -> bool:
    """Only a warning or worse explains other incidents: an INFO (inputs
    of scale 10, an imbalance the run may handle) is a remark, and a NaN
    listed under it would hide under its INFO line."""
    return cause.severity.rank >= Severity.WARNING.rank


def _chain(alert: Alert) -> list[Alert]:
    """`alert` and its causes, up to the root."""
    out = [alert]
    while out[-1].caused_by is not None:
        out.append(out[-1].caused_by)
    return out


def _depth(alert: Alert) -> int:
    return len(_chain(alert)) - 1


def _attach(symptom: Alert, cause: Alert) -> None:
    symptom.caused_by = cause
    cause.symptoms.append(symptom)


def fails(alert: Alert, fail_on: Severity) -> bool:
    """The exit-code rule of `lossmon check`, per incident: it fails the
    check when it ever reached CRITICAL (a NaN that recovered still wasted
    the run's weights), or when it is at `fail_on` or above and still active
    when the reading ends. A warning that came and went on a run that ended
    healthy does not."""
    if alert.severity is Severity.CRITICAL:
        return True
    return alert.active and alert.severity.rank >= fail_on.rank


def ordered(alerts: Sequence[Alert]) -> list[tuple[int, Alert]]:
    """Incidents as people read them, each with its depth (0: a root cause):
    root causes first, by the highest severity in their tree, then by when
    they opened; each cause followed by its symptoms, in the same order."""
    listed = {id(alert) for alert in alerts}
    roots = [a for a in alerts if a.caused_by is None or id(a.caused_by) not in listed]
    out: list[tuple[int, Alert]] = []

    def add(level: list[Alert], depth: int) -> None:
        for alert in sorted(level, key=_reading_order):
            out.append((depth, alert))
            add([s for s in alert.symptoms if id(s) in listed], depth + 1)

    add(roots, 0)
    return out


def _reading_order(alert: Alert) -> tuple:
    return (-alert.worst.rank, alert.step, alert.run, alert.detector, alert.key, alert.number)


_ROW_THEN_ORDER = operator.itemgetter(0, 1)  # pending verdicts: row order, then detector order
