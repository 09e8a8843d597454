"""login_probe against a real HTTP(S) auth service of ours on loopback.

A ThreadingHTTPServer in a thread (stopped in the fixture's teardown) implements
``/<mode>/login`` (POST JSON), ``/<mode>/me`` (GET with a bearer token) and
``/<mode>/logout`` (POST with the bearer). The path's first segment switches the
behaviour, so every test has its own mode and its own hit log: healthy (a
JWT-shaped token with a ``kid`` header, sessions kept server-side), rotating
kids, login 503 ``{"error":"session_store_unavailable"}``, login 500, me 401
``{"error":"invalid_token"}``, slow and trickling answers (beyond the timeout),
wrong password, a redirect, no token, an oversized answer, a failing logout,
and servers that echo the password, the token and the Authorization header in
their error answers. An HTTPS server with a self-signed certificate covers TLS
errors, a closed port the unreachable case. Every module runs as a real module
file (``run_module``); nothing of ours is mocked.
"""

import base64
import datetime
import http.server
import json
import secrets
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers.modules import assert_no_traceback, run_module
from tests.helpers.servers import free_port

USER = 'synthetic-probe@svpms.example.test'
PASSWORD = 'Pr0beUserPassw0rdX7'  # only [A-Za-z0-9]: a server echoing it as its "error" passes the format filter
KID = 'svpms-2026-01'
ENV = 'SVPMS_LOGIN_PROBE_PASSWORD'


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def make_jwt(kid):
    header = b64url(json.dumps({'alg': 'RS256', 'typ': 'JWT', 'kid': kid}).encode())
    payload = b64url(json.dumps({'sub': USER, 'iat': int(time.time())}).encode())
    return '%s.%s.%s' % (header, payload, b64url(secrets.token_bytes(64)))


class AuthService:
    """State shared by the handler threads: issued tokens, live sessions, hits per mode."""

    def __init__(self):
        self.lock = threading.Lock()
        self.issued = []       # every token handed out
        self.sessions = set()  # tokens whose session exists
        self.hits = {}         # mode -> [(method, endpoint, authorization)]
        self.counters = {}
        self.inflight = 0
        self.max_inflight = 0

    def hit(self, mode, method, endpoint, auth):
        """Record a request; return its number among the requests to this mode's endpoint."""
        with self.lock:
            self.hits.setdefault(mode, []).append((method, endpoint, auth))
            key = (mode, endpoint)
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]

    def issue(self, kid=KID, jwt=True):
        token = make_jwt(kid) if jwt else 'opaque' + secrets.token_hex(20)
        with self.lock:
            self.issued.append(token)
            self.sessions.add(token)
        return token

    def endpoints(self, mode):
        return [e for _m, e, _a in self.hits.get(mode, [])]


