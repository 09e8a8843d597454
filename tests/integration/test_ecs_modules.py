"""ECS modules against moto_server (the session ``moto`` fixture).

What moto does here, and what these tests therefore rely on (notes/moto.md):
- create_service needs a VPC with DNS hostnames, a subnet, a security group and
  ``memory`` on the containers;
- the service keeps a single PRIMARY deployment (rolloutState COMPLETED since
  MOTO_ECS_SERVICE_RUNNING=2 >= desiredCount 2); update_service changes the
  service's ``taskDefinition`` (stored as the string passed) and sets
  runningCount = desiredCount, but leaves the deployment (and its task
  definition) alone; forceNewDeployment renews the deployment id/createdAt;
- list_task_definitions lists ACTIVE revisions only; a deregistered revision
  is INACTIVE; update_service would accept it, so the module must refuse first;
- services never start tasks and list_tasks ignores serviceName, so the stopped
  task below is started by hand with group ``service:svpms-api`` and stopped.
The PRIMARY+ACTIVE rollout path moto cannot produce is covered in
tests/unit/plugins/module_utils/test_ecs_stubber.py on recorded AWS shapes.
"""

import socket

import boto3
import pytest

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_adhoc, run_module

CLUSTER = 'svpms-it-cluster'
SERVICE = 'svpms-api'
FAMILY = 'svpms-api'
OTHER_FAMILY = 'svpms-worker'
WAIT = dict(wait_timeout=30, wait_interval=1)
SECRETS = (AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key'])


def _boto(endpoint, service):
    return boto3.client(service, region_name=AWS_TEST_CREDS['region'], endpoint_url=endpoint,
                        aws_access_key_id='setup', aws_secret_access_key='setup')


def _rev(identifier):
    """Revision of an ARN or family:rev (moto stores either)."""
    family, _sep, revision = identifier.rsplit('/', 1)[-1].partition(':')
    assert family == FAMILY, identifier
    return int(revision)


class Env:
    def __init__(self, endpoint, ecs):
        self.endpoint = endpoint
        self.ecs = ecs
        self.arns = {}

    def args(self, **kwargs):
        base = dict(AWS_TEST_CREDS, endpoint_url=self.endpoint, cluster=CLUSTER, service=SERVICE)
        base.update(kwargs)
        return base

    def run(self, name, check=False, **kwargs):
        result = run_module(name, self.args(**kwargs), check=check)
        assert_no_traceback(result)
        for secret in SECRETS:
            assert secret not in result.stdout and secret not in result.stderr, 'secret leaked by %s' % name
        return result

    def service(self):
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])['services'][0]

    def set_service(self, task_definition=None, desired_count=2):
        self.ecs.update_service(cluster=CLUSTER, service=SERVICE,
                                taskDefinition=task_definition or self.arns[4], desiredCount=desired_count)


@pytest.fixture(scope='module')
def env(moto):
    moto.reset()
    ec2 = _boto(moto.endpoint, 'ec2')
    ecs = _boto(moto.endpoint, 'ecs')
    vpc = ec2.create_vpc(CidrBlock='10.42.0.0/16')['Vpc']['VpcId']
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={'Value': True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock='10.42.1.0/24')['Subnet']['SubnetId']
    sg = ec2.create_security_group(GroupName='svpms-api', Description='svpms api', VpcId=vpc)['GroupId']
    network = {'awsvpcConfiguration': {'subnets': [subnet], 'securityGroups': [sg]}}
    ecs.create_cluster(clusterName=CLUSTER)
    e = Env(moto.endpoint, ecs)
    for n in range(1, 5):
        td = ecs.register_task_definition(
            family=FAMILY, networkMode='awsvpc', requiresCompatibilities=['FARGATE'], cpu='256', memory='512',
            containerDefinitions=[{'name': 'api', 'image': 'svpms/api:1.%d' % n, 'memory': 512, 'essential': True}])
        e.arns[n] = td['taskDefinition']['taskDefinitionArn']
    ecs.register_task_definition(family=OTHER_FAMILY, networkMode='awsvpc',
                                 containerDefinitions=[{'name': 'worker', 'image': 'svpms/worker', 'memory': 256}])
    ecs.deregister_task_definition(taskDefinition='%s:1' % FAMILY)
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=e.arns[4], desiredCount=2,
                       launchType='FARGATE', networkConfiguration=network)
    # A crashed task of the service, for stopped_tasks.
    task = ecs.run_task(cluster=CLUSTER, taskDefinition=e.arns[4], launchType='FARGATE', group='service:%s' % SERVICE,
                        startedBy='ecs-svc/0', networkConfiguration=network)['tasks'][0]
    ecs.stop_task(cluster=CLUSTER, task=task['taskArn'], reason='Essential container in task exited')
    e.stopped_task_arn = task['taskArn']
    return e


