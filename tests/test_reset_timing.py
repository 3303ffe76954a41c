"""bench/reset_timing.py's measure of how often one request tells an account from none."""

from bench.reset_timing import _complete, tells


def test_equal_times_tell_nothing_and_separate_ones_tell_every_time():
    assert tells([1.0] * 20, [1.0] * 20) == 50
    assert tells([5.0 + i for i in range(20)], [float(i % 5) for i in range(20)]) == 100
    assert tells([float(i % 5) for i in range(20)], [5.0 + i for i in range(20)]) == 100


def test_the_body_is_complete_at_its_content_length():
    head = b"HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\n"
    assert not _complete(head[:20]) and not _complete(head + b"ab")
    assert _complete(head + b"abcd")
