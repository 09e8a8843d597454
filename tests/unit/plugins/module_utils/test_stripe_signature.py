"""module_utils/stripe_signature.py against the official ``stripe`` library (16.1.0, the reference).

Whatever ``sign`` produces, ``stripe.WebhookSignature.verify_header`` and
``stripe.Webhook.construct_event`` accept; whatever ``verify`` rejects (wrong
secret, stale timestamp, tampered body, missing header, ...), the library
rejects too, and the other way round. Fixed vectors pin the HMAC itself
(computed independently with openssl, not with the code under test).
"""

import hashlib
import hmac
import json
import time

import pytest
import stripe

from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_signature as sig

SECRET = 'whsec_test_' + 'k3Y' * 10
OTHER_SECRET = 'whsec_test_' + 'zZ9' * 10
PAYLOAD = json.dumps({'id': 'evt_svpms_unit_1', 'object': 'event', 'type': 'svpms.probe', 'livemode': False,
                      'created': 1700000000, 'data': {'object': {}}}, indent=2).encode('utf-8')

# Fixed vectors (secret, timestamp, payload, expected v1). The hex values were computed with
# `printf '%s' '<t>.<payload>' | openssl dgst -sha256 -hmac '<secret>'`, independently of Python.
VECTORS = [
    ('whsec_test_secret', 1492774577, b'{"id": "evt_test_webhook", "object": "event"}',
     'c137b1b62277d523cf8fed4dfbd0170a9a5b8a380e00cc3711d4bf0652f2ce7a'),
    ('whsec_0123456789abcdef', 0, b'',
     '2852ef72b5be70ea4bcd2762af295042abb372233d0fb219a7ae18fd7f2852b9'),
]


def _reference_hmac(secret, timestamp, payload):
    return hmac.new(secret.encode('utf-8'), b'%d.' % timestamp + payload, hashlib.sha256).hexdigest()


def stripe_accepts(payload, header, secret, tolerance=300):
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        return True
    except stripe.SignatureVerificationError:
        return False


def ours_accepts(payload, header, secret, tolerance=300, now=None):
    try:
        sig.verify(payload, header, secret, tolerance=tolerance, now=now)
        return True
    except sig.StripeSignatureError:
        return False


# --------------------------------------------------------------------------- sign


def test_sign_format_and_known_vector():
    header = sig.sign(b'{"a":1}', 'whsec_abc', 1600000000)
    assert header == 't=1600000000,v1=%s' % _reference_hmac('whsec_abc', 1600000000, b'{"a":1}')
    # The whole secret (prefix included) is the key; it is not base64-decoded.
    assert header != 't=1600000000,v1=%s' % _reference_hmac('abc', 1600000000, b'{"a":1}')


@pytest.mark.parametrize('secret,timestamp,payload,expected', VECTORS)
def test_fixed_vectors(secret, timestamp, payload, expected):
    assert _reference_hmac(secret, timestamp, payload) == expected
    assert sig.compute_signature(payload, secret, timestamp) == expected
    header = 't=%d,v1=%s' % (timestamp, expected)
    assert sig.sign(payload, secret, timestamp) == header
    # the library's own header generator agrees byte for byte, and both verifiers accept it
    assert stripe.WebhookSignature.generate_signature_header(payload.decode('utf-8'), secret, timestamp) == header
    assert sig.verify(payload, header, secret, tolerance=None) == timestamp
    assert stripe_accepts(payload, header, secret, tolerance=None)


def test_unicode_payload_is_signed_as_utf8_like_stripe():
    payload = '{"name": "J\u00fcrgen \u2603"}'
    header = sig.sign(payload.encode('utf-8'), SECRET, 1700000000)
    assert header == stripe.WebhookSignature.generate_signature_header(payload, SECRET, 1700000000)
    assert stripe_accepts(payload, header, SECRET, tolerance=None)


def test_sign_str_and_bytes_payloads_agree():
    assert sig.sign(PAYLOAD.decode('utf-8'), SECRET, 1) == sig.sign(PAYLOAD, SECRET, 1) == \
        sig.sign(bytearray(PAYLOAD), SECRET, 1)


def test_sign_defaults_to_now():
    before = int(time.time())
    ts, sigs = sig.parse(sig.sign(PAYLOAD, SECRET))
    assert before <= ts <= int(time.time()) and len(sigs) == 1


