"""`lossmon watch` without a screen: plain lines for logs and batch jobs."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np

from lossmon.cli import main
from lossmon.show import curves
from lossmon.show.panels import short_labels
from lossmon.show.targets import expand_targets
from records import batch, end, header, training, write


def watch(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lossmon", "watch", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_watch_into_a_pipe_prints_alerts_and_progress_live_and_exits_when_the_run_ends(tmp_path):
    path = write(tmp_path / "run.jsonl", [header(epochs=3, steps=10)] + [batch(i, 0.7 - i / 100) for i in range(1, 6)])
    hook = tmp_path / "hook.jsonl"
    proc = watch(path, "--settle", "1", "--on-alert", f"cat >> {hook}")  # stdout is a pipe, not a terminal: plain mode
    try:
        time.sleep(1.0)
        write(path, [batch(6, math.nan), batch(7, math.nan)])
        time.sleep(0.5)
        write(path, [end(7, status="error")])
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert any(line.startswith("CRITICAL nonfinite") for line in lines)
    assert any("hint:" in line for line in lines)
    assert lines[-1].startswith("r1 finished (error)")
    assert "\x1b" not in out  # no escape sequences in a log file
    assert "nonfinite" in hook.read_text()


def test_a_second_fit_into_the_same_file_is_watched_too(tmp_path):
    """An end record is not the end of the file: fine-tuning after a
    warm-up appends a second run, and its NaN must be reported."""
    path = write(tmp_path / "run.jsonl", [header(run="warmup", epochs=1, steps=5)] + [batch(i, 0.7, run="warmup") for i in range(1, 6)])
    write(path, [end(5, run="warmup")])
    proc = watch(path, "--settle", "3")
    try:
        time.sleep(1.5)  # the first run has ended; the watcher must not have left
        assert proc.poll() is None
        write(path, [header(run="finetune", epochs=1, steps=5)] + [batch(i, 0.5, run="finetune") for i in range(1, 4)])
        write(path, [batch(4, math.nan, run="finetune"), end(4, run="finetune", status="error")])
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - started >= 2.0  # it waited for the file to settle
    assert "CRITICAL nonfinite (run finetune" in out
    assert "finetune finished (error)" in out


def test_plain_flag_with_a_directory_and_a_glob(tmp_path, capsys):
    write(tmp_path / "a.jsonl", training([0.7 * 1.5**i for i in range(30)], run="a"))
    write(tmp_path / "b.jsonl", training([0.7 * math.exp(-i / 10) for i in range(30)], run="b"))
    (tmp_path / "notes.txt").write_text("not a run")
    assert [p.name for p in expand_targets([str(tmp_path)])] == ["a.jsonl", "b.jsonl"]
    assert [p.name for p in expand_targets([str(tmp_path / "*.jsonl")])] == ["a.jsonl", "b.jsonl"]
    assert main(["watch", "--plain", "--settle", "0", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "divergence (run a " in out
    assert "a finished (completed)" in out and "b finished (completed)" in out
    assert main(["watch", "--plain", str(tmp_path / "*.nothing")]) == 2


def test_smoothing_ranges_and_ticks():
    values = np.array([1.0, 1.0, 1.0, math.nan, 1.0])
    assert np.allclose(curves.ema(values, 0.6)[[0, 1, 2, 4]], 1.0)  # debiased: no pull towards zero
    assert math.isnan(curves.ema(values, 0.6)[3])
    stepped = curves.ema(np.array([0.0, 10.0]), 0.5)
    assert stepped[0] == 0 and math.isclose(stepped[1], 10 * 0.5 / (1 - 0.25))
    lo, hi = curves.robust_range(np.array([0.5] * 50 + [0.4, 0.6, 1000.0, math.nan]))
    assert 0.4 <= lo and hi < 1  # the spike and the NaN do not flatten the curve
    assert curves.format_tick(-0.0) == "0" and curves.format_tick(-1e-17) == "0"
    assert all(float(t).is_integer() for t in curves.nice_ticks(0, 7, 8, integer=True))
    assert curves.nice_ticks(0, 100, 5) == [0, 20, 40, 60, 80, 100]
    assert curves.log_ticks(-2, 1)[1] == ["0.01", "0.1", "1", "10"]
    assert curves.format_tick(1e33) == "1e33" and curves.format_tick(0.00098) == "0.00098"
    labels = short_labels(["20261122-173840-9137", "20261122-173929-1278"])
    assert labels == {"20261122-173840-9137": "840-9137", "20261122-173929-1278": "929-1278"}
    assert short_labels(["bad", "good"]) == {"bad": "bad", "good": "good"}
    epochs = curves.step_to_epoch(np.array([5, 10, 15, 25]), [10, 20], 10)
    assert list(epochs) == [0.5, 1.0, 1.5, 2.5]


def test_latest_values_are_short_and_spell_non_finite_values():
    assert [curves.format_value(v) for v in (0.123456, 12.04, 0.0, 1234567.0, 0.000123)] == [
        "0.1235", "12.04", "0", "1.23e+06", "0.000123",
    ]
    assert [curves.format_value(v) for v in (math.nan, math.inf, -math.inf)] == ["NaN", "inf", "-inf"]


def test_vectorised_smoothing_matches_step_by_step_smoothing():
    rng = np.random.default_rng(3)
    values = rng.normal(1.0, 0.3, 3000)
    values[[10, 700]] = [math.nan, math.inf]
    for weight in (0.6, 0.95, 0.999):
        fast = curves.ema(values, weight)
        last, count, slow = 0.0, 0, values.copy()
        for i, value in enumerate(values):
            if math.isfinite(value):
                last = last * weight + (1 - weight) * value
                count += 1
                slow[i] = last / (1 - weight**count)
        assert np.allclose(fast, slow, rtol=1e-12, equal_nan=True)


def test_a_transient_nan_is_announced_once_by_plain_and_on_alert(tmp_path):
    """A NaN that opens, resolves and comes back within one read, and again
    in the next read: one incident, one plain announcement, one command."""
    path = write(tmp_path / "run.jsonl", [header(epochs=3, steps=10)] + [batch(i, 0.7 - i / 100) for i in range(1, 6)])
    hook = tmp_path / "hook.jsonl"
    proc = watch(path, "--plain", "--on-alert", f"cat >> {hook}")
    try:
        time.sleep(1.0)
        write(path, [batch(6, math.nan), batch(7, 0.6), batch(8, math.nan), batch(9, 0.6)])  # one read
        time.sleep(1.0)
        write(path, [batch(10, math.nan), batch(11, 0.55), batch(12, 0.54)])
        time.sleep(1.0)
        write(path, [end(12)])
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert sum(line.startswith("CRITICAL nonfinite") for line in out.splitlines()) == 1, out
    import orjson

    sent = [orjson.loads(line) for line in hook.read_text().splitlines()]
    (nan,) = [incident for incident in sent if incident["detector"] == "nonfinite"]  # the records' 1970 times also stall
    assert nan["first_step"] == 6 and nan["occurrences"] >= 2 and nan["symptom_incidents"] == []


def test_on_alert_runs_a_few_commands_at_once_and_queues_the_rest(tmp_path):
    from lossmon.detect import Alert, Severity
    from lossmon.show.notify import MAX_COMMANDS, AlertNotifier

    out = tmp_path / "sent"
    notifier = AlertNotifier(f"sleep 0.2; cat >> {out}")
    alerts = [Alert(f"r{i}", "nonfinite", Severity.CRITICAL, i, 0, "NaN", "", {}) for i in range(12)]
    notifier.run_command(notifier.fresh(alerts))
    notifier.wait(timeout=10)
    assert notifier.commands_run == 12 and len(out.read_text().splitlines()) == 12
    assert notifier.most_running == MAX_COMMANDS
    assert notifier.fresh(alerts) == []  # announced: never again


def test_an_incident_is_announced_when_it_opens_and_again_only_when_it_turns_critical():
    from lossmon.detect import Alert, Severity
    from lossmon.show.notify import AlertNotifier

    notifier = AlertNotifier(bell=True)
    cause = Alert("r1", "lr_config", Severity.WARNING, 0, None, "lr 1.0", "", {})
    gone = Alert("r1", "spike", Severity.WARNING, 5, 0, "spike", "", {}, active=False)  # opened and resolved unseen
    fresh = notifier.fresh([cause, gone])
    assert fresh == [cause, gone] and not notifier.wants_bell(fresh)
    symptom = Alert("r1", "divergence", Severity.WARNING, 9, 0, "diverging", "", {})
    symptom.caused_by, cause.symptoms = cause, [symptom]
    assert notifier.fresh([cause, gone, symptom]) == []  # a symptom comes with its cause, not alone
    symptom.severity = Severity.CRITICAL
    fresh = notifier.fresh([cause, gone, symptom])
    assert fresh == [cause] and notifier.wants_bell(fresh)  # its tree turned critical: once more
    gone.active, gone.occurrences = True, 2  # flapping: never again
    assert notifier.fresh([cause, gone, symptom]) == []
    assert notifier.fresh([cause, gone, symptom], muted={"lr_config"}) == []
    from lossmon.show.notify import payload

    sent = payload(cause)
    assert sent["symptoms"] == ["r1:divergence"] and [s["id"] for s in sent["symptom_incidents"]] == ["r1:divergence"]
    assert sent["symptom_incidents"][0]["caused_by"] == "r1:lr_config"
