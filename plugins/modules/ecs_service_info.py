#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: ecs_service_info
short_description: Describe an ECS service for incident triage, with its rollback candidate
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Reads one Amazon ECS service and returns what an on-call engineer needs first
    during an incident, with snake_case keys and ISO-8601 UTC timestamps.
  - The service's counts and task definition, its deployments, whether a rollout
    is in progress, whether the PRIMARY deployment is recent, the task definition a
    rollback would go to, and the most recently stopped tasks with their exit codes.
  - The rollback candidate is chosen by the same code M(svpms.incident_response.ecs_rollback)
    uses when its O(svpms.incident_response.ecs_rollback#module:task_definition) is omitted.
  - Never changes anything.
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
  lookback_seconds:
    description:
      - A PRIMARY deployment created at most this many seconds ago is returned as
        RV(recent_deployment). Must be 0 or more.
    type: int
    default: 3600
  max_stopped_tasks:
    description:
      - How many recently stopped tasks of the service to return in RV(stopped_tasks),
        from 0 (skip the lookup) to 100.
    type: int
    default: 10
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return changed status prediction without modifying target.
    details: This module only reads; it behaves the same in check mode.
  diff_mode:
    support: N/A
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    details: This module does not change anything.
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
  - Rollback candidate rules, in order. While a rollout is in progress (more than one
    deployment, or a PRIMARY deployment whose rolloutState is IN_PROGRESS), the task
    definition of the ACTIVE (previous) deployment. Otherwise the newest ACTIVE revision of
    the service's task-definition family whose revision is lower than the current one.
    A deregistered (INACTIVE) revision and the current revision are never chosen.
  - Task definitions are compared by family and revision, so C(svpms-api:3) and its ARN are the same.
  - "Required IAM actions: C(ecs:DescribeServices), C(ecs:ListTaskDefinitions), C(ecs:ListTasks), C(ecs:DescribeTasks)."
'''

EXAMPLES = r'''
- name: Describe the API service and find what a rollback would go to
  svpms.incident_response.ecs_service_info:
    cluster: svpms-prod-cluster
    service: svpms-api
    region: eu-west-1
  register: api_service

- name: Show the rollback candidate and whether a deployment happened in the last hour
  ansible.builtin.debug:
    msg: >-
      recent deployment: {{ api_service.recent_deployment is not none }},
      rollback to: {{ api_service.rollback_candidate.task_definition | default('nothing') }}

- name: Look back 30 minutes and skip the stopped-task lookup
  svpms.incident_response.ecs_service_info:
    cluster: svpms-prod-cluster
    service: svpms-api
    lookback_seconds: 1800
    max_stopped_tasks: 0
'''

RETURN = r'''
service:
  description: The service's current state.
  returned: success
  type: dict
  contains:
    service_name:
      description: Name of the service.
      type: str
      returned: success
      sample: svpms-api
    service_arn:
      description: ARN of the service.
      type: str
      returned: success
      sample: arn:aws:ecs:eu-west-1:123456789012:service/svpms-prod-cluster/svpms-api
    cluster_arn:
      description: ARN of the cluster.
      type: str
      returned: success
      sample: arn:aws:ecs:eu-west-1:123456789012:cluster/svpms-prod-cluster
    status:
      description: Service status (ACTIVE, DRAINING or INACTIVE).
      type: str
      returned: success
      sample: ACTIVE
    desired_count:
      description: Tasks the service wants running.
      type: int
      returned: success
      sample: 2
    running_count:
      description: Tasks in the RUNNING state.
      type: int
      returned: success
      sample: 2
    pending_count:
      description: Tasks in the PENDING state.
      type: int
      returned: success
      sample: 0
    task_definition:
      description: The service's task definition, as the API returns it (an ARN on AWS).
      type: str
      returned: success
      sample: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
    task_definition_family:
      description: Family of RV(service.task_definition).
      type: str
      returned: success
      sample: svpms-api
    task_definition_revision:
      description: Revision of RV(service.task_definition).
      type: int
      returned: success
      sample: 4
deployments:
  description: The service's deployments, PRIMARY first, then newest first.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Deployment id.
      type: str
      returned: success
      sample: ecs-svc/1234567890123456789
    status:
      description: PRIMARY (newest), ACTIVE (previous, still running tasks) or INACTIVE.
      type: str
      returned: success
      sample: PRIMARY
    task_definition:
      description: Task definition of this deployment, as returned.
      type: str
      returned: success
      sample: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
    rollout_state:
      description: COMPLETED, IN_PROGRESS or FAILED; null when the deployment controller does not report it.
      type: str
      returned: success
      sample: COMPLETED
    rollout_state_reason:
      description: Why the deployment is in its rollout state.
      type: str
      returned: success
      sample: ECS deployment ecs-svc/1234567890123456789 completed.
    desired_count:
      description: Tasks this deployment wants.
      type: int
      returned: success
      sample: 2
    running_count:
      description: Tasks of this deployment that are running.
      type: int
      returned: success
      sample: 2
    pending_count:
      description: Tasks of this deployment that are pending.
      type: int
      returned: success
      sample: 0
    failed_tasks:
      description: Tasks of this deployment that failed to start.
      type: int
      returned: success
      sample: 0
    created_at:
      description: When the deployment was created, ISO-8601 UTC.
      type: str
      returned: success
      sample: '2026-03-01T09:12:44.113Z'
    updated_at:
      description: When the deployment last changed, ISO-8601 UTC.
      type: str
      returned: success
      sample: '2026-03-01T09:15:02.500Z'
rollout_in_progress:
  description: True when the service has more than one deployment or its PRIMARY deployment's rolloutState is IN_PROGRESS.
  returned: success
  type: bool
  sample: false
recent_deployment:
  description:
    - The PRIMARY deployment (same keys as an item of RV(deployments)) when it was created
      within O(lookback_seconds), else null.
  returned: success
  type: dict
  sample:
    id: ecs-svc/1234567890123456789
    status: PRIMARY
    task_definition: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
    rollout_state: COMPLETED
    rollout_state_reason: ECS deployment ecs-svc/1234567890123456789 completed.
    desired_count: 2
    running_count: 2
    pending_count: 0
    failed_tasks: 0
    created_at: '2026-03-01T09:12:44.113Z'
    updated_at: '2026-03-01T09:15:02.500Z'
recent_deployment_age_seconds:
  description:
    - Age in whole seconds of the PRIMARY deployment, whether or not it is within
      O(lookback_seconds); null when there is no PRIMARY deployment.
  returned: success
  type: int
  sample: 754
latest_revision:
  description:
    - The newest ACTIVE revision of the service's task definition family, or null
      when the family has no ACTIVE revision.
  returned: success
  type: int
  sample: 4
runs_latest_revision:
  description:
    - Whether the service runs the newest ACTIVE revision of its family. False means
      it was already rolled back (or pinned) to an older revision; runbooks leave
      rolling back further to a human.
  returned: success
  type: bool
  sample: true
rollback_candidate:
  description:
    - The task definition a rollback would go to (see the notes for the rules), or null
      when there is none.
  returned: success
  type: dict
  contains:
    task_definition:
      description: The candidate's ARN (as the API lists it).
      type: str
      returned: when a candidate exists
      sample: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:3
    family:
      description: The candidate's family.
      type: str
      returned: when a candidate exists
      sample: svpms-api
    revision:
      description: The candidate's revision.
      type: int
      returned: when a candidate exists
      sample: 3
    reason:
      description: Which rule chose it.
      type: str
      returned: when a candidate exists
      sample: newest ACTIVE revision of family svpms-api older than the current svpms-api:4
stopped_tasks:
  description: Up to O(max_stopped_tasks) stopped tasks of the service, most recently stopped first.
  returned: success
  type: list
  elements: dict
  contains:
    task_arn:
      description: ARN of the task.
      type: str
      returned: success
      sample: arn:aws:ecs:eu-west-1:123456789012:task/svpms-prod-cluster/0f1e2d3c4b5a69788796a5b4c3d2e1f0
    task_definition:
      description: Task definition the task ran.
      type: str
      returned: success
      sample: arn:aws:ecs:eu-west-1:123456789012:task-definition/svpms-api:4
    last_status:
      description: Last known task status.
      type: str
      returned: success
      sample: STOPPED
    stopped_reason:
      description: Why ECS stopped the task.
      type: str
      returned: success
      sample: 'Essential container in task exited'
    stop_code:
      description: ECS stop code, for example EssentialContainerExited or TaskFailedToStart.
      type: str
      returned: success
      sample: EssentialContainerExited
    stopped_at:
      description: When the task stopped, ISO-8601 UTC; null if not reported.
      type: str
      returned: success
      sample: '2026-03-01T09:14:10.000Z'
    containers:
      description: The task's containers with exit codes and reasons.
      type: list
      elements: dict
      returned: success
      sample:
        - name: api
          last_status: STOPPED
          exit_code: 137
          reason: OutOfMemoryError
'''

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSError, AWSModule
from ansible_collections.svpms.incident_response.plugins.module_utils.ecs import (
    check_names,
    describe_service,
    ecs_argument_spec,
    latest_active_revision,
    rollback_candidate,
    service_facts,
    stopped_tasks,
    utc_now,
)


def main():
    argument_spec = ecs_argument_spec()
    argument_spec.update(
        lookback_seconds=dict(type='int', default=3600),
        max_stopped_tasks=dict(type='int', default=10),
    )
    module = AWSModule(argument_spec=argument_spec, supports_check_mode=True)
    check_names(module)
    params = module.params
    if params['lookback_seconds'] < 0:
        module.fail_json(msg='lookback_seconds must be 0 or more seconds, got %s' % params['lookback_seconds'])
    if not 0 <= params['max_stopped_tasks'] <= 100:
        module.fail_json(msg='max_stopped_tasks must be between 0 and 100, got %s' % params['max_stopped_tasks'])

    client = module.client('ecs')
    try:
        raw = describe_service(client, params['cluster'], params['service'])
        result = service_facts(raw, utc_now(), params['lookback_seconds'])
        result['rollback_candidate'] = rollback_candidate(client, raw)
        result['latest_revision'] = latest_active_revision(client, raw)
        current = result['service']['task_definition_revision']
        result['runs_latest_revision'] = result['latest_revision'] is None or current == result['latest_revision']
        result['stopped_tasks'] = stopped_tasks(client, params['cluster'], params['service'],
                                                params['max_stopped_tasks'])
    except AWSError as err:
        module.fail_aws(err)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
