#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: stripe_account_info
short_description: Check a Stripe API key and the Stripe API - valid, revoked or restricted, mode, latency
version_added: 1.0.0
description:
  - First step of the Stripe webhook failures runbook. Calls C(GET /v1/balance) with the key and reports whether
    Stripe accepts it (RV(key_status)), whether the Stripe API is reachable and how fast it answered, whether the
    key is a live or test key and, best effort, what Stripe's status page says.
  - HTTP 200 means the key is V(valid). HTTP 401 means V(invalid), or V(revoked) when Stripe's error code is
    C(api_key_expired) (a rolled or deleted key). HTTP 403 means V(restricted) - a restricted key without the
    permission to read the balance.
  - An unreachable, slow or failing Stripe is a result (RV(reachable), RV(error_kind), RV(problems)), not a task
    failure. Invalid options fail the task with a message naming the option.
  - The key is never returned, logged or put in a message; only RV(key_hint) (for example C(sk_test_…1234)).
  - To check the key B(the service) uses without it ever being a task variable, give O(key_secret_id) - the AWS
    Secrets Manager secret the service reads it from - instead of O(api_key). The module reads the version staged
    C(AWSCURRENT) itself, registers the value C(no_log) at once and shows only RV(key_hint). A secret that cannot
    be read (not found, access denied, Secrets Manager unreachable, a value without a key) is a finding in
    RV(problems) with RV(key_status=unknown) and RV(error_kind=key_secret), not a task failure; Stripe is then not
    called.
