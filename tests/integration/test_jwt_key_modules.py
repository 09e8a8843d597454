"""jwt_key_info and jwt_key_rotate against moto_server (the session ``moto`` fixture).

Secrets Manager in moto keeps real staging labels: put_secret_value with
VersionStages=['AWSPENDING'] and update_secret_version_stage behave as in AWS
(moving AWSCURRENT makes the version it leaves AWSPREVIOUS). rotate_secret is
never used (moto's, without a Lambda, empties AWSCURRENT; notes/moto.md).
moto quirk found here: for a SecretBinary secret, get_secret_value without
VersionStage/VersionId keeps returning the first value after a rotation; the
modules always read by VersionId, and the tests by VersionStage.
Every secret name is unique (moto is shared by the session). The JWKS is
served by a small HTTP server thread on loopback.

Not shown here: AccessDenied (moto_server does not enforce IAM unless started
for it, and it is shared); the module maps it through module_utils/aws.py's
classify like every other AWS module.
"""

import http.server
import json
import socket
import threading
import uuid

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.svpms.incident_response.plugins.module_utils import jwt_keys
from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.servers import free_port

HMAC_GOOD = 'hmac-good-' + 'Q7' * 20                 # 50 bytes
HMAC_SHORT = 'tooshort-Secret9'                       # 16 bytes < 32
GARBAGE = 'this is not a key, just words -- zqxjv'


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _secret_fragments(value):
    """Substrings of a secret value that must never appear in module output."""
    if isinstance(value, bytes):
        return []
    try:
        doc = json.loads(value)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        out = []
        for field in ('private_key_pem', 'private_key', 'pem', 'key', 'secret'):
            if isinstance(doc.get(field), str):
                out.extend(_secret_fragments(doc[field]))
        return out
    if '-----BEGIN' in value:
        lines = [ln for ln in value.splitlines() if ln and not ln.startswith('-----')]
        return [lines[1], lines[-2], lines[-1]]  # body lines, including the short last one
    return [value]


class Env:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.sm = boto3.client('secretsmanager', region_name=AWS_TEST_CREDS['region'], endpoint_url=endpoint,
                               aws_access_key_id='setup', aws_secret_access_key='setup')
        self.values = []  # every secret value created or read: checked against every output

    def create(self, value):
        name = 'svpms/it/jwt-%s' % uuid.uuid4().hex[:10]
        if isinstance(value, bytes):
            self.sm.create_secret(Name=name, SecretBinary=value)
        else:
            self.sm.create_secret(Name=name, SecretString=value)
        self.values.append(value)
        return name

    def versions(self, name):
        """{version_id: sorted stages} straight from Secrets Manager."""
        resp = self.sm.list_secret_version_ids(SecretId=name)
        return dict((v['VersionId'], sorted(v['VersionStages'])) for v in resp['Versions'])

    def stage(self, name, stage):
        return jwt_keys.stage_versions(self.sm.describe_secret(SecretId=name)['VersionIdsToStages']).get(stage)

    def value(self, name, stage='AWSCURRENT'):
        resp = self.sm.get_secret_value(SecretId=name, VersionStage=stage)
        value = resp.get('SecretString', resp.get('SecretBinary'))
        self.values.append(value)
        return value

    def run(self, module, check=False, **kwargs):
        args = dict(AWS_TEST_CREDS, endpoint_url=self.endpoint)
        args.update(kwargs)
        result = run_module(module, args, check=check)
        assert_no_traceback(result)
        text = result.stdout + result.stderr
        for secret in (AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key']):
            assert secret not in text
        for value in self.values:
            for fragment in _secret_fragments(value):
                assert fragment not in text, 'key material leaked by %s' % module
        assert 'BEGIN PRIVATE KEY' not in text and 'BEGIN EC PRIVATE' not in text
        # The modules also register every value they read as no_log; a mask in the output would
        # mean something tried to print one.
        assert '********' not in text
        return result


@pytest.fixture(scope='module')
def env(moto):
    return Env(moto.endpoint)


@pytest.fixture(scope='module')
def rsa_pem():
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope='module')
def ec_pem():
    return _pem(ec.generate_private_key(ec.SECP256R1()))


class JWKSServer:
    """Serves ``self.doc`` as JSON at /jwks.json on 127.0.0.1 (404 elsewhere), in a thread."""

    def __init__(self):
        self.doc = {'keys': []}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.split('?')[0] != '/jwks.json':
                    self.send_error(404)
                    return
                body = json.dumps(outer.doc).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/jwks.json' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, *values):
        keys = []
        for value in values:
            parsed = jwt_keys.parse_secret(value)
            jwk = dict(parsed.jwk, kid=parsed.kid, use='sig', alg=parsed.alg)
            keys.append(jwk)
        self.doc = {'keys': keys}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope='module')
