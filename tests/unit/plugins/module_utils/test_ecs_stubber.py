"""module_utils/ecs.py and aws.py on a real boto3 ECS client behind botocore's Stubber.

moto never produces a PRIMARY+ACTIVE deployment pair (its service keeps one
static PRIMARY deployment whatever update_service does), so the rolling-
deployment paths (rollback candidate during a rollout, waiting for the old
deployment to drain, a FAILED rollout, a timeout) are tested here on response
shapes recorded from the real ECS API: full ARNs, PRIMARY IN_PROGRESS plus
ACTIVE COMPLETED, rolloutStateReason texts as ECS writes them. Stubber
validates every response against the botocore model, so the shapes are the
API's. The functions are driven through an AWSClient wrapping the stubbed
client, exactly as the modules call them.
"""

import copy
import datetime

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.svpms.incident_response.plugins.module_utils import aws
from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (
    AWSAccessDeniedError,
    AWSClient,
    AWSNotFoundError,
    AWSUnreachableError,
)
from ansible_collections.svpms.incident_response.plugins.module_utils import ecs
from ansible_collections.svpms.incident_response.plugins.modules.ecs_scale import plan

UTC = datetime.timezone.utc
ACCOUNT = '123456789012'
REGION = 'us-east-1'
CLUSTER = 'svpms-prod-cluster'
SERVICE = 'svpms-api'
CLUSTER_ARN = 'arn:aws:ecs:%s:%s:cluster/%s' % (REGION, ACCOUNT, CLUSTER)
SERVICE_ARN = 'arn:aws:ecs:%s:%s:service/%s/%s' % (REGION, ACCOUNT, CLUSTER, SERVICE)
T0 = datetime.datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def td_arn(revision, family='svpms-api'):
    return 'arn:aws:ecs:%s:%s:task-definition/%s:%d' % (REGION, ACCOUNT, family, revision)


def _deployment(id_, status, revision, rollout, running, created, desired=4):
    return {
        'id': id_,
        'status': status,
        'taskDefinition': td_arn(revision),
        'desiredCount': desired,
        'pendingCount': desired - running if status == 'PRIMARY' else 0,
        'runningCount': running,
        'failedTasks': 0,
        'createdAt': created,
        'updatedAt': created + datetime.timedelta(seconds=40),
        'launchType': 'FARGATE',
        'platformVersion': '1.4.0',
        'platformFamily': 'Linux',
        'networkConfiguration': {'awsvpcConfiguration': {
            'subnets': ['subnet-0a1b2c3d4e5f60718'], 'securityGroups': ['sg-0f1e2d3c4b5a69788'],
            'assignPublicIp': 'DISABLED'}},
        'rolloutState': rollout,
        'rolloutStateReason': ('ECS deployment %s completed.' % id_ if rollout == 'COMPLETED'
                               else 'ECS deployment %s in progress.' % id_ if rollout == 'IN_PROGRESS'
                               else 'ECS deployment circuit breaker: tasks failed to start.'),
    }


def service_response(deployments, revision=5, running=4, desired=4, pending=0):
    """A describe_services response as ECS returns it."""
    return {
        'services': [{
            'serviceArn': SERVICE_ARN,
            'serviceName': SERVICE,
            'clusterArn': CLUSTER_ARN,
            'loadBalancers': [{'targetGroupArn': 'arn:aws:elasticloadbalancing:%s:%s:targetgroup/svpms-api/'
                                                 '0123456789abcdef' % (REGION, ACCOUNT),
                               'containerName': 'api', 'containerPort': 8080}],
            'serviceRegistries': [],
            'status': 'ACTIVE',
            'desiredCount': desired,
            'runningCount': running,
            'pendingCount': pending,
            'launchType': 'FARGATE',
            'platformVersion': 'LATEST',
            'platformFamily': 'Linux',
            'taskDefinition': td_arn(revision),
            'deploymentConfiguration': {
                'deploymentCircuitBreaker': {'enable': True, 'rollback': True},
                'maximumPercent': 200, 'minimumHealthyPercent': 100},
            'deployments': deployments,
            'roleArn': 'arn:aws:iam::%s:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS' % ACCOUNT,
            'events': [{'id': '6f1d2c3b-0a9e-4f8d-b7c6-5a4e3d2c1b0a', 'createdAt': T0,
                        'message': '(service svpms-api) has started 2 tasks: (task 0f1e2d3c4b5a6978).'}],
            'createdAt': datetime.datetime(2025, 11, 2, 8, 0, 0, tzinfo=UTC),
            'placementConstraints': [],
            'placementStrategy': [],
            'networkConfiguration': {'awsvpcConfiguration': {
                'subnets': ['subnet-0a1b2c3d4e5f60718'], 'securityGroups': ['sg-0f1e2d3c4b5a69788'],
                'assignPublicIp': 'DISABLED'}},
            'healthCheckGracePeriodSeconds': 60,
            'schedulingStrategy': 'REPLICA',
            'deploymentController': {'type': 'ECS'},
            'createdBy': 'arn:aws:iam::%s:role/deploy' % ACCOUNT,
            'enableECSManagedTags': True,
            'propagateTags': 'NONE',
            'enableExecuteCommand': False,
        }],
        'failures': [],
    }


