"""rds_promote_replica against moto_server (the session ``moto`` fixture).

moto creates instances 'available' at once and read replicas with
ReadReplicaSourceDBInstanceIdentifier, so the read-and-decide paths run here
for real over HTTP: check mode on a replica, a standalone instance, an unknown
identifier, an unreachable endpoint. moto's promote_read_replica answers
success but changes nothing (notes/moto.md), so the promote-and-wait path is
tested on real RDS response shapes with botocore's Stubber in
tests/unit/plugins/modules/test_rds_promote_replica_stubber.py.
"""

import uuid

import pytest

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.rds import source_and_replica
from tests.helpers.servers import free_port

SECRETS = (AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key'])


def run(endpoint, check=False, **kwargs):
    args = dict(AWS_TEST_CREDS, endpoint_url=endpoint, wait_timeout=5, wait_interval=1)
    args.update(kwargs)
    result = run_module('rds_promote_replica', args, check=check)
    assert_no_traceback(result)
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr
    return result


@pytest.fixture(scope='module')
def dbs(moto):
    """A source instance and its read replica, unique names (moto is shared by the session)."""
    with source_and_replica(moto.endpoint, 'svpms-it-db') as created:
        yield dict(created, endpoint=moto.endpoint)


def replica_source(dbs):
    inst = dbs['rds'].describe_db_instances(DBInstanceIdentifier=dbs['replica'])['DBInstances'][0]
    return inst.get('ReadReplicaSourceDBInstanceIdentifier')


def test_check_mode_on_a_replica_reports_the_promotion_and_changes_nothing(dbs):
    result = run(dbs['endpoint'], check=True, db_instance_identifier=dbs['replica'], backup_retention_period=7)
    assert not result.failed, result
    assert result['changed'] is True
    assert result['promoted'] is False
    before, after = result['db_instance']['before'], result['db_instance']['after']
    assert before['identifier'] == dbs['replica'] and before['source'] == dbs['source']
    assert before['status'] == 'available' and before['engine'] == 'postgres'
    assert before['endpoint'].endswith(':5432')
    assert after['source'] is None and after['backup_retention_period'] == 7
    assert result['diff'] == dict(before=before, after=after)
    assert result['waited_for'] is None
    assert 'would promote read replica %s' % dbs['replica'] in result['msg']
    assert replica_source(dbs) == dbs['source']


def test_a_standalone_instance_is_left_alone(dbs):
    result = run(dbs['endpoint'], db_instance_identifier=dbs['source'])
    assert not result.failed, result
    assert result['changed'] is False and result['promoted'] is False
    assert result['db_instance']['before']['source'] is None
    assert 'already standalone' in result['msg']


def test_unknown_identifier_fails_clearly(dbs):
    result = run(dbs['endpoint'], db_instance_identifier='svpms-no-such-db-%s' % uuid.uuid4().hex[:6])
    assert result.failed
    assert result['error_kind'] == 'not_found'
    assert result['reachable'] is True
    assert 'was not found in region us-east-1' in result['msg']
    assert result['promoted'] is False and not result.get('changed')


def test_unreachable_endpoint_fails_cleanly():
    endpoint = 'http://127.0.0.1:%d' % free_port()
    result = run(endpoint, db_instance_identifier='svpms-prod-db-replica-1')
    assert result.failed
    assert result['reachable'] is False
    assert result['error_kind'] == 'unreachable'
    # IAM action names are case-insensitive; aws.py spells this one rds:DescribeDbInstances.
    assert 'rds:describedbinstances' in result['msg'].lower()
    assert result['promoted'] is False and not result.get('changed')


def test_bad_input_names_the_parameter(dbs):
    result = run(dbs['endpoint'], db_instance_identifier=dbs['replica'], wait_timeout=0)
    assert result.failed
    assert 'wait_timeout must be between 1 and 7200' in result['msg']
    assert replica_source(dbs) == dbs['source']
