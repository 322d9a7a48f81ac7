"""The seeds' classifier killed with SIGKILL after epoch 2, as the OOM killer would: no end record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

EXPECTED: tuple[str, ...] = ("stalled",)
ONSET = 40  # the kill: end of epoch 2, 20 steps per epoch
SILENCE = 11.0  # a little more than the stalled detector's 10 s minimum


def child(path: str, epochs: int, pace: float) -> None:
    """Runs in the doomed process: train, die at the end of epoch 2."""
    import keras

    from lossmon.scenarios._common import classification, seeds_model
    from lossmon.scenarios._seeds import fit

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    data, validation = classification()
    fit(path, seeds_model(), data, validation, optimizer=keras.optimizers.Adam(0.001), loss="binary_crossentropy",
        metrics=["accuracy"], epochs=epochs, pace=pace, extra_callbacks=[Kill()])


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    """Train in a child process that gets killed, then wait until the silence
    is long enough for `stalled` (so `check` right after sees it)."""
    code = f"from lossmon.scenarios import killed; killed.child({path!r}, {epochs or 10}, {pace!r})"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    try:
        last = os.path.getmtime(path)
    except OSError:
        return
    wait = SILENCE - (time.time() - last)
    if wait > 0:
        time.sleep(wait)
