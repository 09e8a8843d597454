# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""ECS reads, result shaping and the bounded "wait until the rollout completes" loop.

Every API call goes through ``AWSClient.call``/``paginate`` (module_utils/aws.py)
so retries and typed errors are the shared ones. The decision logic (which
revision to roll back to, is a rollout in progress) is pure and lives in
module_utils/rollback.py; this file only feeds it API data.

Rollout-complete predicate (see ``rollout_status``), chosen to be right on real
AWS and to hold on moto, which keeps a single PRIMARY deployment that may
still name the *old* task definition and whose counts never move:

* the service's ``taskDefinition`` equals the target (by family+revision),
* exactly one deployment (when a deployment id is awaited, it is that one),
* service ``runningCount == desiredCount`` (and equals the awaited desired count),
* that deployment's ``rolloutState`` is COMPLETED, or absent (CODE_DEPLOY/EXTERNAL
  controllers and older API shapes do not report it).

A deployment whose rolloutState is FAILED ends the wait at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (
    AWSError,
    AWSNotFoundError,
)
from ansible_collections.svpms.incident_response.plugins.module_utils.rollback import (
    as_utc,
    choose_rollback_candidate,
    deployment_age_seconds,
    parse_task_definition,
    primary_deployment,
    recent_deployment,
    rollout_in_progress,
    same_task_definition,
    try_parse_task_definition,
)

DESCRIBE_TASKS_LIMIT = 100


def ecs_argument_spec():
    """cluster + service, required, for every ECS module (a fresh dict)."""
    return dict(
        cluster=dict(type='str', required=True),
        service=dict(type='str', required=True),
    )


def wait_argument_spec():
    """wait / wait_timeout / wait_interval for the mutating ECS modules."""
    return dict(
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=600),
        wait_interval=dict(type='int', default=10),
    )


def check_names(module):
    """Fail unless cluster and service are non-empty."""
    for option in ('cluster', 'service'):
        value = module.params[option]
        if not value or not value.strip():
            module.fail_json(msg='%s must be a non-empty %s name or ARN, got %r' % (option, option, value))
        module.params[option] = value.strip()


def check_wait_params(module):
    """Fail unless wait_timeout and wait_interval are positive."""
    for option in ('wait_timeout', 'wait_interval'):
        value = module.params[option]
        if value <= 0:
            module.fail_json(msg='%s must be a positive number of seconds (> 0), got %s' % (option, value))


def iso_utc(value):
    """A datetime/ISO string -> ISO-8601 UTC text with a Z suffix, or None."""
    dt = as_utc(value)
    if dt is None:
        return None
    return dt.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def short_name(identifier):
    """cluster/service name from a name or ARN (last path component)."""
    return identifier.rsplit('/', 1)[-1] if identifier else identifier


def td_label(identifier):
    """``family:revision`` for an identifier (ARN or not), else the text itself."""
    ref = try_parse_task_definition(identifier)
    return str(ref) if ref is not None else str(identifier)


def _region(client):
    try:
        return client.client.meta.region_name
    except AttributeError:
        return None


# --------------------------------------------------------------------- reads

def describe_service(client, cluster, service):
    """The raw describe_services entry; AWSNotFoundError naming the cluster or service."""
    try:
        resp = client.call('describe_services', cluster=cluster, services=[service])
    except AWSNotFoundError as err:
        if err.code == 'ClusterNotFoundException':
            region = _region(client)
            raise AWSNotFoundError(
                'ecs', 'describe_services',
                "cluster '%s' was not found%s" % (cluster, ' in region %s' % region if region else ''),
                code=err.code, hint='Check the cluster name, the region and the account')
        raise
    services = resp.get('services') or []
    if not services:
        reasons = ', '.join(sorted(set(f.get('reason') or 'unknown' for f in resp.get('failures') or [])))
        raise AWSNotFoundError(
            'ecs', 'describe_services',
            "service '%s' was not found in cluster '%s' (%s)" % (service, cluster, reasons or 'MISSING'),
            code='ServiceNotFoundException', hint='Check the service name and the cluster it runs in')
    return services[0]