@pytest.fixture
def svc(env):
    """The service back on revision 4 (as an ARN), desiredCount 2, before each test."""
    env.set_service()
    return env


# ------------------------------------------------------------ ecs_service_info

def test_service_info_reports_state_and_rollback_candidate(svc):
    res = svc.run('ecs_service_info')
    assert res.rc == 0 and not res.failed, res
    assert res['changed'] is False
    service = res['service']
    assert service['status'] == 'ACTIVE'
    assert (service['desired_count'], service['running_count'], service['pending_count']) == (2, 2, 0)
    assert service['task_definition'] == svc.arns[4]
    assert (service['task_definition_family'], service['task_definition_revision']) == (FAMILY, 4)
    assert res['rollout_in_progress'] is False
    [deployment] = res['deployments']
    assert deployment['status'] == 'PRIMARY' and deployment['rollout_state'] == 'COMPLETED'
    assert deployment['created_at'].endswith('Z') and 'T' in deployment['created_at']
    assert res['recent_deployment']['id'] == deployment['id']
    assert 0 <= res['recent_deployment_age_seconds'] < 600
    candidate = res['rollback_candidate']
    assert candidate['task_definition'] == svc.arns[3]
    assert (candidate['family'], candidate['revision']) == (FAMILY, 3)
    assert 'older than' in candidate['reason']
    assert res['latest_revision'] == 4 and res['runs_latest_revision'] is True
    [stopped] = [t for t in res['stopped_tasks'] if t['task_arn'] == svc.stopped_task_arn]
    assert stopped['stopped_reason'] == 'Essential container in task exited'
    assert stopped['last_status'] == 'STOPPED'
    assert stopped['containers'][0]['name'] == 'api'


def test_service_info_outside_lookback_and_family_rev_identifier(svc):
    # moto stores the string given to update_service: here family:rev, not an ARN.
    svc.set_service(task_definition='%s:4' % FAMILY)
    res = svc.run('ecs_service_info', lookback_seconds=0, max_stopped_tasks=0)
    assert not res.failed, res
    assert res['service']['task_definition'] == '%s:4' % FAMILY
    assert res['service']['task_definition_revision'] == 4
    assert res['rollback_candidate']['task_definition'] == svc.arns[3]
    assert res['stopped_tasks'] == []
    if res['recent_deployment_age_seconds'] > 0:
        assert res['recent_deployment'] is None


@pytest.mark.parametrize('target,missing', [({'cluster': 'no-such-cluster'}, "cluster 'no-such-cluster'"),
                                            ({'service': 'no-such-service'}, "service 'no-such-service'")])
def test_service_info_not_found_names_what(env, target, missing):
    res = env.run('ecs_service_info', **target)
    assert res.failed and res.rc != 0
    assert missing in res['msg'] and 'not found' in res['msg'], res['msg']
    assert res['error_kind'] == 'not_found' and res['reachable'] is True


# ---------------------------------------------------------------- ecs_rollback

