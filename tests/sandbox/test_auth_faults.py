"""The sandbox's scenario-3 (authentication failures) side, against real backends.

One sandbox on free loopback ports (moto_server with the JWT signing-key
secret, the twin, its own redis-server, the users table on the machine's
PostgreSQL), shared by the tests in file order: healthy login/me/logout and
the JWKS, the IdP stand-in's metadata -> redis_down, restarted by the
connection's restart command (argv, no shell) on the same port ->
user_table_denied, ended by GRANT as the runbook would -> idp_cert_expired,
ended by `heal` -> jwt_key_mismatch, ended by a new key plus a forced
redeploy as the runbook would -> all four at once, ended by `heal` -> the
failures in awslogs and /twin/state, no password in any log -> `stop` with
Redis already down. Keys are checked with our own jwt_keys module utils and
the metadata with saml_metadata, as the modules read them.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psycopg2
import pytest
import yaml

from ansible_collections.svpms.incident_response.plugins.module_utils import jwt_keys, saml_metadata
from tests.helpers.servers import REPO
from tests.helpers.waits import until

SANDBOX_DIR = os.path.join(REPO, 'sandbox')
sys.path.insert(0, SANDBOX_DIR)

from svpms_sandbox import auth  # noqa: E402
from svpms_sandbox import constants as C  # noqa: E402
from svpms_sandbox.procs import http_json, pid_alive, port_free  # noqa: E402

PG_ADMIN = dict(host=os.environ.get(C.PG_HOST_ENV) or C.PG_DEFAULT_HOST,
                port=int(os.environ.get(C.PG_PORT_ENV) or C.PG_DEFAULT_PORT),
                user=os.environ.get(C.PG_ADMIN_ENV) or C.PG_DEFAULT_ADMIN, connect_timeout=3)
PROBE = {'email': C.PROBE_USER, 'password': C.PROBE_PASSWORD}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 is an answer to look at, not to follow


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def call(method, url, body=None, token=None):
    """-> (status, headers, body bytes); JSON bodies for dicts; never follows redirects."""
    data = json.dumps(body).encode('utf-8') if isinstance(body, dict) else body
    headers = {'Content-Type': 'application/json'} if data is not None else {}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def jcall(method, url, body=None, token=None):
    status, _headers, raw = call(method, url, body, token)
    return status, json.loads(raw) if raw else None


def conn(box):
    with open(box.connection_file) as fh:
        return yaml.safe_load(fh)


def login(box, **override):
    return jcall('POST', conn(box)['svpms_login_url'], dict(PROBE, **override))


def me(box, token):
    return jcall('GET', conn(box)['svpms_login_check_url'], token=token)


def login_and_me(box):
    status, body = login(box)
    assert status == 200, body
    return me(box, body['access_token'])


def twin_auth(box):
    status, state = http_json(box.twin_url + '/twin/state?window=5', timeout=5)
    assert status == 200
    return state['auth']


def secret_stage(box, stage='AWSCURRENT'):
    """(version id, jwt_keys.ParsedKey) of a stage of the signing-key secret."""
    resp = box.boto('secretsmanager').get_secret_value(SecretId=C.JWT_SECRET_ID, VersionStage=stage)
    return resp['VersionId'], jwt_keys.parse_secret(secret_string=resp['SecretString'])


def jwks_publishes(box, parsed):
    status, doc = jcall('GET', conn(box)['svpms_jwks_url'])
    assert status == 200
    summary = jwt_keys.jwks_summary(doc)
    assert summary['problems'] == []
    return jwt_keys.published(parsed, summary)[0]


def metadata(box):
    status, headers, raw = call('GET', conn(box)['svpms_saml_metadata_url'])
    assert status == 200 and headers['Content-Type'] == 'application/samlmetadata+xml'
    return saml_metadata.parse_metadata(raw)


def pg(sql, args=(), dbname='postgres'):
    connection = psycopg2.connect(dbname=dbname, application_name='svpms-sandbox-test', **PG_ADMIN)
    connection.autocommit = True
    try:
        with connection.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        connection.close()


def cli(state_dir, *args):
    env = dict(os.environ, PYTHONPATH=SANDBOX_DIR)
    return subprocess.run([sys.executable, '-m', 'svpms_sandbox', '--state-dir', state_dir] + list(args),
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def token_parts(token):
    head, claims, _sig = token.split('.')
    return (json.loads(base64.urlsafe_b64decode(head + '=' * (-len(head) % 4))),
            json.loads(base64.urlsafe_b64decode(claims + '=' * (-len(claims) % 4))))


def test_connection_file_has_the_auth_keys(box):
    c = conn(box)
    twin = box.twin_url
    app = 'svpms_sbx_%d_app' % box.twin_port
    assert {k: c[k] for k in c if k.startswith(('svpms_login', 'svpms_logout', 'svpms_sso', 'svpms_jwt', 'svpms_jwks',
                                                'svpms_saml', 'svpms_users', 'svpms_session'))} == {
        'svpms_login_url': twin + '/api/v1/auth/login',
        'svpms_login_check_url': twin + '/api/v1/auth/me',
        'svpms_logout_url': twin + '/api/v1/auth/logout',
        'svpms_sso_start_url': twin + '/api/v1/auth/saml/login',
        'svpms_login_probe_user': 'synthetic-probe@svpms.example.com',
        'svpms_login_probe_password': 'sandbox-probe-password',
        'svpms_jwt_secret_id': 'svpms/sandbox/api/jwt-signing-key',
        'svpms_jwks_url': twin + '/.well-known/jwks.json',
        'svpms_saml_metadata_url': twin + '/idp/metadata',
        'svpms_saml_support_contact': 'Identity team (sandbox IdP stand-in): identity-oncall@svpms.example.com, '
                                      '+1-555-0100',
        'svpms_users_table': 'public.users',
        'svpms_session_redis_host': '127.0.0.1',
        'svpms_session_redis_port': box.redis_port,
    }
    assert c['svpms_db_app_user'] == app
    assert c['svpms_redis_restart_command'] == [
        '/usr/bin/env', 'PYTHONPATH=' + SANDBOX_DIR, sys.executable, '-m', 'svpms_sandbox',
        '--state-dir', box.state_dir, 'redis-start']
    # the users as seeded: the probe user plus USER_COUNT others, pbkdf2 hashes, SELECT for the API role
    db = c['svpms_db_name']
    assert pg('SELECT count(*), count(*) FILTER (WHERE active) FROM public.users', dbname=db) == [
        (C.USER_COUNT + 1, C.USER_COUNT + 1 - C.USER_COUNT // 10)]
    [(encoded,)] = pg('SELECT password_hash FROM public.users WHERE email = %s', (C.PROBE_USER,), dbname=db)
    algorithm, iterations, _salt, _b64 = encoded.split('$')
    assert (algorithm, iterations) == ('pbkdf2_sha256', str(C.PBKDF2_ITERATIONS))
    assert auth.verify_password(C.PROBE_PASSWORD, encoded) and C.PROBE_PASSWORD not in encoded
    assert pg("SELECT has_table_privilege(%s, 'public.users', 'SELECT')", (app,), dbname=db) == [(True,)]


def test_healthy_login_me_logout(box):
    c = conn(box)
    status, body = login(box)
    assert status == 200 and body['token_type'] == 'Bearer' and body['expires_in'] == 900
    token = body['access_token']
    header, claims = token_parts(token)
    _vid, current = secret_stage(box)
    assert header == {'alg': 'RS256', 'typ': 'JWT', 'kid': current.kid}
    assert claims['sub'] == C.PROBE_USER and claims['exp'] - claims['iat'] == 900
    # the session lives in the sandbox Redis for an hour
    key = C.SESSION_KEY_PREFIX + claims['sid']
    session = json.loads(box.redis_client().get(key))
    assert session['email'] == C.PROBE_USER and 3500 < box.redis_client().ttl(key) <= 3600
    assert me(box, token) == (200, {'email': C.PROBE_USER, 'session_id': claims['sid']})
    status, _headers, raw = call('POST', c['svpms_logout_url'], token=token)
    assert (status, raw) == (204, b'')
    assert box.redis_client().get(key) is None
    assert me(box, token)[1]['error'] == 'session_expired'
    assert jcall('POST', c['svpms_logout_url'], token=token)[1]['error'] == 'session_expired'
    # the client errors
    assert login(box, password='wrong-password') == (401, {
        'error': 'invalid_credentials', 'message': 'unknown user, wrong password or inactive account'})
    assert login(box, email='nobody@svpms.example.com')[0] == 401
    assert login(box, email='user010@svpms.example.com')[0] == 401  # inactive (and an unknown password)
    assert jcall('POST', c['svpms_login_url'], b'not json')[1]['error'] == 'invalid_request'
    assert jcall('POST', c['svpms_login_url'], {'email': C.PROBE_USER})[0] == 400
    assert jcall('GET', c['svpms_login_url'])[0] == 405
    status, headers, raw = call('GET', c['svpms_login_check_url'])
    assert status == 401 and json.loads(raw)['error'] == 'invalid_token' and 'Bearer' in headers['WWW-Authenticate']
    assert me(box, 'not.a.token')[1]['error'] == 'invalid_token'
    # signed with the right key but expired; tampered claims
    resp = box.boto('secretsmanager').get_secret_value(SecretId=C.JWT_SECRET_ID)
    key_obj = auth.load_key(resp['SecretString'])
    now = int(time.time())
    expired = auth.encode_jwt({'sub': C.PROBE_USER, 'sid': claims['sid'], 'iat': now - 1000, 'exp': now - 100}, key_obj)
    assert me(box, expired)[1]['error'] == 'token_expired'
    head, _body, sig = login(box)[1]['access_token'].split('.')
    forged = auth.b64url(json.dumps({'sub': 'admin@svpms.example.com', 'sid': 'x', 'exp': now + 60}).encode())
    assert me(box, '.'.join((head, forged, sig)))[1]['error'] == 'invalid_token'


def test_jwks_publishes_the_awscurrent_key(box):
    _vid, current = secret_stage(box)
    assert current.parses and current.problem is None
    assert (current.kind, current.shape, current.bits, current.private) == ('rsa', 'pem', 2048, True)
    status, doc = jcall('GET', conn(box)['svpms_jwks_url'])
    assert status == 200 and [k['kid'] for k in doc['keys']] == [current.kid]
    assert {k: doc['keys'][0][k] for k in ('kty', 'alg', 'use')} == {'kty': 'RSA', 'alg': 'RS256', 'use': 'sig'}
    assert jwks_publishes(box, current) is True
    state = twin_auth(box)
    assert state['signing_kid'] == current.kid and state['verification_kids'] == [current.kid]
    assert state['deployment_id'] == box.service()['deployments'][0]['id']


def test_idp_metadata_and_sso_start(box):
    c = conn(box)
    md = metadata(box)
    assert md['entity_id'] == box.twin_url + '/idp'
    assert saml_metadata.pick_sso_endpoint(md['sso_endpoints']) == {
        'binding': saml_metadata.BINDING_REDIRECT, 'location': box.twin_url + '/idp/sso'}
    [cert] = md['certificates']
    assert cert['use'] == 'signing' and cert['days_left'] >= 364 and not cert['expired']
    assert saml_metadata.certificate_problems(md['certificates'], 30, c['svpms_saml_support_contact']) == []
    assert os.path.exists(os.path.join(box.state_dir, 'idp_cert.pem'))
    status, headers, _raw = call('GET', c['svpms_sso_start_url'])
    assert status == 302 and headers['Location'].startswith(box.twin_url + '/idp/sso?SAMLRequest=')
    status, headers, raw = call('GET', headers['Location'])
    assert status == 200 and headers['Content-Type'].startswith('text/html') and b'Sign in' in raw


def test_redis_down_then_the_restart_command_brings_it_back_on_the_same_port(box):
    port, pid = box.redis_port, box.redis_pid()
    res = box.inject('redis_down')
    assert res['kind'] == 'process' and res['redis_pid'] == pid and res['redis_port'] == port
    assert not pid_alive(pid) and port_free(port)
    status, body = login(box)
    assert status == 503 and body['error'] == 'session_store_unavailable' and str(port) in body['message']
    assert box.status()['processes']['redis']['up'] is False
    # the port is taken by someone else: redis-start says so and picks no other port
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the twin's old connections sit in TIME_WAIT
    blocker.bind(('127.0.0.1', port))
    blocker.listen(1)
    try:
        proc = cli(box.state_dir, 'redis-start')
        assert proc.returncode == 1 and 'port %d' % port in proc.stderr and 'taken' in proc.stderr
        assert 'Traceback' not in proc.stderr and not box.redis_running()
    finally:
        blocker.close()
    # the runbook's restart: the connection's argv, without a shell
    argv = conn(box)['svpms_redis_restart_command']
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'answering PING' in proc.stdout and ':%d' % port in proc.stdout
    assert box.redis_running() and box.redis_pid() != pid and box.redis_client().ping()
    assert login_and_me(box)[0] == 200  # the twin reconnects by itself
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # idempotent
    assert proc.returncode == 0 and 'already running' in proc.stdout


def test_user_table_denied_then_grant_recovers(box):
    app, db = 'svpms_sbx_%d_app' % box.twin_port, 'svpms_sandbox_%d' % box.twin_port
    res = box.inject('user_table_denied')
    assert res['kind'] == 'database' and res['app_user'] == app
    for _attempt in range(3):  # every login fails the same way: the connection is not left broken
        status, body = login(box)
        assert status == 500 and body['error'] == 'user_lookup_failed' and 'permission denied' in body['message']
    assert pg("SELECT has_table_privilege(%s, 'public.users', 'SELECT')", (app,), dbname=db) == [(False,)]
    # the runbook's mitigation: grant it again
    pg('GRANT SELECT ON public.users TO %s' % app, dbname=db)
    assert login_and_me(box)[0] == 200
    assert twin_auth(box)['counters']['login']['by_error']['user_lookup_failed'] >= 3


def test_idp_cert_expired_then_heal_renews_it(box):
    res = box.inject('idp_cert_expired')
    assert res['kind'] == 'certificate' and res['twin_wait_seconds'] is not None
    [cert] = metadata(box)['certificates']
    assert cert['expired'] and cert['days_left'] < 0
    problems = saml_metadata.certificate_problems([cert], 30, C.SAML_SUPPORT_CONTACT)
    assert len(problems) == 1 and 'expired' in problems[0] and 'identity-oncall@svpms.example.com' in problems[0]
    status, body = jcall('GET', conn(box)['svpms_sso_start_url'])
    assert status == 502 and body['error'] == 'idp_certificate_expired'
    assert twin_auth(box)['idp_cert']['valid_now'] is False
    assert login_and_me(box)[0] == 200  # password logins do not use the IdP
    res = box.heal()
    assert [a for a in res['actions'] if a.startswith('IdP certificate renewed')]
    [cert] = metadata(box)['certificates']
    assert not cert['expired'] and cert['days_left'] >= 364
    assert call('GET', conn(box)['svpms_sso_start_url'])[0] == 302


def test_jwt_key_mismatch_then_new_key_and_redeploy_recovers(box):
    sm = box.boto('secretsmanager')
    signing_kid = twin_auth(box)['signing_kid']
    res = box.inject('jwt_key_mismatch')
    assert res['kind'] == 'secret' and res['signing_kid'] == signing_kid and res['previous_removed_from']
    _vid, current = secret_stage(box)
    assert current.kid == res['new_kid'] != signing_kid
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.get_secret_value(SecretId=C.JWT_SECRET_ID, VersionStage='AWSPREVIOUS')
    # the symptom: logins work, the token they hand out does not
    status, body = login(box)
    assert status == 200 and token_parts(body['access_token'])[0]['kid'] == signing_kid
    status, body = me(box, body['access_token'])
    assert status == 401 and body['error'] == 'invalid_token' and signing_kid in body['message']
    assert jwks_publishes(box, current) is False  # what jwt_key_info reports
    # the runbook's mitigation: a new key (AWSCURRENT; the mismatched one becomes AWSPREVIOUS) + a redeploy
    value, new = jwt_keys.generate_secret(jwt_keys.KIND_RSA, current)
    sm.put_secret_value(SecretId=C.JWT_SECRET_ID, SecretString=value)
    before = box.service()['deployments'][0]['id']
    box.boto('ecs').update_service(cluster=C.CLUSTER, service=C.SERVICE, forceNewDeployment=True)

    def signing_new_key():
        # signing key (read at the redeploy) and verification keys (their own poll) both moved on
        auth = twin_auth(box)
        return auth if (auth['signing_kid'] == new.kid
                        and auth['verification_kids'] == sorted([new.kid, current.kid])) else None

    state = until(signing_new_key, 30, interval=0.2,
                  what='the twin to sign with the new key and verify with both after the redeploy')
    assert state['deployment_id'] != before
    status, body = login_and_me(box)
    assert status == 200 and body['email'] == C.PROBE_USER
    assert jwks_publishes(box, secret_stage(box)[1]) is True
    assert box.heal()['changed'] is False


def test_all_auth_faults_at_once_then_heal(box):
    for fault in ('redis_down', 'user_table_denied', 'idp_cert_expired', 'jwt_key_mismatch'):
        assert box.inject(fault)['fault'] == fault
    assert login(box)[1]['error'] == 'user_lookup_failed'
    res = box.heal()
    assert res['changed']
    assert [a.split(' ')[0] for a in res['actions']] == ['redis-server', 'GRANT', 'IdP', 'JWT']
    assert 'redis-server restarted on port %d' % box.redis_port in res['actions'][0]
    assert login_and_me(box)[0] == 200
    assert call('GET', conn(box)['svpms_sso_start_url'])[0] == 302
    assert jwks_publishes(box, secret_stage(box)[1]) is True
    assert box.heal()['changed'] is False and box.injected_at() is None
    proc = cli(box.state_dir, 'heal')
    assert proc.returncode == 0 and 'nothing to heal' in proc.stdout


def test_failures_are_logged_and_counted_without_the_password(box):
    events = until(lambda: box.boto('logs').filter_log_events(
        logGroupName=C.LOG_GROUP, filterPattern='"svpms.auth"')['events'], 15, what='svpms.auth log events')
    messages = [e['message'] for e in events]
    for error, status in (('session_store_unavailable', 503), ('user_lookup_failed', 500),
                          ('invalid_credentials', 401), ('invalid_token', 401), ('idp_certificate_expired', 502)):
        line = next((m for m in messages if 'error=%s ' % error in m), None)
        assert line and ' status=%d ' % status in line and ' request_id=' in line, (error, messages[-5:])
    assert any('ERROR svpms.auth' in m and 'path=/api/v1/auth/login status=503' in m for m in messages)
    counters = twin_auth(box)['counters']
    assert counters['login']['by_status']['200'] >= 5 and counters['login']['by_error']['session_store_unavailable']
    assert counters['me']['by_error']['invalid_token'] and counters['saml_login']['by_error']['idp_certificate_expired']
    for name in os.listdir(box.state_dir):
        if name.endswith('.log'):
            with open(os.path.join(box.state_dir, name), 'rb') as fh:
                assert C.PROBE_PASSWORD.encode() not in fh.read(), name
    assert not [m for m in messages if C.PROBE_PASSWORD in m]


def test_stop_with_redis_down_stops_everything(box):
    box.inject('redis_down')
    pids = {'moto': box.moto_pid(), 'twin': box.twin_pid(), 'receiver': box.receiver_pid()}
    res = box.stop()
    assert res['redis'] == (None, 'not running')
    assert {name: res[name][1] for name in pids} == {'moto': 'stopped', 'twin': 'stopped', 'receiver': 'stopped'}
    assert not [name for name, pid in pids.items() if pid_alive(pid)]
    proc = cli(box.state_dir, 'redis-start')  # nothing to restart for a stopped sandbox
    assert proc.returncode == 1 and 'not running' in proc.stderr and not box.redis_running()
