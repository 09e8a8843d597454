"""stripe_account_info and stripe_webhook_info as real module files, against real HTTP servers on loopback.

- The sandbox's Stripe stand-in (tests/helpers/stripe.py: localstripe in
  process plus the sandbox extensions - webhook endpoints, signed delivery
  with its outcome, ``delivery_success=false``, ``pending_webhooks``, revoked
  keys answering 401 ``api_key_expired``) for the key checks, the endpoints
  and the undelivered events.
- ``Receiver`` (tests/helpers/receiver.py), a scripted loopback HTTP server,
  for what the stand-in does not do on demand: 429 with ``Retry-After``,
  503 then 200, a server that never answers in time, Stripe's status page.
- The session ``moto`` fixture (moto_server on loopback) for the key the
  service keeps in Secrets Manager (``key_secret_id``).

Every result is checked for the key: neither the key nor its middle part
may appear in the module's stdout/stderr, whatever the path.
"""

import json
import time
import uuid

import boto3
import pytest

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.receiver import Receiver
from tests.helpers.servers import free_port
from tests.helpers.stripe import API_KEY, start_stripe
from tests.helpers.waits import until

LIVE_KEY = 'sk_live_51HxQpZLkdIwHu7ixSECRETsecretSECRETsecret4242'
PK_KEY = 'pk_test_51HxQpZLkdIwHu7ixPUBLISHABLEpublishable1111'
RK_KEY = 'rk_test_51HxQpZLkdIwHu7ixRESTRICTEDrestricted9876'
# The service's keys, only ever in Secrets Manager (localstripe accepts any sk_ key).
SVC_KEY = 'sk_test_51SvcKeyQwErTyUiOpAsDfGhJkLzXcVbNm0123456789svc4321'
SVC_KEY_OLD = 'sk_test_51OldSvcKeyMnBvCxZlKjHgFdSaPoIuYtReWq98765old8765'
WEBHOOK_SECRET = 'whsec_svcWebhookSigningSecretAbCdEfGh0123456789'
KEYS = (API_KEY, LIVE_KEY, PK_KEY, RK_KEY, SVC_KEY, SVC_KEY_OLD)
ELL = '\u2026'
BALANCE = {'object': 'balance', 'livemode': False,
           'available': [{'amount': 0, 'currency': 'usd', 'source_types': {'card': 0}}],
           'pending': [{'amount': 0, 'currency': 'usd', 'source_types': {'card': 0}}]}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """A developer's own Stripe key must never reach these tests."""
    monkeypatch.delenv('STRIPE_API_KEY', raising=False)


@pytest.fixture(scope='module')
def srv(tmp_path_factory):
    server = start_stripe(str(tmp_path_factory.mktemp('stripe')))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rx():
    with Receiver() as receiver:
        yield receiver


def assert_clean(result):
    """No traceback, and no key (nor its secret middle) anywhere in what the module printed."""
    assert_no_traceback(result)
    text = result.stdout + result.stderr + json.dumps(dict(result))
    for key in KEYS:
        assert key not in text, key[:8]
        assert key[8:-4] not in text, key[:8]


def closed_url():
    return 'http://127.0.0.1:%d' % free_port()   # nothing listens there


def account(url, key=API_KEY, **kwargs):
    args = dict(api_key=key, api_url=url, status_url='', timeout=5)
    args.update(kwargs)
    return run_module('stripe_account_info', args)


def webhooks(url, key=API_KEY, **kwargs):
    args = dict(api_key=key, api_url=url, timeout=5)
    args.update(kwargs)
    return run_module('stripe_webhook_info', args)


# --------------------------------------------------------------------------- stripe_account_info vs the stand-in


def test_valid_key(srv):
    result = account(srv.url)
    assert_clean(result)
    assert result.rc == 0 and not result.failed and result['changed'] is False
    assert result['key_status'] == 'valid' and result['reachable'] is True and result['http_status'] == 200
    assert result['key_hint'] == 'sk_test_\u20260000'
    assert (result['key_type'], result['key_mode'], result['livemode']) == ('secret', 'test', False)
    assert 0 < result['latency_ms'] < 5000 and result['attempts'] == 1
    assert result['error_kind'] is None and result['problems'] == [] and 'stripe_status' not in result


