"""`python -m lossmon.eval score DIR`: judge a corpus by outcome.

Labels come from what happened, not from what was intended:

- a healthy setup is **healthy** if it ended well: nothing non-finite, a
  validation skill (balanced accuracy above chance, scaled to 0..1, or
  R^2) of at least HEALTHY_SKILL and within NEAR_REACH of what its dataset
  reaches (the REACH_QUANTILE of the healthy setups' skills on it), and a
  validation loss that gave back at most GIVEBACK of its progress by the
  end (lowest late, not overfitted);
- a mutant is a **fault** if its symptom really shows: something went
  non-finite, or its skill is FAULT_DROP below its healthy parent's, or
  (for operators whose symptom is overfitting) its validation loss gave
  back at least OVERFIT_GIVEBACK of its progress;
- everything else (a healthy setup that did not end well, a mutant whose
  mistake did no visible harm, a mutant of a parent that was not healthy)
  is left out of the scores, and counted.

Each labelled run is read as `lossmon check` reads it, and the scores are
what the trust issue asks for: per detector precision, recall and delay;
false warnings per 100 healthy runs; recall and root-cause accuracy per
operator; warning+ incidents per run (root causes: symptoms come under them);
runs with contradictory advice open at
once. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossmon.detect import Alert, Severity

HEALTHY_SKILL = 0.2
NEAR_REACH = 0.2
REACH_QUANTILE = 0.9
GIVEBACK = 0.3
FAULT_DROP = 0.2
OVERFIT_GIVEBACK = 0.3

# Targets of the trust issue, on a corpus drawn with a seed nobody tuned on.
TARGETS = {"false_warnings_per_100_healthy": 1.0, "operator_recall": 0.95, "root_cause_first": 0.8,
           "median_delay_epochs": 1.0, "contradictory_runs": 0}

# Learning-rate advice as the user reads it in a hint.
LOWER = re.compile(r"lower the learning rate|\dx lower|lower learning rate|x \w+'s default [\d.e-]+: try")
RAISE = re.compile(r"higher learning rate|raise the learning rate|x below \w+'s default")
OPPOSITES = [{"exploding_gradients", "vanishing_gradients"}]  # never open together


@dataclass
class Judged:
    """One labelled corpus run and what lossmon said about it."""

    id: str
    label: str  # healthy / fault / unclear
    why: str
    operator: str | None
    causes: tuple[str, ...]
    alerts: list[Alert] = field(default_factory=list)
    steps_per_epoch: int | None = None
    last_step: int = 0

    @property
    def raised(self) -> list[Alert]:
        return [a for a in self.alerts if a.severity.rank >= Severity.WARNING.rank]

    @property
    def incidents(self) -> list[Alert]:
        """The root incidents at warning or worse, as the views list them
        (root cause first, then severity, then time): what a user reads."""
        from lossmon.detect.engine import ordered

        return [a for depth, a in ordered(self.alerts) if depth == 0 and a.worst.rank >= Severity.WARNING.rank]

    def first(self) -> Alert | None:
        """The entry a user reads first."""
        shown = self.incidents
        return shown[0] if shown else None

    def delay_epochs(self) -> float | None:
        """From the start (every mistake is there from step 1) to the first
        warning by a root-cause detector, in epochs."""
        steps = [a.step for a in self.raised if a.detector in self.causes]
        if not steps or not self.steps_per_epoch:
            return None
        return max(min(steps) - 1, 0) / self.steps_per_epoch


def giveback(val: list[float]) -> float:
    """How much of its progress the validation loss gave back by the end."""
    if len(val) < 2:
        return 0.0
    best = min(val)
    progress = val[0] - best
    if progress <= 0:
        return 0.0 if val[-1] <= best * 1.05 else 1.0
    return (val[-1] - best) / progress


def reach(records: dict[str, dict[str, Any]]) -> dict[str, float]:
    """What each dataset's healthy setups reach: a high quantile of their skill."""
    skills: dict[str, list[float]] = defaultdict(list)
    for record in records.values():
        setup, out = record["setup"], record["outcome"]
        if setup.get("operator") is None and "error" not in out and not out["nonfinite"]:
            skills[setup["dataset"]].append(out["skill"])
    return {name: float(statistics.quantiles(v, n=10, method="inclusive")[int(REACH_QUANTILE * 10) - 1]) if len(v) >= 2 else v[0]
            for name, v in skills.items()}


