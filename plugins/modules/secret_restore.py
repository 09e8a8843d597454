#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: secret_restore
short_description: Put an earlier version of an AWS Secrets Manager secret back as AWSCURRENT
version_added: 1.0.0
description:
  - Mitigation step of the Stripe webhook failures scenario (scenario 4 of the incident response runbook) when the
    webhook signing secret was changed out of band, and of any incident where a secret must go back to a version it
    held before.
  - Moves the C(AWSCURRENT) staging label of O(secret_id) to O(to_version_id), by default the version staged
    C(AWSPREVIOUS). The version that held C(AWSCURRENT) becomes C(AWSPREVIOUS), so it stays readable and the restore
    can itself be undone.
  - Only version ids and staging labels are read (C(DescribeSecret), C(ListSecretVersionIds)); secret values are
    never read, returned or logged.
  - Idempotent when the target is named - when O(to_version_id) already is C(AWSCURRENT), nothing is done and the
    task reports C(changed=false). Without O(to_version_id) the target is whatever is C(AWSPREVIOUS) when the task
    runs, so a second run would swap the two versions back. Pin the target with O(to_version_id), or guard the run
    with O(expect_current_version_id) (for example the version ids reported by
    M(svpms.incident_response.webhook_probe) in its C(secret_version) result).
  - With O(expect_current_version_id), a decision made earlier is not applied once someone else changed the
    secret - when C(AWSCURRENT) is no longer that version (and not already the target), nothing is done, the task
    reports C(changed=false) and RV(skipped_reason) says why.
  - Fails when there is nothing to restore (no C(AWSPREVIOUS) version and no O(to_version_id)), when O(to_version_id)
    is not a version of the secret, and when Secrets Manager cannot be read or written (this is a write step); the
    failure says what state the secret is in.
  - The services keep the value they loaded at start; the runbook then force-redeploys them (for example with
    M(svpms.incident_response.ecs_redeploy)). That is not this module's job.
author: SVPMS Platform Team (@svpms)
options:
  secret_id:
    description:
      - Name or ARN of the secret, for example V(svpms/prod/api/stripe-webhook-secret).
    type: str
    required: true
  to_version_id:
    description:
      - Version id to stage C(AWSCURRENT) on. Any existing version of the secret, also one without a staging label
        that Secrets Manager still keeps.
      - Default - the version staged C(AWSPREVIOUS) when the task runs.
    type: str
  expect_current_version_id:
    description:
      - Guard - the version id expected to be C(AWSCURRENT) (the one the decision to restore was made on). When
        C(AWSCURRENT) is on another version (and not already on the target), nothing is done, C(changed) is false
        and RV(skipped_reason) is V(current_changed).
    type: str
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - In check mode the stages are read and nothing is written; the result holds the plan - RV(before), the
        planned RV(after), RV(plan) and a diff - and C(changed) is true when the restore would move C(AWSCURRENT).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
    details:
      - The diff holds version ids and staging labels only, never a value.
notes:
  - IAM actions used - C(secretsmanager:DescribeSecret), C(secretsmanager:ListSecretVersionIds) and, outside check
    mode, C(secretsmanager:UpdateSecretVersionStage). C(secretsmanager:GetSecretValue) is not needed.
  - Never calls C(RotateSecret) (it needs a rotation Lambda) and never writes a value; only staging labels move.
seealso:
  - module: svpms.incident_response.webhook_probe
  - module: svpms.incident_response.jwt_key_rotate
  - module: svpms.incident_response.ecs_redeploy
'''

EXAMPLES = r'''
- name: Detect - which signing secret version is current, and does the endpoint accept what Stripe sends?
  svpms.incident_response.webhook_probe:
    url: https://api.svpms.example.com/webhooks/stripe
    secret_id: svpms/prod/api/stripe-webhook-secret
    region: eu-west-1
  register: webhook

- name: Put the previous signing secret back (only if nobody changed the secret since the probe)
  svpms.incident_response.secret_restore:
    secret_id: svpms/prod/api/stripe-webhook-secret
    to_version_id: "{{ webhook.secret_version.previous_version_id }}"
    expect_current_version_id: "{{ webhook.secret_version.current_version_id }}"
    region: eu-west-1
  register: restore

- name: Stop when someone else changed the secret in the meantime
  ansible.builtin.fail:
    msg: "{{ restore.msg }}"
  when: restore.skipped_reason is not none

- name: Force-redeploy the API so it loads the restored secret
  svpms.incident_response.ecs_redeploy:
    cluster: svpms-prod
    service: svpms-api
  when: restore is changed

- name: Put a named older version back
  svpms.incident_response.secret_restore:
    secret_id: svpms/prod/api/stripe-webhook-secret
    to_version_id: 3f0c9a52-5a1e-4c7b-9d7e-2b8f1c0e6a11
'''

RETURN = r'''
secret_id:
  description: The secret acted on.
  returned: always
  type: str
  sample: svpms/prod/api/stripe-webhook-secret
