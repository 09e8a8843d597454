#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: stripe_webhook_info
short_description: Report a Stripe account's webhook endpoints and the events Stripe failed to deliver
version_added: 1.0.0
description:
  - The diagnosis step of the Stripe webhook failures runbook. Lists the account's webhook endpoints
    (C(GET /v1/webhook_endpoints)) and says whether one points at our URL (O(endpoint_url)) and whether it is
    enabled. A disabled endpoint receives nothing, and the events created while it is disabled need a replay.
  - Lists the events of the last O(window_hours) hours that were not delivered to at least one endpoint
    (C(GET /v1/events) with C(delivery_success=false), which Stripe keeps for 30 days), at most O(max_events), and
    reports their number per type, the oldest one's age, the total of their C(pending_webhooks), and how many hours
    are left before Stripe stops retrying each one (72 hours after it was created) in RV(closest_to_expiry).
  - When more than O(max_events) failed events exist, the module also reads the events between 60 and 72 hours old
    (those Stripe is about to give up on), so they are never missed because of the limit.
  - An unreachable Stripe or a refused key is a result (RV(reachable), RV(error_kind), RV(problems)), not a task
    failure. Invalid options fail the task with a message naming the option.
  - The key is never returned, logged or put in a message; only RV(key_hint). Endpoint signing secrets are never
    returned (Stripe only returns them when an endpoint is created).
