from __future__ import annotations

import math

import numpy as np
import pytest

from lossmon.detect.base import Severity
from lossmon.detectors.plateau import Plateau

import keras_traces as kt
from series import batches, epoch_record, epochs, header, run


def converging_epochs(n: int, seed: int, start: float = 0.69, floor: float = 0.1, rate: float = 0.35) -> list[float]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return list((floor + (start - floor) * np.exp(-rate * t)) * rng.lognormal(0, 0.01, n))


def test_stuck_at_chance_level_is_a_warning() -> None:
    losses = [0.75, 0.70, 0.695, 0.694, 0.6935, 0.6933, 0.6932, 0.6932, 0.6931]
    trace = run(Plateau(), [header("Adam", 0.001)] + epochs(losses, lr=0.001))
    rec, finding = trace.first_finding()
    assert rec.epoch == 6  # 5 epochs after the last improvement (epoch 1)
    assert finding.severity is Severity.WARNING
    assert "chance level 0.6931" in finding.message
    ev = finding.evidence
    assert ev["epochs_without_improvement"] == 5
    assert ev["chance_loss"] == pytest.approx(math.log(2))
    assert ev["best"] <= 0.694 and ev["current"] == pytest.approx(losses[6])
    assert ev["first"] == 0.75
    assert "labels" in finding.hint and "ReduceLROnPlateau" in finding.hint
    assert trace.state_at_end() == "active"


def test_converged_low_loss_is_info_not_warning() -> None:
    losses = [0.5, 0.2, 0.08, 0.04, 0.031, 0.0305, 0.0304, 0.0306, 0.0303, 0.0304, 0.0305]
    trace = run(Plateau(), [header()] + epochs(losses))
    assert trace.fired
    assert trace.severities() == {Severity.INFO}
    _, finding = trace.first_finding()
    assert "converged" in finding.message
    assert "EarlyStopping" in finding.hint


@pytest.mark.parametrize("seed", range(6))
def test_healthy_converging_run_is_quiet(seed: int) -> None:
    assert not run(Plateau(), [header()] + epochs(converging_epochs(10, seed))).fired


def test_slow_creep_counts_as_plateau() -> None:
    # 0.1% per epoch: never 1% below the last improvement within 5 epochs.
    losses = [0.9 * 0.999**i for i in range(8)]
    trace = run(Plateau(), epochs(losses))
    rec, _ = trace.first_finding()
    assert rec.epoch == 5


def test_min_delta_option() -> None:
    losses = [0.9 * 0.9985**i for i in range(10)]  # 0.15% per epoch
    assert run(Plateau(), epochs(losses)).fired
    assert not run(Plateau(min_delta=0.001), epochs(losses)).fired


def test_clears_when_improvement_resumes() -> None:
    losses = [1.0, 0.6] + [0.6] * 6 + [0.4, 0.3, 0.3]
    trace = run(Plateau(patience=3), epochs(losses))
    assert trace.episodes() == [(5 * 32, 9 * 32)]


def test_high_fraction_without_known_chance_level() -> None:
    # mse: no chance level; best 0.93 of a start of 1.0 is still >= 90%.
    losses = [1.0, 0.95, 0.93] + [0.93] * 6
    _, finding = run(Plateau(), [header(loss="mse")] + epochs(losses)).first_finding()
    assert finding.severity is Severity.WARNING
    assert "93% of the 1 it started from" in finding.message
    assert "chance_loss" not in finding.evidence


def test_a_floor_at_half_the_first_epoch_is_convergence_not_a_fault() -> None:
    # A noisy regression's floor: down from 1.0 to 0.6 and flat (healthy corpus runs end
    # at 50-70% of their first epoch's loss); the old 50% rule called it stuck.
    losses = [1.0, 0.8, 0.6] + [0.6] * 6
    _, finding = run(Plateau(), [header(loss="mse")] + epochs(losses)).first_finding()
    assert finding.severity is Severity.INFO and "converged" in finding.message


def test_categorical_chance_level_from_output_units() -> None:
    losses = [2.5, 2.31, 2.30, 2.30, 2.30, 2.30, 2.30, 2.30]
    rec = header(loss="sparse_categorical_crossentropy", units=(64, 10))
    _, finding = run(Plateau(), [rec] + epochs(losses)).first_finding()
    assert finding.evidence["chance_loss"] == pytest.approx(math.log(10))
    assert "chance level 2.303" in finding.message


def test_real_dead_network_after_lr_1_warns_and_names_the_lr() -> None:
    trace = kt.ADAM_LR_1_RANDOM_INPUTS
    records = [header("Adam", 1.0)] + [
        epoch_record(i, (i + 1) * kt.STEPS_PER_EPOCH, lr=1.0, **logs) for i, logs in enumerate(trace["epochs"])
    ]
    rec, finding = run(Plateau(), records).first_finding()
    assert finding.severity is Severity.WARNING
    assert rec.epoch <= 8
    assert "1000x Adam's default 0.001" in finding.hint
    assert finding.evidence["first"] > 5  # the blown-up first epoch


def test_real_healthy_keras_run_is_quiet() -> None:
    logs = kt.ADAM_LR_1E3_SEED0["epochs"]
    records = [header()] + [epoch_record(i, **e) for i, e in enumerate(logs)]
    assert not run(Plateau(), records).fired


def test_monitor_val_loss() -> None:
    records = epochs([0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1], [0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8])
    assert not run(Plateau(), records).fired
    trace = run(Plateau(monitor="val_loss"), records)
    assert trace.fired
    assert "val_loss" in trace.first_finding()[1].message


def test_garbage_is_skipped() -> None:
    recs = epochs([0.9, 0.8, 0.7, 0.6, 0.5])
    garbage = [
        epoch_record(5, loss=math.nan),
        epoch_record(6),  # no values
        epoch_record(7, val_loss=0.3),  # no training loss
        epoch_record(2, loss=0.5),  # out of order
        epoch_record(7, loss=0.5),  # repeated epoch
    ]
    records = [header(optimizer=None, loss=None)] + recs + garbage + batches([0.1, 0.2])
    assert not run(Plateau(), records).fired


def test_repeated_epoch_records_do_not_count_as_patience() -> None:
    records = epochs([1.0, 0.5, 0.5])
    records += [records[-1]] * 10
    assert not run(Plateau(), records).fired


def test_stuck_above_chance_after_blow_up_is_a_warning() -> None:
    # Far below the first epoch's 17, yet far worse than predicting the prior.
    losses = [17.0, 6.0, 5.0, 5.02, 4.99, 5.01, 4.98, 5.0, 5.01]
    trace = run(Plateau(), [header("Adam", 1.0)] + epochs(losses, lr=1.0))
    rec, finding = trace.first_finding()
    assert rec.epoch == 7
    assert finding.severity is Severity.WARNING
    assert "above chance level 0.6931" in finding.message
    assert finding.evidence["last_improvement_epoch"] == 2


def test_tiny_learning_rate_is_named() -> None:
    losses = [0.70, 0.698, 0.697, 0.696, 0.695, 0.694, 0.694]
    _, finding = run(Plateau(), [header("Adam", 1e-6)] + epochs(losses, lr=1e-6)).first_finding()
    assert "learning rate 1e-06 is 1000x below Adam's default 0.001: try 0.001" in finding.hint
