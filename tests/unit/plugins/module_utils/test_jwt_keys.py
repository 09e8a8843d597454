"""Pure logic of module_utils/jwt_keys.py: parse, generate, RFC 7638 thumbprint, JWKS comparison.

Keys are real (made with ``cryptography``); nothing of ours is mocked. Every
description is also checked not to carry key material.
"""

import base64
import datetime
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.svpms.incident_response.plugins.module_utils import jwt_keys

# RFC 7638 section 3.1: the example RSA key and its thumbprint.
RFC7638_JWK = {
    'kty': 'RSA',
    'n': ('0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3o'
          'knjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHz'
          'u6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8a'
          'wapJzKnqDKgw'),
    'e': 'AQAB',
    'alg': 'RS256',
    'kid': '2011-04-29',
}
RFC7638_THUMBPRINT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_body(pem):
    """A distinctive slice of a PEM's base64 body (what must never appear in output)."""
    return pem.splitlines()[3]


@pytest.fixture(scope='module')
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope='module')
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def _assert_safe(description, *secrets):
    text = json.dumps(description)
    for secret in secrets:
        assert secret not in text


# --------------------------------------------------------------------------- thumbprint


def test_rfc7638_thumbprint_of_the_rfc_example():
    assert jwt_keys.jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_rfc7638_thumbprint_from_a_pem_of_the_rfc_key():
    numbers = rsa.RSAPublicNumbers(int.from_bytes(jwt_keys.b64url_decode(RFC7638_JWK['e']), 'big'),
                                   int.from_bytes(jwt_keys.b64url_decode(RFC7638_JWK['n']), 'big'))
    pem = numbers.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    parsed = jwt_keys.parse_secret(pem)
    assert parsed.kind == 'rsa' and parsed.kid == RFC7638_THUMBPRINT and parsed.kid_source == 'thumbprint'
    assert parsed.private is False
    assert 'only a public key' in parsed.problem


def test_thumbprint_rejects_symmetric_and_incomplete_jwks():
    with pytest.raises(jwt_keys.JWTKeyError, match='oct'):
        jwt_keys.jwk_thumbprint({'kty': 'oct', 'k': 'abc'})
    with pytest.raises(jwt_keys.JWTKeyError, match='lacks y'):
        jwt_keys.jwk_thumbprint({'kty': 'EC', 'crv': 'P-256', 'x': 'abc'})


# --------------------------------------------------------------------------- parse


def test_parse_rsa_pem(rsa_key):
    pem = _pem(rsa_key)
    parsed = jwt_keys.parse_secret(pem)
    d = parsed.describe()
    assert d['kind'] == 'rsa' and d['shape'] == 'pem' and d['alg'] == 'RS256'
    assert d['bits'] == 2048 and d['parses'] is True and d['problem'] is None and d['private'] is True
    assert d['kid'] == jwt_keys.jwk_thumbprint(jwt_keys.public_jwk(rsa_key.public_key()))
    _assert_safe(d, _pem_body(pem))
    assert pem in parsed.sensitive_values()


def test_parse_pkcs1_rsa_pem(rsa_key):
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    assert 'BEGIN RSA PRIVATE KEY' in pem
    assert jwt_keys.parse_secret(pem).kind == 'rsa'


def test_parse_ec_pem(ec_key):
    pem = _pem(ec_key)
    d = jwt_keys.parse_secret(pem).describe()
    assert (d['kind'], d['curve'], d['alg'], d['bits'], d['problem']) == ('ec', 'P-256', 'ES256', 256, None)
    _assert_safe(d, _pem_body(pem))


def test_parse_ec_p384_alg():
    d = jwt_keys.parse_secret(_pem(ec.generate_private_key(ec.SECP384R1()))).describe()
    assert (d['curve'], d['alg']) == ('P-384', 'ES384')


def test_parse_json_pem_with_explicit_kid(rsa_key):
    pem = _pem(rsa_key)
    parsed = jwt_keys.parse_secret(json.dumps({'kid': 'api-2026-11', 'alg': 'RS512', 'private_key_pem': pem}))
    d = parsed.describe()
    assert (d['shape'], d['kid'], d['kid_source'], d['alg']) == ('json_pem', 'api-2026-11', 'explicit', 'RS512')
    assert d['thumbprint'] == jwt_keys.jwk_thumbprint(jwt_keys.public_jwk(rsa_key.public_key()))
    _assert_safe(d, _pem_body(pem))


