"""The calibration corpus: its plan, a tiny real corpus trained and scored.

The full corpus (300 runs, about half an hour on two cores) is a command,
`python -m lossmon.eval corpus`, not a test; this trains three runs."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lossmon.eval import main as eval_main
from lossmon.eval.corpus import plan
from lossmon.eval.mutations import BY_NAME, OPERATORS
from lossmon.eval.score import giveback


def test_the_plan_is_reproducible_and_covers_every_operator() -> None:
    setups = plan(300, 11)
    assert setups == plan(300, 11) and setups != plan(300, 12)
    assert len({s["id"] for s in setups}) == 300
    healthy = [s for s in setups if "operator" not in s]
    assert len(healthy) == 200
    ops = Counter(s["operator"] for s in setups if "operator" in s)
    assert set(ops) == {op.name for op in OPERATORS} and min(ops.values()) >= 4
    by_id = {s["id"]: s for s in setups}
    for s in setups:
        if "operator" in s:
            parent = by_id[s["parent"]]
            assert "operator" not in parent and BY_NAME[s["operator"]].applies(parent)


def test_giveback_measures_how_much_of_the_fall_came_back() -> None:
    assert giveback([1.0, 0.5, 0.2, 0.2]) == 0.0
    assert giveback([1.0, 0.2, 0.6]) == pytest.approx(0.5)
    assert giveback([0.5, 0.6, 0.7]) == 1.0  # never fell, ends higher


def test_a_tiny_corpus_trains_resumes_and_scores(tmp_path, capsys) -> None:
    out = tmp_path / "corpus"
    assert eval_main(["corpus", "--runs", "3", "--seed", "5", "--out", str(out), "--jobs", "1"]) == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["h0000.json", "h0000.jsonl", "h0001.json", "h0001.jsonl", "m0000.json", "m0000.jsonl"]
    record = json.loads((out / "runs" / "m0000.json").read_text())
    assert record["setup"]["parent"] in ("h0000", "h0001") and "skill" in record["outcome"]
    first = (out / "runs" / "h0000.jsonl").read_bytes()
    capsys.readouterr()
    eval_main(["corpus", "--runs", "3", "--seed", "5", "--out", str(out), "--jobs", "1"])
    assert "0 to train" in capsys.readouterr().err  # resumed: nothing trained again
    assert (out / "runs" / "h0000.jsonl").read_bytes() == first
    eval_main(["score", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    totals = json.loads(lines[-1])
    assert totals["runs"] == 3 and totals["healthy"] + totals["faults"] + totals["left_out"] == 3
    assert "false warnings per 100 healthy runs" in "\n".join(lines)


def test_score_refuses_a_directory_without_a_corpus(tmp_path, capsys) -> None:
    assert eval_main(["score", str(tmp_path)]) == 2
    assert "holds no corpus" in capsys.readouterr().err
