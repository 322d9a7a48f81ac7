"""Unit tests on synthetic series for oscillation, spike, slow_convergence,
chance_level and stalled: each fires on its problem and stays quiet on
healthy look-alikes."""

from __future__ import annotations

import numpy as np
import pytest

from lossmon.detect.base import Severity
from lossmon.detectors.chance_level import ChanceLevel
from lossmon.detectors.oscillation import Oscillation
from lossmon.detectors.slow_convergence import SlowConvergence
from lossmon.detectors.spike import Spike
from lossmon.detectors.stalled import TICK, Stalled, ticks
from lossmon.format import Record

import keras_traces as kt
from series import RUN, batches, converging, end, epochs, header, run, with_epochs


# ---------------------------------------------------------------- oscillation


def zigzag(n: int, low: float = 0.7, high: float = 9.0, seed: int = 0) -> list[float]:
    """SGD with momentum overshooting: alternating low/high losses, jittered."""
    rng = np.random.default_rng(seed)
    return [(high if i % 2 else low) * rng.lognormal(0, 0.3) for i in range(n)]


def test_oscillation_fires_on_a_zigzag_and_names_the_learning_rate() -> None:
    trace = run(Oscillation(), [header("SGD", 0.36, loss="mse", units=(1,))] + batches(zigzag(40)))
    rec, finding = trace.first_finding()
    assert rec.step == 19  # 8 zig-zagging windows of 12 steps: the first ends at step 12
    assert finding.severity is Severity.WARNING
    assert finding.evidence["typical_swing"] > 3 and finding.evidence["zigzag"] <= -0.3
    assert finding.evidence["zigzag_windows"] == 8
    assert "learning rate 0.36 is 36x SGD's default 0.01: try 0.01" in finding.hint
    assert "momentum" in finding.hint


@pytest.mark.parametrize("seed", range(5))
def test_oscillation_quiet_on_noisy_healthy_losses(seed: int) -> None:
    losses = converging(400, seed, noise=0.35)
    assert not run(Oscillation(), [header()] + batches(losses)).fired


def test_oscillation_quiet_on_real_healthy_keras_run() -> None:
    assert not run(Oscillation(), [header()] + batches(kt.ADAM_LR_1E3_SEED0["steps"], 25)).fired


def test_oscillation_clears_when_the_swings_calm_down() -> None:
    losses = zigzag(40) + list(converging(60, 1, start=0.5, floor=0.4, noise=0.05))
    trace = run(Oscillation(), batches(losses))
    assert trace.fired and trace.state_at_end() == "clear"


# ---------------------------------------------------------------- spike


def test_spike_fires_on_one_outlier_batch_per_epoch() -> None:
    rng = np.random.default_rng(0)
    losses = list(6.5 * rng.lognormal(0, 0.1, 60))
    for step in (18, 38, 58):  # batch 18 of each 20-step epoch
        losses[step] = 32.0
    records = [header(loss="mse", units=(1,))]
    for rec in batches(losses, steps_per_epoch=20):
        rec.data = {"batch": (rec.step - 1) % 20}
        records.append(rec)
    trace = run(Spike(), records)
    rec, finding = trace.first_finding()
    assert rec.step == 19 and finding.severity is Severity.WARNING
    assert "spiked to 32" in finding.message
    last = trace.findings[-1][1]
    assert last.evidence["spikes"] == 3 and last.evidence["batch_indices"] == [18]
    assert "Every spike is at batch 18" in last.hint and "StandardScaler" in last.hint
    assert len(trace.episodes()) == 1  # one alert while spikes recur


@pytest.mark.parametrize("seed", range(5))
def test_spike_quiet_on_heavy_tailed_healthy_batches(seed: int) -> None:
    assert not run(Spike(), batches(converging(400, seed, noise=0.5))).fired


def test_spike_ignores_a_converged_classifiers_odd_batch() -> None:
    # 0.5 among batches of 0.02 is one misclassified example: below the start.
    losses = [0.7] * 10 + [0.02] * 30 + [0.5] + [0.02] * 10
    assert not run(Spike(), batches(losses)).fired


def test_spike_clears_after_hold_steps() -> None:
    losses = [1.0] * 20 + [10.0] + [1.0] * 80
    trace = run(Spike(hold=30), batches(losses))
    assert trace.episodes() == [(21, 52)]


