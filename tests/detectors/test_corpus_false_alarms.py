"""False alarms the calibration corpus found, replayed from the real series.

Each trace is a healthy run of the tuning corpus (it ended as well as its
setup gets) that an old rule warned on; tests/detectors/corpus_traces.py
holds the series. The faults the same rules must still catch are the
other tests of each detector and the scenario suite.
"""

from __future__ import annotations

from lossmon.detect.base import Severity
from lossmon.detectors.oscillation import Oscillation
from lossmon.detectors.plateau import Plateau
from lossmon.detectors.slow_convergence import SlowConvergence
from lossmon.detectors.spike import Spike

import corpus_traces as ct
from series import batches, epochs, header, run


def test_small_batch_noise_under_momentum_is_not_oscillation() -> None:
    """Batches of 8 under SGD momentum swing 1.5-3x between steps, high and
    low alternating now and then: the old rule (3x swing, half the moves
    reversing) warned 9 times in 1350 steps."""
    records = [header("SGD", 0.0073)] + batches(ct.SGD_MOMENTUM_BATCH8_STEPS, steps_per_epoch=150)
    assert not run(Oscillation(), records).fired
    assert run(Oscillation(persist=1, zigzag=0.0), records).fired  # the old-style rule on the same steps


def test_one_hard_example_in_a_batch_of_four_is_not_a_spike() -> None:
    """A batch of 4 with one misclassified row: 1.01 against a median of
    0.17, 6x, above the start; but this run's losses change 1.2x from step
    to step as a rule, so 6x is within its noise."""
    records = [header("Adam", 0.0004)] + batches(ct.GRU_BATCH4_STEPS, steps_per_epoch=240)
    assert not run(Spike(), records).fired
    assert run(Spike(noise=0.0), records).fired  # without the noise floor it warns


def test_a_noisy_task_s_floor_is_neither_slow_nor_a_plateau() -> None:
    """Four-class make_classification with 2% flipped labels: the loss goes
    from 1.39 to 0.72 (the task's floor) and creeps along it. The old rules
    compared it with the first epoch's mean (1.378) and warned 14 times."""
    records = [header("RMSprop", 0.0017, loss="sparse_categorical_crossentropy", units=(128, 4), epochs=57)]
    records += batches(ct.NOISY_FLOOR_START, steps_per_epoch=5)
    records += epochs(ct.NOISY_FLOOR_EPOCHS, steps_per_epoch=5)
    assert not run(SlowConvergence(), records).fired
    assert Severity.WARNING not in run(Plateau(), records).severities()


def test_a_warm_up_at_chance_for_two_epochs_is_a_slow_start() -> None:
    """val_loss 0.689, 0.660 against ln 2 = 0.693 for two epochs while the
    rate warms up from 0, then 0.42, 0.22: the old rule warned after the
    first epoch; the run ended as well as its setup gets."""
    from lossmon.detectors.chance_level import ChanceLevel

    records = [header("Nadam", 0.0009, loss="binary_crossentropy", units=(32, 1), epochs=30)]
    records += batches(ct.WARMUP_RNN_START, steps_per_epoch=75)
    loss, val = zip(*ct.WARMUP_RNN_EPOCHS)
    records += epochs(list(loss), list(val), steps_per_epoch=75)
    assert not run(ChanceLevel(), records).fired
    assert run(ChanceLevel(patience=1, min_gain=0.0, min_steps=0), records).fired  # the old one-epoch rule
