"""Shared test set-up: quiet TensorFlow, and builders for run-file records."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
