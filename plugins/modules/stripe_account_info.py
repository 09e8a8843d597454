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
author: SVPMS Platform Team (@svpms)
options:
  api_key:
    description:
      - Stripe secret (C(sk_live_...), C(sk_test_...)) or restricted (C(rk_live_...), C(rk_test_...)) API key -
        the key to check, usually the one the service uses.
      - If not set, the E(STRIPE_API_KEY) environment variable is used.
    type: str
    required: true
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
requirements:
  - requests
seealso:
  - module: svpms.incident_response.stripe_webhook_info
  - name: Stripe API keys
    description: Secret, restricted and publishable keys, live and test mode.
    link: https://docs.stripe.com/keys
  - name: Stripe API errors
    description: HTTP status codes and the error object.
    link: https://docs.stripe.com/api/errors
'''

EXAMPLES = r'''
- name: Is the key the service uses still valid, and is Stripe up?
  svpms.incident_response.stripe_account_info:
    api_key: "{{ stripe_api_key }}"
    expect_livemode: true
  register: stripe_account

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
key_hint:
  description: The key's prefix and last 4 characters - never more of it.
  returned: always
  type: str
  sample: sk_live_…4242
key_type:
  description: V(secret), V(restricted), V(publishable) or V(unknown), from the key's prefix.
  returned: always
  type: str
  sample: secret
key_mode:
  description: V(live) or V(test) from the key's prefix; null when the prefix is not a Stripe one.
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
      rate limited, failing).
  returned: always
  type: str
  sample: revoked
reachable:
  description: Whether the Stripe API answered over HTTP (whatever the status).
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
  returned: always
  type: str
  sample: invalid_key
error_code:
  description: Stripe's error C(code), for example V(api_key_expired); null when there is none.
  returned: always
  type: str
  sample: api_key_expired
msg:
  description: The failed call, in one sentence with what to check. Never holds the key.
  returned: when the call failed
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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_api  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.notify import safe_url  # noqa: E402

DOING = 'checking the key with GET /v1/balance'


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


def main():
    argument_spec = stripe_api.stripe_argument_spec()
    argument_spec.update(
        expect_livemode=dict(type='bool'),
        status_url=dict(type='str', default=stripe_api.DEFAULT_STATUS_URL),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not stripe_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=str(stripe_api.REQUESTS_IMPORT_ERROR))
    params = module.params
    errors = stripe_api.check_params(params)
    status_url = (params['status_url'] or '').strip()
    if status_url:
        error = stripe_api.check_url_option(status_url, 'status_url')
        if error:
            errors.append(error)
    if errors:
        module.fail_json(msg='; '.join(errors))

    key = params['api_key']
    hint = stripe_api.key_hint(key)
    key_type, key_mode = stripe_api.key_kind(key)
    livemode = None if key_mode is None else key_mode == 'live'
    result = dict(changed=False, api_url=safe_url(params['api_url']), key_hint=hint, key_type=key_type,
                  key_mode=key_mode, livemode=livemode, key_status='unknown', reachable=False, latency_ms=None,
                  attempts=0, http_status=None, error_kind=None, error_code=None, problems=[], notes=[])

    client = stripe_api.client_from_params(params)
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

    if status_url:
        status = stripe_api.fetch_status(status_url, params['timeout'], params['validate_certs'])
        result['stripe_status'] = status
        problems, notes = status_findings(status)
        result['problems'].extend(problems)
        result['notes'].extend(notes)

    module.exit_json(**stripe_api.redact_data(result, key))


if __name__ == '__main__':
    main()
