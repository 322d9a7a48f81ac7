"""The Keras callback that writes a run file (see docs/format.md).

It records what `lossmon watch` needs: a header at train begin, one record
per training batch (or group of `steps_per_execution` batches), one per
epoch, probe records when given probe data, and an end record. Its own
failures never stop the training: they become one `LossmonWarning`.
"""

from __future__ import annotations

import atexit
import math
import os
import secrets
import socket
import sys
import time
import warnings
from typing import Any

import keras

import lossmon
from lossmon.format import (
    BATCH,
    COMPLETED,
    END,
    EPOCH,
    ERROR,
    FORMAT_VERSION,
    HEADER,
    INTERRUPTED,
    PROBE,
    STOPPED_EARLY,
    clean_logs,
    json_number,
    json_safe,
    to_float,
)
from lossmon.keras.distributed import ALL_WORKERS, MODES, current_worker, worker_path
from lossmon.keras.probe_session import ProbeSession
from lossmon.keras.stopper import LEVELS, Stopper
from lossmon.record.writer import LossmonWarning, RunFileWriter

__all__ = ["LossmonCallback"]

_NO_PROBE_DATA = "no probe_data given: metrics only"


class LossmonCallback(keras.callbacks.Callback):
    """Writes the training curves of `fit` to a run file for `lossmon watch`.

    Each `fit` call appends one run to the file: a header (model, optimizer,
    versions), a record after every training batch with the running-mean
    logs and the per-step values recovered from them, a record after every
    epoch (with the `val_*` logs and the learning rate) and an end record
    saying how the run ended. The file is JSON Lines, one `write` per
    record, so `lossmon watch` can follow it while the model trains.

    Keras does not call `on_train_end` when an exception (or Ctrl-C) escapes
    `fit`. The callback then writes the end record, with status `error` or
    `interrupted`, when the process exits, or at once when it is used as a
    context manager around `fit` (see the example).

    Args:
        path: Path of the run file. Parent directories are created; an
            existing file is appended to.
        probe_data: A small fixed sample of the training data, `(x, y)` or
            `(x, y, sample_weight)` (or a dataset of such batches). Up to
            256 of its rows are probed: loss, gradient and weight norms,
            update ratios and, for each hidden activation layer, dead and
            saturated units and the outputs' mean and spread. For a model
            with several outputs, `y` is a list, tuple or dict as `fit`
            takes it and the probe loss is the total over the outputs. Its
            inputs and labels are also summarised in the header (feature
            scales, label distribution). Without it the run has metrics
            only.
        probe_every: Probe every this many steps (default 100), at the
            first step and at each epoch end. The weights are copied at the
            batch record before each probe, so the update ratio is the
            size of one optimizer step; with `steps_per_execution=k` it is
            the change over the last group of k steps divided by k.
        run_name: Optional human-readable name written in the header as
            `name`; the run id stays unique per `fit` call.
        stop_on: `"warning"` or `"critical"`: run the detectors in this
            process and stop `fit` (`model.stop_training = True`) at the
            first alert of that severity or worse; the end record says
            which detector stopped it. Default None: never stop.
        workers: Under multi-worker tf.distribute, `"chief"` (default)
            writes from the chief only; `"all"` makes every worker write
            its own file, `<stem>.worker-<i><suffix>` next to `path`.

    Example:

    ```python
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=10, validation_data=(x_val, y_val),
              callbacks=[LossmonCallback("runs/today.jsonl")])
    # In another terminal: lossmon watch runs/today.jsonl

    # With probes (vanishing gradients, dead ReLUs, unscaled inputs, ...):
    LossmonCallback("runs/today.jsonl", probe_data=(x[:256], y[:256]))

    # To get the end record at once when fit raises:
    with LossmonCallback("runs/today.jsonl") as monitor:
        model.fit(x, y, epochs=10, callbacks=[monitor])
    ```
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        probe_data: Any = None,
        probe_every: int | None = None,
        run_name: str | None = None,
        stop_on: str | None = None,
        workers: str = "chief",
    ) -> None:
        super().__init__()
        if stop_on is not None and stop_on not in LEVELS:
            raise ValueError(f"stop_on must be one of {LEVELS} or None, not {stop_on!r}")
        if workers not in MODES:
            raise ValueError(f"workers must be one of {MODES}, not {workers!r}")
        if probe_every is not None and int(probe_every) < 1:
            raise ValueError("probe_every must be a positive number of steps")
        self.path = os.fspath(path)
        self.probe_data = probe_data
        self.probe_every = probe_every
        self.run_name = run_name
        self.stop_on = stop_on
        self.workers = workers
        self.run_id: str | None = None
        self._run: _Run | None = None
        self._probes: ProbeSession | None = None
        self._stopper: Stopper | None = None
        self._warned = False

    # ------------------------------------------------------------ training

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        try:
            if self._run is not None and not self._run.ended:
                # The previous fit raised out of Keras: close that run first.
                self._run.end(*_status_from_last_exception(self._run))
            self._run = None
            worker = current_worker(self.model)
            path = self.path
            if worker is not None:
                if self.workers == ALL_WORKERS:
                    path = worker_path(path, worker)
                elif not worker.is_chief:
                    return  # only the chief writes
            start = time.time()
            self.run_id = _new_run_id(start)
            steps = self.params.get("steps") if self.params else None
            self._stopper = Stopper(self.stop_on) if self.stop_on else None
            self._probes = None
            if self.probe_data is not None:
                try:
                    self._probes = ProbeSession(self.probe_data, self.probe_every)
                except Exception as exc:
                    self._fail("probe_data", exc)
            self._run = _Run(self.run_id, RunFileWriter(path), steps)
            header = self._header(start)
            if worker is not None:
                header["worker"] = worker.to_json()
            self._emit(header)
        except Exception as exc:
            self._fail("on_train_begin", exc)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        run = self._run
        if run is None:
            return
        run.epoch = epoch
        run.epoch_start_step = run.step
        run.prev_n = 0
        run.prev_means = {}

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        run = self._run
        if run is None:
            return
        try:
            # With steps_per_execution=k Keras calls this once per group of k
            # batches, `batch` being the group's last index, and reports
            # k*ceil(steps/k)-1 for a short last group: clamp to the epoch.
            n = batch + 1
            if run.steps_per_epoch and n > run.steps_per_epoch:
                n = run.steps_per_epoch
            cleaned = clean_logs(logs)
            means = {key: to_float(value) for key, value in cleaned.items()}
            p = run.prev_n
            if 0 < p < n:
                prev = run.prev_means
                step_logs = {}
                for key, m_n in means.items():
                    m_p = prev.get(key)
                    if m_p is None:
                        step_logs[key] = json_number(m_n)
                    else:
                        step_logs[key] = json_number((n * m_n - p * m_p) / (n - p))
            else:
                step_logs = cleaned
            run.prev_n = n
            run.prev_means = means
            run.prev_step = run.step
            run.step = run.epoch_start_step + n
            self._emit(
                {
                    "kind": BATCH,
                    "run": run.id,
                    "step": run.step,
                    "epoch": run.epoch,
                    "batch": batch,
                    "time": time.time(),
                    "logs": cleaned,
                    "step_logs": step_logs,
                }
            )
            probes = self._probes
            if probes is not None:
                if probes.due(run.step):
                    self._probe(run)
                self._before_next_record(run, probes)
        except Exception as exc:
            self._fail("on_train_batch_end", exc)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        run = self._run
        if run is None:
            return
        try:
            record: dict[str, Any] = {
                "kind": EPOCH,
                "run": run.id,
                "step": run.step,
                "epoch": epoch,
                "time": time.time(),
                "logs": clean_logs(logs),
            }
            lr = _current_lr(self.model.optimizer)
            if lr is not None:
                record["lr"] = lr
            self._emit(record)
            if self._probes is not None:
                self._probe(run)
                self._before_next_record(run, self._probes)
        except Exception as exc:
            self._fail("on_epoch_end", exc)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        run = self._run
        if run is None or run.ended:
            return
        try:
            stopped = bool(getattr(self.model, "stop_training", False))
            reason = self._stopper.reason if self._stopper is not None else None
            run.end(STOPPED_EARLY if stopped else COMPLETED, reason if stopped else None)
        except Exception as exc:
            self._fail("on_train_end", exc)

    # ------------------------------------------------ context manager use

    def __enter__(self) -> LossmonCallback:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        """Write the end record at once when `fit` raised inside the block."""
        run = self._run
        if run is None or run.ended:
            return
        if exc is None:
            run.end(ERROR, "fit did not reach on_train_end")
        else:
            run.end(*_status_for(exc))

    # ------------------------------------------------------------ helpers

    def _emit(self, record: dict[str, Any]) -> None:
        """Write a record; with `stop_on`, let the detectors judge it too."""
        run = self._run
        if run is None:
            return
        run.write(record)
        stopper = self._stopper
        if stopper is not None and stopper.feed(record) is not None:
            self.model.stop_training = True

    def _probe(self, run: _Run) -> None:
        """Write a probe record for the current step (once per step)."""
        probes = self._probes
        if probes is None:
            return
        fields = probes.probe(self.model, run.step, run.prev_step)
        if fields is None:
            return
        self._emit({"kind": PROBE, "run": run.id, "step": run.step, "epoch": run.epoch, "time": time.time(), **fields})

    def _before_next_record(self, run: _Run, probes: ProbeSession) -> None:
        """Let the probes copy the weights when the next batch record, one
        step or one `steps_per_execution` group on, will be probed."""
        group = getattr(self.model, "steps_per_execution", 1)
        probes.before_next(run.step, run.epoch_end(), *run.next_record(group if isinstance(group, int) else 1))

    def _fail(self, where: str, exc: Exception) -> None:
        """Our own bug must not stop the training: warn once, go on."""
        if self._warned:
            return
        self._warned = True
        warnings.warn(
            f"LossmonCallback.{where} failed ({type(exc).__name__}: {exc}); "
            "training continues, the run file may be incomplete.",
            LossmonWarning,
            stacklevel=2,
        )

    def _header(self, start: float) -> dict[str, Any]:
        model = self.model
        params = self.params or {}
        compile_config = _compile_config(model)
        header: dict[str, Any] = {
            "kind": HEADER,
            "run": self.run_id,
            "step": 0,
            "time": start,
            "format": FORMAT_VERSION,
            "start_time": start,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "versions": _versions(),
            "model": _guard(_model_summary, model),
            "optimizer": _guard(_optimizer_summary, getattr(model, "optimizer", None)),
            "loss": _guard(_name_of, getattr(model, "loss", None)),
            "loss_config": _guard(_loss_config, getattr(model, "loss", None)),
            "metrics": _guard(_metric_names, compile_config),
            "epochs": params.get("epochs"),
            "steps_per_epoch": params.get("steps"),
            # Keras 3 does not pass the batch size to callbacks.
            "batch_size": params.get("batch_size"),
            "steps_per_execution": getattr(model, "steps_per_execution", None),
        }
        if self._probes is not None:
            header["data"], header["probes"] = self._probes.header(header["loss"])
        else:
            header["probes"] = {"enabled": False, "reason": _NO_PROBE_DATA}
        if self.run_name is not None:
            header["name"] = str(self.run_name)
        return header


# ---------------------------------------------------------------- run state


class _Run:
    """One fit call's bookkeeping, kept apart from the callback so that the
    exit hook can finish it without holding the model alive."""

    def __init__(self, run_id: str, writer: RunFileWriter, steps: int | None) -> None:
        self.id = run_id
        self.writer = writer
        self.steps_per_epoch = steps if isinstance(steps, int) and steps > 0 else None
        self.step = 0
        self.prev_step = 0  # the step of the batch record before the last one
        self.epoch = 0
        self.epoch_start_step = 0
        self.prev_n = 0
        self.prev_means: dict[str, float | None] = {}
        self.ended = False
        # An exception the interpreter already knew of cannot be this run's.
        self.old_exception = _last_exception()
        _UNFINISHED.add(self)

    def write(self, record: dict[str, Any]) -> bool:
        return self.writer.write(record)

    def epoch_end(self) -> int | None:
        """The global step that ends the current epoch, when known."""
        return self.epoch_start_step + self.steps_per_epoch if self.steps_per_epoch else None

    def next_record(self, group: int) -> tuple[int, bool]:
        """The step of the next batch record, `group` batches on
        (`steps_per_execution`) but never past an epoch's end, and whether
        that record ends its epoch."""
        end = self.epoch_end()
        if end is None or self.steps_per_epoch is None:
            return self.step + max(group, 1), False
        if self.step >= end:  # the next record is in the next epoch
            end += self.steps_per_epoch
        upcoming = min(self.step + max(group, 1), end)
        return upcoming, upcoming == end

    def end(self, status: str, reason: str | None = None) -> None:
        """Write the end record once and release the file."""
        if self.ended:
            return
        self.ended = True
        _UNFINISHED.discard(self)
        record: dict[str, Any] = {
            "kind": END,
            "run": self.id,
            "step": self.step,
            "epoch": self.epoch,
            "time": time.time(),
            "status": status,
        }
        if reason:
            record["reason"] = reason
        self.writer.write(record)
        self.writer.close()


# Runs whose fit began but has not ended; finished at interpreter exit.
_UNFINISHED: set[_Run] = set()


@atexit.register
def _finish_unfinished() -> None:
    """Give runs that `fit` left by an exception their end record."""
    for run in list(_UNFINISHED):
        try:
            run.end(*_status_from_last_exception(run))
        except Exception:
            pass


def _status_for(exc: BaseException) -> tuple[str, str]:
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, reason
    return ERROR, reason[:500]


def _last_exception() -> BaseException | None:
    """The last uncaught exception, if the interpreter kept one.

    The interpreter stores an uncaught exception in `sys.last_value` (and
    `sys.last_exc` since 3.12) before atexit hooks run; IPython does the same
    for an exception in a cell.
    """
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return exc if isinstance(exc, BaseException) else None


def _status_from_last_exception(run: _Run) -> tuple[str, str]:
    """Status for a run that never saw on_train_end."""
    exc = _last_exception()
    if exc is not None and exc is not run.old_exception:
        return _status_for(exc)
    return ERROR, "fit did not reach on_train_end"


def _new_run_id(start: float) -> str:
    """The start time to the second, for people, and 48 random bits, so that
    even thousands of workers starting in one second never share an id
    (64 of them collide with odds of about 1 in 10^11; 16 bits gave 3%)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(start))
    return f"{stamp}-{secrets.token_hex(6)}"