def test_valid_key_in_the_wrong_mode_and_from_the_environment(srv, monkeypatch):
    monkeypatch.setenv('STRIPE_API_KEY', API_KEY)
    result = run_module('stripe_account_info', dict(api_url=srv.url, status_url='', expect_livemode=True))
    assert_clean(result)
    assert result['key_status'] == 'valid'
    [problem] = result['problems']
    assert 'is a test-mode key but expect_livemode=true' in problem
    assert account(srv.url, expect_livemode=False)['problems'] == []


def test_check_mode_is_the_same_read(srv):
    result = run_module('stripe_account_info', dict(api_key=API_KEY, api_url=srv.url, status_url=''), check=True)
    assert_clean(result)
    assert result['key_status'] == 'valid' and result['changed'] is False


def test_revoked_key(srv):
    srv.revoke_key(API_KEY)
    try:
        result = account(srv.url)
        hooks = webhooks(srv.url, endpoint_url='http://127.0.0.1:9/webhooks/stripe')
    finally:
        srv.unrevoke_key(API_KEY)
    assert_clean(result)
    assert result.rc == 0 and not result.failed
    assert (result['key_status'], result['http_status'], result['error_kind'], result['error_code']) == (
        'revoked', 401, 'invalid_key', 'api_key_expired')
    assert result['reachable'] is True and result['attempts'] == 1          # a 401 is never retried
    assert 'sk_test_****0000' in result['msg']                               # the stand-in's masked echo
    [problem] = result['problems']
    assert problem.startswith('Stripe says the API key sk_test_\u20260000 is expired or revoked (HTTP 401 '
                              'api_key_expired)')
    assert_clean(hooks)
    assert hooks.rc == 0 and hooks['error_kind'] == 'invalid_key' and hooks['error_code'] == 'api_key_expired'
    assert hooks['endpoint_found'] is None and hooks['failed_events'] is None
    assert len(hooks['problems']) == 1          # the events were not even asked for with a refused key
    assert account(srv.url)['key_status'] == 'valid'


@pytest.mark.parametrize('key,key_type,problem', [
    (PK_KEY, 'publishable', 'is a publishable key'),
    (RK_KEY, 'restricted', None),       # localstripe refuses every non-sk_ key, as an unknown key
    ('whsec_0123456789abcdefghijklmnop', 'unknown', 'does not look like a Stripe API key'),
])
def test_non_secret_keys_are_refused(srv, key, key_type, problem):
    result = account(srv.url, key=key)
    assert_clean(result)
    assert key not in result.stdout
    assert result.rc == 0 and result['key_status'] == 'invalid' and result['http_status'] == 401
    assert result['key_type'] == key_type and result['error_kind'] == 'invalid_key'
    assert result['problems'][0].startswith('Stripe rejects the API key')
    if problem:
        assert problem in result['problems'][1]


def test_unreachable_is_a_result(srv):
    started = time.monotonic()
    result = account(closed_url(), timeout=2)
    elapsed = time.monotonic() - started
    assert_clean(result)
    assert result.rc == 0 and not result.failed
    assert (result['reachable'], result['key_status'], result['error_kind']) == (False, 'unknown', 'unreachable')
    assert result['latency_ms'] is None and result['attempts'] == 4           # refused connections are retried
    assert 'Could not reach the Stripe API' in result['problems'][0]
    assert elapsed < 4 * 2 + 3 * 10 + 10


@pytest.mark.parametrize('args,message', [
    (dict(api_key=''), 'api_key is empty'),
    (dict(api_key=API_KEY + '\n'), 'api_key contains whitespace'),
    (dict(api_url='http://api.stripe.com'), 'api_url must use https://'),
    (dict(api_url='not a url'), 'api_url'),
    (dict(timeout=0), 'timeout must be more than 0 and at most 60'),
    (dict(timeout=61), 'timeout must be more than 0 and at most 60'),
    (dict(status_url='ftp://status.example'), 'status_url'),
])
def test_bad_input_fails_clearly(args, message):
    params = dict(api_key=API_KEY, api_url='http://127.0.0.1:9', status_url='')
    params.update(args)
    result = run_module('stripe_account_info', params)
    assert_clean(result)
    assert result.failed and message in result['msg']


def test_missing_key_names_the_option_and_the_variable():
    result = run_module('stripe_account_info', dict(api_url='http://127.0.0.1:9'))
    assert result.failed and 'api_key' in result['msg']


