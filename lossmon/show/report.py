"""Incidents as text or JSON, for `lossmon check` and `watch --plain`.

Both list the incidents in reading order (lossmon/detect/engine.py,
`ordered`): root causes first, each followed by its symptoms, indented in
text and linked by `caused_by` / `symptoms` ids in JSON.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import orjson

from lossmon.detect import Alert
from lossmon.detect.engine import ordered
from lossmon.format import json_safe
from lossmon.model import Run
from lossmon.show.safe import printable

INDENT = "    "  # one level of symptoms


def run_summary(run: Run) -> dict[str, Any]:
    return {"run": run.id, "status": run.status, "step": run.step, "epoch": run.epoch_index, "records": run.records}


def as_json(
    alerts: Sequence[Alert], runs: Iterable[Run], malformed: int, verdict: dict[str, Any] | None = None
) -> str:
    document: dict[str, Any] = {
        "alerts": [json_safe(alert.to_json()) for _, alert in ordered(alerts)],
        "runs": [run_summary(run) for run in runs],
        "malformed_lines": malformed,
    }
    if verdict is not None:
        document["verdict"] = verdict
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def format_evidence(evidence: dict[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{printable(key, 40)}={printable(value, 60)}")
    return ", ".join(parts)


def span(alert: Alert) -> str:
    """Where an incident was seen: 'step 5, epoch 1', '... to step 200, 3 times'."""
    where = f"step {alert.step}" + (f", epoch {alert.epoch + 1}" if alert.epoch is not None else "")
    if alert.last_step != alert.step:
        where += f" to step {alert.last_step}"
    if alert.occurrences > 1:
        where += f", {alert.occurrences} times"
    return where


def alert_lines(alert: Alert, with_run: bool = True, depth: int = 0) -> list[str]:
    """An incident as text lines, indented `depth` levels (a symptom's
    under its cause); a symptom says what explains it only by its place."""
    run = f"run {printable(alert.run, 40)} " if with_run else ""
    state = "" if alert.active else " [resolved]"
    pad = INDENT * depth
    head = "↳ " if depth else ""
    lines = [f"{pad}{head}{alert.severity.value.upper():8} {alert.detector} ({run}{span(alert)}){state}: {printable(alert.message)}"]
    pad += "  " if depth else ""
    if alert.evidence:
        lines.append(f"{pad}         evidence: {format_evidence(alert.evidence)}")
    peak = alert.peak
    if peak and peak.get("evidence") != alert.evidence:
        lines.append(f"{pad}         peak: step {peak['step']} ({peak['severity']}): {format_evidence(peak['evidence'])}")
    if alert.hint:
        lines.append(f"{pad}         hint: {printable(alert.hint, 400)}")
    return lines


def incident_lines(alerts: Sequence[Alert], with_run: bool) -> list[str]:
    """Every incident's lines, in reading order, symptoms under their cause."""
    lines: list[str] = []
    for depth, alert in ordered(alerts):
        lines.extend(alert_lines(alert, with_run, depth))
    return lines


def as_text(alerts: Sequence[Alert], runs: list[Run], malformed: int, verdict: str = "") -> str:
    lines = incident_lines(alerts, with_run=len(runs) > 1)
    tree = ordered(alerts)
    roots = [alert for depth, alert in tree if depth == 0]
    counts: dict[str, int] = {}
    for root in roots:
        counts[root.worst.value] = counts.get(root.worst.value, 0) + 1
    detail = ", ".join(f"{n} {sev}" for sev, n in sorted(counts.items()))
    records = sum(run.records for run in runs)
    summary = f"{len(roots)} incident{'s' if len(roots) != 1 else ''}" + (f" ({detail})" if detail else "")
    symptoms = len(tree) - len(roots)
    if symptoms:
        summary += f", {symptoms} symptom{'s' if symptoms != 1 else ''} under {'it' if len(roots) == 1 else 'them'}"
    summary += f" in {len(runs)} run{'s' if len(runs) != 1 else ''}, {records} records"
    if malformed:
        summary += f", {malformed} malformed line{'s' if malformed != 1 else ''} skipped"
    lines.append(summary)
    if verdict:
        lines.append(verdict)
    return "\n".join(lines)
