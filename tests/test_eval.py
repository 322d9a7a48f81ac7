"""The evaluation command on a small subset of the scenario suite (the full
suite is `python -m lossmon.eval`, a command, not a test)."""

from __future__ import annotations

import json

from lossmon.cli import main as lossmon_main
from lossmon.eval import main

from records import training, write


def test_eval_trains_scores_and_ends_with_a_json_line(tmp_path, capsys) -> None:
    code = main(["--only", "healthy", "oscillation", "--out", str(tmp_path)])
    out = capsys.readouterr().out.strip().splitlines()
    totals = json.loads(out[-1])
    assert code == 0 and totals["targets_met"] is True
    assert totals["scenarios"] == 2 and totals["faults"] == 1 and totals["caught"] == 1
    assert totals["false_alarms"] == [] and totals["missed"] == []
    assert totals["median_delay_epochs"] <= 1.0
    osc = totals["detectors"]["oscillation"]
    assert osc["recall"] == 1.0 and osc["false_alarms"] == []
    table = "\n".join(out)
    assert "healthy" in table and "(control)" in table and "ok" in table
    assert "oscillation:warning@" in table and "caught, delay" in table
    assert (tmp_path / "healthy.jsonl").exists() and (tmp_path / "oscillation.jsonl").exists()


def test_check_reports_a_run_that_went_silent_without_its_end_record(tmp_path, capsys) -> None:
    # Records written in 1970 and no end record: killed long ago, never said so.
    path = write(tmp_path / "dead.jsonl", training([0.6 * 0.99**i for i in range(60)], finished=False))
    assert lossmon_main(["check", str(path), "--format", "json"]) == 1
    stalled = [a for a in json.loads(capsys.readouterr().out)["alerts"] if a["detector"] == "stalled"]
    assert stalled and stalled[0]["severity"] == "warning" and "no end record" in stalled[0]["message"]
    finished = write(tmp_path / "done.jsonl", training([0.6 * 0.99**i for i in range(60)]))
    lossmon_main(["check", str(finished), "--format", "json"])
    assert not [a for a in json.loads(capsys.readouterr().out)["alerts"] if a["detector"] == "stalled"]