def rolling():
    """Rev 5 rolling out (PRIMARY, IN_PROGRESS, 2 of 4 up) over rev 4 (ACTIVE, COMPLETED)."""
    return service_response([
        _deployment('ecs-svc/5872945612098523411', 'PRIMARY', 5, 'IN_PROGRESS', running=2,
                    created=T0 + datetime.timedelta(minutes=30)),
        _deployment('ecs-svc/1209854375893218564', 'ACTIVE', 4, 'COMPLETED', running=4, created=T0),
    ], revision=5, running=6, pending=2)


def settled(revision=5, rollout='COMPLETED', running=4):
    return service_response([
        _deployment('ecs-svc/5872945612098523411', 'PRIMARY', revision, rollout, running=running,
                    created=T0 + datetime.timedelta(minutes=30)),
    ], revision=revision, running=running)


DESCRIBE = {'cluster': CLUSTER, 'services': [SERVICE]}


@pytest.fixture
def stubbed():
    client = boto3.client('ecs', region_name=REGION, aws_access_key_id='stub', aws_secret_access_key='stub')
    with Stubber(client) as stubber:
        sleeps = []
        yield stubber, AWSClient(client, 'ecs', max_attempts=3, sleep=sleeps.append), sleeps
        stubber.assert_no_pending_responses()


