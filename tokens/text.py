"""Text that came from a client, made safe to show an operator in a terminal or a log."""

import re

# C0 and C1 controls: ESC starts ANSI sequences (colours, cursor moves, window titles), CR and
# BS overwrite what is already on screen. Bidi controls (LRM, RLM, ALM, LRE..RLO, LRI..PDI)
# reorder the rest of the line, so a cell could show text it does not hold ("Trojan Source").
# LS and PS are line breaks to some viewers, so a value could fake a line of its own.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def printable(value: str) -> str:
    """`value` with every control and bidi character shown as its escape (`\\x1b`, `\\u202e`)."""
    return _UNSAFE.sub(_escape, value)


def header_text(value: str) -> str:
    """A WSGI header value (PEP 3333: the bytes as Latin-1) as the client's text, printable."""
    try:
        text = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        text = value  # not UTF-8: the Latin-1 reading is as good a guess as any, and loses nothing
    return printable(text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
