"""Which files `lossmon watch` follows: plain paths, directories and globs.

A directory means the run files in it (*.jsonl, and Keras CSV logs *.csv);
a pattern with * ? or [ is expanded by us, so it also works when quoted
against the shell. A plain path that does not exist yet is kept: watch
waits for it to appear.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

RUN_SUFFIXES = (".jsonl", ".csv")


class NoRunFiles(ValueError):
    pass


def expand_targets(names: list[str]) -> list[Path]:
    out: list[Path] = []
    for name in names:
        path = Path(name)
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists()
        except OSError as exc:  # a parent we cannot traverse, a name too long
            raise NoRunFiles(f"cannot look at {name}: {exc.strerror or exc}") from None
        except ValueError as exc:  # a NUL byte
            raise NoRunFiles(f"{name}: {exc}") from None
        if is_dir:
            try:
                found = sorted(p for p in path.iterdir() if p.suffix in RUN_SUFFIXES and _is_file(p))
            except OSError as exc:
                raise NoRunFiles(f"cannot list directory {name}: {exc.strerror or exc}") from None
            if not found:
                raise NoRunFiles(f"no run files (*.jsonl, *.csv) in directory {name}")
            out.extend(found)
        elif not exists and any(ch in name for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(name) if _is_file(Path(p)))
            if not found:
                raise NoRunFiles(f"no files match {name}")
            out.extend(found)
        else:
            out.append(path)
    unique: list[Path] = []
    seen: set[object] = set()
    for path in out:
        key = _identity(path)
        if key not in seen:  # the same file under two spellings is read once
            seen.add(key)
            unique.append(path)
    return unique


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _identity(path: Path) -> object:
    """The file itself when it can be looked at, else its spelling."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return os.path.abspath(path)
    return (info.st_dev, info.st_ino)
