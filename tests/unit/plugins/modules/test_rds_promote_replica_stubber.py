"""rds_promote_replica's logic (module_utils/rds.py ``promote``) on a real boto3 RDS
client behind botocore's Stubber.

Why Stubber and not moto: moto 5.2.5's ``promote_read_replica`` answers success
but changes nothing (the instance stays a replica, status stays 'available';
see /work/shared/notes/moto.md), so the promote-then-wait path cannot be shown
against it. The responses below have the shapes of the real RDS API as recorded
from it: a DescribeDBInstances entry with ReadReplicaSourceDBInstanceIdentifier
while it is a replica, DBInstanceStatus 'modifying' (then 'rebooting') after
PromoteReadReplica, 'available' with the source gone at the end, and the
PromoteReadReplica response's DBInstance. Stubber validates each request and
response against the botocore model, and ``assert_no_pending_responses`` /
the absence of an expected PromoteReadReplica prove which calls were (not)
made. The clock and sleep are injected so the wait runs instantly.
"""

import copy
import datetime

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSClient
from ansible_collections.svpms.incident_response.plugins.module_utils.rds import (
    PromoteError,
    check_params,
    promote,
    summary,
)

UTC = datetime.timezone.utc
ACCOUNT = '123456789012'
REGION = 'eu-west-1'
REPLICA = 'svpms-prod-db-replica-1'
SOURCE = 'svpms-prod-db'
T0 = datetime.datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def db_instance(status='available', source=SOURCE, identifier=REPLICA, backup_retention=0):
    """One DBInstance as DescribeDBInstances / PromoteReadReplica return it."""
    inst = {
        'DBInstanceIdentifier': identifier,
        'DBInstanceClass': 'db.r6g.large',
        'Engine': 'postgres',
        'DBInstanceStatus': status,
        'MasterUsername': 'svpms',
        'Endpoint': {'Address': '%s.c9akciq32.%s.rds.amazonaws.com' % (identifier, REGION), 'Port': 5432,
                     'HostedZoneId': 'Z29XKXDKYMONMX'},
        'AllocatedStorage': 100,
        'InstanceCreateTime': T0 - datetime.timedelta(days=90),
        'PreferredBackupWindow': '03:00-03:30',
        'BackupRetentionPeriod': backup_retention,
        'DBSecurityGroups': [],
        'VpcSecurityGroups': [{'VpcSecurityGroupId': 'sg-0f1e2d3c4b5a69788', 'Status': 'active'}],
        'DBParameterGroups': [{'DBParameterGroupName': 'default.postgres16', 'ParameterApplyStatus': 'in-sync'}],
        'AvailabilityZone': 'eu-west-1b',
        'DBSubnetGroup': {'DBSubnetGroupName': 'svpms-prod-db', 'DBSubnetGroupDescription': 'svpms prod',
                          'VpcId': 'vpc-0a1b2c3d4e5f60718', 'SubnetGroupStatus': 'Complete', 'Subnets': []},
        'PreferredMaintenanceWindow': 'sun:04:00-sun:04:30',
        'PendingModifiedValues': {},
        'MultiAZ': False,
        'EngineVersion': '16.3',
        'AutoMinorVersionUpgrade': True,
        'ReadReplicaDBInstanceIdentifiers': [],
        'LicenseModel': 'postgresql-license',
        'StorageType': 'gp3',
        'DbInstancePort': 0,
        'StorageEncrypted': True,
        'DbiResourceId': 'db-ABCDEFGHIJKLMNOPQRSTUVWXY',
        'DBInstanceArn': 'arn:aws:rds:%s:%s:db:%s' % (REGION, ACCOUNT, identifier),
        'DeletionProtection': True,
    }
    if source:
        inst['ReadReplicaSourceDBInstanceIdentifier'] = source
        inst['StatusInfos'] = [{'StatusType': 'read replication', 'Normal': True, 'Status': 'replicating'}]
    return inst


def describe(inst):
    return {'DBInstances': [copy.deepcopy(inst)]}


def params(**kwargs):
    base = dict(db_instance_identifier=REPLICA, backup_retention_period=None, preferred_backup_window=None,
                wait=True, wait_timeout=1800, wait_interval=30)
    base.update(kwargs)
    return base


