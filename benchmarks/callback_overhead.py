"""Callback overhead: ms per training step with and without LossmonCallback.

The same small dense model (10 -> 128 relu -> 1 sigmoid, Adam, batch 32,
3200 rows = 100 steps per epoch) is trained on CPU with: no callback,
LossmonCallback metrics-only, LossmonCallback with default probes (256
probe rows, every 100 steps and at each epoch end), keras TensorBoard with
update_freq="batch", and CSVLogger. Configurations are interleaved round
by round, so drift of the machine hits them all alike; each fit runs
`epochs` epochs and only the epochs after the first are timed (the first
traces the train function and sets the probes up). Prints one line per
configuration and a last line of JSON: median ms/step and the ratio to no
callback. Targets: metrics-only <= 1.03x, probes <= 1.10x, both well below
TensorBoard's per-batch logging.

On a shared, busy machine the whole-step ratios wobble by more than the 3%
being measured, so the time spent inside LossmonCallback's own hooks is
also clocked (`hook_ms_per_step`, `hook_share`: that time over the
no-callback step time), which does not depend on what else runs.
Usage: python benchmarks/callback_overhead.py [--rounds N] [--epochs E]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from lossmon.keras import LossmonCallback  # noqa: E402

ROWS, FEATURES, BATCH = 3200, 10, 32


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch after the first (epoch hooks only, so it adds
    nothing per batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if epoch > 0:
            self.seconds.append(time.perf_counter() - self._start)


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype("float32")
    y = ((x @ rng.normal(size=FEATURES)) > 0).astype("float32")
    return x, y


def callbacks_for(name: str, folder: str, x, y) -> list[keras.callbacks.Callback]:
    path = os.path.join(folder, f"{name}-{time.monotonic_ns()}")
    if name == "none":
        return []
    if name == "lossmon_metrics":
        return [LossmonCallback(path + ".jsonl")]
    if name == "lossmon_probes":
        return [LossmonCallback(path + ".jsonl", probe_data=(x[:256], y[:256]))]
    if name == "tensorboard_batch":
        return [keras.callbacks.TensorBoard(log_dir=path, update_freq="batch")]
    if name == "csvlogger":
        return [keras.callbacks.CSVLogger(path + ".csv")]
    raise ValueError(name)


CONFIGS = ["none", "lossmon_metrics", "lossmon_probes", "tensorboard_batch", "csvlogger"]


class HookClock:
    """Accumulates the wall time spent in a callback's batch and epoch hooks
    during the timed epochs (epoch index > 0)."""

    def __init__(self, callback: keras.callbacks.Callback) -> None:
        self.seconds = 0.0
        self.epoch = 0
        for hook in ("on_train_batch_end", "on_epoch_end", "on_train_batch_begin", "on_epoch_begin"):
            setattr(callback, hook, self._timed(getattr(callback, hook), hook))

    def _timed(self, method, hook):
        def timed(*args, **kwargs):
            if hook == "on_epoch_begin":
                self.epoch = args[0]
            start = time.perf_counter()
            result = method(*args, **kwargs)
            if self.epoch > 0:
                self.seconds += time.perf_counter() - start
            return result
        return timed


HOOKS: dict[str, list[float]] = {}


def one_fit(name: str, folder: str, x, y, epochs: int) -> float:
    """ms per step over the timed epochs of one fit."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    clock = EpochClock()
    extra = callbacks_for(name, folder, x, y)
    hooks = HookClock(extra[0]) if name.startswith("lossmon") else None
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[clock, *extra])
    steps = ROWS // BATCH * len(clock.seconds)
    if hooks is not None:
        HOOKS.setdefault(name, []).append(1000 * hooks.seconds / steps)
    return 1000 * sum(clock.seconds) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    x, y = data()
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as folder:
        one_fit("none", folder, x, y, 2)  # warm-up: imports, first tracing
        for round_ in range(args.rounds):
            order = CONFIGS[round_ % len(CONFIGS):] + CONFIGS[: round_ % len(CONFIGS)]
            for name in order:
                times[name].append(one_fit(name, folder, x, y, args.epochs))
    base = statistics.median(times["none"])
    result = {"ms_per_step": {}, "ratio_to_none": {}, "rounds": args.rounds, "timed_steps_per_fit": (args.epochs - 1) * (ROWS // BATCH),
              "model": "Dense(128, relu) + Dense(1, sigmoid), batch 32, CPU", "cpus": os.cpu_count()}
    for name in CONFIGS:
        ms = statistics.median(times[name])
        result["ms_per_step"][name] = round(ms, 4)
        result["ratio_to_none"][name] = round(ms / base, 3)
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(f"{name:18} {ms:8.3f} ms/step  x{ms / base:5.3f}  (rounds {spread})")
    result["min_ms_per_step"] = {name: round(min(times[name]), 4) for name in CONFIGS}
    result["hook_ms_per_step"] = {name: round(statistics.median(v), 4) for name, v in HOOKS.items()}
    result["hook_share"] = {name: round(statistics.median(v) / base, 4) for name, v in HOOKS.items()}
    for name, share in result["hook_share"].items():
        print(f"{name:18} hooks {result['hook_ms_per_step'][name]:.4f} ms/step = {share:.2%} of a no-callback step")
    result["targets_met"] = {
        "metrics_only_le_1.03": result["ratio_to_none"]["lossmon_metrics"] <= 1.03,
        "probes_le_1.10": result["ratio_to_none"]["lossmon_probes"] <= 1.10,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
