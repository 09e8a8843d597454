#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: ecs_redeploy
short_description: Restart an ECS service's tasks by forcing a new deployment
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Forces a new deployment of an Amazon ECS service on its current task definition
    (C(aws ecs update-service --force-new-deployment)), so ECS replaces every running task,
    and by default waits until the new deployment has completed.
  - B(Not idempotent.) Every run starts another deployment and restarts the tasks again, so
    RV(ignore:changed) is always true. Guard it with a C(when:) condition in playbooks that may re-run.
  - In check mode nothing is written; the module reports what it would restart.
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
  wait:
    description:
      - Wait until the new deployment has completed, see O(wait_timeout).
      - Complete means the new deployment is the only one, on the service's task definition,
        with running tasks equal to desired tasks and a rollout state of COMPLETED (or none reported).
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
    details: Reads the service, writes nothing, does not wait, and reports changed=true with what would be restarted.
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
  - A deployment that ends FAILED, or does not complete within O(wait_timeout), fails the task with a
    message saying what was awaited and what was last seen; the new deployment has then already started.
  - "Required IAM actions: C(ecs:DescribeServices), C(ecs:UpdateService)."
seealso:
  - module: svpms.incident_response.ecs_rollback
'''

EXAMPLES = r'''
- name: Restart the API tasks and wait for the new deployment
  svpms.incident_response.ecs_redeploy:
    cluster: svpms-prod-cluster
    service: svpms-api
    wait_timeout: 900

- name: Restart without waiting, only when triage asked for it
  svpms.incident_response.ecs_redeploy:
    cluster: svpms-prod-cluster
    service: svpms-api
    wait: false
  when: restart_api | default(false) | bool
'''

RETURN = r'''
msg:
  description: What was done (or would be, in check mode), in one line.
  returned: always
  type: str
  sample: forced a new deployment ecs-svc/2222222222222222222 of service svpms-api on svpms-api:4
before:
  description: The service before the new deployment.
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
    primary_deployment_id:
      description: Id of the PRIMARY deployment.
      type: str
      returned: success
      sample: ecs-svc/1111111111111111111
    deployment_ids:
      description: Ids of all deployments.
      type: list
      elements: str
      returned: success
      sample: [ecs-svc/1111111111111111111]
after:
  description:
    - The service after the new deployment started (same keys as RV(before)).
    - Null in check mode, since the new deployment id is only known once it exists.
  returned: success
  type: dict
  sample:
    task_definition: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
    desired_count: 2
    primary_deployment_id: ecs-svc/2222222222222222222
    deployment_ids: [ecs-svc/2222222222222222222, ecs-svc/1111111111111111111]
waited_for:
  description: What the module waited for; null when it did not wait (O(wait=false) or check mode).
  returned: success
  type: str
  sample: deployment ecs-svc/2222222222222222222 as the only deployment on task definition svpms-api:4, running=desired
wait_result:
  description: How the wait ended; null when it did not wait.
  returned: success
  type: dict
  contains:
    completed:
      description: The new deployment completed.
      type: bool
      returned: success
      sample: true
    timed_out:
      description: O(wait_timeout) passed first.
      type: bool
      returned: success
      sample: false
    rollout_failed:
      description: ECS reported the new deployment as FAILED.
      type: bool
      returned: success
      sample: false
    elapsed_seconds:
      description: Seconds spent waiting.
      type: float
      returned: success
      sample: 95.2
    polls:
      description: How many times the service was read.
      type: int
      returned: success
      sample: 10
    last_seen:
      description: The service as last observed.
      type: str
      returned: success
      sample: task definition svpms-api:4, 1 deployment [PRIMARY COMPLETED svpms-api:4 running 2/2], running=2, desired=2, pending=0
    msg:
      description: Why the wait stopped without completing; null when it completed.
      type: str
      returned: success
      sample: null
diff:
  description: The PRIMARY deployment id before and after, for C(--diff).
  returned: success
  type: dict
  sample:
    before:
      primary_deployment_id: ecs-svc/1111111111111111111
    after:
      primary_deployment_id: ecs-svc/2222222222222222222
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
    td_label,
    wait_argument_spec,
    wait_into_result,
)
from ansible_collections.svpms.incident_response.plugins.module_utils.rollback import (
    primary_deployment,
    rollout_in_progress,
)


def deployment_state(raw):
    primary = primary_deployment(raw.get('deployments'))
    return dict(task_definition=raw.get('taskDefinition'), desired_count=raw.get('desiredCount'),
                primary_deployment_id=primary.get('id') if primary else None,
                deployment_ids=[d.get('id') for d in raw.get('deployments') or []])


def main():
    argument_spec = ecs_argument_spec()
    argument_spec.update(wait_argument_spec())
    module = AWSModule(argument_spec=argument_spec, supports_check_mode=True)
    check_names(module)
    check_wait_params(module)
    params = module.params
    cluster, service = params['cluster'], params['service']

    client = module.client('ecs')
    result = dict(changed=False)
    try:
        raw = describe_service(client, cluster, service)
        require_active(raw, cluster)
        name = raw.get('serviceName')
        label = td_label(raw.get('taskDefinition'))
        before = deployment_state(raw)
        if rollout_in_progress(raw):
            module.module.warn('service %s already has a rollout in progress (deployments: %s); a new deployment '
                               'supersedes it' % (name, ', '.join(before['deployment_ids'])))
        result.update(before=before, after=None, waited_for=None, wait_result=None,
                      diff=dict(before=dict(primary_deployment_id=before['primary_deployment_id']),
                                after=dict(primary_deployment_id='(new deployment)')))

        if module.check_mode:
            result['changed'] = True
            result['msg'] = ('would force a new deployment of service %s on %s, replacing its %s running task(s) '
                             '(current deployment %s)' % (name, label, raw.get('runningCount'),
                                                          before['primary_deployment_id']))
            module.exit_json(**result)

        resp = client.call('update_service', cluster=cluster, service=service, forceNewDeployment=True)
        after = deployment_state(resp['service'])
        result.update(changed=True, after=after,
                      diff=dict(before=dict(primary_deployment_id=before['primary_deployment_id']),
                                after=dict(primary_deployment_id=after['primary_deployment_id'])),
                      msg='forced a new deployment %s of service %s on %s' % (after['primary_deployment_id'],
                                                                              name, label))

        wait_into_result(module, client, cluster, service,
                         RolloutTarget(after['task_definition'], deployment_id=after['primary_deployment_id']), result)
    except AWSError as err:
        fail_aws_keeping_truth(module, err, result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
