"""saml_idp_info and redis_restart (self-hosted) against real servers on loopback.

saml_idp_info: a small HTTP server thread of ours serves IdP metadata with a real self-signed
certificate (made with ``cryptography``): valid, expired/expiring, a DOCTYPE bomb, a body that is not
XML, an HTTP 500, 2 MiB of data, a slow answer; its SSO endpoint answers 400 to a bare GET (as an IdP
does); another SSO location points at a port where nothing listens. A URL where nothing listens at all
is a finding too. Every case must succeed without a traceback, and the support contact must be in the
problems.

redis_restart: each test starts its own ``redis-server`` (with a password) on a free loopback port and
a restart script in tmp_path that stops that server by its PID and starts the same command line again
on the same port (or fails, or starts nothing, or hangs). The module must wait until PING answers with
a new run_id and report ping_ms; check mode must run nothing (the same PID keeps running); failures must
say what was seen, within the bounds given. Every server is stopped by PID in a finaliser; the machine's
Redis on 6379 is never touched.
"""

import base64
import datetime
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers.modules import assert_no_traceback, run_module
from tests.helpers.servers import free_port, stop_pid

CONTACT = 'Identity team, +49 30 1234567 (24/7)'
REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect'
POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST'


# --------------------------------------------------------------------------- SAML metadata server

def cert_b64(cn, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return base64.encodebytes(cert.public_bytes(serialization.Encoding.DER)).decode('ascii')


def idp_metadata(entity, certs, sso):
    keys = ''.join('<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s'
                   '</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>' % c for c in certs)
    endpoints = ''.join('<md:SingleSignOnService Binding="%s" Location="%s"/>' % e for e in sso)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="%s">'
            '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">%s%s'
            '</md:IDPSSODescriptor></md:EntityDescriptor>\n' % (entity, keys, endpoints)).encode('utf-8')


BOMB = b'''<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol3;"/>'''


@pytest.fixture(scope='module')
def idp():
    port = free_port()
    base = 'http://127.0.0.1:%d' % port
    dead = 'http://127.0.0.1:%d/sso' % free_port()  # nothing listens there
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    valid = cert_b64('login.example.test', now - 30 * day, now + 300 * day)
    expired = cert_b64('login-2025.example.test', now - 400 * day, now - 3 * day)
    expiring = cert_b64('login-old.example.test', now - 300 * day, now + 5 * day + datetime.timedelta(hours=1))
    routes = {
        '/valid': (200, idp_metadata(base + '/valid', [valid],
                                     [(POST, base + '/sso-post'), (REDIRECT, base + '/sso')])),
        '/expired': (200, idp_metadata(base + '/expired', [expired, expiring], [(REDIRECT, base + '/sso')])),
        '/sso-down': (200, idp_metadata(base + '/sso-down', [valid], [(REDIRECT, dead)])),
        '/sso-5xx': (200, idp_metadata(base + '/sso-5xx', [valid], [(REDIRECT, base + '/broken-sso')])),
        '/bomb': (200, BOMB),
        '/notxml': (200, b'<html><body><h1>Maintenance</h1></body></html>'),
        '/text': (200, b'Service temporarily unavailable, try again later\n'),
        '/error': (500, b'internal error'),
        '/forbidden': (403, b'forbidden'),
        '/big': (200, b'<x>' + b'a' * (2 * 1024 * 1024) + b'</x>'),
        '/sso': (400, b'SAMLRequest missing'),
        '/broken-sso': (503, b'upstream down'),
    }
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split('?')[0]
            hits.append(path)
            if path == '/slow':
                time.sleep(3)
                status, body = 200, routes['/valid'][1]
            else:
                status, body = routes.get(path, (404, b'not found'))
            try:
                self.send_response(status)
                self.send_header('Content-Type', 'application/samlmetadata+xml')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield dict(base=base, hits=hits, dead=dead)
    server.shutdown()
    server.server_close()
    thread.join(5)


def saml(url, check=False, **kwargs):
    args = dict(metadata_url=url, timeout=2, support_contact=CONTACT)
    args.update(kwargs)
    result = run_module('saml_idp_info', args, check=check)
    assert_no_traceback(result)
    assert not result.failed, result
    assert result['changed'] is False
    return result


def test_saml_valid_metadata(idp):
    result = saml(idp['base'] + '/valid')
    assert result['reachable'] is True
    assert result['error_kind'] is None
    assert result['metadata_status'] == 200
    assert result['entity_id'] == idp['base'] + '/valid'
    assert result['sso_endpoints'] == [dict(binding=POST, location=idp['base'] + '/sso-post'),
                                       dict(binding=REDIRECT, location=idp['base'] + '/sso')]
    # the HTTP-Redirect endpoint is the one checked; its 400 counts as reachable
    assert result['sso_checked'] == idp['base'] + '/sso'
    assert result['sso_reachable'] is True and result['sso_status'] == 400
    assert [c['subject'] for c in result['certificates']] == ['login.example.test']
    cert = result['certificates'][0]
    assert cert['expired'] is False and 298 <= cert['days_left'] <= 300
    assert result['problems'] == []
    assert 'look fine' in result['msg']


