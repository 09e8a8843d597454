#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: ecs_rollback
short_description: Roll an ECS service back to an earlier task definition revision
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Points an Amazon ECS service at an earlier ACTIVE revision of its task-definition
    family (C(aws ecs update-service --task-definition FAMILY:REVISION)) and, by default,
    waits until that rollout has completed.
  - With O(task_definition) omitted, the target is the rollback candidate that
    M(svpms.incident_response.ecs_service_info) reports, computed by the same code.
  - Fails before writing anything when there is no candidate, or when an explicit
    O(task_definition) does not exist, is deregistered (INACTIVE) or belongs to another family.
  - Idempotent for a given target; if the service already runs the target revision
    nothing is written and RV(ignore:changed) is false.
options:
  cluster:
    description:
      - Name or ARN of the ECS cluster.
    type: str
    required: true
  service:
    description:
      - Name or ARN of the ECS service.
    type: str
    required: true
  task_definition:
    description:
      - The revision to roll back to, as C(family:revision) or a task-definition ARN.
      - Must be an ACTIVE revision of the family the service runs now.
      - When omitted, the rollback candidate is used. While a rollout is in progress that
        is the task definition of the ACTIVE (previous) deployment; otherwise the newest
        ACTIVE revision older than the current one.
      - When omitted the target is recomputed on every run, so a second run rolls back one
        revision further. Pin it (for example to RV(svpms.incident_response.ecs_service_info#module:rollback_candidate.task_definition)
        registered earlier) when the task may run more than once.
    type: str
  wait:
    description:
      - Wait until the rollout has completed, see O(wait_timeout).
      - Complete means the service runs the target task definition with exactly one deployment,
        running tasks equal to desired tasks, and a rollout state of COMPLETED (or none reported).
      - Also applies when the service already ran the target (nothing written), so a re-run
        waits for a rollout that an earlier run started.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the rollout to complete before failing. Must be greater than 0.
    type: int
    default: 600
  wait_interval:
    description:
      - Seconds between two polls of the service while waiting. Must be greater than 0.
    type: int
    default: 10
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return changed status prediction without modifying target.
    details: Reads the service and the target task definition, writes nothing and does not wait.
  diff_mode:
    support: full
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  action_group:
    support: full
    description: Use C(group/svpms.incident_response.aws) or C(group/svpms.incident_response.ecs) in C(module_defaults) to set defaults for this module.
    membership:
      - svpms.incident_response.aws
      - svpms.incident_response.ecs
  platform:
    support: full
    description: Target OS/families that can be operated against.
    platforms: aws
notes:
  - A rollout that ends in the FAILED state (for example the deployment circuit breaker tripped)
    or does not complete within O(wait_timeout) fails the task with a message saying what was
    awaited and what was last seen; the update itself has then already been made (RV(ignore:changed) is true).
  - "Required IAM actions: C(ecs:DescribeServices), C(ecs:ListTaskDefinitions), C(ecs:DescribeTaskDefinition),
    C(ecs:UpdateService), and C(iam:PassRole) for the task definition's roles."
seealso:
  - module: svpms.incident_response.ecs_service_info
  - module: svpms.incident_response.ecs_redeploy
'''

EXAMPLES = r'''
- name: Roll the API back to the previous ACTIVE revision and wait for it
  svpms.incident_response.ecs_rollback:
    cluster: svpms-prod-cluster
    service: svpms-api
    region: eu-west-1

- name: Find the rollback target once
  svpms.incident_response.ecs_service_info:
    cluster: svpms-prod-cluster
    service: svpms-api
  register: api_service

- name: Roll back to that pinned target (idempotent on re-runs)
  svpms.incident_response.ecs_rollback:
    cluster: svpms-prod-cluster
    service: svpms-api
    task_definition: "{{ api_service.rollback_candidate.task_definition }}"
    wait_timeout: 900
  when: api_service.rollback_candidate is not none

- name: Roll back to an explicit revision without waiting
  svpms.incident_response.ecs_rollback:
    cluster: svpms-prod-cluster
    service: svpms-api
    task_definition: svpms-api:41
    wait: false
'''

RETURN = r'''
msg:
  description: What was done, in one line.
  returned: always
  type: str
  sample: rolled back service svpms-api from svpms-api:4 to svpms-api:3
before:
  description: The service before the rollback.
  returned: success
  type: dict
  contains:
    task_definition:
      description: Task definition the service ran, as returned by the API.
      type: str
      returned: success
      sample: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
    desired_count:
      description: Desired task count.
      type: int
      returned: success
      sample: 2
after:
  description:
    - The service after the rollback (same keys as RV(before)).
    - In check mode, the predicted state.
  returned: success
  type: dict
  sample:
    task_definition: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:3
    desired_count: 2
target:
  description: The revision rolled back to and why it was chosen.
  returned: success
  type: dict
  contains:
    task_definition:
      description: ARN of the target task definition.
      type: str
      returned: success
      sample: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:3
    family:
      description: Family of the target.
      type: str
      returned: success
      sample: svpms-api
    revision:
      description: Revision of the target.
      type: int
      returned: success
      sample: 3
    reason:
      description: Why this target (given as O(task_definition), or the candidate rule that chose it).
      type: str
      returned: success
      sample: newest ACTIVE revision of family svpms-api older than the current svpms-api:4
waited_for:
  description: What the module waited for; null when it did not wait (O(wait=false) or check mode).
  returned: success
  type: str
  sample: 1 deployment on task definition svpms-api:3, running=desired
wait_result:
  description: How the wait ended; null when it did not wait.
  returned: success
  type: dict
  contains:
    completed:
      description: The rollout completed.
      type: bool
      returned: success
      sample: true
    timed_out:
      description: O(wait_timeout) passed first.
      type: bool
      returned: success
      sample: false
    rollout_failed:
      description: ECS reported the rollout as FAILED.
      type: bool
      returned: success
      sample: false
    elapsed_seconds:
      description: Seconds spent waiting.
      type: float
      returned: success
      sample: 42.3
    polls:
      description: How many times the service was read.
      type: int
      returned: success
      sample: 5
    last_seen:
      description: The service as last observed.
      type: str
      returned: success
      sample: task definition svpms-api:3, 1 deployment [PRIMARY COMPLETED svpms-api:3 running 2/2], running=2, desired=2, pending=0
    msg:
      description: Why the wait stopped without completing; null when it completed.
      type: str
      returned: success
      sample: null
diff:
  description: RV(before) and RV(after), for C(--diff).
  returned: success
  type: dict
  sample:
    before:
      task_definition: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
      desired_count: 2
    after:
      task_definition: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:3
      desired_count: 2
'''

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSError, AWSModule
from ansible_collections.svpms.incident_response.plugins.module_utils.ecs import (
    RolloutTarget,
    check_names,
    check_wait_params,
    describe_service,
    describe_task_definition,
    ecs_argument_spec,
    fail_aws_keeping_truth,
    parse_target,
    require_active,
    rollback_candidate,
    state,
    td_label,
    wait_argument_spec,
    wait_into_result,
)
from ansible_collections.svpms.incident_response.plugins.module_utils.rollback import (
    same_task_definition,
    try_parse_task_definition,
)


def resolve_explicit_target(module, client, raw, identifier):
    """Describe and vet a user-given target: it must exist, be ACTIVE and in the service's family."""
    td = describe_task_definition(client, identifier)
    label = '%s:%s' % (td.get('family'), td.get('revision'))
    if td.get('status') != 'ACTIVE':
        module.fail_json(msg='task_definition %s is %s (deregistered); only an ACTIVE revision can be rolled '
                             'back to. Nothing was changed.' % (label, td.get('status')))
    current = try_parse_task_definition(raw.get('taskDefinition'))
    if current is not None and td.get('family') != current.family:
        module.fail_json(msg='task_definition %s is of family %s but service %s runs family %s (%s); a rollback '
                             'stays within the family. Nothing was changed.'
                             % (label, td.get('family'), raw.get('serviceName'), current.family, current))
    return dict(task_definition=td['taskDefinitionArn'], family=td['family'], revision=td['revision'],
                reason='given as task_definition')


def main():
    argument_spec = ecs_argument_spec()
    argument_spec.update(task_definition=dict(type='str'))
    argument_spec.update(wait_argument_spec())
    module = AWSModule(argument_spec=argument_spec, supports_check_mode=True)
    check_names(module)
    check_wait_params(module)
    params = module.params
    cluster, service = params['cluster'], params['service']

    explicit = params['task_definition']
    if explicit is not None:
        try:
            parse_target(explicit)
        except ValueError:
            module.fail_json(msg="task_definition must be 'family:revision' (for example svpms-api:3) or a "
                                 'task-definition ARN (arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION), '
                                 'got %r' % explicit)

    client = module.client('ecs')
    result = dict(changed=False)
    try:
        raw = describe_service(client, cluster, service)
        require_active(raw, cluster)
        current_label = td_label(raw.get('taskDefinition'))
        if explicit is not None:
            target = resolve_explicit_target(module, client, raw, explicit)
        else:
            target = rollback_candidate(client, raw)
            if target is None:
                module.fail_json(msg='no ACTIVE revision older than %s to roll back to; pass task_definition. '
                                     'Nothing was changed.' % current_label)
        target_label = '%s:%s' % (target['family'], target['revision'])

        before = state(raw)
        changed = not same_task_definition(raw.get('taskDefinition'), target['task_definition'])
        after = dict(before, task_definition=target['task_definition']) if changed else dict(before)
        result.update(before=before, after=after, target=target,
                      diff=dict(before=before, after=after), waited_for=None, wait_result=None)

        if module.check_mode:
            result['changed'] = changed
            result['msg'] = ('would roll back service %s from %s to %s' % (raw.get('serviceName'), current_label,
                                                                           target_label)
                             if changed else 'service %s already runs %s' % (raw.get('serviceName'), target_label))
            module.exit_json(**result)

        if changed:
            # A new task definition always starts a new deployment on AWS;
            # forceNewDeployment makes that explicit (and makes moto renew the
            # deployment's createdAt, so a re-run sees the rollback as the
            # most recent deployment and does not roll back further).
            resp = client.call('update_service', cluster=cluster, service=service,
                               taskDefinition=target['task_definition'], forceNewDeployment=True)
            after = state(resp['service'])
            result.update(changed=True, after=after, diff=dict(before=before, after=after),
                          msg='rolled back service %s from %s to %s'
                          % (raw.get('serviceName'), current_label, target_label))
        else:
            result['msg'] = 'service %s already runs %s; nothing to do' % (raw.get('serviceName'), target_label)

        wait_into_result(module, client, cluster, service, RolloutTarget(target['task_definition']), result)
    except AWSError as err:
        fail_aws_keeping_truth(module, err, result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