author: SVPMS Platform Team (@svpms)
options:
  api_key:
    description:
      - Stripe secret or restricted API key of the account (a restricted key needs read access to webhook endpoints
        and events).
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
      - Verify the TLS certificate of O(api_url). Set to V(false) only for a test server.
    type: bool
    default: true
  endpoint_url:
    description:
      - Our webhook URL, for example V(https://api.svpms.example.com/webhooks/stripe). The endpoints pointing at it
        are reported in RV(endpoints) (scheme and host compared case-insensitively, default port and trailing slash
        ignored).
      - Not set - every endpoint of the account is reported and RV(endpoint_found) and RV(endpoint_enabled) are
        null.
    type: str
  window_hours:
    description:
      - How far back to look for undelivered events, in hours, 1 to 720 (Stripe keeps the delivery state of events
        for 30 days). The default covers the 72 hours Stripe retries.
    type: int
    default: 72
  max_events:
    description:
      - The most undelivered events to read, 1 to 10000 (100 per API call). When there are more, the counts are a
        lower bound and RV(events_truncated) is true.
    type: int
    default: 500
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - Stripe does not say which endpoint an undelivered event failed on; C(delivery_success=false) means at least one
    endpoint has not received it (still being retried, or given up).
  - Retries - HTTP 429, HTTP 5xx and connection errors are retried up to 3 times with full-jitter exponential
    backoff, or the wait a C(Retry-After) header asks for when it is at most 10 seconds; a longer ask is not waited
    for. Each API call takes at most 4 x O(timeout) + 30 seconds; the module makes at most 1 call for the endpoints
    and C(ceil(max_events / 100)) (twice that when truncated) for the events.
  - The C(Stripe-Version) header is pinned to C(2024-06-20). Redirects are not followed, so the key never goes to
    another host.
requirements:
  - requests
seealso:
  - module: svpms.incident_response.stripe_account_info
  - name: Process undelivered webhook events
    description: Stripe's recovery procedure, with List Events and delivery_success=false.
    link: https://docs.stripe.com/webhooks/process-undelivered-events
  - name: Webhook endpoints API
    description: The webhook endpoint object (url, status, enabled_events, api_version).
    link: https://docs.stripe.com/api/webhook_endpoints
'''

EXAMPLES = r'''
- name: Does Stripe still deliver to us, and what did it fail to deliver?
  svpms.incident_response.stripe_webhook_info:
    api_key: "{{ stripe_api_key }}"
    endpoint_url: https://api.svpms.example.com/webhooks/stripe
    window_hours: 72
  register: stripe_webhooks

- name: Page when the endpoint is disabled or events are about to be lost
  ansible.builtin.debug:
    msg: "{{ stripe_webhooks.problems }}"
  when: stripe_webhooks.problems | length > 0

- name: Against the sandbox stand-in
  svpms.incident_response.stripe_webhook_info:
    api_key: "{{ svpms_stripe_api_key }}"
    api_url: "{{ svpms_stripe_api_url }}"
    endpoint_url: "{{ svpms_stripe_webhook_url }}"
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
reachable:
  description: Whether the Stripe API answered over HTTP (whatever the status).
  returned: always
  type: bool
  sample: true
error_kind:
  description:
    - Why a call failed - V(invalid_key), V(permission), V(not_found), V(rate_limited), V(server_error),
      V(unreachable), V(timeout), V(tls), V(bad_request) or V(api_error). Null when every call succeeded.
  returned: always
  type: str
  sample: invalid_key
error_code:
  description: Stripe's error C(code) of the failed call, for example V(api_key_expired); null when there is none.
  returned: always
  type: str
http_status:
  description: HTTP status of the failed call; null when every call succeeded or nothing answered.
  returned: always
  type: int
msg:
  description: The first failed call, in one sentence with what to check. Never holds the key.
  returned: when a call failed
  type: str
endpoint_url:
  description: O(endpoint_url), without query string; null when not set.
  returned: always
  type: str
endpoints:
  description: The endpoints pointing at O(endpoint_url) (every endpoint when it is not set).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Endpoint id (C(we_...)).
      type: str
    url:
      description: The URL Stripe delivers to.
      type: str
    status:
      description: V(enabled) or V(disabled).
      type: str
    enabled_events:
      description: Event types it receives (V(*) for all).
      type: list
      elements: str
    api_version:
      description: API version of the events sent to it; null for the account's default.
      type: str
    description:
      description: Its description.
      type: str
    livemode:
      description: Whether it is a live-mode endpoint.
      type: bool
    created:
      description: Creation time (UTC, ISO 8601).
      type: str
  sample:
    - id: we_1PdR5uLkdIwHu7ix
      url: https://api.svpms.example.com/webhooks/stripe
      status: disabled
      enabled_events: [payment_intent.succeeded, charge.refunded]
      api_version: '2024-06-20'
      description: svpms payments
      livemode: true
      created: '2026-01-12T09:30:00Z'
endpoints_total:
  description: How many webhook endpoints the account has (as read).
  returned: always
  type: int
  sample: 2
endpoint_found:
  description: Whether an endpoint points at O(endpoint_url); null when it is not set or the endpoints could not be read.
  returned: always
  type: bool
  sample: true
endpoint_enabled:
  description: Whether one of those endpoints is enabled; null when none was found or it is not known.
  returned: always
  type: bool
  sample: false
window_hours:
  description: O(window_hours).
  returned: always
  type: int
  sample: 72
failed_events:
  description: How many events of the window were not delivered to at least one endpoint (null when not read).
  returned: always
  type: int
  sample: 14
failed_events_by_type:
  description: Those events counted per event type.
  returned: always
  type: dict
  sample: {payment_intent.succeeded: 12, charge.refunded: 2}
oldest_failed_age_hours:
  description: Age of the oldest of them in hours (one decimal); null when there are none.
  returned: always
  type: float
  sample: 63.5
pending_webhooks:
  description: Sum of the C(pending_webhooks) of those events (deliveries still owed to endpoints).
  returned: always
  type: int
  sample: 14
expiring_soon:
  description: How many of them are within 12 hours of Stripe giving up (60 to 72 hours old).
  returned: always
  type: int
  sample: 3
retries_exhausted:
  description: How many of them are older than 72 hours - Stripe no longer retries them.
  returned: always
  type: int
  sample: 0
closest_to_expiry:
  description: Up to 10 undelivered events Stripe still retries, oldest first, with the hours left before it stops.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Event id (C(evt_...)).
      type: str
    type:
      description: Event type.
      type: str
    created:
      description: Creation time (UTC, ISO 8601).
      type: str
    age_hours:
      description: Age in hours.
      type: float
    hours_left:
      description: Hours before Stripe stops retrying it (72 hours after creation).
      type: float
    pending_webhooks:
      description: Endpoints that have not received it yet.
      type: int
events_truncated:
  description: Whether more than O(max_events) undelivered events exist (the counts are then a lower bound).
  returned: always
  type: bool
  sample: false
problems:
  description: Sentences an on-call engineer reads - what is wrong and what to do. Empty when all is well.
  returned: always
  type: list
  elements: str
  sample:
    - Webhook endpoint we_1PdR5uLkdIwHu7ix (https://api.svpms.example.com/webhooks/stripe) is disabled; it
      receives nothing, and Stripe does not queue or retry events for a disabled endpoint - the events during the
      gap need a replay after it is re-enabled.
'''

import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_api  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.http_probe import validate_url  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.notify import safe_url  # noqa: E402

MAX_ENDPOINTS = 100          # Stripe allows 16 webhook endpoints per account; one page covers them
MAX_EVENTS_LIMIT = 10000
# Kinds after which a second call is pointless (the key is refused, Stripe is not there or keeps failing).
STOP_KINDS = frozenset([stripe_api.KIND_INVALID_KEY, stripe_api.KIND_UNREACHABLE, stripe_api.KIND_TIMEOUT,
                        stripe_api.KIND_TLS, stripe_api.KIND_SERVER, stripe_api.KIND_RATE_LIMITED])


def read_failed_events(client, now, window_hours, max_events):
    """Undelivered events of the window; when truncated, also the 60-72 h band Stripe is about to give up on."""
    since = int(now - window_hours * 3600)
    events = stripe_api.list_failed_events(client, since, max_events)
    truncated = events.truncated
    band_from = int(now - stripe_api.STRIPE_RETRY_HOURS * 3600)
    band_to = int(now - (stripe_api.STRIPE_RETRY_HOURS - stripe_api.EXPIRY_WARNING_HOURS) * 3600)
    if truncated and since < band_to:
        band = stripe_api.list_failed_events(client, max(since, band_from), max_events, before=band_to)
        known = set(e.get('id') for e in events if isinstance(e, dict))
        events.extend(e for e in band if isinstance(e, dict) and e.get('id') not in known)
    return list(events), truncated


def main():
    argument_spec = stripe_api.stripe_argument_spec()
    argument_spec.update(
        endpoint_url=dict(type='str'),
        window_hours=dict(type='int', default=72),
        max_events=dict(type='int', default=500),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not stripe_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=str(stripe_api.REQUESTS_IMPORT_ERROR))
    params = module.params
    errors = stripe_api.check_params(params)
    endpoint_url = (params['endpoint_url'] or '').strip() or None
    if endpoint_url:
        error = validate_url(endpoint_url)
        if error:
            errors.append(error.replace('url ', 'endpoint_url ', 1))
    error = stripe_api.check_window_hours(params['window_hours'])
    if error:
        errors.append(error)
    if not 1 <= params['max_events'] <= MAX_EVENTS_LIMIT:
        errors.append('max_events must be 1 to %d, got %s' % (MAX_EVENTS_LIMIT, params['max_events']))
    if errors:
        module.fail_json(msg='; '.join(errors))

    key = params['api_key']
    hint = stripe_api.key_hint(key)
    result = dict(changed=False, api_url=safe_url(params['api_url']), key_hint=hint, reachable=False,
                  error_kind=None, error_code=None, http_status=None,
                  endpoint_url=safe_url(endpoint_url) if endpoint_url else None, endpoints=[], endpoints_total=None,
                  endpoint_found=None, endpoint_enabled=None, window_hours=params['window_hours'],
                  failed_events=None, failed_events_by_type={}, oldest_failed_age_hours=None, pending_webhooks=None,
                  expiring_soon=None, retries_exhausted=None, closest_to_expiry=[], events_truncated=False,
                  problems=[])
    client = stripe_api.client_from_params(params)

    def record(err, doing):
        if result['error_kind'] is None:
            result.update(err.to_result())
            result['msg'] = client.clean(err.describe())
        result['reachable'] = result['reachable'] or err.reachable
        result['problems'].append(client.clean(stripe_api.error_problem(err, hint, doing)))

    stop = False
    try:
        endpoints = client.list_all('/v1/webhook_endpoints', max_items=MAX_ENDPOINTS)
        result['reachable'] = True
        found = stripe_api.endpoint_findings(endpoints, endpoint_url, truncated=endpoints.truncated)
        result['problems'].extend(found.pop('problems'))
        result.update(found)
    except stripe_api.StripeError as err:
        record(err, 'listing webhook endpoints (GET /v1/webhook_endpoints)')
        stop = err.kind in STOP_KINDS

    if not stop:
        now = time.time()
        try:
            events, truncated = read_failed_events(client, now, params['window_hours'], params['max_events'])
            result['reachable'] = True
            summary = stripe_api.failed_event_findings(events, now, params['window_hours'], truncated=truncated,
                                                       max_events=params['max_events'])
            result['problems'].extend(summary.pop('problems'))
            result.update(summary)
        except stripe_api.StripeError as err:
            record(err, 'listing undelivered events (GET /v1/events?delivery_success=false)')
    result.pop('attempts', None)
    module.exit_json(**stripe_api.redact_data(result, key))


if __name__ == '__main__':
    main()
