"""Every key of `lossmon watch` in one table.

The app's BINDINGS, the help screen and the command palette are all built
from KEYS, so a key cannot exist without being documented.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str  # Textual key names, comma-separated
    action: str
    description: str
    label: str  # how the help screen writes the key
    footer: str = ""  # short name in the footer; empty: not shown there


KEYS: tuple[Key, ...] = (
    Key("question_mark", "help", "Help: list every key", "?", footer="Help"),
    Key("s", "toggle_smoothing", "Smoothing on/off (raw values stay faint)", "s", footer="Smooth"),
    Key("full_stop", "smoothing(0.1)", "More smoothing (EMA weight +0.1)", "."),
    Key("comma", "smoothing(-0.1)", "Less smoothing (EMA weight -0.1)", ","),
    Key("y", "toggle_log", "Log-scale y axis on/off", "y", footer="Log"),
    Key("o", "toggle_robust", "Outlier-robust y range on/off", "o"),
    Key("x", "next_x_axis", "X axis: step / epoch / wall time", "x", footer="X axis"),
    Key("plus,equals_sign", "zoom(0.5)", "Zoom in (stops following)", "+ ="),
    Key("minus", "zoom(2.0)", "Zoom out", "-"),
    Key("left,h", "pan(-0.25)", "Pan left (stops following)", "← h"),
    Key("right,l", "pan(0.25)", "Pan right", "→ l"),
    Key("f", "follow", "Follow the newest data again", "f", footer="Follow"),
    Key("slash", "filter", "Filter metrics by name", "/", footer="Filter"),
    Key("m", "mute", "Mute the selected alert's detector (this session)", "m"),
    Key("M", "unmute_all", "Unmute every detector", "M"),
    Key("escape", "clear_marker", "Clear the alert marker on the plots", "Esc"),
    Key("q", "quit", "Quit", "q", footer="Quit"),
)

# Keys that Textual itself provides, listed in the help screen too.
BUILTIN_KEYS: tuple[tuple[str, str], ...] = (
    ("Enter", "Open the selected alert: evidence, hint, marker on the plots"),
    ("↑ ↓", "Move in the alert list"),
    ("Tab", "Move focus"),
    ("Ctrl+P", "Command palette (every action by name)"),
)


def bindings() -> list[Binding]:
    return [Binding(k.keys, k.action, k.footer or k.description, show=bool(k.footer)) for k in KEYS]
