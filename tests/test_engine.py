"""The detect stage's engine: edge-triggered alerts from detector verdicts."""

from __future__ import annotations

import warnings

import pytest

from lossmon.detect import Clear, Detector, Engine, Finding, Severity
from lossmon.format import to_record
from records import batch


class Above(Detector):
    """Fires while the loss is above a limit; critical when far above."""

    id = "above"

    def __init__(self, limit: float = 1.0) -> None:
        self.limit = limit

    def observe(self, record):
        loss = record.values.get("loss")
        if loss is None:
            return ()
        if loss > self.limit:
            severity = Severity.CRITICAL if loss > 10 * self.limit else Severity.WARNING
            return [Finding(severity, f"loss {loss} above {self.limit}", "lower it", {"loss": loss})]
        return [Clear()]


class Broken(Detector):
    id = "broken"

    def observe(self, record):
        raise RuntimeError("boom")


def feed(engine, losses, run="r1"):
    changed = []
    for step, loss in enumerate(losses, start=1):
        changed.append(engine.feed(to_record(batch(step, loss, run))))
    return changed


def test_condition_that_stays_true_is_one_alert_that_updates():
    engine = Engine({"above": Above})
    feed(engine, [0.5, 2.0, 3.0, 4.0])
    assert len(engine.alerts) == 1
    alert = engine.alerts[0]
    assert alert.step == 2 and alert.last_step == 4 and alert.active
    assert alert.evidence == {"loss": 4.0}


def test_alert_resolves_and_reopens_as_a_new_alert():
    engine = Engine({"above": Above})
    feed(engine, [2.0, 0.5, 0.5, 3.0])
    first, second = engine.alerts
    assert not first.active and first.last_step == 2
    assert second.active and second.step == 4


def test_severity_escalates_but_never_drops_while_active():
    engine = Engine({"above": Above})
    feed(engine, [2.0, 20.0, 2.0])
    (alert,) = engine.alerts
    assert alert.severity is Severity.CRITICAL


def test_runs_have_separate_detector_state():
    engine = Engine({"above": Above})
    feed(engine, [2.0], run="a")
    feed(engine, [0.5], run="b")
    assert [(a.run, a.active) for a in engine.alerts] == [("a", True)]


def test_options_reach_the_detector_and_disabled_ones_do_not_run():
    engine = Engine({"above": Above}, options={"above": {"limit": 5.0}})
    feed(engine, [2.0, 3.0])
    assert engine.alerts == []
    engine = Engine({"above": Above}, disabled={"above"})
    feed(engine, [20.0])
    assert engine.alerts == []


def test_a_failing_detector_is_switched_off_with_one_warning_and_others_go_on():
    engine = Engine({"broken": Broken, "above": Above})
    with pytest.warns(UserWarning, match="broken"):
        feed(engine, [2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feed(engine, [3.0])
    assert [a.detector for a in engine.alerts] == ["above"]


def test_alert_json_has_the_contract_keys():
    engine = Engine({"above": Above})
    feed(engine, [2.0])
    data = engine.alerts[0].to_json()
    for key in ("run", "detector", "severity", "step", "epoch", "message", "evidence", "hint"):
        assert key in data
    assert data["severity"] == "warning"
