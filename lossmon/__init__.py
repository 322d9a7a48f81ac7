"""lossmon: a live training monitor for the terminal."""

__version__ = "0.1.0"
