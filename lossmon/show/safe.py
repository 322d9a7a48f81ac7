"""Making untrusted text safe to show.

Run names, metric names and messages come from files we do not control.
Terminal escape sequences and other control characters are shown as visible
escapes, never sent to the terminal; Rich markup is avoided by building
`rich.text.Text` objects rather than markup strings.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, limit: int = 200) -> str:
    """`text` as one visible line: control characters escaped, length capped."""
    out = _CONTROL.sub(_escape, str(text))
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return out
