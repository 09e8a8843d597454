"""stripe_webhook_replay as a real module file, against real servers on loopback.

- Stripe: the sandbox's stand-in (tests/helpers/stripe.py), one per test so each starts with no events. Failed
  events are made the quick, deterministic way: the endpoint registered in the stand-in is disabled while the
  events are created, so the stand-in records their delivery as skipped (``delivery_success=false`` at once,
  no retries to wait for). One test also makes them the slow way, with an enabled endpoint on a closed port, and
  waits (bounded) for the stand-in's first failed attempt.
- Secrets Manager: moto (the session ``moto`` fixture) holds the endpoint signing secret; the module reads it.
- Our endpoint: ``Hook``, an HTTP server thread on 127.0.0.1 that verifies every delivery with the official
  library (``stripe.Webhook.construct_event``, independent of our stripe_signature) and records what it got and
  when. It can also reject (verify with another secret: 400 ``invalid_signature``) or fail (500).

Every result (stdout, stderr, the JSON at any depth) is checked for the API key, the signing secret and the AWS
credentials, on the success and the error paths.
"""

import json
import http.server
import os
import secrets
import stat
import threading
import time
import uuid

import boto3
import pytest
import stripe

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.servers import free_port
from tests.helpers.stripe import API_KEY, start_stripe
from tests.helpers.waits import until

WHSEC = 'whsec_' + secrets.token_hex(16)
OTHER_WHSEC = 'whsec_' + secrets.token_hex(16)
REVOKED_ERR = 'api_key_expired'


class Hook:
    """Our webhook endpoint. ``mode``: verify (200 / 400), reject (verifies with another secret), error500."""

    def __init__(self):
        self.mode = 'verify'
        self.received = []   # dicts: at (monotonic), headers, body, id, verified
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                status, doc, event = outer.answer(self.headers.get('Stripe-Signature'), body)
                with outer.lock:
                    outer.received.append(dict(at=at, headers=dict(self.headers.items()), body=body,
                                               id=event.id if event is not None else None,
                                               verified=event is not None, path=self.path))
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = 'http://127.0.0.1:%d/webhooks/stripe' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, header, body):
        if self.mode == 'error500':
            return 500, {'error': 'internal_error'}, None
        if self.mode == 'echo':      # a careless error page that echoes the secret it knows
            return 400, {'error': WHSEC, 'detail': 'secret %s' % WHSEC}, None
        secret = OTHER_WHSEC if self.mode == 'reject' else WHSEC
        try:
            event = stripe.Webhook.construct_event(body, header, secret)   # tolerance 300 s
        except stripe.SignatureVerificationError:
            return 400, {'error': 'invalid_signature', 'message': 'expected a signature made with %s' % secret}, None
        except ValueError:
            return 400, {'error': 'invalid_payload'}, None
        return 200, {'received': True}, event

    @property
    def ids(self):
        return [r['id'] for r in self.received]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """A developer's own Stripe key must never reach these tests."""
    monkeypatch.delenv('STRIPE_API_KEY', raising=False)


@pytest.fixture(scope='module')
def sm(moto):
    return boto3.client('secretsmanager', region_name=AWS_TEST_CREDS['region'], endpoint_url=moto.endpoint,
                        aws_access_key_id='setup', aws_secret_access_key='setup')


@pytest.fixture(scope='module')
def secret_id(sm):
    name = 'svpms/it/stripe-webhook-secret-%s' % uuid.uuid4().hex[:8]
    sm.create_secret(Name=name, SecretString=json.dumps({'signing_secret': WHSEC}))
    return name


@pytest.fixture
def srv(tmp_path):
    server = start_stripe(str(tmp_path / 'stripe'))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.stop()


@pytest.fixture
def state(tmp_path):
    folder = tmp_path / 'state'
    folder.mkdir()
    return str(folder / 'replay-state.json')


# --------------------------------------------------------------------------- helpers