def test_sign_rejects_bad_input():
    with pytest.raises(sig.NoSecretError):
        sig.sign(PAYLOAD, '', 1)
    with pytest.raises(sig.NoSecretError):
        sig.sign(PAYLOAD, None, 1)
    with pytest.raises(TypeError):
        sig.sign(PAYLOAD, SECRET, 1.5)
    with pytest.raises(TypeError):
        sig.sign(PAYLOAD, SECRET, True)
    with pytest.raises(TypeError):
        sig.sign({'a': 1}, SECRET, 1)


# --------------------------------------------------------------------------- stripe accepts what we sign


def test_stripe_construct_event_accepts_what_sign_produces():
    header = sig.sign(PAYLOAD, SECRET, int(time.time()))
    event = stripe.Webhook.construct_event(PAYLOAD, header, SECRET)
    assert event.id == 'evt_svpms_unit_1' and event.type == 'svpms.probe'
    assert stripe.WebhookSignature.verify_header(PAYLOAD.decode('utf-8'), header, SECRET, 300) is True
    assert sig.verify(PAYLOAD, header, SECRET) == int(header.split(',')[0][2:])


def test_we_accept_what_stripe_generates():
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(PAYLOAD.decode('utf-8'), SECRET, now)
    assert sig.verify(PAYLOAD, header, SECRET) == now
    assert sig.verify(PAYLOAD.decode('utf-8'), header, SECRET) == now


# --------------------------------------------------------------------------- rejections agree


def _cases():
    now = int(time.time())
    good = sig.sign(PAYLOAD, SECRET, now)
    cases = [
        # (name, payload, header, secret, tolerance, expected error class or None)
        ('valid', PAYLOAD, good, SECRET, 300, None),
        ('wrong secret', PAYLOAD, good, OTHER_SECRET, 300, sig.BadSignatureError),
        ('signed with wrong secret', PAYLOAD, sig.sign(PAYLOAD, OTHER_SECRET, now), SECRET, 300,
         sig.BadSignatureError),
        ('stale timestamp', PAYLOAD, sig.sign(PAYLOAD, SECRET, now - 600), SECRET, 300,
         sig.TimestampOutsideToleranceError),
        ('just inside tolerance', PAYLOAD, sig.sign(PAYLOAD, SECRET, now - 200), SECRET, 300, None),
        ('stale but tolerance disabled', PAYLOAD, sig.sign(PAYLOAD, SECRET, now - 10 ** 6), SECRET, 0, None),
        ('future timestamp (libraries only bound the past)', PAYLOAD, sig.sign(PAYLOAD, SECRET, now + 3600),
         SECRET, 300, None),
        ('tampered body', PAYLOAD.replace(b'svpms.probe', b'charge.succeeded'), good, SECRET, 300,
         sig.BadSignatureError),
        ('one byte appended', PAYLOAD + b' ', good, SECRET, 300, sig.BadSignatureError),
        ('timestamp changed', PAYLOAD, good.replace('t=%d' % now, 't=%d' % (now + 1)), SECRET, 300,
         sig.BadSignatureError),
        ('missing header', PAYLOAD, None, SECRET, 300, sig.NoSignatureError),
        ('empty header', PAYLOAD, '', SECRET, 300, sig.NoSignatureError),
        ('no v1 entry', PAYLOAD, 't=%d,v0=%s' % (now, 'ab' * 32), SECRET, 300, sig.NoSignatureError),
        ('no timestamp', PAYLOAD, 'v1=' + good.split('v1=')[1], SECRET, 300, sig.MalformedHeaderError),
        ('non-numeric timestamp', PAYLOAD, 't=abc,v1=' + good.split('v1=')[1], SECRET, 300,
         sig.MalformedHeaderError),
        ('garbage header', PAYLOAD, 'garbage', SECRET, 300, sig.MalformedHeaderError),
        ('uppercase hex', PAYLOAD, good.upper().replace('T=', 't=').replace('V1=', 'v1='), SECRET, 300,
         sig.BadSignatureError),
        ('truncated signature', PAYLOAD, good[:-2], SECRET, 300, sig.BadSignatureError),
        ('several v1, one right (secret rolling)', PAYLOAD,
         't=%d,v1=%s,v1=%s' % (now, sig.compute_signature(PAYLOAD, OTHER_SECRET, now),
                               sig.compute_signature(PAYLOAD, SECRET, now)), SECRET, 300, None),
        ('several v1, none right', PAYLOAD,
         't=%d,v1=%s,v1=%s' % (now, sig.compute_signature(PAYLOAD, OTHER_SECRET, now), 'ab' * 32), SECRET, 300,
         sig.BadSignatureError),
        ('v0 and v1 as in test mode', PAYLOAD, '%s,v0=%s' % (good, 'cd' * 32), SECRET, 300, None),
        ('unknown entries ignored', PAYLOAD, 'x=1,%s,foo=bar' % good, SECRET, 300, None),
        ('first t wins', PAYLOAD, 't=%d,%s' % (now - 5, good), SECRET, 300, sig.BadSignatureError),
        ('blank secret', PAYLOAD, good, '   ', 300, sig.NoSecretError),
        ('no secret', PAYLOAD, good, None, 300, sig.NoSecretError),
        ('stale and wrong: signature is checked first', PAYLOAD, sig.sign(PAYLOAD, OTHER_SECRET, now - 600),
         SECRET, 300, sig.BadSignatureError),
    ]
    return cases