def jwks():
    server = JWKSServer()
    yield server
    server.stop()


# --------------------------------------------------------------------------- jwt_key_info


def test_info_rsa_pem(env, rsa_pem):
    name = env.create(rsa_pem)
    cur = env.stage(name, 'AWSCURRENT')
    r = env.run('jwt_key_info', secret_id=name)
    assert r.rc == 0 and not r.failed and r['changed'] is False
    assert r['exists'] is True and r['reachable'] is True
    assert r['stages']['AWSCURRENT']['version_id'] == cur and r['stages']['AWSCURRENT']['created_at'].endswith('Z')
    c = r['current']
    expected_kid = jwt_keys.parse_secret(rsa_pem).thumbprint
    assert (c['kind'], c['alg'], c['bits'], c['kid'], c['kid_source']) == ('rsa', 'RS256', 2048, expected_kid, 'thumbprint')
    assert c['parses'] is True and c['problem'] is None and c['version_id'] == cur
    assert 0 <= c['age_days'] < 1
    assert r['rotation_due'] is False and r['problems'] == []
    assert 'previous' not in r


def test_info_ec_json_with_kid_and_rotation_due(env, ec_pem):
    name = env.create(json.dumps({'kid': 'api-2026-11', 'alg': 'ES256', 'private_key_pem': ec_pem}))
    r = env.run('jwt_key_info', secret_id=name, max_age_days=0)
    c = r['current']
    assert (c['kind'], c['curve'], c['kid'], c['kid_source'], c['shape']) == ('ec', 'P-256', 'api-2026-11', 'explicit', 'json_pem')
    assert r['rotation_due'] is True
    assert any('older than max_age_days=0' in p for p in r['problems'])


def test_info_hmac_json(env):
    name = env.create(json.dumps({'kid': 'hs-1', 'alg': 'HS256', 'key': HMAC_GOOD}))
    r = env.run('jwt_key_info', secret_id=name)
    c = r['current']
    assert (c['kind'], c['kid'], c['key_bytes'], c['problem']) == ('hmac', 'hs-1', len(HMAC_GOOD), None)
    assert r['problems'] == []


def test_info_hmac_too_short(env):
    name = env.create(HMAC_SHORT)
    r = env.run('jwt_key_info', secret_id=name)
    assert r['current']['kind'] == 'hmac' and r['current']['parses'] is True
    assert 'needs at least 32 bytes' in r['current']['problem']
    assert any('HMAC key is 16 bytes' in p for p in r['problems'])


def test_info_garbage(env):
    name = env.create(GARBAGE)
    r = env.run('jwt_key_info', secret_id=name)
    assert not r.failed
    assert r['current']['parses'] is False and r['current']['kind'] is None
    assert any('AWSCURRENT key' in p and 'neither a PEM key' in p for p in r['problems'])


def test_info_missing_secret_is_a_finding(env):
    r = env.run('jwt_key_info', secret_id='svpms/it/jwt-does-not-exist-%s' % uuid.uuid4().hex[:6])
    assert r.rc == 0 and not r.failed
    assert r['exists'] is False and r['reachable'] is True and r['error_kind'] == 'not_found'
    assert 'does not exist' in r['msg'] and r['current'] is None


def test_info_unreachable_aws_is_a_finding(env):
    args = dict(secret_id='svpms/it/anything', endpoint_url='http://127.0.0.1:%d' % free_port())
    r = env.run('jwt_key_info', **args)
    assert r.rc == 0 and not r.failed
    assert r['reachable'] is False and r['exists'] is False and r['error_kind'] == 'unreachable'
    assert 'could not reach' in r['msg']


def test_info_bad_options(env):
    r = env.run('jwt_key_info', secret_id='x', max_age_days=-1)
    assert r.failed and 'max_age_days must be 0 or more' in r['msg']
    r = env.run('jwt_key_info', secret_id='x', jwks_url='ftp://example/jwks.json')
    assert r.failed and r['msg'].startswith('jwks_url must use http')
    r = env.run('jwt_key_info', secret_id='x', jwks_timeout=0)
    assert r.failed and 'jwks_timeout' in r['msg']


def test_info_reports_unfinished_rotation(env, rsa_pem):
    name = env.create(rsa_pem)
    pending = _pem(ec.generate_private_key(ec.SECP256R1()))
    env.values.append(pending)
    env.sm.put_secret_value(SecretId=name, SecretString=pending, VersionStages=['AWSPENDING'])
    r = env.run('jwt_key_info', secret_id=name)
    assert r['pending']['kind'] == 'ec' and set(r['stages']) == {'AWSCURRENT', 'AWSPENDING'}
    assert any('rotation was started and not finished' in p for p in r['problems'])