# ------------------------------------------------------------ header parts


def _guard(fn: Any, arg: Any) -> Any:
    """A header field that cannot be read is null, not a failed run."""
    try:
        return fn(arg)
    except Exception:
        return None


def _versions() -> dict[str, str | None]:
    backend = keras.backend.backend()
    backend_version = None
    try:
        # The backend module is already imported by keras; this is cheap.
        module = sys.modules.get(backend) or __import__(backend)
        backend_version = str(module.__version__)
    except Exception:
        pass
    return {
        "lossmon": lossmon.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": backend_version,
    }


def _model_summary(model: Any) -> dict[str, Any]:
    """Model name, parameter counts and layers; partial when not built yet."""
    summary: dict[str, Any] = {
        "name": getattr(model, "name", None),
        "params": None,
        "trainable_params": None,
        "layers": [],
    }
    if getattr(model, "built", False):
        try:
            summary["params"] = int(model.count_params())
            summary["trainable_params"] = sum(
                math.prod(int(d) for d in w.shape) for w in model.trainable_weights
            )
        except Exception:
            pass
    for layer in getattr(model, "layers", []):
        entry: dict[str, Any] = {"name": layer.name, "class": type(layer).__name__}
        units = getattr(layer, "units", None)
        if isinstance(units, int):
            entry["units"] = units
        activation = getattr(layer, "activation", None)
        if activation is not None:
            entry["activation"] = _name_of(activation)
        params = None
        if getattr(layer, "built", False):
            try:
                params = int(layer.count_params())
            except Exception:
                pass
        entry["params"] = params
        summary["layers"].append(entry)
    return summary


