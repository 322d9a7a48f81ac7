"""Pieces the probe and header detectors share.

Probe records come every `probe_every` steps, so their detectors count
probes, not steps: a condition must hold on `patience` probes in a row
before it is reported, which keeps one odd probe batch quiet.
"""

from __future__ import annotations

from typing import Any

from lossmon.detectors._util import finite
from lossmon.format import PROBE, Record


def is_probe(record: Record) -> bool:
    return record.kind == PROBE and bool(record.values)


def per_layer(record: Record, measure: str) -> dict[str, float]:
    """`{layer: value}` of one measure of a probe record, finite values only."""
    prefix = measure + "/"
    out = {}
    for key, value in record.values.items():
        if key.startswith(prefix):
            number = finite(value)
            if number is not None:
                out[key[len(prefix):]] = number
    return out


def header_data(record: Record, key: str) -> dict[str, Any]:
    """`header["data"][key]` when the header has it and it is available."""
    data = record.data.get("data")
    part = data.get(key) if isinstance(data, dict) else None
    if isinstance(part, dict) and part.get("available", True):
        return part
    return {}


class Streak:
    """Counts consecutive probes on which a condition held."""

    def __init__(self, patience: int) -> None:
        self.patience = max(int(patience), 1)
        self.count = 0
        self.since: int | None = None  # step of the first probe of the streak

    def update(self, holds: bool, step: int) -> bool:
        """Record one probe; True once the condition held `patience` times."""
        if holds:
            if self.count == 0:
                self.since = step
            self.count += 1
        else:
            self.count = 0
            self.since = None
        return self.count >= self.patience
