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
    # Root causes this detector's condition is a symptom of: while one of
    # them has an active alert on the run, this detector opens no new alert
    # (a diverging loss also spikes and oscillates; say the cause once).
    defers_to: ClassVar[tuple[str, ...]] = ()
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
        it reached since the previous Finding); and the Clear where it ends.
        The engine applies all detectors' verdicts in row order, so the
        alerts are the same as from feeding the records one at a time.
        """
        for row, record in enumerate(block.records):
            for verdict in self.observe(record) or ():
                yield row, verdict


@dataclass(slots=True)
class Alert:
    """An edge-triggered alert as the views show it: pure data."""

    run: str
    detector: str
    severity: Severity
    step: int  # where the condition was first seen
    epoch: int | None
    message: str
    hint: str
    evidence: dict[str, Any]
    key: str = ""
    active: bool = True
    last_step: int = 0  # the latest record that confirmed or cleared it

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "detector": self.detector,
            "severity": self.severity.value,
            "step": self.step,
            "epoch": self.epoch,
            "message": self.message,
            "evidence": self.evidence,
            "hint": self.hint,
            "state": "active" if self.active else "resolved",
            "last_step": self.last_step,
        }