# --------------------------------------------------------------------------- retries against a scripted server


def test_429_with_retry_after_is_honoured(rx):
    rx.script('GET', '/v1/balance',
              dict(status=429, body={'error': {'type': 'rate_limit_error', 'message': 'Too many requests'}},
                   headers={'Retry-After': '1'}),
              dict(status=200, body=BALANCE))
    result = account(rx.url, key=LIVE_KEY)
    assert_clean(result)
    assert result['key_status'] == 'valid' and result['attempts'] == 2
    first, second = rx.requests
    assert second.received - first.received >= 0.95                         # waited what Stripe asked
    for req in (first, second):
        assert req.header('authorization') == 'Bearer ' + LIVE_KEY
        assert req.header('stripe-version') == '2024-06-20'


def test_503_then_200_is_retried_with_backoff(rx):
    rx.script('GET', '/v1/balance', dict(status=503, body={'error': {'type': 'api_error', 'message': 'busy'}}),
              dict(status=503), dict(status=200, body=BALANCE))
    result = account(rx.url, key=LIVE_KEY)
    assert_clean(result)
    assert result['key_status'] == 'valid' and result['attempts'] == 3 and len(rx.requests) == 3
    gaps = [b.received - a.received for a, b in zip(rx.requests, rx.requests[1:])]
    assert gaps[0] <= 0.5 + 0.5 and gaps[1] <= 1.0 + 0.5                     # full jitter: at most 0.5 s, 1 s


def test_persistent_500_is_bounded(rx):
    rx.script('GET', '/v1/balance', *[dict(status=500, body={'error': {'type': 'api_error', 'message': 'boom'}})
                                      for _i in range(6)])
    started = time.monotonic()
    result = account(rx.url, key=LIVE_KEY)
    elapsed = time.monotonic() - started
    assert_clean(result)
    assert result.rc == 0 and result['error_kind'] == 'server_error' and result['attempts'] == 4
    assert len(rx.requests) == 4 and result['key_status'] == 'unknown'
    assert elapsed < 0.5 + 1 + 2 + 10                                        # waits <= 3.5 s, plus start-up
    assert 'The Stripe API failed (HTTP 500)' in result['problems'][0]


def test_long_retry_after_is_not_waited_for(rx):
    rx.script('GET', '/v1/balance', dict(status=429, body={'error': {'message': 'Too many'}},
                                         headers={'Retry-After': '3600'}))
    started = time.monotonic()
    result = account(rx.url, key=LIVE_KEY)
    assert_clean(result)
    assert time.monotonic() - started < 10 and len(rx.requests) == 1
    assert result['error_kind'] == 'rate_limited' and 'asked to retry after 3600s' in result['msg']


def test_slow_server_times_out_within_the_bound(rx):
    rx.script('GET', '/v1/balance', *[dict(status=200, body=BALANCE, delay=3) for _i in range(4)])
    started = time.monotonic()
    result = account(rx.url, key=LIVE_KEY, timeout=1)
    elapsed = time.monotonic() - started
    assert_clean(result)
    assert (result['reachable'], result['error_kind'], result['attempts']) == (False, 'timeout', 4)
    # 4 attempts of 1 s and waits of at most 0.5 + 1 + 2 s: the documented 4 x timeout + 30 s is far above
    assert elapsed < 4 * 1 + 3.5 + 8


def test_status_page_is_read_without_the_key(rx):
    rx.script('GET', '/v1/balance', dict(status=200, body=BALANCE))
    rx.script('GET', '/current', dict(status=200, body={
        'largestatus': 'degraded', 'message': 'Elevated error rates on the API',
        'statuses': {'api': 'degraded', 'dashboard': 'up', 'stripejs': 'up', 'checkoutjs': 'up'},
        'time': '2026-01-01T00:00:00.000Z'}))
    result = account(rx.url, key=LIVE_KEY, status_url=rx.url + '/current')
    assert_clean(result)
    status = result['stripe_status']
    assert (status['reachable'], status['largestatus'], status['statuses']['api']) == (True, 'degraded', 'degraded')
    assert any(p.startswith("Stripe's status page reports degraded (api degraded)") for p in result['problems'])
    [req] = [r for r in rx.requests if r.path == '/current']
    assert req.header('authorization') is None


