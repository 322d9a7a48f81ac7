"""Record: write run files."""

from lossmon.record.writer import LossmonWarning, RunFileWriter

__all__ = ["LossmonWarning", "RunFileWriter"]
