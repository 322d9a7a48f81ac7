"""`python -m lossmon.eval`: train every demo scenario and score the detectors.

Each scenario module (demo/scenarios/, package `lossmon.scenarios`) says
which detectors must raise a warning or worse (`EXPECTED`, empty for a
healthy control) and at which global step its problem begins (`ONSET`).
This command trains them one after another in this process, reads each run
file exactly as `lossmon check` does (Monitor, then one stall tick), and
prints per scenario the expected and raised alerts, per detector the recall,
the false alarms on healthy controls and the detection delay, and last one
JSON line with the totals. Targets: every fault caught, no warning on a
control, median delay at most one epoch; and read as incidents
(lossmon/detect/engine.py): at most two warning-or-worse incidents per
faulty run in the median and three on any, the first incident listed
being the root cause (an expected detector, or a cause with one under it)
in at least 80% of the faulty runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossmon.detect import Alert, Severity
from lossmon.detect.engine import ordered

MAX_MEDIAN_INCIDENTS = 2  # warning-or-worse incidents per faulty run, median
MAX_INCIDENTS = 3  # ... on any faulty run
MIN_ROOT_FIRST = 0.8  # faulty runs whose first incident is the root cause


@dataclass
class Outcome:
    """What one scenario's run raised, against what it should have."""

    name: str
    expected: tuple[str, ...]
    onset: int
    alerts: list[Alert] = field(default_factory=list)
    steps_per_epoch: int | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def raised(self) -> list[Alert]:
        """Alerts at warning or above, in order."""
        return [a for a in self.alerts if a.severity.rank >= Severity.WARNING.rank]

    @property
    def incidents(self) -> list[Alert]:
        """Root incidents whose tree reached warning or above, in reading
        order (symptoms are part of their cause's)."""
        return [a for depth, a in ordered(self.alerts) if depth == 0 and a.worst.rank >= Severity.WARNING.rank]

    @property
    def root_first(self) -> bool:
        """Whether the first incident listed explains the fault: it is, or
        has under it, an expected detector's incident."""
        first = self.incidents[:1]
        return bool(first) and any(a.detector in self.expected for a in first[0].tree())

    @property
    def control(self) -> bool:
        return not self.expected

    @property
    def caught(self) -> bool:
        return any(a.detector in self.expected for a in self.raised)

    def delay(self, detector: str | None = None) -> int | None:
        """Steps from the onset to the first alert of `detector` (any expected one by default)."""
        wanted = (detector,) if detector else self.expected
        steps = [a.step for a in self.raised if a.detector in wanted]
        return min(steps) - self.onset if steps else None

    def in_epochs(self, steps: int | None) -> float | None:
        if steps is None or not self.steps_per_epoch:
            return None
        return steps / self.steps_per_epoch