def test_rollback_check_apply_idempotent(svc):
    before = svc.service()
    check = svc.run('ecs_rollback', check=True, **WAIT)
    assert not check.failed, check
    assert check['changed'] is True
    assert check['before'] == {'task_definition': svc.arns[4], 'desired_count': 2}
    assert check['after'] == {'task_definition': svc.arns[3], 'desired_count': 2}
    assert check['diff']['before']['task_definition'] == svc.arns[4]
    assert check['waited_for'] is None
    after_check = svc.service()
    assert after_check['taskDefinition'] == before['taskDefinition']
    assert after_check['deployments'][0]['id'] == before['deployments'][0]['id']

    applied = svc.run('ecs_rollback', **WAIT)
    assert not applied.failed, applied
    assert applied['changed'] is True
    assert applied['target']['revision'] == 3 and applied['target']['task_definition'] == svc.arns[3]
    assert _rev(svc.service()['taskDefinition']) == 3
    # the service now runs an older revision than the newest: already rolled back
    info = svc.run('ecs_service_info', max_stopped_tasks=0)
    assert info['latest_revision'] == 4 and info['runs_latest_revision'] is False
    assert applied['waited_for'] == '1 deployment on task definition %s:3, running=desired' % FAMILY
    assert applied['wait_result']['completed'] is True

    # Pinned to the same target, in both spellings: nothing to do.
    for pinned in ('%s:3' % FAMILY, svc.arns[3]):
        again = svc.run('ecs_rollback', task_definition=pinned, **WAIT)
        assert not again.failed, again
        assert again['changed'] is False, again
        assert again['wait_result']['completed'] is True
    assert _rev(svc.service()['taskDefinition']) == 3


@pytest.mark.parametrize('task_definition,expect', [
    ('%s:1' % FAMILY, 'INACTIVE'),
    ('%s:1' % OTHER_FAMILY, 'family'),
    ('%s:99' % FAMILY, 'does not exist'),
    ('svpms api 3', "task_definition must be 'family:revision'"),
    (FAMILY, "task_definition must be 'family:revision'"),
])
def test_rollback_refuses_bad_explicit_target_without_writing(svc, task_definition, expect):
    res = svc.run('ecs_rollback', task_definition=task_definition, **WAIT)
    assert res.failed, res
    assert expect in res['msg'], res['msg']
    assert svc.service()['taskDefinition'] == svc.arns[4]


def test_rollback_without_candidate_fails_clearly(svc):
    # On revision 2, the only older one (1) is deregistered.
    svc.set_service(task_definition=svc.arns[2])
    res = svc.run('ecs_rollback', **WAIT)
    assert res.failed
    assert 'no ACTIVE revision older than %s:2 to roll back to; pass task_definition' % FAMILY in res['msg']
    assert svc.service()['taskDefinition'] == svc.arns[2]


# ------------------------------------------------------------------- ecs_scale

def test_scale_check_apply_idempotent(svc):
    check = svc.run('ecs_scale', check=True, desired_count=3, max_count=10, **WAIT)
    assert not check.failed, check
    assert check['changed'] is True
    assert check['after']['desired_count'] == 3 and check['before']['desired_count'] == 2
    assert svc.service()['desiredCount'] == 2

    applied = svc.run('ecs_scale', desired_count=3, max_count=10, **WAIT)
    assert not applied.failed, applied
    assert applied['changed'] is True and applied['capped'] is False
    assert applied['wait_result']['completed'] is True
    assert 'desired=3' in applied['waited_for']
    live = svc.service()
    assert (live['desiredCount'], live['runningCount']) == (3, 3)

    again = svc.run('ecs_scale', desired_count=3, max_count=10, **WAIT)
    assert not again.failed and again['changed'] is False, again


