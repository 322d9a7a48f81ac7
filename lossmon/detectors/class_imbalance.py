"""Class imbalance: a rare class, and a model that ignores it.

Reads the header's `data.labels` (the probe batch's label distribution)
and the `min_recall` of probe records (the recall of the worst-served
class on the probe rows). An imbalanced label set alone is INFO: with
class_weight, resampling or a suitable metric it is fine. It becomes a
WARNING when, from the second epoch on, the model still recalls almost
none of some class: it has learned to predict the majority.
"""

from __future__ import annotations

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import Streak, header_data, is_probe
from lossmon.detectors._util import finite, fmt
from lossmon.format import EPOCH, HEADER, PROBE, Record, json_safe


class ClassImbalance(Detector):
    """INFO at train begin when the majority class is >= `ratio` x the
    minority; WARNING when in addition `min_recall` < `recall_below` on
    `patience` probes in a row from epoch `after_epoch` (0-based) on."""

    id = "class_imbalance"
    title = "Class imbalance"
    kinds = frozenset({HEADER, EPOCH, PROBE})

    def __init__(self, ratio: float = 4.0, recall_below: float = 0.2, patience: int = 2, after_epoch: int = 1) -> None:
        self.ratio = ratio
        self.recall_below = recall_below
        self.after_epoch = after_epoch
        self.streak = Streak(patience)
        self.labels: dict = {}
        self.active = False

    def observe(self, record: Record) -> list[Verdict]:
        if record.kind == HEADER:
            labels = header_data(record, "labels")
            ratio = finite(labels.get("imbalance_ratio"))
            if labels.get("task") != "classification" or ratio is None or ratio < self.ratio:
                self.labels = {}
                return []
            self.labels = labels
            message = (
                f"labels are imbalanced: class {labels.get('majority_class')} is "
                f"{labels.get('majority_fraction', 0):.0%} of the probe rows, class "
                f"{labels.get('minority_class')} {labels.get('minority_fraction', 0):.1%} ({fmt(ratio)}:1)"
            )
            return [Finding(Severity.INFO, message, self._hint(), json_safe(self._evidence(None, record)), key="labels")]
        if not self.labels or not is_probe(record) or record.epoch is None or record.epoch < self.after_epoch:
            return []
        recall = finite(record.values.get("min_recall"))
        if recall is None:
            return []
        if not self.streak.update(recall < self.recall_below, record.step):
            if self.active:
                self.active = False
                return [Clear(key="ignored")]
            return []
        self.active = True
        majority = finite(record.values.get("majority_pred_fraction"))
        message = (
            f"the model recalls {recall:.0%} of its worst class on the probe rows"
            + (f" and predicts the majority class for {majority:.0%} of them" if majority is not None else "")
            + f" (labels {fmt(finite(self.labels.get('imbalance_ratio')))}:1)"
        )
        return [Finding(Severity.WARNING, message, self._hint(), json_safe(self._evidence(record, record)), key="ignored")]

    def _evidence(self, probe: Record | None, record: Record) -> dict:
        labels = self.labels
        evidence = {
            "classes": labels.get("classes"),
            "majority_class": labels.get("majority_class"),
            "majority_fraction": labels.get("majority_fraction"),
            "minority_class": labels.get("minority_class"),
            "minority_fraction": labels.get("minority_fraction"),
            "imbalance_ratio": labels.get("imbalance_ratio"),
            "counts": labels.get("counts"),
            "step": record.step,
        }
        if probe is not None:
            evidence.update(
                min_recall=finite(probe.values.get("min_recall")),
                majority_pred_fraction=finite(probe.values.get("majority_pred_fraction")),
                accuracy=finite(probe.values.get("accuracy")),
                probes=self.streak.count,
                since_step=self.streak.since,
            )
        return evidence

    def _hint(self) -> str:
        return (
            "pass class_weight to fit (sklearn's compute_class_weight('balanced', ...)), "
            "or resample; judge the model by per-class recall, AUC or F1, not accuracy"
        )