# --------------------------------------------------------------------------- jwt_key_rotate


def test_rotate_check_mode_changes_nothing(env, rsa_pem):
    name = env.create(rsa_pem)
    before = env.versions(name)
    cur = env.stage(name, 'AWSCURRENT')
    r = env.run('jwt_key_rotate', check=True, secret_id=name)
    assert r.rc == 0 and r['changed'] is True
    assert env.versions(name) == before
    assert r['before'] == dict(current_version=cur, previous_version=None,
                               current_kid=jwt_keys.parse_secret(rsa_pem).kid, kind='rsa')
    assert r['after']['previous_version'] == cur and r['after']['current_version'] is None
    assert r['after']['kind'] == 'rsa' and r['new_version_id'] is None and r['done'] == []
    assert len(r['plan']) == 4 and cur in r['plan'][1] and 'force-redeploy' in r['plan'][3]
    assert 'current_version: %s' % cur in r['diff']['before']


def test_rotate_applies_and_rollback_restores(env, rsa_pem):
    name = env.create(rsa_pem)
    old = env.stage(name, 'AWSCURRENT')
    old_kid = jwt_keys.parse_secret(rsa_pem).kid

    r = env.run('jwt_key_rotate', secret_id=name)
    assert r.rc == 0 and r['changed'] is True, r
    new = r['new_version_id']
    new_value = env.value(name)           # registered: must not be in any output (checked in run)
    for fragment in _secret_fragments(new_value):
        assert fragment not in r.stdout + r.stderr
    parsed = jwt_keys.parse_secret(new_value)
    assert parsed.kind == 'rsa' and parsed.problem is None and parsed.kid != old_kid
    assert env.versions(name) == {old: ['AWSPREVIOUS'], new: ['AWSCURRENT']}
    assert r['after'] == dict(current_version=new, previous_version=old, current_kid=parsed.kid, kind='rsa')
    assert r['done'] == r['plan'][:3]

    info = env.run('jwt_key_info', secret_id=name)
    assert info['current']['kid'] == parsed.kid and info['previous']['kid'] == old_kid

    # rollback in check mode: nothing moves
    snapshot = env.versions(name)
    r = env.run('jwt_key_rotate', check=True, secret_id=name, action='rollback')
    assert r['changed'] is True and env.versions(name) == snapshot
    assert r['after'] == dict(current_version=old, previous_version=new, current_kid=old_kid, kind='rsa')

    r = env.run('jwt_key_rotate', secret_id=name, action='rollback')
    assert r.rc == 0 and r['changed'] is True
    assert env.versions(name) == {old: ['AWSCURRENT'], new: ['AWSPREVIOUS']}
    assert env.value(name) == rsa_pem
    assert r['after'] == dict(current_version=old, previous_version=new, current_kid=old_kid, kind='rsa')


def test_rotate_twice_drops_oldest_and_says_so(env, ec_pem):
    name = env.create(json.dumps({'kid': 'k1', 'private_key_pem': ec_pem, 'issuer': 'svpms'}))
    first = env.run('jwt_key_rotate', secret_id=name)
    second_check = env.run('jwt_key_rotate', check=True, secret_id=name)
    assert 'loses AWSPREVIOUS' in second_check['plan'][1]
    doc = json.loads(env.value(name))
    assert doc['issuer'] == 'svpms' and doc['kid'] == first['after']['current_kid'] != 'k1'


def test_rotate_hmac_json_same_kind(env):
    name = env.create(json.dumps({'kid': 'hs-1', 'alg': 'HS512', 'secret': 'z' * 64}))
    r = env.run('jwt_key_rotate', secret_id=name)
    assert r['after']['kind'] == 'hmac' and r['after']['current_kid'].startswith('hmac-')
    doc = json.loads(env.value(name))
    assert set(doc) == {'kid', 'alg', 'secret'} and doc['alg'] == 'HS512' and len(doc['secret']) == 86


def test_rotate_too_short_hmac_to_ec(env):
    name = env.create(HMAC_SHORT)
    r = env.run('jwt_key_rotate', secret_id=name, key_type='ec')
    assert r['before']['kind'] == 'hmac' and r['after']['kind'] == 'ec'
    info = env.run('jwt_key_info', secret_id=name)
    assert info['current']['kind'] == 'ec' and info['current']['problem'] is None
    assert info['previous']['kind'] == 'hmac' and info['current']['kid'] == r['after']['current_kid']


