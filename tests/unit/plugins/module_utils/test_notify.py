"""Retry-After parsing, the retry decision and the error texts of module_utils/notify.py.

The HTTP paths (429/5xx/4xx/unreachable against a real server) are covered by
tests/integration/test_notifier_modules.py; here are the pure rules, plus the
client's loop driven through an opener that answers from a list.
"""

import email.utils
import io
import socket
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils import notify

NOW = 1700000000.0


def no_jitter(attempt):
    return 0.5 * 2 ** attempt  # the full-jitter upper bound, for exact assertions


# --------------------------------------------------------------------------- parse_retry_after


@pytest.mark.parametrize('value,expected', [
    ('1', 1.0),
    ('120', 120.0),
    (' 7 ', 7.0),
    ('0', 0.0),
    ('1.5', 1.5),            # not RFC delta-seconds, accepted leniently
    ('-3', 0.0),             # never a negative wait
    (None, None),
    ('', None),
    ('soon', None),
    ('nan', None),
    ('inf', None),
])
def test_parse_retry_after_seconds(value, expected):
    assert notify.parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_http_date():
    future = email.utils.formatdate(NOW + 42, usegmt=True)    # 'Tue, 14 Nov 2023 22:14:02 GMT'
    assert notify.parse_retry_after(future, now=NOW) == pytest.approx(42.0)
    past = email.utils.formatdate(NOW - 600, usegmt=True)
    assert notify.parse_retry_after(past, now=NOW) == 0.0


def test_parse_retry_after_date_without_zone_is_utc():
    text = email.utils.formatdate(NOW + 10, usegmt=True).replace(' GMT', '')
    assert notify.parse_retry_after(text, now=NOW) == pytest.approx(10.0)


# --------------------------------------------------------------------------- plan_retry


@pytest.mark.parametrize('status', [429, 420, 500, 502, 503, 504, 599])
def test_rate_limits_and_5xx_are_retried_with_backoff(status):
    assert notify.plan_retry(status, None, 1, 4, backoff=no_jitter) == (notify.RETRY, 0.5)
    assert notify.plan_retry(status, None, 3, 4, backoff=no_jitter) == (notify.RETRY, 2.0)


@pytest.mark.parametrize('status', [400, 401, 403, 404, 409, 422, 301, 302])
def test_other_statuses_are_final(status):
    assert notify.plan_retry(status, '1', 1, 4) == (notify.GIVE_UP, None)


def test_no_retry_after_the_last_attempt():
    assert notify.plan_retry(503, '1', 4, 4) == (notify.GIVE_UP, None)
    assert notify.plan_retry(429, None, 1, 1) == (notify.GIVE_UP, None)
    assert notify.plan_retry(None, None, 2, 2) == (notify.GIVE_UP, None)


def test_retry_after_is_honoured_up_to_the_cap():
    assert notify.plan_retry(429, '1', 1, 4, max_retry_after=30) == (notify.RETRY, 1.0)
    assert notify.plan_retry(503, '30', 1, 4, max_retry_after=30) == (notify.RETRY, 30.0)
    date = email.utils.formatdate(NOW + 5, usegmt=True)
    action, delay = notify.plan_retry(429, date, 1, 4, now=NOW)
    assert action == notify.RETRY and delay == pytest.approx(5.0)


def test_retry_after_beyond_the_cap_means_do_not_wait():
    assert notify.plan_retry(429, '120', 1, 4, max_retry_after=30) == (notify.TOO_LONG, 120.0)
    assert notify.plan_retry(429, '31', 1, 4, max_retry_after=30) == (notify.TOO_LONG, 31.0)


def test_unparseable_retry_after_falls_back_to_backoff():
    assert notify.plan_retry(429, 'later', 2, 4, backoff=no_jitter) == (notify.RETRY, 1.0)


def test_connection_errors_use_backoff_and_ignore_retry_after():
    assert notify.plan_retry(None, '120', 1, 3, backoff=no_jitter) == (notify.RETRY, 0.5)


def test_default_backoff_is_full_jitter_within_the_bound():
    for attempt, bound in ((1, 0.5), (2, 1.0), (3, 2.0)):
        action, delay = notify.plan_retry(503, None, attempt, 10)
        assert action == notify.RETRY and 0 <= delay <= bound


# --------------------------------------------------------------------------- helpers


def test_error_detail_reads_every_api_shape():
    assert notify.error_detail({'status': 'invalid event', 'message': 'Event object is invalid',
                                'errors': ['bad routing key']}) == 'Event object is invalid; bad routing key'
    assert notify.error_detail({'error': {'message': 'Invalid Input Provided', 'code': 2001,
                                          'errors': ['From header missing']}}) == \
        'Invalid Input Provided; From header missing; code 2001'
    assert notify.error_detail({'ok': False, 'error': 'not_in_channel'}) == 'not_in_channel'
    assert notify.error_detail({'error': ["Name can't be blank"]}) == "Name can't be blank"
    assert notify.error_detail('<html>Bad Gateway</html>') == '<html>Bad Gateway</html>'
    assert notify.error_detail(None) == ''
    assert len(notify.error_detail('x' * 5000)) == notify.DETAIL_CHARS


def test_safe_url_drops_credentials_query_and_fragment():
    assert notify.safe_url('https://u:p@hooks.example.com/a/b?token=s3cret#x') == 'https://hooks.example.com/a/b'


