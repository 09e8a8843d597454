"""redis_restart's ElastiCache path (``reboot_and_wait`` in plugins/modules/redis_restart.py) on a real
boto3 ElastiCache client behind botocore's Stubber.

Why Stubber and not moto: moto 5.2.5 does not implement ``reboot_cache_cluster`` at all, and its
``describe_cache_clusters`` returns no CacheNodes (see /work/shared/notes/moto.md), so neither the
reboot nor the wait for the nodes can be shown against it. The responses below have the shapes of the
real ElastiCache API: a DescribeCacheClusters entry of a Redis replication-group member with
ShowCacheNodeInfo (CacheNodes with CacheNodeStatus), the RebootCacheCluster response's CacheCluster
with CacheClusterStatus 'rebooting cluster nodes' and the node 'rebooting', then 'available' again, and
the API's error codes CacheClusterNotFound (404), InvalidCacheClusterState (400) and AccessDenied (403).
Stubber validates every request and response against the botocore model; ``assert_no_pending_responses``
and the absence of a queued RebootCacheCluster prove which calls were (not) made. The clock and sleep
are injected, so the waits run instantly and elapsed times are exact.
"""

import datetime

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSAccessDeniedError, AWSClient
from ansible_collections.svpms.incident_response.plugins.modules.redis_restart import RestartError, reboot_and_wait

UTC = datetime.timezone.utc
REGION = 'eu-west-1'
ACCOUNT = '123456789012'
CLUSTER = 'svpms-prod-sessions-001'
T0 = datetime.datetime(2026, 1, 10, 9, 0, 0, tzinfo=UTC)
REBOOTING = 'rebooting cluster nodes'


def cache_cluster(status='available', node_status='available', nodes=('0001',)):
    """One CacheCluster as DescribeCacheClusters(ShowCacheNodeInfo=True) / RebootCacheCluster return it."""
    return {
        'CacheClusterId': CLUSTER,
        'ClientDownloadLandingPage': 'https://console.aws.amazon.com/elasticache/home#client-download:',
        'CacheNodeType': 'cache.r6g.large',
        'Engine': 'redis',
        'EngineVersion': '7.1.0',
        'CacheClusterStatus': status,
        'NumCacheNodes': len(nodes),
        'PreferredAvailabilityZone': 'eu-west-1a',
        'CacheClusterCreateTime': T0,
        'PreferredMaintenanceWindow': 'sun:05:00-sun:06:00',
        'PendingModifiedValues': {},
        'CacheSecurityGroups': [],
        'CacheParameterGroup': {'CacheParameterGroupName': 'default.redis7', 'ParameterApplyStatus': 'in-sync',
                                'CacheNodeIdsToReboot': []},
        'CacheSubnetGroupName': 'svpms-prod-cache',
        'CacheNodes': [{
            'CacheNodeId': node,
            'CacheNodeStatus': node_status,
            'CacheNodeCreateTime': T0,
            'Endpoint': {'Address': '%s.x1y2z3.%s.euw1.cache.amazonaws.com' % (CLUSTER, node), 'Port': 6379},
            'ParameterGroupStatus': 'in-sync',
            'CustomerAvailabilityZone': 'eu-west-1a',
        } for node in nodes],
        'AutoMinorVersionUpgrade': True,
        'SecurityGroups': [{'SecurityGroupId': 'sg-0a1b2c3d4e5f60718', 'Status': 'active'}],
        'ReplicationGroupId': 'svpms-prod-sessions',
        'SnapshotRetentionLimit': 1,
        'SnapshotWindow': '03:00-04:00',
        'AuthTokenEnabled': True,
        'TransitEncryptionEnabled': True,
        'AtRestEncryptionEnabled': True,
        'ARN': 'arn:aws:elasticache:%s:%s:cluster:%s' % (REGION, ACCOUNT, CLUSTER),
        'ReplicationGroupLogDeliveryEnabled': False,
        'LogDeliveryConfigurations': [],
        'NetworkType': 'ipv4',
        'IpDiscovery': 'ipv4',
        'TransitEncryptionMode': 'required',
    }


