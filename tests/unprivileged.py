"""Run a piece of a test as an ordinary user: root ignores file permissions,
so permission errors can only be shown for real from a process that drops root."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

NOBODY = 65534


def call(fn: Callable[[], Any]) -> Any:
    """fn() in a forked child running as "nobody" when we are root, else here.
    The result must be JSON-serialisable."""
    if os.geteuid() != 0:
        return fn()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(fn()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, "the unprivileged child failed"
    return json.loads(out)