author: SVPMS Platform Team (@svpms)
options:
  api_key:
    description:
      - Stripe secret (C(sk_live_...), C(sk_test_...)) or restricted (C(rk_live_...), C(rk_test_...)) API key -
        the key to check.
      - If neither this nor O(key_secret_id) is set, the E(STRIPE_API_KEY) environment variable is used.
      - Mutually exclusive with O(key_secret_id).
    type: str
  key_secret_id:
    description:
      - Name or ARN of the AWS Secrets Manager secret the service reads its Stripe key from, for example
        V(svpms/prod/api/stripe-api-key). The key is read from the version staged C(AWSCURRENT) and checked.
      - The value may be the key itself (a plain string) or a JSON object with the key in one field (see
        O(key_json_field)) - the formats M(svpms.incident_response.stripe_key_update) reads and writes.
      - Needs the AWS connection options (O(region), credentials, ...); they are not used without it.
      - Mutually exclusive with O(api_key). When it is set, E(STRIPE_API_KEY) is not used.
    type: str
  key_json_field:
    description:
      - For a O(key_secret_id) whose value is a JSON object - the field that holds the key. The field must exist.
      - Not set - the first of V(api_key), V(secret_key), V(key) present in the object is used (when several are
        present, the one that holds a C(sk_)/C(rk_) key; name the field when that is ambiguous).
      - Must not be set for a secret whose value is a plain string, nor without O(key_secret_id).
    type: str
  api_url:
    description:
      - Base URL of the Stripe API. Must be C(https://), except for a loopback test server (C(http://127.0.0.1:PORT)).
    type: str
    default: https://api.stripe.com
  timeout:
    description:
      - Seconds for each HTTP attempt (connecting, each read and the whole answer), more than 0 and at most 60.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the TLS certificate of O(api_url) and O(status_url). Set to V(false) only for a test server.
    type: bool
    default: true
  expect_livemode:
    description:
      - The mode the key must be in - V(true) for live (production), V(false) for test. A mismatch is reported in
        RV(problems).
      - Not set - the mode is reported, not judged.
    type: bool
  status_url:
    description:
      - URL of Stripe's status summary (the JSON the Stripe CLI reads; Stripe documents no status API), read best
        effort with a timeout of at most 5 seconds and without the API key. A failure to read it is a note in
        RV(notes), never a failure or a problem.
      - Set to an empty string to skip it (for example on a host without internet access).
    type: str
    default: https://status.stripe.com/current
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - Retries - HTTP 429, HTTP 5xx and connection errors are retried up to 3 times with full-jitter exponential
    backoff (at most 0.5, 1, 2 seconds), or the wait a C(Retry-After) header asks for when it is at most 10 seconds;
    a longer ask is not waited for. The call takes at most 4 x O(timeout) + 30 seconds, plus the status page read
    (at most 5 seconds).
  - RV(latency_ms) is the duration of the last attempt of the C(GET /v1/balance) call; RV(attempts) says how many
    there were.
  - The C(Stripe-Version) header is pinned to C(2024-06-20). Redirects are not followed, so the key never goes to
    another host.
  - IAM actions used with O(key_secret_id) - C(secretsmanager:GetSecretValue) (and C(kms:Decrypt) on the secret's
    key). Nothing is written. The AWS call is bounded by O(connect_timeout), O(read_timeout) and O(max_attempts).
requirements:
  - requests
seealso:
  - module: svpms.incident_response.stripe_webhook_info
  - module: svpms.incident_response.stripe_key_update
  - name: Stripe API keys
    description: Secret, restricted and publishable keys, live and test mode.
    link: https://docs.stripe.com/keys
  - name: Stripe API errors
    description: HTTP status codes and the error object.
    link: https://docs.stripe.com/api/errors
'''

EXAMPLES = r'''
- name: Is the key the service uses still valid, and is Stripe up? (read from its secret, never a variable)
  svpms.incident_response.stripe_account_info:
    key_secret_id: svpms/prod/api/stripe-api-key
    region: eu-west-1
    expect_livemode: true
  register: stripe_account

- name: Roll the key when Stripe says it is revoked
  ansible.builtin.debug:
    msg: "The service's key {{ stripe_account.key_hint }} is revoked - roll it, then run stripe_key_update"
  when: stripe_account.key_status == 'revoked'

- name: A JSON secret whose key field has another name
  svpms.incident_response.stripe_account_info:
    key_secret_id: svpms/prod/api/payments-config
    key_json_field: stripe_secret_key
    region: eu-west-1

- name: A key passed by the caller (for example the operator's own key from a vault)
  svpms.incident_response.stripe_account_info:
    api_key: "{{ stripe_api_key }}"
    expect_livemode: true

- name: Tell the on-call what is wrong
  ansible.builtin.debug:
    msg: "{{ stripe_account.problems }}"
  when: stripe_account.problems | length > 0

- name: Against the sandbox stand-in, without the public status page
  svpms.incident_response.stripe_account_info:
    api_key: "{{ svpms_stripe_api_key }}"
    api_url: "{{ svpms_stripe_api_url }}"
    expect_livemode: "{{ svpms_stripe_livemode }}"
    status_url: ""
'''

RETURN = r'''
api_url:
  description: The API base URL called (without query string).
  returned: always
  type: str
  sample: https://api.stripe.com
key_source:
  description:
    - Where the key came from - V(parameter) (O(api_key)), V(environment) (E(STRIPE_API_KEY)) or
      C(secret:<key_secret_id>) (for example V(secret:svpms/prod/api/stripe-api-key)).
  returned: always
  type: str
  sample: secret:svpms/prod/api/stripe-api-key
key_secret_version_id:
  description:
    - The version of O(key_secret_id) staged C(AWSCURRENT) that the key was read from; null when the secret could
      not be read.
  returned: when O(key_secret_id) is set
  type: str
  sample: 0a9b6c1e-5d2f-4e8a-9b7c-3f1d2e4a5b6c
key_secret_format:
  description:
    - How the secret holds the key - V(plain) (the value is the key) or V(json) (a field of a JSON object); null
      when the value could not be read or parsed.
  returned: when O(key_secret_id) is set
  type: str
  sample: json
key_json_field:
  description: The JSON field the key was read from; null for a plain secret or when it could not be read.
  returned: when O(key_secret_id) is set
  type: str
  sample: api_key
key_secret_error_kind:
  description:
    - Why the key could not be taken from O(key_secret_id) - the AWS error kind V(not_found), V(access_denied),
      V(unreachable) (Secrets Manager), V(configuration) (region, credentials, endpoint) or V(error) (for example a
      secret scheduled for deletion), or V(secret_format) (the value holds no usable key). Null when it was read.
  returned: when O(key_secret_id) is set
  type: str
  sample: not_found
key_hint:
  description:
    - The key's prefix and last 4 characters - never more of it. Null when the key could not be read from
      O(key_secret_id).
  returned: always
  type: str
  sample: sk_live_…4242
key_type:
  description: V(secret), V(restricted), V(publishable) or V(unknown), from the key's prefix.
  returned: always
  type: str
  sample: secret
key_mode:
  description: V(live) or V(test) from the key's prefix; null when the prefix is not a Stripe one or the key is unknown.
  returned: always
  type: str
  sample: live
livemode:
  description:
    - Whether the key works on live data - the balance's C(livemode) when Stripe answered, else from the prefix
      (null when unknown).
  returned: always
  type: bool
  sample: true
key_status:
  description:
    - V(valid) (HTTP 200), V(invalid) (HTTP 401), V(revoked) (HTTP 401 with code C(api_key_expired)),
      V(restricted) (HTTP 403 - the key lacks the permission), or V(unknown) when Stripe could not tell (unreachable,
      rate limited, failing) or was not asked (the key could not be read from O(key_secret_id)).
  returned: always
  type: str
  sample: revoked
reachable:
  description:
    - Whether the Stripe API answered over HTTP (whatever the status). About Stripe only, never Secrets Manager -
      null when Stripe was not called because the key could not be read from O(key_secret_id).
  returned: always
  type: bool
  sample: true
latency_ms:
  description: Duration of the last attempt of C(GET /v1/balance), in milliseconds; null when nothing answered.
  returned: always
  type: float
  sample: 182.4
attempts:
  description: HTTP attempts made for C(GET /v1/balance) (retries of 429, 5xx and connection errors included).
  returned: always
  type: int
  sample: 1
http_status:
  description: HTTP status of the last answer; null when nothing answered.
  returned: always
  type: int
  sample: 401
error_kind:
  description:
    - Why the call failed - V(invalid_key), V(permission), V(not_found), V(rate_limited), V(server_error),
      V(unreachable), V(timeout), V(tls), V(bad_request) or V(api_error). Null when it succeeded.
    - V(key_secret) when the key could not be taken from O(key_secret_id) and Stripe was not called
      (RV(key_secret_error_kind) says why).
  returned: always
  type: str
  sample: invalid_key
error_code:
  description: Stripe's error C(code), for example V(api_key_expired); null when there is none.
  returned: always
  type: str
  sample: api_key_expired
msg:
  description:
    - The failed call (or the secret that could not be read), in one sentence with what to check. Never holds the
      key.
  returned: when the call failed or the key could not be read from O(key_secret_id)
  type: str
stripe_status:
  description: What Stripe's status page says (best effort).
  returned: when O(status_url) is not empty
  type: dict
  contains:
    url:
      description: The URL read.
      type: str
    reachable:
      description: Whether it answered.
      type: bool
    largestatus:
      description: Overall status - V(up), V(degraded) or V(down); null when unknown.
      type: str
    message:
      description: Stripe's summary sentence.
      type: str
    statuses:
      description: Per component (C(api), C(dashboard), C(stripejs), C(checkoutjs)) - V(up), V(degraded), V(down).
      type: dict
    time:
      description: When Stripe last updated it.
      type: str
    error:
      description: Why it could not be read; null when it was.
      type: str
problems:
  description: Sentences an on-call engineer reads - what is wrong and what to do. Empty when all is well.
  returned: always
  type: list
  elements: str
  sample:
    - Stripe says the API key sk_live_…4242 is expired or revoked (HTTP 401 api_key_expired) while checking the
      key with GET /v1/balance; every call made with it fails. Roll a new secret key in the Stripe Dashboard and
      store it where the service and this runbook read it.
notes:
  description: Things worth knowing that are not problems (the status page could not be read, the mode is unknown).
  returned: always
  type: list
  elements: str
'''

import math  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import missing_required_lib  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import aws  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_api  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_key_secret  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.notify import safe_url  # noqa: E402

DOING = 'checking the key with GET /v1/balance'
ENV_KEY = 'STRIPE_API_KEY'
MIN_NO_LOG_CHARS = 8            # shorter values are not registered as no_log (Ansible would mask words)


def mode_problems(key_type, key_mode, livemode, expect_livemode, hint):
    """Problems and notes about the kind and mode of the key (pure)."""
    problems = []
    notes = []
    if key_type == 'publishable':
        problems.append('The key %s is a publishable key: it cannot make server-side calls. The service needs a '
                        'secret (sk_) or restricted (rk_) key.' % hint)
    elif key_type == 'unknown':
        problems.append('The key %s does not look like a Stripe API key (sk_live_, sk_test_, rk_live_, rk_test_): '
                        'check what the service is configured with.' % hint)
    if expect_livemode is not None:
        if livemode is None:
            notes.append('The mode of the key %s is unknown, so expect_livemode=%s could not be checked.'
                         % (hint, str(expect_livemode).lower()))
        elif livemode != expect_livemode:
            if expect_livemode:
                problems.append('The key %s is a test-mode key but expect_livemode=true: a production service '
                                'using it talks to the test account - no real payments, and live webhook events '
                                'never reach it.' % hint)
            else:
                problems.append('The key %s is a LIVE key but expect_livemode=false: this environment would act '
                                'on real payments and customers. Use a test key here.' % hint)
    return problems, notes


def status_findings(status):
    """Problems and notes from the status page result (pure)."""
    problems = []
    notes = []
    if status['error'] or not status['largestatus']:
        notes.append("Stripe's status page %s could not be read (%s); it is best effort only - check "
                     'status.stripe.com by hand if Stripe is suspected.'
                     % (status['url'], status['error'] or 'no status in the answer'))
    elif status['largestatus'] != 'up':
        parts = ', '.join('%s %s' % (k, v) for k, v in sorted((status.get('statuses') or {}).items()) if v != 'up')
        problems.append("Stripe's status page reports %s%s%s: an incident at Stripe may explain failures; follow "
                        'status.stripe.com before changing our side.'
                        % (status['largestatus'], ' (%s)' % parts if parts else '',
                           ' - %s' % status['message'] if status.get('message') else ''))
    return problems, notes


def option_errors(params, key, source):
    """Messages for invalid options (never holding a key); ``key``/``source`` as ``resolve_key`` gives them."""
    errors = []
    secret_id = params['key_secret_id']
    if params['api_key'] is not None and secret_id is not None:
        errors.append('api_key and key_secret_id are mutually exclusive: pass either the key itself (api_key) or '
                      'the Secrets Manager secret the service reads it from (key_secret_id), not both')
    elif secret_id is not None:
        if not secret_id.strip():
            errors.append('key_secret_id must be a non-empty secret name or ARN')
        if params['key_json_field'] is not None and not params['key_json_field'].strip():
            errors.append('key_json_field must not be empty (leave it unset to detect api_key, secret_key or key)')
    else:
        if params['key_json_field'] is not None:
            errors.append('key_json_field applies only with key_secret_id (the field of the secret that holds the '
                          'key)')
        if key is None:
            errors.append('api_key or key_secret_id is required: pass the key (api_key, or set %s) or the Secrets '
                          'Manager secret the service reads it from (key_secret_id)' % ENV_KEY)
        else:
            error = stripe_api.check_key(key)
            if error:
                errors.append(error if source == 'parameter' else error.replace('api_key', ENV_KEY, 1))
    error = stripe_api.check_url_option(params['api_url'], 'api_url')
    if error:
        errors.append(error)
    timeout = params['timeout']
    if timeout is None or math.isnan(timeout) or not (0 < timeout <= stripe_api.MAX_TIMEOUT):
        errors.append('timeout must be more than 0 and at most %g seconds, got %s' % (stripe_api.MAX_TIMEOUT, timeout))
    status_url = (params['status_url'] or '').strip()
    if status_url:
        error = stripe_api.check_url_option(status_url, 'status_url')
        if error:
            errors.append(error)
    return errors


def resolve_key(params, environ):
    """``(key, source)`` for a key given directly: the api_key option, else STRIPE_API_KEY; ``(None, None)`` when
    the key comes from key_secret_id (or there is none)."""
    if params['key_secret_id'] is not None:
        return None, None
    if params['api_key'] is not None:
        return params['api_key'], 'parameter'
    if environ.get(ENV_KEY) is not None:
        return environ[ENV_KEY], 'environment'
    return None, None


def secret_problem(secret_id, kind, detail):
    """The sentence for a key that could not be taken from ``secret_id`` (``detail`` never holds a value; for an
    AWS error it is the error's description, which says what to check)."""
    advice = ' Check what the secret holds: the service reads its key from it.' if kind == 'secret_format' else ''
    return ('Could not read the Stripe key the service uses from Secrets Manager secret %s (%s): %s. The key was not '
            'checked and Stripe was not called.%s' % (secret_id, kind, detail.rstrip('.'), advice))


class Run(object):
    """Values that must never be shown: registered no_log as soon as they are known, and taken out of the result on
    the way out (a key becomes its hint, any other value - a whole secret value - a mask)."""

    def __init__(self, module):
        self.module = module
        self.keys = set()
        self.values = set()

    def keep(self, value, key=False):
        """Register ``value`` no_log at once (from MIN_NO_LOG_CHARS characters: shorter ones would mask ordinary
        words, and are still taken out by ``clean``)."""
        if isinstance(value, str) and value:
            (self.keys if key else self.values).add(value)
            if len(value) >= MIN_NO_LOG_CHARS:
                self.module.no_log_values.add(value)

    def clean(self, data):
        for value in sorted(self.keys | self.values, key=len, reverse=True):
            if value in self.keys:
                data = stripe_api.redact_data(data, value)
            else:
                data = stripe_key_secret.mask_data(data, value)
        return data


def read_secret_key(module, run, secret_id, json_field, result):
    """The key held by ``secret_id`` (AWSCURRENT), or None with the finding put in ``result``."""
    params = module.params
    result.update(key_secret_version_id=None, key_secret_format=None, key_json_field=None,
                  key_secret_error_kind=None)
    try:
        try:
            sm = aws.build_client(params, 'secretsmanager')
        except (aws.BotoCoreError, ValueError) as exc:    # no region, a bad endpoint_url or profile
            raise aws.classify(exc, 'secretsmanager', 'create_client', params.get('endpoint_url'), 1)
        value, version_id = stripe_key_secret.read_key(sm, secret_id, run.keep, json_field=json_field,
                                                       option='key_json_field')
    except aws.AWSError as err:
        kind, detail = err.kind, err.describe()
    except stripe_key_secret.SecretFormatError as exc:
        result['key_secret_version_id'] = exc.version_id
        kind, detail = 'secret_format', 'its AWSCURRENT version %s is not usable: %s' % (exc.version_id, exc)
    else:
        result.update(key_secret_version_id=version_id, key_secret_format=value.format, key_json_field=value.field)
        key = value.key
        if not key.strip():
            kind, detail = 'secret_format', 'its AWSCURRENT version %s holds an empty key' % version_id
        else:
            error = stripe_api.check_key(key)
            if not error:
                if value.format == 'plain' and value.text != key:
                    result['notes'].append(
                        'The value of %s has whitespace around the key (a stray newline?); it was checked without '
                        'it - a service that does not strip it sends a broken key.' % secret_id)
                return key
            kind = 'secret_format'
            detail = 'the key in its AWSCURRENT version %s%s cannot be sent to Stripe as it is: it %s' % (
                version_id, ' (field %s)' % value.field if value.field else '', error.replace('api_key ', '', 1))
    problem = secret_problem(secret_id, kind, detail)
    result.update(key_secret_error_kind=kind, error_kind='key_secret', msg=problem, reachable=None)
    result['problems'].append(problem)
    return None


def main():
    argument_spec = stripe_api.stripe_argument_spec()
    # Not required, no fallback: the key may come from key_secret_id instead, and STRIPE_API_KEY is read here only
    # when neither option is set (a fallback would make it clash with key_secret_id).
    argument_spec['api_key'] = dict(type='str', no_log=True)
    argument_spec.update(
        key_secret_id=dict(type='str'),
        key_json_field=dict(type='str', no_log=False),   # a field name, not a secret
        expect_livemode=dict(type='bool'),
        status_url=dict(type='str', default=stripe_api.DEFAULT_STATUS_URL),
    )
    aws_module = aws.AWSModule(argument_spec=argument_spec, supports_check_mode=True)
    module = aws_module.module
    run = Run(module)
    params = module.params
    key, source = resolve_key(params, os.environ)
    run.keep(key, key=True)
    if not stripe_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=str(stripe_api.REQUESTS_IMPORT_ERROR))
    errors = option_errors(params, key, source)
    if errors:
        module.fail_json(**run.clean(dict(msg='; '.join(errors))))

    status_url = (params['status_url'] or '').strip()
    result = dict(changed=False, api_url=safe_url(params['api_url']), key_source=source, key_hint=None,
                  key_type='unknown', key_mode=None, livemode=None, key_status='unknown', reachable=False,
                  latency_ms=None, attempts=0, http_status=None, error_kind=None, error_code=None, problems=[],
                  notes=[])

    if params['key_secret_id'] is not None:
        secret_id = params['key_secret_id'].strip()
        result['key_source'] = 'secret:%s' % secret_id
        if os.environ.get(ENV_KEY) is not None:
            result['notes'].append('%s is set on this host but not used: the key was read from key_secret_id.'
                                   % ENV_KEY)
        key = read_secret_key(module, run, secret_id, (params['key_json_field'] or '').strip() or None, result)

    if key is not None:
        check_with_stripe(params, key, result)

    if status_url:
        status = stripe_api.fetch_status(status_url, params['timeout'], params['validate_certs'])
        result['stripe_status'] = status
        problems, notes = status_findings(status)
        result['problems'].extend(problems)
        result['notes'].extend(notes)

    module.exit_json(**run.clean(result))


def check_with_stripe(params, key, result):
    """``GET /v1/balance`` with ``key``: key_status, reachability, latency and the mode problems into ``result``."""
    hint = stripe_api.key_hint(key)
    key_type, key_mode = stripe_api.key_kind(key)
    result.update(key_hint=hint, key_type=key_type, key_mode=key_mode,
                  livemode=None if key_mode is None else key_mode == 'live')
    client = stripe_api.StripeClient(key, api_url=params['api_url'], timeout=params['timeout'],
                                     validate_certs=params['validate_certs'])
    try:
        balance = client.get('/v1/balance')
        result.update(key_status='valid', reachable=True, http_status=client.last['status'])
        if isinstance(balance.get('livemode'), bool):
            result['livemode'] = balance['livemode']
    except stripe_api.StripeError as err:
        result.update(err.to_result())
        result['key_status'] = stripe_api.key_status_from_error(err)
        result['msg'] = client.clean(err.describe())
        result['problems'].append(client.clean(stripe_api.error_problem(err, hint, DOING)))
    result['latency_ms'] = client.last.get('latency_ms') if result['reachable'] else None
    result['attempts'] = client.last.get('attempts', 0)

    problems, notes = mode_problems(key_type, key_mode, result['livemode'], params['expect_livemode'], hint)
    result['problems'].extend(problems)
    result['notes'].extend(notes)


if __name__ == '__main__':
    main()
