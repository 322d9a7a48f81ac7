"""Keras CSVLogger files: read by the same tailing machinery, one run per file."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossmon.cli import main
from lossmon.monitor import Monitor
from lossmon.read import CsvTailer, Tailer, open_reader
from lossmon.read.tailer import NOTICE_TRUNCATED

HEADER = b"epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"


def row(epoch: int, loss: float, val_loss: float, lr: float = 0.001) -> bytes:
    return f"{epoch},0.5,{lr},{loss},0.5,{val_loss}\n".encode()


def drain(tailer: Tailer):
    records, malformed = [], 0
    while True:
        batch = tailer.poll()
        records += batch.records
        malformed += batch.malformed
        if not batch.more:
            return records, malformed


def test_rows_become_epoch_records_of_one_run_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "training.csv"
    path.write_bytes(HEADER + row(0, 0.7, 0.72) + row(1, 0.5, 0.6, lr=0.0005))
    tailer = open_reader(path)
    assert isinstance(tailer, CsvTailer)
    records, malformed = drain(tailer)
    assert malformed == 0 and tailer.status == "ok"
    assert [r.kind for r in records] == ["header", "epoch", "epoch"]
    assert {r.run for r in records} == {"training"}
    first, second = records[1], records[2]
    assert (first.epoch, first.step, second.epoch, second.step) == (0, 1, 1, 2)
    assert first.values == {"accuracy": 0.5, "lr": 0.001, "loss": 0.7, "val_accuracy": 0.5, "val_loss": 0.72}
    assert second.values["lr"] == 0.0005


def test_sniffed_without_the_suffix_and_jsonl_is_not(tmp_path: Path) -> None:
    log = tmp_path / "training.log"
    log.write_bytes(HEADER + row(0, 0.7, 0.7))
    jsonl = tmp_path / "run.jsonl"
    jsonl.write_bytes(b'{"kind":"header","run":"r","step":0}\n')
    assert isinstance(open_reader(log), CsvTailer)
    reader = open_reader(jsonl)
    assert type(reader) is Tailer
    assert type(open_reader(tmp_path / "late.jsonl")) is Tailer  # not there yet: by suffix
    assert isinstance(open_reader(tmp_path / "late.csv"), CsvTailer)
    misnamed = tmp_path / "run.csv"
    misnamed.write_bytes(b'{"kind":"header","run":"r","step":0}\n')
    assert type(open_reader(misnamed)) is Tailer  # the content decides


def test_growing_file_partial_row_and_malformed_rows(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(HEADER[:10])
    tailer = CsvTailer(path)
    assert drain(tailer) == ([], 0)  # half a header: nothing yet
    with open(path, "ab") as handle:
        handle.write(HEADER[10:] + row(0, 0.7, 0.7)[:5])
    records, malformed = drain(tailer)
    assert [r.kind for r in records] == ["header"] and malformed == 0
    with open(path, "ab") as handle:
        handle.write(row(0, 0.7, 0.7)[5:])
        handle.write(b"1,0.5\n")  # too few cells
        handle.write(b"x,0.5,0.001,0.4,0.5,0.4\n")  # epoch not an integer
        handle.write(b"\xff\xfe,0.5,0.001,0.4,0.5,0.4\n")  # not UTF-8
        handle.write(b"\n")  # blank: ignored
        handle.write(b"2,NA,0.001,nan,0.5,inf\n")  # CSVLogger writes NA for missing keys
    records, malformed = drain(tailer)
    assert malformed == 3 and tailer.malformed == 3
    assert [r.epoch for r in records] == [0, 2]
    last = records[1].values
    assert "accuracy" not in last and math.isnan(last["loss"]) and last["val_loss"] == math.inf


def test_truncation_reads_the_new_header(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(HEADER + row(0, 0.7, 0.7) + row(1, 0.6, 0.6))
    tailer = CsvTailer(path)
    drain(tailer)
    path.write_bytes(b"epoch;loss\n0;0.9\n")  # a new run, another separator
    batch = tailer.poll()
    assert batch.notices == [NOTICE_TRUNCATED]
    assert [(r.kind, r.values) for r in batch.records] == [("header", {}), ("epoch", {"loss": 0.9})]


def test_a_first_line_without_epoch_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(b"name,value\nx,1\n")
    tailer = open_reader(path)
    records, malformed = drain(tailer)
    assert records == [] and malformed == 2
    assert tailer.status == "error" and "epoch" in (tailer.error or "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    losses=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=10),
    cuts=st.lists(st.integers(0, 10**6), max_size=8),
)
def test_any_split_into_appends_reads_like_whole_file(tmp_path: Path, losses: list[float], cuts: list[int]) -> None:
    content = HEADER + b"".join(row(i, loss, loss) for i, loss in enumerate(losses))
    whole = tmp_path / f"whole-{os.urandom(4).hex()}.csv"
    whole.write_bytes(content)
    expected, _ = drain(CsvTailer(whole, run="r"))
    path = tmp_path / f"split-{os.urandom(4).hex()}.csv"
    path.touch()
    tailer = CsvTailer(path, run="r")
    got = []
    for a, b in itertools.pairwise(sorted({c % (len(content) + 1) for c in cuts} | {0, len(content)})):
        with open(path, "ab") as handle:
            handle.write(content[a:b])
        got += drain(tailer)[0]
    assert [(r.kind, r.step, r.values) for r in got] == [(r.kind, r.step, r.values) for r in expected]
    assert len(got) == len(losses) + 1


def test_monitor_names_runs_after_files_and_tells_same_names_apart(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name in ("a", "b"):
        (tmp_path / name / "log.csv").write_bytes(HEADER + row(0, 0.7, 0.7))
    monitor = Monitor([tmp_path / "a" / "log.csv", tmp_path / "b" / "log.csv"])
    monitor.read_to_end()
    assert list(monitor.store.runs) == ["a/log", "b/log"]
    assert monitor.store.runs["a/log"].epoch["val_loss"].values.tolist() == [0.7]


def test_check_finds_overfitting_in_a_csv_log(tmp_path: Path, capsys) -> None:
    path = tmp_path / "overfit.csv"
    rows = [row(i, 0.7 * 0.8**i, 0.6 + 0.05 * max(0, i - 4) ** 1.5) for i in range(20)]
    path.write_bytes(HEADER + b"".join(rows))
    code = main(["check", str(path), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1
    assert '"detector": "overfitting"' in out and '"run": "overfit"' in out


def test_check_reads_a_real_keras_csvlogger_file(tmp_path: Path, capsys) -> None:
    """A real fit with Keras' own CSVLogger, then `lossmon check` on its file."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    path = tmp_path / "training.log"  # the name in Keras' own examples: found by sniffing
    model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(path))])
    monitor = Monitor([path])
    monitor.read_to_end()
    run = monitor.store.runs["training"]
    assert monitor.malformed == 0
    assert run.epoch_index == 2 and run.step == 3
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(run.epoch)
    assert main(["check", str(path)]) in (0, 1)
    assert "in 1 run, 4 records" in capsys.readouterr().out
