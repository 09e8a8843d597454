#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: ecs_scale
short_description: Set the desired task count of an ECS service, within a safety cap
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Changes an Amazon ECS service's desired task count (C(aws ecs update-service --desired-count N)),
    either to an absolute O(desired_count) or by a relative O(increase_by), and by default
    waits until the service runs that many tasks.
  - The result is kept between O(min_count) and the required safety cap O(max_count). A target
    above the cap is lowered to the cap (RV(capped) is true, with a warning); a target below
    O(min_count) is raised to it (RV(floored) is true, with a warning).
  - Capping never moves the count against the request. When the service already runs more than
    O(max_count) and more was asked for, or fewer than O(min_count) and fewer was asked for, the
    count is left alone.
  - Idempotent with O(desired_count). O(increase_by) is relative and adds on every run, until O(max_count) stops it.
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
  desired_count:
    description:
      - Absolute number of tasks to run, 0 or more.
      - Exactly one of O(desired_count) and O(increase_by) is required.
    type: int
  increase_by:
    description:
      - Tasks to add to the current desired count; negative to remove tasks. The result is
        never below O(min_count) (0 by default).
      - Exactly one of O(desired_count) and O(increase_by) is required.
    type: int
  max_count:
    description:
      - Safety cap, 1 or more; the desired count is never set above it.
    type: int
    required: true
  min_count:
    description:
      - Floor, 0 or more and not above O(max_count); the desired count is never set below it.
    type: int
    default: 0
  wait:
    description:
      - Wait until the service runs the new count, see O(wait_timeout).
      - Complete means desired tasks equal the target, running tasks equal desired tasks, exactly one
        deployment on the service's task definition, and a rollout state of COMPLETED (or none reported).
      - Also applies when the count was already right (nothing written).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait before failing. Must be greater than 0.
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
    details: Reads the service, writes nothing and does not wait.
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
  - If Application Auto Scaling manages the service it may change the desired count again;
    the wait then times out and says what it last saw.
  - "Required IAM actions: C(ecs:DescribeServices), C(ecs:UpdateService)."
seealso:
  - module: svpms.incident_response.ecs_service_info
'''

EXAMPLES = r'''
- name: Run 10 API tasks, never more than 20
  svpms.incident_response.ecs_scale:
    cluster: svpms-prod-cluster
    service: svpms-api
    desired_count: 10
    max_count: 20

- name: Add 4 tasks, capped at 20, and wait up to 5 minutes
  svpms.incident_response.ecs_scale:
    cluster: svpms-prod-cluster
    service: svpms-api
    increase_by: 4
    max_count: 20
    wait_timeout: 300
  register: scaled

- name: Say so when the cap applied
  ansible.builtin.debug:
    msg: "asked for {{ scaled.requested_count }}, capped at {{ scaled.target_count }}"
  when: scaled.capped
'''

RETURN = r'''
msg:
  description: What was done, in one line.
  returned: always
  type: str
  sample: scaled service svpms-api from 2 to 5 tasks
before:
  description: The service before scaling.
  returned: success
  type: dict
  contains:
    task_definition:
      description: Task definition the service runs, as returned by the API.
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
    - The service after scaling (same keys as RV(before)).
    - In check mode, the predicted state.
  returned: success
  type: dict
  sample:
    task_definition: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
    desired_count: 5
requested_count:
  description: The count asked for (O(desired_count), or the current count plus O(increase_by)), before the limits.
  returned: success
  type: int
  sample: 30
target_count:
  description: The count set, after O(min_count) and O(max_count) applied.
  returned: success
  type: int
  sample: 20
capped:
  description: The requested count was above O(max_count) and was lowered.
  returned: success
  type: bool
  sample: true
floored:
  description: The requested count was below O(min_count) and was raised.
  returned: success
  type: bool
  sample: false
waited_for:
  description: What the module waited for; null when it did not wait (O(wait=false) or check mode).
  returned: success
  type: str
  sample: 1 deployment on task definition svpms-api:4, desired=5, running=desired
