"""The issue's three problems, each built from records shaped like the
callback's, read as one incident: its root cause first, its symptoms under
it (lossmon/detect/engine.py), whether fed one record at a time or in one
read."""

from __future__ import annotations

import math

from lossmon.detect import Engine, Severity, available_detectors
from lossmon.format import to_record

RELU_MODEL = {"layers": [{"name": "dense", "class": "Dense", "units": 16, "activation": "relu"},
                         {"name": "out", "class": "Dense", "units": 1, "activation": "sigmoid"}]}


def header(lr=0.001, optimizer="Adam", **extra):
    return {"kind": "header", "run": "r", "step": 0, "epochs": 10, "steps_per_epoch": 20,
            "optimizer": {"class": optimizer, "learning_rate": lr}, "loss": "binary_crossentropy",
            "model": RELU_MODEL, **extra}


def batch(step, loss):
    return {"kind": "batch", "run": "r", "step": step, "epoch": (step - 1) // 20, "time": 1000.0 + step,
            "logs": {"loss": loss}, "step_logs": {"loss": loss}}


def epoch(index, loss, val_loss):
    return {"kind": "epoch", "run": "r", "step": (index + 1) * 20, "epoch": index, "time": 1000.0 + (index + 1) * 20,
            "logs": {"loss": loss, "val_loss": val_loss}}


def probe(step, layers=None, **values):
    return {"kind": "probe", "run": "r", "step": step, "epoch": (step - 1) // 20, "layers": layers or {}, **values}


def incidents(raw):
    """The reading order, one record at a time; checked against one read."""
    records = [to_record(r) for r in raw]
    engine = Engine(available_detectors())
    for record in records:
        engine.feed(record)
    in_one_read = Engine(available_detectors())
    in_one_read.feed_many(records)
    assert [a.to_json() for a in in_one_read.alerts] == [a.to_json() for a in engine.alerts]
    return [(depth, alert) for depth, alert in engine.ordered() if alert.worst.rank >= Severity.WARNING.rank]


def test_nan_inputs_then_nan_loss_then_dead_units_and_unchanged_weights():
    inputs = {"available": True, "rows": 100, "features": 4, "nonfinite": 3, "scale_max": 1.0,
              "scale_median": 1.0, "scale_min": 0.5, "worst": []}
    raw = [header(data={"inputs": inputs})]
    for step in range(1, 41):
        raw.append(batch(step, 0.69 if step < 5 else math.nan))
        if step % 10 == 0:
            raw.append(probe(step, layers={"dense": {"dead_fraction": 1.0, "update_ratio": 0.0},
                                           "out": {"update_ratio": 0.0}}))
    found = incidents(raw)
    (root,) = [alert for depth, alert in found if depth == 0]
    assert (root.detector, root.severity) == ("nonfinite", Severity.CRITICAL)  # NaN anywhere is nonfinite's
    assert root.step == 0 and root.evidence["first_seen"]["where"] == "inputs"
    assert {a.detector for a in root.tree()} >= {"nonfinite", "dead_relu", "update_ratio"}
    assert all(a.root is root for a in root.tree())


def test_a_too_high_learning_rate_then_divergence_spikes_and_zigzags():
    raw = [header(lr=1.0)]
    loss = 0.7
    for step in range(1, 121):
        if step <= 10:
            loss *= 0.97
        elif step <= 40:
            loss *= 1.25
        value = loss * (6.0 if step % 2 and step > 40 else 1.0) * (30.0 if step == 90 else 1.0)
        raw.append(batch(step, value))
        if step % 20 == 0:
            raw.append(probe(step, layers={"dense": {"dead_fraction": 0.7}}))
    found = incidents(raw)
    roots = [alert for depth, alert in found if depth == 0]
    assert [root.detector for root in roots] == ["lr_config"]
    tree = {a.detector: a for a in roots[0].tree()}
    assert {"divergence", "oscillation", "dead_relu"} <= set(tree)
    assert tree["divergence"].caused_by is roots[0] and tree["oscillation"].caused_by is tree["divergence"]


def test_vanishing_gradients_then_plateau_chance_level_and_slow_convergence():
    raw = [header()]
    for e in range(8):
        for step in range(e * 20 + 1, e * 20 + 21):
            raw.append(batch(step, 0.69 + 0.001 * (step % 3)))
            if step % 10 == 0:
                raw.append(probe(step, grad_norm=1.0, kernel_grad_norm=0.03, grad_first=0.02, grad_ratio=1.0))
        raw.append(epoch(e, 0.6931 + 0.0001 * (e % 2), 0.6932))
    found = incidents(raw)
    roots = [alert for depth, alert in found if depth == 0]
    assert [root.detector for root in roots] == ["vanishing_gradients"]
    under = {a.detector for a in roots[0].tree()[1:]}
    assert under and under <= {"plateau", "chance_level", "slow_convergence"}


def test_a_ratio_that_crosses_its_threshold_for_300_epochs_is_a_few_incidents():
    """grad_ratio above exploding_gradients' 70 for 3 probes, then below for
    13-37, for 300 epochs: twelve alerts before incidents, now three, the
    later flaps counted as occurrences."""
    import random

    rng = random.Random(25)
    raw, high, left = [header()], False, 3
    for e in range(1, 301):
        left -= 1
        if left <= 0:
            high = not high
            left = 3 if high else rng.randint(12, 37)
        raw.append({**probe(e * 10, grad_norm=1.0, grad_first=1.0, kernel_grad_norm=0.9,
                            grad_ratio=100.0 if high else 10.0), "epoch": e - 1})
    found = [a for _, a in incidents(raw) if a.detector == "exploding_gradients"]
    assert len(found) <= 3 and sum(a.occurrences for a in found) == 12


def test_the_peak_of_dead_units_is_the_probe_where_most_were_dead():
    raw = [header()] + [probe(step * 10, layers={"dense": {"dead_fraction": share}})
                        for step, share in enumerate([0.6, 0.6, 0.9, 0.7, 0.6], start=1)]
    ((_, dead),) = incidents(raw)
    assert dead.detector == "dead_relu" and dead.evidence["worst_fraction"] == 0.6
    assert dead.peak["step"] == 30 and dead.peak["evidence"]["worst_fraction"] == 0.9


def test_weights_that_barely_move_then_a_stall_and_a_crawl_are_one_incident():
    """A rate 1000x too low, as a fresh-seed corpus run read: the probe sees
    one step move the weights by 1e-7 of their norm, then the loss stalls
    (plateau) and crawls (slow convergence). One problem: the stall and the
    crawl come under the update ratio, not as three more entries."""
    linear = {"layers": [RELU_MODEL["layers"][0], {"name": "out", "class": "Dense", "units": 1, "activation": "linear"}]}
    raw = [header(lr=3e-6, loss="mse", epochs=40, model=linear)]
    loss = 1.0
    for step in range(1, 801):
        loss *= 0.99995 if step < 400 else 0.9997
        raw.append(batch(step, loss))
        if step % 20 == 0:
            raw.append(epoch(step // 20 - 1, loss, loss * 1.02))
        if step % 50 == 0:
            raw.append(probe(step, layers={"a": {"update_ratio": 1e-7}, "b": {"update_ratio": 2e-7}, "c": {"update_ratio": 1e-7}}))
    found = incidents(raw)
    roots = [alert for depth, alert in found if depth == 0]
    assert [a.detector for a in roots] == ["update_ratio"], [(a.detector, a.step) for a in roots]
    assert {a.detector for a in roots[0].tree()} >= {"update_ratio", "plateau"}