def _optimizer_summary(optimizer: Any) -> dict[str, Any] | None:
    if optimizer is None:
        return None
    summary: dict[str, Any] = {
        "class": type(optimizer).__name__,
        "learning_rate": _current_lr(optimizer),
    }
    schedule = _schedule_of(optimizer)
    if schedule is not None:
        summary["schedule"] = type(schedule).__name__
    summary["config"] = _guard(lambda opt: json_safe(opt.get_config()), optimizer)
    return summary


def _schedule_of(optimizer: Any) -> Any:
    schedule = getattr(optimizer, "_learning_rate", None)
    schedules = keras.optimizers.schedules.LearningRateSchedule
    return schedule if isinstance(schedule, schedules) else None


def _current_lr(optimizer: Any) -> float | str | None:
    """The learning rate now, as a float; schedules are evaluated."""
    try:
        value = keras.ops.convert_to_numpy(optimizer.learning_rate)
        if value.dtype.itemsize == 4:
            # float32 1e-3 is 0.0010000000474974513 as a double; write 0.001.
            return json_number(float(str(value)))
        return json_number(float(value))
    except Exception:
        return None


def _compile_config(model: Any) -> dict[str, Any]:
    """The arguments given to compile(), unserialised when possible."""
    raw = getattr(getattr(model, "_compile_config", None), "config", None)
    if isinstance(raw, dict):
        return raw
    try:
        return model.get_compile_config() or {}
    except Exception:
        return {}