def test_saml_expired_and_expiring_certificates(idp):
    result = saml(idp['base'] + '/expired', check=True)
    assert result['reachable'] is True
    by_cn = dict((c['subject'], c) for c in result['certificates'])
    assert by_cn['login-2025.example.test']['expired'] is True
    assert by_cn['login-old.example.test']['expired'] is False
    assert by_cn['login-old.example.test']['days_left'] == 5
    assert len(result['problems']) == 2
    assert 'CN=login-2025.example.test expired on' in result['problems'][0]
    assert 'CN=login-old.example.test expires in 5 days' in result['problems'][1]
    assert all(CONTACT in p for p in result['problems'])


def test_saml_sso_endpoint_unreachable_or_failing(idp):
    down = saml(idp['base'] + '/sso-down')
    assert down['sso_reachable'] is False and down['sso_status'] is None
    assert down['sso_checked'] == idp['dead']
    assert 'connection error' in down['sso_error']
    assert len(down['problems']) == 1
    assert 'single sign-on endpoint %s is unreachable' % idp['dead'] in down['problems'][0]
    assert CONTACT in down['problems'][0]
    failing = saml(idp['base'] + '/sso-5xx')
    assert failing['sso_reachable'] is False and failing['sso_status'] == 503
    skipped = saml(idp['base'] + '/sso-down', check_sso_endpoint=False)
    assert skipped['sso_reachable'] is None and skipped['sso_checked'] is None and skipped['problems'] == []


@pytest.mark.parametrize('path, kind, reachable, status', [
    ('/bomb', 'unsafe_xml', True, 200),
    ('/notxml', 'not_saml', True, 200),
    ('/text', 'invalid_xml', True, 200),
    ('/error', 'http_error', False, 500),
    ('/forbidden', 'permission', False, 403),
    ('/big', 'too_large', True, 200),
    ('/slow', 'timeout', False, None),
])
def test_saml_unusable_metadata_is_a_finding(idp, path, kind, reachable, status):
    started = time.monotonic()
    result = saml(idp['base'] + path, timeout=1)
    assert time.monotonic() - started < 15
    assert result['error_kind'] == kind, result
    assert result['reachable'] is reachable
    assert result['metadata_status'] == status
    assert result['entity_id'] is None and result['certificates'] == []
    assert result['sso_reachable'] is None
    assert len(result['problems']) == 1 and CONTACT in result['problems'][0]
    assert result['msg']


def test_saml_nothing_listening(idp):
    url = 'http://127.0.0.1:%d/metadata' % free_port()
    result = saml(url)
    assert result['reachable'] is False
    assert result['error_kind'] == 'unreachable'
    assert result['problems'][0].startswith('IdP metadata unreachable: ')
    assert CONTACT in result['problems'][0]


def test_saml_bad_input_names_the_option():
    result = run_module('saml_idp_info', dict(metadata_url='ftp://idp.example.test/metadata'))
    assert_no_traceback(result)
    assert result.failed
    assert 'metadata_url must use http:// or https://' in result['msg']
    result = run_module('saml_idp_info', dict(metadata_url='https://idp.example.test/m', timeout=0))
    assert result.failed and 'timeout must be more than 0' in result['msg']


# --------------------------------------------------------------------------- self-hosted Redis restart

RESTART_SCRIPT = textwrap.dedent('''
    """Test stand-in for a restart command: stop the redis-server in the state file by PID, start it again."""
    import json, os, signal, socket, subprocess, sys, time

    state_path, mode = sys.argv[1], sys.argv[2]
    with open(state_path) as fh:
        state = json.load(fh)
    if mode == 'fail':
        sys.stderr.write('cannot restart redis: permission denied\\n')
        sys.exit(3)
    if mode == 'hang':
        time.sleep(60)
        sys.exit(0)
    with open(state['pidfile']) as fh:
        pid = int(fh.read())
    print('stopping redis-server pid %d' % pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(('127.0.0.1', state['port']), timeout=0.2).close()
        except OSError:
            break
        if time.monotonic() > deadline:
            sys.exit('redis-server pid %d did not stop within 10 s' % pid)
        time.sleep(0.05)
    if mode == 'kill-only':
        sys.exit(0)
    print('starting: ' + ' '.join(state['argv']))
    with open(state['log'], 'ab') as log:
        proc = subprocess.Popen(state['argv'], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    with open(state['pidfile'], 'w') as fh:
        fh.write(str(proc.pid))
''')


