"""A detector from another package, registered only through the
`lossmon.detectors` entry point, shows up in `lossmon check` output.

No pip: the test writes a tiny package plus its `*.dist-info` (METADATA and
entry_points.txt) into tmp_path, which is exactly what an installed
distribution looks like to importlib.metadata, and runs `lossmon check` in a
subprocess with PYTHONPATH pointing there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from records import training, write

PLUGIN = textwrap.dedent(
    '''
    """A user's detector: warns once the loss is below a target."""
    from lossmon.detect.base import Detector, Finding, Severity


    class LossTarget(Detector):
        id = "loss_target"
        title = "Loss target reached"

        def __init__(self, target: float = 0.1) -> None:
            self.target = target

        def observe(self, record):
            loss = record.values.get("loss")
            if record.kind == "epoch" and isinstance(loss, float) and loss < self.target:
                return [Finding(Severity.WARNING, f"loss {loss:.3f} below {self.target}", "stop here", {"loss": loss})]
            return []
    '''
)


def make_plugin(root) -> None:
    (root / "lossmon_target_plugin.py").write_text(PLUGIN)
    info = root / "lossmon_target_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lossmon-target-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lossmon.detectors]\nloss_target = lossmon_target_plugin:LossTarget\n")


def check(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, "-m", "lossmon", "check", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_entry_point_detector_appears_in_check_output_and_can_be_configured(tmp_path) -> None:
    (tmp_path / "site").mkdir()
    make_plugin(tmp_path / "site")
    losses = [0.7 * 0.97**i for i in range(100)]  # epoch means fall below 0.1 at the end
    path = write(tmp_path / "run.jsonl", training(losses))

    done = check(tmp_path, str(path), "--format", "json")
    assert done.returncode == 1, done.stderr
    alerts = json.loads(done.stdout)["alerts"]
    mine = [a for a in alerts if a["detector"] == "loss_target"]
    assert mine and mine[0]["severity"] == "warning" and "below 0.1" in mine[0]["message"]

    # Its options and switch work like a built-in's.
    done = check(tmp_path, str(path), "--format", "json", "--set", "loss_target.target=0.01")
    assert not [a for a in json.loads(done.stdout)["alerts"] if a["detector"] == "loss_target"]
    done = check(tmp_path, str(path), "--disable", "loss_target")
    assert "loss_target" not in done.stdout and done.returncode == 0, done.stdout + done.stderr
