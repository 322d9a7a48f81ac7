from __future__ import annotations

import math

import numpy as np
import pytest

from lossmon.detect.base import Severity
from lossmon.detectors.divergence import Divergence

import keras_traces as kt
from series import (
    batch,
    batches,
    converging,
    end,
    epoch_record,
    epochs,
    flat,
    header,
    run,
    with_epochs,
)


def keras_records(trace: dict) -> list:
    """A recorded Keras run as records: header, batches, epoch ends."""
    spe = kt.STEPS_PER_EPOCH
    out = [header("Adam", trace["lr"])]
    for i, loss in enumerate(trace["steps"]):
        out.append(batch(i + 1, i // spe, loss=loss))
        if (i + 1) % spe == 0:
            out.append(epoch_record(i // spe, i + 1, lr=trace["lr"], **trace["epochs"][i // spe]))
    return out


# ---------------------------------------------------------------- real Keras runs


def test_seed_case_adam_lr_1_fires_critical_within_first_epoch() -> None:
    trace = run(Divergence(), keras_records(kt.ADAM_LR_1_LINEAR))
    rec, finding = trace.first_finding()
    assert rec.kind == "batch" and rec.epoch == 0
    assert rec.step <= 10
    assert finding.severity is Severity.CRITICAL
    ev = finding.evidence
    assert ev["learning_rate"] == 1.0 and ev["optimizer"] == "Adam"
    assert ev["best_loss"] == pytest.approx(0.6241)
    assert ev["ratio"] >= 10
    assert ev["start_loss"] == pytest.approx(0.6241)
    assert "1000x Adam's default 0.001" in finding.hint
    assert "clipnorm=1.0" in finding.hint
    assert f"step {rec.step}" in finding.message


@pytest.mark.parametrize("name", ["ADAM_LR_1E3_SEED0", "ADAM_LR_1E3_SEED1", "ADAM_LR_1E3_SEED2"])
def test_real_healthy_adam_default_runs_never_fire(name: str) -> None:
    trace = run(Divergence(), keras_records(getattr(kt, name)))
    assert not trace.fired


def test_real_blow_up_then_dead_network_fires_then_clears() -> None:
    # lr=1.0 on coin-flip labels: the loss explodes, then the ReLUs die and
    # the loss sits at ln 2 again. Divergence is over; plateau's turn.
    trace = run(Divergence(), keras_records(kt.ADAM_LR_1_RANDOM_INPUTS))
    episodes = trace.episodes()
    assert len(episodes) == 1
    start, cleared = episodes[0]
    assert start <= 10
    assert cleared is not None and cleared <= 3 * kt.STEPS_PER_EPOCH
    assert trace.state_at_end() == "clear"


# ---------------------------------------------------------------- healthy synthetic runs


@pytest.mark.parametrize("seed", range(8))
def test_healthy_noisy_converging_run_never_fires(seed: int) -> None:
    losses = converging(640, seed, start=0.69, floor=0.05, noise=0.3)
    assert not run(Divergence(), [header()] + with_epochs(losses)).fired


@pytest.mark.parametrize("seed", range(8))
def test_noisy_loss_near_zero_never_fires(seed: int) -> None:
    # Per-step loss down to ~0.002 with heavy scatter: doubling happens all
    # the time in relative terms but gives back nothing of the 0.69 drop.
    losses = converging(1500, seed, start=0.69, floor=0.002, tau=100, noise=0.8)
    rng = np.random.default_rng(seed + 100)
    spikes = rng.choice(np.arange(300, 1500), 20, replace=False)
    losses[spikes] *= 30  # the odd hard batch
    assert not run(Divergence(), batches(losses)).fired


@pytest.mark.parametrize("seed", range(5))
def test_flat_noisy_loss_never_fires(seed: int) -> None:
    assert not run(Divergence(), batches(flat(500, seed, 0.693, noise=0.3))).fired


def test_lucky_first_batch_is_not_taken_as_the_best() -> None:
    losses = list(flat(300, 3, 0.7, noise=0.1))
    losses[0] = 0.2
    assert not run(Divergence(), batches(losses)).fired


def test_short_spike_that_recovers_does_not_fire() -> None:
    losses = converging(600, 1, floor=0.1)
    losses[300:302] = 20.0  # two bad batches
    assert not run(Divergence(), batches(losses)).fired


def test_longer_excursion_fires_then_clears() -> None:
    losses = converging(800, 2, floor=0.1, noise=0.2)
    losses[400:460] = flat(60, 9, 0.6, noise=0.2)  # back near the start for 60 steps
    trace = run(Divergence(), batches(losses))
    episodes = trace.episodes()
    assert len(episodes) == 1
    start, cleared = episodes[0]
    assert 400 < start <= 420
    assert cleared is not None and 460 < cleared <= 520
    assert trace.severities() == {Severity.WARNING}  # still below the first loss
    assert trace.state_at_end() == "clear"


# ---------------------------------------------------------------- diverging synthetic runs


@pytest.mark.parametrize("seed", range(5))
def test_lr_too_high_rising_loss_fires_critical(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.69, 10.0, 40)
    losses = np.concatenate([ramp, rng.uniform(5, 15, 200)]) * rng.lognormal(0, 0.2, 240)
    trace = run(Divergence(), [header("SGD", 0.5)] + batches(losses))
    rec, first = trace.first_finding()
    assert rec.step <= 32
    assert Severity.CRITICAL in trace.severities()
    assert trace.state_at_end() == "active"
    assert "50x SGD's default 0.01" in first.hint


def test_rebound_after_progress_is_a_warning() -> None:
    losses = np.concatenate([converging(400, 4, floor=0.1, tau=60, noise=0.15), flat(200, 5, 0.5, 0.15)])
    trace = run(Divergence(), batches(losses))
    rec, finding = trace.first_finding()
    assert 400 < rec.step <= 420
    assert finding.severity is Severity.WARNING
    assert finding.evidence["rule"] == "rebound"
    assert finding.evidence["ratio"] >= 2
    assert finding.evidence["best_step"] < 400


def test_hovering_near_threshold_does_not_flap() -> None:
    losses = np.concatenate(
        [converging(300, 6, floor=0.1, tau=40, noise=0.05), np.full(30, 0.5), flat(300, 7, 0.19, 0.05)]
    )
    trace = run(Divergence(), batches(losses))
    # 0.19 is under the entry thresholds (2x the ~0.1 best, a quarter of the
    # progress) but over the hold ones (1.5x, an eighth): once on, it stays on.
    assert len(trace.episodes()) == 1
    assert trace.state_at_end() == "active"


def test_epoch_only_run_uses_epoch_losses() -> None:
    trace = run(Divergence(), [header()] + epochs([0.69, 0.5, 0.4, 0.35, 0.9, 2.0, 3.0]))
    rec, finding = trace.first_finding()
    # The epoch EMA (alpha 0.5) damps the first bad epoch; the second one fires.
    assert rec.epoch == 5
    assert finding.evidence["source"] == "epoch"
    assert finding.evidence["best_loss"] == pytest.approx(0.424, rel=0.01)  # smoothed


def test_epoch_only_healthy_run_is_quiet() -> None:
    assert not run(Divergence(), epochs([0.69, 0.52, 0.41, 0.36, 0.33, 0.34, 0.31, 0.32, 0.3])).fired


def test_batches_win_over_epochs() -> None:
    # Epoch means say nothing new once per-step values are there.
    records = [header()] + with_epochs(converging(320, 0))
    records.insert(40, epoch_record(0, 33, loss=50.0))
    assert not run(Divergence(), records).fired


# ---------------------------------------------------------------- hints and options


def test_hint_without_header_is_generic_but_concrete() -> None:
    losses = np.concatenate([[0.7] * 5, np.full(50, 9.0)])
    rec, finding = run(Divergence(), batches(losses)).first_finding()
    assert "Lower the learning rate 10x" in finding.hint
    assert "learning_rate" not in finding.evidence


def test_hint_with_default_lr_suggests_ten_times_lower() -> None:
    losses = np.concatenate([[0.7] * 5, np.full(50, 9.0)])
    _, finding = run(Divergence(), [header("Adam", 0.001)] + batches(losses)).first_finding()
    assert "0.001 -> 0.0001" in finding.hint


def test_factor_option_changes_sensitivity() -> None:
    losses = np.concatenate([converging(300, 8, floor=0.1, tau=40, noise=0.05), np.full(100, 0.45)])
    assert run(Divergence(), batches(losses)).fired
    assert not run(Divergence(factor=5.0), batches(losses)).fired


# ---------------------------------------------------------------- garbage


def test_non_finite_and_missing_values_are_skipped() -> None:
    losses = list(converging(400, 3))
    records = batches(losses)
    for i in (50, 51, 52, 53, 54, 55, 200):
        records[i] = batch(records[i].step, 0, loss=math.nan if i != 200 else math.inf)
    records[100] = batch(records[100].step, 0)  # no values at all
    records[101] = batch(records[101].step, 0, accuracy=0.5)  # no loss
    records.insert(150, end(150, "error"))
    trace = run(Divergence(), [header(optimizer=None)] + records)
    assert not trace.fired


def test_out_of_order_and_repeated_steps_are_ignored() -> None:
    records = batches(converging(400, 5))
    # Replays of old steps with huge losses would fire if they counted.
    garbage = [batch(s, 0, loss=40.0) for s in range(100, 130)]
    records = records[:200] + garbage + records[200:]
    assert not run(Divergence(), records).fired


def test_negative_losses_are_not_judged() -> None:
    losses = np.concatenate([np.linspace(0.5, -2.0, 100), np.full(50, 3.0)])
    assert not run(Divergence(), batches(losses)).fired


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"optimizer": "adam"},
        {"optimizer": {"class": 3, "learning_rate": "fast"}},
        {"optimizer": {"class": "Adam", "learning_rate": {"class": "ExponentialDecay"}}},
        {"optimizer": {"class": "Adam", "learning_rate": math.nan}, "loss": ["a", "b"], "model": "x"},
    ],
)
def test_odd_headers_do_not_break_hints(data: dict) -> None:
    from lossmon.format import Record

    records = [Record("header", "r", 0, data=data)] + batches(np.concatenate([[0.7] * 5, np.full(30, 9.0)]))
    assert run(Divergence(), records).fired