def test_status_page_failure_is_a_note(rx):
    rx.script('GET', '/v1/balance', dict(status=200, body=BALANCE))
    result = account(rx.url, key=LIVE_KEY, status_url=closed_url() + '/current')
    assert_clean(result)
    assert result.rc == 0 and result['key_status'] == 'valid' and result['problems'] == []
    assert result['stripe_status']['reachable'] is False and result['stripe_status']['error']
    assert 'could not be read' in result['notes'][0]


def test_restricted_key_without_permission(rx):
    rx.script('GET', '/v1/balance', dict(status=403, body={'error': {
        'type': 'invalid_request_error',
        'message': "The provided key 'rk_test_****9876' does not have the required permissions for this endpoint "
                   "on account 'acct_1HxQpZLkdIwHu7ix'."}}))
    result = account(rx.url, key=RK_KEY)
    assert_clean(result)
    assert result['key_status'] == 'restricted' and result['key_type'] == 'restricted'
    assert result['error_kind'] == 'permission'
    assert 'has no permission' in result['problems'][0]


# --------------------------------------------------------------------------- stripe_webhook_info vs the stand-in


def wait_undelivered(srv, count):
    return until(lambda: len(srv.events(delivery_success=False)) >= count, 15, interval=0.2,
                 what='%d undelivered events in the stand-in' % count)


def test_webhook_endpoints_and_failed_events(srv):
    our_url = closed_url() + '/webhooks/stripe'     # nothing answers there: every delivery fails
    other_url = closed_url() + '/analytics'
    we_ours = srv.register_endpoint(our_url, 'whsec_sandbox_test_ours')
    we_other = srv.register_endpoint(other_url, 'whsec_sandbox_test_other', events=['invoice.paid'])
    before = len(srv.events(delivery_success=False))
    for i in range(2):
        status, _body = srv.api('POST', '/v1/customers', {'email': 'c%d@svpms.example.com' % i})
        assert status == 200
    wait_undelivered(srv, before + 2)

    result = webhooks(srv.url, endpoint_url=our_url + '/')
    assert_clean(result)
    assert result.rc == 0 and result['changed'] is False and result['error_kind'] is None
    assert result['endpoint_found'] is True and result['endpoint_enabled'] is True
    [ep] = result['endpoints']
    assert (ep['id'], ep['url'], ep['status'], ep['enabled_events']) == (we_ours, our_url, 'enabled', ['*'])
    assert result['endpoints_total'] >= 2 and 'secret' not in json.dumps(result['endpoints'])
    assert result['failed_events'] >= 2 and result['failed_events_by_type']['customer.created'] >= 2
    assert result['pending_webhooks'] >= 2
    assert result['events_truncated'] is False and result['expiring_soon'] == 0
    top = result['closest_to_expiry'][0]
    assert top['id'].startswith('evt_') and 71.5 < top['hours_left'] <= 72.0
    assert any('not delivered to at least one webhook endpoint' in p for p in result['problems'])

    checked = run_module('stripe_webhook_info', dict(api_key=API_KEY, api_url=srv.url, endpoint_url=our_url),
                         check=True)
    assert_clean(checked)
    assert checked['changed'] is False and checked['failed_events'] == result['failed_events']

    truncated = webhooks(srv.url, endpoint_url=our_url, max_events=1)
    assert_clean(truncated)
    assert truncated['failed_events'] == 1 and truncated['events_truncated'] is True
    assert any('Read only 1 failed events' in p for p in truncated['problems'])

    # Our endpoint disabled: it receives nothing; the gap needs a replay.
    srv.set_endpoint_disabled(we_ours, True)
    try:
        result = webhooks(srv.url, endpoint_url=our_url)
    finally:
        srv.set_endpoint_disabled(we_ours, False)
    assert_clean(result)
    assert result['endpoint_found'] is True and result['endpoint_enabled'] is False
    assert result['endpoints'][0]['status'] == 'disabled'
    [problem] = [p for p in result['problems'] if 'is disabled' in p]
    assert we_ours in problem and 'receives nothing' in problem and 'events during the gap need a replay' in problem

    # No endpoint for our URL at all.
    result = webhooks(srv.url, endpoint_url='http://127.0.0.1:9/not/ours')
    assert_clean(result)
    assert result['endpoint_found'] is False and result['endpoint_enabled'] is None and result['endpoints'] == []
    assert result['problems'][0].startswith('No Stripe webhook endpoint points at our URL http://127.0.0.1:9/not/ours')

    # Without endpoint_url: every endpoint.
    result = webhooks(srv.url)
    assert {we_ours, we_other} <= set(e['id'] for e in result['endpoints'])
    assert result['endpoint_found'] is None


