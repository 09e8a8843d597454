"""module_utils/stripe_api.py: key hints, error classification, retry rules, and the pure findings.

The findings (webhook endpoints, undelivered events, key status) are tested
on fixtures written in the REAL Stripe API's response shapes, as documented
on docs.stripe.com (the list object, webhook_endpoint, event with
``pending_webhooks``, the error object, balance): the sandbox stand-in adds
those routes itself, so the shapes the real API returns are pinned here.

``StripeClient``'s retry loop is driven through a stand-in for the
third-party ``requests.Session`` that answers from a list (the real HTTP
paths, against a loopback server, are in
tests/integration/test_stripe_info_modules.py), with an injected clock and
sleep so the waits and the wall-time bound are exact.
"""

import copy
import json

import pytest
import requests

from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_api

KEY = 'sk_live_51HxQpZLkdIwHu7ixSECRETsecretSECRETsecret4242'
RK_KEY = 'rk_test_51HxQpZLkdIwHu7ixRESTRICTEDrestricted9876'
NOW = 1767225600  # 2026-01-01T00:00:00Z
HOUR = 3600

# --------------------------------------------------------------------------- real API shapes (docs.stripe.com)

# GET /v1/webhook_endpoints (https://docs.stripe.com/api/webhook_endpoints/list): a list object of
# webhook_endpoint objects. `secret` is only ever returned by the create call, never by list.
WEBHOOK_ENDPOINTS_LIST = {
    'object': 'list',
    'url': '/v1/webhook_endpoints',
    'has_more': False,
    'data': [
        {
            'id': 'we_1PdR5uLkdIwHu7ixOurs0001',
            'object': 'webhook_endpoint',
            'api_version': '2024-06-20',
            'application': None,
            'created': 1704067200,
            'description': 'svpms payments',
            'enabled_events': ['payment_intent.succeeded', 'payment_intent.payment_failed', 'charge.refunded'],
            'livemode': True,
            'metadata': {},
            'status': 'disabled',
            'url': 'https://api.svpms.example.com/webhooks/stripe',
        },
        {
            'id': 'we_1Mr5jULkdIwHu7ixAnalytics2',
            'object': 'webhook_endpoint',
            'api_version': None,
            'application': None,
            'created': 1680122196,
            'description': None,
            'enabled_events': ['*'],
            'livemode': True,
            'metadata': {},
            'status': 'enabled',
            'url': 'https://analytics.svpms.example.com/stripe',
        },
    ],
}


def event(evt_id, etype, age_hours, pending=1):
    """An event object as GET /v1/events returns it (https://docs.stripe.com/api/events/object)."""
    return {
        'id': evt_id,
        'object': 'event',
        'api_version': '2024-06-20',
        'created': int(NOW - age_hours * HOUR),
        'data': {'object': {'id': 'pi_3MtwBwLkdIwHu7ix28a3tqPa', 'object': 'payment_intent', 'amount': 2000,
                            'currency': 'usd', 'status': 'succeeded'}},
        'livemode': True,
        'pending_webhooks': pending,
        'request': {'id': 'req_8VmFk3yVhtGq1t', 'idempotency_key': '8a0d2f4b-5c9e-4c1e-9d7a-3e0b2b8f9a11'},
        'type': etype,
    }


# GET /v1/events?delivery_success=false&created[gte]=... : the events not yet delivered to at least one
# endpoint (still retried, or given up), newest first as Stripe lists them.
FAILED_EVENTS_LIST = {
    'object': 'list',
    'url': '/v1/events',
    'has_more': False,
    'data': [
        event('evt_new', 'payment_intent.succeeded', 1.0, pending=2),
        event('evt_mid', 'payment_intent.succeeded', 30.25),
        event('evt_soon2', 'charge.refunded', 63.5),
        event('evt_soon1', 'payment_intent.succeeded', 70.0),
        event('evt_gone', 'payment_intent.payment_failed', 80.0, pending=1),
    ],
}

