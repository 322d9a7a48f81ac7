"""The incidents side panel: a list, root causes first with their symptoms
nested under them, and the selected incident's details."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from lossmon.detect import Alert, Severity
from lossmon.detect.engine import ordered
from lossmon.show.report import format_evidence, span
from lossmon.show.safe import printable

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "bold cyan",
}
FIRST_LINE = 31  # the panel is 34 columns wide
SEVERITY_LABEL = {Severity.CRITICAL: "CRIT", Severity.WARNING: "WARN", Severity.INFO: "INFO"}


MAX_DEPTH = 3  # deeper symptoms are drawn at this indent


def alert_title(alert: Alert, with_run: bool, depth: int = 0) -> Text:
    """An incident's entry: severity, detector, where, and its message; a
    symptom indented under its cause with a ↳."""
    text = Text()
    pad = "  " * (min(depth, MAX_DEPTH) - 1) + "↳ " if depth else ""
    text.append(pad, style="dim")
    style = SEVERITY_STYLE[alert.severity] if alert.active else "dim"
    text.append(f"{SEVERITY_LABEL[alert.severity]} ", style=style)
    text.append(alert.detector, style="bold" if alert.active else "dim")
    times = f" ×{alert.occurrences}" if alert.occurrences > 1 else ""
    where = f" step {alert.step}"
    if alert.epoch is not None:
        where += f" ep {alert.epoch + 1}"  # 1-based, as Keras prints epochs
    if len(text.plain) + len(where) + len(times) > FIRST_LINE:
        where = f" @{alert.step}"  # keep the first line on one row of the panel
    text.append(where + times, style="dim")
    if not alert.active:
        text.append(" resolved", style="dim italic")
    indent = " " * len(pad)
    if with_run:
        text.append(f"\n{indent}{printable(alert.run, 40)}", style="dim")
    # A cause's message takes two rows; a symptom's one, so its indent holds.
    message = printable(alert.message, FIRST_LINE - len(indent)) if depth else printable(alert.message, 64)
    text.append(f"\n{indent}{message}", style="" if alert.active else "dim")
    return text


def alert_details(alert: Alert) -> Text:
    text = Text()
    text.append(f"{alert.severity.value.upper()} {alert.detector}", style=SEVERITY_STYLE[alert.severity])
    text.append(f"  run {printable(alert.run, 40)}\n", style="dim")
    text.append(span(alert) + ("" if alert.active else ", resolved") + "\n", style="dim")
    if alert.caused_by is not None:
        text.append(f"A symptom of {alert.caused_by.detector} (step {alert.caused_by.step}).\n", style="italic")
    text.append(printable(alert.message, 300) + "\n")
    if alert.hint:
        text.append("Try: ", style="bold green")
        text.append(printable(alert.hint, 600) + "\n")
    if alert.symptoms:
        names = ", ".join(dict.fromkeys(s.detector for s in alert.symptoms))
        text.append(f"Explains: {names}\n", style="italic")
    if alert.evidence:
        text.append(format_evidence(alert.evidence), style="dim")
    return text


class AlertList(OptionList):
    """An OptionList that knows whether the user moved the highlight."""

    user_moved = False

    def action_cursor_up(self) -> None:
        self.user_moved = True
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self.user_moved = True
        super().action_cursor_down()

    def action_first(self) -> None:
        self.user_moved = True
        super().action_first()

    def action_last(self) -> None:
        self.user_moved = True
        super().action_last()


def first_root(depths: list[int]) -> int | None:
    """Index of the incident to show first: the first root cause (the list
    is in reading order, so the worst one), never a symptom."""
    return next((i for i, depth in enumerate(depths) if depth == 0), 0 if depths else None)


class AlertPanel(Vertical):
    """Lists incidents in reading order (root causes first, by severity,
    then time; each cause's symptoms nested under it), coloured by severity,
    with counts; the first root cause is selected by default so its hint is
    what shows."""

    class Opened(Message):
        """Enter on an alert: show its details and mark its step on the plots."""

        def __init__(self, alert: Alert) -> None:
            super().__init__()
            self.alert = alert

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.alerts: list[Alert] = []  # shown, in reading order
        self.depths: list[int] = []  # each shown incident's depth: 0 for a root cause
        self._all: list[Alert] = []
        self._many_runs = False
        self.muted: set[str] = set()
        self._shown: list[tuple] = []
        self._chosen: Alert | None = None  # what the user moved to, kept across updates
        self._details_lines = -1  # height of the details text last shown

    def compose(self) -> ComposeResult:
        yield Static(Text("Incidents", style="bold"), id="alerts-title")
        yield AlertList(id="alerts-list")
        yield Static(Text("No incidents yet.", style="dim"), id="alert-details")

    @property
    def selected(self) -> Alert | None:
        index = self.query_one("#alerts-list", OptionList).highlighted
        if index is None or not 0 <= index < len(self.alerts):
            return None
        return self.alerts[index]

    def show_alerts(self, alerts: list[Alert], force: bool = False, many_runs: bool | None = None) -> None:
        """Rebuild the list when an incident was added or changed."""
        state = [(id(a), a.severity, a.active, a.message, a.last_step, a.occurrences, len(a.symptoms)) for a in alerts]
        state.append(many_runs)
        if state == self._shown and not force:
            return
        self._all = alerts
        shown = self._reading(alerts)
        self.alerts = [alert for _, alert in shown]
        self.depths = [depth for depth, _ in shown]
        same_alerts = not force and [(i[0], i[6]) for i in state[:-1]] == [(i[0], i[6]) for i in self._shown[:-1]]
        self._shown = state
        if many_runs is not None:
            self._many_runs = many_runs
        with_run = self._many_runs or len({alert.run for alert in alerts}) > 1
        listing = self.query_one("#alerts-list", OptionList)
        titles = [alert_title(alert, with_run, depth) for depth, alert in shown]
        if same_alerts and listing.option_count == len(titles):
            # The same incidents, some updated (an active one's evidence moves
            # with every record): replace those lines, not the whole list.
            for index, title in enumerate(titles):
                if listing.get_option_at_index(index).prompt != title:
                    listing.replace_option_prompt_at_index(index, title)
        else:
            listing.clear_options()
            listing.add_options(Option(title) for title in titles)
        self.query_one("#alerts-title", Static).update(self._title(alerts), layout=False)
        if shown:
            keep = next((i for i, a in enumerate(self.alerts) if a is self._chosen), None)
            index = keep if keep is not None else first_root(self.depths)
            listing.highlighted = index
            self._show_details(index or 0)
        else:
            text = "All incidents muted (M unmutes)." if alerts else "No incidents yet."
            self.query_one("#alert-details", Static).update(Text(text, style="dim"))
            self._details_lines = -1

    def _reading(self, alerts: list[Alert]) -> list[tuple[int, Alert]]:
        """The incidents in reading order with their depth, those of muted
        detectors left out (their symptoms move up in their place)."""
        out = []
        for _, alert in ordered(alerts):
            if alert.detector in self.muted:
                continue
            depth, cause = 0, alert.caused_by
            while cause is not None:
                depth += cause.detector not in self.muted
                cause = cause.caused_by
            out.append((depth, alert))
        return out

    def _title(self, alerts: list[Alert]) -> Text:
        """Counts of incidents (root causes; their symptoms are part of them)."""
        counts: dict[Severity, int] = {}
        roots = [alert for alert, depth in zip(self.alerts, self.depths) if depth == 0]
        for root in roots:
            if root.active:
                counts[root.worst] = counts.get(root.worst, 0) + 1
        title = Text("Incidents", style="bold", no_wrap=True, overflow="ellipsis")
        for severity in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
            if counts.get(severity):
                title.append(f" {counts[severity]} {SEVERITY_LABEL[severity].lower()}", style=SEVERITY_STYLE[severity])
        resolved = sum(1 for root in roots if not root.active)
        if resolved:
            title.append(f" {resolved} resolved", style="dim")
        if self.muted:
            title.append(f" {len(self.muted)} muted", style="dim italic")
        return title

    def mute(self, detector: str, muted: bool = True) -> None:
        if muted:
            self.muted.add(detector)
        else:
            self.muted.discard(detector)
        self._chosen = None
        self.show_alerts(self._all, force=True)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # The event's own list: during shutdown the panel's children may be
        # gone already when a highlight queued before it arrives.
        listing = event.option_list
        if not isinstance(listing, AlertList) or not self.is_attached or not listing.is_attached:
            return
        if listing.user_moved and 0 <= event.option_index < len(self.alerts):
            self._chosen = self.alerts[event.option_index]
            listing.user_moved = False
        if listing.highlighted is not None:
            self._show_details(listing.highlighted)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if 0 <= event.option_index < len(self.alerts):
            self._chosen = self.alerts[event.option_index]
            self.post_message(self.Opened(self.alerts[event.option_index]))

    def _show_details(self, index: int) -> None:
        if 0 <= index < len(self.alerts):
            details = self.query_one("#alert-details", Static)
            text = alert_details(self.alerts[index])
            # The pane is as tall as its text: a layout pass (costly, the whole
            # screen) only when the text's height changes, not on every update.
            width = details.content_region.width
            lines = len(text.wrap(self.app.console, width)) if width > 0 else -1
            details.update(text, layout=lines != self._details_lines or lines < 0)
            self._details_lines = lines
