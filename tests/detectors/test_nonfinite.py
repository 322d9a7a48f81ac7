from __future__ import annotations

import math

import pytest

from lossmon.detect.base import Clear, Finding, Severity
from lossmon.detectors.nonfinite import NonFinite

from series import batch, batches, converging, end, epoch_record, epochs, header, run


def nan_mid_run(at: int = 50, n: int = 80) -> list:
    losses = list(converging(n, 0))
    records = batches(losses)
    for i in range(at - 1, n):
        records[i] = batch(i + 1, 0, loss=math.nan, accuracy=0.5)
    return records


def test_healthy_run_is_quiet() -> None:
    records = [header()] + batches(converging(300, 1)) + epochs([0.6, 0.4], [0.62, 0.45], lr=0.001)
    assert not run(NonFinite(), records).fired


def test_nan_mid_run_is_critical_at_its_step() -> None:
    losses = list(converging(80, 0))
    trace = run(NonFinite(), [header("Adam", 0.001)] + nan_mid_run(50))
    rec, finding = trace.first_finding()
    assert rec.step == 50
    assert finding.severity is Severity.CRITICAL
    assert "loss=NaN" in finding.message and "step 50" in finding.message
    assert "accuracy" not in finding.message  # accuracy stayed finite
    ev = finding.evidence
    assert ev["metrics"] == ["loss"]
    assert ev["values"] == {"loss": "NaN"}
    assert ev["step"] == 50
    assert ev["last_finite_step"] == 49
    assert ev["last_finite_loss"] == pytest.approx(losses[48])
    assert "TerminateOnNaN" in finding.hint
    assert "clipnorm=1.0" in finding.hint
    assert "0.001 -> 0.0001" in finding.hint


def test_every_bad_record_confirms_and_keeps_first_step() -> None:
    trace = run(NonFinite(), nan_mid_run(50, 60))
    assert len(trace.findings) == 11
    assert {f.evidence["since_step"] for _, f in trace.findings} == {50}
    assert not trace.clears


def test_clears_when_values_are_finite_again() -> None:
    records = batches([0.7, 0.6]) + [batch(3, 0, loss=math.inf)] + batches([0.5, 0.45], first_step=4)
    trace = run(NonFinite(), records)
    assert trace.episodes() == [(3, 4)]
    assert trace.steps[-1][1] == []  # a Clear once, not on every record
    assert "loss=Infinity" in trace.findings[0][1].message


def test_empty_record_neither_fires_nor_clears() -> None:
    records = [batch(1, 0, loss=math.nan), batch(2, 0), end(3, "error")]
    trace = run(NonFinite(), records)
    assert trace.state_at_end() == "active"
    assert trace.steps[1][1] == [] and trace.steps[2][1] == []


def test_lr_far_above_default_is_named() -> None:
    records = [header("Adam", 1.0), batch(1, 0, loss=0.7), batch(2, 0, loss=math.nan)]
    _, finding = run(NonFinite(), records).first_finding()
    assert "Learning rate 1.0 is 1000x Adam's default 0.001: try 0.001" in finding.hint
    assert finding.evidence["learning_rate"] == 1.0


def test_epoch_lr_follows_schedule() -> None:
    records = [header("SGD", 0.01), epoch_record(0, 10, loss=0.5, lr=2.0), batch(11, 1, loss=-math.inf)]
    _, finding = run(NonFinite(), records).first_finding()
    assert "200x SGD's default 0.01" in finding.hint
    assert finding.evidence["values"] == {"loss": "-Infinity"}


def test_several_metrics_and_epoch_records() -> None:
    rec = epoch_record(2, 96, loss=math.nan, val_loss=math.inf, accuracy=0.5)
    trace = run(NonFinite(), [rec])
    _, finding = trace.first_finding()
    assert finding.evidence["metrics"] == ["loss", "val_loss"]
    assert "end of epoch 3" in finding.message
    assert "loss=NaN, val_loss=Infinity" in finding.message


def test_only_validation_nan_points_at_validation_data() -> None:
    rec = epoch_record(0, 32, loss=0.5, val_loss=math.nan)
    _, finding = run(NonFinite(), [rec]).first_finding()
    assert finding.severity is Severity.CRITICAL
    assert "validation data" in finding.hint
    assert finding.evidence["last_finite_loss"] == 0.5


def test_ignore_option() -> None:
    records = [batch(1, 0, loss=0.5, my_ratio=math.inf)]
    assert run(NonFinite(), records).fired
    assert not run(NonFinite(ignore=["my_ratio"]), records).fired


def test_no_header_gives_generic_hint() -> None:
    _, finding = run(NonFinite(), [batch(1, 0, loss=math.nan)]).first_finding()
    assert "Lower the learning rate 10x" in finding.hint
    assert "learning_rate" not in finding.evidence


def test_header_and_end_records_say_nothing() -> None:
    detector = NonFinite()
    assert list(detector.observe(header())) == []
    assert list(detector.observe(end(10))) == []
    verdicts = list(detector.observe(batch(11, 0, loss=math.nan)))
    assert len(verdicts) == 1 and isinstance(verdicts[0], Finding)
    verdicts = list(detector.observe(batch(12, 0, loss=0.3)))
    assert verdicts == [Clear()]
