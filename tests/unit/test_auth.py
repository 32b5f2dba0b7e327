"""Token verification: our strict HS256 check agrees with PyJWT and says what is wrong."""

import base64
import hashlib
import hmac
import json
import random
import time

import jwt
import pytest

from services.runtime import auth
from services.runtime.auth import Unauthenticated, issue_token, user_from_headers

SECRET = "unit-secret-0123456789abcdef0123456789abcdef"
OTHER = "another-secret-0123456789abcdef0123456789abc"
SUFFIX = " - at header `Authorization`"


@pytest.fixture(autouse=True)
def no_remembered_tokens():
    auth._verified.clear()
    yield
    auth._verified.clear()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value) -> str:
    return b64(json.dumps(value).encode())


def signed_raw(header: bytes, payload: bytes, secret: str = SECRET) -> str:
    """A correctly HS256-signed token whatever its content, so only the check under test can refuse it."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    return f"{signing_input}.{b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())}"


def signed(header, payload, secret: str = SECRET) -> str:
    return signed_raw(json.dumps(header).encode(), json.dumps(payload).encode(), secret)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(token: str, secret: str = SECRET) -> str:
    with pytest.raises(Unauthenticated) as error:
        user_from_headers(bearer(token), secret)
    message = str(error.value)
    assert message.endswith(SUFFIX)
    return message


def flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1:]


HEADER = {"alg": "HS256", "typ": "JWT"}
LATER = int(time.time()) + 3600


def test_a_token_from_issue_token_verifies_to_its_user():
    assert user_from_headers(bearer(issue_token(SECRET, "alice")), SECRET) == "alice"
    subject, expires = auth._verify(issue_token(SECRET, "zoë"), SECRET)
    assert subject == "zoë" and expires == pytest.approx(time.time() + 30 * 24 * 3600, abs=5)


def test_tokens_from_pyjwt_with_extra_claims_verify():
    token = jwt.encode({"sub": "bob", "exp": LATER, "iat": LATER - 7200, "nbf": LATER - 7200, "name": "Bob",
                        "roles": ["a", "b"], "jti": "j-1", "iss": "ringlog", "nested": {"x": 1.5}},
                       SECRET, algorithm="HS256", headers={"kid": "k1"})
    assert user_from_headers(bearer(token), SECRET) == "bob"
    assert user_from_headers(bearer(jwt.encode({"sub": "carol"}, SECRET, algorithm="HS256")), SECRET) == "carol"


def test_a_remembered_token_is_only_remembered_for_its_secret():
    token = issue_token(SECRET, "alice")
    assert user_from_headers(bearer(token), SECRET) == "alice"
    assert "Signature verification failed" in refused(token, OTHER)


def test_a_wrong_secret_is_refused():
    message = refused(issue_token(OTHER, "alice"))
    assert message == "invalid token: Signature verification failed" + SUFFIX


def test_a_tampered_payload_is_refused():
    header, payload, signature = issue_token(SECRET, "alice").split(".")
    assert "Signature verification failed" in refused(f"{header}.{flip(payload, 5)}.{signature}")
    # a well-formed payload naming someone else: only the signature can tell
    forged = f"{header}.{segment({'sub': 'mallory', 'exp': LATER})}.{signature}"
    assert refused(forged) == "invalid token: Signature verification failed" + SUFFIX


def test_a_tampered_signature_is_refused():
    header, payload, signature = issue_token(SECRET, "alice").split(".")
    for index in (0, 20, 41):
        assert "Signature verification failed" in refused(f"{header}.{payload}.{flip(signature, index)}")
    assert "Signature verification failed" in refused(f"{header}.{payload}.{signature[:-3]}")
    # the last character carries 2 unused bits: a different spelling of the same bytes is refused too
    last = auth._B64URL.index(signature[-1])
    assert "not valid base64url" in refused(f"{header}.{payload}.{signature[:-1]}{auth._B64URL[last ^ 1]}")


def test_alg_none_is_refused():
    unsigned = f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment({'sub': 'alice', 'exp': LATER})}."
    assert "invalid token" in refused(unsigned)
    assert "alg value is not allowed" in refused(unsigned + "c2ln")
    assert "alg value is not allowed" in refused(signed({"alg": "none"}, {"sub": "alice"}))
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(unsigned, SECRET, algorithms=["HS256"])


@pytest.mark.parametrize("header", [{"alg": "HS512", "typ": "JWT"}, {"alg": "hs256"}, {"typ": "JWT"}, {"alg": None}])
def test_other_or_missing_algs_are_refused(header):
    assert "alg value is not allowed" in refused(signed(header, {"sub": "alice"}))


def test_hs512_from_pyjwt_is_refused():
    token = jwt.encode({"sub": "alice"}, SECRET + SECRET, algorithm="HS512")
    assert "alg value is not allowed" in refused(token, SECRET + SECRET)


def test_crit_and_foreign_typ_headers_are_refused():
    assert "`crit`" in refused(signed({**HEADER, "crit": ["exp"], "exp": 1}, {"sub": "alice"}))
    assert "`crit`" in refused(signed({**HEADER, "crit": ["b64"], "b64": True}, {"sub": "alice"}))
    assert "`typ`" in refused(signed({**HEADER, "typ": "at+jwt"}, {"sub": "alice"}))


def test_an_expired_token_is_refused_and_a_remembered_one_expires():
    now = time.time()
    assert refused(issue_token(SECRET, "alice", ttl_seconds=60, now=now - 120)) == (
        "invalid token: Signature has expired" + SUFFIX)
    assert "Signature has expired" in refused(signed(HEADER, {"sub": "alice", "exp": int(now)}))  # exp <= now
    token = signed(HEADER, {"sub": "alice", "exp": now + 0.3})
    assert user_from_headers(bearer(token), SECRET) == "alice"
    time.sleep(0.4)
    assert "Signature has expired" in refused(token)


def test_a_token_with_exp_in_the_future_verifies():
    assert user_from_headers(bearer(signed(HEADER, {"sub": "alice", "exp": LATER})), SECRET) == "alice"
    assert user_from_headers(bearer(signed(HEADER, {"sub": "ann", "exp": LATER + 0.5})), SECRET) == "ann"


def test_nbf_and_iat_in_the_future_are_refused_as_pyjwt_does():
    assert "not yet valid (nbf)" in refused(signed(HEADER, {"sub": "alice", "nbf": LATER}))
    assert "not yet valid (iat)" in refused(signed(HEADER, {"sub": "alice", "iat": LATER}))
    assert user_from_headers(bearer(signed(HEADER, {"sub": "alice", "nbf": LATER - 7200})), SECRET) == "alice"


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["2000000000", True, None, [1], {"t": 1}])
def test_time_claims_must_be_numbers(claim, value):
    assert f"`{claim}` claim must be a number" in refused(signed(HEADER, {"sub": "alice", claim: value}))


def test_a_token_for_an_audience_is_refused_as_pyjwt_does():
    assert "Invalid audience" in refused(signed(HEADER, {"sub": "alice", "aud": "elsewhere"}))


@pytest.mark.parametrize("sub", [7, 1.5, True, ["alice"], {"id": "alice"}, ""])
def test_sub_must_be_a_non_empty_string(sub):
    message = refused(signed(HEADER, {"sub": sub}))
    assert "Subject must be a string" in message or message.startswith("token `sub` must be a user id")


@pytest.mark.parametrize("payload", [{}, {"sub": None}, {"user": "alice"}])
def test_a_missing_sub_is_refused(payload):
    assert 'missing the "sub" claim' in refused(signed(HEADER, payload))


GOOD = issue_token(SECRET, "alice")
H, P, S = GOOD.split(".")


@pytest.mark.parametrize("token", [
    "abc", f"{H}.{P}", f"{H}.{P}.{S}.{S}", f"{H}..{S}", f".{P}.{S}", f"{H}.{P}.",  # segment count or empties
    f"{H}=.{P}.{S}", f"{H}.{P}.{S}=", f"{H}.{P}+.{S}", f"{H}.{P}.{S[:-1]}/", f"{H}.{P}.{S} ", f" {GOOD}",  # alphabet
    f"{H}.{P}.{S}A", f"{H}A.{P}.{S}", f"{H}.{P}.{S[:-2]}é",  # not decodable / not ASCII
])
def test_malformed_tokens_are_refused(token):
    assert refused(token).startswith("invalid token: ")


HEADER_JSON = json.dumps(HEADER).encode()


@pytest.mark.parametrize("header, payload", [
    (b"not json", b'{"sub": "alice"}'), (b"[1, 2]", b'{"sub": "alice"}'), (b"null", b'{"sub": "alice"}'),
    (HEADER_JSON, b"not json"), (HEADER_JSON, b'["alice"]'), (HEADER_JSON, b'"alice"'), (HEADER_JSON, b"\xff"),
])
def test_segments_that_are_not_json_objects_are_refused(header, payload):
    assert "segment is not a JSON object" in refused(signed_raw(header, payload))


def test_a_deeply_nested_header_is_refused_not_crashed():
    assert "header segment is not a JSON object" in refused(f"{b64(b'[' * 100_000 + b']' * 100_000)}.{P}.{S}")


@pytest.mark.parametrize("headers, expected", [
    (None, "missing token"), ({}, "missing token"), ({"Authorization": ""}, "missing token"),
    ({"Authorization": "Basic x"}, "malformed token"), ({"Authorization": "Bearer "}, "malformed token"),
    ({"Authorization": "Bearer"}, "malformed token"), ({"Authorization": f"bearer {GOOD}"}, "malformed token"),
])
def test_a_missing_or_malformed_header_is_refused(headers, expected):
    with pytest.raises(Unauthenticated) as error:
        user_from_headers(headers, SECRET)
    assert str(error.value) == f"{expected} - at header `Authorization` (expected `Bearer <JWT>`)"


def pyjwt_sub(token: str, secret: str) -> str | None:
    try:
        return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub"]})["sub"]
    except jwt.PyJWTError:
        return None


def our_sub(token: str, secret: str) -> str | None:
    try:
        return auth._verify(token, secret)[0]
    except Unauthenticated:
        return None


def random_sub(rng: random.Random) -> str:
    alphabet = "abcxyz019-_.@ éüßł中文😀\u202e\"\\/"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))


def random_token(rng: random.Random) -> str:
    now = int(time.time())
    claims = {"sub": random_sub(rng)}
    for name, low, high in (("exp", -3600, 86400), ("iat", -86400, 600), ("nbf", -86400, 600)):
        if rng.random() < 0.6:
            offset = rng.randint(low, high)
            claims[name] = now + (offset if abs(offset) > 60 else 120)  # clear of the boundary
    if rng.random() < 0.3:
        claims.update(name=random_sub(rng), roles=["x"], jti=str(rng.random()))
    if rng.random() < 0.05:
        claims["aud"] = "elsewhere"
    secret = SECRET if rng.random() < 0.9 else OTHER
    headers = {"kid": "k1"} if rng.random() < 0.2 else None
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers)


def mutated(token: str, rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:  # flip bits of one character
        index = rng.randrange(len(token))
        return token[:index] + chr(ord(token[index]) ^ (1 << rng.randrange(7))) + token[index + 1:]
    if kind == 1:  # replace one character with any plausible one
        index = rng.randrange(len(token))
        return token[:index] + rng.choice(auth._B64URL + ".=+/ é") + token[index + 1:]
    if kind == 2:  # truncate
        return token[:rng.randrange(len(token))]
    # respell the last character of the signature (often only its unused bits)
    return token[:-1] + auth._B64URL[auth._B64URL.index(token[-1]) ^ rng.randrange(1, 4)]


def test_we_accept_exactly_what_pyjwt_accepts():
    rng = random.Random(20240601)
    tokens = []
    for _ in range(150):
        token = random_token(rng)
        tokens += [token, mutated(token, rng)]
    accepted = 0
    for token in tokens:
        expected = pyjwt_sub(token, SECRET)
        assert our_sub(token, SECRET) == expected, token
        accepted += expected is not None
    assert 60 < accepted < 240  # both outcomes are well represented


def test_issued_tokens_are_the_tokens_pyjwt_makes_and_reads():
    import jwt as pyjwt

    for index, user in enumerate(["alice", "ü-ser 名前", "a.b*c>d", "x" * 200]):
        token = auth.issue_token(SECRET_FOR_ISSUE, user, ttl_seconds=60 + index, now=1_700_000_000 + index)
        claims = {"sub": user, "iat": 1_700_000_000 + index, "exp": 1_700_000_060 + 2 * index}
        assert token == pyjwt.encode(claims, SECRET_FOR_ISSUE, algorithm="HS256")
        fresh = auth.issue_token(SECRET_FOR_ISSUE, user)
        assert pyjwt.decode(fresh, SECRET_FOR_ISSUE, algorithms=["HS256"])["sub"] == user


SECRET_FOR_ISSUE = "issue-secret-" + "y" * 32
