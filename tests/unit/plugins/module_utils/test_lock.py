"""module_utils/lock.py: request building, expiry maths, condition handling.

The pure helpers are tested directly. ``DynamoDBLock`` is driven through an
AWSClient wrapping a real boto3 DynamoDB client behind botocore's Stubber, with
a fake clock: Stubber checks every request against the expected parameters and
every response (and modeled error field, such as the ``Item`` DynamoDB returns
with ``ConditionalCheckFailedException`` when
``ReturnValuesOnConditionCheckFailure=ALL_OLD`` is asked for) against the
DynamoDB API model, and fails on any call not queued, so "check mode never
writes" is enforced by the stub itself. That the conditions are really
evaluated is tested against moto_server in tests/integration/test_incident_lock.py.
"""

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ansible_collections.svpms.incident_response.plugins.module_utils import lock as L
from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (
    AWSAccessDeniedError,
    AWSClient,
    AWSNotFoundError,
)

TABLE = 'svpms-incident-locks'
KEY = 'svpms-api'
ME = 'INC-42@ops-1:4242'
OTHER = 'INC-41@ops-2:977'
NOW = 1772366400  # 2026-03-01T12:00:00Z
NOW_ISO = '2026-03-01T12:00:00Z'


class FakeClock(L.Clock):
    """Wall and monotonic time advance only when the code sleeps."""

    def __init__(self, now=NOW):
        self.now = float(now)
        self.mono = 1000.0
        self.sleeps = []

    def time(self):
        return self.now

    def monotonic(self):
        return self.mono

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        self.mono += seconds

    def uniform(self, low, high):
        return 1.0


def item(owner=OTHER, expires_at=NOW + 600, acquired_at=NOW_ISO, reason='ecs_rollback svpms-api:3', key=KEY):
    out = {'lock_key': {'S': key}, 'owner': {'S': owner}, 'acquired_at': {'S': acquired_at},
           'expires_at': {'N': str(expires_at)}}
    if reason is not None:
        out['reason'] = {'S': reason}
    return out


# ------------------------------------------------------------------ time maths

def test_expiry_maths():
    assert L.compute_expires_at(NOW, 1800) == NOW + 1800
    assert L.compute_expires_at(NOW + 0.9, 60) == NOW + 60  # whole seconds, truncated
    assert L.iso_utc(NOW) == NOW_ISO
    assert L.iso_utc(0) == '1970-01-01T00:00:00Z'
    assert L.parse_iso(NOW_ISO) == NOW
    assert L.parse_iso('yesterday') is None and L.parse_iso(None) is None


def test_stale_is_exactly_the_condition_expires_at_lt_now():
    record = L.parse_item(item(expires_at=NOW))
    assert L.is_stale(record, NOW) is False          # expires_at == now: still live
    assert L.is_stale(record, NOW + 0.99) is False   # same whole second
    assert L.is_stale(record, NOW + 1) is True
    assert L.is_stale(None, NOW) is False
    assert L.is_stale(dict(record, expires_at=None), NOW + 10 ** 9) is False


# ------------------------------------------------------------ request building

def test_acquire_request_is_the_conditional_put():
    req = L.build_acquire_request(TABLE, KEY, ME, NOW + 0.5, 1800, reason='ecs_rollback svpms-api:3')
    assert req == {
        'TableName': TABLE,
        'Item': {'lock_key': {'S': KEY}, 'owner': {'S': ME}, 'acquired_at': {'S': NOW_ISO},
                 'expires_at': {'N': str(NOW + 1800)}, 'reason': {'S': 'ecs_rollback svpms-api:3'}},
        'ConditionExpression': 'attribute_not_exists(lock_key) OR expires_at < :now OR #owner = :owner',
        'ExpressionAttributeNames': {'#owner': 'owner'},
        'ExpressionAttributeValues': {':now': {'N': str(NOW)}, ':owner': {'S': ME}},
        'ReturnValues': 'ALL_OLD',
        'ReturnValuesOnConditionCheckFailure': 'ALL_OLD',
    }


def test_acquire_request_without_reason_and_with_kept_acquired_at():
    req = L.build_acquire_request(TABLE, KEY, ME, NOW, 60, reason=None, acquired_at=NOW - 300)
    assert 'reason' not in req['Item']
    assert req['Item']['acquired_at'] == {'S': '2026-03-01T11:55:00Z'}
    assert req['Item']['expires_at'] == {'N': str(NOW + 60)}