def require_active(raw, cluster):
    """Raise if the service is DRAINING/INACTIVE (deleted): nothing to mutate."""
    if raw.get('status') != 'ACTIVE':
        raise AWSNotFoundError(
            'ecs', 'describe_services',
            "service '%s' in cluster '%s' is %s, not ACTIVE" % (raw.get('serviceName'), cluster, raw.get('status')),
            code='ServiceNotActiveException', hint='The service was deleted or is being deleted')


def list_family_arns(client, family, status='ACTIVE'):
    """ARNs of one family's revisions with ``status``, exact family match.

    familyPrefix is a prefix on AWS (``svpms-api`` also matches
    ``svpms-api-worker``), and moto ignores ``sort``; both are handled here.
    """
    arns, _truncated = client.paginate('list_task_definitions', 'taskDefinitionArns',
                                       familyPrefix=family, status=status, sort='DESC')
    refs = []
    for arn in arns:
        ref = try_parse_task_definition(arn)
        if ref is not None and ref.family == family and ref.revision is not None:
            refs.append((ref.revision, arn))
    return [arn for _rev, arn in sorted(refs, reverse=True)]


def describe_task_definition(client, identifier):
    """The taskDefinition dict; AWSNotFoundError when it does not exist."""
    try:
        resp = client.call('describe_task_definition', taskDefinition=identifier)
    except AWSError as err:
        if err.code == 'ClientException':
            raise AWSNotFoundError(
                'ecs', 'describe_task_definition',
                "task definition '%s' does not exist (%s)" % (identifier, err.message),
                code=err.code, hint='Check the family and revision (list them with '
                'aws ecs list-task-definitions --family-prefix FAMILY)')
        raise
    return resp['taskDefinition']


def rollback_candidate(client, raw):
    """choose_rollback_candidate on the service's live data (ACTIVE revisions only)."""
    families = set()
    current = try_parse_task_definition(raw.get('taskDefinition'))
    if current is not None:
        families.add(current.family)
    if rollout_in_progress(raw):
        for deployment in raw.get('deployments') or []:
            ref = try_parse_task_definition(deployment.get('taskDefinition'))
            if deployment.get('status') == 'ACTIVE' and ref is not None:
                families.add(ref.family)
    task_definitions = []
    for family in sorted(families):
        task_definitions.extend(dict(taskDefinitionArn=arn, status='ACTIVE')
                                for arn in list_family_arns(client, family, 'ACTIVE'))
    return choose_rollback_candidate(raw, task_definitions)


def latest_active_revision(client, raw):
    """The newest ACTIVE revision number of the service's family, or None."""
    current = try_parse_task_definition(raw.get('taskDefinition'))
    if current is None:
        return None
    arns = list_family_arns(client, current.family, 'ACTIVE')
    return try_parse_task_definition(arns[0]).revision if arns else None


def stopped_tasks(client, cluster, service, max_tasks):
    """Up to max_tasks recently stopped tasks of the service, newest first."""
    if max_tasks <= 0:
        return []
    arns, _truncated = client.paginate('list_tasks', 'taskArns', max_items=max_tasks,
                                       cluster=cluster, serviceName=short_name(service),
                                       desiredStatus='STOPPED')
    if not arns:
        return []
    resp = client.call('describe_tasks', cluster=cluster, tasks=arns[:DESCRIBE_TASKS_LIMIT])
    group = 'service:%s' % short_name(service)
    tasks = [t for t in resp.get('tasks') or [] if t.get('group') in (None, group)]
    tasks.sort(key=lambda t: as_utc(t.get('stoppedAt') or t.get('createdAt')) or as_utc(0), reverse=True)
    return [summarize_task(t) for t in tasks[:max_tasks]]


# ------------------------------------------------------------ result shaping

