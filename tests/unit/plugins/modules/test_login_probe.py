"""The pure parts of login_probe: error strings, token and kid extraction, reasons, the summary, validation.

The requests themselves are covered against a real server in tests/integration/test_login_probe.py.
"""

import base64
import json

import pytest

from ansible_collections.svpms.incident_response.plugins.modules import login_probe as lp

PASSWORD = 'Pr0beUserPassw0rdX7'


def b64url(doc):
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode()


def jwt(header):
    return '%s.%s.%s' % (b64url(header), b64url({'sub': 'probe'}), 'c2lnbmF0dXJl')


# --------------------------------------------------------------------------- error strings

@pytest.mark.parametrize('body, expected', [
    (b'{"error": "session_store_unavailable"}', 'session_store_unavailable'),
    (b'{"error": "invalid_token", "error_description": "The access token expired"}', 'invalid_token'),
    (b'{"error": "v1.auth-failed_2"}', 'v1.auth-failed_2'),
    (b'{"error": "' + b'a' * 64 + b'"}', 'a' * 64),
    (b'{"error": "' + b'a' * 65 + b'"}', None),                  # too long
    (b'{"error": "bad password: x"}', None),                      # characters outside the set
    (b'{"error": {"code": "x"}}', None),                          # not a string
    (b'{"message": "Internal Server Error"}', None),
    (b'["error"]', None),
    (b'<html>Internal Server Error</html>', None),
    (b'\xff\xfe', None),
    (b'', None),
    (None, None),
])
def test_error_code(body, expected):
    assert lp.error_code(body) == expected


def test_error_code_never_returns_a_secret_or_a_piece_of_one():
    token = 'opaque0123456789abcdef0123456789'
    assert lp.error_code(json.dumps({'error': PASSWORD}).encode(), [PASSWORD]) is None
    assert lp.error_code(json.dumps({'error': 'bad_' + PASSWORD}).encode(), [PASSWORD]) is None
    assert lp.error_code(json.dumps({'error': token[:12]}).encode(), [PASSWORD, token]) is None
    # a short common word is not "a piece" of a secret
    assert lp.error_code(b'{"error": "Passw"}', [PASSWORD]) == 'Passw'
    assert lp.error_code(b'{"error": "invalid_token"}', [PASSWORD, token]) == 'invalid_token'


# --------------------------------------------------------------------------- token and kid

@pytest.mark.parametrize('body, expected', [
    (b'{"access_token": "abc.def.ghi", "token_type": "Bearer"}', 'abc.def.ghi'),
    (b'{"access_token": ""}', None),
    (b'{"access_token": "   "}', None),
    (b'{"access_token": 12345}', None),
    (b'{"data": {"access_token": "x"}}', None),
    (b'not json', None),
    (b'[]', None),
])
def test_extract_token(body, expected):
    assert lp.extract_token(body, 'access_token') == expected


def test_token_kid_from_the_header_only():
    assert lp.token_kid(jwt({'alg': 'RS256', 'kid': 'svpms-2026-01'})) == 'svpms-2026-01'
    padded = jwt({'alg': 'ES256', 'kid': 'k'}).split('.')
    padded[0] += '=' * (-len(padded[0]) % 4)
    assert lp.token_kid('.'.join(padded)) == 'k'
    jwe = '%s.%s.%s.%s.%s' % (b64url({'alg': 'RSA-OAEP', 'enc': 'A256GCM', 'kid': 'enc-1'}), 'a', 'b', 'c', 'd')
    assert lp.token_kid(jwe) == 'enc-1'


@pytest.mark.parametrize('token', [
    'opaque0123456789abcdef',                 # not a JWT
    'a.b',                                    # two parts
    '.b.c',                                   # empty header
    '%s.b.c' % b64url({'alg': 'HS256'}),      # no kid
    '%s.b.c' % b64url({'kid': 42}),           # kid not a string
    '%s.b.c' % b64url({'kid': 'has space'}),  # kid not printable-without-space
    '%s.b.c' % b64url({'kid': 'k' * 129}),    # kid too long
    '%s.b.c' % b64url(['kid']),               # header not an object
    '%s.b.c' % b64url(b'\xff\xfe'),           # header not UTF-8
    'eyJ!!!.b.c',                             # not base64url
    None,
])
def test_token_kid_none(token):
    assert lp.token_kid(token) is None


def test_token_kid_never_a_secret():
    assert lp.token_kid(jwt({'kid': PASSWORD}), [PASSWORD]) is None


# --------------------------------------------------------------------------- reasons and summary

def http(status, latency=10.0):
    return dict(kind=lp.KIND_HTTP, status=status, latency_ms=latency, body=None, too_large=False)


def net(kind, latency=1.0):
    return dict(kind=kind, status=None, latency_ms=latency, body=None, too_large=False)


@pytest.mark.parametrize('stage, outcome, error, expected', [
    ('login', http(503), 'session_store_unavailable', 'login HTTP 503 session_store_unavailable'),
    ('login', http(302), None, 'login HTTP 302'),
    ('check', http(401), 'invalid_token', 'check HTTP 401 invalid_token'),
    ('login', net(lp.KIND_TIMEOUT), None, 'login timeout'),
    ('login', net(lp.KIND_REFUSED), None, 'login connection refused'),
    ('login', net(lp.KIND_CONNECTION), None, 'login connection error'),
    ('login', net(lp.KIND_DNS), None, 'login DNS error'),
    ('login', net(lp.KIND_TLS), None, 'login TLS error'),
    ('logout', net(lp.KIND_TIMEOUT), None, 'logout timeout'),
])
def test_failure_reason(stage, outcome, error, expected):
    assert lp.failure_reason(stage, outcome, error) == expected


