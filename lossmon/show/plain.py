"""`lossmon watch --plain` (and watch without a terminal): plain text lines.

For log files and batch schedulers: each incident once as it opens (and
once more if it turns critical; see lossmon/show/notify.py), and a
one-line progress per epoch (at most every few seconds otherwise). No
Textual, no colours, no cursor movement. Exits when every run has ended or
its writer is gone.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from lossmon.detect import Engine
from lossmon.model import Run
from lossmon.model.health import CRASHED, FINISHED, TimedStore, run_health, total_steps
from lossmon.monitor import Monitor
from lossmon.show.notify import AlertNotifier
from lossmon.show.report import incident_lines
from lossmon.show.safe import printable
from lossmon.show.ticks import feed_ticks
from lossmon.show.widgets.status_line import ago

PROGRESS_EVERY = 30.0


def progress_line(run: Run, store: TimedStore, now: float) -> str:
    health = run_health(run, store.clocks.get(run.id), now)
    parts = [f"{printable(run.id, 40)} {health.state}" + (f" ({health.detail})" if health.detail else "")]
    if run.epoch_index is not None:
        parts.append(f"epoch {run.epoch_index + 1}" + (f"/{run.epochs}" if run.epochs else ""))
    total = total_steps(run)
    parts.append(f"step {run.step}" + (f"/{total}" if total else ""))
    rate = run.steps_per_second()
    if rate is not None and run.end is None:
        parts.append(f"{rate:.1f} steps/s")
    if health.eta is not None:
        parts.append(f"ETA {ago(health.eta)}")
    values = []
    for table in (run.epoch, run.batch):
        for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
            series = table.get(name)
            if series is not None and not any(v.startswith(name + " ") for v in values):
                last = series.last()
                if last is not None:
                    values.append(f"{name} {last[1]:.4g}")
    if values:
        parts.append(" ".join(values))
    return " · ".join(parts)


def watch_plain(
    paths: list[Path],
    *,
    engine: Engine | None = None,
    notifier: AlertNotifier | None = None,
    out: TextIO | None = None,
    poll_interval: float = 0.5,
    progress_every: float = PROGRESS_EVERY,
    stop: threading.Event | None = None,
    clock=time.time,
) -> int:
    out = out or sys.stdout
    stop = stop or threading.Event()
    notifier = notifier or AlertNotifier()
    store = TimedStore()
    monitor = Monitor(paths, engine=engine, store=store)
    many = len(paths) > 1
    printed: dict[str, tuple[int | None, float]] = {}  # run -> (epoch, when) of its last progress line
    next_tick = time.monotonic() + 1.0
    finished: set[str] = set()  # runs whose last progress line was printed
    seen_malformed = 0

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    while not stop.is_set():
        update = monitor.poll()
        now = clock()
        if time.monotonic() >= next_tick:
            next_tick = time.monotonic() + 1.0
            feed_ticks(monitor, now)
        with monitor.lock:
            fresh = notifier.fresh(monitor.engine.alerts)
            for alert in fresh:  # a root incident, its symptoms under it
                for line in incident_lines(alert.tree(), with_run=many or len(store.runs) > 1):
                    say(line)
            if notifier.wants_bell(fresh):
                out.write("\a")
            notifier.run_command(fresh)
            for run in store.runs.values():
                if run.id in finished or run.records <= 1:
                    continue
                last_epoch, when = printed.get(run.id, (None, 0.0))
                state = run_health(run, store.clocks.get(run.id), now).state
                if state in (FINISHED, CRASHED) or run.epoch_index != last_epoch or now - when >= progress_every:
                    say(progress_line(run, store, now))
                    printed[run.id] = (run.epoch_index, now)
                    if state in (FINISHED, CRASHED):
                        finished.add(run.id)
            if monitor.malformed > seen_malformed:
                say(f"{monitor.malformed - seen_malformed} malformed line(s) skipped")
                seen_malformed = monitor.malformed
            done = bool(store.runs) and all(
                run_health(run, store.clocks.get(run.id), now).state in (FINISHED, CRASHED) for run in store.runs.values()
            ) and all(s.status != "waiting" for s in monitor.sources)
        if update.more:
            continue
        if done:
            break
        stop.wait(poll_interval)
    notifier.wait()
    return 0
