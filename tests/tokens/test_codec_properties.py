"""Property tests of the token codec: garbage is refused cleanly, claims round-trip."""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tokens import jwt
from tokens.exceptions import TokenExpired, TokenInvalid

ids = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
              max_size=64)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_strings_are_refused_cleanly(garbage):
    for typ in (jwt.ACCESS, jwt.REFRESH):
        try:
            jwt.decode(garbage, typ=typ)
        except (TokenInvalid, TokenExpired):
            pass
        else:
            raise AssertionError(f"accepted {garbage!r}")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                        max_size=200), min_size=3, max_size=3))
def test_arbitrary_three_part_tokens_are_refused(parts):
    try:
        jwt.decode(".".join(parts), typ=jwt.REFRESH)
    except TokenInvalid:
        return
    raise AssertionError("a made-up token was accepted")


@settings(max_examples=200, deadline=None)
@given(sub=ids, sid=ids, jti=ids, gen=st.integers(min_value=0, max_value=2**53),
       typ=st.sampled_from([jwt.ACCESS, jwt.REFRESH]),
       lifetime=st.integers(min_value=60, max_value=10**8))
def test_encode_then_decode_round_trips(sub, sid, jti, gen, typ, lifetime):
    now = int(time.time())
    claims = jwt.Claims(sub=sub, sid=sid, gen=gen, typ=typ, jti=jti, iat=now, exp=now + lifetime)
    token = jwt.encode(claims)
    assert jwt.decode(token, typ=typ) == claims
    assert jwt.encode(claims) == token  # deterministic: the leeway replay depends on it
