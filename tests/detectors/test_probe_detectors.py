"""The probe and train-begin detectors on hand-built records: rules, edges, clears.

The real runs these rules were tuned on are in tests/test_probes.py; here
each threshold is pinned on both sides with records shaped like the
callback's.
"""

from __future__ import annotations

import pytest

from lossmon.detectors._util import RunInfo
from lossmon.detect import Engine, Severity
from lossmon.detectors import BUILTIN, PROBE_DETECTORS
from lossmon.format import to_record


def header(**extra):
    base = {
        "kind": "header", "run": "r", "step": 0,
        "optimizer": {"class": "Adam", "learning_rate": 0.001},
        "loss": "binary_crossentropy",
        "model": {"layers": [{"name": "dense", "class": "Dense", "units": 16, "activation": "relu"},
                             {"name": "out", "class": "Dense", "units": 1, "activation": "sigmoid"}]},
    }
    base.update(extra)
    return base


def probe(step, epoch=0, layers=None, **values):
    return {"kind": "probe", "run": "r", "step": step, "epoch": epoch, "layers": layers or {}, **values}


def alerts(records, only=None):
    engine = Engine({k: v for k, v in BUILTIN.items() if only is None or k == only})
    for raw in records:
        engine.feed(to_record(raw))
    return engine.alerts


def raised(records, detector):
    return [a for a in alerts(records, detector) if a.severity.rank >= Severity.WARNING.rank]


def test_all_ten_ids_are_registered():
    assert {cls.id for cls in PROBE_DETECTORS} == {
        "exploding_gradients", "vanishing_gradients", "dead_relu", "saturation", "unscaled_inputs",
        "unscaled_targets", "class_imbalance", "update_ratio", "lr_config", "loss_mismatch"}
    assert all(BUILTIN[cls.id] is cls for cls in PROBE_DETECTORS)


# ------------------------------------------------------------ lr_config


@pytest.mark.parametrize("opt, lr, fires", [
    ("Adam", 1.0, Severity.WARNING), ("Adam", 0.3, Severity.WARNING), ("Adam", 0.1, None),
    ("Adam", 0.01, None), ("SGD", 0.1, None), ("SGD", 3.0, Severity.WARNING),
    ("Adam", 1e-6, Severity.WARNING), ("Adam", 1e-5, None), ("Adam", 0.0, Severity.CRITICAL),
    ("Adam", "NaN", Severity.CRITICAL),
])
def test_lr_config(opt, lr, fires):
    found = alerts([header(optimizer={"class": opt, "learning_rate": lr})], "lr_config")
    assert [a.severity for a in found] == ([fires] if fires else [])


# The header of a healthy corpus run (RMSprop, CosineDecay warming up from 0),
# which lr_config called "learning rate is 0.0: the optimizer cannot make progress".
WARMUP = {"class": "RMSprop", "learning_rate": 0.0, "schedule": "CosineDecay", "config": {
    "name": "rm_sprop", "learning_rate": {"module": "keras.optimizers.schedules", "class_name": "CosineDecay", "config": {
        "initial_learning_rate": 0.0, "decay_steps": 1053, "alpha": 0.0, "name": "CosineDecay",
        "warmup_target": 0.0007718773950144949, "warmup_steps": 117}, "registered_name": None}}}


def test_a_warm_up_from_zero_is_judged_by_the_rate_it_climbs_to():
    assert alerts([header(optimizer=WARMUP)], "lr_config") == []
    too_high = {**WARMUP, "config": {**WARMUP["config"], "learning_rate": {**WARMUP["config"]["learning_rate"], "config": {
        **WARMUP["config"]["learning_rate"]["config"], "warmup_target": 1.0}}}}
    (alert,) = alerts([header(optimizer=too_high)], "lr_config")
    assert alert.severity == Severity.WARNING and "1000x RMSprop's default" in alert.message
    info = RunInfo()
    info.update(to_record(header(optimizer=WARMUP)))
    assert info.lr == pytest.approx(0.000772, rel=1e-3)