def test_scale_is_capped_by_max_count(svc):
    res = svc.run('ecs_scale', increase_by=20, max_count=5, **WAIT)
    assert not res.failed, res
    assert res['changed'] is True and res['capped'] is True
    assert (res['requested_count'], res['target_count']) == (22, 5)
    assert 'above max_count 5; capped at 5' in str(res.get('warnings')), res.get('warnings')
    assert svc.service()['desiredCount'] == 5

    again = svc.run('ecs_scale', increase_by=20, max_count=5, **WAIT)
    assert not again.failed and again['changed'] is False and again['capped'] is True


def test_scale_down_is_floored_at_min_count(svc):
    res = svc.run('ecs_scale', increase_by=-5, max_count=5, min_count=1, **WAIT)
    assert not res.failed, res
    assert res['floored'] is True and res['target_count'] == 1
    assert svc.service()['desiredCount'] == 1


# ---------------------------------------------------------------- ecs_redeploy

def test_redeploy_check_then_apply(svc):
    old_id = svc.service()['deployments'][0]['id']
    check = svc.run('ecs_redeploy', check=True, **WAIT)
    assert not check.failed, check
    assert check['changed'] is True and check['after'] is None
    assert check['before']['primary_deployment_id'] == old_id
    assert 'would force a new deployment' in check['msg']
    assert svc.service()['deployments'][0]['id'] == old_id

    applied = svc.run('ecs_redeploy', **WAIT)
    assert not applied.failed, applied
    assert applied['changed'] is True
    new_id = applied['after']['primary_deployment_id']
    assert new_id != old_id and applied['before']['primary_deployment_id'] == old_id
    assert svc.service()['deployments'][0]['id'] == new_id
    assert new_id in applied['waited_for'] and applied['wait_result']['completed'] is True


# ------------------------------------------------------ argument errors, network

@pytest.mark.parametrize('module,args,names', [
    ('ecs_scale', dict(desired_count=3, increase_by=1, max_count=5), ['desired_count', 'increase_by']),
    ('ecs_scale', dict(max_count=5), ['desired_count', 'increase_by']),
    ('ecs_scale', dict(desired_count=3, max_count=0), ['max_count']),
    ('ecs_scale', dict(desired_count=-1, max_count=5), ['desired_count']),
    ('ecs_scale', dict(desired_count=1, max_count=5, min_count=6), ['min_count', 'max_count']),
    ('ecs_rollback', dict(wait_timeout=-5), ['wait_timeout']),
    ('ecs_redeploy', dict(wait_interval=0), ['wait_interval']),
    ('ecs_service_info', dict(max_stopped_tasks=500), ['max_stopped_tasks']),
    ('ecs_service_info', dict(cluster=''), ['cluster']),
])
def test_bad_arguments_fail_naming_the_parameter(env, module, args, names):
    res = env.run(module, **args)
    assert res.failed and res.rc != 0
    for name in names:
        assert name in res['msg'], res['msg']


def _closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('module,args', [
    ('ecs_service_info', {}),
    ('ecs_rollback', {}),
    ('ecs_scale', dict(desired_count=3, max_count=5)),
    ('ecs_redeploy', {}),
])
def test_unreachable_endpoint_is_reported_not_raised(env, module, args):
    endpoint = 'http://127.0.0.1:%d' % _closed_port()
    res = env.run(module, endpoint_url=endpoint, max_attempts=1, connect_timeout=1, **args)
    assert res.failed
    assert res['reachable'] is False and res['error_kind'] == 'unreachable'
    assert endpoint in res['msg'], res['msg']
    assert not res.get('changed')
    assert_no_traceback(res)


def test_service_info_through_ansible_adhoc(svc):
    args = dict(svc.args(max_stopped_tasks=0))
    res = run_adhoc('svpms.incident_response.ecs_service_info', args)
    assert res.rc == 0, res.stdout + res.stderr
    assert res['changed'] is False
    assert res['rollback_candidate']['task_definition'] == svc.arns[3]
    for secret in SECRETS:
        assert secret not in res.stdout and secret not in res.stderr