before:
  description: The stages before the task.
  returned: when the secret was read
  type: dict
  contains:
    current_version:
      description: Version id staged AWSCURRENT.
      type: str
    previous_version:
      description: Version id staged AWSPREVIOUS, or null.
      type: str
    current_created:
      description: When the AWSCURRENT version was created (ISO 8601, UTC), or null when unknown.
      type: str
  sample: {current_version: 9b2e..., previous_version: 3f0c..., current_created: "2026-11-04T09:12:44Z"}
after:
  description:
    - The stages after the task, read back from Secrets Manager; in check mode, the planned ones. The same as
      RV(before) when nothing was done.
  returned: when the secret was read
  type: dict
  contains:
    current_version:
      description: Version id staged AWSCURRENT.
      type: str
    previous_version:
      description: Version id staged AWSPREVIOUS, or null.
      type: str
    current_created:
      description: When the AWSCURRENT version was created (ISO 8601, UTC), or null when unknown.
      type: str
  sample: {current_version: 3f0c..., previous_version: 9b2e..., current_created: "2026-10-01T14:03:10Z"}
target_version:
  description: The version id AWSCURRENT is (or would be) moved to.
  returned: when the secret was read
  type: str
  sample: 3f0c9a52-5a1e-4c7b-9d7e-2b8f1c0e6a11
skipped_reason:
  description:
    - Why nothing was done although the target is not AWSCURRENT - V(current_changed) when AWSCURRENT is no longer
      O(expect_current_version_id). Null otherwise.
  returned: when the secret was read
  type: str
  sample: current_changed
plan:
  description: The steps, in order, that the task took (or would take in check mode). Empty when nothing is to do.
  returned: when the secret was read
  type: list
  elements: str
done:
  description: The steps that completed (all of RV(plan) on success, none in check mode).
  returned: when the secret was read
  type: list
  elements: str
msg:
  description: One line saying what was done, would be done, or why nothing was done. Never holds a value.
  returned: always
  type: str
reachable:
  description: Whether Secrets Manager answered (on failure).
  returned: on failure
  type: bool
error_kind:
  description:
    - Why it failed - V(parameters), V(not_found), V(access_denied), V(unreachable), V(configuration),
      V(deleted), V(no_current), V(no_previous), V(unknown_version), V(verify) or V(error).
  returned: on failure
  type: str
