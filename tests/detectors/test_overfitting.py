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
    # 0.44 at epoch 7 is the 1st value > 0.39 * 1.1 = 0.429, three epochs after the best:
    # it has given back 0.05 of the 0.27 it fell (19%), a note; the warning waits until the
    # lowest of the last three epochs (0.47 at epoch 10) has given back 30%.
    assert rec.epoch == 7
    assert finding.severity is Severity.INFO
    warned = [(r, f) for r, f in trace.findings if f.severity is Severity.WARNING]
    assert warned[0][0].epoch == 10 and warned[0][1].evidence["given_back"] == pytest.approx(0.15 / 0.27)
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


def test_one_noisy_epoch_of_a_small_validation_set_is_not_a_warning() -> None:
    """A fresh-seed corpus run (wine, 36 validation rows, batches of 4):
    val_loss jumps from 0.082 to 0.137 for one epoch after a best of 0.062,
    61% of its fall, and is back at 0.096 the next; it ended as well as its
    setup gets."""
    val = [0.185, 0.158, 0.158, 0.127, 0.144, 0.083, 0.109, 0.083, 0.08, 0.076, 0.112, 0.062, 0.082, 0.137, 0.096,
           0.076, 0.085, 0.082, 0.095]
    train = [0.866, 0.517, 0.508, 0.436, 0.425, 0.473, 0.395, 0.438, 0.382, 0.286, 0.321, 0.312, 0.254, 0.315, 0.206,
             0.258, 0.21, 0.244, 0.164]
    assert Severity.WARNING not in run(Overfitting(), [header()] + epochs(train, val)).severities()


def test_a_drift_that_gives_back_little_is_a_note_not_a_warning() -> None:
    """A healthy corpus run (Embedding + pooling, AdamW): val_loss fell from
    0.537 to 0.068 and then drifted up to 0.093 over 26 epochs while the
    training loss kept falling: 37% above its best, but 5% of its progress.
    The old rule warned; it ended as good as its setup gets."""
    val = [0.537, 0.318, 0.171, 0.111, 0.088, 0.078, 0.073, 0.07, 0.068, 0.068, 0.068, 0.068, 0.068, 0.068, 0.069,
           0.07, 0.07, 0.071, 0.073, 0.073, 0.074, 0.075, 0.077, 0.078, 0.079, 0.08, 0.081, 0.082, 0.083, 0.083, 0.085,
           0.086, 0.087, 0.088, 0.089, 0.09, 0.093]
    train = [0.629, 0.434, 0.244, 0.139, 0.096, 0.074, 0.064, 0.059, 0.054, 0.047, 0.044, 0.044, 0.042, 0.04, 0.038,
             0.038, 0.037, 0.035, 0.034, 0.032, 0.032, 0.033, 0.029, 0.029, 0.03, 0.029, 0.027, 0.026, 0.026, 0.027,
             0.026, 0.025, 0.025, 0.025, 0.025, 0.025, 0.022]
    trace = run(Overfitting(), [header()] + epochs(train, val))
    assert trace.fired and trace.severities() == {Severity.INFO}


def test_validation_that_never_tracked_training_is_not_memorising() -> None:
    """A healthy corpus CNN with BatchNormalization and validation_split: its
    val_loss climbs from 1.46 to 3.78 while its moving statistics warm up,
    then falls to 0.05. At its early best val_loss was 15x the training loss:
    not overfitting, and no warning."""
    val = [1.669, 1.455, 1.732, 2.1, 2.673, 3.062, 3.433, 3.669, 3.777, 3.764, 3.621, 3.388, 3.075, 2.71, 2.316,
           1.926, 1.573, 1.252, 0.981, 0.758, 0.579, 0.446, 0.349, 0.276, 0.226, 0.188, 0.16]
    train = [0.605, 0.092, 0.033, 0.015, 0.009, 0.007, 0.005, 0.004, 0.003, 0.003, 0.003, 0.002, 0.002, 0.002, 0.002,
             0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001]
    trace = run(Overfitting(), [header()] + epochs(train, val))
    assert Severity.WARNING not in trace.severities()


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