def test_webhook_info_window_and_bad_input(srv):
    for args, message in ((dict(window_hours=0), 'window_hours must be 1 to 720'),
                          (dict(window_hours=721), 'window_hours must be 1 to 720'),
                          (dict(max_events=0), 'max_events must be 1 to 10000'),
                          (dict(endpoint_url='ftp://x/hook'), 'endpoint_url must use http:// or https://')):
        result = webhooks(srv.url, **args)
        assert_clean(result)
        assert result.failed and message in result['msg'], result['msg']


def test_webhook_info_unreachable_is_a_result():
    result = webhooks(closed_url(), endpoint_url='https://api.svpms.example.com/webhooks/stripe', timeout=1)
    assert_clean(result)
    assert result.rc == 0 and not result.failed
    assert (result['reachable'], result['error_kind'], result['endpoint_found']) == (False, 'unreachable', None)
    assert len(result['problems']) == 1 and 'Could not reach the Stripe API' in result['problems'][0]


def test_webhook_info_events_refused_but_endpoints_read(rx):
    # A restricted key that may read endpoints but not events: the endpoints are still reported.
    rx.script('GET', '/v1/webhook_endpoints', dict(status=200, body={
        'object': 'list', 'url': '/v1/webhook_endpoints', 'has_more': False, 'data': [{
            'id': 'we_1', 'object': 'webhook_endpoint', 'api_version': None, 'application': None,
            'created': 1704067200, 'description': None, 'enabled_events': ['*'], 'livemode': False,
            'metadata': {}, 'status': 'enabled', 'url': 'https://api.svpms.example.com/webhooks/stripe'}]}))
    rx.script('GET', '/v1/events', dict(status=403, body={'error': {
        'type': 'invalid_request_error', 'message': "The provided key 'rk_test_****9876' does not have the "
                                                    'required permissions for this endpoint.'}}))
    result = webhooks(rx.url, key=RK_KEY, endpoint_url='https://api.svpms.example.com/webhooks/stripe')
    assert_clean(result)
    assert result['endpoint_found'] is True and result['endpoint_enabled'] is True
    assert result['error_kind'] == 'permission' and result['failed_events'] is None
    [req] = [r for r in rx.requests if r.path == '/v1/events']
    assert req.query.get('delivery_success') in ('false', ['false'])


# --------------------------------------------------------------------------- stripe_account_info: the key in Secrets Manager


