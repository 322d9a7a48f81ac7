"""The status line: which run, how far, how fast, how fresh, and file problems."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from lossmon.model import Run
from lossmon.show.safe import printable


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def status_text(run: Run | None, file_state: str, malformed: int, mode: str, now: float | None = None) -> Text:
    now = time.time() if now is None else now
    text = Text(no_wrap=True, overflow="ellipsis")
    if run is None:
        text.append(file_state or "no records yet", style="yellow")
    else:
        text.append(printable(run.id, 32), style="bold")
        status = run.status
        text.append(f" {status}", style="green" if status == "running" else "cyan")
        epochs = run.epochs
        if run.epoch_index is not None:
            text.append(f" · epoch {run.epoch_index + 1}" + (f"/{epochs}" if epochs else ""))
        text.append(f" · step {run.step}")
        rate = run.steps_per_second()
        if rate is not None and run.status == "running":
            text.append(f" · {rate:.1f} steps/s")
        if run.last_time is not None:
            text.append(f" · last record {_ago(now - run.last_time)} ago", style="dim")
        if file_state and file_state != "ok":
            text.append(f" · {file_state}", style="yellow")
    if malformed:
        text.append(f" · {malformed} malformed line{'s' if malformed != 1 else ''}", style="red")
    text.append(f" · {mode}", style="dim")
    return text


class StatusLine(Static):
    """One line at the bottom; refreshed by the app on data and once a second."""