class FakeTime:
    """Injected clock/sleep: sleeping advances the clock, nothing really waits."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def rds():
    client = boto3.client('rds', region_name=REGION, aws_access_key_id='stub', aws_secret_access_key='stub')
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect_describe(stubber, inst):
    stubber.add_response('describe_db_instances', describe(inst), {'DBInstanceIdentifier': REPLICA})


def test_not_a_replica_is_unchanged(rds):
    client, stubber = rds
    expect_describe(stubber, db_instance(source=None, backup_retention=7))
    result = promote(client, params(), check_mode=False)
    assert result['changed'] is False
    assert result['promoted'] is False
    assert result['db_instance']['before']['source'] is None
    assert 'already standalone' in result['msg']
    assert 'diff' not in result


def test_replica_not_available_fails_without_promote_call(rds):
    client, stubber = rds
    expect_describe(stubber, db_instance(status='backing-up'))
    # No PromoteReadReplica response is queued: a call would raise a StubResponseError.
    with pytest.raises(PromoteError) as info:
        promote(client, params(), check_mode=False)
    err = info.value
    assert "'backing-up'" in err.msg and 'nothing was changed' in err.msg
    assert err.fields['error_kind'] == 'not_available'
    assert err.result['changed'] is False and err.result['promoted'] is False


def test_unknown_instance_fails_with_not_found(rds):
    client, stubber = rds
    stubber.add_client_error('describe_db_instances', service_error_code='DBInstanceNotFound',
                             service_message='DBInstance %s not found.' % REPLICA, http_status_code=404,
                             expected_params={'DBInstanceIdentifier': REPLICA})
    with pytest.raises(PromoteError) as info:
        promote(AWSClient(client, 'rds', max_attempts=1), params(), check_mode=False)
    assert info.value.fields['error_kind'] == 'not_found'
    assert "DB instance '%s' was not found in region %s" % (REPLICA, REGION) in info.value.msg
    assert info.value.result['promoted'] is False


def test_check_mode_makes_no_promote_call(rds):
    client, stubber = rds
    expect_describe(stubber, db_instance())
    result = promote(client, params(backup_retention_period=7), check_mode=True)
    assert result['changed'] is True
    assert result['promoted'] is False
    assert result['waited_for'] is None
    assert result['diff']['before']['source'] == SOURCE
    assert result['diff']['after']['source'] is None
    assert result['diff']['after']['backup_retention_period'] == 7
    assert result['msg'].startswith('would promote read replica %s' % REPLICA)


def test_promote_and_wait_until_the_source_is_gone(rds):
    client, stubber = rds
    fake = FakeTime()
    expect_describe(stubber, db_instance())
    stubber.add_response('promote_read_replica', {'DBInstance': db_instance(status='modifying')},
                         {'DBInstanceIdentifier': REPLICA, 'BackupRetentionPeriod': 7,
                          'PreferredBackupWindow': '02:00-02:30'})
    # RDS keeps the source while it modifies, reboots, and drops it once available.
    expect_describe(stubber, db_instance(status='modifying'))
    expect_describe(stubber, db_instance(status='rebooting'))
    expect_describe(stubber, db_instance(status='available'))  # available but still a replica: keep waiting
    expect_describe(stubber, db_instance(status='available', source=None, backup_retention=7))
    result = promote(client, params(backup_retention_period=7, preferred_backup_window='02:00-02:30'),
                     check_mode=False, sleep=fake.sleep, clock=fake.clock)
    assert result['changed'] is True and result['promoted'] is True
    assert result['db_instance']['before']['source'] == SOURCE
    after = result['db_instance']['after']
    assert after['status'] == 'available' and after['source'] is None and after['backup_retention_period'] == 7
    assert 'no ReadReplicaSourceDBInstanceIdentifier' in result['waited_for']
    assert result['wait_result']['completed'] is True and result['wait_result']['polls'] == 4
    assert fake.sleeps == [30, 30, 30]
    assert result['diff']['after']['source'] is None
    assert 'no longer replicates from %s' % SOURCE in result['msg']


def test_promote_without_wait_returns_the_rds_answer(rds):
    client, stubber = rds
    expect_describe(stubber, db_instance())
    stubber.add_response('promote_read_replica', {'DBInstance': db_instance(status='modifying')},
                         {'DBInstanceIdentifier': REPLICA})
    result = promote(client, params(wait=False), check_mode=False)
    assert result['promoted'] is True and result['changed'] is True
    assert result['db_instance']['after']['status'] == 'modifying'
    assert result['waited_for'] is None and result['wait_result'] is None


def test_wait_timeout_fails_saying_what_was_seen(rds):
    client, stubber = rds
    fake = FakeTime()
    expect_describe(stubber, db_instance())
    stubber.add_response('promote_read_replica', {'DBInstance': db_instance(status='modifying')},
                         {'DBInstanceIdentifier': REPLICA})
    for _poll in range(3):  # t=0, 30, 60 (= timeout)
        expect_describe(stubber, db_instance(status='modifying'))
    with pytest.raises(PromoteError) as info:
        promote(client, params(wait_timeout=60), check_mode=False, sleep=fake.sleep, clock=fake.clock)
    err = info.value
    assert err.fields['error_kind'] == 'timeout'
    assert 'timed out after 60 s' in err.msg
    assert 'status modifying, still a replica of %s' % SOURCE in err.msg
    assert 'cannot be undone' in err.msg
    assert err.result['promoted'] is True and err.result['changed'] is True
    assert err.result['wait_result']['timed_out'] is True and err.result['wait_result']['polls'] == 3
    assert sum(fake.sleeps) == 60


def test_wait_stops_on_a_failed_instance(rds):
    client, stubber = rds
    fake = FakeTime()
    expect_describe(stubber, db_instance())
    stubber.add_response('promote_read_replica', {'DBInstance': db_instance(status='modifying')},
                         {'DBInstanceIdentifier': REPLICA})
    expect_describe(stubber, db_instance(status='incompatible-parameters'))
    with pytest.raises(PromoteError) as info:
        promote(client, params(), check_mode=False, sleep=fake.sleep, clock=fake.clock)
    assert info.value.fields['error_kind'] == 'wait_failed'
    assert 'incompatible-parameters' in info.value.msg
    assert fake.sleeps == []


def test_promote_refused_by_aws_reports_nothing_changed(rds):
    client, stubber = rds
    expect_describe(stubber, db_instance())
    stubber.add_client_error('promote_read_replica', service_error_code='InvalidDBInstanceState',
                             service_message='DB Instance is not a read replica.', http_status_code=400,
                             expected_params={'DBInstanceIdentifier': REPLICA})
    with pytest.raises(PromoteError) as info:
        promote(client, params(), check_mode=False)
    err = info.value
    assert 'InvalidDBInstanceState' in err.msg
    assert err.result['promoted'] is False and err.result['changed'] is False
    assert 'diff' not in err.result


def test_aurora_member_is_refused(rds):
    client, stubber = rds
    inst = db_instance()
    inst['DBClusterIdentifier'] = 'svpms-aurora'
    expect_describe(stubber, inst)
    with pytest.raises(PromoteError) as info:
        promote(client, params(), check_mode=False)
    assert info.value.fields['error_kind'] == 'unsupported'


def test_summary_shape():
    view = summary(db_instance())
    assert view == dict(identifier=REPLICA, status='available', engine='postgres', source=SOURCE,
                        endpoint='%s.c9akciq32.%s.rds.amazonaws.com:5432' % (REPLICA, REGION),
                        backup_retention_period=0)


@pytest.mark.parametrize('bad, words', [
    (dict(db_instance_identifier=' '), 'db_instance_identifier must be'),
    (dict(backup_retention_period=36), 'backup_retention_period must be between 0 and 35'),
    (dict(preferred_backup_window='3:00-3:30'), 'hh24:mi-hh24:mi'),
    (dict(preferred_backup_window='03:00-03:10'), 'at least 30 minutes'),
    (dict(wait_timeout=0), 'wait_timeout must be between 1 and 7200'),
    (dict(wait_timeout=100000), 'wait_timeout must be between 1 and 7200'),
    (dict(wait_interval=0), 'wait_interval must be between 1 and 300'),
])
def test_check_params(bad, words):
    assert words in ' | '.join(check_params(params(**bad)))
    assert check_params(params(preferred_backup_window='23:45-00:15')) == []
