#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: incident_lock
short_description: Take or release the one-mitigation-at-a-time lock of a service, held in DynamoDB
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Takes (O(state=acquired)) or releases (O(state=released)) a lock named O(key), usually the
    service name, held as one item of the DynamoDB table O(table). A runbook takes the lock before
    any change to the service and releases it in an C(always) section, so two incident runs never
    mitigate the same service at the same time.
  - Taking the lock is one conditional C(PutItem) that succeeds only when there is no lock item, when
    its C(expires_at) has passed, or when its C(owner) is O(owner). DynamoDB evaluates the condition
    atomically with the write, so of two runs racing for the same key exactly one gets it.
  - When another owner holds a live lock the task does B(not) fail. It returns RV(acquired=false)
    and names the RV(holder); the runbook must then skip its mitigation.
  - Every lock expires after O(ttl_seconds), so a run that crashed before its C(always) section
    cannot block the service for ever. A stale (expired) lock is taken over and reported with
    RV(took_over_stale=true) and RV(previous_holder).
  - Re-entrant. When O(owner) already holds the lock the expiry is refreshed (the original
    C(acquired_at) is kept) and RV(ignore:changed) is false.
  - Releasing is one C(DeleteItem) conditional on C(owner = :owner). A lock held by another owner is
    never deleted, even a stale one (RV(released=false), RV(ignore:changed=false), holder named);
    releasing a lock that does not exist is RV(ignore:changed=false) too.
  - "The table needs a hash key C(lock_key) of type C(S) and nothing else. Create it with
    C(aws dynamodb create-table --table-name svpms-incident-locks
    --attribute-definitions AttributeName=lock_key,AttributeType=S
    --key-schema AttributeName=lock_key,KeyType=HASH --billing-mode PAY_PER_REQUEST)."
  - "Items hold C(lock_key) (S), C(owner) (S), C(reason) (S, when given), C(acquired_at) (S, ISO 8601 UTC)
    and C(expires_at) (N, epoch seconds). Optionally let DynamoDB delete expired locks by enabling TTL
    on C(expires_at): C(aws dynamodb update-time-to-live --table-name svpms-incident-locks
    --time-to-live-specification Enabled=true,AttributeName=expires_at). TTL only tidies up (DynamoDB
    deletes expired items within days); the module never relies on it, an expired item is stale
    whether or not it was deleted."