def test_lr_config_names_the_seeds_numbers():
    (alert,) = alerts([header(optimizer={"class": "Adam", "learning_rate": 1.0})], "lr_config")
    assert "1000x Adam's default 0.001" in alert.message and alert.step == 0


# --------------------------------------------------------- loss_mismatch


def out_layers(units, activation, extra=()):
    return {"layers": [{"name": "h", "class": "Dense", "units": 8, "activation": "relu"},
                       {"name": "o", "class": "Dense", "units": units, "activation": activation}, *extra]}


@pytest.mark.parametrize("loss, units, act, config, labels, keys", [
    ("binary_crossentropy", 1, "sigmoid", None, None, []),
    ("categorical_crossentropy", 3, "softmax", None, None, []),
    ("sparse_categorical_crossentropy", 3, "softmax", None, None, []),
    ("mse", 1, "linear", None, None, []),
    ("categorical_crossentropy", 1, "softmax", None, None, ["softmax1"]),
    ("categorical_crossentropy", 1, "sigmoid", None, None, ["sigmoid_categorical"]),
    ("categorical_crossentropy", 4, "sigmoid", None, None, ["sigmoid_categorical"]),
    ("binary_crossentropy", 4, "softmax", None, None, ["softmax_binary"]),
    ("mean_absolute_error", 1, "sigmoid", None, None, ["regression_loss"]),
    ("mae", 1, "sigmoid", None, {"available": True, "task": "classification", "classes": 2}, ["regression_loss"]),
    ("mse", 1, "sigmoid", None, {"available": True, "task": "regression"}, []),
    ("binary_crossentropy", 1, "sigmoid", {"from_logits": True}, None, ["logits_squashed"]),
    ("binary_crossentropy", 1, "linear", {"from_logits": True}, None, []),
    ("binary_crossentropy", 1, "linear", {"from_logits": False}, None, ["logits_unsquashed"]),
    ("binary_crossentropy", 1, "sigmoid", None, {"available": True, "task": "classification", "classes": 5},
     ["binary_multiclass"]),
])
def test_loss_mismatch_rules(loss, units, act, config, labels, keys):
    extra = {"loss": loss, "model": out_layers(units, act), "loss_config": config}
    if labels:
        extra["data"] = {"labels": labels}
    found = alerts([header(**extra)], "loss_mismatch")
    assert sorted(a.key for a in found) == sorted(keys)
    for alert in found:
        expected = Severity.CRITICAL if alert.key == "softmax1" or (alert.key == "sigmoid_categorical" and units == 1) else Severity.WARNING
        assert alert.severity == expected


def test_loss_mismatch_sees_a_trailing_softmax_layer():
    model = {"layers": [{"name": "o", "class": "Dense", "units": 1, "activation": "linear"},
                        {"name": "s", "class": "Softmax"}]}
    (alert,) = alerts([header(loss="categorical_crossentropy", model=model)], "loss_mismatch")
    assert alert.key == "softmax1"


# ------------------------------------------------------- unscaled_inputs


@pytest.mark.parametrize("scale_max, median, nonfinite, severity", [
    (1.0, 1.0, 0, None), (9.0, 1.0, 0, None), (12.0, 1.0, 0, Severity.INFO),
    (150.0, 150.0, 0, Severity.WARNING), (5.0, 0.04, 0, Severity.WARNING), (1.0, 1.0, 3, None),
])
def test_unscaled_inputs(scale_max, median, nonfinite, severity):
    inputs = {"available": True, "rows": 100, "features": 4, "nonfinite": nonfinite, "scale_max": scale_max,
              "scale_median": median, "scale_min": 0.01, "worst": [{"index": 2, "scale": scale_max}]}
    found = alerts([header(data={"inputs": inputs})], "unscaled_inputs")
    assert [a.severity for a in found] == ([severity] if severity else [])


