"""stripe_key_update as a real module file, against moto_server and the sandbox's Stripe stand-in.

- Secrets Manager: the session ``moto`` fixture (real staging labels:
  put_secret_value with VersionStages=['AWSPENDING'] and
  update_secret_version_stage behave as in AWS). Every secret name is unique.
- Stripe: the stand-in (tests/helpers/stripe.py; localstripe accepts any
  ``sk_`` key longer than 5 characters and refuses ``rk_`` keys; keys can be
  revoked -> 401 ``api_key_expired``), and a scripted loopback receiver for
  a Stripe answer that echoes the whole key back.

Every output is checked: no key (nor its secret middle) in stdout/stderr or
the result, and no Ansible no_log mask either (a mask would mean the module
tried to print a value it had registered).
"""

import json
import uuid

import boto3
import pytest

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.receiver import Receiver
from tests.helpers.servers import free_port
from tests.helpers.stripe import start_stripe

OLD_KEY = 'sk_test_51OldKeyAbCdEfGhIjKlMnOpQrStUvWxYz0123456789old0001'
NEW_KEY = 'sk_test_51NewKeyZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210new1234'
OTHER_KEY = 'sk_test_51OtherKeyQwErTyUiOpAsDfGhJkLzXcVbNm55555other777'
REVOKED_KEY = 'sk_test_51RevokedKeyMnBvCxZlKjHgFdSaPoIuYtReWq0000rev9999'
LIVE_KEY = 'sk_live_51LiveKeyAaBbCcDdEeFfGgHhIiJjKkLlMmNnOoPp000live4242'
RK_KEY = 'rk_test_51RestrictedKeyQqWwEeRrTtYyUuIiOoPpAaSsDd00rk5678'
PK_KEY = 'pk_test_51PublishableKeyQqWwEeRrTtYyUuIiOoPpAaSsDd00pk1111'
KEYS = (OLD_KEY, NEW_KEY, OTHER_KEY, REVOKED_KEY, LIVE_KEY, RK_KEY, PK_KEY)
ELL = '\u2026'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv('SVPMS_NEW_STRIPE_API_KEY', raising=False)
    monkeypatch.delenv('STRIPE_API_KEY', raising=False)


@pytest.fixture(scope='module')
def srv(tmp_path_factory):
    server = start_stripe(str(tmp_path_factory.mktemp('stripe')))
    try:
        yield server
    finally:
        server.stop()


class Env:
    def __init__(self, endpoint, stripe_url):
        self.endpoint = endpoint
        self.stripe_url = stripe_url
        self.sm = boto3.client('secretsmanager', region_name=AWS_TEST_CREDS['region'], endpoint_url=endpoint,
                               aws_access_key_id='setup', aws_secret_access_key='setup')

    def create(self, value):
        name = 'svpms/it/stripe-key-%s' % uuid.uuid4().hex[:10]
        self.sm.create_secret(Name=name, SecretString=value)
        return name

    def versions(self, name):
        """{version_id: sorted stages} straight from Secrets Manager."""
        resp = self.sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
        return dict((v['VersionId'], sorted(v.get('VersionStages') or [])) for v in resp['Versions'])

    def stage(self, name, stage):
        for vid, stages in self.versions(name).items():
            if stage in stages:
                return vid
        return None

    def value(self, name, stage='AWSCURRENT'):
        return self.sm.get_secret_value(SecretId=name, VersionStage=stage)['SecretString']

    def run(self, check=False, stripe_url=None, **kwargs):
        args = dict(AWS_TEST_CREDS, endpoint_url=self.endpoint, api_url=stripe_url or self.stripe_url, timeout=5)
        args.update(kwargs)
        result = run_module('stripe_key_update', args, check=check)
        assert_clean(result)
        return result