def port_open(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=0.2).close()
        return True
    except OSError:
        return False


class RestartableRedis:
    """A redis-server of ours plus the state file the restart script reads (argv, pidfile, port)."""

    password = 'restart-test-secret-7f3a9c'

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = str(tmp_path)
        self.argv = ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                     '--appendonly', 'no', '--daemonize', 'no', '--requirepass', self.password]
        self.pidfile = os.path.join(self.dir, 'redis.pid')
        self.state = os.path.join(self.dir, 'state.json')
        self.script = os.path.join(self.dir, 'restart_redis.py')
        self.log = os.path.join(self.dir, 'redis-%d.log' % self.port)
        self.proc = None

    def start(self):
        with open(self.state, 'w') as fh:
            json.dump(dict(argv=self.argv, pidfile=self.pidfile, port=self.port, log=self.log), fh)
        with open(self.script, 'w') as fh:
            fh.write(RESTART_SCRIPT)
        with open(self.log, 'ab') as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        with open(self.pidfile, 'w') as fh:
            fh.write(str(self.proc.pid))
        self.wait_ping(10)
        return self

    def client(self):
        return redis.Redis(host='127.0.0.1', port=self.port, password=self.password, socket_timeout=2,
                           socket_connect_timeout=2, decode_responses=True, protocol=2)

    def wait_ping(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            try:
                return self.client().ping()
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise RuntimeError('redis-server on %d did not answer within %ss (log %s)'
                                       % (self.port, seconds, self.log))
                time.sleep(0.05)

    def current_pid(self):
        with open(self.pidfile) as fh:
            return int(fh.read())

    def run_id(self):
        return self.client().info('server')['run_id']

    def command(self, mode='restart'):
        return [sys.executable, self.script, self.state, mode]

    def args(self, mode='restart', **kwargs):
        args = dict(restart_command=self.command(mode), host='127.0.0.1', port=self.port, password=self.password,
                    connect_timeout=1, socket_timeout=1, wait_timeout=20)
        args.update(kwargs)
        return args

    def stop(self):
        """Stop our first server (our child) and any server the restart script started, by PID."""
        pid = self.current_pid() if os.path.exists(self.pidfile) else None
        if self.proc is not None:
            stop_pid(self.proc)
        if pid is not None and pid != self.proc.pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while port_open(self.port) and time.monotonic() < deadline:
                time.sleep(0.05)
            if port_open(self.port):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def rredis(tmp_path):
    server = RestartableRedis(tmp_path)
    try:
        yield server.start()
    finally:
        server.stop()


def assert_secret_hidden(result, secret):
    assert secret not in result.stdout
    assert secret not in result.stderr


def test_restart_waits_until_ping_answers(rredis):
    old_pid = rredis.current_pid()
    old_run_id = rredis.run_id()
    result = run_module('redis_restart', rredis.args())
    assert_no_traceback(result)
    assert not result.failed, result
    assert result['changed'] is True
    assert result['method'] == 'command'
    assert result['command']['argv'] == rredis.command()
    assert result['command']['rc'] == 0
    assert 'stopping redis-server pid %d' % old_pid in result['command']['stdout_tail']
    assert isinstance(result['ping_ms'], float) and 0 < result['ping_ms'] < 1000
    assert result['run_id_before'] == old_run_id
    assert result['run_id_after'] == rredis.run_id() != old_run_id
    assert 'to answer PING with a new run_id' in result['waited_for']
    assert 0 < result['elapsed_seconds'] < 20
    new_pid = rredis.current_pid()
    assert new_pid != old_pid
    os.kill(new_pid, 0)  # the new server runs
    assert rredis.proc.poll() is not None  # the old one is gone
    # the script echoed the redis-server command line, password included: never in the output
    assert_secret_hidden(result, rredis.password)


def test_check_mode_runs_nothing(rredis):
    pid = rredis.current_pid()
    run_id = rredis.run_id()
    result = run_module('redis_restart', rredis.args(), check=True)
    assert_no_traceback(result)
    assert not result.failed, result
    assert result['changed'] is True
    assert result['command'] == dict(argv=rredis.command(), rc=None, stdout_tail=None, stderr_tail=None)
    assert result['ping_ms'] is None
    assert rredis.current_pid() == pid and rredis.proc.poll() is None
    assert rredis.run_id() == run_id
    assert_secret_hidden(result, rredis.password)


def test_failing_command_is_a_clear_failure(rredis):
    pid = rredis.current_pid()
    result = run_module('redis_restart', rredis.args('fail'))
    assert_no_traceback(result)
    assert result.failed
    assert result['error_kind'] == 'command_failed'
    assert 'restart_command exited with rc=3: cannot restart redis: permission denied' in result['msg']
    assert 'Redis was not waited for' in result['msg']
    assert result['command']['rc'] == 3
    assert result['ping_ms'] is None
    assert rredis.current_pid() == pid and rredis.proc.poll() is None
    assert_secret_hidden(result, rredis.password)


def test_redis_that_never_comes_back_fails_within_wait_timeout(rredis):
    started = time.monotonic()
    result = run_module('redis_restart', rredis.args('kill-only', wait_timeout=3))
    took = time.monotonic() - started
    assert_no_traceback(result)
    assert result.failed
    assert result['error_kind'] == 'timeout'
    assert 'restart_command exited 0, but Redis 127.0.0.1:%d: no answer after 3s' % rredis.port in result['msg']
    assert 'Connection refused' in result['msg'] or 'refused' in result['msg'].lower()
    assert result['command']['rc'] == 0
    assert result['ping_ms'] is None
    assert result['changed'] is True  # the command ran: the server was stopped
    assert 3 <= result['elapsed_seconds'] < 6
    assert took < 12
    assert not port_open(rredis.port)
    assert_secret_hidden(result, rredis.password)


def test_command_timeout_kills_the_command(rredis):
    started = time.monotonic()
    result = run_module('redis_restart', rredis.args('hang', command_timeout=1))
    assert_no_traceback(result)
    assert result.failed
    assert result['error_kind'] == 'command_failed'
    assert 'did not finish within command_timeout=1s' in result['msg']
    assert result['command']['rc'] is None
    assert time.monotonic() - started < 10
    assert rredis.proc.poll() is None


def test_missing_program_and_bad_input():
    result = run_module('redis_restart', dict(restart_command=['/nonexistent/bin/restart-redis'], port=free_port()))
    assert_no_traceback(result)
    assert result.failed and result['error_kind'] == 'command_failed'
    assert 'could not be started' in result['msg'] and 'nothing was run' in result['msg']
    assert result['changed'] is False
    both = run_module('redis_restart', dict(restart_command=['true'], cache_cluster_id='svpms-prod-sessions-001'))
    assert both.failed and 'mutually exclusive' in both['msg']
    neither = run_module('redis_restart', dict(port=6390))
    assert neither.failed and 'one of the following is required' in neither['msg']
    empty = run_module('redis_restart', dict(restart_command=[]))
    assert empty.failed and 'restart_command must be a non-empty list' in empty['msg']
    interval = run_module('redis_restart', dict(restart_command=['true'], wait_timeout=5, wait_interval=10))
    assert interval.failed and 'wait_interval must be more than 0 and at most wait_timeout' in interval['msg']


def test_wrong_password_fails_before_running_anything(rredis):
    pid = rredis.current_pid()
    result = run_module('redis_restart', rredis.args(password='not-the-password-123'))
    assert_no_traceback(result)
    assert result.failed
    assert result['error_kind'] == 'auth_failed'
    assert 'nothing was run' in result['msg']
    assert result['changed'] is False
    assert result['command']['rc'] is None
    assert rredis.current_pid() == pid and rredis.proc.poll() is None
    assert_secret_hidden(result, 'not-the-password-123')


# --------------------------------------------------------------------------- ElastiCache wiring (moto_server)
# moto cannot reboot (reboot_cache_cluster is not implemented): the reboot and wait are shown with Stubber
# in tests/unit/plugins/modules/test_redis_restart_stubber.py. Here: the module's AWS wiring and its
# failures through a real endpoint.

def test_elasticache_cluster_not_found_through_moto(moto):
    from tests.helpers.modules import AWS_TEST_CREDS
    args = dict(AWS_TEST_CREDS, endpoint_url=moto.endpoint, cache_cluster_id='svpms-missing-001')
    for check in (True, False):
        result = run_module('redis_restart', args, check=check)
        assert_no_traceback(result)
        assert result.failed
        assert result['error_kind'] == 'not_found', result
        assert 'svpms-missing-001 does not exist' in result['msg']
        assert result['rebooted_nodes'] == [] and result['changed'] is False


def test_elasticache_endpoint_unreachable():
    from tests.helpers.modules import AWS_TEST_CREDS
    args = dict(AWS_TEST_CREDS, endpoint_url='http://127.0.0.1:%d' % free_port(), cache_cluster_id='svpms-c-001',
                connect_timeout=1, read_timeout=2)
    result = run_module('redis_restart', args)
    assert_no_traceback(result)
    assert result.failed
    assert result['reachable'] is False and result['error_kind'] == 'unreachable'
    assert 'elasticache:DescribeCacheClusters' in result['msg']
    assert result['changed'] is False
    assert AWS_TEST_CREDS['secret_key'] not in result.stdout
