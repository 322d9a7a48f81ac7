"""Alerts as text or JSON, for `lossmon check` and `watch --plain`."""

from __future__ import annotations

from typing import Any, Iterable

import orjson

from lossmon.detect import Alert
from lossmon.format import json_safe
from lossmon.model import Run
from lossmon.show.safe import printable


def run_summary(run: Run) -> dict[str, Any]:
    return {"run": run.id, "status": run.status, "step": run.step, "epoch": run.epoch_index, "records": run.records}


def as_json(alerts: Iterable[Alert], runs: Iterable[Run], malformed: int) -> str:
    document = {
        "alerts": [json_safe(alert.to_json()) for alert in alerts],
        "runs": [run_summary(run) for run in runs],
        "malformed_lines": malformed,
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def format_evidence(evidence: dict[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{printable(key, 40)}={printable(value, 60)}")
    return ", ".join(parts)


def alert_lines(alert: Alert, with_run: bool = True) -> list[str]:
    where = f"step {alert.step}" + (f", epoch {alert.epoch + 1}" if alert.epoch is not None else "")
    run = f"run {printable(alert.run, 40)} " if with_run else ""
    state = "" if alert.active else " [resolved]"
    lines = [f"{alert.severity.value.upper():8} {alert.detector} ({run}{where}){state}: {printable(alert.message)}"]
    if alert.evidence:
        lines.append(f"         evidence: {format_evidence(alert.evidence)}")
    if alert.hint:
        lines.append(f"         hint: {printable(alert.hint, 400)}")
    return lines


def as_text(alerts: list[Alert], runs: list[Run], malformed: int) -> str:
    lines: list[str] = []
    for alert in alerts:
        lines.extend(alert_lines(alert, with_run=len(runs) > 1))
    counts = {}
    for alert in alerts:
        counts[alert.severity.value] = counts.get(alert.severity.value, 0) + 1
    detail = ", ".join(f"{n} {sev}" for sev, n in sorted(counts.items()))
    records = sum(run.records for run in runs)
    summary = f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}" + (f" ({detail})" if detail else "")
    summary += f" in {len(runs)} run{'s' if len(runs) != 1 else ''}, {records} records"
    if malformed:
        summary += f", {malformed} malformed line{'s' if malformed != 1 else ''} skipped"
    lines.append(summary)
    return "\n".join(lines)
