#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: stripe_key_update
short_description: Put a new, verified Stripe API key into AWS Secrets Manager as the current version
version_added: 1.0.0
description:
  - The key replacement step of the Stripe webhook failures runbook, after a key was rolled or revoked.
  - In order - (1) checks the form of O(new_key) (a secret C(sk_) or restricted C(rk_) key, live or test as
    O(expect_livemode) says); (2) verifies it with Stripe (C(GET /v1/balance) must answer HTTP 200) B(before)
    anything is written; (3) stores it as a new version of O(secret_id) staged C(AWSPENDING); (4) moves C(AWSCURRENT)
    to that version - Secrets Manager makes the old version C(AWSPREVIOUS), so the old key stays readable for a
    rollback - and removes C(AWSPENDING) from it. The value is read back and compared at the end.
  - The format of the secret is kept - a plain string stays a plain string (just the key), a JSON object gets the
    key in the same field (O(json_field)) and keeps every other field as it is.
  - A key Stripe refuses fails the task and nothing is written - RV(key_status) says why (V(revoked), V(invalid),
    V(restricted)), or V(unknown) when Stripe could not be asked (unreachable, failing, rate limiting).
  - Idempotent - when C(AWSCURRENT) already holds O(new_key), nothing is written and C(changed) is V(false) (the key
    is still verified with Stripe).
  - Never calls C(RotateSecret) (it needs a rotation Lambda). No key is ever returned, logged or put in a message or
    diff - only its prefix and last 4 characters (RV(before.key_hint), for example C(sk_test_…1234)).
  - The service keeps the key it loaded at start - the runbook then force-redeploys it (for example with
    M(svpms.incident_response.ecs_redeploy)). That is not this module's job.