def label(record: dict[str, Any], parents: dict[str, dict[str, Any]], reaches: dict[str, float] | None = None) -> tuple[str, str]:
    """(label, reason) for a run, from its outcome (and its parent's)."""
    reaches = reach(parents) if reaches is None else reaches
    from lossmon.eval.mutations import BY_NAME

    setup, out = record["setup"], record["outcome"]
    if "error" in out:
        return "unclear", "did not train: " + out["error"][:80]
    op = setup.get("operator")
    if op is None:
        if out["nonfinite"]:
            return "unclear", "healthy setup went non-finite"
        wanted = max(HEALTHY_SKILL, reaches.get(setup["dataset"], 0.0) - NEAR_REACH)
        if out["skill"] < wanted:
            return "unclear", f"healthy setup short of its reach: skill {out['skill']:.2f} of {wanted + NEAR_REACH:.2f}"
        gb = giveback(out["val_loss"])
        if gb > GIVEBACK:
            return "unclear", f"healthy setup overfitted: val_loss gave back {gb:.0%}"
        return "healthy", "ended well"
    if out["nonfinite"]:
        return "fault", "non-finite"
    parent = parents.get(setup.get("parent", ""))
    if parent is None or label(parent, parents, reaches)[0] != "healthy":
        return "unclear", "parent not healthy"
    drop = parent["outcome"]["skill"] - out["skill"]
    if drop >= FAULT_DROP:
        return "fault", f"worse: skill {out['skill']:.2f} vs parent {parent['outcome']['skill']:.2f}"
    if BY_NAME[op].symptom == "overfit" and giveback(out["val_loss"]) >= OVERFIT_GIVEBACK:
        return "fault", "val_loss rose late"
    return "unclear", f"benign: skill {out['skill']:.2f} vs parent {parent['outcome']['skill']:.2f}"


def advice(alert: Alert) -> str | None:
    lower, raise_ = bool(LOWER.search(alert.hint)), bool(RAISE.search(alert.hint))
    if lower == raise_:
        return None
    return "lower" if lower else "raise"


def contradictions(j: Judged) -> list[str]:
    """Pairs of alerts open at the same time that give opposite advice."""
    end = j.last_step + 1
    spans = [(a, a.step, a.last_step if not a.active else end) for a in j.raised]
    found = []
    for i, (a, a0, a1) in enumerate(spans):
        for b, b0, b1 in spans[i + 1 :]:
            if a0 > b1 or b0 > a1:
                continue
            da, db = advice(a), advice(b)
            opposite = da is not None and db is not None and da != db
            opposite |= {a.detector, b.detector} in OPPOSITES
            if opposite:
                found.append(f"{a.detector}@{a.step} vs {b.detector}@{b.step}")
    return found