# ---------------------------------------------------------------- slow_convergence


def test_slow_convergence_fires_on_a_crawl_and_blames_the_low_rate() -> None:
    losses = [9.92 * 0.9955**i for i in range(8)]
    trace = run(SlowConvergence(), [header("Adam", 1e-5, loss="mse", epochs=8)] + epochs(losses))
    rec, finding = trace.first_finding()
    assert rec.epoch == 3 and rec.step == 128  # 3 epochs and 100 steps are needed to judge
    assert finding.severity is Severity.WARNING
    assert finding.evidence["rate_per_epoch"] == pytest.approx(0.0045, abs=1e-4)
    assert "Learning rate 1e-05 is 100x below Adam's default 0.001: try 0.001" in finding.hint


@pytest.mark.parametrize("rate", [0.06, 0.2, 0.5])
def test_slow_convergence_quiet_when_the_loss_falls_at_a_normal_pace(rate: float) -> None:
    losses = [2.0 * (1 - rate) ** i for i in range(10)]
    assert not run(SlowConvergence(), [header(epochs=10)] + epochs(losses)).fired


def test_slow_convergence_quiet_once_most_of_the_loss_is_gone() -> None:
    losses = [0.7, 0.3, 0.2, 0.199, 0.198, 0.197]  # converged: plateau's business
    assert not run(SlowConvergence(), epochs(losses)).fired


# ---------------------------------------------------------------- chance_level


def test_chance_level_fires_on_random_labels_after_three_epochs() -> None:
    records = [header(loss="binary_crossentropy", units=(128, 1))]
    records += batches([0.645, 0.714, 0.702, 0.742, 0.711] + [0.7] * 15, steps_per_epoch=20)
    records += epochs([0.7054, 0.6872, 0.6794, 0.67], [0.6906, 0.6923, 0.6958, 0.699], steps_per_epoch=20)
    trace = run(ChanceLevel(), records)
    rec, finding = trace.first_finding()
    assert rec.epoch == 2 and finding.severity is Severity.WARNING  # three epochs at chance
    assert "ln 2 for binary cross-entropy" in finding.message
    assert finding.evidence["chance_loss"] == pytest.approx(np.log(2))
    assert finding.evidence["epochs_at_chance"] == 3
    assert "labels line up" in finding.hint


def test_chance_level_is_quiet_on_a_slow_start_that_gains_every_epoch() -> None:
    """val_loss 0.693 -> 0.679 -> 0.665 -> 0.640: still in the band but
    gaining 2% an epoch, as slow starters do (the real corpus run is in
    test_corpus_false_alarms.py); the old rule warned after its first epoch."""
    records = [header(loss="binary_crossentropy", units=(32, 1))] + batches([0.694] * 5 + [0.69] * 70, steps_per_epoch=75)
    records += epochs([0.694, 0.685, 0.671, 0.65], [0.693, 0.679, 0.665, 0.640], steps_per_epoch=75)
    assert not run(ChanceLevel(), records).fired


def test_chance_level_waits_for_min_steps_before_judging() -> None:
    """Epochs of seven steps at ln 2 say nothing until the run has taken 60
    steps; the same losses in 21-step epochs are judged from the third."""
    at_chance = [0.728, 0.701, 0.715, 0.749, 0.622, 0.738, 0.71]
    short = [header(loss="binary_crossentropy", units=(256, 1))] + batches(at_chance * 10, steps_per_epoch=7)
    short += epochs([0.709] * 10, [0.713] * 10, steps_per_epoch=7)
    rec, _ = run(ChanceLevel(), short).first_finding()
    assert rec.step == 63  # the first epoch end past 60 steps (the band has held since epoch 1)
    long = [header(loss="binary_crossentropy", units=(256, 1))] + batches(at_chance * 9, steps_per_epoch=21)
    long += epochs([0.709] * 3, [0.713] * 3, steps_per_epoch=21)
    rec, _ = run(ChanceLevel(), long).first_finding()
    assert rec.step == 63
    assert run(ChanceLevel(min_steps=0, patience=1), short[:8] + short[-10:-9]).fired


