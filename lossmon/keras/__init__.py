"""Keras integration: `from lossmon.keras import LossmonCallback`."""

from lossmon.keras.callback import LossmonCallback
from lossmon.record.writer import LossmonWarning

__all__ = ["LossmonCallback", "LossmonWarning"]
