#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: jwt_key_rotate
short_description: Rotate (or roll back) a JWT signing key held in AWS Secrets Manager
version_added: 1.0.0
description:
  - O(action=rotate) generates a new signing key, stores it as a new secret version staged
    C(AWSPENDING), then moves C(AWSCURRENT) to it. Secrets Manager moves C(AWSPREVIOUS) to the old
    version, so the old key stays readable for verifying tokens still in flight (the grace period).
    Finally C(AWSPENDING) is removed from the new version.
  - The new key is of the same kind as the current one (O(key_type=same)) - RSA keeps its size (at
    least 2048 bits), EC its curve (P-256 by default), HMAC gets 64 random bytes - and is stored in
    the same shape (bare PEM, JSON with the same field names, bare HMAC string). A JSON secret keeps
    its other fields, and gets a new C(kid) (the RFC 7638 thumbprint for RSA/EC,
    C(hmac-YYYYMMDD-<random>) for HMAC).
  - O(action=rollback) moves C(AWSCURRENT) back to the C(AWSPREVIOUS) version (and Secrets Manager
    makes the version it leaves C(AWSPREVIOUS)). It fails when there is no C(AWSPREVIOUS) version.
  - Not idempotent by nature - every O(action=rotate) run makes a new key, and every
    O(action=rollback) run swaps C(AWSCURRENT) and C(AWSPREVIOUS). Rotating twice in a row drops the
    key from two rotations ago, and tokens signed with it stop verifying.
  - Never calls C(RotateSecret) (it needs a rotation Lambda), and never returns or logs key material.
  - The services keep the key they loaded at start; the runbook then force-redeploys them
    (for example with M(svpms.incident_response.ecs_redeploy)). That is not this module's job.
author: SVPMS Platform Team (@svpms)
options:
  secret_id:
    description:
      - Name or ARN of the secret, for example V(svpms/prod/api/jwt-signing-key).
    type: str
    required: true
  action:
    description:
      - V(rotate) makes and promotes a new key; V(rollback) promotes the C(AWSPREVIOUS) version again.
    type: str
    choices: [rotate, rollback]
    default: rotate
  key_type:
    description:
      - Kind of key O(action=rotate) generates. V(same) keeps the kind of the current key, and fails
        when the current value is not a key this module understands; name the kind then.
      - Ignored by O(action=rollback).
    type: str
    choices: [same, rsa, ec, hmac]
    default: same
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - In check mode the secret is read (C(DescribeSecret), C(GetSecretValue)) and nothing is written;
        the result holds the plan, with the version ids involved.
      - No key is generated in check mode, so RV(after.current_kid) and RV(new_version_id) are null there.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
notes:
  - IAM actions used - C(secretsmanager:DescribeSecret), C(secretsmanager:GetSecretValue) and, outside
    check mode, C(secretsmanager:PutSecretValue) (rotate) and C(secretsmanager:UpdateSecretVersionStage).
  - Requires the python C(cryptography) library (a dependency of ansible-core).
  - If a step fails half way the module fails with RV(done) listing the steps that did complete,
    and a message that says what state the secret is in.
seealso:
  - module: svpms.incident_response.jwt_key_info
  - module: svpms.incident_response.ecs_redeploy
'''

EXAMPLES = r'''
- name: Rotate the API's JWT signing key (old key stays AWSPREVIOUS for tokens in flight)
  svpms.incident_response.jwt_key_rotate:
    secret_id: svpms/prod/api/jwt-signing-key
    region: eu-west-1
  register: rotation

- name: Force-redeploy the API so it loads the new key
  svpms.incident_response.ecs_redeploy:
    cluster: svpms-prod
    service: svpms-api
  when: rotation is changed

- name: Replace a weak HMAC secret with an EC P-256 key
  svpms.incident_response.jwt_key_rotate:
    secret_id: svpms/staging/api/jwt-signing-key
    key_type: ec

- name: Roll back to the previous key
  svpms.incident_response.jwt_key_rotate:
    secret_id: svpms/prod/api/jwt-signing-key
    action: rollback
'''

RETURN = r'''
secret_id:
  description: The secret acted on.
  returned: always
  type: str
  sample: svpms/prod/api/jwt-signing-key
action:
  description: The action taken (or planned in check mode).
  returned: always
  type: str
  sample: rotate
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
    current_kid:
      description: Key id of the AWSCURRENT key (null for an HMAC key without kid, or an unreadable value).
      type: str
    kind:
      description: Kind of the AWSCURRENT key - V(rsa), V(ec), V(hmac), or null when not understood.
      type: str
  sample: {current_version: 0a9b..., previous_version: null, current_kid: NzbLsXh8..., kind: rsa}
