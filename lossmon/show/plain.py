"""`lossmon watch --plain` (and watch without a terminal): plain text lines.

For log files and batch schedulers: each incident once as it opens (and
once more if it turns critical; see lossmon/show/notify.py), and a
one-line progress per epoch (at most every few seconds otherwise). No
Textual, no colours, no cursor movement.

When to stop: a run's end record does not mean the file is done (a second
`fit()` into the same file, fine-tuning after a warm-up, starts a new run
with its own header). So it exits once every run it has seen has ended (an
end record, or a crashed writer) *and* no file has grown for `settle`
seconds (`--settle`, default 10); Ctrl-C stops it at once. A file that
cannot be read is said on stderr as soon as it is met; when no file can be
read at all, it exits with status 2.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from lossmon.detect import Engine
from lossmon.model import Run
from lossmon.model.run import MAX_NAMES
from lossmon.model.health import CRASHED, FINISHED, TimedStore, run_health, total_steps
from lossmon.monitor import Monitor
from lossmon.show.notify import AlertNotifier
from lossmon.show.report import incident_lines
from lossmon.show.safe import escape, printable
from lossmon.show.ticks import feed_ticks, stalled_runs
from lossmon.show.widgets.status_line import ago

PROGRESS_EVERY = 30.0
SETTLE = 10.0  # seconds without growth after every run ended, before exiting
EXIT_UNREADABLE = 2


def progress_line(run: Run, store: TimedStore, now: float, stalled: set[str] | None = None) -> str:
    health = run_health(run, store.clocks.get(run.id), now, None if stalled is None else run.id in stalled)
    parts = [f"{printable(run.id, 40)} {health.state}" + (f" ({printable(health.detail, 60)})" if health.detail else "")]
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
    settle: float = SETTLE,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    stop = stop or threading.Event()
    notifier = notifier or AlertNotifier()
    store = TimedStore()
    monitor = Monitor(paths, engine=engine, store=store)
    many = len(paths) > 1
    printed: dict[str, tuple[int | None, float]] = {}  # run -> (epoch, when) of its last progress line
    next_tick = time.monotonic() + 1.0
    finished: set[str] = set()  # runs whose last progress line was printed
    seen_malformed = 0
    capped: set[str] = set()  # runs whose names beyond MAX_NAMES were said
    quiet_since = time.monotonic()  # when a file last grew (or was replaced)
    told: dict[Path, str | None] = {}  # the error last said per file
    first = True

    def say(line: str) -> None:
        out.write(escape(line) + "\n")  # whatever built the line, nothing from a file goes out raw
        out.flush()

    while not stop.is_set():
        update = monitor.poll()
        now = clock()
        if update.records or update.notices or update.more:
            quiet_since = time.monotonic()
        for source in monitor.sources:
            problem = source.error if source.status == "error" else None
            if problem != told.get(source.path) and (problem or source.path in told):
                err.write(escape(f"lossmon: {problem}" if problem else f"lossmon: reading {source.path} again") + "\n")
                err.flush()
                told[source.path] = problem
        if first and all(source.status == "error" for source in monitor.sources):
            return EXIT_UNREADABLE
        first = False
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
                    say(progress_line(run, store, now, stalled_runs(monitor)))
                    printed[run.id] = (run.epoch_index, now)
                    if state in (FINISHED, CRASHED):
                        finished.add(run.id)
            for run in store.runs.values():
                if run.names_dropped and run.id not in capped:
                    capped.add(run.id)
                    say(f"{printable(run.id, 40)}: more metric names than {MAX_NAMES} of a kind; the values of the rest are not kept")
            if monitor.malformed > seen_malformed:
                say(f"{monitor.malformed - seen_malformed} malformed line(s) skipped")
                seen_malformed = monitor.malformed
            done = bool(store.runs) and all(
                run_health(run, store.clocks.get(run.id), now).state in (FINISHED, CRASHED) for run in store.runs.values()
            ) and all(s.status != "waiting" for s in monitor.sources)
        if update.more:
            continue
        if done and time.monotonic() - quiet_since >= settle:
            break
        stop.wait(poll_interval)
    notifier.wait()
    return 0