def _walk(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    else:
        yield value


def assert_clean(result):
    """No traceback; no key, signing secret or AWS credential anywhere in what the module printed."""
    assert_no_traceback(result)
    text = result.stdout + result.stderr
    for secret in (API_KEY, API_KEY[8:-4], WHSEC, WHSEC[6:], OTHER_WHSEC, AWS_TEST_CREDS['access_key'],
                   AWS_TEST_CREDS['secret_key']):
        assert secret not in text
    for value in _walk(dict(result)):
        if isinstance(value, str) and len(value) >= 12:
            assert value not in WHSEC and value not in API_KEY
    # Nothing even tried to print a secret (Ansible would have masked it). A URL with user:password@ is echoed
    # back redacted as //********@ (the bad-input test); that mask is ours.
    assert '********' not in text.replace('//********@', '//')


def replay(moto, srv, url=None, secret_id=None, state_file=None, check=False, **overrides):
    args = dict(AWS_TEST_CREDS, endpoint_url=moto.endpoint, api_key=API_KEY, api_url=srv.url, timeout=5,
                url=url, secret_id=secret_id, state_file=state_file, rate_per_second=50, delivery_timeout=5)
    args.update(overrides)
    result = run_module('stripe_webhook_replay', args, check=check)
    assert_clean(result)
    return result


def make_failed(srv, hook_url, count, spacing=0.0):
    """``count`` events the stand-in failed to deliver to our endpoint (created while it is disabled). -> ids."""
    we_id = srv.register_endpoint(hook_url, WHSEC)
    srv.set_endpoint_disabled(we_id, True)
    for i in range(count):
        if i and spacing:
            time.sleep(spacing)
        status, body = srv.api('POST', '/v1/customers', {'email': 'replay-%d@example.com' % i})
        assert status == 200, body

    def undelivered():
        found = srv.events(delivery_success=False)
        return found if len(found) >= count else None
    events = until(undelivered, 10, 0.1, '%d undelivered events' % count)
    srv.set_endpoint_disabled(we_id, False)   # re-enabled: Stripe does not send the gap by itself
    assert len(events) == count
    return [e['id'] for e in events]          # the stand-in lists oldest first


def read_state(path):
    with open(path) as fh:
        return json.load(fh)


def assert_verified(hook, ids):
    """What the endpoint got: exactly these events, each verified by the official library, one body per event."""
    assert hook.ids == ids
    for rec in hook.received:
        assert rec['verified'] and rec['path'] == '/webhooks/stripe'
        assert rec['headers']['Content-Type'] == 'application/json; charset=utf-8'
        ua = rec['headers']['User-Agent']
        assert ua.startswith('Stripe/1.0 (+https://stripe.com/docs/webhooks') and 'stripe_webhook_replay' in ua
        t = int(rec['headers']['Stripe-Signature'].split(',')[0][2:])
        assert abs(t - time.time()) < 60   # signed at sending time, not with the event's creation time
        event = json.loads(rec['body'])
        assert event['object'] == 'event' and event['id'] == rec['id']


# --------------------------------------------------------------------------- replay, idempotence, cap


def test_failed_events_are_replayed_then_a_rerun_sends_nothing(moto, srv, hook, secret_id, state):
    ids = make_failed(srv, hook.url, 3)
    first = replay(moto, srv, hook.url, secret_id, state)
    assert first.rc == 0 and not first.failed, first
    assert first['changed'] is True and first['source'] == 'failed_events'
    assert first['candidates'] == 3 and first['candidates_truncated'] is False
    assert (first['acknowledged'], first['failed_count'], first['remaining']) == (3, 0, 0)
    assert first['skipped_already_acknowledged'] == 0 and first['drained'] is True
    assert first['stopped_early'] is False and first['stop_reason'] is None and first['problems'] == []
    assert [r['id'] for r in first['replayed']] == ids
    for row in first['replayed']:
        assert row['outcome'] == 'acknowledged' and row['status'] == 200 and row['error'] is None
        assert row['type'] == 'customer.created' and row['created'].endswith('Z') and row['latency_ms'] >= 0
    assert [p['id'] for p in first['planned']] == ids
    assert_verified(hook, ids)
    # The bodies are the events as Stripe returns them.
    for rec in hook.received:
        assert json.loads(rec['body']) == srv.event(rec['id'])

    # The state file: mode 0640, the ids per endpoint, no secret, no key, no event body.
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o640
    doc = read_state(state)
    [(url, entries)] = doc['endpoints'].items()
    assert url == hook.url and sorted(entries) == sorted(ids)
    for entry in entries.values():
        assert set(entry) == {'type', 'created', 'acknowledged_at', 'status'}
    raw = open(state).read()
    for secret in (WHSEC, API_KEY, 'cus_', 'replay-0@example.com'):
        assert secret not in raw
    assert not [f for f in os.listdir(os.path.dirname(state)) if f != os.path.basename(state)]  # no temp file left

    # Stripe still lists them as undelivered (a replay cannot change that) ...
    assert len(srv.events(delivery_success=False)) == 3
    # ... but the re-run knows they were acknowledged and sends nothing.
    second = replay(moto, srv, hook.url, secret_id, state)
    assert second['changed'] is False and second['replayed'] == [] and second['planned'] == []
    assert second['candidates'] == 3 and second['skipped_already_acknowledged'] == 3
    assert (second['acknowledged'], second['failed_count'], second['remaining']) == (0, 0, 0)
    assert second['drained'] is True
    assert len(hook.received) == 3
    assert read_state(state)['endpoints'] == doc['endpoints']


def test_the_cap_leaves_remaining_oldest_first(moto, srv, hook, secret_id, state):
    ids = make_failed(srv, hook.url, 4, spacing=1.05)   # distinct creation seconds: the order is testable
    first = replay(moto, srv, hook.url, secret_id, state, max_events=2)
    assert not first.failed and first['changed'] is True
    assert (first['candidates'], first['acknowledged'], first['remaining']) == (4, 2, 2)
    assert first['drained'] is False
    assert [r['id'] for r in first['replayed']] == ids[:2]     # the oldest first: closest to Stripe giving up
    assert any('beyond max_events=2' in p for p in first['problems'])
    assert_verified(hook, ids[:2])

    second = replay(moto, srv, hook.url, secret_id, state, max_events=2)
    assert [r['id'] for r in second['replayed']] == ids[2:]
    assert (second['skipped_already_acknowledged'], second['remaining'], second['drained']) == (2, 0, True)
    assert_verified(hook, ids)
    assert sorted(read_state(state)['endpoints'][hook.url]) == sorted(ids)


def test_check_mode_lists_the_plan_and_sends_nothing(moto, srv, hook, secret_id, state):
    ids = make_failed(srv, hook.url, 3)
    result = replay(moto, srv, hook.url, secret_id, state, check=True, max_events=2)
    assert not result.failed and result['changed'] is True
    assert [p['id'] for p in result['planned']] == ids[:2]
    for row in result['planned']:
        assert row['type'] == 'customer.created' and row['created'].endswith('Z')
        assert 71.5 <= row['hours_left'] <= 72 and 0 <= row['age_hours'] < 0.5
    assert result['replayed'] == [] and result['acknowledged'] == 0 and result['remaining'] == 1
    assert 'check mode' in result['msg'] and 'nothing was sent' in result['msg']
    assert '+ %s' % ids[0] in result['diff']['after']
    assert hook.received == []
    assert not os.path.exists(state) and os.listdir(os.path.dirname(state)) == []

    # With a state file, check mode leaves it as it is and skips what it records.
    replay(moto, srv, hook.url, secret_id, state, max_events=1)
    before = open(state, 'rb').read()
    mtime = os.stat(state).st_mtime_ns
    again = replay(moto, srv, hook.url, secret_id, state, check=True)
    assert [p['id'] for p in again['planned']] == ids[1:] and again['skipped_already_acknowledged'] == 1
    assert open(state, 'rb').read() == before and os.stat(state).st_mtime_ns == mtime
    assert len(hook.received) == 1


def test_event_ids_replays_those_events(moto, srv, hook, secret_id, state):
    ids = make_failed(srv, hook.url, 3)
    result = replay(moto, srv, hook.url, secret_id, state,
                    event_ids=[ids[2], ids[0], ids[2], 'evt_doesnotexist000'])
    assert not result.failed and result['source'] == 'event_ids' and result['window_hours'] is None
    assert result['candidates'] == 3 and result['missing_event_ids'] == ['evt_doesnotexist000']
    assert sorted(r['id'] for r in result['replayed']) == sorted([ids[0], ids[2]])
    assert result['acknowledged'] == 2 and result['drained'] is False
    assert any('evt_doesnotexist000' in p for p in result['problems'])
    assert sorted(hook.ids) == sorted([ids[0], ids[2]])


# --------------------------------------------------------------------------- failures at our endpoint


def test_a_rejecting_endpoint_gives_failed_and_nothing_recorded(moto, srv, hook, secret_id, state):
    ids = make_failed(srv, hook.url, 2)
    hook.mode = 'reject'     # the service verifies with another secret: 400 invalid_signature
    result = replay(moto, srv, hook.url, secret_id, state)
    assert not result.failed and result['changed'] is False
    assert (result['acknowledged'], result['failed_count'], result['remaining']) == (0, 2, 0)
    assert result['drained'] is False and result['stopped_early'] is False
    for row in result['replayed']:
        assert (row['outcome'], row['status'], row['error']) == ('rejected', 400, 'invalid_signature')
    assert [r['id'] for r in result['replayed']] == ids
    assert any('rejected' in p and secret_id in p for p in result['problems'])
    assert not os.path.exists(state)
    assert OTHER_WHSEC not in result.stdout     # the endpoint's error message is never passed on

    hook.mode = 'error500'
    again = replay(moto, srv, hook.url, secret_id, state)
    assert [r['outcome'] for r in again['replayed']] == ['server_error', 'server_error']
    assert again['replayed'][0]['error'] == 'internal_error' and again['failed_count'] == 2

    hook.mode = 'echo'
    echoed = replay(moto, srv, hook.url, secret_id, state)
    assert [(r['outcome'], r['status'], r['error']) for r in echoed['replayed']] == [('rejected', 400, None)] * 2

    hook.mode = 'verify'     # fixed: the next run delivers them
    fixed = replay(moto, srv, hook.url, secret_id, state)
    assert fixed['acknowledged'] == 2 and fixed['drained'] is True


def test_a_down_endpoint_stops_the_run_early(moto, srv, hook, secret_id, state):
    make_failed(srv, hook.url, 5)
    down = 'http://127.0.0.1:%d/webhooks/stripe' % free_port()   # nothing listens there
    started = time.monotonic()
    result = replay(moto, srv, down, secret_id, state)
    assert time.monotonic() - started < 30
    assert not result.failed and result['changed'] is False
    assert result['stopped_early'] is True and 'gave no HTTP answer to 3 events in a row' in result['stop_reason']
    assert [r['outcome'] for r in result['replayed']] == ['unreachable'] * 3
    assert all(r['status'] is None and r['latency_ms'] is None for r in result['replayed'])
    assert (result['failed_count'], result['acknowledged'], result['remaining']) == (3, 0, 2)
    assert result['stop_reason'] in result['problems']
    assert not os.path.exists(state)


def test_deliveries_respect_the_rate(moto, srv, hook, secret_id, state):
    make_failed(srv, hook.url, 5)
    rate = 4.0
    result = replay(moto, srv, hook.url, secret_id, state, rate_per_second=rate)
    assert result['acknowledged'] == 5
    times = [r['at'] for r in hook.received]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 1.0 / rate - 0.03, gaps          # arrival jitter of a few ms only
    assert times[-1] - times[0] >= 4 / rate - 0.05


def test_events_the_stand_in_failed_to_deliver_to_a_closed_port(moto, srv, hook, secret_id, state):
    """The slow way: an enabled endpoint Stripe cannot reach; its first attempt fails (~0.2 s)."""
    we_id = srv.register_endpoint('http://127.0.0.1:%d/webhooks/stripe' % free_port(), WHSEC)
    status, _body = srv.api('POST', '/v1/customers', {'email': 'closed@example.com'})
    assert status == 200
    [event] = until(lambda: srv.events(delivery_success=False), 15, 0.2, 'the first delivery attempt to fail')
    assert srv.deliveries(event['id'])['targets'][0]['attempts'][0]['error']
    srv.set_endpoint_disabled(we_id, True)   # stops the stand-in's own retries; the event stays undelivered
    result = replay(moto, srv, hook.url, secret_id, state, window_hours=1)
    assert [r['id'] for r in result['replayed']] == [event['id']] and result['acknowledged'] == 1
    assert_verified(hook, [event['id']])


# --------------------------------------------------------------------------- errors: Stripe, secret, input


def test_unreachable_stripe_fails_clearly(moto, srv, hook, secret_id, state):
    closed = type('S', (), {'url': 'http://127.0.0.1:%d' % free_port()})()
    result = replay(moto, closed, hook.url, secret_id, state, timeout=2)
    assert result.failed and result['error_kind'] == 'unreachable' and result['error_source'] == 'stripe'
    assert 'Could not reach the Stripe API' in result['msg']
    assert hook.received == [] and not os.path.exists(state)


def test_revoked_key_fails_clearly(moto, srv, hook, secret_id, state):
    make_failed(srv, hook.url, 1)
    srv.revoke_key(API_KEY)
    result = replay(moto, srv, hook.url, secret_id, state)
    assert result.failed and result['error_kind'] == 'invalid_key' and result['error_code'] == REVOKED_ERR
    assert result['http_status'] == 401 and 'expired or revoked' in result['msg']
    assert result['key_hint'].startswith('sk_test_') and result['key_hint'] in result['msg']
    assert hook.received == []


@pytest.mark.parametrize('value,kind', [
    (None, 'not_found'),
    ('', 'invalid_secret'),
    ('{"other": "x"}', 'invalid_secret'),
])
def test_unreadable_secret_fails_clearly(moto, srv, hook, sm, state, value, kind):
    make_failed(srv, hook.url, 1)
    name = 'svpms/it/stripe-webhook-bad-%s' % uuid.uuid4().hex[:8]
    if value is not None:
        sm.create_secret(Name=name, SecretString=value or ' ')
    result = replay(moto, srv, hook.url, name, state)
    assert result.failed and result['error_kind'] == kind and result['error_source'] == 'secrets_manager'
    assert name in result['msg'] and 'nothing was replayed' in result['msg']
    assert hook.received == []


def test_a_foreign_state_file_is_refused(moto, srv, hook, secret_id, state):
    make_failed(srv, hook.url, 1)
    with open(state, 'w') as fh:
        json.dump({'something': 'else'}, fh)
    result = replay(moto, srv, hook.url, secret_id, state)
    assert result.failed and result['error_kind'] == 'invalid_state' and result['error_source'] == 'state_file'
    assert state in result['msg'] and hook.received == []
    assert json.load(open(state)) == {'something': 'else'}


@pytest.mark.parametrize('override,needle', [
    (dict(max_events=0), 'max_events'),
    (dict(max_events=1001), 'max_events'),
    (dict(rate_per_second=0), 'rate_per_second'),
    (dict(rate_per_second=51), 'rate_per_second'),
    (dict(window_hours=721), 'window_hours'),
    (dict(delivery_timeout=0), 'delivery_timeout'),
    (dict(event_ids=['ch_123']), 'event_ids'),
    (dict(event_ids=[]), 'event_ids'),
    (dict(state_file='relative/state.json'), 'state_file'),
    (dict(state_file='/nonexistent-folder-svpms/state.json'), 'state_file'),
    (dict(url='ftp://127.0.0.1/hook'), 'url'),
    (dict(url='http://user:pw-secret@127.0.0.1/hook'), 'url'),
    (dict(api_url='http://stripe.example.com'), 'api_url'),
    (dict(secret_id=' '), 'secret_id'),
    (dict(api_key='sk_test_with space in it 0000'), 'api_key'),
])
def test_bad_input_names_the_option_and_sends_nothing(moto, srv, hook, secret_id, state, override, needle):
    make_failed(srv, hook.url, 1)
    args = dict(url=hook.url, secret_id=secret_id, state_file=state)
    args.update(override)
    result = replay(moto, srv, check=False, **args)
    assert result.failed and needle in result['msg'], result['msg']
    assert result['error_kind'] == 'invalid_option'
    assert 'pw-secret' not in result.stdout
    assert hook.received == [] and not os.path.exists(state)