class Secrets:
    """Secrets Manager on the session's moto_server: secrets created for a test, the module run against it."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.sm = boto3.client('secretsmanager', region_name=AWS_TEST_CREDS['region'], endpoint_url=endpoint,
                               aws_access_key_id='setup', aws_secret_access_key='setup')

    def create(self, value):
        name = 'svpms/it/stripe-account-%s' % uuid.uuid4().hex[:10]
        self.sm.create_secret(Name=name, SecretString=value)
        return name

    def current(self, name):
        for version in self.sm.list_secret_version_ids(SecretId=name)['Versions']:
            if 'AWSCURRENT' in (version.get('VersionStages') or []):
                return version['VersionId']
        return None

    def run(self, stripe_url, check=False, **kwargs):
        args = dict(AWS_TEST_CREDS, endpoint_url=self.endpoint, api_url=stripe_url, status_url='', timeout=5)
        args.update(kwargs)
        result = run_module('stripe_account_info', args, check=check)
        assert_secret_clean(result)
        return result


@pytest.fixture(scope='module')
def secrets(moto):
    return Secrets(moto.endpoint)


def hint(key):
    return key[:8] + ELL + key[-4:]


def assert_secret_clean(result, values=()):
    """assert_clean, plus: no secret value of any kind in the whole output, no AWS credential, and no Ansible
    no_log mask (a mask would mean the module tried to print a value it had registered)."""
    assert_clean(result)
    text = result.stdout + result.stderr + json.dumps(dict(result), ensure_ascii=False)
    for value in (WEBHOOK_SECRET, AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key']) + tuple(values):
        assert value not in text
    assert '********' not in text


def test_key_read_from_the_secret_is_valid(srv, secrets):
    name = secrets.create(SVC_KEY + '\n')          # a stray newline, as a file upload leaves it
    result = secrets.run(srv.url, key_secret_id=name)
    assert result.rc == 0 and not result.failed and result['changed'] is False, result.get('msg')
    assert (result['key_status'], result['reachable'], result['http_status']) == ('valid', True, 200)
    assert result['key_source'] == 'secret:%s' % name
    assert result['key_secret_version_id'] == secrets.current(name)
    assert (result['key_secret_format'], result['key_json_field'], result['key_secret_error_kind']) == (
        'plain', None, None)
    assert result['key_hint'] == hint(SVC_KEY) == 'sk_test_\u20264321'
    assert (result['key_type'], result['key_mode'], result['livemode']) == ('secret', 'test', False)
    assert result['error_kind'] is None and result['problems'] == []
    assert any('whitespace around the key' in n for n in result['notes'])
    # The task's arguments hold only the secret's name, never the key.
    assert result['invocation']['module_args']['key_secret_id'] == name
    assert result['invocation']['module_args']['api_key'] is None

    checked = secrets.run(srv.url, check=True, key_secret_id=name, expect_livemode=True)
    assert checked['key_status'] == 'valid' and checked['changed'] is False
    [problem] = checked['problems']
    assert 'sk_test_\u20264321 is a test-mode key but expect_livemode=true' in problem


def test_the_awscurrent_version_is_read_not_the_newest(srv, secrets):
    name = secrets.create(SVC_KEY_OLD)
    old_vid = secrets.current(name)
    new_vid = str(uuid.uuid4())
    secrets.sm.put_secret_value(SecretId=name, ClientRequestToken=new_vid, SecretString=SVC_KEY)
    # AWSCURRENT back on the old version: the newest version is not the current one (a rollback).
    secrets.sm.update_secret_version_stage(SecretId=name, VersionStage='AWSCURRENT', MoveToVersionId=old_vid,
                                           RemoveFromVersionId=new_vid)
    assert secrets.current(name) == old_vid
    result = secrets.run(srv.url, key_secret_id=name)
    assert result['key_status'] == 'valid'
    assert result['key_secret_version_id'] == old_vid and result['key_hint'] == hint(SVC_KEY_OLD)


def test_key_in_the_secret_revoked_at_stripe(srv, secrets):
    name = secrets.create(SVC_KEY)
    srv.revoke_key(SVC_KEY)
    try:
        result = secrets.run(srv.url, key_secret_id=name)
    finally:
        srv.unrevoke_key(SVC_KEY)
    assert result.rc == 0 and not result.failed
    assert (result['key_status'], result['http_status'], result['error_kind'], result['error_code']) == (
        'revoked', 401, 'invalid_key', 'api_key_expired')
    assert result['reachable'] is True and result['key_source'] == 'secret:%s' % name
    assert result['key_secret_version_id'] == secrets.current(name) and result['key_secret_error_kind'] is None
    [problem] = result['problems']
    assert problem.startswith('Stripe says the API key sk_test_\u20264321 is expired or revoked')
    assert secrets.run(srv.url, key_secret_id=name)['key_status'] == 'valid'


def test_json_secret_with_key_json_field(srv, secrets):
    value = json.dumps({'stripe_secret_key': SVC_KEY, 'webhook_secret': WEBHOOK_SECRET, 'account': 'acct_1'})
    name = secrets.create(value)
    result = secrets.run(srv.url, key_secret_id=name, key_json_field='stripe_secret_key')
    assert_secret_clean(result, values=[value])
    assert result['key_status'] == 'valid' and result['key_hint'] == hint(SVC_KEY)
    assert (result['key_secret_format'], result['key_json_field']) == ('json', 'stripe_secret_key')
    assert result['key_secret_version_id'] == secrets.current(name)

    # Not named: found in api_key (the same detection as stripe_key_update's json_field).
    detected = secrets.create(json.dumps({'api_key': SVC_KEY, 'webhook_secret': WEBHOOK_SECRET}))
    result = secrets.run(srv.url, key_secret_id=detected)
    assert result['key_status'] == 'valid' and result['key_json_field'] == 'api_key'

    # A field that is not there: a finding naming the secret and the fields, Stripe not called.
    result = secrets.run(srv.url, key_secret_id=name, key_json_field='api_key')
    assert result.rc == 0 and not result.failed
    assert (result['key_status'], result['error_kind'], result['key_secret_error_kind']) == (
        'unknown', 'key_secret', 'secret_format')
    assert result['reachable'] is None and result['attempts'] == 0 and result['key_hint'] is None
    assert result['key_secret_version_id'] == secrets.current(name)
    [problem] = result['problems']
    assert name in problem and 'has no field api_key (key_json_field)' in problem
    assert 'account, stripe_secret_key, webhook_secret' in problem

    # A plain secret with key_json_field.
    plain = secrets.create(SVC_KEY)
    result = secrets.run(srv.url, key_secret_id=plain, key_json_field='stripe_secret_key')
    assert result['key_secret_error_kind'] == 'secret_format' and 'plain string' in result['problems'][0]


def test_missing_secret_is_a_finding(secrets, rx):
    name = 'svpms/it/no-such-secret-%s' % uuid.uuid4().hex[:8]
    result = secrets.run(rx.url, key_secret_id=name, expect_livemode=True)
    assert result.rc == 0 and not result.failed and result['changed'] is False
    assert (result['key_status'], result['error_kind'], result['key_secret_error_kind']) == (
        'unknown', 'key_secret', 'not_found')
    assert result['reachable'] is None                   # Stripe was not asked; about Stripe, not AWS
    assert (result['http_status'], result['latency_ms'], result['attempts']) == (None, None, 0)
    assert result['key_source'] == 'secret:%s' % name and result['key_secret_version_id'] is None
    assert result['key_hint'] is None and result['key_type'] == 'unknown'
    [problem] = result['problems']
    assert problem.startswith('Could not read the Stripe key the service uses from Secrets Manager secret %s '
                              '(not_found): secretsmanager:GetSecretValue failed (ResourceNotFoundException)'
                              % name)
    assert 'Stripe was not called' in problem and result['msg'] == problem
    assert rx.requests == []                             # nothing went to Stripe


def test_unreachable_secrets_manager_is_a_finding(rx):
    args = dict(AWS_TEST_CREDS, endpoint_url=closed_url(), api_url=rx.url, status_url='', timeout=5,
                key_secret_id='svpms/prod/api/stripe-api-key')
    result = run_module('stripe_account_info', args)
    assert_secret_clean(result)
    assert result.rc == 0 and not result.failed
    assert (result['key_status'], result['key_secret_error_kind'], result['reachable']) == (
        'unknown', 'unreachable', None)
    assert 'svpms/prod/api/stripe-api-key (unreachable)' in result['problems'][0]
    assert rx.requests == []


def test_environment_key_is_not_used_with_key_secret_id(srv, secrets, monkeypatch):
    monkeypatch.setenv('STRIPE_API_KEY', API_KEY)
    only_env = run_module('stripe_account_info', dict(api_url=srv.url, status_url=''))
    assert_clean(only_env)
    assert only_env['key_source'] == 'environment' and only_env['key_hint'] == hint(API_KEY)

    name = secrets.create(SVC_KEY)
    result = secrets.run(srv.url, key_secret_id=name)
    assert result['key_source'] == 'secret:%s' % name and result['key_hint'] == hint(SVC_KEY)
    assert any('STRIPE_API_KEY is set on this host but not used' in n for n in result['notes'])


def test_api_key_source_is_parameter(srv):
    result = account(srv.url)
    assert result['key_source'] == 'parameter' and 'key_secret_version_id' not in result


@pytest.mark.parametrize('args,message', [
    (dict(api_key=API_KEY, key_secret_id='svpms/prod/api/stripe-api-key'),
     'api_key and key_secret_id are mutually exclusive'),
    (dict(api_key=API_KEY, key_json_field='api_key'), 'key_json_field applies only with key_secret_id'),
    (dict(key_secret_id='  '), 'key_secret_id must be a non-empty secret name or ARN'),
    (dict(key_secret_id='svpms/x', key_json_field=''), 'key_json_field must not be empty'),
])
def test_key_options_are_checked(args, message):
    params = dict(AWS_TEST_CREDS, api_url='http://127.0.0.1:9', status_url='')
    params.update(args)
    result = run_module('stripe_account_info', params)
    assert_secret_clean(result)
    assert result.failed and message in result['msg'], result['msg']
