"""Finding detectors: the built-in ones plus any registered by other packages
under the entry-point group `lossmon.detectors`."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

from lossmon.detect.base import Detector

GROUP = "lossmon.detectors"


def available_detectors() -> dict[str, type[Detector]]:
    """Detector classes by id. A plugin that fails to load is reported once
    and left out; it never takes the others down."""
    from lossmon.detectors import BUILTIN

    found: dict[str, type[Detector]] = dict(BUILTIN)
    for entry in entry_points(group=GROUP):
        if entry.name in found and entry.value.startswith("lossmon.detectors."):
            continue
        try:
            cls = entry.load()
        except Exception as exc:  # a broken plugin must not stop the watcher
            warnings.warn(f"detector plugin {entry.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Detector)) or not cls.id:
            warnings.warn(f"detector plugin {entry.name!r} is not a lossmon Detector", stacklevel=2)
            continue
        found[cls.id] = cls
    return found