def test_chance_level_uses_ln_k_for_k_classes() -> None:
    records = [header(loss="sparse_categorical_crossentropy", units=(64, 4))] + batches([1.39] * 10)
    records += epochs([1.385, 1.384, 1.384], [1.386, 1.387, 1.386])
    _, finding = run(ChanceLevel(), records).first_finding()
    assert finding.evidence["chance_loss"] == pytest.approx(np.log(4))
    assert "ln 4 for 4 classes" in finding.message


def test_chance_level_quiet_on_a_learning_run_even_if_slow() -> None:
    # Epoch 1's val_loss 0.67 is near ln 2, but the training loss fell 8%.
    records = [header()] + batches([0.74, 0.73, 0.72, 0.72, 0.71] + [0.68] * 15, 20)
    records += epochs([0.68, 0.55, 0.45], [0.67, 0.55, 0.46], steps_per_epoch=20)
    assert not run(ChanceLevel(), records).fired


def test_chance_level_quiet_on_real_healthy_run_and_regression() -> None:
    healthy = kt.ADAM_LR_1E3_SEED0
    records = [header()] + with_epochs(healthy["steps"], 25)
    assert not run(ChanceLevel(), records).fired
    mse = [header(loss="mse", units=(1,))] + epochs([0.69, 0.69, 0.69], [0.69, 0.69, 0.69])
    assert not run(ChanceLevel(), mse).fired


def test_chance_level_clears_when_the_model_starts_to_learn() -> None:
    records = [header()] + batches([0.7] * 5) + epochs([0.7, 0.69, 0.69, 0.5], [0.69, 0.69, 0.69, 0.5])
    assert run(ChanceLevel(), records).state_at_end() == "clear"


# ---------------------------------------------------------------- stalled


def timed(kind: str, step: int, t: float, epoch: int | None = 0) -> Record:
    return Record(kind, RUN, step, epoch, time=t, values={"loss": 0.5} if kind != "header" else {})


def steady(n: int = 40, every: float = 0.5) -> list[Record]:
    return [timed("header", 0, 1000.0, None)] + [timed("batch", i, 1000.0 + i * every) for i in range(1, n + 1)]


def tick(t: float, step: int = 40) -> Record:
    return Record(TICK, RUN, step, 1, time=t)


def test_stalled_fires_on_silence_far_beyond_the_runs_rhythm() -> None:
    last = 1000.0 + 40 * 0.5
    trace = run(Stalled(), steady() + [tick(last + 5), tick(last + 30)])
    assert [bool(v) for _, v in trace.steps[-2:]] == [False, True]
    _, finding = trace.first_finding()
    assert finding.severity is Severity.WARNING
    assert "no record for 30 s and no end record" in finding.message
    assert "every 0.5 s" in finding.message and "OOM" in finding.hint


def test_stalled_respects_long_pauses_the_run_already_had() -> None:
    records = steady(20) + [timed("epoch", 20, 1010.0 + 60.0)]  # a 60 s validation pass
    records += [timed("batch", 20 + i, 1070.0 + i * 0.5) for i in range(1, 21)]
    last = 1070.0 + 10.0
    assert not run(Stalled(), records + [tick(last + 200)]).fired  # < 10 x 30 s
    assert run(Stalled(), records + [tick(last + 400)]).fired


def test_stalled_clears_on_a_new_record_and_never_fires_after_the_end() -> None:
    last = 1000.0 + 20.0
    trace = run(Stalled(), steady() + [tick(last + 60), timed("batch", 41, last + 61)])
    assert trace.state_at_end() == "clear"
    assert not run(Stalled(), steady() + [end(40), tick(last + 10_000)]).fired


def test_ticks_only_for_runs_without_an_end() -> None:
    from lossmon.model import RunStore

    store = RunStore()
    for rec in steady(5):
        store.add(rec)
    other = Record("header", "done", 0, time=1.0)
    store.add(other)
    store.add(Record("end", "done", 3, 0, time=2.0, data={"status": "completed"}))
    out = ticks(store.runs.values(), 5000.0)
    assert [(r.kind, r.run, r.step, r.time) for r in out] == [(TICK, RUN, 5, 5000.0)]


def test_stalled_ignores_non_finite_times() -> None:
    records = steady(5) + [Record("batch", RUN, 6, 0, time=float("nan"), values={"loss": 0.5})]
    records += [tick(float("nan")), tick(float("inf"))]
    trace = run(Stalled(), records)
    assert not trace.fired
    assert run(Stalled(), records + [tick(1000.0 + 2.5 + 60)]).fired