author: SVPMS Platform Team (@svpms)
options:
  new_key:
    description:
      - The new Stripe secret (C(sk_live_...), C(sk_test_...)) or restricted (C(rk_live_...), C(rk_test_...)) API
        key, as the Stripe Dashboard shows it. Never logged.
      - If not set, the E(SVPMS_NEW_STRIPE_API_KEY) environment variable is used.
    type: str
    required: true
  secret_id:
    description:
      - Name or ARN of the Secrets Manager secret the service reads its Stripe key from, for example
        V(svpms/prod/api/stripe-api-key). It must exist and have an C(AWSCURRENT) version.
    type: str
    required: true
  json_field:
    description:
      - For a secret whose value is a JSON object - the field that holds the key. The field must exist.
      - Not set - the first of V(api_key), V(secret_key), V(key) present in the object is used (when several are
        present, the one that holds a C(sk_)/C(rk_) key; name the field when that is ambiguous).
      - Must not be set for a secret whose value is a plain string.
    type: str
  expect_livemode:
    description:
      - The mode the new key must be in - V(true) for a live key (production), V(false) for a test key. Checked
        against the key's prefix before Stripe is called, and against C(livemode) in Stripe's answer.
      - Not set - a key of either mode is accepted, except that the task fails when the key in C(AWSCURRENT) is of
        the other mode (a live service switched to a test key, or the reverse); set O(expect_livemode) to confirm
        such a change.
    type: bool
  api_url:
    description:
      - Base URL of the Stripe API the new key is verified against. Must be C(https://), except for a loopback test
        server (C(http://127.0.0.1:PORT)).
    type: str
    default: https://api.stripe.com
  timeout:
    description:
      - Seconds for each HTTP attempt to Stripe (connecting, each read and the whole answer), more than 0 and at
        most 60.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the TLS certificate of O(api_url). Set to V(false) only for a test server.
    type: bool
    default: true
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - In check mode the secret is read and the key is verified with Stripe (C(GET /v1/balance), read-only);
        nothing is written. RV(plan) says what would be done, C(changed) is V(true) when the key would change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
    details: The diff shows version ids, key hints and modes - never a key.
notes:
  - IAM actions used - C(secretsmanager:DescribeSecret), C(secretsmanager:GetSecretValue) and, outside check mode,
    C(secretsmanager:PutSecretValue) and C(secretsmanager:UpdateSecretVersionStage).
  - Verifying a restricted (C(rk_)) key needs its Balance read permission; without it Stripe answers HTTP 403 and
    the key is refused as V(restricted).
  - A version that already holds exactly the new value staged C(AWSPENDING) (left by an interrupted run) is reused
    instead of writing another one.
  - The version that was C(AWSPREVIOUS) before the task loses that label (only the key just replaced stays
    readable as C(AWSPREVIOUS)).
  - If a step fails half way the module fails with RV(done) listing the steps that did complete, and a message that
    says what state the secret is in.
  - Stripe is called with bounded retries (HTTP 429, 5xx and connection errors, at most 3 retries); the call takes at
    most 4 x O(timeout) + 30 seconds.
requirements:
  - requests
seealso:
  - module: svpms.incident_response.stripe_account_info
  - module: svpms.incident_response.ecs_redeploy
  - name: Stripe API keys
    description: Secret, restricted and publishable keys, live and test mode, rolling keys.
    link: https://docs.stripe.com/keys
'''

EXAMPLES = r'''
- name: Store the key rolled in the Stripe Dashboard (verified with Stripe first)
  svpms.incident_response.stripe_key_update:
    new_key: "{{ new_stripe_key }}"          # from a vault or a vars_prompt; never in the playbook
    secret_id: svpms/prod/api/stripe-api-key
    expect_livemode: true
    region: eu-west-1
  register: stripe_key

- name: Force-redeploy the API so it loads the new key
  svpms.incident_response.ecs_redeploy:
    cluster: svpms-prod
    service: svpms-api
  when: stripe_key is changed

- name: A JSON secret whose key field has another name, against the sandbox (key from SVPMS_NEW_STRIPE_API_KEY)
  svpms.incident_response.stripe_key_update:
    secret_id: "{{ svpms_stripe_key_secret_id }}"
    json_field: stripe_secret_key
    api_url: "{{ svpms_stripe_api_url }}"
    expect_livemode: "{{ svpms_stripe_livemode }}"
'''

RETURN = r'''
secret_id:
  description: The secret acted on.
  returned: always
  type: str
  sample: svpms/prod/api/stripe-api-key
format:
  description: How the secret holds the key - V(plain) (the value is the key) or V(json) (a field of a JSON object).
  returned: when the secret was read
  type: str
  sample: json
json_field:
  description: The JSON field that holds the key; null for a plain secret.
  returned: when the secret was read
  type: str
  sample: api_key
before:
  description: The secret before the task.
  returned: when the secret was read
  type: dict
  contains:
    current_version:
      description: Version id staged AWSCURRENT.
      type: str
    previous_version:
      description: Version id staged AWSPREVIOUS, or null.
      type: str
    key_hint:
      description: Prefix and last 4 characters of the key in AWSCURRENT.
      type: str
    livemode:
      description: Whether that key is a live key, from its prefix (null when the prefix is not a Stripe one).
      type: bool
  sample: {current_version: 0a9b..., previous_version: null, key_hint: sk_test_…0000, livemode: false}
after:
  description:
    - The secret after the task, read back from Secrets Manager. In check mode the planned state
      (RV(after.current_version) is null when a new version would be written).
  returned: when the secret was read
  type: dict
  contains:
    current_version:
      description: Version id staged AWSCURRENT.
      type: str
    previous_version:
      description: Version id staged AWSPREVIOUS.
      type: str
    key_hint:
      description: Prefix and last 4 characters of the key in AWSCURRENT.
      type: str
    livemode:
      description: Whether that key is a live key (Stripe's C(livemode) when it answered).
      type: bool
  sample: {current_version: 5e1c..., previous_version: 0a9b..., key_hint: sk_test_…1234, livemode: false}
new_key_hint:
  description: Prefix and last 4 characters of O(new_key).
  returned: always
  type: str
  sample: sk_test_…1234
key_type:
  description: V(secret), V(restricted), V(publishable) or V(unknown), from the prefix of O(new_key).
  returned: always
  type: str
  sample: secret
verified:
  description: Whether Stripe accepted O(new_key) (C(GET /v1/balance) answered HTTP 200).
  returned: always
  type: bool
  sample: true
key_status:
  description:
    - What Stripe said about O(new_key) - V(valid), V(invalid) (HTTP 401), V(revoked) (HTTP 401
      C(api_key_expired)), V(restricted) (HTTP 403), V(unknown) when Stripe could not tell, or null when it was not
      asked (the key's form was refused first).
  returned: always
  type: str
  sample: valid
new_version_id:
  description: Version id of the version that now holds the key (written or reused); null when nothing was written.
  returned: always
  type: str
plan:
  description: The steps, in order, that the task took (or would take in check mode). Empty when nothing changes.
  returned: when the secret was read
  type: list
  elements: str
done:
  description: The steps that completed (all of RV(plan) but the redeploy reminder on success, none in check mode).
  returned: when the secret was read
  type: list
  elements: str
reachable:
  description: Whether the service that failed (Secrets Manager or Stripe) answered.
  returned: on failure
  type: bool
error_kind:
  description:
    - Why the task failed - V(key_form), V(mode), V(secret_format), V(no_current), V(deleted), V(not_found),
      V(access_denied), V(unreachable), V(invalid_key), V(permission), V(rate_limited), V(server_error), V(timeout),
      V(tls), V(verify), ...
  returned: on failure
  type: str
http_status:
  description: HTTP status of Stripe's answer when the verification failed; null when nothing answered.
  returned: when the verification failed
  type: int
'''

import math  # noqa: E402
import re  # noqa: E402
import uuid  # noqa: E402

from ansible.module_utils.basic import env_fallback, missing_required_lib  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import secret_stages  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_api  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.stripe_key_secret import (  # noqa: E402
    SecretFormatError,
    SecretValue,
)
from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (  # noqa: E402
    AWSError,
    AWSModule,
)

CURRENT = secret_stages.STAGE_CURRENT
PREVIOUS = secret_stages.STAGE_PREVIOUS
PENDING = secret_stages.STAGE_PENDING
MIN_BODY_CHARS = 16             # real keys have ~100 characters after sk_live_
MAX_KEY_CHARS = 255
MASK = '********'
MIN_MASK_CHARS = 8              # shorter values are not registered as no_log (Ansible would mask words)
DOING = 'verifying the new key with GET /v1/balance'
_KEY_FORM = re.compile(r'^(sk|rk)_(live|test)_[A-Za-z0-9_]+$')


# --------------------------------------------------------------------------- pure helpers


def key_livemode(key):
    """True (live), False (test) or None (no Stripe prefix) from a key's prefix."""
    mode = stripe_api.key_kind(key)[1]
    return None if mode is None else mode == 'live'


def check_new_key(key, expect_livemode):
    """None when ``key`` has the form of a usable API key, else a message (never holding the key)."""
    if not key or not key.strip():
        return 'new_key is empty: pass new_key or set SVPMS_NEW_STRIPE_API_KEY'
    hint = stripe_api.key_hint(key.strip())
    if key != key.strip() or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return ('new_key contains whitespace or control characters (a stray newline from a file or a copy?); the '
                'key shown is %s' % hint)
    try:
        key.encode('ascii')
    except UnicodeEncodeError:
        return 'new_key contains non-ASCII characters; Stripe keys are ASCII (key %s)' % hint
    key_type, mode = stripe_api.key_kind(key)
    if key_type == 'publishable':
        return ('new_key %s is a publishable key (pk_): it cannot make server-side calls. Use the secret key (sk_) '
                'or a restricted key (rk_)' % hint)
    if key.startswith('whsec_'):
        return ('new_key %s is a webhook signing secret (whsec_), not an API key. Use the secret key (sk_) or a '
                'restricted key (rk_)' % hint)
    if key_type == 'unknown':
        return ('new_key %s does not look like a Stripe API key: it must start with sk_live_, sk_test_, rk_live_ '
                'or rk_test_' % hint)
    if len(key) > MAX_KEY_CHARS or not _KEY_FORM.match(key):
        return ('new_key %s is not a well-formed Stripe key (letters, digits and underscores after the prefix, at '
                'most %d characters)' % (hint, MAX_KEY_CHARS))
    body = key[len('%s_%s_' % (key[:2], mode)):]
    if len(body) < MIN_BODY_CHARS:
        return ('new_key %s is too short for a Stripe key (%d characters after the prefix, at least %d expected): '
                'truncated when copied?' % (hint, len(body), MIN_BODY_CHARS))
    if expect_livemode is not None and (mode == 'live') != expect_livemode:
        return mode_message(hint, mode == 'live', expect_livemode, 'its prefix')
    return None


def mode_message(hint, livemode, expect_livemode, source):
    if expect_livemode:
        return ('new_key %s is a TEST key (from %s) but expect_livemode=true: a production service using it would '
                'talk to the test account - no real payments, and no live webhook events' % (hint, source))
    return ('new_key %s is a LIVE key (from %s) but expect_livemode=false: this environment would act on real '
            'payments and customers. Use a test key here' % (hint, source))


def snapshot(by_stage, key, livemode):
    return dict(current_version=by_stage.get(CURRENT), previous_version=by_stage.get(PREVIOUS),
                key_hint=stripe_api.key_hint(key) if key else None, livemode=livemode)


def diff_text(state):
    return ''.join('%s: %s\n' % (k, state[k]) for k in ('current_version', 'previous_version', 'key_hint', 'livemode'))


def refusal(err, hint, secret_id):
    """(key_status, message) for a failed verification (pure; the message holds only the hint)."""
    status = stripe_api.key_status_from_error(err)
    http = 'HTTP %s%s' % (err.status, ' %s' % err.code if err.code else '') if err.status else err.kind
    nothing = 'Nothing was written to %s.' % secret_id
    if status == 'revoked':
        text = ('Stripe refuses the new key %s: it is expired or revoked (%s). %s Roll a new secret key in the Stripe '
                'Dashboard and pass that one.' % (hint, http, nothing))
    elif status == 'invalid':
        text = ('Stripe refuses the new key %s as invalid (%s): mistyped, from another account or mode, or already '
                'rolled. %s Copy the current key from the Stripe Dashboard.' % (hint, http, nothing))
    elif status == 'restricted':
        text = ('Stripe answers %s for the new key %s: a restricted key without permission to read the balance, so '
                'it cannot be verified. %s Grant it Balance read in the Stripe Dashboard, or use the secret key.'
                % (http, hint, nothing))
    else:
        text = ('Could not verify the new key %s with Stripe (%s). %s Retry when the Stripe API answers.'
                % (hint, err.describe(), nothing))
    return status, text


# --------------------------------------------------------------------------- the task


class Update(secret_stages.StageSteps):
    def __init__(self, module, sm, secret_id, new_key):
        self.module = module
        self.sm = sm
        self.secret_id = secret_id
        self.keys = [new_key]          # shown only as hints
        self.values = []               # never shown at all
        self.result = dict(changed=False, secret_id=secret_id, new_key_hint=stripe_api.key_hint(new_key),
                           key_type=stripe_api.key_kind(new_key)[0], verified=False, key_status=None,
                           new_version_id=None)

    def remember(self, values, key=None):
        """Keep values that must never be printed; a key is shown as its hint, anything else masked.

        Values shorter than MIN_MASK_CHARS are left alone: replacing, say, "test" everywhere would mangle the
        output (and no Stripe key or secret value is that short).
        """
        if key and len(key) >= MIN_MASK_CHARS:
            self.keys.append(key)
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_MASK_CHARS:
                self.values.append(value)
                self.module.module.no_log_values.add(value)

    def clean(self, data):
        """``data`` (a result or a text) with every key made a hint and every other secret value masked."""
        for key in sorted(set(k for k in self.keys if k), key=len, reverse=True):
            data = stripe_api.redact_data(data, key)
        for value in sorted(set(self.values), key=len, reverse=True):
            data = _mask(data, value)
        return data

    def fail(self, msg, **extra):
        out = dict(self.result)
        out.update(extra)
        out['msg'] = msg
        out.setdefault('reachable', True)
        self.module.fail_json(**self.clean(out))

    def exit(self):
        self.module.exit_json(**self.clean(self.result))

    def state_note(self):
        done = self.result.get('done')
        return '(steps done: %s)' % '; '.join(done) if done else '(nothing written)'

    def stages(self):
        try:
            desc = self.sm.call('describe_secret', SecretId=self.secret_id)
        except AWSError as err:
            self.fail_aws(err, 'Could not read secret %s %s' % (self.secret_id, self.state_note()),
                          done=self.result.get('done'))
        if desc.get('DeletedDate'):
            self.fail('Secret %s is scheduled for deletion; restore it first (nothing written)' % self.secret_id,
                      error_kind='deleted')
        return secret_stages.stage_versions(desc.get('VersionIdsToStages'))

    def read(self, version_id, stage, required=True):
        """The SecretString of a version (registered as sensitive); None for a binary one when not required."""
        try:
            resp = self.sm.call('get_secret_value', SecretId=self.secret_id, VersionId=version_id)
        except AWSError as err:
            self.fail_aws(err, 'Could not read the %s version %s of %s %s'
                          % (stage, version_id, self.secret_id, self.state_note()), done=self.result.get('done'))
        text = resp.get('SecretString')
        if text is None and not required:
            return None
        if text is None:
            self.fail('The %s version %s of %s holds a binary value (SecretBinary); this module keeps the key in a '
                      'text secret - a plain key or a JSON object (nothing written)'
                      % (stage, version_id, self.secret_id), error_kind='secret_format')
        self.remember([text, text.strip()])
        return text


def _mask(data, value):
    if isinstance(data, dict):
        return dict((k, _mask(v, value)) for k, v in data.items())
    if isinstance(data, (list, tuple)):
        return [_mask(v, value) for v in data]
    if isinstance(data, str):
        return data.replace(value, MASK)
    return data


def stripe_errors(params):
    errors = []
    error = stripe_api.check_url_option(params.get('api_url'), 'api_url')
    if error:
        errors.append(error)
    timeout = params.get('timeout')
    if timeout is None or math.isnan(timeout) or not (0 < timeout <= stripe_api.MAX_TIMEOUT):
        errors.append('timeout must be more than 0 and at most %g seconds, got %s' % (stripe_api.MAX_TIMEOUT, timeout))
    return errors


def main():
    stripe_spec = stripe_api.stripe_argument_spec()
    del stripe_spec['api_key']
    argument_spec = dict(
        new_key=dict(type='str', required=True, no_log=True, fallback=(env_fallback, ['SVPMS_NEW_STRIPE_API_KEY'])),
        secret_id=dict(type='str', required=True),
        json_field=dict(type='str'),
        expect_livemode=dict(type='bool'),
    )
    argument_spec.update(stripe_spec)
    module = AWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if not stripe_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=str(stripe_api.REQUESTS_IMPORT_ERROR))
    new_key = params['new_key'] or ''
    secret_id = (params['secret_id'] or '').strip()
    json_field = (params['json_field'] or '').strip() or None
    expect = params['expect_livemode']

    upd = Update(module, None, secret_id, new_key)
    errors = []
    if not secret_id:
        errors.append('secret_id must be a non-empty secret name or ARN')
    if params['json_field'] is not None and not json_field:
        errors.append('json_field must not be empty (leave it unset to detect api_key, secret_key or key)')
    errors.extend(stripe_errors(params))
    key_error = check_new_key(new_key, expect)
    if errors:
        upd.fail('; '.join(errors + ([key_error] if key_error else [])), error_kind='parameters', reachable=None)
    if key_error:
        upd.fail('%s (nothing written, Stripe not called)' % key_error,
                 error_kind='mode' if 'expect_livemode' in key_error else 'key_form', reachable=None)
    hint = stripe_api.key_hint(new_key)
    new_livemode = key_livemode(new_key)

    # 1. Read the secret (read-only).
    upd.sm = module.client('secretsmanager')
    by_stage = upd.stages()
    cur_vid = by_stage.get(CURRENT)
    prev_vid = by_stage.get(PREVIOUS)
    pend_vid = by_stage.get(PENDING)
    if cur_vid is None:
        upd.fail('Secret %s has no AWSCURRENT version; create the secret with a value first (nothing written)'
                 % secret_id, error_kind='no_current')
    try:
        current = SecretValue(upd.read(cur_vid, CURRENT), json_field)
    except SecretFormatError as exc:
        upd.fail('The AWSCURRENT value of %s cannot be updated: %s (nothing written)' % (secret_id, exc),
                 error_kind='secret_format')
    upd.remember(current.sensitive(), key=current.key)
    old_livemode = key_livemode(current.key)
    before = snapshot(by_stage, current.key, old_livemode)
    upd.result.update(format=current.format, json_field=current.field, before=before, plan=[], done=[])
    if expect is None and old_livemode is not None and old_livemode != new_livemode:
        upd.fail('The key in AWSCURRENT (%s) is a %s key and new_key %s a %s key: switching the service to the other '
                 'mode is refused unless expect_livemode=%s says it is meant (nothing written, Stripe not called)'
                 % (before['key_hint'], 'live' if old_livemode else 'test', hint,
                    'live' if new_livemode else 'test', str(new_livemode).lower()), error_kind='mode')

    # 2. Verify the new key with Stripe before anything is written (also in check mode and when nothing changes).
    client = stripe_api.StripeClient(new_key, api_url=params['api_url'], timeout=params['timeout'],
                                     validate_certs=params['validate_certs'])
    try:
        balance = client.get('/v1/balance')
    except stripe_api.StripeError as err:
        status, text = refusal(err, hint, secret_id)
        upd.result['key_status'] = status
        upd.fail(client.clean(text), error_kind=err.kind, error_code=err.code, http_status=err.status,
                 reachable=err.reachable)
    upd.result.update(verified=True, key_status='valid')
    if isinstance(balance.get('livemode'), bool):
        new_livemode = balance['livemode']
    if expect is not None and new_livemode != expect:
        upd.fail('%s (nothing written)' % mode_message(hint, new_livemode, expect, "Stripe's answer"),
                 error_kind='mode')

    # 3. Plan.
    new_value = current.with_key(new_key)
    upd.remember([new_value])
    if current.key == new_key:
        upd.result['after'] = dict(before, livemode=new_livemode)
        upd.exit()

    reuse = None
    if pend_vid and pend_vid not in (cur_vid, prev_vid):
        if upd.read(pend_vid, PENDING, required=False) == new_value:
            reuse = pend_vid
    new_vid = reuse or (None if module.check_mode else str(uuid.uuid4()))
    label = new_vid or '<new version>'
    if reuse:
        step_put = 'reuse version %s, already staged AWSPENDING with the new key %s (left by an interrupted run)' % (
            reuse, hint)
    else:
        step_put = 'store the new key %s (%s%s) as version %s staged AWSPENDING' % (
            hint, current.format, ' field %s' % current.field if current.field else '', label)
        if pend_vid and pend_vid != cur_vid:
            step_put += ' (AWSPENDING leaves version %s, an unfinished update)' % pend_vid
    step_move = 'move AWSCURRENT from version %s to %s (Secrets Manager stages %s AWSPREVIOUS%s)' % (
        cur_vid, label, cur_vid,
        '; version %s loses AWSPREVIOUS' % prev_vid if prev_vid and prev_vid != cur_vid else '')
    step_unpend = 'remove AWSPENDING from version %s' % label
    plan = [step_put, step_move, step_unpend,
            'then force-redeploy the services that read this secret (not done by this module)']
    after = dict(current_version=new_vid, previous_version=cur_vid, key_hint=hint, livemode=new_livemode)
    done = []
    upd.result.update(changed=True, after=after, plan=plan, done=done)
    if module.module._diff:
        upd.result['diff'] = dict(before_header='secretsmanager:%s' % secret_id,
                                  after_header='secretsmanager:%s' % secret_id,
                                  before=diff_text(before), after=diff_text(after))
    if module.check_mode:
        upd.exit()

    # 4. Write: new version staged AWSPENDING, then AWSCURRENT moves to it, then AWSPENDING is removed.
    if not reuse:
        try:
            upd.sm.call('put_secret_value', SecretId=secret_id, ClientRequestToken=new_vid, SecretString=new_value,
                        VersionStages=[PENDING])
        except AWSError as err:
            upd.fail_aws(err, 'Could not store the new key in %s (nothing changed)' % secret_id, done=done)
    done.append(step_put)
    upd.result['new_version_id'] = new_vid
    upd.move(CURRENT, new_vid, cur_vid, done, step_move)
    upd.move(PENDING, None, new_vid, done, step_unpend)

    # 5. Read back: AWSCURRENT on the new version, holding the new value; the old current AWSPREVIOUS.
    now = upd.stages()
    if now.get(CURRENT) != new_vid:
        upd.fail('After the update, AWSCURRENT of %s is on version %s, not %s as planned; check the secret (steps '
                 'done: %s)' % (secret_id, now.get(CURRENT), new_vid, '; '.join(done)), error_kind='verify', done=done)
    if now.get(PREVIOUS) != cur_vid:
        upd.move(PREVIOUS, cur_vid, now.get(PREVIOUS), done, 'stage version %s AWSPREVIOUS' % cur_vid)
        now = upd.stages()
    if upd.read(new_vid, CURRENT) != new_value:
        upd.fail('After the update, the AWSCURRENT version %s of %s does not hold the value written; check the secret '
                 '(steps done: %s)' % (new_vid, secret_id, '; '.join(done)), error_kind='verify', done=done)
    upd.result['after'] = snapshot(now, new_key, new_livemode)
    if 'diff' in upd.result:
        upd.result['diff']['after'] = diff_text(upd.result['after'])
    upd.exit()


if __name__ == '__main__':
    main()