def handler_for(service):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):
            pass

        def _send(self, status, doc=None, raw=None, reason=None, headers=()):
            body = raw if raw is not None else (json.dumps(doc).encode() if doc is not None else b'')
            try:
                self.send_response(status, reason)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _route(self):
            parts = self.path.split('?')[0].strip('/').split('/')
            mode = parts[0] if parts else ''
            endpoint = parts[1] if len(parts) > 1 else ''
            length = int(self.headers.get('Content-Length') or 0)
            raw = self.rfile.read(length) if length else b''
            auth = self.headers.get('Authorization')
            n = service.hit(mode, self.command, endpoint, auth)
            token = auth[len('Bearer '):] if auth and auth.startswith('Bearer ') else None
            return mode, endpoint, raw, auth, token, n

        def do_POST(self):  # noqa: N802 - http.server API
            mode, endpoint, raw, auth, token, n = self._route()
            if endpoint == 'login':
                return self.login(mode, raw, n)
            if endpoint == 'logout':
                if mode == 'logoutfail':
                    return self._send(500, {'error': 'session_store_unavailable'})
                if mode == 'echo':  # echoes the bearer back as its error string
                    return self._send(500, {'error': token, 'authorization': auth})
                with service.lock:
                    known = token in service.sessions
                    service.sessions.discard(token)
                return self._send(204) if known else self._send(401, {'error': 'invalid_token'})
            return self._send(404, {'error': 'not_found'})

        def do_GET(self):  # noqa: N802
            mode, endpoint, _raw, auth, token, _n = self._route()
            if endpoint != 'me':
                return self._send(404, {'error': 'not_found'})
            if mode == 'badtoken':
                return self._send(401, {'error': 'invalid_token'})
            if mode == 'slowcheck':
                time.sleep(2.0)
            if mode == 'echo':  # the token (short, opaque) as error, and a piece of it, and the header
                return self._send(401, {'error': token, 'detail': 'bad %s' % auth}, reason='Bad ' + str(auth))
            if mode == 'echopiece':
                return self._send(401, {'error': token[:24]})
            if token in service.sessions:
                return self._send(200, {'email': USER})
            return self._send(401, {'error': 'invalid_token'})

        def login(self, mode, raw, n):
            try:
                doc = json.loads(raw.decode('utf-8'))
            except ValueError:
                return self._send(400, {'error': 'invalid_json'})
            if mode == 'store503':
                return self._send(503, {'error': 'session_store_unavailable', 'hint': 'redis down'})
            if mode == 'err500':
                return self._send(500, raw=b'<html><body>Internal Server Error</body></html>')
            if mode == 'flaky' and n % 2 == 0:
                return self._send(503, {'error': 'session_store_unavailable'})
            if mode == 'slow':
                time.sleep(2.0)
            if mode == 'trickle':  # headers at once, then one byte every 0.2 s for 4 s
                try:
                    self.send_response(200)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', '20')
                    self.end_headers()
                    for _i in range(20):
                        self.wfile.write(b' ')
                        self.wfile.flush()
                        time.sleep(0.2)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return None
            if mode == 'redirect':
                return self._send(302, {'error': 'moved'}, headers=[('Location', '/healthy/login')])
            if mode == 'echologin':  # echoes the request body, the password and the headers
                return self._send(401, {'error': doc.get('password'), 'request': doc,
                                        'headers': dict(self.headers)},
                                  reason='Denied %s' % doc.get('password'))
            if mode == 'echoprefix':
                return self._send(401, {'error': 'bad_password_' + str(doc.get('password'))})
            if mode == 'concurrent':
                with service.lock:
                    service.inflight += 1
                    service.max_inflight = max(service.max_inflight, service.inflight)
                time.sleep(0.4)
                with service.lock:
                    service.inflight -= 1
            if mode == 'form':
                if doc.get('username') != USER or doc.get('secret') != PASSWORD:
                    return self._send(401, {'error': 'invalid_credentials'})
                return self._send(201, {'token': service.issue(jwt=False)})
            if doc.get('email') != USER or doc.get('password') != PASSWORD:
                return self._send(401, {'error': 'invalid_credentials'})
            if mode == 'notoken':
                return self._send(200, {'status': 'ok', 'access_token': ''})
            if mode == 'big':
                return self._send(200, raw=b'{"access_token": "' + b'a' * (300 * 1024) + b'"}')
            if mode == 'rotating':
                return self._send(200, {'access_token': service.issue('svpms-2026-0%d' % (n % 2 + 1))})
            if mode == 'echo':
                return self._send(200, {'access_token': service.issue(jwt=False)})
            return self._send(200, {'access_token': service.issue(), 'token_type': 'Bearer', 'expires_in': 900})

    return Handler


def start_server(handler, context=None):
    port = free_port()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name='auth-service-%d' % port, daemon=True)
    thread.start()
    return server, thread, port


def stop_server(server, thread):
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def auth():
    service = AuthService()
    server, thread, port = start_server(handler_for(service))
    service.base = 'http://127.0.0.1:%d' % port
    yield service
    stop_server(server, thread)


@pytest.fixture
def tls_auth(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, '127.0.0.1')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    service = AuthService()
    server, thread, port = start_server(handler_for(service), context)
    service.base = 'https://127.0.0.1:%d' % port
    yield service
    stop_server(server, thread)


