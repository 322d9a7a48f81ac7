"""Runs every detector over every run and keeps the alert list.

Alerts are edge-triggered: a Finding for a condition that is not active
opens an alert; further Findings update it (evidence, message, a higher
severity); a Clear resolves it. A condition that returns later opens a new
alert. A detector that `defers_to` a root cause opens nothing while that
cause has an active alert on the same run.
"""

from __future__ import annotations

import operator
import warnings
from functools import partial
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lossmon.detect.base import Alert, Clear, Detector, Finding, Verdict
from lossmon.block import BatchBlock, split_blocks
from lossmon.format import BATCH, Record

MAX_ALERTS = 1000  # the alert list is for people: the newest thousand is plenty
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
        self.alerts: list[Alert] = []
        self._active: dict[tuple[str, str, str], Alert] = {}
        self._per_run: dict[str, list[Detector]] = {}
        self._readers_by_kind: dict[str, dict[str, _Readers]] = {}  # per run, per record kind
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
        for _, detector in self._readers(record.run, record.kind).all:
            for verdict in self._call(detector, detector.observe, record):
                self._take(record, detector, verdict, changed)

    def _feed_block(self, block: BatchBlock, changed: dict[int, Alert]) -> None:
        """All detectors' verdicts on a block, applied in row order.

        Causes (detectors others defer to) read the block first. Where one of
        them clears, the block is cut before it goes to the others: a symptom
        that was held back while its cause was active then gives its Finding
        on the first row after, exactly as if fed one record at a time.
        """
        readers = self._readers(block.run, BATCH)
        pending: list[tuple[int, int, Detector, Verdict]] = []
        self._read_block(readers.causes, block, 0, pending)
        cuts = sorted({row for row, _, _, v in pending if isinstance(v, Clear) and row > 0})
        for start, stop in zip([0, *cuts], [*cuts, len(block)]):
            self._read_block(readers.symptoms, block.slice(start, stop) if cuts else block, start, pending)
        if len(pending) > 1:
            pending.sort(key=_ROW_THEN_ORDER)
        for row, _, detector, verdict in pending:
            self._take(block.record(row), detector, verdict, changed)

    def _read_block(self, readers: list[tuple[int, Detector]], part: BatchBlock, start: int, pending: list) -> None:
        """Add the verdicts of `readers` on `part` (rows `start`... of the
        block) to `pending` as (row, order, detector, verdict)."""
        small = len(part) < SMALL_BLOCK
        for order, detector in readers:
            # A short block goes to the base class's observe_block, which feeds observe() row by row.
            reader = partial(Detector.observe_block, detector) if small else detector.observe_block
            verdicts = self._call(detector, reader, part)
            if verdicts:
                pending += [(row + start, order, detector, v) for row, v in verdicts]

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
        if isinstance(verdict, Finding) and self._deferred(record.run, detector, verdict.key):
            return
        alert = self._apply(record, detector.id, verdict)
        if alert is not None:
            changed[id(alert)] = alert

    def forget(self, run: str) -> None:
        """Drop a run's detector state when the store evicts the run, so a
        file naming endless run ids cannot grow memory without bound."""
        self._per_run.pop(run, None)
        self._readers_by_kind.pop(run, None)
        self._last_batch_step.pop(run, None)
        for ident in [ident for ident in self._active if ident[0] == run]:
            del self._active[ident]

    def _deferred(self, run: str, detector: Detector, key: str) -> bool:
        """A new alert of a symptom waits while one of its causes is active."""
        if not detector.defers_to or (run, detector.id, key) in self._active:
            return False
        return any(run == r and d in detector.defers_to for r, d, _ in self._active)

    def _readers(self, run: str, kind: str) -> _Readers:
        """The run's detectors that read records of `kind`, worked out once:
        a cold open asks for every block and record."""
        by_kind = self._readers_by_kind.setdefault(run, {})
        readers = by_kind.get(kind)
        if readers is None:
            readers = by_kind[kind] = _Readers(
                [(order, d) for order, d in enumerate(self._detectors_for(run)) if d.kinds is None or kind in d.kinds],
                self._causes,
            )
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

    def _apply(self, record: Record, det_id: str, verdict: Finding | Clear) -> Alert | None:
        ident = (record.run, det_id, verdict.key)
        alert = self._active.get(ident)
        if isinstance(verdict, Clear):
            if alert is None:
                return None
            alert.active = False
            alert.last_step = record.step
            del self._active[ident]
            self.news.append(alert)
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
            self.news.append(alert)
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


_ROW_THEN_ORDER = operator.itemgetter(0, 1)  # pending verdicts: row order, then detector order


class _Readers:
    """A run's detectors of one record kind, each with its place in the
    detector order: all of them, and split into causes (detectors others
    defer to) and the rest, as `_feed_block` takes them."""

    __slots__ = ("all", "causes", "symptoms")

    def __init__(self, readers: list[tuple[int, Detector]], causes: frozenset[str]) -> None:
        self.all = readers
        self.causes = [(order, d) for order, d in readers if d.id in causes]
        self.symptoms = [(order, d) for order, d in readers if d.id not in causes]
