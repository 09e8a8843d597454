#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: rds_promote_replica
short_description: Promote an RDS read replica to a standalone DB instance (irreversible)
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Promotes an Amazon RDS read replica to a standalone, writable DB instance
    (C(aws rds promote-read-replica)) - the runbook's Phase 3 step "consider read replica promotion"
    when the primary database is lost or unusable.
  - B(Destructive and irreversible.) A promoted instance never replicates from its source again; going
    back means building a new replica. Writes that reached the source after the replica's last applied
    change are not on the promoted instance.
  - The runbook calls this module only behind the incident approval gate, and in production always with a
    human approving at the terminal; never run it unattended.
  - Does nothing (C(changed=false)) when the instance is not a read replica (already standalone), so a
    second run is safe.
  - Refuses, without calling anything, when the replica is not V(available) (RDS only promotes an
    available replica) or belongs to an Aurora cluster.
  - By default waits until the instance is V(available) and no longer lists a replication source.
options:
  db_instance_identifier:
    description:
      - Identifier of the read replica to promote, for example V(svpms-prod-db-replica-1).
    type: str
    required: true
  backup_retention_period:
    description:
      - Days of automated backups to keep on the promoted instance, 0 to 35. V(0) switches automated
        backups off, which a new primary should rarely have. When not set, RDS keeps the replica's setting.
    type: int
  preferred_backup_window:
    description:
      - Daily window for automated backups of the promoted instance, C(hh24:mi-hh24:mi) in UTC, at least
        30 minutes, for example V(03:00-03:30).
    type: str
  wait:
    description:
      - Wait until the instance is V(available) and has no C(ReadReplicaSourceDBInstanceIdentifier).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait before failing, 1 to 7200. On timeout the promotion still goes on in AWS; the
        failure says what was last seen.
    type: int
    default: 1800
  wait_interval:
    description:
      - Seconds between two reads of the instance while waiting, 1 to 300.
    type: int
    default: 30
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the instance and reports what would happen (C(changed=true) and a diff for a replica);
      C(PromoteReadReplica) is never called and nothing is waited for.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
  action_group:
    description: Use C(group/svpms.incident_response.aws) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - svpms.incident_response.aws
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: aws
notes:
  - "IAM actions used: C(rds:DescribeDBInstances) and, outside check mode, C(rds:PromoteReadReplica)."
  - The promote call is made once; it is never retried.
  - Applications keep using the replica's endpoint name, which stays the same; point writers at it after
    the promotion.
seealso:
  - name: Promoting a read replica
    description: RDS user guide.
    link: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html
'''

EXAMPLES = r'''
# Only behind the incident approval gate, with a human approving in production.
- name: Show what promoting the replica would do
  svpms.incident_response.rds_promote_replica:
    db_instance_identifier: svpms-prod-db-replica-1
    region: eu-west-1
  check_mode: true
  register: promote_plan

- name: Promote the replica and wait until it is standalone
  svpms.incident_response.rds_promote_replica:
    db_instance_identifier: svpms-prod-db-replica-1
    backup_retention_period: 7
    preferred_backup_window: "03:00-03:30"
    wait_timeout: 1800
    region: eu-west-1
  register: promoted

- name: Point the application at the promoted instance
  ansible.builtin.debug:
    msg: "new primary: {{ promoted.db_instance.after.endpoint }}"
'''

RETURN = r'''
msg:
  description: What was done (or would be done), in one line; on failure what went wrong and what to check.
  returned: always
  type: str
  sample: "promoted svpms-prod-db-replica-1: it is available and no longer replicates from svpms-prod-db (waited 412.3 s)"
promoted:
  description: The C(PromoteReadReplica) call was made and accepted. Also returned on failure.
  returned: always
  type: bool
  sample: true
db_instance:
  description:
    - The instance before and after. RV(db_instance.after) is the predicted state in check mode, the state
      last seen after the promotion otherwise (the RDS answer when not waiting).
  returned: always
  type: dict
  contains:
    before:
      description: The instance as found; V(null) when it could not be read.
      type: dict
      returned: always
      sample:
        identifier: svpms-prod-db-replica-1
        status: available
        engine: postgres
        source: svpms-prod-db
        endpoint: svpms-prod-db-replica-1.abcdefghij.eu-west-1.rds.amazonaws.com:5432
        backup_retention_period: 0
    after:
      description: The same keys after the promotion.
      type: dict
      returned: always
      sample:
        identifier: svpms-prod-db-replica-1
        status: available
        engine: postgres
        source: null
        endpoint: svpms-prod-db-replica-1.abcdefghij.eu-west-1.rds.amazonaws.com:5432
        backup_retention_period: 7
waited_for:
  description: What the module waited for; V(null) when it did not wait.
  returned: always
  type: str
  sample: >-
    DB instance svpms-prod-db-replica-1 to be 'available' with no ReadReplicaSourceDBInstanceIdentifier
    (promoted: no longer replicating from svpms-prod-db)
wait_result:
  description: How the wait ended; V(null) when it did not wait.
  returned: always
  type: dict
  sample: {completed: true, timed_out: false, elapsed_seconds: 412.3, polls: 15,
           last_seen: "status available, no replication source", msg: null}
diff:
  description: RV(db_instance.before) and RV(db_instance.after), for C(--diff), when it (would have) changed.
  returned: changed
  type: dict
error_kind:
  description:
    - On failure, why. V(not_found), V(not_available) (the replica is not available; nothing called),
      V(unsupported) (Aurora), V(timeout) (the wait ran out; the promotion goes on), V(wait_failed), or the
      AWS error kinds V(unreachable), V(access_denied), V(configuration), V(error).
  returned: failure
  type: str
  sample: not_available
reachable:
  description: On failure, whether the RDS API answered.
  returned: failure
  type: bool
  sample: true
'''

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSModule  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.rds import (  # noqa: E402
    PromoteError,
    check_params,
    promote,
)


def main():
    module = AWSModule(
        argument_spec=dict(
            db_instance_identifier=dict(type='str', required=True),
            backup_retention_period=dict(type='int'),
            preferred_backup_window=dict(type='str'),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=1800),
            wait_interval=dict(type='int', default=30),
        ),
        supports_check_mode=True,
    )
    errors = check_params(module.params)
    if errors:
        module.fail_json(msg='; '.join(errors))
    if module.params['backup_retention_period'] == 0:
        module.module.warn('backup_retention_period=0 leaves the promoted instance (a new primary) without '
                           'automated backups')

    client = module.client('rds')
    try:
        result = promote(client, module.params, module.check_mode)
    except PromoteError as err:
        out = dict(err.result)
        out.update(err.fields)
        out['msg'] = err.msg
        module.fail_json(**out)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
