"""Making untrusted text safe to show.

Run names, metric names, statuses and messages come from files we do not
control. Every string from a file reaches the terminal through `escape` (or
`printable`, which also caps its length): terminal escape sequences and
other control characters are shown as visible escapes, never sent to the
terminal. That covers C0/C1 controls, line and paragraph separators, every
Unicode format character (bidirectional marks and overrides such as
U+200E/U+200F and U+061C, zero-width characters, the BOM, tag characters
U+E0000-U+E007F), invisible fillers, and lone surrogates (which cannot even
be encoded to UTF-8). Rich markup is avoided by building `rich.text.Text`
objects rather than markup strings.

`escape` is idempotent: its output is plain ASCII escapes plus the
characters it left alone, so escaping a line twice changes nothing.
"""

from __future__ import annotations

import re

# Unicode categories Cc, Cf, Cs, Zl and Zp (Unicode 14), plus invisible
# fillers (U+115F, U+1160, U+3164, U+FFA0, U+034F, U+17B4, U+17B5) and the
# whole tag block.
_CLASS = (
    r"\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2"
    r"\u115f-\u1160\u17b4-\u17b5\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164"
    r"\ud800-\udfff\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438"
    r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f"
)
_CONTROL = re.compile(f"[{_CLASS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: object) -> str:
    """`text` with every control, format and surrogate character escaped."""
    return _CONTROL.sub(_escape, str(text))


def printable(text: object, limit: int = 200) -> str:
    """`text` as one visible line: control characters escaped, length capped."""
    out = escape(text)
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return out


def safe_lines(text: str) -> str:
    """Several lines of output, each escaped: what `check` and `watch
    --plain` write, so no string from a file reaches the terminal raw
    whatever path built the line."""
    return "\n".join(escape(line) for line in text.split("\n"))


_JSON_UNSAFE = re.compile("[" + _CLASS.replace(r"\x00-\x1f", r"\x00-\x09\x0b-\x1f") + "]")


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def safe_json(text: str) -> str:
    """A JSON document with every character `escape` would escape written
    as a JSON \\u escape instead (newlines between tokens kept): the same
    document to a parser, nothing raw to a terminal."""
    return _JSON_UNSAFE.sub(_json_escape, text)
