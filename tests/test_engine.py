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


def test_a_condition_that_comes_back_soon_continues_its_incident():
    engine = Engine({"above": Above})
    feed(engine, [2.0, 0.5, 0.5, 3.0])
    (incident,) = engine.alerts
    assert incident.active and incident.step == incident.first_step == 1 and incident.last_step == 4
    assert incident.occurrences == 2 and incident.evidence == {"loss": 3.0}


def test_a_condition_that_comes_back_after_the_window_is_a_new_incident():
    from lossmon.detect import engine as engine_module

    engine = Engine({"above": Above})
    gap = engine_module.REOPEN_STEPS + 1
    feed(engine, [2.0, 0.5] + [0.5] * gap + [3.0])
    first, second = engine.alerts
    assert not first.active and first.last_step == 2 and first.occurrences == 1
    assert second.active and second.step == gap + 3 and second.number == 2
    assert first.id == "r1:above" and second.id == "r1:above#2"


def test_the_peak_is_where_the_worst_occurrence_opened():
    """Evidence keeps moving with the latest record; the peak stays where
    the incident was worst: the occurrence that reached CRITICAL."""
    engine = Engine({"above": Above})
    feed(engine, [2.0, 0.5, 3.0, 30.0, 40.0, 1.5, 0.5])
    (incident,) = engine.alerts
    assert incident.occurrences == 2 and not incident.active and incident.evidence == {"loss": 1.5}
    assert incident.peak["step"] == 3 and incident.peak["severity"] == "critical"
    assert incident.peak["evidence"] == {"loss": 3.0}


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


class Symptom(Detector):
    """Fires whenever the loss is above 1, like a spike detector would."""

    id = "symptom"
    defers_to = ("above",)

    def observe(self, record):
        loss = record.values.get("loss", 0.0)
        return [Finding(Severity.WARNING, "symptom", "")] if loss > 1.0 else [Clear()]


def test_a_symptom_opens_attached_to_its_active_cause():
    engine = Engine({"above": Above, "symptom": Symptom}, options={"above": {"limit": 1.5}})
    feed(engine, [2.0, 3.0])
    cause, symptom = engine.alerts
    assert symptom.caused_by is cause and cause.symptoms == [symptom]
    data = symptom.to_json()
    assert data["caused_by"] == "r1:above" and cause.to_json()["symptoms"] == ["r1:symptom"]
    assert [(depth, a.detector) for depth, a in engine.ordered()] == [(0, "above"), (1, "symptom")]


def test_a_symptom_seen_before_its_cause_is_adopted_by_it():
    engine = Engine({"above": Above, "symptom": Symptom}, options={"above": {"limit": 5.0}})
    feed(engine, [2.0])  # only the symptom holds: it opens alone
    (symptom,) = engine.alerts
    assert symptom.caused_by is None
    engine.feed(to_record(batch(2, 9.0)))  # then its cause
    cause = engine.alerts[1]
    assert symptom.caused_by is cause and [a for _, a in engine.ordered()] == [cause, symptom]


class Remark(Detector):
    """An INFO that holds from the first record on, like a header remark."""

    id = "remark"

    def observe(self, record):
        return [Finding(Severity.INFO, "inputs of scale 10", "")]


class RemarkedSymptom(Symptom):
    defers_to = ("remark",)


def test_an_info_explains_nothing():
    engine = Engine({"remark": Remark, "symptom": RemarkedSymptom})
    feed(engine, [2.0])
    remark, symptom = engine.alerts
    assert symptom.caused_by is None and not remark.symptoms
    assert [depth for depth, _ in engine.ordered()] == [0, 0]


def test_a_symptom_long_after_its_cause_cleared_stands_alone():
    from lossmon.detect import engine as engine_module

    engine = Engine({"above": Above, "symptom": Symptom}, options={"above": {"limit": 5.0}})
    feed(engine, [9.0, 0.5] + [0.5] * (engine_module.REOPEN_STEPS + 1) + [2.0])
    cause, early, late = engine.alerts
    assert early.caused_by is cause and cause.symptoms == [early]  # the loss of 9 held both
    assert late.detector == "symptom" and late.number == 2 and late.caused_by is None


def test_the_list_reads_root_cause_first_then_severity_then_time():
    from lossmon.detect.engine import ordered

    engine = Engine({"above": Above, "symptom": Symptom}, options={"above": {"limit": 5.0}})
    feed(engine, [2.0], run="a")  # a lone warning
    feed(engine, [2.0, 60.0], run="b")  # a warning, then its critical cause
    assert [(depth, a.run, a.detector) for depth, a in ordered(engine.alerts)] == [
        (0, "b", "above"), (1, "b", "symptom"), (0, "a", "symptom"),
    ]


