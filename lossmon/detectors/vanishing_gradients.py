"""Vanishing gradients: the weights get almost none of the gradient.

Reads probe records: `grad_first` and `grad_last` (kernel gradient norms
of the first and last layers with weights), `grad_ratio` (their ratio),
`kernel_grad_norm` (all kernels together) and `grad_norm` (all trainable
variables). Two rules, either one:

- depth: first/last < `ratio_below` and first < `first_below` (the
  AutoTrainer rule): the gradient dies on its way back through many layers;
- share: the kernels' part of the whole gradient, kernel_grad_norm /
  grad_norm, is below `share_below`. The gradient reaches the biases but
  not the weights, because the activations the weights multiply, or the
  slope of the activation, are near zero. This is the seeds'
  `tanh(x * 0.01)` case, which the depth rule misses: it shrinks the last
  layer's inputs as much as the first layer's gradient, so their ratio
  stays near 1.
"""

from __future__ import annotations

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import Streak, is_probe, per_layer
from lossmon.detectors._util import (
    CAUSES,
    finite,
    fmt,
)
from lossmon.format import EPOCH, HEADER, PROBE, Record, json_safe


def vanishing(
    values: dict, ratio_below: float = 1e-3, first_below: float = 1e-4, share_below: float = 0.1
) -> tuple[bool, float | None, bool]:
    """The two rules on one probe's values: (depth rule holds, the kernels'
    share of the gradient, share rule holds). Exploding gradients asks the
    same question, so the two are never open on one probe."""
    first, ratio = finite(values.get("grad_first")), finite(values.get("grad_ratio"))
    kernels, total = finite(values.get("kernel_grad_norm")), finite(values.get("grad_norm"))
    depth = ratio is not None and first is not None and ratio < ratio_below and first < first_below
    share = kernels / total if kernels is not None and total is not None and total > 1e-12 else None
    return depth, share, share is not None and share < share_below


class VanishingGradients(Detector):
    """WARNING when either rule holds on `patience` probes in a row."""

    id = "vanishing_gradients"
    title = "Vanishing gradients"
    kinds = frozenset({HEADER, EPOCH, PROBE})
    defers_to = CAUSES["vanishing_gradients"]

    def __init__(
        self,
        ratio_below: float = 1e-3,
        first_below: float = 1e-4,
        share_below: float = 0.1,
        patience: int = 3,
    ) -> None:
        self.ratio_below = ratio_below
        self.first_below = first_below
        self.share_below = share_below
        self.streak = Streak(patience)
        self.active = False

    def observe(self, record: Record) -> list[Verdict]:
        if not is_probe(record):
            return []
        values = record.values
        first, ratio = finite(values.get("grad_first")), finite(values.get("grad_ratio"))
        kernels, total = finite(values.get("kernel_grad_norm")), finite(values.get("grad_norm"))
        depth, share, starved = vanishing(values, self.ratio_below, self.first_below, self.share_below)
        if first is None and share is None:
            return []
        if not self.streak.update(depth or starved, record.step):
            if self.active:
                self.active = False
                return [Clear()]
            return []
        self.active = True
        if depth:
            message = (
                f"first layer's gradient {fmt(first)} is {fmt(ratio)} of the last layer's "
                f"{fmt(finite(values.get('grad_last')))} for {self.streak.count} probes"
            )
        else:
            message = (
                f"weights get {share:.1%} of the gradient (kernel gradient norm {fmt(kernels)} "
                f"of {fmt(total)}) for {self.streak.count} probes: it stops at the biases"
            )
        acts = per_layer(record, "act_std")
        evidence = {
            "rule": "depth" if depth else "share",
            "grad_first": first,
            "grad_last": finite(values.get("grad_last")),
            "grad_ratio": ratio,
            "kernel_grad_norm": kernels,
            "grad_norm": total,
            "kernel_share": share,
            "layer_grad_norms": per_layer(record, "grad_norm"),
            "act_std": acts,
            "probes": self.streak.count,
            "since_step": self.streak.since,
            "step": record.step,
        }
        hint = (
            "check the activations: a scaled or squashing activation (tanh(x * 0.01), "
            "sigmoid in deep stacks) passes almost no gradient; use relu or gelu with He "
            "initialisation (kernel_initializer='he_normal'), add BatchNormalization or "
            "residual connections, and scale the inputs"
        )
        return [Finding(Severity.WARNING, message, hint, json_safe(evidence))]
