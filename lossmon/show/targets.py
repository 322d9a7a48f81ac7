"""Which files `lossmon watch` follows: plain paths, directories and globs.

A directory means the run files in it (*.jsonl, and Keras CSV logs *.csv);
a pattern with * ? or [ is expanded by us, so it also works when quoted
against the shell. A plain path that does not exist yet is kept: watch
waits for it to appear.
"""

from __future__ import annotations

import glob
from pathlib import Path

RUN_SUFFIXES = (".jsonl", ".csv")


class NoRunFiles(ValueError):
    pass


def expand_targets(names: list[str]) -> list[Path]:
    out: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in RUN_SUFFIXES and p.is_file())
            if not found:
                raise NoRunFiles(f"no run files (*.jsonl, *.csv) in directory {name}")
            out.extend(found)
        elif not path.exists() and any(ch in name for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(name) if Path(p).is_file())
            if not found:
                raise NoRunFiles(f"no files match {name}")
            out.extend(found)
        else:
            out.append(path)
    unique: list[Path] = []
    for path in out:
        if path not in unique:
            unique.append(path)
    return unique
