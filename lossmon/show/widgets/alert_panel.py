"""The alerts side panel: a list, newest first, and the selected alert's details."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from lossmon.detect import Alert, Severity
from lossmon.show.report import format_evidence
from lossmon.show.safe import printable

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "bold cyan",
}
SEVERITY_LABEL = {Severity.CRITICAL: "CRIT", Severity.WARNING: "WARN", Severity.INFO: "INFO"}


def alert_title(alert: Alert, with_run: bool) -> Text:
    text = Text()
    style = SEVERITY_STYLE[alert.severity] if alert.active else "dim"
    text.append(f"{SEVERITY_LABEL[alert.severity]} ", style=style)
    text.append(alert.detector, style="bold" if alert.active else "dim")
    where = f" step {alert.step}"
    if alert.epoch is not None:
        where += f" ep {alert.epoch + 1}"  # 1-based, as Keras prints epochs
    text.append(where, style="dim")
    if not alert.active:
        text.append(" resolved", style="dim italic")
    if with_run:
        text.append(f"\n{printable(alert.run, 40)}", style="dim")
    text.append("\n" + printable(alert.message, 64), style="" if alert.active else "dim")
    return text


def alert_details(alert: Alert) -> Text:
    text = Text()
    text.append(f"{alert.severity.value.upper()} {alert.detector}", style=SEVERITY_STYLE[alert.severity])
    text.append(f"  run {printable(alert.run, 40)}\n", style="dim")
    text.append(printable(alert.message, 300) + "\n")
    if alert.hint:
        text.append("Try: ", style="bold green")
        text.append(printable(alert.hint, 600) + "\n")
    if alert.evidence:
        text.append(format_evidence(alert.evidence), style="dim")
    return text


class AlertPanel(Vertical):
    """Lists alerts newest first, coloured by severity; shows the chosen one's hint."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.alerts: list[Alert] = []
        self._shown: list[tuple] = []

    def compose(self) -> ComposeResult:
        yield Static(Text("Alerts", style="bold"), id="alerts-title")
        yield OptionList(id="alerts-list")
        yield Static(Text("No alerts yet.", style="dim"), id="alert-details")

    def show_alerts(self, alerts: list[Alert]) -> None:
        """Rebuild the list when an alert was added or changed."""
        state = [(id(a), a.severity, a.active, a.message, a.last_step) for a in alerts]
        if state == self._shown:
            return
        self._shown = state
        self.alerts = list(reversed(alerts))
        runs = {alert.run for alert in alerts}
        listing = self.query_one("#alerts-list", OptionList)
        highlighted = listing.highlighted
        listing.clear_options()
        listing.add_options(Option(alert_title(alert, len(runs) > 1)) for alert in self.alerts)
        counts = {}
        for alert in alerts:
            if alert.active:
                counts[alert.severity] = counts.get(alert.severity, 0) + 1
        title = Text("Alerts", style="bold")
        for severity in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
            if counts.get(severity):
                title.append(f"  {counts[severity]} {severity.value}", style=SEVERITY_STYLE[severity])
        self.query_one("#alerts-title", Static).update(title)
        if self.alerts:
            listing.highlighted = 0 if highlighted is None else min(highlighted, len(self.alerts) - 1)
            self._show_details(listing.highlighted or 0)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_details(event.option_index)

    def _show_details(self, index: int) -> None:
        if 0 <= index < len(self.alerts):
            self.query_one("#alert-details", Static).update(alert_details(self.alerts[index]))
