"""module_utils/webhook_delivery.py: the signing secret (Secrets Manager in moto), masking, and the bounded request.

The requests go to a real HTTP server on loopback (http.server in a thread) through the collection's own opener,
so the redirect, error-answer, body-cap and hard-timeout paths are the ones the modules take.
"""

import http.server
import json
import socket
import threading
import time
import types
import uuid

import boto3
import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils import http_probe
from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_signature
from ansible_collections.svpms.incident_response.plugins.module_utils import webhook_delivery as wd
from ansible_collections.svpms.incident_response.plugins.module_utils.aws import build_client

from tests.helpers.modules import AWS_TEST_CREDS

SECRET = 'whsec_' + 'Zq7' * 12
UA = 'svpms-test-webhook-delivery/1.0'


# --------------------------------------------------------------------------- secrets

@pytest.mark.parametrize('value', [SECRET, '  %s\n' % SECRET, json.dumps({'secret': SECRET}),
                                   json.dumps({'signing_secret': SECRET, 'other': 1}),
                                   json.dumps({'secret': ' ', 'signing_secret': SECRET})])
def test_signing_secret_plain_or_json(value):
    assert wd.signing_secret(value) == SECRET


@pytest.mark.parametrize('value, needle', [
    (None, 'empty'), ('  ', 'empty'), ('{"secret": ', 'not valid JSON'), ('{"a": 1}', 'without a non-empty'),
    ('whsec_abc def', 'whitespace'),
])
def test_signing_secret_rejects_with_a_message_without_the_value(value, needle):
    with pytest.raises(ValueError) as info:
        wd.signing_secret(value)
    assert needle in str(info.value)
    assert 'abc' not in str(info.value)


def test_scrub_and_leaks():
    sensitive = [SECRET, 'raw-' + SECRET]
    out = wd.scrub({'a': ['x %s y' % SECRET, 'raw-%s' % SECRET], 'b': 3}, sensitive)
    assert out == {'a': ['x %s y' % wd.MASK, wd.MASK], 'b': 3}
    assert wd.leaks(SECRET[5:20], sensitive)      # a piece of 8 characters or more
    assert not wd.leaks('whsec', sensitive)       # too short to be a piece
    assert not wd.leaks('', sensitive)


def test_remember_registers_no_log_from_eight_characters():
    module = types.SimpleNamespace(no_log_values=set())
    sensitive = []
    for value in (SECRET, 'short', '   ', None, 42):
        wd.remember(module, sensitive, value)
    assert sensitive == [SECRET, 'short']
    assert module.no_log_values == {SECRET}


@pytest.fixture
def sm(moto):
    params = dict(AWS_TEST_CREDS, endpoint_url=moto.endpoint)
    raw = boto3.client('secretsmanager', region_name=params['region'], endpoint_url=moto.endpoint,
                       aws_access_key_id=params['access_key'], aws_secret_access_key=params['secret_key'])
    return raw, build_client(params, 'secretsmanager', sleep=lambda _s: None)


def _secret(raw, **value):
    name = 'svpms/test/webhook-%s' % uuid.uuid4().hex[:12]
    raw.create_secret(Name=name, **value)
    return name


@pytest.mark.parametrize('value', [dict(SecretString=SECRET), dict(SecretString=json.dumps({'secret': SECRET})),
                                   dict(SecretBinary=SECRET.encode('utf-8'))])
def test_read_signing_secret_keeps_raw_value_and_secret(sm, value):
    raw, client = sm
    kept = []
    assert wd.read_signing_secret(client, _secret(raw, **value), kept.append) == SECRET
    assert kept[-1] == SECRET and len(kept) == 2


def test_read_signing_secret_not_found(sm):
    _raw, client = sm
    with pytest.raises(wd.SigningSecretError) as info:
        wd.read_signing_secret(client, 'svpms/test/missing-%s' % uuid.uuid4().hex[:8], lambda v: None)
    err = info.value
    assert err.kind == 'not_found' and err.aws_error is not None
    msg = err.message('svpms/test/x', 'nothing was replayed')
    assert msg.startswith('The webhook signing secret svpms/test/x does not exist in this account/region')
    assert '; nothing was replayed. ' in msg


def test_read_signing_secret_unusable_value_is_kept_before_the_error(sm):
    raw, client = sm
    bad = '{"secret": "whsec_has a space"}'
    kept = []
    with pytest.raises(wd.SigningSecretError) as info:
        wd.read_signing_secret(client, _secret(raw, SecretString=bad), kept.append)
    assert kept == [bad]
    assert info.value.kind == 'invalid_secret' and info.value.aws_error is None
    msg = info.value.message('svpms/test/y', 'the endpoint was not probed')
    assert msg == ('The webhook signing secret svpms/test/y is unusable: the signing secret holds whitespace; a '
                   'Stripe signing secret is one token (whsec_...); the endpoint was not probed.')


def test_invocation_masks_no_log_options_and_the_url_credentials():
    out = wd.invocation(dict(url='https://u:p@hooks.example.com/stripe?token=abc', secret_key='s', access_key=None),
                        ('access_key', 'secret_key'))
    args = out['module_args']
    assert args['secret_key'] == wd.NO_LOG_MARKER and args['access_key'] is None
    assert args['url'] == 'https://********@hooks.example.com/stripe?token=abc'


# --------------------------------------------------------------------------- answers

