"""The real `lossmon watch` in tmux beside a live Keras run, read with capture-pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")


def test_watch_in_tmux_beside_a_live_keras_run(tmp_path):
    run_file = tmp_path / "live.jsonl"
    socket = f"lossmon-test-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    trainer = subprocess.Popen(
        [sys.executable, "-m", "lossmon.scenarios", "high_lr", str(run_file), "--pace", "0.05"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True).stdout

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "watch")

    def wait_screen(condition, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        text = screen()
        while not condition(text):
            if time.monotonic() > deadline:
                raise AssertionError("screen never showed it:\n" + text)
            time.sleep(0.3)
            text = screen()
        return text

    command = f"{shlex.quote(sys.executable)} -m lossmon watch {shlex.quote(str(run_file))}; sleep 30"
    try:
        tmux("new-session", "-d", "-s", "watch", "-x", "100", "-y", "30", command)
        text = wait_screen(lambda t: "waiting for live.jsonl" in t or "loss" in t, 20)
        # the curve grows while Keras trains, and the divergence alert appears
        text = wait_screen(lambda t: "divergence" in t and any("\u2801" <= ch <= "\u28ff" for ch in t), 90)
        assert "CRIT" in text or "WARN" in text
        assert " live" in text or "finished" in text
        tmux("send-keys", "-t", "watch", "?")
        wait_screen(lambda t: "Follow the newest data again" in t, 10)
        tmux("send-keys", "-t", "watch", "Escape")
        wait_screen(lambda t: "Follow the newest data again" not in t, 10)
        tmux("send-keys", "-t", "watch", "+")
        wait_screen(lambda t: "PAUSED" in t, 10)
        trainer.wait(timeout=120)
        assert trainer.returncode == 0, trainer.stderr.read().decode()[-2000:]
        tmux("send-keys", "-t", "watch", "f")
        text = wait_screen(lambda t: "finished (completed)" in t and "PAUSED" not in t, 20)
        tmux("send-keys", "-t", "watch", "q")
        text = wait_screen(lambda t: "lossmon watch" not in t and "Incidents" not in t, 10)
        assert "Traceback" not in text
    finally:
        trainer.kill()
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