class FakeClock(object):
    """monotonic() that moves only when the loop sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


# --------------------------------------------------- rollback candidate

def test_candidate_during_rollout_is_the_active_deployments_task_definition(stubbed):
    stubber, client, _sleeps = stubbed
    stubber.add_response('describe_services', rolling(), DESCRIBE)
    stubber.add_response('list_task_definitions',
                         {'taskDefinitionArns': [td_arn(5), td_arn(4), td_arn(3), td_arn(2)]},
                         {'familyPrefix': 'svpms-api', 'status': 'ACTIVE', 'sort': 'DESC'})
    raw = ecs.describe_service(client, CLUSTER, SERVICE)
    facts = ecs.service_facts(raw, T0 + datetime.timedelta(minutes=35), 3600)
    assert facts['rollout_in_progress'] is True
    assert [d['status'] for d in facts['deployments']] == ['PRIMARY', 'ACTIVE']
    assert facts['deployments'][0]['rollout_state'] == 'IN_PROGRESS'
    assert facts['deployments'][0]['created_at'] == '2026-03-01T09:30:00.000Z'
    assert facts['recent_deployment']['id'] == 'ecs-svc/5872945612098523411'
    assert facts['recent_deployment_age_seconds'] == 300
    assert facts['service']['task_definition_revision'] == 5

    candidate = ecs.rollback_candidate(client, raw)
    assert candidate['task_definition'] == td_arn(4)
    assert (candidate['family'], candidate['revision']) == ('svpms-api', 4)
    assert 'rollout in progress' in candidate['reason'] and 'ecs-svc/1209854375893218564' in candidate['reason']


def test_candidate_when_settled_is_newest_older_active_exact_family(stubbed):
    stubber, client, _sleeps = stubbed
    stubber.add_response('describe_services', settled(revision=5), DESCRIBE)
    # familyPrefix is a prefix on AWS: a sibling family shows up and must be ignored.
    stubber.add_response('list_task_definitions',
                         {'taskDefinitionArns': [td_arn(9, 'svpms-api-worker'), td_arn(5), td_arn(3)],
                          'nextToken': 'page-2'},
                         {'familyPrefix': 'svpms-api', 'status': 'ACTIVE', 'sort': 'DESC'})
    stubber.add_response('list_task_definitions', {'taskDefinitionArns': [td_arn(2)]},
                         {'familyPrefix': 'svpms-api', 'status': 'ACTIVE', 'sort': 'DESC', 'nextToken': 'page-2'})
    raw = ecs.describe_service(client, CLUSTER, SERVICE)
    candidate = ecs.rollback_candidate(client, raw)
    assert candidate['task_definition'] == td_arn(3) and 'older than the current svpms-api:5' in candidate['reason']


# ------------------------------------------------------------- not found

def test_missing_cluster_is_named(stubbed):
    stubber, client, sleeps = stubbed
    stubber.add_client_error('describe_services', service_error_code='ClusterNotFoundException',
                             service_message='Cluster not found.', http_status_code=400)
    with pytest.raises(AWSNotFoundError) as info:
        ecs.describe_service(client, CLUSTER, SERVICE)
    assert "cluster 'svpms-prod-cluster' was not found in region us-east-1" in info.value.describe()
    assert sleeps == []


def test_missing_service_is_named(stubbed):
    stubber, client, _sleeps = stubbed
    stubber.add_response('describe_services', {'services': [], 'failures': [
        {'arn': 'arn:aws:ecs:%s:%s:service/%s/nope' % (REGION, ACCOUNT, CLUSTER), 'reason': 'MISSING'}]},
        {'cluster': CLUSTER, 'services': ['nope']})
    with pytest.raises(AWSNotFoundError) as info:
        ecs.describe_service(client, CLUSTER, 'nope')
    assert "service 'nope' was not found in cluster 'svpms-prod-cluster' (MISSING)" in info.value.describe()


def test_unknown_task_definition_is_not_found(stubbed):
    stubber, client, _sleeps = stubbed
    stubber.add_client_error('describe_task_definition', service_error_code='ClientException',
                             service_message='Unable to describe task definition.', http_status_code=400)
    with pytest.raises(AWSNotFoundError) as info:
        ecs.describe_task_definition(client, 'svpms-api:99')
    assert "task definition 'svpms-api:99' does not exist" in info.value.describe()


# ---------------------------------------------------------- stopped tasks

def test_stopped_tasks_with_exit_codes_newest_first(stubbed):
    stubber, client, _sleeps = stubbed
    arns = ['arn:aws:ecs:%s:%s:task/%s/%032x' % (REGION, ACCOUNT, CLUSTER, n) for n in (1, 2)]

    def task(arn, stopped_at, exit_code, reason):
        container = {'containerArn': arn + '/c', 'taskArn': arn, 'name': 'api', 'lastStatus': 'STOPPED',
                     'exitCode': exit_code}
        if reason:  # ECS leaves the key out when there is no reason
            container['reason'] = reason
        return {'taskArn': arn, 'clusterArn': CLUSTER_ARN, 'taskDefinitionArn': td_arn(5),
                'group': 'service:svpms-api', 'lastStatus': 'STOPPED', 'desiredStatus': 'STOPPED',
                'stopCode': 'EssentialContainerExited', 'stoppedReason': 'Essential container in task exited',
                'stoppedAt': stopped_at, 'createdAt': stopped_at - datetime.timedelta(minutes=3),
                'launchType': 'FARGATE', 'cpu': '512', 'memory': '1024',
                'containers': [container]}

    stubber.add_response('list_tasks', {'taskArns': arns},
                         {'cluster': CLUSTER, 'serviceName': SERVICE, 'desiredStatus': 'STOPPED'})
    stubber.add_response('describe_tasks', {'tasks': [
        task(arns[0], T0, 1, None),
        task(arns[1], T0 + datetime.timedelta(minutes=5), 137, 'OutOfMemoryError: Container killed due to memory usage'),
    ], 'failures': []}, {'cluster': CLUSTER, 'tasks': arns})
    got = ecs.stopped_tasks(client, CLUSTER, SERVICE_ARN, 10)
    assert [t['task_arn'] for t in got] == [arns[1], arns[0]]
    assert got[0]['stopped_at'] == '2026-03-01T09:05:00.000Z'
    assert got[0]['stop_code'] == 'EssentialContainerExited'
    assert got[0]['containers'] == [dict(name='api', last_status='STOPPED', exit_code=137,
                                         reason='OutOfMemoryError: Container killed due to memory usage')]


# ------------------------------------------------------------------ waiting

def test_wait_until_old_deployment_drains(stubbed):
    stubber, client, _sleeps = stubbed
    for response in (rolling(), rolling(), settled()):
        stubber.add_response('describe_services', response, DESCRIBE)
    clock = FakeClock()
    got = ecs.wait_for_rollout(client, CLUSTER, SERVICE, ecs.RolloutTarget(td_arn(5)), timeout=60, interval=10,
                               sleep=clock.sleep, clock=clock)
    assert got['completed'] is True and got['polls'] == 3 and got['msg'] is None
    assert clock.sleeps == [10, 10]
    assert got['waited_for'] == '1 deployment on task definition svpms-api:5, running=desired'


def test_wait_times_out_with_what_it_waited_for_and_last_seen(stubbed):
    stubber, client, _sleeps = stubbed
    for _poll in range(4):  # t=0, 10, 20, 25 (last sleep trimmed to the deadline)
        stubber.add_response('describe_services', rolling(), DESCRIBE)
    clock = FakeClock()
    got = ecs.wait_for_rollout(client, CLUSTER, SERVICE, ecs.RolloutTarget('svpms-api:5'), timeout=25, interval=10,
                               sleep=clock.sleep, clock=clock)
    assert got['completed'] is False and got['timed_out'] is True and got['polls'] == 4
    assert clock.sleeps == [10, 10, 5]
    assert got['msg'].startswith('timed out after 25 s waiting for service svpms-api to reach: 1 deployment on '
                                 'task definition svpms-api:5, running=desired (last seen: task definition '
                                 'svpms-api:5, 2 deployments [PRIMARY IN_PROGRESS svpms-api:5 running 2/4; '
                                 'ACTIVE COMPLETED svpms-api:4 running 4/4], running=6, desired=4')


def test_wait_stops_on_failed_rollout(stubbed):
    stubber, client, _sleeps = stubbed
    failed = rolling()
    failed['services'][0]['deployments'][0].update(
        rolloutState='FAILED', rolloutStateReason='ECS deployment circuit breaker: tasks failed to start.')
    stubber.add_response('describe_services', failed, DESCRIBE)
    clock = FakeClock()
    got = ecs.wait_for_rollout(client, CLUSTER, SERVICE, ecs.RolloutTarget(td_arn(5)), timeout=600, interval=10,
                               sleep=clock.sleep, clock=clock)
    assert got['rollout_failed'] is True and got['completed'] is False and clock.sleeps == []
    assert 'circuit breaker' in got['msg'] and 'FAILED' in got['msg']


def test_rollout_predicate_on_moto_like_and_aws_shapes():
    target = ecs.RolloutTarget('svpms-api:3', desired_count=4)
    # moto: service taskDefinition updated (as family:rev), its only deployment still names the old one.
    moto_like = copy.deepcopy(settled(revision=4)['services'][0])
    moto_like['taskDefinition'] = 'svpms-api:3'
    assert ecs.rollout_status(moto_like, target) == (True, None)
    assert ecs.rollout_status(moto_like, ecs.RolloutTarget('svpms-api:3', desired_count=5)) == (False, None)
    assert ecs.rollout_status(rolling()['services'][0], ecs.RolloutTarget(td_arn(5))) == (False, None)
    short = settled(running=3)['services'][0]
    assert ecs.rollout_status(short, ecs.RolloutTarget(td_arn(5))) == (False, None)
    # No rolloutState (CODE_DEPLOY / older shapes) counts as done once counts match.
    no_state = settled()['services'][0]
    del no_state['deployments'][0]['rolloutState']
    assert ecs.rollout_status(no_state, ecs.RolloutTarget(td_arn(5))) == (True, None)
    redeploy = ecs.RolloutTarget(td_arn(5), deployment_id='ecs-svc/other')
    assert ecs.rollout_status(settled()['services'][0], redeploy) == (False, None)
    assert 'deployment ecs-svc/other as the only deployment' in redeploy.describe()


@pytest.mark.parametrize('current,requested,low,high,expected', [
    (2, 3, 0, 10, (3, False, False)),
    (2, 22, 0, 5, (5, True, False)),
    (8, 12, 0, 5, (8, True, False)),     # already above the cap: an increase never scales down
    (2, -3, 0, 5, (0, False, True)),
    (2, 0, 1, 5, (1, False, True)),
    (0, -1, 1, 5, (0, False, True)),     # already below the floor: a decrease never scales up
    (8, 6, 0, 5, (5, True, False)),      # a decrease above the cap goes to the cap
])
def test_scale_plan(current, requested, low, high, expected):
    assert plan(current, requested, low, high) == expected


# ------------------------------------------------ aws.py retries and errors

@pytest.mark.parametrize('code', ['Throttling', 'ThrottlingException'])
def test_throttling_is_retried_with_backoff(stubbed, code):
    stubber, client, sleeps = stubbed
    stubber.add_client_error('describe_services', service_error_code=code, service_message='Rate exceeded',
                             http_status_code=400)
    stubber.add_response('describe_services', settled(), DESCRIBE)
    raw = ecs.describe_service(client, CLUSTER, SERVICE)
    assert raw['serviceName'] == SERVICE
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= aws.BACKOFF_BASE


def test_throttling_gives_up_after_max_attempts(stubbed):
    stubber, client, sleeps = stubbed
    for _attempt in range(3):
        stubber.add_client_error('describe_services', service_error_code='ThrottlingException',
                                 service_message='Rate exceeded', http_status_code=400)
    with pytest.raises(AWSUnreachableError) as info:
        ecs.describe_service(client, CLUSTER, SERVICE)
    assert info.value.attempts == 3 and len(sleeps) == 2
    assert '[after 3 attempts]' in info.value.describe()


def test_access_denied_is_final_and_names_the_action(stubbed):
    stubber, client, sleeps = stubbed
    stubber.add_client_error('describe_services', service_error_code='AccessDeniedException',
                             service_message='User: arn:aws:sts::123456789012:assumed-role/oncall/x is not '
                                             'authorized to perform: ecs:DescribeServices',
                             http_status_code=400)
    with pytest.raises(AWSAccessDeniedError) as info:
        ecs.describe_service(client, CLUSTER, SERVICE)
    assert sleeps == []
    err = info.value
    assert err.action == 'ecs:DescribeServices' and err.kind == 'access_denied' and err.reachable
    assert 'Allow ecs:DescribeServices' in err.describe()
    assert err.to_result()['aws_action'] == 'ecs:DescribeServices'


def test_server_errors_are_transient_client_errors_are_not():
    from botocore.exceptions import ClientError

    def client_error(code, status):
        return ClientError({'Error': {'Code': code, 'Message': 'x'},
                            'ResponseMetadata': {'HTTPStatusCode': status}}, 'DescribeServices')
    assert aws.is_transient(client_error('InternalFailure', 500))
    assert aws.is_transient(client_error('Whatever', 503))
    assert not aws.is_transient(client_error('InvalidParameterException', 400))
    assert not aws.is_transient(client_error('AccessDeniedException', 400))


def test_full_jitter_backoff_bounds():
    seen = []

    def rand(low, high):
        seen.append((low, high))
        return high

    assert [aws.backoff_delay(n, rand=rand) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(low == 0 for low, _high in seen)
    for n in range(8):
        assert 0 <= aws.backoff_delay(n) <= min(aws.BACKOFF_CAP, aws.BACKOFF_BASE * 2 ** n)
