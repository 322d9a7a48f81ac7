"""A real two-worker MultiWorkerMirroredStrategy run on localhost.

Two processes form one cluster through TF_CONFIG and train with
synchronous all-reduce. With the default `workers="chief"` only worker 0
writes; with `workers="all"` each worker writes its own file (probes
included), and `lossmon check` reads both files together.

Keras 3.15 with TensorFlow 2.21 cannot `fit` under this strategy on CPU as
shipped: its first symbolic build reduces a PerReplica batch ("Attempt to
convert a value (PerReplica...)") and its `reduce_per_replica` takes the
mean of scalar logs over axis 0 ("Invalid reduction dimension 0"). The
worker script works around both inside Keras, not in lossmon.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lossmon.format import decode

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
import keras
from keras.src.backend.tensorflow import trainer as tf_trainer
from lossmon.keras import LossmonCallback

# Keras 3.15 bugs under MultiWorkerMirroredStrategy on CPU, worked around here only:
# (1) fit's first symbolic build reduces a PerReplica batch and fails;
# (2) reduce_per_replica takes the MEAN of scalar logs over axis 0 and fails.
# The logs of a synchronous all-reduce step are the same on every worker, so "first" is exact.
_reduce = tf_trainer.reduce_per_replica
tf_trainer.reduce_per_replica = lambda values, strategy, reduction="auto": _reduce(
    values, strategy, "first" if reduction in ("auto", "mean") else reduction)

out = sys.argv[1]
strategy = tf.distribute.MultiWorkerMirroredStrategy()
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 6)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model._symbolic_build(data_batch=(tf.constant(x[:32]), tf.constant(y[:32])))
model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[LossmonCallback(os.path.join(out, "chief.jsonl"))])
model.fit(x, y, batch_size=32, epochs=2, verbose=0,
          callbacks=[LossmonCallback(os.path.join(out, "all.jsonl"), workers="all", probe_data=(x[:64], y[:64]))])
print("done", json.loads(os.environ["TF_CONFIG"])["task"]["index"])
"""


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def read(path: Path):
    return [r for r in (decode(line) for line in path.read_bytes().splitlines(keepends=True)) if r is not None]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory) -> Path:
    """Train once on a two-worker cluster; the folder with its run files."""
    tmp_path = tmp_path_factory.mktemp("cluster")
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    procs = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        results = [p.communicate(timeout=150) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-3000:]
    return tmp_path


def test_two_workers_on_localhost(cluster_run):
    tmp_path = cluster_run

    # default: one file, written by the chief (worker 0) alone, steps counted once
    records = read(tmp_path / "chief.jsonl")
    assert [r.kind for r in records].count("header") == 1
    assert records[0].data["worker"] == {"task_type": "worker", "task_id": 0, "workers": 2, "chief": True}
    assert [r.step for r in records if r.kind == "epoch"] == [8, 16]
    assert records[-1].data["status"] == "completed"

    # workers="all": one file per worker; the shared path itself stays unused
    assert not (tmp_path / "all.jsonl").exists()
    files = [tmp_path / f"all.worker-{i}.jsonl" for i in range(2)]
    runs = [read(f) for f in files]
    for index, run in enumerate(runs):
        assert run[0].data["worker"]["task_id"] == index
        assert [r.step for r in run if r.kind == "epoch"] == [8, 16]
        assert run[-1].data["status"] == "completed"
        assert any(r.kind == "probe" and "grad_norm" in r.values for r in run)
    assert runs[0][0].run != runs[1][0].run

    # lossmon check (no TensorFlow) reads both worker files as two runs
    result = subprocess.run([sys.executable, "-m", "lossmon", "check", *map(str, files), "--format", "json"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document["alerts"], list)
    assert sorted(r["run"] for r in document["runs"]) == sorted(r[0].run for r in runs)
    text = subprocess.run([sys.executable, "-m", "lossmon", "check", *map(str, files)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert " in 2 runs," in text.stdout, text.stdout  # a healthy pair may raise nothing that names a run


async def test_watch_reads_both_worker_files(cluster_run):
    from lossmon.show.app import WatchApp

    files = [cluster_run / f"all.worker-{i}.jsonl" for i in range(2)]
    app = WatchApp(files, poll_interval=0.3)
    async with app.run_test(size=(140, 40)) as pilot:
        deadline = time.monotonic() + 10
        while not (len(app.store.runs) == 2 and all(run.status == "completed" for run in app.store.runs.values())):
            assert time.monotonic() < deadline, "watch did not read both worker files"
            await pilot.pause(0.05)
        for run in app.store.runs.values():
            assert run.step == 16 and run.header["worker"]["workers"] == 2
            assert "grad_norm" in run.probe
