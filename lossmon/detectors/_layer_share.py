"""A per-layer fraction that must stay below a limit: dead or saturated units."""

from __future__ import annotations

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import Streak, is_probe, per_layer
from lossmon.detectors._util import LOWER, RunInfo, lr_advice, sentence
from lossmon.format import Record, json_safe


class LayerShareDetector(Detector):
    """WARNING when some layer's `measure` is at least `warn_at` on
    `patience` probes in a row; CRITICAL from `critical_at` (when set)."""

    peak_key = "worst_fraction"  # an incident's worst moment: its worst layer at its worst
    measure = ""
    what = ""  # "dead", "saturated"
    advice: tuple[str, ...] = ()  # the hint's clauses after the learning rate's

    def __init__(self, warn_at: float = 0.5, critical_at: float | None = None, patience: int = 2) -> None:
        self.warn_at = warn_at
        self.critical_at = critical_at
        self.streak = Streak(patience)
        self.active = False
        self.info = RunInfo()

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if not is_probe(record):
            return []
        shares = per_layer(record, self.measure)
        if not shares:
            return []
        worst = max(shares, key=lambda name: shares[name])
        if not self.streak.update(shares[worst] >= self.warn_at, record.step):
            if self.active:
                self.active = False
                return [Clear()]
            return []
        self.active = True
        over = {name: share for name, share in shares.items() if share >= self.warn_at}
        severity = Severity.WARNING
        if self.critical_at is not None and shares[worst] >= self.critical_at:
            severity = Severity.CRITICAL
        layers = ", ".join(f"{name} {share:.0%}" for name, share in sorted(over.items(), key=lambda kv: -kv[1]))
        message = f"{self.what} units: {layers} on the probe batch, {self.streak.count} probes in a row"
        evidence = {
            "layers": over,
            "worst_layer": worst,
            "worst_fraction": shares[worst],
            "threshold": self.warn_at,
            "probes": self.streak.count,
            "since_step": self.streak.since,
            "step": record.step,
        }
        hint = sentence(lr_advice(self.info, LOWER, seen=False), *self.advice)
        return [Finding(severity, message, hint, json_safe(evidence))]