@pytest.fixture(autouse=True)
def no_password_env(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


def probe_args(service, mode, with_check=True, logout=False, **kwargs):
    args = dict(login_url='%s/%s/login' % (service.base, mode), username=USER, password=PASSWORD,
                count=3, timeout=2)
    if with_check:
        args['check_url'] = '%s/%s/me' % (service.base, mode)
    if logout:
        args['logout_url'] = '%s/%s/logout' % (service.base, mode)
    args.update(kwargs)
    return args


def assert_no_secrets(result, service=None, password=PASSWORD):
    """Neither the password nor a token nor the Authorization header in the result, and nothing that
    Ansible had to mask for us: outside the invocation no '********' may appear."""
    assert_no_traceback(result)
    assert result.stderr == '', result.stderr
    assert password not in result.stdout
    for token in (service.issued if service else []):
        assert token not in result.stdout
        assert token[:24] not in result.stdout
    assert 'Bearer' not in result.stdout
    assert 'Authorization' not in result.stdout and 'authorization' not in result.stdout
    body = dict((k, v) for k, v in result.items() if k != 'invocation')
    text = json.dumps(body)
    assert '********' not in text and 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' not in text, text
    if 'invocation' in result:
        assert result['invocation']['module_args']['password'] == '********'


def probe(service, mode, check_mode=False, **kwargs):
    result = run_module('login_probe', probe_args(service, mode, **kwargs), check=check_mode)
    assert_no_secrets(result, service, kwargs.get('password', PASSWORD))
    assert not result.failed, result
    assert result['changed'] is False
    return result


# --------------------------------------------------------------------------- healthy

def test_healthy_login_check_and_logout(auth):
    result = probe(auth, 'healthy', count=5, logout=True)
    assert result['attempts'] == 5 and result['succeeded'] == 5 and result['failed_attempts'] == 0
    assert result['failure_rate_pct'] == 0.0
    assert result['reachable'] is True and result['error_kind'] is None
    assert result['failure_reasons'] == {} and result['sample_errors'] == []
    assert result['token_kids'] == [KID]
    assert result['login']['status_counts'] == {'200': 5} and result['login']['errors'] == 0
    assert result['check']['status_counts'] == {'200': 5} and result['check']['requests'] == 5
    assert result['logout'] == dict(requests=5, status_counts={'204': 5}, errors=0, failure_reasons={},
                                    latency_p50_ms=result['logout']['latency_p50_ms'],
                                    latency_p95_ms=result['logout']['latency_p95_ms'])
    assert 0 < result['latency_p50_ms'] <= result['latency_p95_ms'] < 2000
    assert result['login_url'] == auth.base + '/healthy/login'
    assert result['check_url'] == auth.base + '/healthy/me'
    assert result['logout_url'] == auth.base + '/healthy/logout'
    # every request really reached the server with the bearer it issued; the sessions are gone
    assert auth.endpoints('healthy') == ['login', 'me', 'logout'] * 5
    for (_m, endpoint, header), token in zip([h for h in auth.hits['healthy'] if h[1] == 'me'], auth.issued):
        assert endpoint == 'me' and header == 'Bearer ' + token
    assert auth.sessions == set()
    assert '0 of 5 attempts failed' in result['msg']


def test_without_logout_the_sessions_stay_and_no_logout_summary(auth):
    result = probe(auth, 'healthy', count=2)
    assert result['succeeded'] == 2 and 'logout' not in result and result['logout_url'] is None
    assert len(auth.sessions) == 2


def test_login_only_without_check_url(auth):
    result = probe(auth, 'healthy', with_check=False, count=2)
    assert result['succeeded'] == 2 and result['check_url'] is None
    assert result['check'] == dict(requests=0, status_counts={}, errors=0, latency_p50_ms=None,
                                   latency_p95_ms=None)
    assert auth.endpoints('healthy') == ['login', 'login']


def test_rotating_kids_and_opaque_tokens(auth):
    rotating = probe(auth, 'rotating', count=4)
    assert rotating['succeeded'] == 4
    assert rotating['token_kids'] == ['svpms-2026-01', 'svpms-2026-02']
    # an opaque (non-JWT) token, custom field names and status 201
    form = probe(auth, 'form', with_check=False, count=2, username_field='username', password_field='secret',
                 token_field='token', expected_login_status=[200, 201])
    assert form['succeeded'] == 2 and form['token_kids'] == []
    assert form['login']['status_counts'] == {'201': 2}


def test_check_mode_still_probes(auth):
    result = probe(auth, 'healthy', check_mode=True, count=3, logout=True)
    assert result['succeeded'] == 3 and result['changed'] is False
    assert auth.endpoints('healthy') == ['login', 'me', 'logout'] * 3


def test_password_from_environment(auth, monkeypatch):
    monkeypatch.setenv(ENV, PASSWORD)
    args = probe_args(auth, 'healthy', count=1)
    del args['password']
    result = run_module('login_probe', args)
    assert_no_secrets(result, auth)
    assert result['succeeded'] == 1, result


def test_concurrency_bounds_attempts_in_flight(auth):
    result = probe(auth, 'concurrent', with_check=False, count=8, concurrency=4, timeout=5)
    assert result['succeeded'] == 8
    # not one after another, and never more than asked: counted by the server (each login takes 0.4 s), not by
    # the wall clock, which a loaded CI machine stretches
    assert 2 <= auth.max_inflight <= 4, auth.max_inflight
    sequential = probe(auth, 'concurrent', with_check=False, count=2, concurrency=1)
    assert sequential['succeeded'] == 2 and auth.max_inflight <= 4


# --------------------------------------------------------------------------- failures are results

def test_session_store_unavailable(auth):
    result = probe(auth, 'store503', count=4, logout=True)
    assert result['attempts'] == 4 and result['succeeded'] == 0 and result['failed_attempts'] == 4
    assert result['failure_rate_pct'] == 100.0
    assert result['reachable'] is True and result['error_kind'] is None
    assert result['failure_reasons'] == {'login HTTP 503 session_store_unavailable': 4}
    assert result['login']['status_counts'] == {'503': 4} and result['login']['errors'] == 4
    assert result['check']['requests'] == 0 and result['logout']['requests'] == 0
    assert len(result['sample_errors']) == 4
    sample = result['sample_errors'][0]
    assert sample['attempt'] == 1 and sample['stage'] == 'login' and sample['status'] == 503
    assert sample['reason'] == 'login HTTP 503 session_store_unavailable' and sample['latency_ms'] > 0
    assert result['latency_p50_ms'] is None and result['token_kids'] == []
    assert 'redis down' not in result.stdout  # only the short error string of the body
    assert auth.endpoints('store503') == ['login'] * 4  # no retries, no check without a token
    assert '4 of 4 attempts failed' in result['msg']


def test_half_of_the_logins_fail(auth):
    result = probe(auth, 'flaky', count=6)
    assert result['succeeded'] == 3 and result['failed_attempts'] == 3
    assert result['failure_rate_pct'] == 50.0
    assert result['failure_reasons'] == {'login HTTP 503 session_store_unavailable': 3}
    assert [s['attempt'] for s in result['sample_errors']] == [2, 4, 6]
    assert result['login']['status_counts'] == {'200': 3, '503': 3}
    assert result['token_kids'] == [KID] and result['latency_p50_ms'] is not None


def test_internal_error_without_json(auth):
    result = probe(auth, 'err500', count=2)
    assert result['failure_reasons'] == {'login HTTP 500': 2}
    assert 'Internal Server Error' not in result.stdout


def test_issued_token_rejected_by_the_check(auth):
    result = probe(auth, 'badtoken', count=3, logout=True)
    assert result['succeeded'] == 0
    assert result['failure_reasons'] == {'check HTTP 401 invalid_token': 3}
    assert result['login']['errors'] == 0 and result['check']['errors'] == 3
    assert result['check']['status_counts'] == {'401': 3}
    assert result['sample_errors'][0]['stage'] == 'check'
    assert result['token_kids'] == [KID]  # tokens were issued
    assert result['logout']['status_counts'] == {'204': 3}  # and their sessions removed anyway
    assert auth.sessions == set()


def test_wrong_password(auth):
    result = probe(auth, 'healthy', count=2, password='Wr0ngPassw0rd1')
    assert result['failure_reasons'] == {'login HTTP 401 invalid_credentials': 2}
    assert PASSWORD not in result.stdout


def test_login_timeout_is_unreachable_with_kind_timeout(auth):
    started = time.monotonic()
    result = probe(auth, 'slow', count=2, timeout=0.5)
    assert time.monotonic() - started < 6
    assert result['failure_reasons'] == {'login timeout': 2}
    assert result['reachable'] is False and result['error_kind'] == 'timeout'
    assert result['login']['status_counts'] == {'timeout': 2}
    assert all(400 <= s['latency_ms'] < 1500 for s in result['sample_errors'])


def test_trickling_answer_is_cut_at_the_timeout(auth):
    started = time.monotonic()
    result = probe(auth, 'trickle', with_check=False, count=1, timeout=1)
    assert time.monotonic() - started < 4  # the server would take 4 s
    assert result['failure_reasons'] == {'login timeout': 1}


def test_check_timeout(auth):
    result = probe(auth, 'slowcheck', count=1, timeout=0.5)
    assert result['failure_reasons'] == {'check timeout': 1}
    assert result['reachable'] is True and result['error_kind'] is None


def test_redirect_is_not_followed(auth):
    result = probe(auth, 'redirect', count=2)
    assert result['failure_reasons'] == {'login HTTP 302 moved': 2}
    assert 'healthy' not in auth.hits  # the Location was never requested


def test_no_token_and_oversized_answer(auth):
    result = probe(auth, 'notoken', count=1)
    assert result['failure_reasons'] == {'login no token': 1}
    big = probe(auth, 'big', count=1)
    assert big['failure_reasons'] == {'login answer too large': 1}


def test_failed_logout_is_a_note(auth):
    result = probe(auth, 'logoutfail', count=2, logout=True)
    assert result['succeeded'] == 2 and result['failed_attempts'] == 0
    assert result['logout']['errors'] == 2
    assert result['logout']['failure_reasons'] == {'logout HTTP 500 session_store_unavailable': 2}


def test_closed_port_is_unreachable():
    url = 'http://127.0.0.1:%d' % free_port()
    result = run_module('login_probe', dict(login_url=url + '/login', check_url=url + '/me', username=USER,
                                            password=PASSWORD, count=3, timeout=2))
    assert_no_secrets(result)
    assert not result.failed
    assert result['attempts'] == 3 and result['failed_attempts'] == 3 and result['failure_rate_pct'] == 100.0
    assert result['reachable'] is False and result['error_kind'] == 'unreachable'
    assert result['failure_reasons'] == {'login connection refused': 3}
    assert result['login']['status_counts'] == {'connection_refused': 3}


def test_tls_error_and_validate_certs_false(tls_auth):
    result = probe(tls_auth, 'healthy', count=2)
    assert result['failure_reasons'] == {'login TLS error': 2}
    assert result['reachable'] is False and result['error_kind'] == 'tls'
    relaxed = probe(tls_auth, 'healthy', count=2, validate_certs=False)
    assert relaxed['succeeded'] == 2 and relaxed['token_kids'] == [KID]


# --------------------------------------------------------------------------- secrets never leak

def test_server_echoing_the_password_and_headers(auth):
    result = probe(auth, 'echologin', count=2, concurrency=2)
    # the echoed "error" is the password: it is dropped, the status stays
    assert result['failure_reasons'] == {'login HTTP 401': 2}
    prefixed = probe(auth, 'echoprefix', count=1)
    assert prefixed['failure_reasons'] == {'login HTTP 401': 1}


def test_server_echoing_the_token_and_authorization(auth):
    result = probe(auth, 'echo', count=3, logout=True)
    assert len(auth.issued) == 3
    assert result['failure_reasons'] == {'check HTTP 401': 3}
    assert result['logout']['failure_reasons'] == {'logout HTTP 500': 3}
    piece = probe(auth, 'echopiece', count=1)
    assert piece['failure_reasons'] == {'check HTTP 401': 1}


def test_short_password_does_not_mangle_the_output(auth):
    result = run_module('login_probe', probe_args(auth, 'healthy', count=1, password='1'))
    assert_no_secrets(result, auth, password='Pr0beUserPassw0rdX7')
    assert result['attempts'] == 1 and result['failure_reasons'] == {'login HTTP 401 invalid_credentials': 1}
    assert result['invocation']['module_args']['password'] == '********'


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize('override, parameter', [
    (dict(login_url='ftp://auth.example.test/login'), 'login_url must use http:// or https://'),
    (dict(login_url='https://probe:' + PASSWORD + '@auth.example.test/login'), 'login_url must not embed credentials'),
    (dict(login_url='not a url'), 'login_url'),
    (dict(check_url=''), 'check_url must be an absolute'),
    (dict(logout_url='file:///etc/passwd'), 'logout_url must use http:// or https://'),
    (dict(username=' '), 'username must not be empty'),
    (dict(password=''), 'password must not be empty'),
    (dict(token_field=''), 'token_field must not be empty'),
    (dict(username_field='password'), 'username_field and password_field must differ'),
    (dict(count=0), 'count must be between 1 and 100'),
    (dict(count=101), 'count must be between 1 and 100'),
    (dict(concurrency=9), 'concurrency must be between 1 and 8'),
    (dict(timeout=0), 'timeout must be more than 0 and at most 60'),
    (dict(timeout=61), 'timeout must be more than 0 and at most 60'),
    (dict(expected_login_status=[]), 'expected_login_status must list'),
    (dict(expected_login_status=[200, 99]), 'expected_login_status must hold HTTP statuses'),
])
def test_bad_input_names_the_parameter(override, parameter):
    args = dict(login_url='https://auth.example.test/login', username=USER, password=PASSWORD)
    args.update(override)
    result = run_module('login_probe', args)
    assert_no_traceback(result)
    assert result.failed and result.rc != 0
    assert parameter in result['msg'], result['msg']
    assert PASSWORD not in result.stdout


def test_missing_password_names_the_parameter():
    result = run_module('login_probe', dict(login_url='https://auth.example.test/login', username=USER))
    assert_no_traceback(result)
    assert result.failed and 'password' in result['msg']