'''


from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (  # noqa: E402
    AWSError,
    AWSModule,
)
from ansible_collections.svpms.incident_response.plugins.module_utils import secret_stages  # noqa: E402

CURRENT = secret_stages.STAGE_CURRENT
PREVIOUS = secret_stages.STAGE_PREVIOUS
MAX_LISTED = 10  # version ids named in the message of an unknown to_version_id
SKIP_CURRENT_CHANGED = 'current_changed'


def snapshot(by_stage, created):
    cur = by_stage.get(CURRENT)
    return dict(current_version=cur, previous_version=by_stage.get(PREVIOUS), current_created=created.get(cur))


def diff_text(state):
    return '%s: %s\n%s: %s\n' % (CURRENT, state['current_version'], PREVIOUS, state['previous_version'])


class Restore(secret_stages.StageSteps):
    def __init__(self, module, sm, secret_id):
        self.module = module
        self.sm = sm
        self.secret_id = secret_id
        self.result = dict(changed=False, secret_id=secret_id)

    def fail(self, msg, **extra):
        out = dict(self.result)
        out.update(extra)
        out['msg'] = msg
        out.setdefault('reachable', True)
        self.module.fail_json(**out)

    def note(self):
        done = self.result.get('done')
        return '(steps done: %s)' % '; '.join(done) if done else '(nothing changed)'

    def stages(self):
        try:
            desc = self.sm.call('describe_secret', SecretId=self.secret_id)
        except AWSError as err:
            self.fail_aws(err, 'Could not read the stages of secret %s %s' % (self.secret_id, self.note()),
                          done=self.result.get('done'))
        if desc.get('DeletedDate'):
            self.fail('Secret %s is scheduled for deletion; restore the secret itself first (nothing changed)'
                      % self.secret_id, error_kind='deleted')
        return secret_stages.stage_versions(desc.get('VersionIdsToStages'))

    def versions(self):
        """``{version_id: created (ISO 8601 UTC or None)}`` of every version, also those without a label."""
        try:
            items, _truncated = self.sm.paginate('list_secret_version_ids', 'Versions', token_in='NextToken',
                                                 token_out='NextToken', SecretId=self.secret_id,
                                                 IncludeDeprecated=True)
        except AWSError as err:
            self.fail_aws(err, 'Could not list the versions of secret %s %s' % (self.secret_id, self.note()),
                          done=self.result.get('done'))
        return dict((v['VersionId'], secret_stages.iso_utc(v.get('CreatedDate'))) for v in items if v.get('VersionId'))


def clean_option(module, params, name):
    """A stripped optional string option; fails naming it when set but empty."""
    value = params.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value:
        module.fail_json(msg='%s must be a non-empty version id when set (leave it unset for the default)' % name,
                         error_kind='parameters')
    return value


def main():
    module = AWSModule(
        argument_spec=dict(
            secret_id=dict(type='str', required=True),
            to_version_id=dict(type='str'),
            expect_current_version_id=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    secret_id = (params['secret_id'] or '').strip()
    if not secret_id:
        module.fail_json(msg='secret_id must be a non-empty secret name or ARN', error_kind='parameters')
    to_version = clean_option(module, params, 'to_version_id')
    expect_current = clean_option(module, params, 'expect_current_version_id')

    res = Restore(module, module.client('secretsmanager'), secret_id)
    by_stage = res.stages()
    created = res.versions()
    cur_vid = by_stage.get(CURRENT)
    prev_vid = by_stage.get(PREVIOUS)
    before = snapshot(by_stage, created)
    res.result.update(before=before, after=dict(before), target_version=None, skipped_reason=None, plan=[], done=[])
    if cur_vid is None:
        res.fail('Secret %s has no AWSCURRENT version; there is nothing to restore from (nothing changed)' % secret_id,
                 error_kind='no_current')

    # 1. The target.
    if to_version is None:
        if prev_vid is None:
            res.fail('Secret %s has no AWSPREVIOUS version, so there is no earlier version to restore; set '
                     'to_version_id to the version to put back (nothing changed)' % secret_id,
                     error_kind='no_previous')
        target = prev_vid
    else:
        if to_version not in created and to_version not in by_stage.values():
            known = sorted(created)
            listed = ', '.join(known[:MAX_LISTED]) + (' and %d more' % (len(known) - MAX_LISTED)
                                                      if len(known) > MAX_LISTED else '')
            res.fail('to_version_id %s is not a version of secret %s; it must be one of its version ids (%s) '
                     '(nothing changed)' % (to_version, secret_id, listed or 'none'),
                     error_kind='unknown_version')
        target = to_version
    res.result['target_version'] = target

    # 2. Nothing to do: the target already is AWSCURRENT (idempotence comes before the guard: someone else may have
    #    restored it already, which is the state asked for).
    if target == cur_vid:
        res.result['msg'] = 'Version %s already is AWSCURRENT of %s; nothing to do' % (target, secret_id)
        module.exit_json(**res.result)

    # 3. The guard: the decision was made on another AWSCURRENT.
    if expect_current is not None and cur_vid != expect_current:
        res.result.update(
            skipped_reason=SKIP_CURRENT_CHANGED,
            msg='Nothing changed: AWSCURRENT of %s is version %s, not %s as expect_current_version_id says - the '
                'secret changed since the decision to restore version %s; look at it again before restoring'
                % (secret_id, cur_vid, expect_current, target))
        module.exit_json(**res.result)

    # 4. Plan.
    after = dict(current_version=target, previous_version=cur_vid, current_created=created.get(target))
    step_move = 'move AWSCURRENT from version %s back to %s (Secrets Manager stages %s AWSPREVIOUS%s)' % (
        cur_vid, target, cur_vid,
        '; version %s loses AWSPREVIOUS' % prev_vid if prev_vid and prev_vid != target else '')
    plan = [step_move, 'then force-redeploy the services that read this secret (not done by this module)']
    done = res.result['done']
    res.result.update(changed=True, after=after, plan=plan)
    if module.module._diff:
        res.result['diff'] = dict(before_header='secretsmanager:%s' % secret_id,
                                  after_header='secretsmanager:%s' % secret_id,
                                  before=diff_text(before), after=diff_text(after))
    if module.check_mode:
        res.result['msg'] = 'Would move AWSCURRENT of %s from version %s to %s (check mode, nothing changed)' % (
            secret_id, cur_vid, target)
        module.exit_json(**res.result)

    # 5. Write, then read back; make sure the old current is AWSPREVIOUS (real Secrets Manager does that itself).
    res.move(CURRENT, target, cur_vid, done, step_move)
    now = res.stages()
    if now.get(CURRENT) != target:
        res.fail('After the update, AWSCURRENT of %s is on version %s, not %s as planned; check the secret '
                 '(steps done: %s)' % (secret_id, now.get(CURRENT), target, '; '.join(done)),
                 error_kind='verify')
    if now.get(PREVIOUS) != cur_vid:
        res.move(PREVIOUS, cur_vid, now.get(PREVIOUS), done, 'stage version %s AWSPREVIOUS' % cur_vid)
        now = res.stages()
    res.result['after'] = snapshot(now, created)
    if 'diff' in res.result:
        res.result['diff']['after'] = diff_text(res.result['after'])
    res.result['msg'] = 'Moved AWSCURRENT of %s from version %s back to %s; %s is AWSPREVIOUS' % (
        secret_id, cur_vid, target, now.get(PREVIOUS))
    module.exit_json(**res.result)


if __name__ == '__main__':
    main()