options:
  table:
    description:
      - Name of the DynamoDB table holding the locks, for example V(svpms-incident-locks).
    type: str
    required: true
  key:
    description:
      - Name of the lock. One lock per service, so the service name, for example V(svpms-api).
    type: str
    required: true
  owner:
    description:
      - Who takes or releases the lock. Stored in the item and compared on every write.
      - Make it unique per incident run, for example C(<incident_id>@<controller host>:<pid>).
        A second run with the same owner is the same holder (re-entrant), a different owner is
        kept out while the lock is live.
    type: str
    required: true
  state:
    description:
      - V(acquired) takes the lock (or refreshes it when O(owner) holds it already).
      - V(released) deletes the lock when O(owner) holds it.
    type: str
    choices: [acquired, released]
    default: acquired
  ttl_seconds:
    description:
      - With O(state=acquired), how long the lock lives from now. After that it is stale and
        another owner may take it over, so a crashed run cannot block the service for ever.
      - Choose it longer than the longest mitigation, including its waits, and far longer than
        the clock difference between controllers (the expiry is compared with the controller's clock).
      - Between 60 and 86400.
    type: int
    default: 1800
  reason:
    description:
      - With O(state=acquired), free text stored with the lock and shown to a run that finds it held,
        for example V(ecs_rollback svpms-api:3).
    type: str
  wait_seconds:
    description:
      - With O(state=acquired), how long to wait for another owner to release the lock or for its
        lock to expire. V(0) does not wait.
      - While waiting, the lock is read (C(GetItem), consistent) about every 2 seconds and taken as soon as
        it is free or stale; RV(waited_for) says what was awaited. When the time is up and the lock is
        still held the result is RV(acquired=false), not a failure.
      - Between 0 and 3600. Ignored in check mode (nothing is waited for) and with O(state=released).
    type: int
    default: 0
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return changed status prediction without modifying target.
    details:
      - Reads the lock (C(GetItem)) and never writes or waits. RV(acquired) and RV(released) report what a
        real run would do (also as RV(would_acquire) and RV(would_release)), and RV(ignore:changed)
        is true when a real run would take over, take or delete the lock.
  diff_mode:
    support: full
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  action_group:
    support: full
    description: Use C(group/svpms.incident_response.aws) in C(module_defaults) to set defaults for this module.
    membership:
      - svpms.incident_response.aws
  platform:
    support: full
    description: Target OS/families that can be operated against.
    platforms: aws
notes:
  - "Required IAM actions on the table: C(dynamodb:GetItem), C(dynamodb:PutItem) (O(state=acquired))
    and C(dynamodb:DeleteItem) (O(state=released))."
  - The release belongs in an C(always) section, so it runs whether the mitigation worked, failed or
    was skipped; a release by a run that did not get the lock changes nothing.
  - A release that cannot reach DynamoDB fails the task; the lock then expires after O(ttl_seconds).
seealso:
  - name: DynamoDB condition expressions
    description: How conditional writes work.
    link: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
  - name: DynamoDB Time to Live
    description: Letting DynamoDB delete expired items.
    link: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html
  - module: svpms.incident_response.ecs_rollback
'''

EXAMPLES = r'''
# One owner per incident run: the same incident re-run from the same controller
# is the same holder (re-entrant), any other run is kept out while the lock is live.
- name: Roll back svpms-api, one mitigation at a time
  vars:
    lock_owner: "{{ incident_id }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"
  block:
    - name: Take the svpms-api mitigation lock
      svpms.incident_response.incident_lock:
        table: svpms-incident-locks
        key: svpms-api
        owner: "{{ lock_owner }}"
        reason: ecs_rollback svpms-api
        ttl_seconds: 1800
      register: api_lock

    - name: Say who is mitigating already
      ansible.builtin.debug:
        msg: "{{ api_lock.msg }}"
      when: not api_lock.acquired

    - name: Roll the API back
      svpms.incident_response.ecs_rollback:
        cluster: svpms-prod-cluster
        service: svpms-api
      when: api_lock.acquired
  always:
    - name: Release the svpms-api mitigation lock
      svpms.incident_response.incident_lock:
        table: svpms-incident-locks
        key: svpms-api
        owner: "{{ lock_owner }}"
        state: released

- name: Wait up to 5 minutes for another run to finish with svpms-api
  svpms.incident_response.incident_lock:
    table: svpms-incident-locks
    key: svpms-api
    owner: INC-2026-0042@ops-1:4242
    wait_seconds: 300
  register: api_lock

- name: Stop here when another run still holds it
  ansible.builtin.fail:
    msg: "{{ api_lock.msg }}"
  when: not api_lock.acquired
'''

RETURN = r'''
msg:
  description: What happened, in one line (for a held lock, who holds it since when and until when).
  returned: always
  type: str
  sample: "lock svpms-api held by INC-41@ops-2:977 since 2026-03-01T11:58:02Z (expires in 1712 s): not mitigating concurrently"
table:
  description: The DynamoDB table.
  returned: always
  type: str
  sample: svpms-incident-locks
key:
  description: The lock name.
  returned: always
  type: str
  sample: svpms-api
owner:
  description: The owner given in O(owner).
  returned: always
  type: str
  sample: INC-2026-0042@ops-1:4242
state:
  description: The O(state) asked for.
  returned: always
  type: str
  sample: acquired
acquired:
  description:
    - Whether O(owner) holds the lock after the task (in check mode, would hold it).
    - False when another owner holds a live lock; the runbook must then not mitigate.
  returned: when O(state=acquired)
  type: bool
  sample: true
would_acquire:
  description: In check mode, whether a real run would hold the lock (same as RV(acquired)).
  returned: in check mode, when O(state=acquired)
  type: bool
  sample: true
refreshed:
  description: O(owner) already held the lock; its expiry was (or would be) refreshed. RV(ignore:changed) is false.
  returned: when O(state=acquired)
  type: bool
  sample: false
took_over_stale:
  description: Another owner's expired lock was (or would be) taken over.
  returned: when O(state=acquired)
  type: bool
  sample: false
previous_holder:
  description: The expired lock that was taken over, in the form of RV(holder); null unless RV(took_over_stale).
  returned: when O(state=acquired)
  type: dict
  sample: null
expires_at:
  description: When the lock taken (or refreshed) by this task expires, in epoch seconds; null when not acquired.
  returned: when O(state=acquired)
  type: int
  sample: 1772368682
attempts:
  description: How many times the lock was read and, when it could be taken, written.
  returned: when O(state=acquired)
  type: int
  sample: 1
waited_for:
  description: What the task waited for, in words; null when it did not wait (O(wait_seconds=0), check mode, or the lock was free).
  returned: when O(state=acquired)
  type: str
  sample: "lock svpms-api to be released or to expire (held by INC-41@ops-2:977, expires at 2026-03-01T12:28:02Z); up to 300 s"
waited_seconds:
  description: Seconds spent waiting (0 when it did not wait).
  returned: when O(state=acquired)
  type: float
  sample: 12.4
released:
  description:
    - Whether the lock of O(owner) was (in check mode, would be) deleted.
    - False when the lock does not exist or another owner holds it (then left in place).
  returned: when O(state=released)
  type: bool
  sample: true
would_release:
  description: In check mode, whether a real run would delete the lock (same as RV(released)).
  returned: in check mode, when O(state=released)
  type: bool
  sample: true
holder:
  description:
    - Who holds the lock after the task (in check mode, would hold it); null when nobody does.
    - O(owner) itself when the lock was acquired; the other owner when the lock is held by someone else.
  returned: always
  type: dict
  contains:
    owner:
      description: The holder.
      type: str
      sample: INC-41@ops-2:977
    reason:
      description: The holder's O(reason); null when none was given.
      type: str
      sample: ecs_rollback svpms-api:3
    acquired_at:
      description: When the holder took the lock, ISO 8601 UTC.
      type: str
      sample: "2026-03-01T11:58:02Z"
    expires_at:
      description: When the lock expires, epoch seconds.
      type: int
      sample: 1772368082
    expires_in_seconds:
      description: Seconds until the lock expires, by the controller's clock; negative when it has expired.
      type: int
      sample: 1712
    expired:
      description: Whether the lock has expired (stale).
      type: bool
      sample: false
before:
  description: The lock before the task, in the form of RV(holder); null when there was none.
  returned: always
  type: dict
  sample: null
after:
  description: The lock after the task (in check mode, as it would be), in the form of RV(holder); null when there is none.
  returned: always
  type: dict
  sample:
    owner: INC-2026-0042@ops-1:4242
    reason: ecs_rollback svpms-api
    acquired_at: "2026-03-01T12:00:00Z"
    expires_at: 1772368200
    expires_in_seconds: 1800
    expired: false
diff:
  description: RV(before) and RV(after), for C(--diff).
  returned: when changed
  type: dict
'''

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (  # noqa: E402
    AWSError,
    AWSModule,
)
from ansible_collections.svpms.incident_response.plugins.module_utils.lock import (  # noqa: E402
    DEFAULT_TTL_SECONDS,
    DynamoDBLock,
    missing_table_hint,
    validate_options,
)

MISSING_TABLE_CODES = ('ResourceNotFoundException',)


def main():
    module = AWSModule(
        argument_spec=dict(
            table=dict(type='str', required=True),
            key=dict(type='str', required=True, no_log=False),
            owner=dict(type='str', required=True),
            state=dict(type='str', choices=['acquired', 'released'], default='acquired'),
            ttl_seconds=dict(type='int', default=DEFAULT_TTL_SECONDS),
            reason=dict(type='str'),
            wait_seconds=dict(type='int', default=0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    table = (params['table'] or '').strip()
    key = params['key']
    owner = params['owner']
    state = params['state']
    base = dict(table=table, key=key, owner=owner, state=state)
    unknown = dict(acquired=False) if state == 'acquired' else dict(released=False)

    errors = validate_options(key, owner, params['ttl_seconds'], params['wait_seconds'], params['reason'])
    if not table:
        errors.insert(0, 'table must be the name of the DynamoDB table holding the locks')
    if errors:
        module.fail_json(msg='; '.join(errors), **dict(base, **unknown))

    lock = DynamoDBLock(module.client('dynamodb'), table, key)
    try:
        if state == 'acquired':
            result = lock.acquire(owner, ttl_seconds=params['ttl_seconds'], reason=params['reason'] or None,
                                  wait_seconds=params['wait_seconds'], check_mode=module.check_mode)
        else:
            result = lock.release(owner, check_mode=module.check_mode)
    except AWSError as err:
        if err.code in MISSING_TABLE_CODES:
            err.hint = missing_table_hint(table)
        module.fail_aws(err, **dict(base, **unknown))

    result.update(base)
    if result['changed']:
        result['diff'] = dict(before_header='dynamodb:%s/%s' % (table, key),
                              after_header='dynamodb:%s/%s' % (table, key),
                              before=result['before'] or {}, after=result['after'] or {})
    module.exit_json(**result)


if __name__ == '__main__':
    main()
