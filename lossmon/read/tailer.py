"""Incremental reading of a run file that another process is still writing.

The writer appends one JSON line per record, possibly over a slow or remote
file system, and may be restarted, truncate the file or have it rotated. The
reader must therefore never trust a half-written line, never crash on bad
bytes, and never hold an unbounded amount of data in memory.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal


from lossmon.block import BatchBlock, Item
from lossmon.format import Record, is_blank, read_line, recover_glued
from lossmon.read import fastlines
from lossmon.read.backlog import Backlog, Slice, line_start
from lossmon.read.rowlines import OPEN_FLAGS, ChunkLines

Status = Literal["waiting", "ok", "error"]

MiB = 1024 * 1024
_READ_CHUNK = 1 * MiB  # bytes per read() call; bounds the memory of one step

# A backlog this long is shared with a helper process (read/backlog.py),
# which starts while this reader decodes the head (at most HELPER_HEAD
# bytes, an eighth of the backlog).
HELPER_MIN_BYTES = 64 * MiB
HELPER_HEAD = 16 * MiB
_HELPER_WAIT = 0.25  # seconds a poll waits for the helper's next slice

NOTICE_TRUNCATED = "file was truncated; reading from the start"
NOTICE_REPLACED = "file was replaced; reading from the start"
NOTICE_VANISHED = "file disappeared; waiting for it to come back"
NOTICE_REWRITTEN = "file was rewritten; reading from the start"

# Bytes of the file remembered from its start and from just before the read
# position: when they change, the file was rewritten in place (`cp new old`
# keeps the inode; truncated and regrown between two polls) and is read again.
FINGERPRINT_BYTES = 256


@dataclass(slots=True)
class TailBatch:
    """What one poll() found: new records plus what went wrong on the way.

    `items` are Records and, for runs of batch records read in bulk,
    BatchBlocks (lossmon/block.py), in file order.
    """

    items: list[Item] = field(default_factory=list)
    malformed: int = 0
    notices: list[str] = field(default_factory=list)
    more: bool = False  # unread bytes remain; poll again soon

    @property
    def count(self) -> int:
        """Records found, those in blocks included."""
        return sum(len(item) if isinstance(item, BatchBlock) else 1 for item in self.items)

    @property
    def records(self) -> list[Record]:
        """Every record as a Record of its own (blocks opened up)."""
        out: list[Record] = []
        for item in self.items:
            if isinstance(item, BatchBlock):
                out += item.records
            else:
                out.append(item)
        return out


class Tailer:
    """Reads the complete new lines of a run file on each poll().

    The file is opened, read from the saved offset and closed on every poll,
    so a rotated, truncated or re-created file is picked up without any
    descriptor juggling. OSErrors about the file are reported through
    `status` and `error`, never raised, because a monitor should keep
    waiting rather than die when the file is briefly unavailable.

    With `helper`, a backlog of at least `helper_min_bytes` is partly read
    by a helper process (lossmon/read/backlog.py); polls then hand on its
    slices, in file order, as if this reader had decoded them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_line_bytes: int = 16 * MiB,
        max_bytes_per_poll: int = 1 * MiB,
        helper: bool = True,
    ) -> None:
        if max_line_bytes < 1 or max_bytes_per_poll < 1:
            raise ValueError("max_line_bytes and max_bytes_per_poll must be positive")
        self.path = os.fspath(path)
        self.max_line_bytes = max_line_bytes
        self.max_bytes_per_poll = max_bytes_per_poll
        self.helper_min_bytes = HELPER_MIN_BYTES if helper else None
        self.status: Status = "waiting"
        self.error: str | None = None
        self.offset = 0  # bytes consumed from the file, held-back partial line included
        self.records_read = 0
        self.malformed = 0
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file read last
        self._vanished = False  # the file was missing since it was last read
        self._partial = bytearray()  # start of a line whose newline has not arrived yet
        self._skipping = False  # inside an over-long line: drop bytes up to the next newline
        self._typed: fastlines.Typed | None = None  # a decoder for this file's batch value names
        self._backlog: Backlog | None = None  # a helper sharing the backlog
        self._limit: int | None = None  # with a helper: where this reader's own slice ends
        self._print: tuple[int, bytes, bytes] | None = None  # (offset, head, bytes before offset) read last

    def poll(self) -> TailBatch:
        """Read what was appended since the last call (at most max_bytes_per_poll)."""
        batch = TailBatch()
        if self._backlog is not None and self._limit is None:
            self._take_slice(self._backlog, batch)
        else:
            self._poll_file(batch)
        self.records_read += batch.count
        self.malformed += batch.malformed
        return batch

    def _poll_file(self, batch: TailBatch) -> None:
        try:
            fd = os.open(self.path, OPEN_FLAGS)
        except OSError as exc:
            self._fail(exc, batch)
            return
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                self._set_error(f"{self.path} is a directory, not a run file")
                return
            if not stat.S_ISREG(info.st_mode):
                self._set_error(f"{self.path} is not a regular file")
                return
            self._check_identity(info, batch, fd)
            if self._backlog is None and self.helper_min_bytes is not None and info.st_size - self.offset >= self.helper_min_bytes:
                self._start_helper(fd, info)
            self._read(fd, batch)
            self._remember(fd)
            self.status, self.error = "ok", None
        except OSError as exc:
            self._fail(exc, batch)
        finally:
            os.close(fd)

    # ------------------------------------------------------------ helper

    def _start_helper(self, fd: int, info: os.stat_result) -> None:
        """Share the backlog after its head with a helper process; without
        one, read on alone."""
        if os.name != "posix" or not sys.executable or self._partial or self._skipping:
            return
        head = line_start(fd, self.offset + min(HELPER_HEAD, (info.st_size - self.offset) // 8), info.st_size)
        if head >= info.st_size:
            return  # one long line: nothing to share
        try:
            limits = (self.max_line_bytes, self.max_bytes_per_poll)
            self._backlog = Backlog(self.path, head, info.st_size, (info.st_dev, info.st_ino), limits)
        except (OSError, ValueError, subprocess.SubprocessError):
            self.helper_min_bytes = None  # no helper for this reader, then
            return
        self._limit = head

    def _take_slice(self, backlog: Backlog, batch: TailBatch) -> None:
        """The helper's next slice; or, where it left one to this reader,
        that slice read from the file."""
        batch.more = True
        if not backlog.ready():
            backlog.ask()  # caught up: this reader takes a slice itself rather than wait
        got = backlog.receive(_HELPER_WAIT)
        if got is None:
            return
        if not backlog.ready():
            backlog.ask()  # nothing behind this slice: ask now, so there is no wait next time
        if got.last or got.start != self.offset:  # done, gone, or not where this reader stands
            self._drop_helper()
        elif got.yours:
            self._limit = got.end
            self._poll_file(batch)
        else:
            self._adopt(got, batch)

    def _adopt(self, got: Slice, batch: TailBatch) -> None:
        batch.items, batch.malformed = got.items, got.malformed
        self.offset, self._partial, self._skipping = got.end, bytearray(got.partial), got.skipping

    def _drop_helper(self) -> None:
        if self._backlog is not None:
            self._backlog.close()
            self._backlog = None
        self._limit = None

    # ------------------------------------------------------------ internals

    def _check_identity(self, info: os.stat_result, batch: TailBatch, fd: int) -> None:
        """Start over when the file is a different one, got shorter, or
        holds other bytes than it did where this reader has been."""
        identity = (info.st_dev, info.st_ino)
        if self._identity is not None and (self._vanished or identity != self._identity):
            self._restart(NOTICE_REPLACED, batch)
        elif info.st_size < self.offset:
            self._restart(NOTICE_TRUNCATED, batch)
        elif self._print is not None and self._print != self._fingerprint(fd, self._print[0]):
            self._restart(NOTICE_REWRITTEN, batch)
        self._identity = identity
        self._vanished = False

    @staticmethod
    def _fingerprint(fd: int, at: int) -> tuple[int, bytes, bytes]:
        size = min(FINGERPRINT_BYTES, at)
        head = os.pread(fd, size, 0)
        return at, head, (os.pread(fd, size, at - size) if at > size else head)

    def _remember(self, fd: int) -> None:
        self._print = self._fingerprint(fd, self.offset) if self.offset else None

    def _restart(self, notice: str, batch: TailBatch) -> None:
        # A held-back partial line belongs to the old contents: drop it.
        self._drop_helper()
        self.offset = 0
        self._print = None
        self._partial.clear()
        self._skipping = False
        batch.notices.append(notice)

    def _read(self, fd: int, batch: TailBatch) -> None:
        os.lseek(fd, self.offset, os.SEEK_SET)
        budget = self.max_bytes_per_poll
        if self._limit is not None:
            budget = min(budget, self._limit - self.offset)  # the helper reads on from there
        while budget > 0:
            chunk = os.read(fd, min(_READ_CHUNK, budget))
            if not chunk:
                return
            at = self.offset
            self.offset += len(chunk)
            budget -= len(chunk)
            self._feed(chunk, at, batch)
        batch.more = os.fstat(fd).st_size > self.offset or self._backlog is not None
        if self._limit is not None and self.offset >= self._limit:
            self._limit = None  # the helper's turn again

    def _feed(self, chunk: bytes, at: int, batch: TailBatch) -> None:
        """Split a chunk (from byte `at` of the file) into lines, joining
        with the held-back partial line."""
        lines = chunk.split(b"\n")
        rest = lines.pop()  # after the last newline: a line still being written
        if lines:
            first = lines[0]
            joined = self._skipping or bool(self._partial)
            if self._skipping:
                self._skipping = False  # the over-long line ends here; it was counted already
                lines[0] = b""
            elif self._partial:
                self._partial += first
                lines[0] = bytes(self._partial)
                self._partial.clear()
            if len(lines) <= fastlines.MIN_LINES:
                for line in lines:
                    self._line_checked(line, batch)
            elif joined:  # the first line is not all in this chunk
                self._line_checked(lines[0], batch)
                self._bulk(chunk[len(first) + 1 : len(chunk) - len(rest)], lines[1:], at + len(first) + 1, batch)
            else:
                self._bulk(chunk[: len(chunk) - len(rest)], lines, at, batch)
        if self._skipping or not rest:
            return
        if len(self._partial) + len(rest) > self.max_line_bytes:
            self._partial.clear()
            self._skipping = True
            batch.malformed += 1
        else:
            self._partial += rest

    def _bulk(self, data: bytes, lines: list[bytes], at: int, batch: TailBatch) -> None:
        """Complete lines (from byte `at` of the file), decoded in one call
        where they allow it: by the decoder typed for this file's value
        names, else the general one."""
        slow = lambda line: self._line(line, batch)  # noqa: E731
        decoded = None
        if len(data) <= self.max_line_bytes or max(map(len, lines)) <= self.max_line_bytes:
            if self._typed is not None:
                rows = self._typed.decode(data, len(lines))
                if rows is not None and self._identity is not None:  # (known: the file was just opened)
                    self._typed.take(rows, ChunkLines(lines, at, self.path, self._identity), batch.items, slow)
                    return
            decoded = fastlines.decode(data, len(lines))
        if decoded is None:
            for line in lines:
                self._line_checked(line, batch)
            return
        fastlines.take(decoded, lines, batch.items, slow)
        names = fastlines.learn_names(decoded)
        if names is not None and (self._typed is None or names != self._typed.names):
            self._typed = fastlines.typed(names)

    def _line_checked(self, line: bytes, batch: TailBatch) -> None:
        if len(line) > self.max_line_bytes:
            batch.malformed += 1
        else:
            self._line(line, batch)

    def _line(self, line: bytes, batch: TailBatch) -> None:
        record = read_line(line)
        if record is not None:
            batch.items.append(record)
        elif not is_blank(line):  # blank lines are harmless padding, not damage
            batch.malformed += 1
            glued = recover_glued(line)  # a torn line with the next record stuck to it
            if glued is not None:
                batch.items.append(glued)

    def _fail(self, exc: OSError, batch: TailBatch) -> None:
        if isinstance(exc, FileNotFoundError):
            if self._identity is not None and not self._vanished:
                batch.notices.append(NOTICE_VANISHED)
                self._vanished = True
            self.status, self.error = "waiting", None
        elif isinstance(exc, PermissionError):
            self._set_error(f"permission denied: {self.path}")
        elif isinstance(exc, IsADirectoryError):
            self._set_error(f"{self.path} is a directory, not a run file")
        elif isinstance(exc, NotADirectoryError):
            self._set_error(f"{self.path}: a parent of this path is not a directory")
        elif exc.errno == errno.ELOOP:
            self._set_error(f"{self.path}: too many levels of symbolic links")
        else:
            self._set_error(f"cannot read {self.path}: {exc.strerror or exc}")

    def _set_error(self, message: str) -> None:
        self.status, self.error = "error", message
