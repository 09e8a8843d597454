"""incident_lock against moto_server (the session ``moto`` fixture).

moto 5.2.5 really evaluates what the lock relies on (checked first, in
test_moto_evaluates_the_lock_conditions, with the exact requests the module
sends): ``attribute_not_exists``, ``expires_at < :now`` on a number, the
``#owner`` placeholder for the reserved word ``owner``, ``OR``, the
``ConditionalCheckFailedException`` on a failed condition, ``ReturnValues=ALL_OLD``
on PutItem/DeleteItem, and ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` (the
current item comes back in the error response), ``ConsistentRead`` GetItem, and
``ResourceNotFoundException`` for a missing table. So everything here runs
against moto, through the real module, and is checked by reading the table
back with boto3.

Not honoured by moto, and therefore tested with botocore's Stubber on the
real response shapes in tests/unit/plugins/module_utils/test_lock.py:
- IAM: moto accepts any credentials, so AccessDenied (naming dynamodb:PutItem)
  is a Stubber test;
- atomicity: moto's put_item checks the condition and stores the item in two
  Python steps without a lock (threaded moto_server), unlike DynamoDB. The
  parallel test below passes because the window is microseconds wide; the
  lost-race path (condition fails, holder taken from the error's Item) is
  also a Stubber test, so it does not depend on timing.
Each test uses a table of its own, so the tests never depend on each other
or on a reset of the shared server.
"""

import socket
import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from ansible_collections.svpms.incident_response.plugins.module_utils import lock as L
from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_adhoc, run_module