def test_token_ids_into_an_embedding_are_not_unscaled_inputs():
    """A corpus run: 20 token ids in 1..49 (scale 28) into an Embedding; the
    INFO it got also held back chance_level's warning on a dead run."""
    inputs = {"available": True, "rows": 256, "features": 20, "nonfinite": 0, "scale_max": 28.55,
              "scale_median": 27.1, "scale_min": 25.9, "worst": [{"index": 0, "scale": 28.55}]}
    model = {"layers": [{"name": "input_layer", "class": "InputLayer"}, {"name": "embedding", "class": "Embedding"},
                        {"name": "dense", "class": "Dense", "units": 4, "activation": "softmax"}]}
    assert alerts([header(data={"inputs": inputs}, model=model)], "unscaled_inputs") == []
    assert alerts([header(data={"inputs": inputs})], "unscaled_inputs") != []


def test_nonfinite_inputs_are_nonfinite_s_not_unscaled_inputs_s():
    inputs = {"available": True, "rows": 100, "features": 4, "nonfinite": 3, "scale_max": 1.0,
              "scale_median": 1.0, "scale_min": 0.5, "worst": []}
    found = alerts([header(data={"inputs": inputs})])
    assert [(a.detector, a.severity) for a in found] == [("nonfinite", Severity.CRITICAL)]
    assert "3 NaN/inf values in the inputs" in found[0].message
    assert found[0].evidence["first_seen"]["where"] == "inputs"
    assert "clean the data" in found[0].hint


# ------------------------------------------------------- unscaled_targets


@pytest.mark.parametrize("mean, std, severity", [
    (0.0, 1.0, None), (2.0, 3.0, None), (20.0, 5.0, Severity.INFO), (2.4e7, 2.9e7, Severity.WARNING), (0.0, 150.0, Severity.WARNING),
])
def test_unscaled_targets(mean, std, severity):
    labels = {"available": True, "task": "regression", "rows": 256, "nonfinite": 0, "mean": mean, "std": std,
              "min": mean - 2 * std, "max": mean + 2 * std}
    found = alerts([header(data={"labels": labels})], "unscaled_targets")
    assert [a.severity for a in found] == ([severity] if severity else [])
    if severity is Severity.WARNING:
        assert "StandardScaler" in found[0].hint and "TransformedTargetRegressor" in found[0].hint


def test_unscaled_targets_ignores_class_labels():
    labels = {"available": True, "task": "classification", "rows": 256, "classes": 1000, "mean": 500.0, "std": 300.0}
    assert alerts([header(data={"labels": labels})], "unscaled_targets") == []


def test_no_data_in_the_header_says_nothing():
    assert alerts([header(), header(data={"inputs": {"available": False}})], "unscaled_inputs") == []


# ------------------------------------------------------- class_imbalance


LABELS = {"available": True, "task": "classification", "classes": 2, "majority_class": 0, "majority_fraction": 0.95,
          "minority_class": 1, "minority_fraction": 0.05, "imbalance_ratio": 19.0}


def test_class_imbalance_info_then_warning_only_when_the_minority_is_ignored():
    head = header(data={"labels": LABELS})
    ignored = [probe(s, e, min_recall=0.0, majority_pred_fraction=1.0) for s, e in [(1, 0), (20, 0), (40, 1), (60, 2)]]
    found = alerts([head, *ignored], "class_imbalance")
    assert [(a.key, a.severity, a.step) for a in found] == [("labels", Severity.INFO, 0), ("ignored", Severity.WARNING, 60)]
    recalled = [probe(s, e, min_recall=0.6, majority_pred_fraction=0.8) for s, e in [(20, 0), (40, 1), (60, 2)]]
    assert raised([head, *recalled], "class_imbalance") == []


def test_balanced_labels_never_warn():
    head = header(data={"labels": {**LABELS, "imbalance_ratio": 1.5}})
    assert alerts([head, probe(40, 1, min_recall=0.0), probe(60, 2, min_recall=0.0)], "class_imbalance") == []


# -------------------------------------------------- gradients and layers