def summarize_service(raw):
    ref = try_parse_task_definition(raw.get('taskDefinition'))
    return dict(
        service_name=raw.get('serviceName'),
        service_arn=raw.get('serviceArn'),
        cluster_arn=raw.get('clusterArn'),
        status=raw.get('status'),
        desired_count=raw.get('desiredCount'),
        running_count=raw.get('runningCount'),
        pending_count=raw.get('pendingCount'),
        task_definition=raw.get('taskDefinition'),
        task_definition_family=ref.family if ref else None,
        task_definition_revision=ref.revision if ref else None,
    )


def summarize_deployment(d):
    if d is None:
        return None
    return dict(
        id=d.get('id'),
        status=d.get('status'),
        task_definition=d.get('taskDefinition'),
        rollout_state=d.get('rolloutState'),
        rollout_state_reason=d.get('rolloutStateReason'),
        desired_count=d.get('desiredCount'),
        running_count=d.get('runningCount'),
        pending_count=d.get('pendingCount'),
        failed_tasks=d.get('failedTasks'),
        created_at=iso_utc(d.get('createdAt')),
        updated_at=iso_utc(d.get('updatedAt')),
    )


def summarize_task(t):
    return dict(
        task_arn=t.get('taskArn'),
        task_definition=t.get('taskDefinitionArn'),
        last_status=t.get('lastStatus'),
        stopped_reason=t.get('stoppedReason'),
        stop_code=t.get('stopCode'),
        stopped_at=iso_utc(t.get('stoppedAt')),
        containers=[dict(name=c.get('name'), last_status=c.get('lastStatus'),
                         exit_code=c.get('exitCode'), reason=c.get('reason'))
                    for c in t.get('containers') or []],
    )


def service_facts(raw, now, lookback_seconds):
    """The read-only picture ecs_service_info returns (without candidate/tasks)."""
    # PRIMARY first, then the newest first.
    deployments = sorted(raw.get('deployments') or [],
                         key=lambda d: (d.get('status') != 'PRIMARY',
                                        -(as_utc(d.get('createdAt')) or as_utc(0)).timestamp()))
    recent = recent_deployment(deployments, now, lookback_seconds)
    return dict(
        service=summarize_service(raw),
        deployments=[summarize_deployment(d) for d in deployments],
        rollout_in_progress=rollout_in_progress(raw),
        recent_deployment=summarize_deployment(recent),
        recent_deployment_age_seconds=deployment_age_seconds(primary_deployment(deployments), now),
    )


def state(raw):
    """before/after shape of the rollback and scale modules."""
    return dict(task_definition=raw.get('taskDefinition'), desired_count=raw.get('desiredCount'))


# ------------------------------------------------------------------- waiting

class RolloutTarget(object):
    """What "rollout complete" means for one mutation."""

    def __init__(self, task_definition, desired_count=None, deployment_id=None):
        self.task_definition = task_definition
        self.desired_count = desired_count
        self.deployment_id = deployment_id

    def describe(self):
        if self.deployment_id:
            head = 'deployment %s as the only deployment' % self.deployment_id
        else:
            head = '1 deployment'
        parts = ['%s on task definition %s' % (head, td_label(self.task_definition))]
        if self.desired_count is not None:
            parts.append('desired=%d' % self.desired_count)
        parts.append('running=desired')
        return ', '.join(parts)


def describe_observed(raw):
    """One line on what the service looked like, for timeouts and wait_result."""
    deps = raw.get('deployments') or []
    dep_text = '; '.join('%s %s %s running %s/%s' % (
        d.get('status'), d.get('rolloutState') or '-', td_label(d.get('taskDefinition')),
        d.get('runningCount'), d.get('desiredCount')) for d in deps)
    return 'task definition %s, %d deployment%s [%s], running=%s, desired=%s, pending=%s' % (
        td_label(raw.get('taskDefinition')), len(deps), '' if len(deps) == 1 else 's', dep_text,
        raw.get('runningCount'), raw.get('desiredCount'), raw.get('pendingCount'))


