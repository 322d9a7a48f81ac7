"""ReadPacer: file events for lone records, timed reads while records stream."""

from __future__ import annotations

import contextlib
import os
import threading
import time

from lossmon.read import FileWatcher
from lossmon.read.pacer import ReadPacer


def append(path, n=1):
    with open(path, "ab") as handle:
        for _ in range(n):
            handle.write(b'{"kind":"batch","run":"r","step":1}\n')


@contextlib.contextmanager
def pacing(tmp_path, **timing):
    """An empty run file, its started watcher and a pacer over them; both
    stopped at the end."""
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"")
    stop = threading.Event()
    watcher = FileWatcher(path, poll_interval=5.0).start()
    try:
        yield path, watcher, ReadPacer(watcher, stop, **timing)
    finally:
        stop.set()
        watcher.stop()


def test_a_lone_append_is_read_at_once_and_a_stream_in_batches(tmp_path):
    with pacing(tmp_path, gap=0.2, batch=0.3) as (path, watcher, pacer):
        assert watcher.mode == "events"
        threading.Timer(0.2, append, args=(path,)).start()
        start = time.monotonic()
        pacer.wait(5.0, got_records=False)
        assert time.monotonic() - start < 2.0  # woken by the event, not the 5 s timer
        assert not pacer.streaming

        append(path)  # a second event right after the first: records are streaming
        pacer.wait(5.0, got_records=True)
        assert pacer.streaming and watcher.mode == "polling"  # events off while streaming

        start = time.monotonic()
        pacer.wait(5.0, got_records=True)  # still streaming: a timed pause, no event needed
        assert 0.25 <= time.monotonic() - start < 2.0

        pacer.wait(0.1, got_records=False)  # a read found nothing: back to file events
        assert not pacer.streaming and watcher.mode == "events"


def test_stop_ends_a_streaming_pause_at_once(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"")
    stop = threading.Event()
    watcher = FileWatcher(path, poll_interval=5.0).start()
    pacer = ReadPacer(watcher, stop, batch=10.0)
    pacer.streaming = True
    threading.Timer(0.2, stop.set).start()
    start = time.monotonic()
    pacer.wait(5.0, got_records=True)
    assert time.monotonic() - start < 2.0
    watcher.stop()
    assert not os.path.getsize(path)


def test_a_lone_record_after_a_stream_is_read_at_once(tmp_path):
    """When a stream ends, the next record's event is judged afresh: it is
    read at once, not taken for more of the stream and read a batch later."""
    with pacing(tmp_path, gap=0.2, batch=1.0) as (path, watcher, pacer):
        append(path)
        pacer.wait(5.0, got_records=False)
        append(path)
        pacer.wait(5.0, got_records=True)
        assert pacer.streaming
        pacer.wait(5.0, got_records=False)  # a read found nothing: the stream is over
        assert not pacer.streaming and watcher.mode == "events"
        threading.Timer(0.05, append, args=(path,)).start()  # a lone record, soon after
        start = time.monotonic()
        pacer.wait(5.0, got_records=False)
        assert not pacer.streaming and time.monotonic() - start < 0.5  # its event, not a batch pause