def test_parse_json_pem_alg_mismatch(ec_key):
    d = jwt_keys.parse_secret(json.dumps({'alg': 'RS256', 'pem': _pem(ec_key)})).describe()
    assert d['parses'] and 'does not fit an EC P-256 key' in d['problem']


def test_parse_small_rsa_is_a_problem():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    d = jwt_keys.parse_secret(_pem(small)).describe()
    assert d['parses'] and d['bits'] == 1024 and 'at least 2048' in d['problem']


def test_parse_hmac_json_and_raw():
    key = 'k' * 40 + 'Zq9'
    d = jwt_keys.parse_secret(json.dumps({'kid': 'hs-1', 'alg': 'HS256', 'key': key})).describe()
    assert (d['kind'], d['shape'], d['kid'], d['key_bytes'], d['problem']) == ('hmac', 'json_hmac', 'hs-1', 43, None)
    _assert_safe(d, key)
    d = jwt_keys.parse_secret(key).describe()
    assert (d['kind'], d['shape'], d['kid'], d['alg']) == ('hmac', 'raw_hmac', None, 'HS256')
    assert d['thumbprint'] is None  # no hash of a secret key is ever published


@pytest.mark.parametrize('alg,length,ok', [('HS256', 31, False), ('HS256', 32, True), ('HS384', 47, False),
                                           ('HS384', 48, True), ('HS512', 63, False), ('HS512', 64, True)])
def test_hmac_minimum_length(alg, length, ok):
    d = jwt_keys.parse_secret(json.dumps({'alg': alg, 'secret': 'x' * length})).describe()
    assert d['parses'] is True
    if ok:
        assert d['problem'] is None
    else:
        assert 'needs at least' in d['problem'] and str(length) in d['problem']


def test_hmac_too_short_raw():
    d = jwt_keys.parse_secret('tooshort-secret').describe()
    assert d['kind'] == 'hmac' and d['key_bytes'] == 15
    assert d['problem'] == 'HMAC key is 15 bytes; HS256 needs at least 32 bytes (RFC 7518 section 3.2)'


def test_hmac_unknown_alg():
    d = jwt_keys.parse_secret(json.dumps({'alg': 'HS999', 'key': 'x' * 64})).describe()
    assert 'does not fit an HMAC key' in d['problem']


def test_binary_secret_is_hmac():
    d = jwt_keys.parse_secret(secret_binary=b'\xff\x00' * 20).describe()
    assert (d['kind'], d['shape'], d['key_bytes']) == ('hmac', 'binary_hmac', 40)


@pytest.mark.parametrize('value,fragment', [
    ('', 'empty'),
    ('   ', 'empty'),
    ('hello world this is not a key', 'neither a PEM key'),
    ('{"kid": "x", "key": ', 'not valid JSON'),
    ('["a"]', 'not an object'),  # JSON, never taken for a raw HMAC token
    ('"quoted"', 'JSON string'),
    ('{"foo": "bar"}', 'none of the key fields'),
    ('{"kid": 5, "key": "' + 'x' * 40 + '"}', 'field kid must be'),
    ('{"key": ""}', 'non-empty string'),
    ('{"private_key_pem": 42}', 'must be a PEM string'),
    ('-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n', 'does not load as a key'),
    ('-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n', 'no complete PEM block'),
    ('-----BEGIN ENCRYPTED PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END ENCRYPTED PRIVATE KEY-----', 'encrypted'),
    ('-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----', 'certificate'),
])
def test_garbage_is_a_problem_not_an_exception(value, fragment):
    parsed = jwt_keys.parse_secret(value)
    d = parsed.describe()
    assert d['parses'] is False, d
    assert fragment in d['problem']
    if value.strip():
        _assert_safe(d, 'Z2FyYmFnZQ')


def test_no_value():
    assert jwt_keys.parse_secret(None).problem == 'the secret version holds no value'


# --------------------------------------------------------------------------- generate