def test_release_and_get_requests():
    assert L.build_release_request(TABLE, KEY, ME) == {
        'TableName': TABLE,
        'Key': {'lock_key': {'S': KEY}},
        'ConditionExpression': '#owner = :owner',
        'ExpressionAttributeNames': {'#owner': 'owner'},
        'ExpressionAttributeValues': {':owner': {'S': ME}},
        'ReturnValues': 'ALL_OLD',
        'ReturnValuesOnConditionCheckFailure': 'ALL_OLD',
    }
    assert L.build_get_request(TABLE, KEY) == {'TableName': TABLE, 'Key': {'lock_key': {'S': KEY}},
                                               'ConsistentRead': True}


def test_requests_validate_against_the_dynamodb_model():
    client = boto3.client('dynamodb', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')
    with Stubber(client) as stub:
        for op, req in (('get_item', L.build_get_request(TABLE, KEY)),
                        ('put_item', L.build_acquire_request(TABLE, KEY, ME, NOW, 1800, 'r')),
                        ('delete_item', L.build_release_request(TABLE, KEY, ME))):
            stub.add_response(op, {}, req)
            getattr(client, op)(**req)


# ------------------------------------------------------------- reading items

def test_parse_item_and_holder_view():
    record = L.parse_item(item())
    assert record == dict(key=KEY, owner=OTHER, reason='ecs_rollback svpms-api:3', acquired_at=NOW_ISO,
                          expires_at=NOW + 600)
    assert L.describe_holder(record, NOW + 100) == dict(
        owner=OTHER, reason='ecs_rollback svpms-api:3', acquired_at=NOW_ISO, expires_at=NOW + 600,
        expires_in_seconds=500, expired=False)
    stale = L.describe_holder(record, NOW + 700)
    assert stale['expires_in_seconds'] == -100 and stale['expired'] is True
    assert L.parse_item(None) is None and L.parse_item({}) is None
    assert L.describe_holder(None, NOW) is None
    hand_written = L.parse_item({'lock_key': {'S': KEY}, 'owner': {'S': OTHER}, 'expires_at': {'N': 'soon'}})
    assert hand_written['expires_at'] is None and hand_written['reason'] is None
    assert L.parse_item(item(expires_at='1772367000.0'))['expires_at'] == 1772367000


def test_conditional_check_failed_is_recognised_with_its_item():
    err = ClientError({'Error': {'Code': 'ConditionalCheckFailedException', 'Message': 'The conditional request failed'},
                       'Item': item()}, 'PutItem')
    assert L.is_conditional_check_failed(err)
    assert L.conditional_failure_item(err) == item()
    other = ClientError({'Error': {'Code': 'ValidationException', 'Message': 'bad'}}, 'PutItem')
    assert not L.is_conditional_check_failed(other)
    assert L.conditional_failure_item(other) is None


# ---------------------------------------------------------------- decisions

@pytest.mark.parametrize('current,expected', [
    (None, L.NEW),
    (item(owner=ME), L.REFRESH),
    (item(owner=ME, expires_at=NOW - 100), L.REFRESH),   # our own, even expired: the owner clause matches
    (item(owner=OTHER, expires_at=NOW - 1), L.TAKEOVER),
    (item(owner=OTHER, expires_at=NOW), L.HELD),         # expires_at < :now is strict
    (item(owner=OTHER, expires_at=NOW + 600), L.HELD),
])
def test_plan_acquire_mirrors_the_condition(current, expected):
    assert L.plan_acquire(L.parse_item(current), ME, NOW) == expected


def test_outcome_of_a_successful_put_and_plan_release():
    assert L.acquire_outcome(None, ME) == L.NEW
    assert L.acquire_outcome(L.parse_item(item(owner=ME)), ME) == L.REFRESH
    assert L.acquire_outcome(L.parse_item(item(owner=OTHER)), ME) == L.TAKEOVER
    assert L.plan_release(None, ME) == L.ABSENT
    assert L.plan_release(L.parse_item(item(owner=ME)), ME) == L.RELEASED
    assert L.plan_release(L.parse_item(item(owner=OTHER, expires_at=NOW - 999)), ME) == L.NOT_OURS


@pytest.mark.parametrize('args,problem', [
    (('', ME, 1800, 0), 'key must be'),
    ((KEY, '  ', 1800, 0), 'owner must be'),
    ((KEY, ME, 59, 0), 'ttl_seconds must be between 60 and 86400, got 59'),
    ((KEY, ME, 86401, 0), 'ttl_seconds must be between 60 and 86400'),
    ((KEY, ME, 1800, -1), 'wait_seconds must be between 0 and 3600, got -1'),
    ((KEY, ME, 1800, 3601), 'wait_seconds must be between 0 and 3600'),
    (('k' * 1025, ME, 1800, 0), 'key must be at most 1024 bytes'),
])
def test_validate_options(args, problem):
    errors = L.validate_options(*args)
    assert len(errors) == 1 and problem in errors[0], errors


def test_validate_options_bounds_are_inclusive():
    assert L.validate_options(KEY, ME, 60, 0) == []
    assert L.validate_options(KEY, ME, 86400, 3600, reason='x') == []


def test_missing_table_hint_names_table_and_command():
    hint = L.missing_table_hint('locks-t')
    assert "DynamoDB table 'locks-t' does not exist" in hint
    assert ('aws dynamodb create-table --table-name locks-t --attribute-definitions '
            'AttributeName=lock_key,AttributeType=S --key-schema AttributeName=lock_key,KeyType=HASH '
            '--billing-mode PAY_PER_REQUEST') in hint
    assert 'AttributeName=expires_at' in hint


# ------------------------------------------------ DynamoDBLock behind Stubber

@pytest.fixture
def stubbed():
    client = boto3.client('dynamodb', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')
    stub = Stubber(client)
    stub.activate()
    clock = FakeClock()
    lock = L.DynamoDBLock(AWSClient(client, 'dynamodb', max_attempts=1, sleep=lambda s: None), TABLE, KEY,
                          clock=clock)
    yield stub, lock, clock
    stub.assert_no_pending_responses()
    stub.deactivate()


def expect_get(stub, found=None):
    stub.add_response('get_item', {'Item': found} if found else {}, L.build_get_request(TABLE, KEY))


def expect_put(stub, now=NOW, ttl=1800, reason='r', acquired_at=None, old=None):
    req = L.build_acquire_request(TABLE, KEY, ME, now, ttl, reason, acquired_at=acquired_at)
    stub.add_response('put_item', {'Attributes': old} if old else {}, req)


def expect_put_lost(stub, holder, now=NOW, reason='r'):
    req = L.build_acquire_request(TABLE, KEY, ME, now, 1800, reason)
    stub.add_client_error('put_item', 'ConditionalCheckFailedException', 'The conditional request failed',
                          expected_params=req, modeled_fields={'Item': holder} if holder else None)


def test_acquire_free_lock(stubbed):
    stub, lock, _clock = stubbed
    expect_get(stub)
    expect_put(stub)
    res = lock.acquire(ME, ttl_seconds=1800, reason='r')
    assert res['acquired'] is True and res['changed'] is True
    assert (res['refreshed'], res['took_over_stale'], res['previous_holder'], res['before']) == (False, False, None, None)
    assert res['holder'] == dict(owner=ME, reason='r', acquired_at=NOW_ISO, expires_at=NOW + 1800,
                                 expires_in_seconds=1800, expired=False)
    assert res['after'] == res['holder'] and res['expires_at'] == NOW + 1800
    assert (res['attempts'], res['waited_for'], res['waited_seconds']) == (1, None, 0.0)
    assert res['msg'] == 'acquired lock svpms-api for %s until 2026-03-01T12:30:00Z (expires in 1800 s)' % ME
    assert 'would_acquire' not in res


def test_acquire_held_by_live_owner_does_not_write(stubbed):
    stub, lock, clock = stubbed
    expect_get(stub, item(owner=OTHER, expires_at=NOW + 1712, acquired_at='2026-03-01T11:58:02Z'))
    res = lock.acquire(ME, reason='r')
    assert res['acquired'] is False and res['changed'] is False
    assert res['holder'] == dict(owner=OTHER, reason='ecs_rollback svpms-api:3', acquired_at='2026-03-01T11:58:02Z',
                                 expires_at=NOW + 1712, expires_in_seconds=1712, expired=False)
    assert res['expires_at'] is None and clock.sleeps == []
    assert res['msg'] == ('lock svpms-api held by %s since 2026-03-01T11:58:02Z (expires in 1712 s): '
                          'not mitigating concurrently (holder reason: ecs_rollback svpms-api:3)' % OTHER)


def test_acquire_lost_race_reads_holder_from_the_error_item(stubbed):
    """Both runs read 'free'; DynamoDB lets one write; the loser's error carries the winner's item."""
    stub, lock, _clock = stubbed
    winner = item(owner=OTHER, expires_at=NOW + 1800)
    expect_get(stub)
    expect_put_lost(stub, winner)
    res = lock.acquire(ME, reason='r')
    assert res['acquired'] is False and res['changed'] is False
    assert res['holder']['owner'] == OTHER and res['holder']['expires_in_seconds'] == 1800
    assert 'not mitigating concurrently' in res['msg']


def test_acquire_lost_race_without_error_item_reads_the_holder(stubbed):
    stub, lock, _clock = stubbed
    expect_get(stub)
    expect_put_lost(stub, None)
    expect_get(stub, item(owner=OTHER))
    res = lock.acquire(ME, reason='r')
    assert res['acquired'] is False and res['holder']['owner'] == OTHER


def test_acquire_lost_race_then_released_tries_again_at_once(stubbed):
    stub, lock, clock = stubbed
    expect_get(stub)
    expect_put_lost(stub, None)
    expect_get(stub)           # the read after the lost write: gone already
    expect_get(stub)           # second try
    expect_put(stub)
    res = lock.acquire(ME, reason='r')
    assert res['acquired'] is True and res['attempts'] == 1 and clock.sleeps == []


def test_reacquire_by_same_owner_refreshes_and_keeps_acquired_at(stubbed):
    stub, lock, clock = stubbed
    clock.now = NOW + 600
    mine = item(owner=ME, expires_at=NOW + 1800, reason='r')
    expect_get(stub, mine)
    expect_put(stub, now=NOW + 600, acquired_at=NOW, old=mine)
    res = lock.acquire(ME, reason='r')
    assert res['acquired'] is True and res['refreshed'] is True and res['changed'] is False
    assert res['holder']['acquired_at'] == NOW_ISO and res['expires_at'] == NOW + 600 + 1800
    assert res['before']['expires_at'] == NOW + 1800
    assert 'already held by %s since %s; refreshed expiry' % (ME, NOW_ISO) in res['msg']


def test_stale_lock_is_taken_over(stubbed):
    stub, lock, _clock = stubbed
    stale = item(owner=OTHER, expires_at=NOW - 30)
    expect_get(stub, stale)
    expect_put(stub, old=stale)
    res = lock.acquire(ME, reason='r')
    assert res['acquired'] is True and res['took_over_stale'] is True and res['changed'] is True
    assert res['previous_holder']['owner'] == OTHER
    assert res['previous_holder']['expires_in_seconds'] == -30 and res['previous_holder']['expired'] is True
    assert res['msg'].startswith('took over stale lock svpms-api from %s (expired 30 s ago)' % OTHER)


@pytest.mark.parametrize('found,changed,flag', [
    (None, True, None),
    (item(owner=ME), False, 'refreshed'),
    (item(owner=OTHER, expires_at=NOW - 1), True, 'took_over_stale'),
])
def test_check_mode_reads_only(stubbed, found, changed, flag):
    stub, lock, clock = stubbed
    expect_get(stub, found)   # and nothing else: any put_item would fail the Stubber
    res = lock.acquire(ME, reason='r', wait_seconds=60, check_mode=True)
    assert res['acquired'] is True and res['would_acquire'] is True and res['changed'] is changed
    if flag:
        assert res[flag] is True
    assert res['msg'].startswith('would ') or 'would refresh' in res['msg']
    assert clock.sleeps == [] and res['waited_for'] is None


def test_check_mode_held_does_not_wait(stubbed):
    stub, lock, clock = stubbed
    expect_get(stub, item(owner=OTHER))
    res = lock.acquire(ME, wait_seconds=60, check_mode=True)
    assert (res['acquired'], res['would_acquire'], res['changed']) == (False, False, False)
    assert clock.sleeps == []


def test_wait_polls_until_released(stubbed):
    stub, lock, clock = stubbed
    held = item(owner=OTHER, expires_at=NOW + 600)
    expect_get(stub, held)
    expect_get(stub, held)
    expect_get(stub)
    expect_put(stub, now=NOW + 4)
    res = lock.acquire(ME, reason='r', wait_seconds=30)
    assert res['acquired'] is True and res['changed'] is True
    assert clock.sleeps == [2.0, 2.0] and res['attempts'] == 3 and res['waited_seconds'] == 4.0
    assert res['waited_for'] == ('lock svpms-api to be released or to expire (held by %s, '
                                 'expires at 2026-03-01T12:10:00Z); up to 30 s' % OTHER)
    assert res['msg'].endswith('after waiting 4 s for %s' % res['waited_for'])


def test_wait_is_bounded_and_ends_not_acquired(stubbed):
    stub, lock, clock = stubbed
    held = item(owner=OTHER, expires_at=NOW + 600)
    for _dummy in range(4):   # t=0, 2, 4, 5 (the last sleep is cut to the deadline)
        expect_get(stub, held)
    res = lock.acquire(ME, reason='r', wait_seconds=5)
    assert res['acquired'] is False and res['changed'] is False
    assert clock.sleeps == [2.0, 2.0, 1.0] and sum(clock.sleeps) == 5
    assert res['attempts'] == 4 and res['waited_seconds'] == 5.0
    assert res['msg'].endswith('not mitigating concurrently (holder reason: ecs_rollback svpms-api:3); '
                               'waited 5 s for %s' % res['waited_for'])


def test_wait_takes_over_when_holder_expires(stubbed):
    stub, lock, clock = stubbed
    held = item(owner=OTHER, expires_at=NOW + 1)
    expect_get(stub, held)                          # t=0: live (expires_at NOW+1 is not < NOW)
    expect_get(stub, held)                          # t=2: NOW+1 < NOW+2, stale
    expect_put(stub, now=NOW + 2, old=held)
    res = lock.acquire(ME, reason='r', wait_seconds=30)
    assert res['acquired'] is True and res['took_over_stale'] is True and clock.sleeps == [2.0]
    assert res['previous_holder']['owner'] == OTHER


def test_access_denied_names_the_action(stubbed):
    stub, lock, _clock = stubbed
    expect_get(stub)
    stub.add_client_error('put_item', 'AccessDeniedException', 'User is not authorized to perform: dynamodb:PutItem',
                          http_status_code=400)
    with pytest.raises(AWSAccessDeniedError) as exc:
        lock.acquire(ME, reason='r')
    assert exc.value.action == 'dynamodb:PutItem'
    assert 'Allow dynamodb:PutItem' in exc.value.describe()


def test_missing_table_is_not_found(stubbed):
    stub, lock, _clock = stubbed
    stub.add_client_error('get_item', 'ResourceNotFoundException', 'Requested resource not found')
    with pytest.raises(AWSNotFoundError) as exc:
        lock.acquire(ME)
    assert exc.value.code == 'ResourceNotFoundException' and exc.value.action == 'dynamodb:GetItem'


# ----------------------------------------------------------------- release

def expect_delete(stub, old=None):
    stub.add_response('delete_item', {'Attributes': old} if old else {}, L.build_release_request(TABLE, KEY, ME))


def expect_delete_lost(stub, holder):
    stub.add_client_error('delete_item', 'ConditionalCheckFailedException', 'The conditional request failed',
                          expected_params=L.build_release_request(TABLE, KEY, ME),
                          modeled_fields={'Item': holder} if holder else None)


def test_release_own_lock(stubbed):
    stub, lock, _clock = stubbed
    mine = item(owner=ME)
    expect_delete(stub, mine)
    res = lock.release(ME)
    assert res['released'] is True and res['changed'] is True
    assert res['before']['owner'] == ME and res['after'] is None and res['holder'] is None
    assert res['msg'] == 'released lock svpms-api held by %s since %s' % (ME, NOW_ISO)


def test_release_refuses_another_owners_lock(stubbed):
    stub, lock, _clock = stubbed
    expect_delete_lost(stub, item(owner=OTHER, expires_at=NOW - 5))  # even a stale one
    res = lock.release(ME)
    assert res['released'] is False and res['changed'] is False
    assert res['holder']['owner'] == OTHER and res['after'] == res['before'] == res['holder']
    assert res['msg'] == ('lock svpms-api is held by %s since %s (expired 5 s ago), not by %s: left in place'
                          % (OTHER, NOW_ISO, ME))


def test_release_absent_lock(stubbed):
    stub, lock, _clock = stubbed
    expect_delete_lost(stub, None)   # DynamoDB returns no Item when there was none
    expect_get(stub)
    res = lock.release(ME)
    assert (res['released'], res['changed'], res['holder'], res['before']) == (False, False, None, None)
    assert res['msg'] == 'no lock svpms-api to release: nothing held'


@pytest.mark.parametrize('found,released', [(item(owner=ME), True), (item(owner=OTHER), False), (None, False)])
def test_release_check_mode_reads_only(stubbed, found, released):
    stub, lock, _clock = stubbed
    expect_get(stub, found)
    res = lock.release(ME, check_mode=True)
    assert res['released'] is released and res['would_release'] is released and res['changed'] is released
