"""Read: tail run files (and Keras CSVLogger files)."""

from __future__ import annotations

from lossmon.read.csvlog import CsvTailer, open_reader
from lossmon.read.tailer import TailBatch, Tailer
from lossmon.read.watcher import FileWatcher

__all__ = ["CsvTailer", "FileWatcher", "TailBatch", "Tailer", "open_reader"]