after:
  description:
    - The stages after the task, read back from Secrets Manager; in check mode, the planned ones
      (RV(after.current_version) and RV(after.current_kid) are null when a new key would be made).
  returned: when the secret was read
  type: dict
  contains:
    current_version:
      description: Version id staged AWSCURRENT (null in check mode when a new key would be made).
      type: str
    previous_version:
      description: Version id staged AWSPREVIOUS.
      type: str
    current_kid:
      description: Key id of the AWSCURRENT key (null in check mode when a new key would be made).
      type: str
    kind:
      description: Kind of the AWSCURRENT key.
      type: str
  sample: {current_version: 5e1c..., previous_version: 0a9b..., current_kid: qzXQG5AE..., kind: rsa}
new_version_id:
  description: Version id of the new key version (rotate, outside check mode); null otherwise.
  returned: always
  type: str
plan:
  description: The steps, in order, that the task took (or would take in check mode).
  returned: when the secret was read
  type: list
  elements: str
done:
  description: The steps that completed (all of RV(plan) on success, none in check mode).
  returned: when the secret was read
  type: list
  elements: str
reachable:
  description: Whether Secrets Manager answered (on failure).
  returned: on failure
  type: bool
error_kind:
  description: Why it failed - V(not_found), V(access_denied), V(unreachable), V(no_previous), V(unknown_key), ...
  returned: on failure
  type: str
