"""Where the source lines of a decoded block are found again.

A typed block (lossmon/read/fastlines.py) keeps only columns; a row's
Record is made from its source line when someone asks for it, which is
rare (the row of a Finding). In the process that decoded the block the
lines are still in memory (`ChunkLines`). A block decoded by the helper
process (lossmon/read/backlog.py) travels as columns and the byte range of
its lines (`FileLines`), not the lines themselves: sending them would cost
more than everything else in the block. The reader reads that range again
if a row is asked for, from the same file; if the file was replaced or cut
meanwhile, it finds no lines and the row is made from the columns alone.
"""

from __future__ import annotations

import errno
import os
import stat
from itertools import accumulate
from typing import Protocol

# O_NONBLOCK: never hang opening a FIFO; O_BINARY: no newline translation on Windows.
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor for the regular file at `path`, opened without
    ever blocking (a FIFO would hang a plain open until a writer came).
    Raises OSError, and IsADirectoryError or NotRegularFile for what is
    not a regular file."""
    fd = os.open(path, OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file (a FIFO, socket or device)", os.fspath(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


class NotRegularFile(OSError):
    """A FIFO, socket or device where a file was expected."""


class RowLines(Protocol):
    def line(self, index: int) -> bytes | None:
        """Line `index` (no newline), or None when it cannot be had."""

    def portable(self, first: int, count: int) -> tuple[RowLines, int]:
        """What to send to another process for lines `first`..`first + count - 1`,
        and where they start in it."""


class ChunkLines:
    """The lines of a piece of the file just decoded, which starts at byte
    `offset` of the file at `path` that is the file `identity`."""

    __slots__ = ("_starts", "identity", "lines", "offset", "path")

    def __init__(self, lines: list[bytes], offset: int, path: str, identity: tuple[int, int]) -> None:
        self.lines, self.offset, self.path, self.identity = lines, offset, path, identity
        self._starts: list[int] | None = None

    def line(self, index: int) -> bytes | None:
        return self.lines[index] if 0 <= index < len(self.lines) else None

    def portable(self, first: int, count: int) -> tuple[RowLines, int]:
        """Their range of the file: the lines themselves would cost more to
        send than everything else in a block."""
        if self._starts is None:  # each line's first byte, worked out once per piece
            self._starts = list(accumulate((len(line) + 1 for line in self.lines), initial=self.offset))
        first = min(max(first, 0), len(self.lines))
        count = min(max(count, 0), len(self.lines) - first)
        return FileLines(self.path, self.identity, self._starts[first], self._starts[first + count], count), 0


class FileLines:
    """`count` complete lines in bytes `start`..`end` of the file at `path`
    that is the file `identity`, read again on first use."""

    __slots__ = ("_lines", "count", "end", "identity", "path", "start")

    def __init__(self, path: str, identity: tuple[int, int], start: int, end: int, count: int) -> None:
        self.path, self.identity, self.start, self.end, self.count = path, identity, start, end, count
        self._lines: list[bytes] | None = None

    def __reduce__(self) -> tuple[type[FileLines], tuple[str, tuple[int, int], int, int, int]]:
        return FileLines, (self.path, self.identity, self.start, self.end, self.count)

    def line(self, index: int) -> bytes | None:
        if self._lines is None:
            self._lines = self._read()
        return self._lines[index] if 0 <= index < len(self._lines) else None

    def portable(self, first: int, count: int) -> tuple[RowLines, int]:
        return self, first  # pickled without what was read

    def _read(self) -> list[bytes]:
        """The lines, or none when the file is no longer what was decoded."""
        size = self.end - self.start
        try:
            fd = os.open(self.path, OPEN_FLAGS)
            try:
                info = os.fstat(fd)
                if (info.st_dev, info.st_ino) != tuple(self.identity):
                    return []
                data = os.pread(fd, size, self.start)
            finally:
                os.close(fd)
        except (OSError, ValueError, TypeError):
            return []
        lines = data.split(b"\n")
        if len(data) != size or lines.pop() != b"" or len(lines) != self.count:
            return []
        return lines
