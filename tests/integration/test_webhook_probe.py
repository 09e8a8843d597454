"""webhook_probe against moto_server (the session ``moto`` fixture) and a real local webhook endpoint.

The endpoint is an HTTP server thread on 127.0.0.1 whose behaviour is switched per test: it verifies
deliveries with the official library (``stripe.Webhook.construct_event``, independent of our
stripe_signature), accepts anything, fails with 500, verifies with another secret, is slow, skips the
timestamp check, redirects, or echoes the request (and the secret it knows) in its error. It records what
it received so the tests also check the three requests themselves with the library.

The signing secret is read by the module from Secrets Manager in moto; every test checks that it appears
nowhere in the module's JSON result (any key or value at any depth) nor in its stdout/stderr, and that no
mask (``********``) appears either: the module never even tries to print it.

Not shown here: AccessDenied (moto_server does not enforce IAM unless started for it, and it is shared);
the module maps it through module_utils/aws.py's classify like every other AWS module.
"""

import http.server
import json
import re
import secrets
import threading
import time
import uuid

import boto3
import pytest
import stripe

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.servers import free_port

WHSEC = 'whsec_' + secrets.token_hex(16)
OTHER_WHSEC = 'whsec_' + secrets.token_hex(16)


class Endpoint:
    """Our webhook endpoint stand-in. ``mode`` picks the behaviour; ``requests`` records (headers, body)."""

    def __init__(self, secret):
        self.secret = secret
        self.mode = 'verify'
        self.delay = 0.0
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length)
                outer.requests.append((dict(self.headers.items()), body))
                status, doc, extra = outer.answer(self.headers.get('Stripe-Signature'), body,
                                                  dict(self.headers.items()))
                if outer.delay:
                    time.sleep(outer.delay)
                data = json.dumps(doc).encode()
                try:
                    self.send_response(status)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(data)))
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the probe gave up (timeout tests)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = 'http://127.0.0.1:%d/webhooks/stripe?token=query-is-not-shown' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def verify(self, header, body, secret, tolerance=300):
        try:
            event = stripe.Webhook.construct_event(body, header, secret, tolerance=tolerance)
        except stripe.SignatureVerificationError:
            return 400, {'error': 'invalid_signature'}, {}
        except ValueError:
            return 400, {'error': 'invalid_payload'}, {}
        return 200, {'received': True, 'id': event.id}, {}

    def answer(self, header, body, headers):
        mode = self.mode
        if mode in ('verify', 'slow'):
            return self.verify(header, body, self.secret)
        if mode == 'accept_all':
            return 200, {'received': True}, {}
        if mode == 'no_tolerance':  # checks the signature but not the timestamp (replays pass)
            return self.verify(header, body, self.secret, tolerance=0)
        if mode == 'verify_then_crash':  # a handler that blows up on anything it cannot verify
            status, doc, extra = self.verify(header, body, self.secret)
            return (500, {'error': 'unhandled_exception'}, {}) if status != 200 else (status, doc, extra)
        if mode == 'error500':
            return 500, {'error': 'internal_error'}, {}
        if mode == 'wrong_secret':
            return self.verify(header, body, OTHER_WHSEC)
        if mode == 'redirect':
            return 302, {}, {'Location': '/elsewhere'}
        if mode == 'echo':  # a careless error page: echoes the request and the secret it knows
            return 400, {'error': self.secret, 'secret': self.secret, 'headers': headers,
                         'body': body.decode('utf-8'), 'message': 'expected secret %s' % self.secret}, {}
        raise AssertionError(mode)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class Env:
    def __init__(self, endpoint_url):
        self.endpoint_url = endpoint_url
        self.sm = boto3.client('secretsmanager', region_name=AWS_TEST_CREDS['region'], endpoint_url=endpoint_url,
                               aws_access_key_id='setup', aws_secret_access_key='setup')
        self.sensitive = [WHSEC, OTHER_WHSEC]

    def create(self, value):
        name = 'svpms/it/stripe-webhook-%s' % uuid.uuid4().hex[:10]
        self.sm.create_secret(Name=name, SecretString=value)
        self.sensitive.append(value)
        return name

    def run(self, check=False, **kwargs):
        args = dict(AWS_TEST_CREDS, endpoint_url=self.endpoint_url)
        args.update(kwargs)
        result = run_module('webhook_probe', args, check=check)
        assert_no_traceback(result)
        assert_no_secret(result, self.sensitive)
        return result


