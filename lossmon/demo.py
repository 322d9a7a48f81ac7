"""`lossmon demo`: train a real small Keras model in the background and watch it.

The training runs in its own process (`python -m lossmon.scenarios`), exactly
as a user's job would, so the watcher sees a file being written live.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from lossmon.scenarios import SCENARIOS


class DemoError(Exception):
    """The demo cannot start; the message says why and what to do."""


def listing() -> str:
    width = max(len(name) for name in SCENARIOS)
    return "\n".join(f"{name:{width}}  {text}" for name, text in SCENARIOS.items())


def start_training(scenario: str, out: Path, pace: float) -> subprocess.Popen:
    """Start the scenario's training in a child process writing `out`."""
    log = open(out.with_suffix(".log"), "wb")
    command = [sys.executable, "-m", "lossmon.scenarios", scenario, str(out), "--pace", str(pace)]
    try:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        log.close()


def run_demo(scenario: str, out: Path | None, pace: float) -> int:
    if scenario not in SCENARIOS:
        raise DemoError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    if importlib.util.find_spec("keras") is None:
        raise DemoError("the demo trains a real Keras model: install it with  pip install 'lossmon[tensorflow]'")
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="lossmon-demo-")) / f"{scenario}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    from lossmon.show.app import WatchApp

    trainer = start_training(scenario, out, pace)
    try:
        WatchApp([out]).run()
    finally:
        if trainer.poll() is None:
            trainer.terminate()
            try:
                trainer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                trainer.kill()
    print(f"run file: {out}\ncheck it again with:  lossmon check {out}")
    return 0
