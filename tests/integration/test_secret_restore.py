"""secret_restore against moto_server (the session ``moto`` fixture).

Each test makes its own secret with random values (``Env.create``), runs the module the way Ansible does
(``run_module``), and checks the stages Secrets Manager reports afterwards with its own boto3 client - and, after a
restore, the value read with VersionStage=AWSCURRENT (read explicitly by stage: moto answers a read without
VersionStage with the newest version). Every result is checked to hold no secret value, in the JSON nor in
stdout/stderr: the module never reads one.
"""

import json
import secrets
import uuid

import boto3
import pytest

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.servers import free_port


class Env:
    def __init__(self, endpoint_url):
        self.endpoint_url = endpoint_url
        self.sm = boto3.client('secretsmanager', region_name=AWS_TEST_CREDS['region'], endpoint_url=endpoint_url,
                               aws_access_key_id='setup', aws_secret_access_key='setup')
        self.values = []

    def value(self):
        value = 'whsec_' + secrets.token_hex(16)
        self.values.append(value)
        return value

    def create(self, versions=2):
        """A new secret with ``versions`` versions; returns (name, [version ids, oldest first], [values])."""
        name = 'svpms/it/restore-%s' % uuid.uuid4().hex[:10]
        values = [self.value() for _number in range(versions)]
        ids = [self.sm.create_secret(Name=name, SecretString=values[0])['VersionId']]
        for value in values[1:]:
            ids.append(self.put(name, value))
        return name, ids, values

    def put(self, name, value):
        return self.sm.put_secret_value(SecretId=name, SecretString=value)['VersionId']

    def stages(self, name):
        out = {}
        for vid, labels in self.sm.describe_secret(SecretId=name)['VersionIdsToStages'].items():
            for label in labels:
                out[label] = vid
        return out

    def version_list(self, name):
        """Version ids and their labels (not the dates: moto reports the time of the listing)."""
        versions = self.sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)['Versions']
        return sorted((v['VersionId'], sorted(v.get('VersionStages') or [])) for v in versions)

    def current_value(self, name):
        return self.sm.get_secret_value(SecretId=name, VersionStage='AWSCURRENT')['SecretString']

    def run(self, check=False, **kwargs):
        args = dict(AWS_TEST_CREDS, endpoint_url=self.endpoint_url)
        args.update(kwargs)
        result = run_module('secret_restore', args, check=check)
        assert_no_traceback(result)
        assert_no_value(result, self.values)
        assert 'failed' not in result or result.rc != 0  # only Ansible's own fail_json sets it
        return result