def scenario_names(only: list[str] | None = None) -> list[str]:
    from lossmon.scenarios import SCENARIOS

    if not only:
        return list(SCENARIOS)
    unknown = [name for name in only if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return list(only)


def judge(path: Path, now: float | None = None) -> tuple[list[Alert], int | None]:
    """Run the detectors over a finished run file as `lossmon check` does."""
    alerts, steps_per_epoch, _ = judge_run(path, now)
    return alerts, steps_per_epoch


def judge_run(path: Path, now: float | None = None) -> tuple[list[Alert], int | None, int]:
    """`judge`, and the last step of the run file's latest run."""
    from lossmon.detectors.stalled import ticks
    from lossmon.monitor import Monitor

    monitor = Monitor([path])
    monitor.read_to_end()
    for tick in ticks(monitor.store.runs.values(), time.time() if now is None else now):
        monitor.engine.feed(tick)
    run = monitor.store.latest
    if run is None:
        return list(monitor.engine.alerts), None, 0
    return list(monitor.engine.alerts), run.steps_per_epoch, int(run.step)


def evaluate(name: str, out: Path) -> Outcome:
    module = importlib.import_module(f"lossmon.scenarios.{name}")
    outcome = Outcome(name, tuple(getattr(module, "EXPECTED", ())), int(getattr(module, "ONSET", 0)))
    path = out / f"{name}.jsonl"
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        module.train(str(path))
    except Exception as exc:  # a broken scenario is reported, not fatal
        outcome.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    finally:
        _forget_models()
    outcome.seconds = time.perf_counter() - start
    if path.exists():
        outcome.alerts, outcome.steps_per_epoch = judge(path)
    elif outcome.error is None:
        outcome.error = "no run file written"
    return outcome


def _forget_models() -> None:
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()


def _short(alert: Alert) -> str:
    return f"{alert.detector}:{alert.severity.value}@{alert.step}"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def report(outcomes: list[Outcome], seconds: float) -> tuple[str, dict[str, Any]]:
    lines = ["scenario                 expected            raised (warning+: detector:severity@step)      incidents  verdict"]
    for o in outcomes:
        expected = ",".join(o.expected) or "(control)"
        raised = " ".join(_short(a) for a in o.raised) or "-"
        if o.error:
            verdict = f"ERROR {o.error}"
        elif o.control:
            verdict = "ok" if not o.raised else "FALSE ALARM"
        else:
            d = o.delay()
            verdict = f"caught, delay {d} steps ({_fmt(o.in_epochs(d))} epochs)" if o.caught else "MISSED"
        incidents = f"{len(o.incidents)}" + (f" {o.incidents[0].detector}" if o.incidents else "")
        lines.append(f"{o.name:24} {expected:19} {raised:46} {incidents:10} {verdict}")

    detectors = sorted({d for o in outcomes for d in o.expected} | {a.detector for o in outcomes for a in o.raised})
    lines.append("")
    lines.append("detector           recall   false alarms   median delay (steps / epochs)")
    per_detector: dict[str, Any] = {}
    for det in detectors:
        faults = [o for o in outcomes if det in o.expected]
        hits = [o for o in faults if any(a.detector == det for a in o.raised)]
        false = [o.name for o in outcomes if o.control and any(a.detector == det for a in o.raised)]
        delays = [o.delay(det) for o in hits]
        epochs = [o.in_epochs(o.delay(det)) for o in hits]
        d_steps = statistics.median(delays) if delays else None
        known = [e for e in epochs if e is not None]
        d_epochs = statistics.median(known) if known else None
        recall = f"{len(hits)}/{len(faults)}" if faults else "-"
        lines.append(f"{det:18} {recall:8} {len(false):<14} {_fmt(d_steps, 1)} / {_fmt(d_epochs)}")
        per_detector[det] = {
            "recall": len(hits) / len(faults) if faults else None,
            "expected_in": len(faults),
            "false_alarms": false,
            "median_delay_steps": d_steps,
            "median_delay_epochs": d_epochs,
        }

    faults = [o for o in outcomes if not o.control]
    controls = [o for o in outcomes if o.control]
    caught = [o for o in faults if o.caught and not o.error]
    false_alarms = [o.name for o in controls if o.raised or o.error]
    delays = [o.in_epochs(o.delay()) for o in caught]
    known = [d for d in delays if d is not None]
    median_epochs = statistics.median(known) if known else None
    step_delays = [o.delay() for o in caught]
    counts = [len(o.incidents) for o in faults if not o.error]
    median_incidents = statistics.median(counts) if counts else None
    root_first = sum(o.root_first for o in faults if not o.error) / len(counts) if counts else None
    incidents_ok = (
        not counts
        or (median_incidents <= MAX_MEDIAN_INCIDENTS and max(counts) <= MAX_INCIDENTS and root_first >= MIN_ROOT_FIRST)
    )
    totals = {
        "scenarios": len(outcomes),
        "faults": len(faults),
        "caught": len(caught),
        "missed": [o.name for o in faults if o not in caught],
        "controls": len(controls),
        "false_alarms": false_alarms,
        "median_delay_steps": statistics.median(step_delays) if step_delays else None,
        "median_delay_epochs": median_epochs,
        "incidents_per_fault": {o.name: len(o.incidents) for o in faults if not o.error},
        "median_incidents_per_fault": median_incidents,
        "max_incidents_per_fault": max(counts) if counts else None,
        "root_first": root_first,
        "root_not_first": [o.name for o in faults if not o.error and not o.root_first],
        "control_incidents": sum(len(o.incidents) for o in controls),
        "targets_met": len(caught) == len(faults)
        and not false_alarms
        and (median_epochs is None or median_epochs <= 1.0)
        and incidents_ok,
        "seconds": round(seconds, 1),
        "detectors": per_detector,
    }
    return "\n".join(lines), totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lossmon.eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="evaluate only these scenarios")
    parser.add_argument("--out", type=Path, help="directory for the run files (default: a new temporary one)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = scenario_names(args.only)
    out = args.out or Path(tempfile.mkdtemp(prefix="lossmon-eval-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    outcomes = []
    for name in names:
        outcome = evaluate(name, out)
        print(f"{name}: {outcome.seconds:.1f} s", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    table, totals = report(outcomes, time.perf_counter() - start)
    print(f"run files in {out}")
    print(table)
    print(json.dumps(totals, sort_keys=True))
    return 0 if totals["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