def test_rotate_binary_hmac(env):
    name = env.create(b'\xfe\x01' * 32)
    r = env.run('jwt_key_rotate', secret_id=name)
    assert r['after']['kind'] == 'hmac'
    # moto quirk: get_secret_value WITHOUT VersionStage returns the first SecretBinary for ever;
    # with VersionStage='AWSCURRENT' (what AWS defaults to, and what the modules use: VersionId) it is right.
    value = env.sm.get_secret_value(SecretId=name, VersionStage='AWSCURRENT')['SecretBinary']
    assert isinstance(value, bytes) and len(value) == 64 and value != b'\xfe\x01' * 32


def test_rotate_garbage_needs_key_type(env):
    name = env.create(GARBAGE)
    before = env.versions(name)
    r = env.run('jwt_key_rotate', secret_id=name)
    assert r.failed and r['error_kind'] == 'unknown_key' and 'set key_type' in r['msg']
    assert env.versions(name) == before
    r = env.run('jwt_key_rotate', secret_id=name, key_type='hmac')
    assert r['changed'] and r['after']['kind'] == 'hmac'


def test_rollback_without_previous_fails_cleanly(env, rsa_pem):
    name = env.create(rsa_pem)
    before = env.versions(name)
    r = env.run('jwt_key_rotate', secret_id=name, action='rollback')
    assert r.failed and r['error_kind'] == 'no_previous' and 'nothing to roll back to' in r['msg']
    assert env.versions(name) == before


def test_rotate_missing_secret_and_unreachable_fail_cleanly(env):
    r = env.run('jwt_key_rotate', secret_id='svpms/it/jwt-missing-%s' % uuid.uuid4().hex[:6])
    assert r.failed and r['error_kind'] == 'not_found' and r['reachable'] is True
    r = env.run('jwt_key_rotate', secret_id='svpms/it/x', endpoint_url='http://127.0.0.1:%d' % free_port())
    assert r.failed and r['error_kind'] == 'unreachable' and r['reachable'] is False


# --------------------------------------------------------------------------- JWKS


def test_jwks_published_then_not_after_rotation(env, jwks, rsa_pem):
    name = env.create(rsa_pem)
    jwks.publish(rsa_pem)
    r = env.run('jwt_key_info', secret_id=name, jwks_url=jwks.url)
    kid = jwt_keys.parse_secret(rsa_pem).kid
    assert r['jwks']['reachable'] is True and r['jwks']['kids'] == [kid]
    assert r['jwks']['current_published'] is True and r['jwks']['error'] is None
    assert r['problems'] == []

    rotated = env.run('jwt_key_rotate', secret_id=name)
    env.value(name)
    r = env.run('jwt_key_info', secret_id=name, jwks_url=jwks.url)
    assert r['jwks']['current_published'] is False and r['jwks']['previous_published'] is True
    assert any('does not publish the AWSCURRENT key (kid %s)' % rotated['after']['current_kid'] in p
               for p in r['problems'])

    jwks.publish(env.value(name), rsa_pem)   # the auth service now publishes both: grace period
    r = env.run('jwt_key_info', secret_id=name, jwks_url=jwks.url)
    assert r['jwks']['current_published'] is True and r['jwks']['previous_published'] is True
    assert r['problems'] == []


def test_jwks_hmac_is_not_applicable(env, jwks):
    name = env.create(HMAC_GOOD)
    r = env.run('jwt_key_info', secret_id=name, jwks_url=jwks.url)
    assert r['jwks']['reachable'] is True and r['jwks']['current_published'] is None


def test_jwks_unreachable_404_and_timeout_are_findings(env, jwks, rsa_pem):
    name = env.create(rsa_pem)
    r = env.run('jwt_key_info', secret_id=name, jwks_url='http://127.0.0.1:%d/jwks.json' % free_port())
    assert not r.failed and r['current']['kind'] == 'rsa'
    assert r['jwks']['reachable'] is False and r['jwks']['error_kind'] == 'unreachable'
    assert any('Could not read the JWKS' in p for p in r['problems'])

    r = env.run('jwt_key_info', secret_id=name, jwks_url=jwks.url.replace('jwks.json', 'nope.json'))
    assert r['jwks']['reachable'] is True and r['jwks']['error_kind'] == 'not_found'

    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(1)  # accepts the TCP connection, never answers
    try:
        url = 'http://127.0.0.1:%d/jwks.json' % silent.getsockname()[1]
        r = env.run('jwt_key_info', secret_id=name, jwks_url=url, jwks_timeout=0.5)
    finally:
        silent.close()
    assert not r.failed and r['jwks']['error_kind'] == 'timeout' and r['jwks']['reachable'] is False


def test_jwks_not_a_jwks(env, jwks, rsa_pem):
    name = env.create(rsa_pem)
    jwks.doc = {'hello': 'world'}
    r = env.run('jwt_key_info', secret_id=name, jwks_url=jwks.url)
    assert r['jwks']['error_kind'] == 'invalid_jwks' and 'not a JWKS' in r['jwks']['error']