def _walk(value, path='$'):
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + '.<key>', key
            yield from _walk(item, '%s.%s' % (path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, '%s[%d]' % (path, i))
    else:
        yield path, value


def assert_no_secret(result, sensitive):
    for path, value in _walk(dict(result)):
        if isinstance(value, str):
            for secret in sensitive:
                assert secret not in value, 'secret leaked at %s' % path
                assert value == '' or len(value) < 12 or value not in secret, 'secret piece at %s' % path
    text = result.stdout + result.stderr
    for secret in sensitive + [AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key']]:
        assert secret not in text
    # The secret is also registered as no_log; a mask would mean something tried to print it. (A URL with
    # user:password@ is echoed back redacted as ********@ - the bad-input test; that mask is ours.)
    assert '********' not in text.replace('//********@', '//')


@pytest.fixture(scope='module')
def env(moto):
    return Env(moto.endpoint)


@pytest.fixture(scope='module')
def secret_name(env):
    return env.create(WHSEC)


@pytest.fixture()
def endpoint():
    server = Endpoint(WHSEC)
    yield server
    server.stop()


def _check_requests(endpoint, stale_seconds=600):
    """The three requests, in order, as the library sees them."""
    assert len(endpoint.requests) == 3
    (h_bad, b_bad), (h_stale, b_stale), (h_valid, b_valid) = endpoint.requests
    assert b_bad == b_stale == b_valid
    event = json.loads(b_valid)
    assert event['id'].startswith('evt_svpms_probe_') and event['object'] == 'event'
    assert event['livemode'] is False and event['data'] == {'object': {}}
    assert h_valid['Content-Type'].startswith('application/json')
    stripe.Webhook.construct_event(b_valid, h_valid['Stripe-Signature'], WHSEC)
    with pytest.raises(stripe.SignatureVerificationError, match='No signatures found matching'):
        stripe.Webhook.construct_event(b_bad, h_bad['Stripe-Signature'], WHSEC)
    with pytest.raises(stripe.SignatureVerificationError, match='tolerance'):
        stripe.Webhook.construct_event(b_stale, h_stale['Stripe-Signature'], WHSEC)
    stripe.WebhookSignature.verify_header(b_stale, h_stale['Stripe-Signature'], WHSEC, tolerance=0)
    t_stale = int(h_stale['Stripe-Signature'].split(',')[0][2:])
    t_valid = int(h_valid['Stripe-Signature'].split(',')[0][2:])
    assert stale_seconds <= t_valid - t_stale <= stale_seconds + 5
    return event


# --------------------------------------------------------------------------- healthy endpoint


@pytest.mark.parametrize('check', [False, True], ids=['run', 'check_mode'])
def test_correct_endpoint(env, secret_name, endpoint, check):
    r = env.run(check=check, url=endpoint.url, secret_id=secret_name)
    assert r.rc == 0 and not r.failed and r['changed'] is False
    assert r['accepted'] is True and r['rejects_bad_signature'] is True and r['rejects_stale_timestamp'] is True
    assert r['security_finding'] is False and r['security_message'] is None
    assert r['reachable'] is True and r['error_kind'] is None and r['problems'] == []
    assert r['checks']['valid']['outcome'] == 'accepted' and r['checks']['valid']['status'] == 200
    assert r['checks']['valid']['error'] is None and r['checks']['valid']['latency_ms'] > 0
    for name in ('bad_signature', 'stale_timestamp'):
        assert r['checks'][name] == dict(r['checks'][name], outcome='rejected', status=400,
                                         error='invalid_signature')
    assert r['url'] == endpoint.url.split('?')[0]  # no query string
    assert r['secret_id'] == secret_name and r['event_type'] == 'svpms.probe'
    event = _check_requests(endpoint)
    assert r['event_id'] == event['id'] and event['type'] == 'svpms.probe'
    assert 'security' not in r['msg'].lower()


@pytest.mark.parametrize('shape', ['secret', 'signing_secret'])
def test_json_secret_and_options(env, endpoint, shape):
    name = env.create(json.dumps({shape: WHSEC, 'note': 'rotated 2026-11'}))
    r = env.run(url=endpoint.url, secret_id=name, event_type='svpms.probe.custom', stale_seconds=900)
    assert r['accepted'] is True and r['rejects_stale_timestamp'] is True and r['problems'] == []
    event = _check_requests(endpoint, stale_seconds=900)
    assert event['type'] == 'svpms.probe.custom' and r['event_type'] == 'svpms.probe.custom'


# --------------------------------------------------------------------------- findings


def test_accepts_anything_is_a_security_finding(env, secret_name, endpoint):
    endpoint.mode = 'accept_all'
    r = env.run(url=endpoint.url, secret_id=secret_name)
    assert r.rc == 0 and not r.failed
    assert r['accepted'] is True
    assert r['rejects_bad_signature'] is False and r['rejects_stale_timestamp'] is False
    assert r['security_finding'] is True
    msg = r['security_message']
    assert 'P0' in msg and 'Data breach or security compromise' in msg and 'forged signature' in msg
    assert r['problems'][0] == msg and 'SECURITY FINDING' in r['msg']


def test_replay_accepted_is_a_security_finding(env, secret_name, endpoint):
    endpoint.mode = 'no_tolerance'
    r = env.run(url=endpoint.url, secret_id=secret_name)
    assert r['accepted'] is True and r['rejects_bad_signature'] is True
    assert r['rejects_stale_timestamp'] is False and r['security_finding'] is True
    assert 'replayed with a timestamp 600 seconds old' in r['security_message']
    assert 'forged signature' not in r['security_message']


def test_server_error(env, secret_name, endpoint):
    endpoint.mode = 'error500'
    r = env.run(url=endpoint.url, secret_id=secret_name)
    assert r.rc == 0 and not r.failed and r['reachable'] is True
    assert r['accepted'] is False and r['error_kind'] == 'server_error'
    assert r['rejects_bad_signature'] is None and r['rejects_stale_timestamp'] is None
    assert r['security_finding'] is False
    assert r['checks']['valid'] == dict(r['checks']['valid'], outcome='server_error', status=500,
                                        error='internal_error')
    assert len(r['problems']) == 1
    assert 'answered HTTP 500 internal_error to a correctly signed event' in r['problems'][0]


def test_forged_event_crashing_the_handler(env, secret_name, endpoint):
    endpoint.mode = 'verify_then_crash'
    r = env.run(url=endpoint.url, secret_id=secret_name)
    assert r['accepted'] is True and r['error_kind'] == 'server_error' and r['security_finding'] is False
    assert r['rejects_bad_signature'] is None and r['rejects_stale_timestamp'] is None
    assert len(r['problems']) == 2 and all('instead of a 4xx rejection' in p for p in r['problems'])


def test_wrong_secret_on_the_endpoint(env, secret_name, endpoint):
    endpoint.mode = 'wrong_secret'
    r = env.run(url=endpoint.url, secret_id=secret_name)
    assert r['accepted'] is False and r['security_finding'] is False
    assert r['rejects_bad_signature'] is True and r['rejects_stale_timestamp'] is True
    assert r['error_kind'] is None
    assert r['checks']['valid']['status'] == 400 and r['checks']['valid']['error'] == 'invalid_signature'
    assert len(r['problems']) == 1
    assert "the endpoint's secret does not match Stripe's" in r['problems'][0]
    assert secret_name in r['problems'][0]


def test_slow_endpoint(env, secret_name, endpoint):
    endpoint.mode = 'slow'
    endpoint.delay = 0.4
    r = env.run(url=endpoint.url, secret_id=secret_name, slow_ms=200)
    assert r['accepted'] is True and r['security_finding'] is False
    assert r['checks']['valid']['latency_ms'] >= 400
    assert len(r['problems']) == 1 and 'more than slow_ms=200' in r['problems'][0]


def test_timeout_is_bounded(env, secret_name, endpoint):
    endpoint.mode = 'slow'
    endpoint.delay = 5
    started = time.monotonic()
    r = env.run(url=endpoint.url, secret_id=secret_name, timeout=0.5)
    assert time.monotonic() - started < 4.5  # three requests of at most 0.5 s, plus the module start
    assert r.rc == 0 and not r.failed
    assert r['reachable'] is False and r['error_kind'] == 'timeout' and r['accepted'] is None
    assert all(c['outcome'] == 'timeout' and c['status'] is None for c in r['checks'].values())
    assert 'did not answer any probe request (timeout)' in r['problems'][0]


def test_closed_port_is_a_result(env, secret_name):
    url = 'http://127.0.0.1:%d/webhooks/stripe' % free_port()
    r = env.run(url=url, secret_id=secret_name)
    assert r.rc == 0 and not r.failed and r['changed'] is False
    assert r['reachable'] is False and r['error_kind'] == 'unreachable'
    assert r['accepted'] is None and r['rejects_bad_signature'] is None and r['security_finding'] is False
    assert all(c['outcome'] == 'unreachable' for c in r['checks'].values())
    assert len(r['problems']) == 1 and 'Stripe cannot deliver events' in r['problems'][0]


def test_redirect_is_not_followed(env, secret_name, endpoint):
    endpoint.mode = 'redirect'
    r = env.run(url=endpoint.url, secret_id=secret_name)
    assert r['checks']['valid']['outcome'] == 'redirect' and r['checks']['valid']['status'] == 302
    assert r['accepted'] is False and len(endpoint.requests) == 3  # /elsewhere never requested
    assert any('does not follow redirects' in p for p in r['problems'])


def test_echoing_endpoint_never_leaks_the_secret(env, secret_name, endpoint):
    endpoint.mode = 'echo'
    r = env.run(url=endpoint.url, secret_id=secret_name)
    assert r['accepted'] is False and r['rejects_bad_signature'] is True
    # the error string held the secret: it is dropped, not masked
    assert all(c['error'] is None for c in r['checks'].values())


def test_secret_that_is_not_whsec_is_flagged(env, endpoint):
    value = 'sk_test_' + secrets.token_hex(12)
    name = env.create(value)
    endpoint.secret = value
    r = env.run(url=endpoint.url, secret_id=name)
    assert r['accepted'] is True
    assert any('does not start with whsec_' in p for p in r['problems'])


# --------------------------------------------------------------------------- failures


def test_missing_secret_fails_with_not_found(env, endpoint):
    r = env.run(url=endpoint.url, secret_id='svpms/it/no-such-webhook-secret')
    assert r.failed and r['error_kind'] == 'not_found'
    assert 'svpms/it/no-such-webhook-secret' in r['msg'] and 'not probed' in r['msg']
    assert endpoint.requests == []


def test_unreachable_secrets_manager_fails(env, secret_name, endpoint):
    r = env.run(url=endpoint.url, secret_id=secret_name, endpoint_url='http://127.0.0.1:%d' % free_port(),
                connect_timeout=1, read_timeout=2)
    assert r.failed and r['error_kind'] == 'unreachable' and 'not probed' in r['msg']
    assert endpoint.requests == []


@pytest.mark.parametrize('value,why', [
    (json.dumps({'key': 'whsec_abcdefabcdefabcdef'}), '"secret" or "signing_secret"'),
    ('{not json', 'not valid JSON'),
    ('whsec_two words', 'whitespace'),
])
def test_unusable_secret_value_fails(env, endpoint, value, why):
    name = env.create(value)
    r = env.run(url=endpoint.url, secret_id=name)
    assert r.failed and r['error_kind'] == 'invalid_secret' and why in r['msg']
    assert endpoint.requests == []


@pytest.mark.parametrize('args,param', [
    (dict(url='ftp://127.0.0.1/hook'), 'url'),
    (dict(url='http://user:hunter2hunter2@127.0.0.1/hook'), 'url'),
    (dict(url='   '), 'url'),
    (dict(secret_id=' '), 'secret_id'),
    (dict(event_type='bad type!'), 'event_type'),
    (dict(stale_seconds=300), 'stale_seconds'),
    (dict(slow_ms=0), 'slow_ms'),
    (dict(timeout=0), 'timeout'),
    (dict(timeout=61), 'timeout'),
])
def test_bad_input_names_the_parameter(env, secret_name, args, param):
    full = dict(url='http://127.0.0.1:9/hook', secret_id=secret_name)
    full.update(args)
    r = env.run(**full)
    assert r.failed and r['msg'].startswith(param), r['msg']
    assert 'hunter2hunter2' not in r.stdout + r.stderr


# --------------------------------------------------------------------------- secret versions


ISO_UTC = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$')


def test_secret_version_reports_current_and_previous(env, endpoint):
    name = env.create(WHSEC)
    first = env.sm.describe_secret(SecretId=name)['VersionIdsToStages']
    (only,) = first
    r = env.run(url=endpoint.url, secret_id=name)
    assert r['accepted'] is True and r['notes'] == []
    sv = r['secret_version']
    assert sv['current_version_id'] == only and ISO_UTC.match(sv['current_created'])
    assert sv['previous_version_id'] is None and sv['previous_created'] is None

    # The signing secret is changed out of band: a new version becomes AWSCURRENT, the old one AWSPREVIOUS.
    new_value = 'whsec_' + secrets.token_hex(16)
    env.sensitive.append(new_value)
    new = env.sm.put_secret_value(SecretId=name, SecretString=new_value)['VersionId']
    endpoint.requests.clear()
    r = env.run(url=endpoint.url, secret_id=name)  # env.run checks neither value appears anywhere
    sv = r['secret_version']
    assert set(sv) == {'current_version_id', 'current_created', 'previous_version_id', 'previous_created'}
    assert sv['current_version_id'] == new and sv['previous_version_id'] == only
    assert ISO_UTC.match(sv['current_created']) and ISO_UTC.match(sv['previous_created'])
    assert r['notes'] == []
    # The probe signed with the new (AWSCURRENT) value, which the endpoint does not know.
    assert r['accepted'] is False and "does not match Stripe's" in r['problems'][0]
    headers, body = endpoint.requests[2]  # the correctly signed event, the last of the three
    stripe.Webhook.construct_event(body, headers['Stripe-Signature'], new_value)


def test_secret_version_follows_a_moved_awscurrent(env, endpoint):
    """AWSCURRENT moved back to the older version: the probe signs with it and reports it. (It reads the value by
    stage: moto answers a read without VersionStage with the newest version, which the endpoint would reject.)"""
    name = env.create(WHSEC)
    (old,) = env.sm.describe_secret(SecretId=name)['VersionIdsToStages']
    new_value = 'whsec_' + secrets.token_hex(16)
    env.sensitive.append(new_value)
    new = env.sm.put_secret_value(SecretId=name, SecretString=new_value)['VersionId']
    env.sm.update_secret_version_stage(SecretId=name, VersionStage='AWSCURRENT', MoveToVersionId=old,
                                       RemoveFromVersionId=new)
    r = env.run(url=endpoint.url, secret_id=name)
    assert r['accepted'] is True and r['problems'] == [] and r['notes'] == []
    assert r['secret_version']['current_version_id'] == old
    assert r['secret_version']['previous_version_id'] == new
