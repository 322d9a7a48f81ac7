"""The pipeline in one place: read → model → detect, for one or more files.

`lossmon check` drives it to the end of the files once; `lossmon watch`
drives it from a reader thread and draws from the UI thread, taking `lock`
for both, so the model is never drawn half-updated.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path

from lossmon.detect import Alert, Engine, available_detectors
from lossmon.model import Run, RunStore
from lossmon.read import TailBatch, Tailer, open_reader
from lossmon.read.csvlog import run_name_for

POLL_BUDGET = 0.5  # seconds of reading per file per poll when there is a backlog


@dataclass
class Source:
    """One run file and what reading it has met so far."""

    path: Path
    tailer: Tailer
    label: str = ""  # the file's name as runs of a clashing id are suffixed with

    @property
    def status(self) -> str:
        return self.tailer.status

    @property
    def error(self) -> str | None:
        return self.tailer.error

    @property
    def malformed(self) -> int:
        return self.tailer.malformed


@dataclass
class Update:
    """What one poll changed."""

    records: int = 0
    alerts: list[Alert] = field(default_factory=list)  # opened, changed or resolved
    news: int = 0  # how many of them opened or resolved (the rest only changed)
    notices: list[str] = field(default_factory=list)
    more: bool = False  # unread bytes remain: poll again soon


class Monitor:
    """Tails files into a RunStore and an Engine."""

    def __init__(
        self,
        paths: list[str | Path],
        engine: Engine | None = None,
        store: RunStore | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        paths = [Path(p) for p in paths]
        names = _csv_run_names(paths)
        self.sources = [Source(p, open_reader(p, run=names[p])) for p in paths]
        labels = _file_labels(paths)
        for source in self.sources:
            source.label = labels[source.path]
        self._owners: dict[str, Source] = {}  # run id -> the file that named it first
        self.engine = engine if engine is not None else Engine(available_detectors())
        self.store = store if store is not None else RunStore()
        self.store.on_evict = self._forget_run
        # With a clock (`check`), a run the store drops is judged first: its
        # detectors see a tick, as every kept run does at the end, so a bound
        # on the runs kept never changes the verdict.
        self.clock = clock
        if clock is not None:
            self.store.before_evict = self._judge_run
        self.lock = threading.RLock()
        self.notices: deque[str] = deque(maxlen=50)
        self.records = 0
        # The most severe alert ever raised, with the severity it had then:
        # the engine keeps only its newest alerts, and a verdict must not
        # change because an old critical one left that list.
        self.worst: tuple[int, Alert] | None = None

    @property
    def malformed(self) -> int:
        return sum(source.malformed for source in self.sources)

    def poll(self, budget: float = POLL_BUDGET) -> Update:
        """Read what is new in every file and run it through model and detectors.

        A backlog (a cold open of a long run) is read in slices of the
        tailer's size, the lock taken per slice so the screen can draw in
        between, for up to `budget` seconds per file; then `more` is set.
        Few polls keep the views' redraws few; small slices keep memory low.
        """
        update = Update()
        for source in self.sources:
            deadline = time.monotonic() + budget
            while True:
                batch = source.tailer.poll()
                self._take(source, batch, update)
                if not batch.more or time.monotonic() >= deadline:
                    break
            update.more = update.more or batch.more
        return update

    def _take(self, source: Source, batch: TailBatch, update: Update) -> None:
        with self.lock:
            if len(self.sources) > 1:
                self._keep_files_apart(source, batch.items)
            items = self.engine.split(batch.items)
            # The detectors first: a run the store drops while taking these
            # items has then been seen by them, and its detectors go with it
            # (the other way round, a run dropped before its detectors were
            # made kept them forever: 20k runs left 19,872 behind).
            changed = self.engine.feed_items(items)
            self.note_alerts(changed)
            update.alerts.extend(changed)
            update.news += len(self.engine.news)
            self.store.add_items(items)
            self.records += batch.count
            for notice in batch.notices:
                self.notices.append(f"{source.path.name}: {notice}")
        update.records += batch.count
        update.notices.extend(batch.notices)

    def _keep_files_apart(self, source: Source, items: list) -> None:
        """Two files that name the same run id hold two runs (ids are random,
        but a copied file or a hand-made one repeats them): the run of the
        file that named it later is called `<id>@<file>`."""
        owners = self._owners
        for item in items:
            owner = owners.setdefault(item.run, source)
            if owner is not source:
                item.run = f"{item.run}@{source.label}"
                owners.setdefault(item.run, source)

    def note_alerts(self, alerts: list[Alert]) -> None:
        """Remember the most severe of these alerts (opened or changed)."""
        for alert in alerts:
            rank = alert.severity.rank
            if alert.active and (self.worst is None or rank > self.worst[0]):
                self.worst = (rank, alert)

    def _judge_run(self, run: Run) -> None:
        from lossmon.detectors.stalled import ticks

        assert self.clock is not None
        for tick in ticks([run], self.clock()):
            self.note_alerts(self.engine.feed(tick))

    def _forget_run(self, run: str) -> None:
        """A run left the store (a file with more runs than it keeps): its
        detectors go too, or a file of distinct run ids grows without bound."""
        self._owners.pop(run, None)
        forget = getattr(self.engine, "forget", None)
        if forget is not None:
            forget(run)

    def read_to_end(self) -> None:
        """Consume everything the files hold now."""
        while self.poll().more:
            pass


def _csv_run_names(paths: list[Path]) -> dict[Path, str]:
    """Run names for CSV logs: the file's stem, or parent/stem when two
    files share a stem (a/log.csv and b/log.csv are different runs)."""
    stems: dict[str, int] = {}
    for path in paths:
        stems[run_name_for(path)] = stems.get(run_name_for(path), 0) + 1
    names = {}
    for path in paths:
        stem = run_name_for(path)
        names[path] = stem if stems[stem] == 1 else f"{path.parent.name}/{stem}"
    return names


def _file_labels(paths: list[Path]) -> dict[Path, str]:
    """Each file's name, or parent/name where two files share a name."""
    counts: dict[str, int] = {}
    for path in paths:
        counts[path.name] = counts.get(path.name, 0) + 1
    return {path: path.name if counts[path.name] == 1 else f"{path.parent.name}/{path.name}" for path in paths}