def test_vanishing_gradients_share_rule_with_patience_and_clear():
    starved = [probe(s, grad_norm=1.0, kernel_grad_norm=0.03, grad_first=0.02, grad_ratio=1.1) for s in (1, 10, 20)]
    healthy = probe(30, grad_norm=1.0, kernel_grad_norm=0.9, grad_first=0.5, grad_ratio=1.0)
    found = alerts([*starved[:2]], "vanishing_gradients")
    assert found == []
    (alert,) = alerts([*starved, healthy], "vanishing_gradients")
    assert alert.step == 20 and alert.evidence["rule"] == "share" and not alert.active


def test_vanishing_gradients_autotrainer_depth_rule():
    deep = [probe(s, grad_norm=1.0, kernel_grad_norm=0.9, grad_first=5e-5, grad_ratio=5e-4) for s in (1, 2, 3)]
    (alert,) = alerts(deep, "vanishing_gradients")
    assert alert.evidence["rule"] == "depth"
    small_only = [probe(s, grad_norm=1.0, kernel_grad_norm=0.9, grad_first=5e-5, grad_ratio=0.5) for s in (1, 2, 3)]
    assert alerts(small_only, "vanishing_gradients") == []


def test_exploding_gradients_growth_leaves_nan_to_nonfinite():
    calm = [probe(s, grad_norm=v) for s, v in [(1, 2.0), (2, 1.0), (3, 1.5)]]
    assert alerts([*calm, probe(4, grad_norm=50.0), probe(5, grad_norm=90.0)], "exploding_gradients") == []
    (alert,) = alerts([*calm, probe(4, grad_norm=150.0), probe(5, grad_norm=2e4)], "exploding_gradients")
    assert alert.severity == Severity.CRITICAL and alert.step == 5
    assert alerts([probe(1, grad_norm="NaN")], "exploding_gradients") == []
    (alert,) = alerts([probe(1, grad_norm="NaN")])
    assert alert.detector == "nonfinite" and alert.severity == Severity.CRITICAL


def test_exploding_gradients_needs_harm_to_the_loss():
    """A 5-unit tanh net from the issue: its norm grows from 0.000264 to
    0.028 (106x) while it learns, and its kernels get 7% of the gradient.
    That explodes nothing: no exploding_gradients, and never together with
    vanishing_gradients. The same growth with the probe loss tripling does."""
    learning = [probe(s, grad_norm=g, probe_loss=l, kernel_grad_norm=0.07 * g)
                for s, g, l in [(1, 0.000264, 0.69), (2, 0.0003, 0.68), (3, 0.0004, 0.67), (4, 0.028, 0.5), (5, 0.03, 0.45),
                                (6, 0.029, 0.4), (7, 0.031, 0.38)]]
    assert alerts(learning, "exploding_gradients") == []
    both = {a.detector for a in alerts(learning) if a.active}
    assert not {"exploding_gradients", "vanishing_gradients"} <= both
    hurting = [probe(s, grad_norm=g, probe_loss=l) for s, g, l in [(1, 0.5, 0.7), (2, 0.6, 0.6), (3, 0.55, 0.5),
                                                                   (4, 80.0, 0.9), (5, 120.0, 1.6)]]
    (alert,) = alerts(hurting, "exploding_gradients")
    assert alert.step == 5  # 160x and a loss 1.8x its best from probe 4 on: two probes in a row
    growing_but_learning = [probe(s, grad_norm=g, probe_loss=l) for s, g, l in [(1, 0.12, 2.3), (2, 0.2, 1.5),
                                                                                 (3, 0.3, 0.9), (4, 14.2, 0.3), (5, 15.0, 0.2)]]
    assert alerts(growing_but_learning, "exploding_gradients") == []


