"""What the user chose to see: smoothing, scales, x axis, zoom, filter, marker.

One ViewState is shared by every plot, so all panels zoom and pan together
and a key changes them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from lossmon.show.curves import X_AXES

DEFAULT_SMOOTHING = 0.6


@dataclass
class ViewState:
    smoothing: float = DEFAULT_SMOOTHING
    smooth: bool = True
    log_y: bool = False
    robust: bool = True  # y range from percentiles, outliers marked
    x_axis: str = "step"
    span: float | None = None  # width of the x window; None: everything
    right: float | None = None  # right edge of the window; None: follow the newest data
    filter: str = ""  # space-separated substrings of metric names; empty: all
    marker: tuple[str, int] | None = None  # (run, step) of the alert being looked at
    version: int = 0  # bumps on every change, so plots know to redraw

    @property
    def following(self) -> bool:
        return self.right is None

    def changed(self) -> None:
        self.version += 1

    def window(self, data_right: float, data_left: float) -> tuple[float, float] | None:
        """The x interval to show, given where the data ends."""
        if self.span is None and self.right is None:
            return None
        right = data_right if self.right is None else self.right
        span = self.span if self.span is not None else max(right - data_left, 1.0)
        return right - span, right

    def matches(self, name: str) -> bool:
        words = [w for w in self.filter.lower().replace(",", " ").split() if w]
        return not words or any(w in name.lower() for w in words)

    def next_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self.span = self.right = None  # the old window means nothing in new units

    def zoom(self, factor: float, data_left: float, data_right: float) -> None:
        """factor < 1 zooms in. Zooming pins the view (stops following)."""
        full = max(data_right - data_left, 1e-9)
        right = data_right if self.right is None else self.right
        span = (self.span if self.span is not None else full) * factor
        if span >= full:
            self.span = None
            self.right = None if self.right is None else min(max(right, data_left + full), data_right)
            if self.right is not None and self.right >= data_right:
                self.right = data_right
        else:
            self.span = max(span, full * 1e-4)
            self.right = right
        self.changed()

    def pan(self, fraction: float, data_left: float, data_right: float) -> None:
        full = max(data_right - data_left, 1e-9)
        span = self.span if self.span is not None else full
        if self.span is None:
            self.span = span
        right = data_right if self.right is None else self.right
        right = right + fraction * span
        self.right = min(max(right, data_left + span * 0.1), data_right + span * 0.5)
        self.changed()

    def follow(self) -> None:
        self.right = None
        self.marker = None
        self.changed()