@pytest.mark.parametrize('body, code', [
    (b'{"error": "invalid_signature"}', 'invalid_signature'),
    ('{"error": {"code": "bad_thing"}}', 'bad_thing'),
    (b'{"error": {"type": "card_error"}}', 'card_error'),
    (b'{"error": "has spaces in it"}', None),
    (b'[1, 2]', None), (b'not json', None), (b'\xff\xfe', None), (b'', None), (None, None),
])
def test_error_code(body, code):
    assert wd.error_code(body) == code


def test_error_code_never_returns_a_secret_piece():
    assert wd.error_code(json.dumps({'error': SECRET[:20]}), [SECRET]) is None


@pytest.mark.parametrize('raw, word', [
    (dict(kind='http', status=204), 'ok'), (dict(kind='http', status=401), 'rejected'),
    (dict(kind='http', status=302), 'redirect'), (dict(kind='http', status=503), 'server_error'),
    (dict(kind='http', status=101), 'unexpected'), (dict(kind='timeout', status=None), 'timeout'),
])
def test_classify(raw, word):
    assert wd.classify(raw, 'ok') == word


def test_signed_headers_verify_with_the_secret():
    payload = b'{"id": "evt_1"}'
    now = int(time.time())
    headers = wd.signed_headers(payload, SECRET, now)
    assert headers['Content-Type'] == 'application/json; charset=utf-8'
    stripe_signature.verify(payload, headers[stripe_signature.HEADER_NAME], SECRET, now=now)


# --------------------------------------------------------------------------- requests (loopback server)

class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status, body=b'', headers=()):
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        self.server.seen.append(dict(path=self.path, headers=dict(self.headers), body=self.rfile.read(length)))
        if self.path == '/ok':
            return self._answer(200, b'{"received": true}')
        if self.path == '/reject':
            return self._answer(400, b'{"error": "invalid_signature"}')
        if self.path == '/redirect':
            return self._answer(302, headers=[('Location', '/ok')])
        if self.path == '/big':
            return self._answer(200, b'x' * (wd.MAX_BODY_BYTES * 2))
        if self.path == '/trickle':  # one byte a tenth of a second, for longer than any timeout here
            self.send_response(200)
            self.send_header('Content-Length', '100')
            self.end_headers()
            for _i in range(100):
                try:
                    self.wfile.write(b'x')
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
            return
        return self._answer(404)


@pytest.fixture(scope='module')
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.daemon_threads = True
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, 'http://127.0.0.1:%d' % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _send(url, timeout=5.0):
    return wd.send(http_probe.shared_context_opener(True), url, wd.signed_headers(b'{}', SECRET, time.time()), b'{}',
                   timeout, UA)


def test_send_accepted_with_body_and_user_agent(server):
    httpd, base = server
    raw = _send(base + '/ok')
    assert raw['kind'] == 'http' and raw['status'] == 200 and raw['body'] == b'{"received": true}'
    assert raw['latency_ms'] > 0
    seen = httpd.seen[-1]
    assert seen['headers']['User-Agent'] == UA and seen['body'] == b'{}'
    assert stripe_signature.HEADER_NAME in seen['headers']


def test_send_error_answer_keeps_its_body(server):
    _httpd, base = server
    raw = _send(base + '/reject')
    assert raw['status'] == 400 and wd.error_code(raw['body']) == 'invalid_signature'


def test_send_does_not_follow_redirects(server):
    httpd, base = server
    before = len(httpd.seen)
    raw = _send(base + '/redirect')
    assert raw['kind'] == 'http' and raw['status'] == 302
    assert [s['path'] for s in httpd.seen[before:]] == ['/redirect']


def test_send_reads_at_most_the_body_cap(server):
    _httpd, base = server
    raw = _send(base + '/big')
    assert raw['status'] == 200 and len(raw['body']) == wd.MAX_BODY_BYTES


def test_send_gives_up_a_trickling_answer_at_the_timeout(server):
    _httpd, base = server
    started = time.monotonic()
    raw = _send(base + '/trickle', timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert raw['kind'] == 'timeout' and raw['status'] is None and raw['body'] is None


def test_send_unreachable_keeps_no_error_text():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    raw = _send('http://127.0.0.1:%d/ok' % port, timeout=2.0)
    assert raw == dict(kind='unreachable', status=None, latency_ms=raw['latency_ms'], body=None)


def test_request_uses_the_given_reader_and_classifier(server):
    _httpd, base = server

    def read(response, deadline, clock):
        return ('read', response.read())

    raw = wd.request(http_probe.shared_context_opener(True), base + '/ok', {}, b'', 5.0, UA, read=read)
    assert raw['body'] == ('read', b'{"received": true}')
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    raw = wd.request(http_probe.shared_context_opener(True), 'http://127.0.0.1:%d/' % port, {}, b'', 2.0, UA,
                     classify_error=lambda exc: 'refused')
    assert raw['kind'] == 'refused'


@pytest.mark.filterwarnings('ignore::pytest.PytestUnhandledThreadExceptionWarning')
def test_call_with_deadline():
    assert wd.call_with_deadline(lambda: 'done', 1.0, lambda ms: ('late', ms), 't') == 'done'
    out = wd.call_with_deadline(lambda: time.sleep(1.0), 0.1, lambda ms: ('late', ms), 't')
    assert out[0] == 'late' and 90 <= out[1] < 1000

    def boom():
        raise RuntimeError('no')

    assert wd.call_with_deadline(boom, 1.0, lambda ms: 'gave up', 't') == 'gave up'
