"""The status line: each run's health, how far, how fast, and file problems."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from lossmon.model import Run, Series
from lossmon.model.health import CRASHED, FINISHED, LIVE, STALLED, run_health, total_steps
from lossmon.show.panels import short_labels
from lossmon.show.safe import printable

HEALTH_STYLE = {LIVE: "bold green", STALLED: "bold yellow", FINISHED: "bold cyan", CRASHED: "bold red"}


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    if seconds < 86400 * 1e4:
        return f"{seconds / 86400:.1f}d"
    return f"{seconds / 86400:.3g}d"  # a hostile clock: never a 300-digit number


def run_status(run: Run, clock: Series | None, now: float, brief: bool = False, name: str | None = None,
               stalled: set[str] | None = None) -> Text:
    text = Text()
    health = run_health(run, clock, now, None if stalled is None else run.id in stalled)
    text.append(printable(name or run.id, 20 if brief else 32), style="bold")
    label = health.state if health.state != FINISHED or brief else f"finished ({printable(health.detail, 20)})"
    text.append(f" {label}", style=HEALTH_STYLE[health.state])
    epochs = run.epochs
    if run.epoch_index is not None:
        text.append(f" · ep {run.epoch_index + 1}" + (f"/{epochs}" if epochs else ""))
    total = total_steps(run)
    text.append(f" · step {run.step}" + (f"/{total}" if total and not brief else ""))
    if brief:
        return text
    rate = run.steps_per_second()
    if rate is not None and health.state == LIVE:
        text.append(f" · {rate:.1f} steps/s")
    if health.eta is not None:
        text.append(f" · ETA {ago(health.eta)}")
    if run.last_time is not None:
        text.append(f" · last {ago(now - run.last_time)} ago", style="dim")
    return text


def status_text(
    runs: list[Run],
    clocks: dict[str, Series],
    file_state: str,
    malformed: int,
    mode: str,
    now: float,
    pinned: bool = False,
    stalled: set[str] | None = None,
) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if pinned:
        text.append("PAUSED (f follows) ", style="reverse bold yellow")
    if not runs:
        text.append(file_state or "no records yet", style="yellow")
    names = short_labels([run.id for run in runs])
    for index, run in enumerate(runs[-4:]):
        if index:
            text.append(" │ ", style="dim")
        text.append_text(run_status(run, clocks.get(run.id), now, brief=len(runs) > 1, name=names[run.id], stalled=stalled))
    if runs and file_state and file_state != "ok":
        text.append(f" · {file_state}", style="yellow")
    if malformed:
        text.append(f" · {malformed} malformed line{'s' if malformed != 1 else ''}", style="red")
    text.append(f" · {mode}", style="dim")
    return text


class StatusLine(Static):
    """One line at the bottom; refreshed by the app on data and once a second."""