DESCRIBE_PARAMS = {'CacheClusterId': CLUSTER, 'ShowCacheNodeInfo': True}


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def stubbed():
    client = boto3.client('elasticache', region_name=REGION, aws_access_key_id='test-key',
                          aws_secret_access_key='test-secret')
    stubber = Stubber(client)
    clock = Clock()
    with stubber:
        yield stubber, AWSClient(client, 'elasticache', max_attempts=1, sleep=clock.sleep), clock
        stubber.assert_no_pending_responses()


def add_describe(stubber, **kwargs):
    stubber.add_response('describe_cache_clusters', {'CacheClusters': [cache_cluster(**kwargs)]}, DESCRIBE_PARAMS)


def add_reboot(stubber, nodes=('0001',)):
    stubber.add_response('reboot_cache_cluster',
                         {'CacheCluster': cache_cluster(status=REBOOTING, node_status='rebooting', nodes=nodes)},
                         {'CacheClusterId': CLUSTER, 'CacheNodeIdsToReboot': list(nodes)})


def test_reboot_accepted_then_rebooting_then_available(stubbed):
    stubber, ec, clock = stubbed
    add_describe(stubber)
    add_reboot(stubber)
    add_describe(stubber, status=REBOOTING, node_status='rebooting')
    add_describe(stubber, status='available', node_status='rebooting')  # cluster back, node not yet
    add_describe(stubber)
    result = reboot_and_wait(ec, CLUSTER, None, wait_timeout=600, wait_interval=10, clock=clock, sleep=clock.sleep)
    assert result['changed'] is True
    assert result['method'] == 'elasticache'
    assert result['rebooted_nodes'] == ['0001']
    assert result['cluster_status'] == 'available'
    assert result['statuses_seen'] == [REBOOTING, 'available']
    assert result['elapsed_seconds'] == 30.0
    assert clock.sleeps == [10, 10, 10]
    assert result['waited_for'] == ('ElastiCache cache cluster %s status available and node(s) 0001 available'
                                    % CLUSTER)
    assert result['ping_ms'] is None


def test_explicit_node_ids_of_a_multi_node_cluster(stubbed):
    stubber, ec, clock = stubbed
    nodes = ('0001', '0002', '0003')
    add_describe(stubber, nodes=nodes)
    add_reboot(stubber, nodes=('0002',))
    add_describe(stubber, nodes=nodes)
    result = reboot_and_wait(ec, CLUSTER, ['0002'], wait_timeout=60, wait_interval=5, clock=clock, sleep=clock.sleep)
    assert result['rebooted_nodes'] == ['0002']
    assert result['elapsed_seconds'] == 5.0


def test_timeout_is_bounded_and_says_what_was_seen(stubbed):
    stubber, ec, clock = stubbed
    add_describe(stubber)
    add_reboot(stubber)
    for _i in range(3):
        add_describe(stubber, status=REBOOTING, node_status='rebooting')
    with pytest.raises(RestartError) as info:
        reboot_and_wait(ec, CLUSTER, None, wait_timeout=30, wait_interval=10, clock=clock, sleep=clock.sleep)
    err = info.value
    assert err.kind == 'timeout'
    assert "after 30s the cluster is 'rebooting cluster nodes' (nodes: 0001=rebooting)" in err.message
    assert err.details['rebooted_nodes'] == ['0001']
    assert err.details['elapsed_seconds'] == 30.0
    assert sum(clock.sleeps) == 30