def test_exploding_gradients_from_the_first_step():
    """A corpus SimpleRNN with a recurrent gain of 2-3: its gradient norm is
    3365 at step 1 and shrinks while the loss falls from 353, so there is no
    growth to see, but no working model has such a norm (healthy corpus runs
    stay below 45)."""
    rnn = [probe(s, grad_norm=g, probe_loss=l) for s, g, l in [(1, 3364.9, 353.0), (20, 2900.0, 40.0), (40, 2500.0, 9.0)]]
    (alert,) = alerts(rnn, "exploding_gradients")
    assert alert.step == 20 and "far beyond what a working model shows" in alert.message
    healthy = [probe(s, grad_norm=g, probe_loss=l) for s, g, l in [(1, 0.89, 2.3), (20, 43.5, 0.4), (40, 30.0, 0.2)]]
    assert alerts(healthy, "exploding_gradients") == []


def test_exploding_gradients_autotrainer_depth_rule():
    steep = [probe(s, grad_norm=1.0, grad_ratio=r) for s, r in [(1, 80.0), (2, 90.0)]]
    (alert,) = alerts(steep, "exploding_gradients")
    assert alert.step == 2 and "grows on its way back" in alert.message
    assert alerts([probe(s, grad_norm=1.0, grad_ratio=36.0) for s in (1, 2, 3)], "exploding_gradients") == []


@pytest.mark.parametrize("detector, measure", [("dead_relu", "dead_fraction"), ("saturation", "saturated_fraction")])
def test_layer_fractions(detector, measure):
    def at(step, value):
        return probe(step, layers={"dense": {measure: value}, "dense_1": {measure: 0.0}})
    assert alerts([at(1, 0.45), at(2, 0.49)], detector) == []
    (alert,) = alerts([at(1, 0.6), at(2, 0.7), at(3, 0.1)], detector)
    assert alert.step == 2 and alert.evidence["worst_layer"] == "dense" and not alert.active
    assert alert.severity == Severity.WARNING


def test_dead_relu_whole_layer_is_critical():
    found = alerts([probe(s, layers={"dense": {"dead_fraction": 1.0}}) for s in (1, 2)], "dead_relu")
    assert [a.severity for a in found] == [Severity.CRITICAL]


def test_update_ratio_high_and_low():
    def at(step, a, b=None):
        b = a if b is None else b
        return probe(step, layers={"a": {"update_ratio": a}, "b": {"update_ratio": b}, "c": {"update_ratio": 0.004}})
    head = header(optimizer={"class": "Adam", "learning_rate": 1.0})
    (alert,) = alerts([head, at(1, 0.1), at(2, 0.08), at(3, 0.12)], "update_ratio")
    assert alert.key == "high" and "1000x Adam's default" in alert.hint
    assert "by 0.12 of their norm in the median layer (layer a: 0.12" in alert.message
    (alert,) = alerts([at(1, 0.0), at(2, 0.0), at(3, 1e-6)], "update_ratio")
    assert alert.key == "low" and "moves the weights by 1e-06 of their norm in the median layer" in alert.message
    (alert,) = alerts([at(1, 0.0), at(2, 0.0), at(3, 0.0)], "update_ratio")
    assert "one step leaves the weights unchanged: the model is barely learning" in alert.message
    assert alerts([at(s, 0.005) for s in (1, 2, 3, 4)], "update_ratio") == []


def test_update_ratio_one_odd_layer_is_not_the_model():
    """Healthy corpus runs: an Embedding moving 0.05 of its small norm per
    step under AdamW, or one settled layer moving 1e-9, while the others
    move ~1e-3: the old largest/smallest-layer rule warned on both."""
    def at(step, odd):
        return probe(step, layers={"embedding": {"update_ratio": odd}, "dense": {"update_ratio": 0.002},
                                   "out": {"update_ratio": 0.003}})
    assert alerts([at(s, 0.05) for s in range(1, 8)], "update_ratio") == []
    assert alerts([at(s, 1e-9) for s in range(1, 8)], "update_ratio") == []


