"""What a detector is and what it says.

A detector is a small stateful object, one instance per run, fed that run's
records in order. After each record it may return verdicts: a Finding (the
condition holds now, with its evidence) or a Clear (it no longer holds). The
engine turns these into edge-triggered Alerts, so detectors never have to
remember whether they already spoke.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Union

from lossmon.format import Record

if TYPE_CHECKING:
    from lossmon.block import BatchBlock


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds at the record just observed."""

    severity: Severity
    message: str
    hint: str
    evidence: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # tells apart several conditions of one detector


@dataclass(frozen=True, slots=True)
class Clear:
    """The condition named by `key` no longer holds."""

    key: str = ""


Verdict = Union[Finding, Clear]


class Detector:
    """Base class of every detector; subclasses set `id` and `observe`.

    Register a subclass under the entry-point group `lossmon.detectors`.
    Options come from the user's configuration as keyword arguments and
    should all have defaults.
    """

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    # Root causes this detector's condition is a symptom of: an incident of
    # this detector that opens while one of them is open on the run (or
    # shortly after) is attached to it as a symptom, and one of them that
    # opens adopts this detector's recent incidents (a diverging loss also
    # spikes and oscillates: one problem, read as one).
    defers_to: ClassVar[tuple[str, ...]] = ()
    # An evidence key whose highest value marks the incident's worst moment
    # (its `peak`); "" for none: the peak is then where its worst occurrence
    # opened. A detector with one that overrides `observe_block` must give
    # the Finding of each held stretch's highest row (see observe_block).
    peak_key: ClassVar[str] = ""
    # The record kinds this detector reads; None means all. The engine
    # skips the others, which matters when a file of a million batch
    # records is opened and most detectors only read epochs or the header.
    kinds: ClassVar[frozenset[str] | None] = None

    def observe(self, record: Record) -> Iterable[Verdict]:
        raise NotImplementedError

    def observe_block(self, block: BatchBlock) -> Iterable[tuple[int, Verdict]]:
        """Verdicts for consecutive batch records, as (row in block, verdict).

        The engine hands batch records over in blocks (see lossmon/block.py).
        This default feeds them to `observe` one by one; a detector that
        reads batch records overrides it with column arithmetic, and the
        engine still uses this default for short blocks (fewer than
        `engine.SMALL_BLOCK` rows), so `observe` must handle batch records
        too and give the same verdicts. An override
        may leave out the Findings in the middle of a condition that holds
        over many rows, but must give one on the first row of the block
        where it holds, where it starts, and on the last row where it holds
        before its Clear or the block's end (carrying the highest severity
        it reached since the previous Finding), and with a `peak_key` on
        the rows where that evidence is highest (hysteresis in
        lossmon/detectors/_util.py does both); and the Clear where it ends.
        The engine applies all detectors' verdicts in row order, so the
        alerts are the same as from feeding the records one at a time.
        """
        for row, record in enumerate(block.records):
            for verdict in self.observe(record) or ():
                yield row, verdict


@dataclass(slots=True, eq=False)
class Alert:
    """An incident as the views show it: pure data.

    One per (run, detector, key) for as long as its condition keeps coming
    back (see lossmon/detect/engine.py): `step` is where it was first seen
    (`first_step`), `last_step` the latest record that confirmed or cleared
    it, `occurrences` how many times it opened, `peak` where it was worst.
    `caused_by` is the incident it is a symptom of; `symptoms` the ones
    attached to it.
    """

    run: str
    detector: str
    severity: Severity  # the highest it reached
    step: int  # where the condition was first seen
    epoch: int | None
    message: str  # the latest
    hint: str
    evidence: dict[str, Any]  # the latest
    key: str = ""
    active: bool = True
    last_step: int = 0  # the latest record that confirmed or cleared it
    last_epoch: int | None = None
    occurrences: int = 1
    number: int = 1  # the how-manieth incident of its (run, detector, key)
    peak: dict[str, Any] = field(default_factory=dict)  # step, epoch, severity, message, evidence
    caused_by: Alert | None = field(default=None, repr=False)
    symptoms: list[Alert] = field(default_factory=list, repr=False)

    @property
    def first_step(self) -> int:
        return self.step

    @property
    def id(self) -> str:
        """Unique in a run file's verdict: run:detector[:key][#n]."""
        ident = f"{self.run}:{self.detector}" + (f":{self.key}" if self.key else "")
        return ident + (f"#{self.number}" if self.number > 1 else "")

    @property
    def root(self) -> Alert:
        """The root cause this incident is (a symptom of)."""
        alert = self
        while alert.caused_by is not None:
            alert = alert.caused_by
        return alert

    def tree(self) -> list[Alert]:
        """This incident and its symptoms, theirs under them, depth first."""
        out = [self]
        for symptom in self.symptoms:
            out += symptom.tree()
        return out

    @property
    def worst(self) -> Severity:
        """The highest severity in this incident's tree."""
        return max((a.severity for a in self.tree()), key=lambda s: s.rank)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run": self.run,
            "detector": self.detector,
            "key": self.key,
            "severity": self.severity.value,
            "step": self.step,
            "epoch": self.epoch,
            "message": self.message,
            "evidence": self.evidence,
            "hint": self.hint,
            "state": "active" if self.active else "resolved",
            "active": self.active,
            "first_step": self.step,
            "last_step": self.last_step,
            "occurrences": self.occurrences,
            "peak": self.peak,
            "caused_by": self.caused_by.id if self.caused_by is not None else None,
            "symptoms": [symptom.id for symptom in self.symptoms],
        }
