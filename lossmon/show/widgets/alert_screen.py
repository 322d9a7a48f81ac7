"""An alert opened with Enter: everything the detector said, full width."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from lossmon.detect import Alert
from lossmon.show.report import format_evidence, span
from lossmon.show.safe import printable
from lossmon.show.widgets.alert_panel import SEVERITY_STYLE


def full_details(alert: Alert) -> Text:
    text = Text()
    text.append(f"{alert.severity.value.upper()}  {alert.detector}", style=SEVERITY_STYLE[alert.severity])
    text.append("   (active)" if alert.active else "   (resolved)", style="dim")
    text.append(f"\nrun {printable(alert.run, 80)} · fired at step {alert.step}")
    if alert.epoch is not None:
        text.append(f", epoch {alert.epoch + 1}")
    text.append(f" · last seen step {alert.last_step}")
    if alert.occurrences > 1:
        text.append(f" · came back: {alert.occurrences} times")
    text.append("\n")
    if alert.caused_by is not None:
        cause = alert.caused_by
        text.append(f"A symptom of {cause.detector} (step {cause.step}): {printable(cause.message, 200)}\n", style="italic")
    text.append("\n" + printable(alert.message, 500) + "\n\n")
    if alert.hint:
        text.append("Try: ", style="bold green")
        text.append(printable(alert.hint, 1000) + "\n\n")
    if alert.evidence:
        text.append("Evidence\n", style="bold")
        for key, value in alert.evidence.items():
            text.append(f"  {printable(key, 40)}: ", style="cyan")
            text.append(format_evidence({"": value})[1:] + "\n")
    peak = alert.peak
    if peak and peak.get("evidence") != alert.evidence:
        text.append(f"\nAt its peak (step {peak['step']}, {peak['severity']})\n", style="bold")
        text.append(printable(peak["message"], 500) + "\n", style="dim")
        for key, value in peak["evidence"].items():
            text.append(f"  {printable(key, 40)}: ", style="cyan")
            text.append(format_evidence({"": value})[1:] + "\n")
    if alert.symptoms:
        text.append("\nSymptoms\n", style="bold")
        for symptom in alert.symptoms:
            text.append(f"  {symptom.severity.value.upper()} {symptom.detector} ({span(symptom)}): ", style=SEVERITY_STYLE[symptom.severity])
            text.append(printable(symptom.message, 200) + "\n")
    text.append("\nThe plots mark this step (magenta). Esc closes; Esc again clears the marker.", style="dim")
    return text


class AlertScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="alert-box"):
            yield Static(full_details(self.alert), id="alert-full")