@pytest.mark.parametrize('kind', ['rsa', 'ec', 'hmac'])
def test_generate_bare(kind):
    value, parsed = jwt_keys.generate_secret(kind)
    assert isinstance(value, str)
    again = jwt_keys.parse_secret(value)
    assert again.describe() == parsed.describe()
    assert parsed.kind == kind and parsed.parses and parsed.problem is None
    if kind == 'rsa':
        assert parsed.bits == 2048 and parsed.shape == 'pem'
    elif kind == 'ec':
        assert parsed.curve == 'P-256' and parsed.alg == 'ES256'
    else:
        assert parsed.shape == 'raw_hmac' and parsed.key_bytes == 86  # 64 random bytes, base64url
        assert len(jwt_keys.b64url_decode(value)) == 64


def test_generate_keeps_shape_fields_and_size():
    big = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    template = jwt_keys.parse_secret(json.dumps({
        'kid': 'old', 'alg': 'PS256', 'private_key': _pem(big), 'public_key_pem': 'stale', 'issuer': 'svpms'}))
    value, parsed = jwt_keys.generate_secret('rsa', template)
    doc = json.loads(value)
    assert set(doc) == {'kid', 'alg', 'private_key', 'public_key_pem', 'issuer'}
    assert doc['issuer'] == 'svpms' and doc['alg'] == 'PS256' and doc['public_key_pem'].startswith('-----BEGIN PUBLIC')
    assert parsed.bits == 3072 and parsed.kid == parsed.thumbprint == doc['kid'] != 'old'


def test_generate_ec_keeps_curve():
    template = jwt_keys.parse_secret(json.dumps({'pem': _pem(ec.generate_private_key(ec.SECP384R1()))}))
    value, parsed = jwt_keys.generate_secret('ec', template)
    assert (parsed.curve, parsed.alg, json.loads(value)['alg']) == ('P-384', 'ES384', 'ES384')


def test_generate_hmac_json_keeps_field_and_alg():
    template = jwt_keys.parse_secret(json.dumps({'kid': 'old', 'alg': 'HS512', 'secret': 'y' * 64}))
    now = datetime.datetime(2026, 11, 27, tzinfo=datetime.timezone.utc)
    value, parsed = jwt_keys.generate_secret('hmac', template, now=now)
    doc = json.loads(value)
    assert set(doc) == {'kid', 'alg', 'secret'} and doc['alg'] == 'HS512'
    assert doc['kid'].startswith('hmac-20261127-') and parsed.kid == doc['kid']
    assert parsed.problem is None and parsed.key_bytes == 86


def test_generate_other_kind_from_json_hmac_template():
    template = jwt_keys.parse_secret(json.dumps({'kid': 'old', 'alg': 'HS256', 'key': 'short'}))
    value, parsed = jwt_keys.generate_secret('ec', template)
    doc = json.loads(value)
    assert set(doc) == {'kid', 'alg', 'private_key_pem'} and doc['alg'] == 'ES256'
    assert parsed.kind == 'ec' and parsed.problem is None


def test_generate_binary_stays_binary():
    template = jwt_keys.parse_secret(secret_binary=b'\xfe' * 64)
    value, parsed = jwt_keys.generate_secret('hmac', template)
    assert isinstance(value, bytes) and len(value) == 64 and parsed.shape == 'binary_hmac'


def test_generate_twice_differs():
    assert jwt_keys.generate_secret('ec')[1].kid != jwt_keys.generate_secret('ec')[1].kid


def test_generate_bad_kind():
    with pytest.raises(jwt_keys.JWTKeyError, match='one of rsa, ec, hmac'):
        jwt_keys.generate_secret('dsa')


# --------------------------------------------------------------------------- JWKS


def _jwk(key, kid=None):
    jwk = jwt_keys.public_jwk(key.public_key())
    if kid:
        jwk['kid'] = kid
    return jwk