# The error object (https://docs.stripe.com/api/errors) of a rolled/expired key.
REVOKED_KEY_ERROR = {'error': {
    'code': 'api_key_expired',
    'doc_url': 'https://stripe.com/docs/error-codes/api-key-expired',
    'message': 'Expired API Key provided: sk_live_*********************************4242',
    'type': 'invalid_request_error',
}}
INVALID_KEY_ERROR = {'error': {
    'message': 'Invalid API Key provided: sk_live_*********************************4242',
    'type': 'invalid_request_error',
}}
RESTRICTED_ERROR = {'error': {
    'message': ("The provided key 'rk_test_*********************************9876' does not have the required "
                "permissions for this endpoint on account 'acct_1HxQpZLkdIwHu7ix'."),
    'type': 'invalid_request_error',
}}
BALANCE = {'object': 'balance', 'livemode': True,
           'available': [{'amount': 666670, 'currency': 'usd', 'source_types': {'card': 666670}}],
           'pending': [{'amount': 61414, 'currency': 'usd', 'source_types': {'card': 61414}}]}


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize('key,hint', [
    (KEY, 'sk_live_\u20264242'),
    ('sk_test_sandbox_0000000000000000000000000000', 'sk_test_\u20260000'),
    (RK_KEY, 'rk_test_\u20269876'),
    ('pk_test_TYooMQauvdEDq54NiTphI7jx', 'pk_test_\u2026I7jx'),
    ('sk_test_short', 'sk_test_\u2026'),              # too short to show any of it
    ('sk_live_abcdefghijk', 'sk_live_\u2026'),        # fewer than 12 characters after the prefix
    ('0123456789abcdefghij', '\u2026ghij'),           # not a Stripe prefix: the last 4 only
    ('abc', '\u2026'),
    ('', '\u2026'),
    (None, '\u2026'),
])
def test_key_hint_shows_at_most_the_prefix_and_4_characters(key, hint):
    assert stripe_api.key_hint(key) == hint
    if key:
        shown = hint.split('\u2026')[1]
        assert len(shown) <= 4 and (not shown or key.endswith(shown))


@pytest.mark.parametrize('key,expected', [
    (KEY, ('secret', 'live')),
    ('sk_test_x', ('secret', 'test')),
    (RK_KEY, ('restricted', 'test')),
    ('rk_live_x', ('restricted', 'live')),
    ('pk_live_x', ('publishable', 'live')),
    ('whsec_abc', ('unknown', None)),
    ('sk_prod_x', ('unknown', None)),
    ('', ('unknown', None)),
])
def test_key_kind(key, expected):
    assert stripe_api.key_kind(key) == expected


def test_check_key_messages_never_hold_the_key():
    assert stripe_api.check_key(KEY) is None
    assert 'empty' in stripe_api.check_key('')
    assert 'empty' in stripe_api.check_key('   ')
    assert 'STRIPE_API_KEY' in stripe_api.check_key(None)
    for bad in (KEY + '\n', KEY[:20] + ' ' + KEY[20:], KEY + '\x00', KEY + '\u00e9'):
        message = stripe_api.check_key(bad)
        assert message and message.startswith('api_key ')
        assert KEY not in message and KEY[8:30] not in message


def test_redact_and_redact_data():
    text = 'Bearer %s failed, again %s' % (KEY, KEY)
    assert stripe_api.redact(text, KEY) == 'Bearer sk_live_\u20264242 failed, again sk_live_\u20264242'
    data = {'a': [KEY, {'b': 'x%sy' % KEY}], KEY: 1, 'n': 3, 'none': None}
    out = stripe_api.redact_data(data, KEY)
    assert KEY not in json.dumps(out)
    assert out['n'] == 3 and out['none'] is None and out['a'][1]['b'] == 'xsk_live_\u20264242y'
    assert stripe_api.redact(None, KEY) == ''
    assert stripe_api.redact_data(data, '') is data


# --------------------------------------------------------------------------- errors


def test_parse_error_body_real_shape():
    assert stripe_api.parse_error_body(REVOKED_KEY_ERROR) == dict(
        type='invalid_request_error', code='api_key_expired',
        message='Expired API Key provided: sk_live_*********************************4242', param=None)
    assert stripe_api.parse_error_body({'error': {'type': 'invalid_request_error', 'param': 'created',
                                                  'message': 'Invalid timestamp'}})['param'] == 'created'
    assert stripe_api.parse_error_body('<html>Bad gateway</html>')['message'] == '<html>Bad gateway</html>'
    assert stripe_api.parse_error_body({'detail': 'nope'})['message'] == '{"detail": "nope"}'
    assert stripe_api.parse_error_body(None) == dict(type=None, code=None, message=None, param=None)
    long_text = stripe_api.parse_error_body('x' * 5000)['message']
    assert len(long_text) == stripe_api.DETAIL_CHARS and long_text.endswith('...')