def test_update_ratio_is_quiet_once_a_schedule_has_decayed_the_rate():
    def at(step):
        return probe(step, layers={"a": {"update_ratio": 1e-7}, "b": {"update_ratio": 1e-7}})
    def epoch_end(i, lr):
        return {"kind": "epoch", "run": "r", "step": 10 * (i + 1), "epoch": i, "logs": {"loss": 0.1}, "lr": lr}
    records = [header(optimizer={"class": "Adam", "learning_rate": 0.001})]
    records += [epoch_end(0, 0.001), epoch_end(1, 5e-5), at(21), at(22), at(23), at(24)]
    assert alerts(records, "update_ratio") == []
    records = [header(optimizer={"class": "Adam", "learning_rate": 0.001})]
    records += [epoch_end(0, 0.001), epoch_end(1, 5e-4), at(21), at(22), at(23), at(24)]
    assert [a.key for a in alerts(records, "update_ratio")] == ["low"]


@pytest.mark.parametrize("activation, low, high, fires", [
    ("sigmoid", -1.8, 2.9, True), ("relu", -2.1, 3.0, True), ("tanh", -0.9, 0.95, False),
    ("sigmoid", 0.0, 1.0, False), ("linear", -5.0, 5.0, False), ("relu", 0.0, 40.0, False),
])
def test_loss_mismatch_bounded_output_on_regression_targets(activation, low, high, fires):
    labels = {"available": True, "task": "regression", "rows": 256, "nonfinite": 0, "mean": 0.0, "std": 1.0,
              "min": low, "max": high}
    model = {"layers": [{"name": "h", "class": "Dense", "units": 8, "activation": "relu"},
                        {"name": "o", "class": "Dense", "units": 1, "activation": activation}]}
    found = [a for a in alerts([header(loss="mse", model=model, data={"labels": labels})], "loss_mismatch")
             if a.key == "bounded_output"]
    assert bool(found) is fires
    if fires:
        assert "cannot reach them" in found[0].message and "linear output" in found[0].hint


# ------------------------------------------------------- nonfinite in probes


def _batch(step, loss=0.693):
    return {"kind": "batch", "run": "r", "step": step, "epoch": 0, "batch": step - 1,
            "logs": {"loss": loss}, "step_logs": {"loss": loss}}


def test_nan_weights_with_a_finite_loss_are_nonfinite_and_say_where():
    """NaN inputs made NaN weights, whose outputs a ReLU turns into zeros: the
    loss stays 0.693 while the probe sees NaN weights and gradients. That is
    one nonfinite alert naming the weights, not exploding gradients."""
    nan = float("nan")
    layers = {"dense": {"grad_norm": nan, "weight_norm": nan, "dead_fraction": 1.0},
              "out": {"grad_norm": nan, "weight_norm": 1.2}}
    records = [header(), probe(1, layers={"dense": {"grad_norm": 0.1, "weight_norm": 3.0}}, grad_norm=0.1)]
    records += [_batch(s) for s in range(1, 50)]
    records += [probe(50, layers=layers, grad_norm=nan), _batch(50), probe(100, layers=layers, grad_norm=nan)]
    records += [_batch(s) for s in range(51, 120)]
    found = [a for a in alerts(records) if a.severity.rank >= Severity.WARNING.rank]
    roots = [a for a in found if a.caused_by is None]
    assert [a.detector for a in roots] == ["nonfinite"]  # one incident: the dead units are its symptom
    alert = roots[0]
    assert all(a.caused_by is alert for a in found if a is not alert)
    assert alert.step == 50 and alert.active  # finite batches after it do not clear NaN weights
    assert "weights (dense)" in alert.message and "gradients" in alert.message
    assert alert.evidence["first_seen"] == {"where": "weights", "step": 50, "what": alert.evidence["first_seen"]["what"]}


def test_a_finite_probe_after_a_nan_one_clears_it():
    nan = float("nan")
    records = [header(), probe(10, grad_norm=nan), probe(20, grad_norm=0.5, layers={"dense": {"weight_norm": 2.0}})]
    found = alerts(records, "nonfinite")
    assert len(found) == 1 and not found[0].active and found[0].last_step == 20