def test_jwks_published_by_thumbprint_and_by_kid(rsa_key, ec_key):
    summary = jwt_keys.jwks_summary({'keys': [_jwk(rsa_key, 'some-other-label'), _jwk(ec_key)]})
    assert summary['kids'] == ['some-other-label']
    assert summary['problems'] == []
    # thumbprint match, whatever the published kid
    assert jwt_keys.published(jwt_keys.parse_secret(_pem(rsa_key)), summary) == (True, None)
    assert jwt_keys.published(jwt_keys.parse_secret(_pem(ec_key)), summary) == (True, None)


def test_jwks_not_published(rsa_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    summary = jwt_keys.jwks_summary({'keys': [_jwk(other, 'k2')]})
    assert jwt_keys.published(jwt_keys.parse_secret(_pem(rsa_key)), summary) == (False, None)


def test_jwks_kid_with_a_different_key_is_reported(rsa_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    summary = jwt_keys.jwks_summary({'keys': [_jwk(other, 'api-1')]})
    parsed = jwt_keys.parse_secret(json.dumps({'kid': 'api-1', 'private_key_pem': _pem(rsa_key)}))
    ok, problem = jwt_keys.published(parsed, summary)
    assert ok is False and 'different public key' in problem


def test_jwks_same_key_other_kid_is_reported(rsa_key):
    summary = jwt_keys.jwks_summary({'keys': [_jwk(rsa_key, 'api-2')]})
    parsed = jwt_keys.parse_secret(json.dumps({'kid': 'api-1', 'private_key_pem': _pem(rsa_key)}))
    ok, problem = jwt_keys.published(parsed, summary)
    assert ok is True and 'under kid api-2' in problem


def test_jwks_kid_only_entries(rsa_key):
    summary = jwt_keys.jwks_summary({'keys': [{'kid': 'api-1', 'kty': 'RSA'}]})
    parsed = jwt_keys.parse_secret(json.dumps({'kid': 'api-1', 'private_key_pem': _pem(rsa_key)}))
    assert jwt_keys.published(parsed, summary)[0] is True
    assert any('lacks' in p for p in summary['problems'])


def test_jwks_hmac_not_applicable():
    summary = jwt_keys.jwks_summary({'keys': []})
    assert jwt_keys.published(jwt_keys.parse_secret('x' * 40), summary) == (None, None)


def test_jwks_private_material_is_a_problem(rsa_key):
    numbers = rsa_key.private_numbers()
    leaked = dict(_jwk(rsa_key, 'leaky'), d=base64.urlsafe_b64encode(numbers.d.to_bytes(256, 'big')).decode())
    summary = jwt_keys.jwks_summary({'keys': [leaked, {'kty': 'oct', 'k': 'c2VjcmV0', 'kid': 'sym'}]})
    assert len(summary['problems']) == 2
    assert all('treat that key as leaked' in p for p in summary['problems'])
    assert leaked['d'] not in json.dumps(summary['problems'])


@pytest.mark.parametrize('doc', [None, [], {'keys': 'nope'}, {'jwks': []}, 'text'])
def test_not_a_jwks(doc):
    with pytest.raises(jwt_keys.JWTKeyError, match='not a JWKS'):
        jwt_keys.jwks_summary(doc)


# --------------------------------------------------------------------------- helpers


def test_stage_versions_and_dates():
    assert jwt_keys.stage_versions({'a': ['AWSPREVIOUS'], 'b': ['AWSCURRENT', 'AWSPENDING', 'custom']}) == {
        'AWSPREVIOUS': 'a', 'AWSCURRENT': 'b', 'AWSPENDING': 'b'}
    then = datetime.datetime(2026, 8, 1, tzinfo=datetime.timezone.utc)
    now = datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.timezone.utc)
    assert jwt_keys.age_days(then, now) == 118.5
    assert jwt_keys.iso_utc(then) == '2026-08-01T00:00:00Z'
    assert jwt_keys.age_days(None) is None and jwt_keys.iso_utc(None) is None


def test_redact(rsa_key):
    pem = _pem(rsa_key)
    text = 'failed for value %s and token abcdefgh1234 and cut -----BEGIN PRIVATE KEY-----MIIabc' % pem
    out = jwt_keys.redact(text, ['abcdefgh1234'])
    assert _pem_body(pem) not in out and 'abcdefgh1234' not in out and 'MIIabc' not in out
    assert '[PEM block removed]' in out and '********' in out