def judge_corpus(directory: Path) -> list[Judged]:
    from lossmon.eval.mutations import BY_NAME
    from lossmon.eval.scenarios import judge_run

    records = {}
    for meta in sorted((directory / "runs").glob("*.json")):
        records[meta.stem] = json.loads(meta.read_text())
    judged = []
    reaches = reach(records)
    for run_id, record in records.items():
        what, why = label(record, records, reaches)
        op = record["setup"].get("operator")
        causes = BY_NAME[op].causes if op else ()
        if op and not record["setup"].get("probe"):
            causes += BY_NAME[op].blind
        j = Judged(run_id, what, why, op, causes)
        path = directory / "runs" / f"{run_id}.jsonl"
        if what != "unclear" and path.exists():
            j.alerts, j.steps_per_epoch, j.last_step = judge_run(path)
        judged.append(j)
    return judged


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def score(judged: list[Judged]) -> tuple[list[str], dict[str, Any]]:
    healthy = [j for j in judged if j.label == "healthy"]
    faults = [j for j in judged if j.label == "fault"]
    lines = [f"{len(judged)} runs: {len(healthy)} healthy, {len(faults)} faults, "
             f"{len(judged) - len(healthy) - len(faults)} left out (unclear or benign)"]
    left_out = Counter(j.why.split(":")[0] for j in judged if j.label == "unclear")
    lines.append("left out: " + ", ".join(f"{why} {n}" for why, n in left_out.most_common()))

    false_runs = [j for j in healthy if j.raised]
    lines.append("")
    lines.append(f"false warnings: {len(false_runs)} of {len(healthy)} healthy runs")
    for j in false_runs:
        lines.append(f"  {j.id}: " + " ".join(f"{a.detector}:{a.severity.value}@{a.step}" for a in j.raised))

    lines.append("")
    lines.append("operator                 faults  caught  root-cause-first  median delay (epochs)  missed")
    per_op: dict[str, Any] = {}
    by_op: dict[str, list[Judged]] = defaultdict(list)
    for j in faults:
        by_op[j.operator or "?"].append(j)
    for op, runs in sorted(by_op.items()):
        caught = [j for j in runs if j.raised]
        rooted = [j for j in runs if (f := j.first()) is not None and f.detector in j.causes]
        delays = [d for j in runs if (d := j.delay_epochs()) is not None]
        med = statistics.median(delays) if delays else None
        missed = [j.id for j in runs if not j.raised]
        per_op[op] = {"faults": len(runs), "recall": _share(len(caught), len(runs)),
                      "root_cause_first": _share(len(rooted), len(runs)), "median_delay_epochs": med, "missed": missed}
        lines.append(f"{op:24} {len(runs):6}  {len(caught):6}  {len(rooted):16}  "
                     f"{'-' if med is None else f'{med:.2f}':21}  {' '.join(missed)}")
        for j in runs:
            if j not in rooted:
                first = j.first()
                lines.append(f"    {j.id}: first {first.detector + '@' + str(first.step) if first else 'nothing'}"
                             f" (causes: {','.join(j.causes)})")

    lines.append("")
    lines.append("detector             raised-on-healthy  raised-on-faults  precision  recall (as a cause)")
    per_det: dict[str, Any] = {}
    detectors = sorted({a.detector for j in healthy + faults for a in j.raised} | {c for j in faults for c in j.causes})
    for det in detectors:
        on_healthy = sum(1 for j in healthy if any(a.detector == det for a in j.raised))
        on_faults = sum(1 for j in faults if any(a.detector == det for a in j.raised))
        cause_of = [j for j in faults if det in j.causes]
        hits = [j for j in cause_of if any(a.detector == det for a in j.raised)]
        precision = _share(on_faults, on_faults + on_healthy)
        recall = _share(len(hits), len(cause_of))
        per_det[det] = {"on_healthy": on_healthy, "on_faults": on_faults, "precision": precision, "recall": recall}
        lines.append(f"{det:20} {on_healthy:17}  {on_faults:16}  {_fmt(precision):9}  {_fmt(recall)} of {len(cause_of)}")

    counts = [len(j.incidents) for j in faults]
    contra = {j.id: c for j in healthy + faults if (c := contradictions(j))}
    if contra:
        lines.append("")
        lines.append("contradictory advice open together:")
        lines += [f"  {run}: {'; '.join(pairs)}" for run, pairs in contra.items()]
    delays = [d for j in faults if (d := j.delay_epochs()) is not None]
    caught = [j for j in faults if j.raised]
    rooted = [j for j in faults if (f := j.first()) is not None and f.detector in j.causes]
    op_recalls = [v["recall"] for v in per_op.values() if v["recall"] is not None]
    totals = {
        "runs": len(judged),
        "healthy": len(healthy),
        "faults": len(faults),
        "left_out": len(judged) - len(healthy) - len(faults),
        "false_warning_runs": [j.id for j in false_runs],
        "false_warnings_per_100_healthy": round(100 * len(false_runs) / len(healthy), 2) if healthy else None,
        "fault_recall": _share(len(caught), len(faults)),
        "operator_recall_min": min(op_recalls) if op_recalls else None,
        "root_cause_first": _share(len(rooted), len(faults)),
        "median_delay_epochs": statistics.median(delays) if delays else None,
        "incidents_per_fault_median": statistics.median(counts) if counts else None,
        "incidents_per_fault_max": max(counts) if counts else None,
        "incidents_per_healthy_max": max((len(j.incidents) for j in healthy), default=0),
        "contradictory_runs": len(contra),
        "operators": per_op,
        "detectors": per_det,
    }
    totals["targets_met"] = bool(
        healthy and faults
        and totals["false_warnings_per_100_healthy"] <= TARGETS["false_warnings_per_100_healthy"]
        and (totals["operator_recall_min"] or 0) >= TARGETS["operator_recall"]
        and (totals["root_cause_first"] or 0) >= TARGETS["root_cause_first"]
        and (totals["median_delay_epochs"] is None or totals["median_delay_epochs"] <= TARGETS["median_delay_epochs"])
        and totals["contradictory_runs"] == 0
    )
    lines.append("")
    lines.append(
        f"false warnings per 100 healthy runs: {totals['false_warnings_per_100_healthy']}; faults caught "
        f"{_fmt(totals['fault_recall'])}, worst operator {_fmt(totals['operator_recall_min'])}; root cause first "
        f"{_fmt(totals['root_cause_first'])}; median delay {_fmt(totals['median_delay_epochs'])} epochs; "
        f"warning+ incidents per fault: median {totals['incidents_per_fault_median']}, max {totals['incidents_per_fault_max']}; "
        f"contradictory runs {len(contra)}"
    )
    return lines, totals


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lossmon.eval score", description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="a directory made by `python -m lossmon.eval corpus`")
    args = parser.parse_args(argv)
    if not (args.corpus / "runs").is_dir():
        print(f"lossmon.eval score: {args.corpus} holds no corpus (no runs/ directory)", file=sys.stderr)
        return 2
    lines, totals = score(judge_corpus(args.corpus))
    print("\n".join(lines))
    print(json.dumps(totals, sort_keys=True))
    return 0 if totals["targets_met"] else 1