def test_join_url_encodes_ids():
    assert notify.join_url('http://h/v1/', 'pages', 'p 1', 'incidents', '../x') == \
        'http://h/v1/pages/p%201/incidents/..%2Fx'


def test_check_base_url():
    assert notify.check_base_url('https://api.pagerduty.com', 'api_url') is None
    assert 'api_url' in notify.check_base_url('ftp://x', 'api_url')
    assert 'without a query string' in notify.check_base_url('https://x/api?token=1', 'api_url')


def test_redact_masks_every_secret_longest_first():
    assert notify.redact('token abc and abcdef', ['abc', 'abcdef', None, '']) == 'token ******** and ********'


# --------------------------------------------------------------------------- the client loop


class FakeResponse:
    def __init__(self, status, body=b'', headers=None):
        self.status = status
        self.headers = headers or {}
        self._body = io.BytesIO(body)

    def getcode(self):
        return self.status

    def read(self, size=-1):
        return self._body.read(size)

    def close(self):
        pass


def http_error(status, body=b'', headers=None):
    return HTTPError('http://x', status, 'error', headers or {}, io.BytesIO(body))


class ScriptedOpener:
    """An open_url-compatible callable answering from a list (responses or exceptions)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, url, method='GET', **kwargs):
        self.calls.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def client(opener, sleeps, **kwargs):
    kwargs.setdefault('max_attempts', 4)
    return notify.NotifyClient('Test API', opener=opener, sleep=sleeps.append, secrets=['s3cret-token'],
                               token_hint='token or env TEST_TOKEN', id_hint='page_id', **kwargs)


def test_client_retries_429_with_retry_after_then_returns_json():
    sleeps = []
    opener = ScriptedOpener(http_error(429, b'{}', {'Retry-After': '2'}),
                            FakeResponse(202, b'{"status": "success"}', {'Content-Type': 'application/json'}))
    status, body, headers = client(opener, sleeps).send_json('POST', 'http://x/v2/enqueue', {'a': 1},
                                                             idempotent=True)
    assert (status, body, headers['content-type']) == (202, {'status': 'success'}, 'application/json')
    assert sleeps == [2.0]
    assert opener.calls[0][2]['data'] == b'{"a":1}'
    assert opener.calls[0][2]['headers']['Content-Type'] == 'application/json; charset=utf-8'
    assert opener.calls[0][2]['timeout'] == notify.DEFAULT_TIMEOUT


def test_client_gives_up_on_404_at_once_with_the_hint():
    sleeps = []
    opener = ScriptedOpener(http_error(404, b'{"error": "Not found"}'))
    with pytest.raises(notify.NotifyError) as info:
        client(opener, sleeps).send_json('PATCH', 'http://x/pages/p/incidents/i?k=s3cret-token', {})
    err = info.value
    assert (err.status, err.kind, err.attempts, sleeps) == (404, notify.KIND_NOT_FOUND, 1, [])
    assert err.describe() == ('Test API: PATCH http://x/pages/p/incidents/i answered HTTP 404: Not found. '
                              'check the id/URL (page_id)')


def test_client_auth_failure_never_echoes_the_token():
    opener = ScriptedOpener(http_error(401, b'{"error": "bad token s3cret-token"}'))
    with pytest.raises(notify.NotifyError) as info:
        client(opener, []).send_json('GET', 'http://x/incidents')
    assert 's3cret-token' not in info.value.describe()
    assert 'check the token (token or env TEST_TOKEN)' in info.value.describe()


def test_client_refused_connection_is_retried_then_reported():
    sleeps = []
    refused = URLError(ConnectionRefusedError(111, 'Connection refused'))
    opener = ScriptedOpener(refused, refused, refused)
    with pytest.raises(notify.NotifyError) as info:
        client(opener, sleeps, max_attempts=3).send_json('POST', 'http://x/chat.postMessage', {})
    assert len(opener.calls) == 3 and len(sleeps) == 2
    assert info.value.kind == notify.KIND_UNREACHABLE and 'could not connect' in info.value.message


def test_client_does_not_retry_a_post_that_timed_out_after_sending():
    opener = ScriptedOpener(socket.timeout('timed out'), FakeResponse(200, b'{}'))
    with pytest.raises(notify.NotifyError) as info:
        client(opener, []).send_json('POST', 'http://x/chat.postMessage', {})
    assert len(opener.calls) == 1 and info.value.kind == notify.KIND_TIMEOUT


def test_client_retries_an_idempotent_request_that_timed_out():
    opener = ScriptedOpener(socket.timeout('timed out'), FakeResponse(200, b'{"ok": true}'))
    sleeps = []
    assert client(opener, sleeps).send_json('PUT', 'http://x/incidents/P1', {})[1] == {'ok': True}
    assert len(sleeps) == 1


def test_client_too_long_retry_after_fails_without_sleeping():
    sleeps = []
    opener = ScriptedOpener(http_error(429, b'', {'Retry-After': '3600'}))
    with pytest.raises(notify.NotifyError) as info:
        client(opener, sleeps, max_retry_after=30).send_json('POST', 'http://x/v2/enqueue', {})
    assert sleeps == [] and info.value.kind == notify.KIND_RATE_LIMITED
    assert 'Retry-After: 3600' in info.value.message and 'not waiting' in info.value.message