@pytest.mark.parametrize('status,kind', [
    (400, 'bad_request'), (401, 'invalid_key'), (403, 'permission'), (404, 'not_found'), (429, 'rate_limited'),
    (500, 'server_error'), (502, 'server_error'), (503, 'server_error'), (599, 'server_error'),
    (301, 'api_error'), (402, 'api_error'), (409, 'api_error'),
])
def test_kind_for_status(status, kind):
    assert stripe_api.kind_for_status(status) == kind


def test_stripe_error_text_and_result():
    err = stripe_api.StripeError('invalid_key', status=401, message='Expired API Key provided: sk_live_****4242',
                                 code='api_key_expired', attempts=1, where='GET /v1/balance')
    assert str(err) == err.describe()
    assert err.describe().startswith('Stripe API GET /v1/balance answered HTTP 401 (api_key_expired): Expired API')
    assert 'Stripe refuses the API key' in err.describe()
    assert err.reachable and err.to_result() == dict(reachable=True, error_kind='invalid_key', http_status=401,
                                                     error_code='api_key_expired', attempts=1)
    down = stripe_api.StripeError('unreachable', message='could not connect: refused', attempts=4)
    assert not down.reachable and '[after 4 attempts]' in down.describe()
    for kind in ('timeout', 'tls'):
        assert not stripe_api.StripeError(kind).reachable


@pytest.mark.parametrize('kind,code,status', [
    ('invalid_key', 'api_key_expired', 'revoked'),
    ('invalid_key', None, 'invalid'),
    ('invalid_key', 'invalid_api_key', 'invalid'),
    ('permission', None, 'restricted'),
    ('unreachable', None, 'unknown'),
    ('server_error', None, 'unknown'),
    ('rate_limited', None, 'unknown'),
])
def test_key_status_from_error(kind, code, status):
    assert stripe_api.key_status_from_error(stripe_api.StripeError(kind, code=code)) == status


def test_error_problem_sentences():
    hint = stripe_api.key_hint(KEY)
    revoked = stripe_api.StripeError('invalid_key', 401, 'Expired API Key', code='api_key_expired')
    text = stripe_api.error_problem(revoked, hint, 'checking the key')
    assert 'expired or revoked (HTTP 401 api_key_expired)' in text and 'Roll a new secret key' in text
    assert hint in text
    assert 'mistyped' in stripe_api.error_problem(stripe_api.StripeError('invalid_key', 401, 'x'), hint, 'x')
    assert 'no permission for listing events (HTTP 403' in stripe_api.error_problem(
        stripe_api.StripeError('permission', 403, 'x'), hint, 'listing events')
    assert 'Could not reach the Stripe API' in stripe_api.error_problem(
        stripe_api.StripeError('timeout', message='no answer within 2s'), hint, 'x')
    assert 'rate limits' in stripe_api.error_problem(stripe_api.StripeError('rate_limited', 429, 'x'), hint, 'x')
    assert 'status.stripe.com' in stripe_api.error_problem(stripe_api.StripeError('server_error', 503, 'x'), hint,
                                                           'x')


# --------------------------------------------------------------------------- retry rules


def upper(_low, high):
    return high   # the full-jitter upper bound, for exact assertions


