"""A long backlog decoded partly by a helper process, on a second core.

Opening a run of a million records costs about as much in decoding as in
modelling and detecting, and all of it holds the interpreter lock. So when
a Tailer finds a long backlog it shares the decoding with a helper process.
The backlog is cut into slices at line starts; the helper decodes them and
sends them back in file order through a pipe. The Tailer models and
detects everything, and when it has caught up and would wait, it says so
through a second pipe: the helper then leaves its next slice to the
Tailer (a "yours" note in its place), which reads that one itself and
meets the helper's next slice exactly where it ended. So the work splits
by how fast each side goes, on a machine whose speed drifts. Blocks travel
as numpy columns (lossmon/block.py) and the byte range of their lines
(lossmon/read/rowlines.py), cheap to pickle; a sender thread lets the
helper run a few slices ahead.

If the helper cannot start, dies, or meets a file that was replaced or
truncated under it, the Tailer reads on by itself from where it stands and
meets the same file on its own.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import lossmon

_AHEAD = 10  # slices the helper may have decoded and not yet sent
_WINDOW = 64 * 1024  # bytes read at a time when looking for a line start

# The helper's command: nothing but the reader is imported there.
_CHILD = "import sys; from lossmon.read.backlog import serve; serve(sys.argv[1:])"


@dataclass(slots=True)
class Slice:
    """A slice of the backlog from byte `start` to `end`: what the helper
    made of it, or (`yours`) a note that the Tailer reads it itself. After
    the helper's slice, the reader's held-back `partial` line and whether it
    is `skipping` an over-long one (only the backlog's last slice can end
    inside a line). `last`: the helper stops here."""

    start: int
    end: int
    items: list[Any] = field(default_factory=list)
    malformed: int = 0
    partial: bytes = b""
    skipping: bool = False
    yours: bool = False
    last: bool = False


def line_start(fd: int, at: int, stop: int) -> int:
    """The first offset at or after `at` where a line starts (just after a
    newline), or `stop` if there is none before it."""
    if at >= stop or at <= 0:
        return min(max(at, 0), stop)  # the file's start is a line start
    position = at - 1
    while position < stop:
        window = os.pread(fd, min(_WINDOW, stop - position), position)
        if not window:
            return stop
        newline = window.find(b"\n")
        if newline >= 0:
            return min(position + newline + 1, stop)
        position += len(window)
    return stop


class Backlog:
    """A helper process decoding bytes `start`..`stop` of the file at `path`
    (`start` at the beginning of a line) that is the file `identity`, with
    the Tailer's `limits` (max_line_bytes, max_bytes_per_poll)."""

    def __init__(self, path: str, start: int, stop: int, identity: tuple[int, int], limits: tuple[int, int]) -> None:
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._ask: int | None = None  # the write end of the "I would wait" pipe
        read_end, write_end = os.pipe()
        ask_read, ask_write = os.pipe()
        try:
            env = dict(os.environ)
            here = str(Path(lossmon.__file__).resolve().parent.parent)  # this very lossmon in the helper
            env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
            args = [path, *map(str, (start, stop, *identity, *limits, write_end, ask_read))]
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, *args],
                pass_fds=(write_end, ask_read),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # a dying helper must not write over the screen
                env=env,
            )
        except BaseException:
            os.close(read_end)
            os.close(ask_write)
            raise
        finally:
            os.close(write_end)
            os.close(ask_read)
        self._conn = Connection(read_end, writable=False)
        os.set_blocking(ask_write, False)
        self._ask = ask_write

    def ask(self) -> None:
        """Tell the helper this reader has caught up and would wait: it
        leaves its next slice to the reader."""
        if self._ask is None:
            return
        try:
            os.write(self._ask, b"?")
        except OSError:  # full (asked often enough) or broken (gone: receive will tell)
            pass

    def ready(self) -> bool:
        """Whether a slice (or the end) waits in the pipe."""
        try:
            return self._conn is None or self._conn.poll()
        except OSError:
            return True  # receive will find it gone

    def receive(self, timeout: float) -> Slice | None:
        """The next slice, or None when none came within `timeout` seconds.
        A helper that is gone or sends nonsense ends the backlog: a `last`
        slice with nothing in it."""
        conn = self._conn
        if conn is None:
            return Slice(-1, -1, last=True)
        try:
            if not conn.poll(timeout):
                return None
            got = pickle.loads(conn.recv_bytes())
            if not isinstance(got, Slice):
                raise TypeError(f"not a slice: {type(got).__name__}")
        except Exception:  # EOF, a broken pipe, a torn message: the helper is gone
            self.close()
            return Slice(-1, -1, last=True)
        if got.last:
            self.close()
        return got

    def close(self) -> None:
        """Stop the helper (if it still runs) and release the pipe."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._ask is not None:
            os.close(self._ask)
            self._ask = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit: nothing to report to
            pass


# ------------------------------------------------------------ the helper


def serve(argv: list[str]) -> None:
    """The helper: slice `path` from `start` to `stop`, decode the slices
    the Tailer does not ask for, and send every slice (or its note) in file order."""
    from lossmon.read.tailer import Tailer

    path, (start, stop, dev, ino, max_line, slice_bytes, out, asks) = argv[0], map(int, argv[1:])
    os.set_blocking(asks, False)
    outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=_AHEAD)
    gone = threading.Event()
    sender = threading.Thread(target=_send_all, args=(Connection(out, readable=False), outbox, gone), daemon=True)
    sender.start()
    tailer = Tailer(path, max_line_bytes=max_line, helper=False)
    tailer._identity = (dev, ino)
    fd = os.open(path, os.O_RDONLY)
    offset = start
    try:
        while offset < stop and not gone.is_set():
            end = line_start(fd, offset + slice_bytes, stop)
            if _asked(asks):
                piece = Slice(offset, end, yours=True)
            else:
                tailer.offset, tailer._partial, tailer._skipping = offset, bytearray(), False
                tailer.max_bytes_per_poll = end - offset
                batch = tailer.poll()
                if batch.notices or tailer.status != "ok" or tailer.offset != end:
                    break  # replaced, truncated, gone or shorter: the Tailer's own poll will see it
                piece = Slice(offset, end, batch.items, batch.malformed, bytes(tailer._partial), tailer._skipping)
            _put(outbox, gone, pickle.dumps(piece, protocol=pickle.HIGHEST_PROTOCOL))
            offset = end
        _put(outbox, gone, pickle.dumps(Slice(offset, offset, last=True), protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        os.close(fd)
        _put(outbox, gone, None)
        sender.join()


def _asked(asks: int) -> bool:
    """Whether the Tailer asked for a slice since the last look (all its
    asks so far answered by one: it asks again when it waits again)."""
    try:
        return bool(os.read(asks, 4096))
    except OSError:  # nothing asked (or the Tailer is gone: the sender will find out)
        return False


def _put(outbox: queue.Queue[bytes | None], gone: threading.Event, message: bytes | None) -> None:
    """Queue a message for the sender, unless the Tailer stopped listening."""
    while not gone.is_set():
        try:
            outbox.put(message, timeout=0.5)
            return
        except queue.Full:
            continue


def _send_all(conn: Connection, outbox: queue.Queue[bytes | None], gone: threading.Event) -> None:
    """Write queued messages to the pipe until the end, or until nobody reads."""
    try:
        while (message := outbox.get()) is not None:
            conn.send_bytes(message)
    except OSError:
        pass  # the Tailer closed its end
    finally:
        gone.set()
        conn.close()