def rollout_status(raw, target):
    """(complete, failure text or None) for one describe_services entry."""
    deployments = raw.get('deployments') or []
    for d in deployments:
        if d.get('rolloutState') == 'FAILED':
            ours = (d.get('id') == target.deployment_id if target.deployment_id
                    else same_task_definition(d.get('taskDefinition'), target.task_definition)
                    or d.get('status') == 'PRIMARY')
            if ours:
                return False, 'deployment %s on %s FAILED: %s' % (
                    d.get('id'), td_label(d.get('taskDefinition')), d.get('rolloutStateReason') or 'no reason given')
    if not same_task_definition(raw.get('taskDefinition'), target.task_definition):
        return False, None
    if len(deployments) != 1:
        return False, None
    only = deployments[0]
    if target.deployment_id and only.get('id') != target.deployment_id:
        return False, None
    if only.get('rolloutState') not in (None, 'COMPLETED'):
        return False, None
    desired = raw.get('desiredCount')
    if target.desired_count is not None and desired != target.desired_count:
        return False, None
    return raw.get('runningCount') == desired, None


def wait_for_rollout(client, cluster, service, target, timeout, interval,
                     sleep=time.sleep, clock=time.monotonic):
    """Poll describe_services until ``target`` is reached, it FAILED, or ``timeout`` s pass.

    Returns a dict: waited_for (text), completed, timed_out, rollout_failed,
    elapsed_seconds, polls, last_seen (text), msg (why it stopped; set when
    not completed), service (the last raw describe_services entry).
    """
    waited_for = target.describe()
    start = clock()
    polls = 0
    while True:
        raw = describe_service(client, cluster, service)
        polls += 1
        done, failure = rollout_status(raw, target)
        elapsed = clock() - start
        result = dict(waited_for=waited_for, completed=done, timed_out=False, rollout_failed=False,
                      elapsed_seconds=round(elapsed, 1), polls=polls, last_seen=describe_observed(raw),
                      msg=None, service=raw)
        if done:
            return result
        if failure:
            result.update(rollout_failed=True,
                          msg='rollout failed while waiting for service %s to reach: %s (%s; last seen: %s)'
                          % (service, waited_for, failure, result['last_seen']))
            return result
        if elapsed >= timeout:
            result.update(timed_out=True,
                          msg='timed out after %s s waiting for service %s to reach: %s (last seen: %s)'
                          % (timeout, service, waited_for, result['last_seen']))
            return result
        sleep(max(0.0, min(interval, timeout - elapsed)))


def public_wait_result(result):
    """wait_result as returned to the user (without the raw service)."""
    if result is None:
        return None
    return dict((k, v) for k, v in result.items() if k not in ('service', 'waited_for'))


def wait_into_result(module, client, cluster, service, target, result):
    """When the module's ``wait`` is on, wait (bounded) for the rollout to reach
    ``target``, put what it waited for in ``result``, and fail the module with the
    wait's message when it did not complete."""
    params = module.params
    if not params['wait']:
        return
    waited = wait_for_rollout(client, cluster, service, target, params['wait_timeout'], params['wait_interval'])
    result.update(waited_for=waited['waited_for'], wait_result=public_wait_result(waited))
    if not waited['completed']:
        result['msg'] = waited['msg']
        module.fail_json(**result)


def fail_aws_keeping_truth(module, err, result):
    """Fail on an AWS error; when nothing was written, do not present the
    planned state (after, diff) as the outcome."""
    result.pop('msg', None)
    if not result.get('changed'):
        result.pop('after', None)
        result.pop('diff', None)
    module.fail_aws(err, **result)


def parse_target(identifier):
    """Validate a user-supplied ``task_definition``: family:revision or ARN."""
    ref = parse_task_definition(identifier)
    if ref.revision is None:
        raise ValueError('%r has no revision' % (identifier,))
    return ref