def _name_of(obj: Any) -> str | None:
    """The name of a loss, metric or activation, however it was given."""
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        if "class_name" in obj:  # a serialised Keras object
            config = obj.get("config")
            if isinstance(config, dict) and isinstance(config.get("name"), str):
                return config["name"]
            return str(obj["class_name"])
        return ", ".join(f"{key}: {_name_of(value)}" for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return ", ".join(str(_name_of(item)) for item in obj)
    name = getattr(obj, "name", None)
    if isinstance(name, str):
        return name
    name = getattr(obj, "__name__", None)
    if isinstance(name, str):
        return name
    return type(obj).__name__


def _loss_config(loss: Any) -> dict[str, Any] | None:
    """A loss object's config (`from_logits`, ...); None for a name or function."""
    get_config = getattr(loss, "get_config", None)
    if get_config is None or isinstance(loss, (str, dict)):
        return None
    return json_safe(get_config())


def _metric_names(compile_config: dict[str, Any]) -> list[str]:
    names: list[str] = []

    def add(item: Any) -> None:
        if item is None:
            return
        if isinstance(item, (list, tuple)):
            for sub in item:
                add(sub)
        elif isinstance(item, dict) and "class_name" not in item:
            for sub in item.values():  # per-output metrics
                add(sub)
        else:
            name = _name_of(item)
            if name and name not in names:
                names.append(name)

    add(compile_config.get("metrics"))
    add(compile_config.get("weighted_metrics"))
    return names
