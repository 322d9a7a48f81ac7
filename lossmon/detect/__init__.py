"""Detect: detectors turn a run's records into alerts."""

from lossmon.detect.base import Alert, Clear, Detector, Finding, Severity, Verdict
from lossmon.detect.engine import Engine
from lossmon.detect.registry import available_detectors

__all__ = ["Alert", "Clear", "Detector", "Engine", "Finding", "Severity", "Verdict", "available_detectors"]