@pytest.mark.parametrize('case', _cases(), ids=lambda c: c[0])
def test_verify_agrees_with_stripe(case):
    _name, payload, header, secret, tolerance, error = case
    if error is None:
        assert ours_accepts(payload, header, secret, tolerance)
        assert stripe_accepts(payload, header, secret, tolerance)
        if secret is not None:
            stripe.Webhook.construct_event(payload, header, secret, tolerance=tolerance)
    else:
        with pytest.raises(error) as info:
            sig.verify(payload, header, secret, tolerance=tolerance)
        assert isinstance(info.value, sig.StripeSignatureError) and isinstance(info.value, ValueError)
        assert info.value.kind == error.kind
        assert not stripe_accepts(payload, header, secret, tolerance)
        if secret is not None and secret.strip():
            with pytest.raises(stripe.SignatureVerificationError):
                stripe.Webhook.construct_event(payload, header, secret, tolerance=tolerance)
        for value in (SECRET, OTHER_SECRET):
            assert value not in str(info.value)


def test_tolerance_boundary_with_now():
    header = sig.sign(PAYLOAD, SECRET, 1000)
    assert sig.verify(PAYLOAD, header, SECRET, tolerance=300, now=1300) == 1000
    with pytest.raises(sig.TimestampOutsideToleranceError) as info:
        sig.verify(PAYLOAD, header, SECRET, tolerance=300, now=1301)
    assert info.value.kind == 'timestamp_outside_tolerance'
    assert info.value.timestamp == 1000 and info.value.age_seconds == 301
    assert sig.verify(PAYLOAD, header, SECRET, tolerance=None, now=10 ** 9) == 1000


def test_negative_tolerance_is_an_error():
    with pytest.raises(ValueError):
        sig.verify(PAYLOAD, sig.sign(PAYLOAD, SECRET, 1), SECRET, tolerance=-1)


def test_parse():
    assert sig.parse('t=12,v1=aa,v0=bb,v1=cc') == (12, ['aa', 'cc'])
    assert sig.parse(b't=12, v1=aa') == (12, ['aa'])
    with pytest.raises(sig.NoSignatureError):
        sig.parse('t=12')
    with pytest.raises(sig.MalformedHeaderError):
        sig.parse('t=,v1=aa')
    with pytest.raises(sig.MalformedHeaderError):
        sig.parse('t=\u00b2,v1=aa')
    with pytest.raises(sig.MalformedHeaderError):
        sig.parse(b't=1,v1=\xff')


def test_non_ascii_signature_is_a_mismatch_not_a_crash():
    header = 't=%d,v1=\u00e9\u00e9' % int(time.time())
    with pytest.raises(sig.BadSignatureError):
        sig.verify(PAYLOAD, header, SECRET)
    # the library does not accept it either (it even raises TypeError from hmac.compare_digest)
    with pytest.raises((stripe.SignatureVerificationError, TypeError)):
        stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET, 300)


def test_compare_is_constant_time_primitive(monkeypatch):
    """Every candidate goes through hmac.compare_digest (no == on signatures)."""
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(sig.hmac, 'compare_digest', spy)
    now = int(time.time())
    header = 't=%d,v1=%s,v1=%s' % (now, sig.compute_signature(PAYLOAD, SECRET, now), 'ab' * 32)
    sig.verify(PAYLOAD, header, SECRET)
    assert len(calls) == 2  # no early exit after the first match