def ok(n, latency, kid='k1'):
    return dict(attempt=n, ok=True, stage=None, reason=None, status=None, latency_ms=latency,
                outcomes=dict(login=http(200, latency / 2), check=http(200, latency / 2)), stage_failed={},
                kid=kid, logout_note=None)


def bad(n, stage, reason, outcome):
    outcomes = dict(login=outcome) if stage == 'login' else dict(login=http(200), check=outcome)
    return dict(attempt=n, ok=False, stage=stage, reason=reason, status=outcome['status'],
                latency_ms=outcome['latency_ms'], outcomes=outcomes, stage_failed={stage: True}, kid=None,
                logout_note=None)


def test_summarize_mixed_attempts():
    results = [
        ok(1, 40.0),
        bad(2, 'login', 'login HTTP 503 session_store_unavailable', http(503, 5.0)),
        bad(3, 'login', 'login HTTP 503 session_store_unavailable', http(503, 6.0)),
        ok(4, 80.0, kid='k2'),
        bad(5, 'check', 'check HTTP 401 invalid_token', http(401, 3.0)),
        bad(6, 'login', 'login timeout', net(lp.KIND_TIMEOUT, 500.0)),
        bad(7, 'login', 'login HTTP 503 session_store_unavailable', http(503, 7.0)),
        bad(8, 'login', 'login HTTP 503 session_store_unavailable', http(503, 8.0)),
        bad(9, 'login', 'login HTTP 503 session_store_unavailable', http(503, 9.0)),
        ok(10, 60.0, kid='k1'),
    ]
    summary = lp.summarize(list(reversed(results)))
    assert summary['attempts'] == 10 and summary['succeeded'] == 3 and summary['failed_attempts'] == 7
    assert summary['failure_rate_pct'] == 70.0
    assert summary['reachable'] is True and summary['error_kind'] is None
    assert summary['failure_reasons'] == {'login HTTP 503 session_store_unavailable': 5,
                                          'check HTTP 401 invalid_token': 1, 'login timeout': 1}
    # one sample per distinct reason first, then the earliest others; in attempt order
    assert [s['attempt'] for s in summary['sample_errors']] == [2, 3, 5, 6, 7]
    assert summary['sample_errors'][0] == dict(attempt=2, stage='login', status=503, latency_ms=5.0,
                                               reason='login HTTP 503 session_store_unavailable')
    assert summary['latency_p50_ms'] == 60.0 and summary['latency_p95_ms'] == 80.0
    assert summary['login']['requests'] == 10 and summary['login']['errors'] == 6
    assert summary['login']['status_counts'] == {'200': 4, '503': 5, 'timeout': 1}
    assert summary['check']['requests'] == 4 and summary['check']['errors'] == 1
    assert summary['check']['status_counts'] == {'200': 3, '401': 1}
    assert summary['token_kids'] == ['k1', 'k2']
    assert 'logout' not in summary
    line = lp.describe(summary)
    assert line.startswith('login probe: 7 of 10 attempts failed (70.0%): login HTTP 503 session_store_unavailable x5')
    assert 'k1, k2' in line


@pytest.mark.parametrize('kinds, error_kind', [
    ([lp.KIND_REFUSED] * 3, 'unreachable'),
    ([lp.KIND_DNS, lp.KIND_CONNECTION], 'unreachable'),
    ([lp.KIND_TIMEOUT, lp.KIND_TIMEOUT, lp.KIND_REFUSED], 'timeout'),
    ([lp.KIND_TLS, lp.KIND_TIMEOUT], 'tls'),
])
def test_nothing_answered(kinds, error_kind):
    results = [bad(n + 1, 'login', lp.failure_reason('login', net(k)), net(k)) for n, k in enumerate(kinds)]
    summary = lp.summarize(results)
    assert summary['reachable'] is False and summary['error_kind'] == error_kind
    assert summary['latency_p50_ms'] is None and summary['token_kids'] == []
    assert 'nothing answered (%s)' % error_kind in lp.describe(summary)


def test_logout_summary_notes_failures_without_failing_attempts():
    first, second = ok(1, 10.0), ok(2, 12.0)
    first['outcomes']['logout'] = http(204)
    second['outcomes']['logout'] = http(500)
    second['stage_failed'] = {'logout': True}
    second['logout_note'] = 'logout HTTP 500'
    summary = lp.summarize([first, second], logout_used=True)
    assert summary['succeeded'] == 2 and summary['failed_attempts'] == 0
    assert summary['logout']['requests'] == 2 and summary['logout']['errors'] == 1
    assert summary['logout']['status_counts'] == {'204': 1, '500': 1}
    assert summary['logout']['failure_reasons'] == {'logout HTTP 500': 1}


# --------------------------------------------------------------------------- validation

def params(**kwargs):
    base = dict(login_url='https://auth.example.test/login', check_url=None, logout_url=None, username='probe',
                password=PASSWORD, username_field='email', password_field='password', token_field='access_token',
                count=5, concurrency=1, timeout=5.0, expected_login_status=[200])
    base.update(kwargs)
    return base


def test_validate_accepts_defaults():
    assert lp.validate(params()) is None
    assert lp.validate(params(check_url='http://auth.example.test/me', logout_url='https://a.test/logout')) is None


def test_validate_never_echoes_embedded_credentials():
    for url in ('https://probe:%s@auth.example.test/login' % PASSWORD, 'http://probe:%s@/login' % PASSWORD):
        problem = lp.validate(params(login_url=url))
        assert problem.startswith('login_url ') and PASSWORD not in problem, problem
