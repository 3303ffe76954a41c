"""printable() and header_text(): client text shown to an operator, with nothing left to act on
the terminal and nothing lost."""

import pytest

from tokens.text import header_text, printable

UNSAFE = (
    [chr(c) for c in range(0x00, 0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
    + ["\u061c", "\u200e", "\u200f", "\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
)


def as_wsgi(text: str) -> str:
    """How a WSGI server hands over a header (PEP 3333): the UTF-8 bytes read as Latin-1."""
    return text.encode("utf-8").decode("latin-1")


@pytest.mark.parametrize("char", UNSAFE, ids=[f"U+{ord(c):04X}" for c in UNSAFE])
def test_printable_escapes_every_control_and_bidi_character(char):
    escape = f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"
    assert printable(f"a{char}b") == f"a{escape}b"


def test_printable_neutralises_an_ansi_sequence_and_keeps_the_rest():
    assert printable("Firefox\x1b[2J\x1b]0;owned\x07") == "Firefox\\x1b[2J\\x1b]0;owned\\x07"


def test_printable_keeps_ordinary_text():
    text = "Mozilla/5.0 (X11; Linux x86_64) café ÿ 日本語 \u05e2\u05d1\u05e8\u05d9\u05ea"
    assert printable(text) == text


def test_header_text_reads_utf8_sent_by_the_client():
    assert header_text("Ã©") == "é"
    assert header_text(as_wsgi("Safari 日本語")) == "Safari 日本語"


def test_header_text_keeps_a_latin1_header_that_is_not_utf8():
    assert header_text("caf\xe9 \xff") == "caf\xe9 \xff"


def test_header_text_escapes_controls_hidden_in_utf8():
    # U+202E arrives as the bytes E2 80 AE: Latin-1 reads 0x80 as a C1 control, UTF-8 as RLO.
    assert header_text(as_wsgi("ok\u202eevil")) == "ok\\u202eevil"
    assert header_text(as_wsgi("\x1b[31mred")) == "\\x1b[31mred"
    assert header_text(as_wsgi("\u0085next")) == "\\x85next"


def test_header_text_accepts_text_that_never_was_latin1():
    assert header_text("ok \u202e \u0113") == "ok \\u202e \u0113"