def test_cluster_not_found_reboots_nothing(stubbed):
    stubber, ec, clock = stubbed
    stubber.add_client_error('describe_cache_clusters', service_error_code='CacheClusterNotFound',
                             service_message='CacheCluster not found: %s' % CLUSTER, http_status_code=404,
                             expected_params=DESCRIBE_PARAMS)
    with pytest.raises(RestartError) as info:
        reboot_and_wait(ec, CLUSTER, None, wait_timeout=30, wait_interval=10, clock=clock, sleep=clock.sleep)
    assert info.value.kind == 'not_found'
    assert 'does not exist' in info.value.message and 'cache_cluster_id' in info.value.message
    assert info.value.details['rebooted_nodes'] == []
    assert clock.sleeps == []


def test_check_mode_makes_no_reboot_call(stubbed):
    stubber, ec, clock = stubbed
    add_describe(stubber, nodes=('0001', '0002'))
    # no reboot_cache_cluster is queued: Stubber would raise on any such call
    result = reboot_and_wait(ec, CLUSTER, None, check_mode=True, clock=clock, sleep=clock.sleep)
    assert result['changed'] is True
    assert result['rebooted_nodes'] == ['0001', '0002']
    assert result['statuses_seen'] == []
    assert result['elapsed_seconds'] == 0.0
    assert clock.sleeps == []


def test_cluster_not_available_is_refused(stubbed):
    stubber, ec, clock = stubbed
    add_describe(stubber, status='modifying')
    with pytest.raises(RestartError) as info:
        reboot_and_wait(ec, CLUSTER, None, clock=clock, sleep=clock.sleep)
    assert info.value.kind == 'invalid_state'
    assert "is 'modifying', not available" in info.value.message
    assert 'nothing was rebooted' in info.value.message


def test_unknown_node_id_is_refused(stubbed):
    stubber, ec, clock = stubbed
    add_describe(stubber)
    with pytest.raises(RestartError) as info:
        reboot_and_wait(ec, CLUSTER, ['0001', '0004'], clock=clock, sleep=clock.sleep)
    assert info.value.kind == 'not_found'
    assert 'node_ids 0004 are not nodes of cache cluster %s (its nodes: 0001)' % CLUSTER in info.value.message


def test_reboot_refused_by_the_api(stubbed):
    stubber, ec, clock = stubbed
    add_describe(stubber)
    stubber.add_client_error('reboot_cache_cluster', service_error_code='InvalidCacheClusterState',
                             service_message='Cluster is not in available state', http_status_code=400,
                             expected_params={'CacheClusterId': CLUSTER, 'CacheNodeIdsToReboot': ['0001']})
    with pytest.raises(RestartError) as info:
        reboot_and_wait(ec, CLUSTER, None, clock=clock, sleep=clock.sleep)
    assert info.value.kind == 'invalid_state'
    assert info.value.details['rebooted_nodes'] == []


def test_access_denied_names_the_iam_action(stubbed):
    stubber, ec, clock = stubbed
    add_describe(stubber)
    stubber.add_client_error('reboot_cache_cluster', service_error_code='AccessDenied',
                             service_message='User is not authorized to perform: elasticache:RebootCacheCluster',
                             http_status_code=403)
    with pytest.raises(AWSAccessDeniedError) as info:
        reboot_and_wait(ec, CLUSTER, None, clock=clock, sleep=clock.sleep)
    assert 'elasticache:RebootCacheCluster' in info.value.describe()


def test_cluster_gone_while_waiting(stubbed):
    stubber, ec, clock = stubbed
    add_describe(stubber)
    add_reboot(stubber)
    add_describe(stubber, status='deleting', node_status='deleting')
    with pytest.raises(RestartError) as info:
        reboot_and_wait(ec, CLUSTER, None, wait_timeout=600, wait_interval=10, clock=clock, sleep=clock.sleep)
    assert info.value.kind == 'invalid_state'
    assert "became 'deleting'" in info.value.message
    assert info.value.details['rebooted_nodes'] == ['0001']
    assert info.value.details['statuses_seen'] == [REBOOTING, 'deleting']