def test_backoff_is_full_jitter_capped():
    assert [stripe_api.backoff_delay(n, rand=upper) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert stripe_api.backoff_delay(3, rand=lambda low, high: low) == 0
    for n in range(1, 10):
        assert 0 <= stripe_api.backoff_delay(n) <= 5.0


@pytest.mark.parametrize('status,header,expected', [
    (429, None, True), (500, None, True), (503, None, True), (400, None, False), (401, None, False),
    (403, None, False), (404, None, False), (409, None, False),
    (503, 'false', False),   # Stripe says a retry would not help (its libraries obey this too)
    (409, 'true', True),     # a lock timeout Stripe asks to retry
    (429, 'TRUE', True), (500, 'maybe', True),
])
def test_is_retryable_status(status, header, expected):
    assert stripe_api.is_retryable_status(status, header) is expected


def test_plan_wait_honours_retry_after_up_to_the_cap():
    assert stripe_api.plan_wait(1, '2', max_retry_after=10) == (2.0, 2.0)
    assert stripe_api.plan_wait(1, '10', max_retry_after=10) == (10.0, 10.0)
    assert stripe_api.plan_wait(1, '11', max_retry_after=10) == (None, 11.0)   # too long: not waited for
    assert stripe_api.plan_wait(1, 'Wed, 21 Oct 2015 07:28:00 GMT', now=1445412480 - 3) == (3.0, 3.0)
    assert stripe_api.plan_wait(2, None, rand=upper) == (1.0, None)
    assert stripe_api.plan_wait(2, 'soon', rand=upper) == (1.0, None)           # unparseable: backoff


def test_default_max_time():
    assert stripe_api.default_max_time(10, 3) == 70.0
    assert stripe_api.default_max_time(2, 0) == 2.0
    assert stripe_api.default_max_time(1, 2, max_retry_after=1) == 3 + 2 * stripe_api.BACKOFF_CAP


def test_encode_params_is_stripes_form_encoding():
    assert stripe_api.encode_params({'delivery_success': False, 'created': {'gte': 5, 'lt': 9},
                                     'types': ['a.b', 'c.d'], 'limit': 100, 'skip': None}) == [
        ('delivery_success', 'false'), ('created[gte]', '5'), ('created[lt]', '9'), ('types[0]', 'a.b'),
        ('types[1]', 'c.d'), ('limit', '100')]
    assert stripe_api.encode_params(None) == []


# --------------------------------------------------------------------------- options


def test_check_params():
    good = dict(api_key=KEY, api_url='https://api.stripe.com', timeout=10.0)
    assert stripe_api.check_params(good) == []
    assert stripe_api.check_params(dict(good, api_url='http://127.0.0.1:8420')) == []
    assert stripe_api.check_params(dict(good, api_url='http://[::1]:8420/')) == []
    assert stripe_api.check_params(dict(good, api_url='http://localhost:8420')) == []
    [msg] = stripe_api.check_params(dict(good, api_url='http://api.stripe.com'))
    assert msg.startswith('api_url must use https://')
    [msg] = stripe_api.check_params(dict(good, api_url='ftp://x'))
    assert msg.startswith('api_url')
    [msg] = stripe_api.check_params(dict(good, api_url='https://user:pw@api.stripe.com'))
    assert msg.startswith('api_url') and 'pw' not in msg
    for bad in (0, -1, 61, float('nan')):
        [msg] = stripe_api.check_params(dict(good, timeout=bad))
        assert msg.startswith('timeout must be more than 0 and at most 60')
    assert len(stripe_api.check_params(dict(good, api_key='', timeout=0))) == 2


def test_argument_spec():
    spec = stripe_api.stripe_argument_spec()
    assert spec['api_key']['no_log'] is True and spec['api_key']['required'] is True
    assert spec['api_key']['fallback'][1] == ['STRIPE_API_KEY']
    assert spec['api_url']['default'] == 'https://api.stripe.com'
    assert spec['timeout']['default'] == 10 and spec['validate_certs']['default'] is True
    assert stripe_api.stripe_argument_spec() is not spec


# --------------------------------------------------------------------------- webhook endpoints (real shapes)


def test_normalize_url():
    n = stripe_api.normalize_url
    assert n('HTTPS://API.svpms.example.com:443/webhooks/stripe/') == 'https://api.svpms.example.com/webhooks/stripe'
    assert n('http://127.0.0.1:8080/hook') == 'http://127.0.0.1:8080/hook'
    assert n('http://127.0.0.1:80/hook') == 'http://127.0.0.1/hook'
    assert n('https://x.example/hook?tenant=1') == 'https://x.example/hook?tenant=1'
    assert n('https://x.example/Hook') != n('https://x.example/hook')   # paths are case-sensitive


def test_endpoint_disabled_needs_a_replay():
    found = stripe_api.endpoint_findings(WEBHOOK_ENDPOINTS_LIST['data'],
                                         'https://api.svpms.example.com:443/webhooks/stripe/')
    assert found['endpoint_found'] is True and found['endpoint_enabled'] is False
    assert found['endpoints_total'] == 2
    assert found['endpoints'] == [dict(
        id='we_1PdR5uLkdIwHu7ixOurs0001', url='https://api.svpms.example.com/webhooks/stripe', status='disabled',
        enabled_events=['payment_intent.succeeded', 'payment_intent.payment_failed', 'charge.refunded'],
        api_version='2024-06-20', description='svpms payments', livemode=True, created='2024-01-01T00:00:00Z')]
    [problem] = found['problems']
    assert 'we_1PdR5uLkdIwHu7ixOurs0001' in problem and 'is disabled' in problem
    assert 'receives nothing' in problem and 'events during the gap need a replay' in problem


def test_endpoint_enabled_is_fine():
    eps = copy.deepcopy(WEBHOOK_ENDPOINTS_LIST['data'])
    eps[0]['status'] = 'enabled'
    found = stripe_api.endpoint_findings(eps, 'https://api.svpms.example.com/webhooks/stripe')
    assert (found['endpoint_found'], found['endpoint_enabled'], found['problems']) == (True, True, [])


def test_no_endpoint_for_our_url():
    found = stripe_api.endpoint_findings(WEBHOOK_ENDPOINTS_LIST['data'], 'https://api.svpms.example.com/hooks/x')
    assert found['endpoint_found'] is False and found['endpoint_enabled'] is None and found['endpoints'] == []
    [problem] = found['problems']
    assert problem.startswith('No Stripe webhook endpoint points at our URL https://api.svpms.example.com/hooks/x')
    assert 'https://analytics.svpms.example.com/stripe (enabled)' in problem and 'replay' in problem
    assert 'none' in stripe_api.endpoint_findings([], 'https://a.example/h')['problems'][0]


def test_duplicate_enabled_endpoints():
    eps = copy.deepcopy(WEBHOOK_ENDPOINTS_LIST['data'])
    eps[0]['status'] = 'enabled'
    eps.append(dict(eps[0], id='we_dup'))
    [problem] = stripe_api.endpoint_findings(eps, eps[0]['url'])['problems']
    assert '2 enabled webhook endpoints' in problem and 'delivered 2 times' in problem


def test_without_endpoint_url_every_endpoint_is_reported():
    found = stripe_api.endpoint_findings(WEBHOOK_ENDPOINTS_LIST['data'])
    assert [e['id'] for e in found['endpoints']] == ['we_1PdR5uLkdIwHu7ixOurs0001', 'we_1Mr5jULkdIwHu7ixAnalytics2']
    assert found['endpoint_found'] is None and found['endpoint_enabled'] is None
    [problem] = found['problems']
    assert 'we_1PdR5uLkdIwHu7ixOurs0001' in problem and 'disabled' in problem


def test_endpoint_summary_never_returns_a_secret():
    ep = dict(WEBHOOK_ENDPOINTS_LIST['data'][0], secret='whsec_abcdefABCDEF0123456789')  # the create answer
    assert 'whsec_' not in json.dumps(stripe_api.endpoint_summary(ep))


# --------------------------------------------------------------------------- undelivered events (real shapes)


def test_failed_event_findings_counts_and_deadlines():
    out = stripe_api.failed_event_findings(FAILED_EVENTS_LIST['data'], NOW, 72)
    assert out['failed_events'] == 5
    assert out['failed_events_by_type'] == {'payment_intent.succeeded': 3, 'charge.refunded': 1,
                                            'payment_intent.payment_failed': 1}
    assert out['oldest_failed_age_hours'] == 80.0
    assert out['pending_webhooks'] == 6
    assert (out['expiring_soon'], out['retries_exhausted'], out['events_truncated']) == (2, 1, False)
    closest = out['closest_to_expiry']
    assert [e['id'] for e in closest] == ['evt_soon1', 'evt_soon2', 'evt_mid', 'evt_new']   # oldest first
    assert closest[0] == dict(id='evt_soon1', type='payment_intent.succeeded', created='2025-12-29T02:00:00Z',
                              age_hours=70.0, hours_left=2.0, pending_webhooks=1)
    assert [e['hours_left'] for e in closest] == [2.0, 8.5, 41.8, 71.0]
    failed, soon, gone = out['problems']
    assert failed.startswith('5 events of the last 72 h were not delivered to at least one webhook endpoint')
    assert 'payment_intent.succeeded 3' in failed and 'pending_webhooks: 6' in failed
    assert soon.startswith('2 failed events are within 12 h of Stripe giving up')
    assert 'closest evt_soon1 payment_intent.succeeded, 2.0 h left' in soon and 'replay them now' in soon
    assert gone.startswith('1 failed event is older than 72 h') and 'evt_gone' in gone


def test_failed_event_findings_none():
    out = stripe_api.failed_event_findings([], NOW, 72)
    assert out == dict(failed_events=0, failed_events_by_type={}, oldest_failed_age_hours=None, pending_webhooks=0,
                       expiring_soon=0, retries_exhausted=0, closest_to_expiry=[], events_truncated=False,
                       problems=[])


def test_failed_event_findings_truncated_and_odd_items():
    events = FAILED_EVENTS_LIST['data'][:2] + [FAILED_EVENTS_LIST['data'][0], 'junk',
                                               dict(event('evt_nodate', 'x.y', 1), created=None, pending_webhooks=None)]
    out = stripe_api.failed_event_findings(events, NOW, 24, truncated=True, max_events=3)
    assert out['failed_events'] == 3            # duplicate id and a non-object dropped
    assert out['events_truncated'] is True and out['pending_webhooks'] == 3
    assert [e['id'] for e in out['closest_to_expiry']] == ['evt_mid', 'evt_new']   # no date: not ranked
    assert out['problems'][0].startswith('At least 3 events of the last 24 h')
    assert out['problems'][-1].startswith('Read only 3 failed events (max_events)')


def test_failed_event_top_is_bounded():
    many = [event('evt_%03d' % i, 't.x', i * 0.5) for i in range(40)]
    out = stripe_api.failed_event_findings(many, NOW, 72, top=10)
    assert len(out['closest_to_expiry']) == 10 and out['closest_to_expiry'][0]['id'] == 'evt_039'


def test_iso_utc():
    assert stripe_api.iso_utc(1704067200) == '2024-01-01T00:00:00Z'
    assert stripe_api.iso_utc(None) is None and stripe_api.iso_utc(True) is None and stripe_api.iso_utc('1') is None


# --------------------------------------------------------------------------- the client's loop


class FakeResponse:
    """What the client reads of a requests.Response."""

    def __init__(self, status, body=None, headers=None):
        self.status_code = status
        raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b''
        self._raw = raw
        self.headers = dict(headers or {})
        self.closed = False

    def iter_content(self, size):
        for i in range(0, len(self._raw), size):
            yield self._raw[i:i + size]

    def close(self):
        self.closed = True


class FakeSession:
    """Stands in for the third-party requests.Session: answers (or raises) from a list, records the calls."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, **kwargs):
        prepared = requests.Request(method, url, params=kwargs.get('params')).prepare()
        kwargs['auth'](prepared)
        self.calls.append(dict(method=method, url=url, prepared=prepared, **kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            answer.request = prepared   # as requests does: the exception carries the request and its headers
            raise answer
        return answer


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def client(*answers, **kwargs):
    clock = FakeClock()
    session = FakeSession(*answers)
    kwargs.setdefault('rand', upper)
    c = stripe_api.StripeClient(KEY, api_url='https://api.stripe.com/', timeout=10, session=session,
                                sleep=clock.sleep, clock=clock, **kwargs)
    return c, session, clock


def assert_no_key(*things):
    for thing in things:
        text = thing if isinstance(thing, str) else json.dumps(thing, default=str)
        assert KEY not in text
        assert KEY[8:-4] not in text


def test_get_sends_bearer_version_and_no_key_elsewhere():
    c, session, clock = client(FakeResponse(200, BALANCE, {'Request-Id': 'req_123'}))
    assert c.get('/v1/balance') == BALANCE
    [call] = session.calls
    assert call['url'] == 'https://api.stripe.com/v1/balance' and call['method'] == 'GET'
    assert call['prepared'].headers['Authorization'] == 'Bearer ' + KEY
    assert call['headers']['Stripe-Version'] == '2024-06-20'
    assert call['timeout'] == (10.0, 10.0) and call['allow_redirects'] is False and call['verify'] is True
    assert KEY not in call['url'] and call['params'] is None
    assert c.last['attempts'] == 1 and c.last['status'] == 200 and c.last['request_id'] == 'req_123'
    assert clock.slept == []
    assert_no_key(repr(c), repr(call['auth']), c.last)


def test_401_revoked_is_final_and_clean():
    body = copy.deepcopy(REVOKED_KEY_ERROR)
    body['error']['message'] = 'Expired API Key provided: %s' % KEY   # even if Stripe echoed the whole key
    c, session, clock = client(FakeResponse(401, body))
    with pytest.raises(stripe_api.StripeError) as info:
        c.get('/v1/balance')
    err = info.value
    assert (err.kind, err.status, err.code, err.attempts) == ('invalid_key', 401, 'api_key_expired', 1)
    assert len(session.calls) == 1 and clock.slept == []
    assert 'sk_live_\u20264242' in err.describe()
    assert_no_key(str(err), err.describe(), err.message, err.to_result(), repr(err.args))
    assert err.__cause__ is None and err.__context__ is None


def test_429_retry_after_then_200():
    c, session, clock = client(FakeResponse(429, {'error': {'type': 'rate_limit_error', 'message': 'Too many'}},
                                            {'Retry-After': '2'}),
                               FakeResponse(200, BALANCE))
    assert c.get('/v1/balance') == BALANCE
    assert len(session.calls) == 2 and clock.slept == [2.0] and c.last['waits'] == [2.0]
    assert c.last['attempts'] == 2


def test_503_backoff_then_200():
    c, session, clock = client(FakeResponse(503, b'upstream down'), FakeResponse(502, None), FakeResponse(200, {}))
    assert c.get('/v1/balance') == {}
    assert clock.slept == [0.5, 1.0]


def test_retry_after_too_long_is_not_waited_for():
    c, session, clock = client(FakeResponse(429, {'error': {'message': 'slow down'}}, {'Retry-After': '120'}))
    with pytest.raises(stripe_api.StripeError) as info:
        c.get('/v1/balance')
    assert info.value.kind == 'rate_limited' and clock.slept == [] and len(session.calls) == 1
    assert 'asked to retry after 120s (Retry-After), more than the 10s' in info.value.describe()


def test_should_retry_false_stops_a_5xx():
    c, session, _clock = client(FakeResponse(500, {'error': {'type': 'api_error', 'message': 'boom'}},
                                             {'Stripe-Should-Retry': 'false'}))
    with pytest.raises(stripe_api.StripeError) as info:
        c.get('/v1/balance')
    assert info.value.kind == 'server_error' and len(session.calls) == 1


def test_retries_are_bounded():
    answers = [FakeResponse(503, None) for _i in range(10)]
    c, session, clock = client(*answers)
    with pytest.raises(stripe_api.StripeError) as info:
        c.get('/v1/balance')
    assert len(session.calls) == 4 and info.value.attempts == 4 and '[after 4 attempts]' in str(info.value)
    assert clock.slept == [0.5, 1.0, 2.0]


def test_wall_time_bound_stops_retrying():
    answers = [FakeResponse(429, None, {'Retry-After': '8'}) for _i in range(10)]
    c, session, clock = client(*answers, max_time=20)
    with pytest.raises(stripe_api.StripeError) as info:
        c.get('/v1/balance')
    assert clock.slept == [8.0, 8.0]          # a third wait would end after the 20 s bound
    assert 'no time left for another attempt within the 20s bound' in str(info.value)
    assert clock.now - 1000.0 <= 20


@pytest.mark.parametrize('exc,kind,retried', [
    (requests.exceptions.ConnectionError('Max retries exceeded: [Errno 111] Connection refused (%s)' % KEY),
     'unreachable', True),
    (requests.exceptions.ConnectTimeout('connect timed out'), 'timeout', True),
    (requests.exceptions.ReadTimeout('read timed out'), 'timeout', True),          # a GET is idempotent
    (requests.exceptions.SSLError('certificate verify failed for %s' % KEY), 'tls', False),
    (requests.exceptions.InvalidURL('bad url'), 'api_error', False),
    (RuntimeError('odd %s' % KEY), 'api_error', False),
])
def test_connection_failures_are_typed_retried_and_clean(exc, kind, retried):
    answers = [exc] * 4
    c, session, clock = client(*answers)
    with pytest.raises(stripe_api.StripeError) as info:
        c.get('/v1/balance')
    err = info.value
    assert err.kind == kind and err.status is None
    assert len(session.calls) == (4 if retried else 1)
    assert err.reachable is (kind not in ('unreachable', 'timeout', 'tls'))
    assert 'https://api.stripe.com' in err.describe()
    assert_no_key(str(err), err.describe(), err.to_result(), c.last)
    assert err.__cause__ is None and err.__context__ is None


def test_post_timeout_without_idempotency_key_is_not_retried():
    c, session, _clock = client(requests.exceptions.ReadTimeout('read timed out'), FakeResponse(200, {}))
    with pytest.raises(stripe_api.StripeError):
        c.request('POST', '/v1/webhook_endpoints/we_1', data={'disabled': False})
    assert len(session.calls) == 1
    c, session, _clock = client(requests.exceptions.ReadTimeout('read timed out'), FakeResponse(200, {'id': 'x'}))
    assert c.request('POST', '/v1/webhook_endpoints/we_1', data={'disabled': False}, idempotency_key='k1') == {
        'id': 'x'}
    assert session.calls[1]['headers']['Idempotency-Key'] == 'k1' and session.calls[1]['data'] == [
        ('disabled', 'false')]


def test_non_json_2xx_and_redirect():
    c, _session, _clock = client(FakeResponse(200, b'<html>captive portal</html>'))
    with pytest.raises(stripe_api.StripeError) as info:
        c.get('/v1/balance')
    assert info.value.kind == 'server_error' and 'not a JSON object' in str(info.value)
    c, _session, _clock = client(FakeResponse(301, b'', {'Location': 'https://elsewhere.example/v1/balance?x=1'}))
    with pytest.raises(stripe_api.StripeError) as info:
        c.get('/v1/balance')
    assert info.value.kind == 'api_error' and 'redirect to https://elsewhere.example/v1/balance, not followed' in str(
        info.value)


def page(ids, has_more):
    return FakeResponse(200, {'object': 'list', 'url': '/v1/events', 'has_more': has_more,
                              'data': [event(i, 't.x', 1) for i in ids]})


def test_list_all_pages_with_starting_after():
    c, session, _clock = client(page(['evt_1', 'evt_2'], True), page(['evt_3'], False))
    items = c.list_all('/v1/events', {'delivery_success': False, 'created': {'gte': 5}}, max_items=500)
    assert [e['id'] for e in items] == ['evt_1', 'evt_2', 'evt_3'] and items.truncated is False and items.pages == 2
    first, second = [dict(call['params']) for call in session.calls]
    assert first == {'delivery_success': 'false', 'created[gte]': '5', 'limit': '100'}
    assert second == dict(first, starting_after='evt_2')


def test_list_all_is_bounded_by_max_items():
    c, session, _clock = client(page(['evt_1', 'evt_2'], True), page(['evt_3', 'evt_4'], True))
    items = c.list_all('/v1/events', max_items=3)
    assert [e['id'] for e in items] == ['evt_1', 'evt_2', 'evt_3'] and items.truncated is True
    assert [dict(call['params'])['limit'] for call in session.calls] == ['3', '1']


def test_list_all_exact_fit_is_not_truncated_and_bad_pages_stop():
    c, _session, _clock = client(page(['evt_1', 'evt_2'], False))
    items = c.list_all('/v1/events', max_items=2)
    assert len(items) == 2 and items.truncated is False
    c, session, _clock = client(page([], True))
    items = c.list_all('/v1/events', max_items=50)
    assert items == [] and items.truncated is True and len(session.calls) == 1
    c, _session, _clock = client(FakeResponse(200, {'object': 'balance'}))
    with pytest.raises(stripe_api.StripeError) as info:
        c.list_all('/v1/events')
    assert 'not a Stripe list' in str(info.value)