def test_the_exit_rule_counts_criticals_ever_and_warnings_still_active():
    engine = Engine({"above": Above})
    feed(engine, [2.0, 0.5])  # a warning that came and went
    assert not engine.fails(Severity.WARNING) and not engine.failing(Severity.WARNING)
    feed(engine, [2.0], run="r2")  # a warning still on
    assert engine.fails(Severity.WARNING) and not engine.fails(Severity.CRITICAL)
    feed(engine, [20.0, 0.5], run="r3")  # a critical that recovered
    assert engine.fails(Severity.CRITICAL)
    assert [a.run for a in engine.failing(Severity.WARNING)] == ["r3", "r2"]


def test_a_symptom_fails_the_check_only_through_its_cause():
    engine = Engine({"above": Above, "symptom": Symptom}, options={"above": {"limit": 1.5}})
    feed(engine, [2.0, 3.0])
    assert [a.detector for a in engine.failing(Severity.WARNING)] == ["above"]


class EpochsOnly(Detector):
    id = "epochs_only"
    kinds = frozenset({"epoch"})

    def __init__(self):
        self.seen = []

    def observe(self, record):
        self.seen.append(record.kind)
        return ()


def test_a_detector_sees_only_the_kinds_it_declares():
    from records import epoch

    engine = Engine({"epochs_only": EpochsOnly})
    feed(engine, [0.5, 0.4])
    engine.feed(to_record(epoch(0, 0.45)))
    (detector,) = engine._detectors_for("r1")
    assert detector.seen == ["epoch"]


def test_forget_drops_a_runs_state_and_the_alert_list_is_capped():
    from lossmon.detect import engine as engine_module

    engine = Engine({"above": Above})
    feed(engine, [2.0], run="gone")
    engine.forget("gone")
    assert "gone" not in engine._per_run and not engine._active
    for i in range(engine_module.MAX_ALERTS + 5):
        feed(engine, [2.0], run=f"r{i}")
    assert len(engine.alerts) == engine_module.MAX_ALERTS
    assert engine.alerts[-1].run == f"r{engine_module.MAX_ALERTS + 4}"
    assert engine.dropped == 6  # the forgotten run's incident, then the oldest five


def test_the_cap_drops_resolved_incidents_first_and_never_changes_the_verdict():
    from lossmon.detect import engine as engine_module

    engine = Engine({"above": Above})
    feed(engine, [20.0, 0.5], run="nan-that-recovered")  # critical, then over
    feed(engine, [2.0], run="still-on")
    for i in range(engine_module.MAX_ALERTS):
        feed(engine, [2.0, 0.5], run=f"r{i}")  # transient warnings
    runs = {a.run for a in engine.alerts}
    assert "nan-that-recovered" not in runs and "still-on" in runs and len(engine.alerts) == engine_module.MAX_ALERTS
    assert engine.dropped == 2 and engine.dropped_critical == 1
    assert engine.fails(Severity.CRITICAL)


def test_news_are_the_alerts_a_feed_opened_or_resolved():
    """The app draws opened and resolved alerts at once, updates later: an
    alert that opens and updates within one read is still news."""
    engine = Engine({"above": Above})
    records = [to_record(batch(step, loss)) for step, loss in enumerate([0.5, 2.0, 3.0, 4.0], start=1)]
    (alert,) = engine.feed_many(records)
    assert engine.news == [alert] and alert.last_step == 4
    engine.feed(to_record(batch(5, 5.0)))
    assert engine.news == []  # only an update
    engine.feed(to_record(batch(6, 0.5)))
    assert engine.news == [alert] and not alert.active


class Nonsense(Detector):
    """A plugin with bugs: rows outside its block, objects that are not verdicts."""

    id = "nonsense"

    def observe(self, record):
        return ["not a verdict"]

    def observe_block(self, block):
        return [(len(block) + 5, Clear())]


def test_a_detector_answering_nonsense_is_switched_off_and_the_rest_go_on():
    engine = Engine({"nonsense": Nonsense, "above": Above})
    records = [to_record(batch(step, loss)) for step, loss in enumerate([0.5, 2.0, 3.0], start=1)]
    with pytest.warns(UserWarning, match="nonsense"):
        engine.feed_many(records)
    assert [a.detector for a in engine.alerts] == ["above"]
    engine.feed(to_record({"kind": "epoch", "run": "r1", "step": 3, "epoch": 0, "logs": {"loss": 9.0}}))
