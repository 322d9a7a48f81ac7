"""Read: tail run files."""

from __future__ import annotations

from lossmon.read.tailer import TailBatch, Tailer
from lossmon.read.watcher import FileWatcher

__all__ = ["FileWatcher", "TailBatch", "Tailer"]
