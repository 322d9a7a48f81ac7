"""Append records to a run file, one `write(2)` per record.

The writer sits on the training hot path and must never stop a run: an I/O
error (full disk, unwritable directory, ...) becomes one warning, and later
failures are silent. It holds no userspace buffer, so a reader tailing the
file sees each record as soon as `write` returns, and it opens the file with
`O_APPEND`, so records from several processes never interleave.

A run file deleted while training goes on (a cleanup script, a user's `rm`)
would swallow every later record without any error, as writes to an
unlinked file succeed; one renamed away (`mv run.jsonl run.jsonl.1`, log
rotation) would go on growing under its new name while the path shows
nothing. So about once a second the writer checks that its path still
names its file, and if not, warns once and starts a new file at the same
path, beginning with the run's header again.

A file that does not end in a newline (a torn last record: a full disk, a
writer killed mid-write) would glue the next record onto that garbage, so
a writer opening such a file starts its first record on a fresh line.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

from lossmon.format import HEADER, encode

_CHECK_EVERY = 1.0  # seconds between checks that the file was not deleted

__all__ = ["LossmonWarning", "RunFileWriter"]


class LossmonWarning(UserWarning):
    """Something went wrong in lossmon; training carries on regardless."""


class RunFileWriter:
    """Appends records to the run file at `path`.

    Example:

    >>> with RunFileWriter("runs/demo.jsonl") as writer:
    ...     writer.write({"kind": "batch", "run": "r", "step": 1})
    True
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None
        self._fresh_line = False  # the file does not end in a newline: begin the next record with one
        self._failed = False  # an I/O error happened: stop writing
        self._warned = False
        self._closed = False
        self._header: bytes | None = None  # the last header line, to start a re-created file with
        self._next_check = time.monotonic() + _CHECK_EVERY
        try:
            self._fd = self._open()
        except OSError as exc:
            self._fail("cannot open", exc)

    def _open(self) -> int:
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._fresh_line = not _ends_in_newline(self.path, fd)
        return fd

    @property
    def ok(self) -> bool:
        """Whether every write so far has succeeded."""
        return self._fd is not None and not self._failed

    def write(self, record: dict[str, Any]) -> bool:
        """Append one record; False when it could not be written."""
        if self._fd is None or self._failed:
            return False
        try:
            line = encode(record)
        except Exception as exc:  # e.g. an int beyond 64 bits: skip the record
            self._warn("cannot encode a record for", exc)
            return False
        if isinstance(record, dict) and record.get("kind") == HEADER:
            self._header = line
        try:
            if time.monotonic() >= self._next_check:
                self._next_check = time.monotonic() + _CHECK_EVERY
                self._recreate_if_gone()
            if self._fresh_line:
                # Judged again now: another process appending when the file
                # was opened may have been mid-write (its line is whole by now).
                if not _ends_in_newline(self.path, self._fd):
                    line = b"\n" + line
                self._fresh_line = False
            written = os.write(self._fd, line)
            # A short write is rare (signals, quotas); finish the line.
            while written < len(line):
                more = os.write(self._fd, line[written:])
                if more <= 0:
                    raise OSError(f"short write ({written} of {len(line)} bytes)")
                written += more
        except OSError as exc:
            self._fail("cannot write to", exc)
            return False
        return True

    def _recreate_if_gone(self) -> None:
        """Start a new file at `path` when ours was deleted (no links left)
        or the path names another file now (ours was renamed away)."""
        mine = os.fstat(self._fd)
        if mine.st_nlink == 0:
            why = "the file was deleted"
        else:
            try:
                there = os.stat(self.path)
            except FileNotFoundError:
                there = None
            except OSError:
                return  # cannot look (permissions, a flaky mount): keep writing where we are
            if there is not None and (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
                return
            why = "the file was renamed or replaced"
        fd = self._open()
        os.close(self._fd)
        self._fd = fd
        self._warn("found its", FileNotFoundError(why), "Recording goes on in a new file at the same path.")
        if self._header is not None:
            header = b"\n" + self._header if self._fresh_line else self._header
            self._fresh_line = False
            os.write(self._fd, header)

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        self._closed = True
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _fail(self, what: str, exc: OSError) -> None:
        """Stop writing after an I/O error; the run itself goes on."""
        self._failed = True
        self._warn(what, exc, "Training continues, but this run is no longer recorded.")

    def _warn(self, what: str, exc: BaseException, then: str = "") -> None:
        """One warning per writer, so a broken disk doesn't flood the log."""
        if self._warned:
            return
        self._warned = True
        message = f"lossmon {what} run file {self.path!r}: {exc}."
        warnings.warn(f"{message} {then}".strip(), LossmonWarning, stacklevel=4)

    def __enter__(self) -> RunFileWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("failed" if self._failed else "open")
        return f"RunFileWriter({self.path!r}, {state})"


def _ends_in_newline(path: str, fd: int) -> bool:
    """Whether the file just opened at `path` is empty or ends in a newline
    (read through a descriptor of its own: ours is write-only)."""
    try:
        if os.fstat(fd).st_size == 0:
            return True
        reader = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            info = os.fstat(reader)
            return info.st_size == 0 or os.pread(reader, 1, info.st_size - 1) == b"\n"
        finally:
            os.close(reader)
    except OSError:
        return True  # cannot tell: write as usual
