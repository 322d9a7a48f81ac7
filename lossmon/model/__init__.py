"""Model: bounded series and state per run, fed by validated records."""

from lossmon.model.run import Run, RunStore
from lossmon.model.series import Series, downsample

__all__ = ["Run", "RunStore", "Series", "downsample"]