'''

import uuid  # noqa: E402

from ansible.module_utils.basic import missing_required_lib  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (  # noqa: E402
    AWSError,
    AWSModule,
)
from ansible_collections.svpms.incident_response.plugins.module_utils import secret_stages  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import jwt_keys  # noqa: E402

CURRENT = jwt_keys.STAGE_CURRENT
PREVIOUS = jwt_keys.STAGE_PREVIOUS
PENDING = jwt_keys.STAGE_PENDING


class Rotation(secret_stages.StageSteps):
    def __init__(self, module, sm, secret_id):
        self.module = module
        self.sm = sm
        self.secret_id = secret_id
        self.sensitive = []
        self.result = dict(changed=False, secret_id=secret_id, action=module.params['action'],
                           new_version_id=None)

    def remember(self, values):
        jwt_keys.remember_sensitive(values, self.sensitive, self.module.module.no_log_values)

    def fail(self, msg, **extra):
        out = dict(self.result)
        out.update(extra)
        out['msg'] = jwt_keys.redact(msg, self.sensitive)
        out.setdefault('reachable', True)
        self.module.fail_json(**out)

    def stages(self):
        try:
            desc = self.sm.call('describe_secret', SecretId=self.secret_id)
        except AWSError as err:
            self.fail_aws(err, 'Could not read secret %s' % self.secret_id)
        if desc.get('DeletedDate'):
            self.fail('Secret %s is scheduled for deletion; restore it first (nothing done)' % self.secret_id,
                      error_kind='deleted')
        return jwt_keys.stage_versions(desc.get('VersionIdsToStages'))

    def read(self, version_id, stage):
        try:
            resp = self.sm.call('get_secret_value', SecretId=self.secret_id, VersionId=version_id)
        except AWSError as err:
            self.fail_aws(err, 'Could not read the %s version %s of %s (nothing done)'
                          % (stage, version_id, self.secret_id))
        self.remember([resp.get('SecretString')])
        parsed = jwt_keys.parse_secret(secret_string=resp.get('SecretString'),
                                       secret_binary=resp.get('SecretBinary'))
        self.remember(parsed.sensitive_values())
        return parsed


def snapshot(by_stage, kid, kind):
    return dict(current_version=by_stage.get(CURRENT), previous_version=by_stage.get(PREVIOUS),
                current_kid=kid, kind=kind)


def diff_text(state):
    return ''.join('%s: %s\n' % (k, state[k]) for k in ('current_version', 'previous_version', 'current_kid', 'kind'))


def main():
    module = AWSModule(
        argument_spec=dict(
            secret_id=dict(type='str', required=True),
            action=dict(type='str', default='rotate', choices=['rotate', 'rollback']),
            key_type=dict(type='str', default='same', choices=['same', 'rsa', 'ec', 'hmac']),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not jwt_keys.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(jwt_keys.CRYPTOGRAPHY_IMPORT_ERROR))
    secret_id = (params['secret_id'] or '').strip()
    if not secret_id:
        module.fail_json(msg='secret_id must be a non-empty secret name or ARN')

    sm = module.client('secretsmanager')
    rot = Rotation(module, sm, secret_id)
    by_stage = rot.stages()
    cur_vid = by_stage.get(CURRENT)
    prev_vid = by_stage.get(PREVIOUS)
    pend_vid = by_stage.get(PENDING)
    if cur_vid is None:
        rot.fail('Secret %s has no AWSCURRENT version; nothing to rotate from or roll back (nothing done)'
                 % secret_id, error_kind='no_current')
    current = rot.read(cur_vid, CURRENT)
    before = snapshot(by_stage, current.kid, current.kind)
    rot.result['before'] = before
    plan = []
    done = []

    if params['action'] == 'rollback':
        if prev_vid is None:
            rot.fail('Secret %s has no AWSPREVIOUS version: there is nothing to roll back to (nothing done)'
                     % secret_id, error_kind='no_previous', before=before)
        previous = rot.read(prev_vid, PREVIOUS)
        if not previous.parses:
            module.warn('The AWSPREVIOUS value of %s is not a key this module understands (%s); rolling back anyway'
                        % (secret_id, previous.problem))
        after = dict(current_version=prev_vid, previous_version=cur_vid, current_kid=previous.kid,
                     kind=previous.kind)
        step_move = 'move AWSCURRENT from version %s back to %s (Secrets Manager stages %s AWSPREVIOUS)' % (
            cur_vid, prev_vid, cur_vid)
        plan = [step_move, 'then force-redeploy the services that read this secret (not done by this module)']
    else:
        kind = params['key_type']
        if kind == 'same':
            if not current.parses or current.kind is None:
                rot.fail('The AWSCURRENT value of %s is not a key this module understands (%s), so key_type=same '
                         'cannot tell what to generate; set key_type to rsa, ec or hmac (nothing done)'
                         % (secret_id, current.problem), error_kind='unknown_key', before=before)
            kind = current.kind
        template = current if current.parses else None
        new_vid = None
        new_kid = None
        if not module.check_mode:
            try:
                value, new_parsed = jwt_keys.generate_secret(kind, template)
            except jwt_keys.JWTKeyError as exc:
                rot.fail('Could not generate a new %s key: %s (nothing done)' % (kind, exc), error_kind='generate')
            rot.remember([value] if isinstance(value, str) else [])
            rot.remember(new_parsed.sensitive_values())
            new_vid = str(uuid.uuid4())
            new_kid = new_parsed.kid
        new_label = new_vid or '<new version>'
        after = dict(current_version=new_vid, previous_version=cur_vid, current_kid=new_kid, kind=kind)
        step_put = 'store a new %s key%s as version %s staged AWSPENDING' % (
            kind, ' (kid %s)' % new_kid if new_kid else '', new_label)
        if pend_vid and pend_vid != cur_vid:
            step_put += ' (AWSPENDING leaves version %s, an unfinished rotation)' % pend_vid
        step_move = 'move AWSCURRENT from version %s to %s (Secrets Manager stages %s AWSPREVIOUS%s)' % (
            cur_vid, new_label, cur_vid,
            '; version %s loses AWSPREVIOUS and tokens signed with its key stop verifying' % prev_vid if prev_vid else '')
        step_unpend = 'remove AWSPENDING from version %s' % new_label
        plan = [step_put, step_move, step_unpend,
                'then force-redeploy the services that read this secret (not done by this module)']

    rot.result.update(changed=True, after=after, plan=plan, done=done)
    if module.module._diff:
        rot.result['diff'] = dict(before_header='secretsmanager:%s' % secret_id,
                                  after_header='secretsmanager:%s' % secret_id,
                                  before=diff_text(before), after=diff_text(after))
    if module.check_mode:
        module.exit_json(**rot.result)

    if params['action'] == 'rollback':
        rot.move(CURRENT, prev_vid, cur_vid, done, step_move)
    else:
        put = dict(SecretId=secret_id, ClientRequestToken=new_vid, VersionStages=[PENDING])
        if isinstance(value, bytes):
            put['SecretBinary'] = value
        else:
            put['SecretString'] = value
        try:
            sm.call('put_secret_value', **put)
        except AWSError as err:
            rot.fail_aws(err, 'Could not store the new key in %s (nothing changed)' % secret_id, done=done)
        done.append(step_put)
        rot.result['new_version_id'] = new_vid
        rot.move(CURRENT, new_vid, cur_vid, done, step_move)
        rot.move(PENDING, None, new_vid, done, step_unpend)

    # Read back what Secrets Manager now says, and make sure the old current is AWSPREVIOUS.
    now = rot.stages()
    if now.get(CURRENT) != after['current_version']:
        rot.fail('After the update, AWSCURRENT of %s is on version %s, not %s as planned; check the secret '
                 '(steps done: %s)' % (secret_id, now.get(CURRENT), after['current_version'], '; '.join(done)),
                 error_kind='verify', done=done)
    if now.get(PREVIOUS) != cur_vid:
        rot.move(PREVIOUS, cur_vid, now.get(PREVIOUS), done, 'stage version %s AWSPREVIOUS' % cur_vid)
        now = rot.stages()
    rot.result['after'] = snapshot(now, after['current_kid'], after['kind'])
    if 'diff' in rot.result:
        rot.result['diff']['after'] = diff_text(rot.result['after'])
    module.exit_json(**rot.result)


if __name__ == '__main__':
    main()