KEY = 'svpms-api'
A = 'INC-1@ops-1:1111'
B = 'INC-2@ops-2:2222'
SECRETS = (AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key'])


def _closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Env:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.ddb = boto3.client('dynamodb', region_name=AWS_TEST_CREDS['region'], endpoint_url=endpoint,
                                aws_access_key_id='setup', aws_secret_access_key='setup')
        self.table = 'svpms-it-locks-%s' % uuid.uuid4().hex[:10]
        self.ddb.create_table(TableName=self.table,
                              AttributeDefinitions=[{'AttributeName': 'lock_key', 'AttributeType': 'S'}],
                              KeySchema=[{'AttributeName': 'lock_key', 'KeyType': 'HASH'}],
                              BillingMode='PAY_PER_REQUEST')

    def args(self, **kwargs):
        base = dict(AWS_TEST_CREDS, endpoint_url=self.endpoint, table=self.table, key=KEY)
        base.update(kwargs)
        return base

    def run(self, check=False, **kwargs):
        result = run_module('incident_lock', self.args(**kwargs), check=check)
        assert_no_traceback(result)
        for secret in SECRETS:
            assert secret not in result.stdout and secret not in result.stderr, 'secret leaked'
        return result

    def acquire(self, owner, check=False, **kwargs):
        kwargs.setdefault('reason', 'ecs_rollback svpms-api:3')
        return self.run(check=check, owner=owner, state='acquired', **kwargs)

    def release(self, owner, check=False):
        return self.run(check=check, owner=owner, state='released')

    def item(self, key=KEY):
        return self.ddb.get_item(TableName=self.table, Key={'lock_key': {'S': key}}, ConsistentRead=True).get('Item')

    def items(self):
        return self.ddb.scan(TableName=self.table)['Items']

    def write(self, owner, expires_at, acquired_at='2026-03-01T12:00:00Z', reason='left behind by a crashed run'):
        self.ddb.put_item(TableName=self.table, Item={
            'lock_key': {'S': KEY}, 'owner': {'S': owner}, 'reason': {'S': reason},
            'acquired_at': {'S': acquired_at}, 'expires_at': {'N': str(int(expires_at))}})


@pytest.fixture
def env(moto):
    return Env(moto.endpoint)


def test_moto_evaluates_the_lock_conditions(env):
    """The premise of this file: moto honours the module's conditional requests."""
    now = int(time.time())
    ddb, t = env.ddb, env.table
    ddb.put_item(**L.build_acquire_request(t, KEY, A, now, 600))                  # absent: written
    with pytest.raises(ClientError) as lost:                                       # live, other owner
        ddb.put_item(**L.build_acquire_request(t, KEY, B, now, 600))
    assert lost.value.response['Error']['Code'] == 'ConditionalCheckFailedException'
    assert lost.value.response['Item']['owner'] == {'S': A}                        # ALL_OLD on failure
    old = ddb.put_item(**L.build_acquire_request(t, KEY, A, now, 900))['Attributes']  # same owner
    assert old['expires_at'] == {'N': str(now + 600)}
    old = ddb.put_item(**L.build_acquire_request(t, KEY, B, now + 901, 600))['Attributes']  # stale: taken
    assert old['owner'] == {'S': A}
    with pytest.raises(ClientError) as refused:                                    # release by non-owner
        ddb.delete_item(**L.build_release_request(t, KEY, A))
    assert refused.value.response['Item']['owner'] == {'S': B}
    assert ddb.delete_item(**L.build_release_request(t, KEY, B))['Attributes']['owner'] == {'S': B}
    with pytest.raises(ClientError) as absent:                                     # release of nothing
        ddb.delete_item(**L.build_release_request(t, KEY, B))
    assert absent.value.response['Error']['Code'] == 'ConditionalCheckFailedException'
    assert 'Item' not in absent.value.response
    assert env.items() == []


def test_acquire_hold_refresh_and_release(env):
    t0 = int(time.time())
    first = env.acquire(A, ttl_seconds=120)
    assert first.rc == 0 and not first.failed, first
    assert first['acquired'] is True and first['changed'] is True
    assert first['refreshed'] is False and first['took_over_stale'] is False and first['previous_holder'] is None
    assert (first['table'], first['key'], first['owner'], first['state']) == (env.table, KEY, A, 'acquired')
    assert first['msg'].startswith('acquired lock svpms-api for %s until ' % A)
    assert first['diff']['before'] == {} and first['diff']['after']['owner'] == A
    stored = env.item()
    assert stored['owner'] == {'S': A} and stored['reason'] == {'S': 'ecs_rollback svpms-api:3'}
    expires_at = int(stored['expires_at']['N'])
    assert t0 + 120 <= expires_at <= int(time.time()) + 120
    assert first['expires_at'] == expires_at == first['holder']['expires_at']
    assert L.parse_iso(stored['acquired_at']['S']) in range(t0, int(time.time()) + 1)

    # A second owner sees the holder and does not get the lock: not a failure.
    second = env.acquire(B, reason='ecs_scale svpms-api')
    assert second.rc == 0 and not second.failed, second
    assert second['acquired'] is False and second['changed'] is False and second['expires_at'] is None
    holder = second['holder']
    assert (holder['owner'], holder['reason'], holder['acquired_at'], holder['expires_at']) == (
        A, 'ecs_rollback svpms-api:3', stored['acquired_at']['S'], expires_at)
    assert 100 <= holder['expires_in_seconds'] <= 120 and holder['expired'] is False
    assert ('lock svpms-api held by %s since %s (expires in %d s): not mitigating concurrently'
            % (A, stored['acquired_at']['S'], holder['expires_in_seconds'])) in second['msg']
    assert env.item() == stored

    # The same owner again: not a change, but the expiry is refreshed and acquired_at kept.
    again = env.acquire(A, ttl_seconds=900)
    assert again['acquired'] is True and again['refreshed'] is True and again['changed'] is False
    assert 'diff' not in again
    refreshed = env.item()
    assert int(refreshed['expires_at']['N']) >= expires_at + 780
    assert refreshed['acquired_at'] == stored['acquired_at']
    assert again['expires_at'] == int(refreshed['expires_at']['N'])

    # Release by a non-owner is refused and leaves the lock alone.
    refused = env.release(B)
    assert refused.rc == 0 and refused['released'] is False and refused['changed'] is False
    assert refused['holder']['owner'] == A
    assert refused['msg'].startswith('lock svpms-api is held by %s since ' % A)
    assert refused['msg'].endswith('not by %s: left in place' % B)
    assert env.item() == refreshed

    # Release by the owner deletes it; a second release has nothing to do.
    released = env.release(A)
    assert released['released'] is True and released['changed'] is True and released['holder'] is None
    assert released['before']['owner'] == A and released['diff']['after'] == {}
    assert env.item() is None
    gone = env.release(A)
    assert gone['released'] is False and gone['changed'] is False and gone['holder'] is None
    assert gone['msg'] == 'no lock svpms-api to release: nothing held'


def test_stale_lock_is_taken_over(env):
    now = int(time.time())
    env.write('INC-0@crashed:99', now - 10)
    res = env.acquire(B)
    assert res['acquired'] is True and res['took_over_stale'] is True and res['changed'] is True
    prev = res['previous_holder']
    assert prev['owner'] == 'INC-0@crashed:99' and prev['expired'] is True
    assert prev['expires_at'] == now - 10 and prev['expires_in_seconds'] <= -10
    assert 'took over stale lock svpms-api from INC-0@crashed:99' in res['msg']
    stored = env.item()
    assert stored['owner'] == {'S': B} and int(stored['expires_at']['N']) >= now + 1800


def test_check_mode_writes_nothing(env):
    would = env.acquire(A, check=True)
    assert (would['acquired'], would['would_acquire'], would['changed']) == (True, True, True)
    assert would['msg'].startswith('would acquire lock svpms-api for %s' % A)
    assert env.items() == []

    now = int(time.time())
    env.write(B, now + 600)
    before = env.item()
    blocked = env.acquire(A, check=True, wait_seconds=30)
    assert (blocked['acquired'], blocked['would_acquire'], blocked['changed']) == (False, False, False)
    assert blocked['holder']['owner'] == B and blocked['waited_for'] is None
    release_other = env.release(A, check=True)
    assert (release_other['released'], release_other['would_release'], release_other['changed']) == (False, False, False)
    release_own = env.release(B, check=True)
    assert (release_own['released'], release_own['would_release'], release_own['changed']) == (True, True, True)
    assert release_own['msg'].startswith('would release lock svpms-api held by %s' % B)
    assert env.item() == before

    env.write(B, now - 5)
    stale = env.item()
    takeover = env.acquire(A, check=True)
    assert takeover['would_acquire'] is True and takeover['took_over_stale'] is True and takeover['changed'] is True
    assert env.item() == stale


def test_missing_table_names_it_and_how_to_create_it(env):
    res = env.run(owner=A, table='svpms-no-such-locks')
    assert res.failed and res.rc != 0
    assert res['reachable'] is True and res['error_kind'] == 'not_found' and res['acquired'] is False
    assert "DynamoDB table 'svpms-no-such-locks' does not exist" in res['msg']
    assert ('aws dynamodb create-table --table-name svpms-no-such-locks --attribute-definitions '
            'AttributeName=lock_key,AttributeType=S --key-schema AttributeName=lock_key,KeyType=HASH '
            '--billing-mode PAY_PER_REQUEST') in res['msg']
    assert res['msg'].startswith('dynamodb:GetItem failed (ResourceNotFoundException)')


def test_two_parallel_runs_exactly_one_acquires(env):
    """10 rounds of two module runs started at the same moment for different owners.

    Even rounds race for a free lock, odd rounds for a stale one. The module
    reads before it writes, so in a round either the loser's read already sees
    the winner, or both read "free"/"stale", both write, and the condition lets
    only one through (moto_server's log showed such lost PutItems in about one
    round in three when this was written).
    """
    owners = ('INC-7@ctl-a:7001', 'INC-8@ctl-b:8002')
    for round_no in range(10):
        if round_no % 2:
            env.write('INC-0@crashed:99', int(time.time()) - 5)
        barrier = threading.Barrier(2)
        results = {}

        def take(owner):
            barrier.wait(timeout=30)
            results[owner] = env.acquire(owner, reason='round %d' % round_no)

        threads = [threading.Thread(target=take, args=(owner,)) for owner in owners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert set(results) == set(owners), 'a run did not finish in round %d' % round_no
        winners = [o for o in owners if results[o]['acquired']]
        assert len(winners) == 1, (round_no, results)
        [winner] = winners
        [loser] = [o for o in owners if o != winner]
        assert results[loser]['holder']['owner'] == winner and results[loser]['changed'] is False
        assert results[winner]['took_over_stale'] is bool(round_no % 2)
        assert env.item()['owner'] == {'S': winner}
        assert env.release(loser)['released'] is False
        assert env.release(winner)['released'] is True
        assert env.item() is None


def test_wait_seconds_waits_for_a_release_then_acquires(env):
    assert env.acquire(A)['acquired'] is True

    def release_later():
        time.sleep(2.5)
        env.release(A)

    releaser = threading.Thread(target=release_later)
    start = time.monotonic()
    releaser.start()
    res = env.acquire(B, wait_seconds=30)
    elapsed = time.monotonic() - start
    releaser.join(timeout=60)
    assert res['acquired'] is True and res['changed'] is True, res
    assert res['waited_for'].startswith('lock svpms-api to be released or to expire (held by %s' % A)
    assert res['waited_for'].endswith('up to 30 s')
    assert 2.0 <= res['waited_seconds'] < 15 and elapsed < 20
    assert res['attempts'] >= 2
    assert env.item()['owner'] == {'S': B}


def test_wait_seconds_is_bounded(env):
    assert env.acquire(A)['acquired'] is True
    start = time.monotonic()
    res = env.acquire(B, wait_seconds=3)
    elapsed = time.monotonic() - start
    assert res.rc == 0 and res['acquired'] is False and res['changed'] is False
    assert 3.0 <= res['waited_seconds'] < 4 and elapsed < 10
    assert 'not mitigating concurrently' in res['msg'] and 'waited 3 s for lock svpms-api' in res['msg']
    assert env.item()['owner'] == {'S': A}


@pytest.mark.parametrize('args,problem', [
    (dict(ttl_seconds=30), 'ttl_seconds must be between 60 and 86400'),
    (dict(wait_seconds=4000), 'wait_seconds must be between 0 and 3600'),
    (dict(owner=' '), 'owner must be non-empty'),
    (dict(state='taken'), 'state'),
])
def test_bad_arguments_fail_naming_the_parameter(env, args, problem):
    res = env.run(**dict(dict(owner=A), **args))
    assert res.failed and problem in res['msg'], res['msg']
    assert env.items() == []


def test_unreachable_endpoint_is_reported_not_raised(env):
    endpoint = 'http://127.0.0.1:%d' % _closed_port()
    res = env.run(owner=A, endpoint_url=endpoint, max_attempts=1, connect_timeout=1)
    assert res.failed and res['reachable'] is False and res['error_kind'] == 'unreachable'
    assert endpoint in res['msg'] and 'dynamodb:GetItem' in res['msg'], res['msg']
    assert res['acquired'] is False and not res.get('changed')


def test_through_ansible_with_check_and_diff(env):
    args = env.args(owner=A)
    res = run_adhoc('svpms.incident_response.incident_lock', args, check=True)
    assert res.rc == 0 and res['would_acquire'] is True and res['changed'] is True, res.stdout + res.stderr
    assert env.items() == []
    res = run_adhoc('svpms.incident_response.incident_lock', args)
    assert res.rc == 0 and res['acquired'] is True
    res = run_adhoc('svpms.incident_response.incident_lock', dict(args, state='released'))
    assert res.rc == 0 and res['released'] is True
    for secret in SECRETS:
        assert secret not in res.stdout and secret not in res.stderr
    assert env.item() is None
