"""Writer side under faults, with real `model.fit` runs: training always
finishes with at most one warning, and whatever reached the file reads back.

(/dev/full and a parent that is a file are covered in test_callback.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

from lossmon.format import decode
from lossmon.read import Tailer

ROOT = Path(__file__).resolve().parents[1]

FIT = textwrap.dedent(
    """
    import json, os, sys, time, warnings
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras, numpy as np
    from lossmon.keras import LossmonCallback, LossmonWarning

    path, epochs, pace = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

    class Pace(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(pace)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 10)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input(shape=(10,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=20, epochs=epochs, verbose=0,
                            callbacks=[LossmonCallback(path), Pace()])
    messages = [str(w.message) for w in caught if issubclass(w.category, LossmonWarning)]
    print(json.dumps({"epochs": len(history.history["loss"]), "warnings": messages}))
    """
)


def fit_command(path: Path, epochs: int, pace: float = 0.0) -> list[str]:
    return [sys.executable, "-c", FIT, str(path), str(epochs), str(pace)]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HOME": tempfile.gettempdir()}


def without_privileges(command: list[str]) -> list[str]:
    """As root, run `command` with every capability dropped: it then obeys file
    permissions like an ordinary user, yet can still reach the interpreter
    under /root. (Forking as "nobody", as unprivileged.py does, is unsafe
    here: TensorFlow is loaded in this process and would run in the child.)"""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop root's capabilities"
    return [setpriv, "--inh-caps=-all", "--bounding-set=-all", *command]


def test_read_only_directory_fit_finishes_with_one_warning() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o555)  # no one may write here, root without capabilities included
        path = Path(tmp) / "run.jsonl"
        result = subprocess.run(without_privileges(fit_command(path, 2)),
                                capture_output=True, text=True, env=env(), timeout=180, cwd=tmp)
        assert result.returncode == 0, result.stderr[-2000:]
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        assert not path.exists()
    assert outcome["epochs"] == 2
    (message,) = outcome["warnings"]
    assert str(path) in message and "ermission denied" in message


def test_file_deleted_during_training_is_recreated_with_one_warning(tmp_path: Path) -> None:
    import keras
    import numpy as np

    from lossmon.keras import LossmonCallback, LossmonWarning

    path = tmp_path / "run.jsonl"

    class DeleteAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                path.unlink()
                time.sleep(1.1)  # the writer looks for this about once a second

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 10)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input(shape=(10,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    tailer = Tailer(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=20, epochs=3, verbose=0,
                            callbacks=[DeleteAfterFirstEpoch(), LossmonCallback(path)])
    assert len(history.history["loss"]) == 3
    (warning,) = [w for w in caught if issubclass(w.category, LossmonWarning)]
    assert "deleted" in str(warning.message) and str(path) in str(warning.message)
    batch = tailer.poll()
    assert batch.malformed == 0
    kinds = [r.kind for r in batch.records]
    assert kinds[0] == "header" and kinds[-1] == "end"  # the new file starts with the header again
    assert sum(k == "epoch" for k in kinds) >= 1


def test_sigkill_leaves_only_complete_records_and_at_most_one_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    trainer = subprocess.Popen(fit_command(path, 1000, pace=0.002), env=env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (path.exists() and path.read_bytes().count(b"\n") >= 40):
            assert trainer.poll() is None, "the trainer ended early"
            assert time.monotonic() < deadline, "the trainer wrote too little"
            time.sleep(0.05)
        os.kill(trainer.pid, signal.SIGKILL)
    finally:
        trainer.kill()
        trainer.wait()
    data = path.read_bytes()
    complete, _, tail = data.rpartition(b"\n")
    lines = complete.split(b"\n")
    records = [decode(line) for line in lines]
    assert all(record is not None for record in records)
    assert tail == b"" or decode(tail) is None  # one write per record: a cut line cannot pass as whole
    assert records[0].kind == "header" and all(r.kind != "end" for r in records)
    steps = [r.step for r in records if r.kind == "batch"]
    assert steps == sorted(steps) and len(steps) >= 30
    tailer = Tailer(path)
    batch = tailer.poll()
    assert len(batch.records) == len(records) and batch.malformed == 0
