from __future__ import annotations

import math

import numpy as np
import pytest

from lossmon.detect.base import Severity
from lossmon.detectors.overfitting import Overfitting

import keras_traces as kt
from series import batches, epoch_record, epochs, header, run

TRAIN = [0.65, 0.5, 0.4, 0.32, 0.26, 0.21, 0.17, 0.14, 0.11, 0.09, 0.07, 0.06]
VAL = [0.66, 0.53, 0.45, 0.41, 0.39, 0.40, 0.42, 0.44, 0.47, 0.50, 0.54, 0.58]
#                                ^ best: epoch 4 (0-based)


def test_val_rising_while_train_falls_is_a_warning() -> None:
    trace = run(Overfitting(), [header()] + epochs(TRAIN, VAL))
    rec, finding = trace.first_finding()
    # 0.44 at epoch 7 is the 1st value > 0.39 * 1.1 = 0.429, three epochs after the best.
    assert rec.epoch == 7
    assert finding.severity is Severity.WARNING
    ev = finding.evidence
    assert ev["best_val_loss"] == 0.39 and ev["best_epoch"] == 4
    assert ev["val_loss"] == 0.44 and ev["loss"] == 0.14
    assert ev["loss_at_best"] == 0.26
    assert ev["gap"] == pytest.approx(0.30) and ev["gap_at_best"] == pytest.approx(0.13)
    assert ev["epochs_since_best"] == 3
    assert ev["rise"] == pytest.approx(0.44 / 0.39 - 1)
    assert "13% above its best 0.39 (epoch 5" in finding.message
    assert "loss 0.26 -> 0.14" in finding.message
    assert "kernel_regularizer=l2(1e-4)" in finding.hint
    assert "EarlyStopping(monitor='val_loss', patience=3, restore_best_weights=True)" in finding.hint
    assert "epoch-5 weights" in finding.hint
    assert trace.state_at_end() == "active"


@pytest.mark.parametrize("seed", range(8))
def test_healthy_noisy_validation_curve_is_quiet(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(30)
    train = 0.1 + 0.6 * np.exp(-t / 6)
    val = (0.15 + 0.55 * np.exp(-t / 6)) * rng.lognormal(0, 0.03, 30)
    assert not run(Overfitting(), epochs(list(train), list(val))).fired


def test_val_and_train_both_rising_is_not_overfitting() -> None:
    train = [0.6, 0.4, 0.3, 0.35, 0.45, 0.6, 0.8]
    val = [0.6, 0.45, 0.35, 0.42, 0.5, 0.65, 0.9]
    assert not run(Overfitting(), epochs(train, val)).fired


def test_single_val_spike_is_not_overfitting() -> None:
    train = [0.6, 0.5, 0.4, 0.35, 0.3, 0.27, 0.25, 0.23]
    val = [0.6, 0.5, 0.42, 0.9, 0.38, 0.37, 0.36, 0.35]
    assert not run(Overfitting(), epochs(train, val)).fired


def test_small_drift_within_margin_is_quiet() -> None:
    train = [0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1]
    val = [0.6, 0.5, 0.45, 0.40, 0.42, 0.43, 0.43, 0.435]  # < 0.44 = 0.40 * 1.1
    assert not run(Overfitting(), epochs(train, val)).fired
    assert run(Overfitting(margin=0.05), epochs(train, val)).fired


def test_clears_when_val_returns_within_margin() -> None:
    val = VAL[:10] + [0.42, 0.41]
    trace = run(Overfitting(), epochs(TRAIN, val))
    assert trace.episodes() == [(8 * 32, 11 * 32)]  # 0.42 <= 0.429: clear
    assert trace.state_at_end() == "clear"


def test_patience_option() -> None:
    first = run(Overfitting(patience=1), epochs(TRAIN, VAL)).first_finding()[0]
    assert first.epoch == 7
    assert run(Overfitting(patience=6), epochs(TRAIN, VAL)).first_finding()[0].epoch == 10
    assert not run(Overfitting(patience=8), epochs(TRAIN, VAL)).fired


def test_real_healthy_keras_run_is_quiet() -> None:
    logs = kt.ADAM_LR_1E3_SEED1["epochs"]
    assert not run(Overfitting(), [epoch_record(i, **e) for i, e in enumerate(logs)]).fired


def test_garbage_is_skipped() -> None:
    records = epochs(TRAIN[:5], VAL[:5])
    records += [
        epoch_record(5, loss=0.2, val_loss=math.nan),
        epoch_record(6, loss=0.18, val_loss=math.inf),
        epoch_record(7, loss=0.16),  # no validation this epoch
        epoch_record(8),  # nothing at all
        epoch_record(3, loss=0.01, val_loss=5.0),  # out of order
        epoch_record(8, loss=0.01, val_loss=5.0),  # repeated
    ]
    records += batches([0.3, 0.2], first_step=500) + [header(optimizer=None, loss=None)]
    assert not run(Overfitting(), records).fired


def test_missing_training_loss_cannot_prove_overfitting() -> None:
    assert not run(Overfitting(), epochs(None, VAL)).fired


def test_no_validation_data_is_quiet() -> None:
    assert not run(Overfitting(), epochs(TRAIN)).fired