def assert_no_value(result, values):
    text = json.dumps(dict(result)) + result.stdout + result.stderr
    for value in values + [AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key']]:
        assert value not in text
    assert '********' not in text  # nothing even tried to print a value


@pytest.fixture(scope='module')
def env(moto):
    return Env(moto.endpoint)


def test_restore_previous(env):
    name, (old, new), (old_value, new_value) = env.create()
    assert env.stages(name) == {'AWSCURRENT': new, 'AWSPREVIOUS': old}
    r = env.run(secret_id=name)
    assert r.rc == 0 and not r.failed and r['changed'] is True
    assert r['secret_id'] == name and r['target_version'] == old and r['skipped_reason'] is None
    assert r['before']['current_version'] == new and r['before']['previous_version'] == old
    assert r['after']['current_version'] == old and r['after']['previous_version'] == new
    assert r['after']['current_created'].endswith('Z') and r['before']['current_created'].endswith('Z')
    assert len(r['done']) == 1 and r['done'][0] == r['plan'][0]
    assert 'back to %s' % old in r['msg']
    assert r['diff']['before'] == 'AWSCURRENT: %s\nAWSPREVIOUS: %s\n' % (new, old)
    assert r['diff']['after'] == 'AWSCURRENT: %s\nAWSPREVIOUS: %s\n' % (old, new)
    assert env.stages(name) == {'AWSCURRENT': old, 'AWSPREVIOUS': new}
    assert env.current_value(name) == old_value


def test_second_run_is_idempotent(env):
    name, (old, new), (old_value, _new_value) = env.create()
    first = env.run(secret_id=name, to_version_id=old, expect_current_version_id=new)
    assert first['changed'] is True
    listed = env.version_list(name)
    # The same task again: the target already is AWSCURRENT (the guard no longer matches, but the state asked for
    # is there, so that is what is reported).
    again = env.run(secret_id=name, to_version_id=old, expect_current_version_id=new)
    assert again.rc == 0 and not again.failed and again['changed'] is False
    assert again['skipped_reason'] is None and 'already is AWSCURRENT' in again['msg']
    assert again['before'] == again['after'] and again['after']['current_version'] == old
    assert again['plan'] == [] and again['done'] == [] and 'diff' not in again
    assert env.version_list(name) == listed
    assert env.current_value(name) == old_value
    # Check mode agrees.
    checked = env.run(check=True, secret_id=name, to_version_id=old)
    assert checked['changed'] is False and env.version_list(name) == listed


def test_default_target_rerun_is_stopped_by_the_guard(env):
    """Without to_version_id the target is AWSPREVIOUS at run time; the guard keeps a rerun from swapping back."""
    name, (old, new), (old_value, _new_value) = env.create()
    assert env.run(secret_id=name, expect_current_version_id=new)['changed'] is True
    listed = env.version_list(name)
    again = env.run(secret_id=name, expect_current_version_id=new)
    assert again['changed'] is False and again['skipped_reason'] == 'current_changed'
    assert env.version_list(name) == listed and env.current_value(name) == old_value


def test_check_mode_changes_nothing_and_reports_the_plan(env):
    name, (old, new), (_old_value, new_value) = env.create()
    listed = env.version_list(name)
    r = env.run(check=True, secret_id=name)
    assert r.rc == 0 and not r.failed and r['changed'] is True
    assert r['before'] == dict(r['before'], current_version=new, previous_version=old)
    assert r['after'] == dict(r['after'], current_version=old, previous_version=new)
    assert r['target_version'] == old and r['done'] == []
    assert 'move AWSCURRENT from version %s back to %s' % (new, old) in r['plan'][0]
    assert r['diff']['before'] == 'AWSCURRENT: %s\nAWSPREVIOUS: %s\n' % (new, old)
    assert r['diff']['after'] == 'AWSCURRENT: %s\nAWSPREVIOUS: %s\n' % (old, new)
    assert 'check mode' in r['msg'] and 'Would move' in r['msg']
    assert env.version_list(name) == listed
    assert env.current_value(name) == new_value


def test_expect_current_guard(env):
    name, (old, new), (_old_value, _new_value) = env.create()
    # The decision was made on AWSCURRENT=new; then someone else stores a third version.
    third_value = env.value()
    third = env.put(name, third_value)
    listed = env.version_list(name)
    for check in (False, True):
        r = env.run(check=check, secret_id=name, to_version_id=old, expect_current_version_id=new)
        assert r.rc == 0 and not r.failed and r['changed'] is False
        assert r['skipped_reason'] == 'current_changed'
        assert third in r['msg'] and new in r['msg'] and 'Nothing changed' in r['msg']
        assert r['before']['current_version'] == third and r['after'] == r['before'] and r['done'] == []
        assert env.version_list(name) == listed
        assert env.current_value(name) == third_value
    # A guard that matches lets the restore through.
    r = env.run(secret_id=name, to_version_id=new, expect_current_version_id=third)
    assert r['changed'] is True and r['skipped_reason'] is None
    assert env.stages(name) == {'AWSCURRENT': new, 'AWSPREVIOUS': third}


def test_restore_an_older_unlabelled_version(env):
    name, (first, second, third), (first_value, _s, _t) = env.create(versions=3)
    assert first not in env.stages(name).values()
    r = env.run(secret_id=name, to_version_id=first)
    assert r['changed'] is True
    assert 'version %s loses AWSPREVIOUS' % second in r['plan'][0]
    assert env.stages(name) == {'AWSCURRENT': first, 'AWSPREVIOUS': third}
    assert r['after'] == dict(r['after'], current_version=first, previous_version=third)
    assert env.current_value(name) == first_value


def test_no_previous_version_fails(env):
    name, (only,), (only_value,) = env.create(versions=1)
    r = env.run(secret_id=name)
    assert r.failed and r.rc != 0 and r['error_kind'] == 'no_previous'
    assert 'no AWSPREVIOUS version' in r['msg'] and 'to_version_id' in r['msg'] and 'nothing changed' in r['msg']
    assert env.stages(name) == {'AWSCURRENT': only} and env.current_value(name) == only_value


def test_unknown_to_version_id_fails_naming_the_option(env):
    name, (old, new), _values = env.create()
    listed = env.version_list(name)
    bogus = str(uuid.uuid4())
    r = env.run(secret_id=name, to_version_id=bogus)
    assert r.failed and r['error_kind'] == 'unknown_version'
    assert r['msg'].startswith('to_version_id %s is not a version of secret %s' % (bogus, name))
    assert old in r['msg'] and new in r['msg']
    assert env.version_list(name) == listed


def test_missing_secret_fails_with_not_found(env):
    r = env.run(secret_id='svpms/it/no-such-secret-%s' % uuid.uuid4().hex[:8])
    assert r.failed and r['error_kind'] == 'not_found' and 'nothing changed' in r['msg']


@pytest.mark.parametrize('args,param', [
    (dict(secret_id='  '), 'secret_id'),
    (dict(to_version_id=' '), 'to_version_id'),
    (dict(expect_current_version_id=''), 'expect_current_version_id'),
])
def test_bad_input_names_the_option(env, args, param):
    full = dict(secret_id='svpms/it/whatever')
    full.update(args)
    r = env.run(**full)
    assert r.failed and r['msg'].startswith(param), r['msg']


def test_unreachable_endpoint_fails_clearly(env):
    r = env.run(secret_id='svpms/it/anything', endpoint_url='http://127.0.0.1:%d' % free_port(),
                connect_timeout=1, read_timeout=2)
    assert r.failed and r.rc != 0
    assert r['reachable'] is False and r['error_kind'] == 'unreachable'
    assert r['msg'].startswith('Could not read the stages of secret svpms/it/anything (nothing changed)')
    assert 'secretsmanager:DescribeSecret' in r['msg'] and 'could not reach' in r['msg']