wait_result:
  description: How the wait ended; null when it did not wait.
  returned: success
  type: dict
  contains:
    completed:
      description: The service reached the count.
      type: bool
      returned: success
      sample: true
    timed_out:
      description: O(wait_timeout) passed first.
      type: bool
      returned: success
      sample: false
    rollout_failed:
      description: ECS reported the deployment as FAILED.
      type: bool
      returned: success
      sample: false
    elapsed_seconds:
      description: Seconds spent waiting.
      type: float
      returned: success
      sample: 31.0
    polls:
      description: How many times the service was read.
      type: int
      returned: success
      sample: 4
    last_seen:
      description: The service as last observed.
      type: str
      returned: success
      sample: task definition svpms-api:4, 1 deployment [PRIMARY COMPLETED svpms-api:4 running 5/5], running=5, desired=5, pending=0
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
      task_definition: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
      desired_count: 5
'''

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSError, AWSModule
from ansible_collections.svpms.incident_response.plugins.module_utils.ecs import (
    RolloutTarget,
    check_names,
    check_wait_params,
    describe_service,
    ecs_argument_spec,
    fail_aws_keeping_truth,
    require_active,
    state,
    wait_argument_spec,
    wait_into_result,
)


def check_counts(module):
    params = module.params
    if params['desired_count'] is not None and params['desired_count'] < 0:
        module.fail_json(msg='desired_count must be 0 or more, got %s' % params['desired_count'])
    if params['max_count'] < 1:
        module.fail_json(msg='max_count must be 1 or more (it is the safety cap on the desired count), got %s'
                             % params['max_count'])
    if params['min_count'] < 0:
        module.fail_json(msg='min_count must be 0 or more, got %s' % params['min_count'])
    if params['min_count'] > params['max_count']:
        module.fail_json(msg='min_count (%s) must not be above max_count (%s)'
                             % (params['min_count'], params['max_count']))


def plan(current, requested, min_count, max_count):
    """(target, capped, floored): requested kept within [min_count, max_count],
    never moved against the direction of the request."""
    target = min(max(requested, min_count), max_count)
    capped = requested > max_count
    floored = requested < min_count
    if requested >= current and target < current:
        target = current
    if requested <= current and target > current:
        target = current
    return target, capped, floored


def main():
    argument_spec = ecs_argument_spec()
    argument_spec.update(
        desired_count=dict(type='int'),
        increase_by=dict(type='int'),
        max_count=dict(type='int', required=True),
        min_count=dict(type='int', default=0),
    )
    argument_spec.update(wait_argument_spec())
    module = AWSModule(argument_spec=argument_spec, supports_check_mode=True,
                       mutually_exclusive=[('desired_count', 'increase_by')],
                       required_one_of=[('desired_count', 'increase_by')])
    check_names(module)
    check_counts(module)
    check_wait_params(module)
    params = module.params
    cluster, service = params['cluster'], params['service']

    client = module.client('ecs')
    result = dict(changed=False)
    try:
        raw = describe_service(client, cluster, service)
        require_active(raw, cluster)
        name = raw.get('serviceName')
        current = raw.get('desiredCount') or 0
        if params['desired_count'] is not None:
            requested = params['desired_count']
        else:
            requested = current + params['increase_by']
        target, capped, floored = plan(current, requested, params['min_count'], params['max_count'])
        if capped:
            module.module.warn('requested %d tasks for service %s is above max_count %d; %s'
                               % (requested, name, params['max_count'],
                                  'capped at %d' % target if target == params['max_count']
                                  else 'left at the current %d' % target))
        if floored:
            module.module.warn('requested %d tasks for service %s is below min_count %d; %s'
                               % (requested, name, params['min_count'],
                                  'raised to %d' % target if target == params['min_count']
                                  else 'left at the current %d' % target))

        before = state(raw)
        changed = target != current
        after = dict(before, desired_count=target)
        result.update(before=before, after=after, requested_count=requested,
                      target_count=target, capped=capped, floored=floored,
                      diff=dict(before=before, after=after), waited_for=None, wait_result=None)
        if changed:
            result['msg'] = 'scaled service %s from %d to %d tasks' % (name, current, target)
        else:
            result['msg'] = 'service %s already wants %d tasks; nothing to do' % (name, target)

        if module.check_mode:
            result['changed'] = changed
            if changed:
                result['msg'] = 'would scale service %s from %d to %d tasks' % (name, current, target)
            module.exit_json(**result)

        if changed:
            resp = client.call('update_service', cluster=cluster, service=service, desiredCount=target)
            after = state(resp['service'])
            result.update(changed=True, after=after, diff=dict(before=before, after=after))

        wait_into_result(module, client, cluster, service,
                         RolloutTarget(after['task_definition'], desired_count=target), result)
    except AWSError as err:
        fail_aws_keeping_truth(module, err, result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
