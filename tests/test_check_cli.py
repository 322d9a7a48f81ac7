"""`lossmon check`: the verdict without a screen, its output and exit codes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossmon.cli import main
from records import training, write


def healthy_losses(n=200, seed=0):
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    return (0.69 * np.exp(-steps / 60) + 0.05 + rng.normal(0, 0.02, n)).clip(0.01).tolist()


def nan_losses(n=100):
    losses = healthy_losses(n)
    return losses[:60] + [math.nan] * (n - 60)


def run_check(capsys, *args):
    code = main(["check", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_nan_run_reports_nonfinite_and_exits_1(tmp_path, capsys):
    path = write(tmp_path / "nan.jsonl", training(nan_losses()))
    code, out, _ = run_check(capsys, path, "--format", "json")
    assert code == 1
    alerts = json.loads(out)["alerts"]
    nonfinite = [a for a in alerts if a["detector"] == "nonfinite"]
    assert nonfinite and nonfinite[0]["severity"] == "critical"
    assert nonfinite[0]["step"] == 61
    for key in ("run", "detector", "severity", "step", "epoch", "message", "evidence", "hint"):
        assert key in nonfinite[0]


def test_healthy_run_has_nothing_at_warning_and_exits_0(tmp_path, capsys):
    path = write(tmp_path / "ok.jsonl", training(healthy_losses(), val=[0.6, 0.5, 0.4, 0.3] + [0.25] * 16))
    code, out, _ = run_check(capsys, path, "--format", "json")
    document = json.loads(out)
    assert [a for a in document["alerts"] if a["severity"] != "info"] == []
    assert code == 0
    assert document["runs"][0]["status"] == "completed"


def test_fail_on_critical_ignores_warnings(tmp_path, capsys):
    # divergence from a too-high learning rate: warning or critical, never NaN
    losses = [0.69, 0.6, 0.55, 0.5] + [0.5 * 1.6**i for i in range(1, 6)] + [5.0] * 20
    path = write(tmp_path / "div.jsonl", training(losses, lr=1.0))
    code_warning, out, _ = run_check(capsys, path, "--format", "json")
    alerts = json.loads(out)["alerts"]
    assert any(a["detector"] == "divergence" for a in alerts)
    assert code_warning == 1
    worst = max(("info", "warning", "critical").index(a["severity"]) for a in alerts)
    code_critical, _, _ = run_check(capsys, path, "--fail-on", "critical")
    assert code_critical == (1 if worst == 2 else 0)


def test_text_format_names_detector_step_and_hint(tmp_path, capsys):
    path = write(tmp_path / "nan.jsonl", training(nan_losses()))
    code, out, _ = run_check(capsys, path)
    assert code == 1
    assert "CRITICAL" in out and "nonfinite" in out and "step 61, epoch 7" in out and "hint:" in out
    summary, verdict = out.strip().splitlines()[-2:]
    assert summary.startswith("1 incident (1 critical) in 1 run")
    assert verdict == "check fails at --fail-on warning: nonfinite"


def spiky_losses():
    losses = healthy_losses()
    losses[50] *= 12  # one outlier batch, then the run goes on learning
    return losses


def test_a_transient_warning_on_a_run_that_ended_healthy_passes(tmp_path, capsys):
    path = write(tmp_path / "spike.jsonl", training(spiky_losses(), val=[0.6, 0.5, 0.4, 0.3] + [0.25] * 16))
    code, out, _ = run_check(capsys, path, "--format", "json")
    document = json.loads(out)
    spike = next(a for a in document["alerts"] if a["detector"] == "spike")
    assert spike["severity"] == "warning" and not spike["active"] and spike["state"] == "resolved"
    assert code == 0 and document["verdict"] == {
        "fail_on": "warning", "exit": 0, "failing": [], "dropped": 0, "dropped_critical": 0,
    }
    code, out, _ = run_check(capsys, path)
    assert code == 0 and out.strip().splitlines()[-1].startswith("check passes at --fail-on warning")


def test_a_nan_that_recovered_still_fails_even_at_fail_on_critical(tmp_path, capsys):
    losses = healthy_losses()
    losses[50] = math.nan
    path = write(tmp_path / "nan1.jsonl", training(losses, val=[0.6, 0.5, 0.4, 0.3] + [0.25] * 16))
    code, out, _ = run_check(capsys, path, "--format", "json", "--fail-on", "critical")
    (nan,) = [a for a in json.loads(out)["alerts"] if a["detector"] == "nonfinite"]
    assert not nan["active"] and code == 1
    assert nan["first_step"] == nan["step"] == 51 and nan["peak"]["step"] == 51 and nan["peak"]["severity"] == "critical"


def test_json_entries_are_incidents_with_causes_and_symptoms(tmp_path, capsys):
    losses = [0.69, 0.6, 0.55, 0.5] + [0.5 * 1.6**i for i in range(1, 6)] + [5.0] * 20
    path = write(tmp_path / "div.jsonl", training(losses, lr=1.0))
    code, out, _ = run_check(capsys, path, "--format", "json")
    document = json.loads(out)
    entries = {a["detector"]: a for a in document["alerts"]}
    for entry in document["alerts"]:
        for key in ("detector", "severity", "step", "message", "evidence", "hint", "first_step", "last_step",
                    "occurrences", "active", "peak", "caused_by", "symptoms"):
            assert key in entry
    cause, divergence = entries["lr_config"], entries["divergence"]
    assert document["alerts"][0]["detector"] == "lr_config"  # the root cause first
    assert divergence["caused_by"] == cause["id"] and divergence["id"] in cause["symptoms"]
    assert code == 1 and document["verdict"]["failing"] == [cause["id"]]  # the symptom counts through its cause
    code, out, _ = run_check(capsys, path)
    lines = out.splitlines()
    assert lines[0].startswith("WARNING  lr_config") and any(line.startswith("    ↳ WARNING  divergence") for line in lines)


@pytest.mark.parametrize("make", ["missing", "directory", "garbage", "empty"])
def test_unreadable_input_exits_2_with_a_clear_message(tmp_path, capsys, make):
    path = tmp_path / "run.jsonl"
    if make == "directory":
        path.mkdir()
    elif make == "garbage":
        path.write_bytes(b"\x00\xff not json\n{\"a\": 1}\n")
    elif make == "empty":
        path.write_bytes(b"")
    code, out, err = run_check(capsys, path)
    assert code == 2
    assert out == ""
    assert err.startswith("lossmon: ") and str(path.name) in err


def test_malformed_lines_are_skipped_counted_and_reported(tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    write(path, training(healthy_losses(40))[:20])
    with open(path, "ab") as handle:
        handle.write(b"garbage\n\xff\xfe\n")
    write(path, training(healthy_losses(40))[20:])
    code, out, _ = run_check(capsys, path, "--format", "json")
    document = json.loads(out)
    assert document["malformed_lines"] == 2
    assert document["runs"][0]["records"] == len(training(healthy_losses(40)))


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "x.jsonl", "--fail-on", "bogus"])
    assert exc.value.code == 2


def test_check_and_watch_never_import_tensorflow(tmp_path):
    path = write(tmp_path / "nan.jsonl", training(nan_losses()))
    script = (
        "import sys\n"
        "from lossmon.cli import main\n"
        "import lossmon.show.app\n"
        f"code = main(['check', {str(path)!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch'))\n"
        "assert not heavy, heavy\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "nonfinite" in done.stdout


@pytest.mark.parametrize("command", [["-m", "lossmon"], "script"])
def test_installed_command_runs_check(tmp_path, command):
    path = write(tmp_path / "nan.jsonl", training(nan_losses()))
    prefix = [str(Path(sys.executable).with_name("lossmon"))] if command == "script" else [sys.executable, *command]
    done = subprocess.run([*prefix, "check", str(path), "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["alerts"]
