"""A plotext figure as Textual strips, without the round trip through ANSI.

textual-plotext shows a plot by having plotext write its character matrix
out as ANSI text, which Rich parses back into styled spans and Textual then
converts again; for a panel of curves that costs as much as plotext's
drawing itself, on every redraw. The matrix is already there after plotext
builds it: its characters and colours go straight into strips here, each
colour combination turned into a style once (by plotext's own ANSI codes,
read by Rich) and remembered.

`figure_strips` returns None when the figure is not the shape it expects
(another plotext version); the widget then renders the usual way.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

try:
    from plotext import _utility as plotext_utility
except ImportError:  # pragma: no cover - plotext is a dependency
    plotext_utility = None

_STYLES: dict[tuple[Any, Any, Any], Style] = {}
_MAX_STYLES = 4096  # colours come from a short palette; this only guards against surprises


def figure_strips(figure: Any) -> list[Strip] | None:
    """The rows of a plotext figure, top first, or None if it cannot be read."""
    if plotext_utility is None:
        return None
    try:
        figure._set_sizes()
        figure._build_matrix()
        matrix = figure.monitor.matrix
        rows = [
            _row(matrix.marker[row], matrix.fullground[row], matrix.style[row], matrix.background[row])
            for row in range(matrix.rows - 1, -1, -1)
        ]
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return rows


def _row(markers: list[str], fulls: list[Any], styles: list[Any], backs: list[Any]) -> Strip:
    """One matrix row as a strip: a segment per run of cells alike in colour."""
    segments = []
    start, width = 0, len(markers)
    key = (fulls[0], styles[0], backs[0]) if width else None
    for col in range(1, width + 1):
        here = (fulls[col], styles[col], backs[col]) if col < width else None
        if here != key:
            segments.append(Segment("".join(markers[start:col]), _style(key)))
            start, key = col, here
    return Strip(segments, width)


def _style(colors: Any) -> Style:
    """The Rich style of plotext's (foreground, style, background) triple."""
    key = tuple(tuple(c) if isinstance(c, list) else c for c in colors)
    style = _STYLES.get(key)
    if style is None:
        code = plotext_utility.colors_to_ansi(*colors)
        text = Text.from_ansi(code + "x" + plotext_utility.ansi_end)
        style = Style.combine(span.style for span in text.spans if isinstance(span.style, Style))
        if len(_STYLES) >= _MAX_STYLES:
            _STYLES.clear()
        _STYLES[key] = style
    return style