def assert_clean(result):
    assert_no_traceback(result)
    text = result.stdout + result.stderr + json.dumps(dict(result), ensure_ascii=False)
    for key in KEYS:
        assert key not in text, key[:8]
        assert key[8:-4] not in text, key[:8]
    assert '********' not in text
    for secret in (AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key']):
        assert secret not in text


@pytest.fixture(scope='module')
def env(moto, srv):
    return Env(moto.endpoint, srv.url)


def hint(key):
    return key[:8] + ELL + key[-4:]


# --------------------------------------------------------------------------- the update


def test_update_moves_stages_and_is_idempotent(env):
    name = env.create(OLD_KEY)
    old_vid = env.stage(name, 'AWSCURRENT')
    result = env.run(new_key=NEW_KEY, secret_id=name, expect_livemode=False)
    assert result.rc == 0 and not result.failed and result['changed'] is True, result.get('msg')
    assert result['verified'] is True and result['key_status'] == 'valid'
    assert result['format'] == 'plain' and result['json_field'] is None
    assert result['before'] == dict(current_version=old_vid, previous_version=None, key_hint=hint(OLD_KEY),
                                    livemode=False)
    new_vid = result['new_version_id']
    assert new_vid and new_vid != old_vid
    assert result['after'] == dict(current_version=new_vid, previous_version=old_vid, key_hint=hint(NEW_KEY),
                                   livemode=False)
    assert result['new_key_hint'] == hint(NEW_KEY) == 'sk_test_\u20261234'
    assert len(result['done']) == 3 and result['done'] == result['plan'][:3]
    assert 'force-redeploy' in result['plan'][3]
    assert hint(NEW_KEY) in result['diff']['after'] and hint(OLD_KEY) in result['diff']['before']
    # Secrets Manager itself: new key AWSCURRENT, old key AWSPREVIOUS, no AWSPENDING left.
    assert env.versions(name) == {old_vid: ['AWSPREVIOUS'], new_vid: ['AWSCURRENT']}
    assert env.value(name) == NEW_KEY
    assert env.value(name, 'AWSPREVIOUS') == OLD_KEY

    again = env.run(new_key=NEW_KEY, secret_id=name, expect_livemode=False)
    assert again.rc == 0 and again['changed'] is False and again['verified'] is True
    assert again['plan'] == [] and again['done'] == [] and 'diff' not in again
    assert again['before'] == again['after'] == result['after']
    assert env.versions(name) == {old_vid: ['AWSPREVIOUS'], new_vid: ['AWSCURRENT']}


def test_key_from_the_environment_and_a_third_key_drops_the_oldest(env, monkeypatch):
    name = env.create(OLD_KEY)
    v1 = env.stage(name, 'AWSCURRENT')
    first = env.run(new_key=NEW_KEY, secret_id=name)
    v2 = first['new_version_id']
    monkeypatch.setenv('SVPMS_NEW_STRIPE_API_KEY', OTHER_KEY)
    second = env.run(secret_id=name)
    assert second['changed'] is True and second['before']['key_hint'] == hint(NEW_KEY)
    v3 = second['new_version_id']
    assert any('version %s loses AWSPREVIOUS' % v1 in step for step in second['plan'])
    assert env.versions(name) == {v1: [], v2: ['AWSPREVIOUS'], v3: ['AWSCURRENT']}
    assert (env.value(name), env.value(name, 'AWSPREVIOUS')) == (OTHER_KEY, NEW_KEY)


def test_check_mode_verifies_and_writes_nothing(env, srv):
    name = env.create(OLD_KEY)
    versions = env.versions(name)
    result = env.run(check=True, new_key=NEW_KEY, secret_id=name)
    assert result.rc == 0 and result['changed'] is True and result['verified'] is True
    assert result['done'] == [] and len(result['plan']) == 4 and result['new_version_id'] is None
    assert result['after']['current_version'] is None
    assert result['after']['previous_version'] == result['before']['current_version']
    assert result['after']['key_hint'] == hint(NEW_KEY)
    assert 'diff' in result
    assert env.versions(name) == versions and env.value(name) == OLD_KEY

    # Check mode still asks Stripe (read-only): a revoked key fails there too.
    srv.revoke_key(REVOKED_KEY)
    try:
        refused = env.run(check=True, new_key=REVOKED_KEY, secret_id=name)
    finally:
        srv.unrevoke_key(REVOKED_KEY)
    assert refused.failed and refused['key_status'] == 'revoked' and refused['verified'] is False
    assert env.versions(name) == versions


def test_json_secret_keeps_its_other_fields(env):
    doc = {'api_key': OLD_KEY, 'publishable_key': 'pk_test_51Publish0000', 'account': 'acct_1SvpmsSandbox',
           'rotated_by': 'runbook', 'limits': {'rps': 25}}
    name = env.create(json.dumps(doc))
    result = env.run(new_key=NEW_KEY, secret_id=name)
    assert result['changed'] is True and result['format'] == 'json' and result['json_field'] == 'api_key'
    stored = json.loads(env.value(name))
    assert stored == dict(doc, api_key=NEW_KEY)
    assert list(stored) == list(doc)                        # field order kept too
    assert json.loads(env.value(name, 'AWSPREVIOUS')) == doc
    assert env.run(new_key=NEW_KEY, secret_id=name)['changed'] is False


def test_json_field_named_and_detection_errors(env):
    compact = json.dumps({'stripe_secret': OLD_KEY, 'env': 'sandbox'}, separators=(',', ':'))
    name = env.create(compact)
    result = env.run(new_key=NEW_KEY, secret_id=name, json_field='stripe_secret')
    assert result['changed'] is True and result['json_field'] == 'stripe_secret'
    assert env.value(name) == json.dumps({'stripe_secret': NEW_KEY, 'env': 'sandbox'}, separators=(',', ':'))

    undetectable = env.create(json.dumps({'stripe_secret': OLD_KEY}))
    failed = env.run(new_key=NEW_KEY, secret_id=undetectable)
    assert failed.failed and failed['error_kind'] == 'secret_format'
    assert 'none of the fields api_key, secret_key, key' in failed['msg'] and 'stripe_secret' in failed['msg']
    missing = env.run(new_key=NEW_KEY, secret_id=undetectable, json_field='api_key')
    assert missing.failed and 'has no field api_key (json_field)' in missing['msg']

    plain = env.create(OLD_KEY)
    wrong = env.run(new_key=NEW_KEY, secret_id=plain, json_field='api_key')
    assert wrong.failed and 'plain string' in wrong['msg']
    for secret in (undetectable, plain):
        assert len(env.versions(secret)) == 1


def test_revoked_new_key_is_refused_and_nothing_written(env, srv):
    name = env.create(OLD_KEY)
    versions = env.versions(name)
    srv.revoke_key(REVOKED_KEY)
    try:
        result = env.run(new_key=REVOKED_KEY, secret_id=name)
    finally:
        srv.unrevoke_key(REVOKED_KEY)
    assert result.failed and result['verified'] is False and result['key_status'] == 'revoked'
    assert result['error_kind'] == 'invalid_key' and result['http_status'] == 401
    assert result['error_code'] == 'api_key_expired'
    assert result['msg'].startswith('Stripe refuses the new key %s: it is expired or revoked' % hint(REVOKED_KEY))
    assert 'Nothing was written to %s' % name in result['msg']
    assert env.versions(name) == versions and env.value(name) == OLD_KEY


def test_key_stripe_refuses_as_invalid(env):
    # localstripe refuses every key that is not sk_ (here: a restricted key) with a 401.
    name = env.create(OLD_KEY)
    versions = env.versions(name)
    result = env.run(new_key=RK_KEY, secret_id=name)
    assert result.failed and result['key_status'] == 'invalid' and result['http_status'] == 401
    assert 'refuses the new key %s as invalid' % hint(RK_KEY) in result['msg']
    assert env.versions(name) == versions


def test_stripe_answer_echoing_the_key_does_not_leak_it(env):
    name = env.create(OLD_KEY)
    versions = env.versions(name)
    with Receiver() as rx:
        rx.script('GET', '/v1/balance', dict(status=403, body={'error': {
            'type': 'invalid_request_error', 'code': 'secret_key_required',
            'message': 'The provided key %s does not have the required permissions (old one was %s)'
                       % (NEW_KEY, OLD_KEY)}}))
        result = env.run(new_key=NEW_KEY, secret_id=name, stripe_url=rx.url)
        [req] = [r for r in rx.requests if r.path.startswith('/v1/')]
        assert req.header('authorization') == 'Bearer %s' % NEW_KEY     # the key went only in the header
    assert result.failed and result['key_status'] == 'restricted' and result['http_status'] == 403
    assert result['error_kind'] == 'permission'
    assert 'restricted key without permission to read the balance' in result['msg']
    assert env.versions(name) == versions

    # A failing Stripe (retried, then given up) whose message is put in ours: the keys in it become hints.
    with Receiver() as rx:
        rx.script('GET', '/v1/balance', *[dict(status=500, body={'error': {
            'type': 'api_error', 'message': 'boom for %s (stored: %s)' % (NEW_KEY, OLD_KEY)}}) for _i in range(4)])
        result = env.run(new_key=NEW_KEY, secret_id=name, stripe_url=rx.url)
    assert result.failed and result['key_status'] == 'unknown' and result['error_kind'] == 'server_error'
    assert 'boom for %s (stored: %s)' % (hint(NEW_KEY), hint(OLD_KEY)) in result['msg']
    assert env.versions(name) == versions


def test_stripe_unreachable_writes_nothing(env):
    name = env.create(OLD_KEY)
    versions = env.versions(name)
    result = env.run(new_key=NEW_KEY, secret_id=name, stripe_url='http://127.0.0.1:%d' % free_port(), timeout=1)
    assert result.failed and result['verified'] is False and result['key_status'] == 'unknown'
    assert result['reachable'] is False and result['error_kind'] == 'unreachable'
    assert result['msg'].startswith('Could not verify the new key %s with Stripe' % hint(NEW_KEY))
    assert env.versions(name) == versions


@pytest.mark.parametrize('key,expect,words', [
    (PK_KEY, None, 'publishable key'),
    ('whsec_0123456789abcdefghijklmnopqrstuv', None, 'webhook signing secret'),
    ('sk_test_short', None, 'too short'),
    ('not-a-stripe-key-at-all-0123456789', None, 'does not look like a Stripe API key'),
    (NEW_KEY + '\n', None, 'whitespace or control characters'),
    (LIVE_KEY, False, 'is a LIVE key'),
    (NEW_KEY, True, 'is a TEST key'),
])
def test_key_form_is_checked_before_anything(env, key, expect, words):
    name = env.create(OLD_KEY)
    versions = env.versions(name)
    # Stripe is not even called: a closed port would otherwise give "unreachable".
    result = env.run(new_key=key, secret_id=name, expect_livemode=expect,
                     stripe_url='http://127.0.0.1:%d' % free_port())
    assert result.failed and words in result['msg'], result['msg']
    assert result['error_kind'] in ('key_form', 'mode') and result['key_status'] is None
    assert 'Stripe not called' in result['msg']
    assert env.versions(name) == versions


def test_mode_switch_needs_expect_livemode(env):
    name = env.create(LIVE_KEY)
    versions = env.versions(name)
    result = env.run(new_key=NEW_KEY, secret_id=name)
    assert result.failed and result['error_kind'] == 'mode'
    assert 'is a live key and new_key %s a test key' % hint(NEW_KEY) in result['msg']
    assert result['before']['livemode'] is True and result['before']['key_hint'] == hint(LIVE_KEY)
    assert env.versions(name) == versions
    confirmed = env.run(new_key=NEW_KEY, secret_id=name, expect_livemode=False)
    assert confirmed['changed'] is True and confirmed['after']['livemode'] is False


def test_interrupted_run_reuses_the_pending_version(env):
    name = env.create(OLD_KEY)
    old_vid = env.stage(name, 'AWSCURRENT')
    pending = str(uuid.uuid4())
    env.sm.put_secret_value(SecretId=name, ClientRequestToken=pending, SecretString=NEW_KEY,
                            VersionStages=['AWSPENDING'])
    result = env.run(new_key=NEW_KEY, secret_id=name)
    assert result['changed'] is True and result['new_version_id'] == pending
    assert result['plan'][0].startswith('reuse version %s' % pending)
    assert env.versions(name) == {old_vid: ['AWSPREVIOUS'], pending: ['AWSCURRENT']}


def test_secret_problems(env):
    missing = env.run(new_key=NEW_KEY, secret_id='svpms/it/does-not-exist-%s' % uuid.uuid4().hex[:8])
    assert missing.failed and missing['error_kind'] == 'not_found' and 'nothing written' in missing['msg']

    binary = 'svpms/it/stripe-bin-%s' % uuid.uuid4().hex[:8]
    env.sm.create_secret(Name=binary, SecretBinary=b'\x00\x01binary')
    result = env.run(new_key=NEW_KEY, secret_id=binary)
    assert result.failed and result['error_kind'] == 'secret_format' and 'binary value' in result['msg']

    bad_json = env.create('{"api_key": "%s", ' % OLD_KEY)
    result = env.run(new_key=NEW_KEY, secret_id=bad_json)
    assert result.failed and result['error_kind'] == 'secret_format' and 'not valid JSON' in result['msg']


def test_bad_options_name_the_option(env):
    result = env.run(new_key=NEW_KEY, secret_id=' ', api_url='http://stripe.example.com')
    assert result.failed and 'secret_id must be a non-empty' in result['msg']
    assert 'api_url must use https://' in result['msg']
    result = env.run(new_key=NEW_KEY, secret_id='x', timeout=0)
    assert result.failed and 'timeout must be more than 0' in result['msg']
    result = run_module('stripe_key_update', dict(AWS_TEST_CREDS, endpoint_url=env.endpoint, secret_id='x'))
    assert_clean(result)
    assert result.failed and 'new_key' in result['msg']
