"""A live plot of some of a run's metrics, drawn with plotext."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from textual_plotext import PlotextPlot

from lossmon.model import Run, Series, downsample
from lossmon.show.safe import printable

TRAIN_COLOR = "cyan"
VAL_COLOR = "orange"
EXTRA_COLORS = ("green", "magenta", "blue", "yellow")


@dataclass(frozen=True)
class Line:
    """One curve to draw."""

    label: str
    series: Series
    color: str


Picker = Callable[[Run], list[Line]]


def _is_val(name: str) -> bool:
    return name.startswith("val_")


def _colored(names: list[tuple[str, Series]]) -> list[Line]:
    lines, extra = [], iter(EXTRA_COLORS * 4)
    for name, series in names:
        if name in ("loss", "accuracy"):
            color = TRAIN_COLOR
        elif name in ("val_loss", "val_accuracy"):
            color = VAL_COLOR
        else:
            color = next(extra, "white")
        lines.append(Line(name, series, color))
    return lines


def _pick(run: Run, wanted: Callable[[str], bool]) -> list[Line]:
    """Per-step curves for training metrics, epoch curves for validation ones
    (and for training ones when no batch records exist, e.g. a CSV log)."""
    chosen: list[tuple[str, Series]] = []
    for name, series in run.batch.items():
        if wanted(name) and not _is_val(name):
            chosen.append((name, series))
    for name, series in run.epoch.items():
        if wanted(name) and (_is_val(name) or name not in run.batch):
            chosen.append((name, series))
    return _colored(chosen)


def loss_lines(run: Run) -> list[Line]:
    return _pick(run, lambda name: name == "loss" or name == "val_loss")


def accuracy_lines(run: Run) -> list[Line]:
    return _pick(run, lambda name: "acc" in name.lower())


class MetricPlot(PlotextPlot):
    """Curves of the metrics a picker selects from the newest run.

    Data is downsampled to the widget's width, so drawing costs the same
    at step 100 and at step 10 million; it is rebuilt only when the run
    changed or the widget was resized.
    """

    def __init__(self, title: str, picker: Picker, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.picker = picker
        self.lines: list[Line] = []
        self._drawn: tuple[int, int, int] | None = None
        self.empty = True
        self.draws = 0  # how often the data was rebuilt; stays put while nothing changes

    def show_run(self, run: Run | None) -> None:
        """Redraw from `run` if anything changed since the last draw."""
        key = (id(run), run.version if run else -1, self.size.width)
        if key == self._drawn:
            return
        self._drawn = key
        self.draws += 1
        self._draw(run)
        self.refresh()

    def on_resize(self) -> None:
        self._drawn = None

    def _draw(self, run: Run | None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        self.lines = self.picker(run) if run is not None else []
        buckets = max(self.size.width, 20)
        drawn = 0
        first_bad: int | None = None
        for line in self.lines:
            steps, values = line.series.steps, line.series.values
            bad = ~np.isfinite(values)
            if bad.any():
                step = int(steps[np.argmax(bad)])
                first_bad = step if first_bad is None else min(first_bad, step)
                steps, values = steps[~bad], values[~bad]
            if not len(steps):
                continue
            xs, ys = downsample(steps, values, buckets)
            plt.plot(xs.tolist(), ys.tolist(), label=printable(line.label, 30), color=line.color, marker="braille")
            drawn += 1
        if first_bad is not None:
            plt.vline(first_bad, "red")
        self.empty = drawn == 0
        if self.empty:
            plt.title(f"{self.title} (no data yet)")
