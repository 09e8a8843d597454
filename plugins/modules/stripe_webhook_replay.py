#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: stripe_webhook_replay
short_description: Re-deliver the Stripe events our webhook endpoint missed, signed exactly as Stripe signs them
version_added: 1.0.0
description:
  - The recovery step of the Stripe webhook failures runbook (scenario 4). Lists the events of the last
    O(window_hours) hours that Stripe failed to deliver (C(GET /v1/events) with C(delivery_success=false) and
    C(created[gte])), or takes the events named in O(event_ids), and re-delivers each one to OUR webhook endpoint
    O(url) the way Stripe does - a C(POST) of the event object as JSON, signed with the endpoint signing secret in a
    C(Stripe-Signature) header (C(t=<now>,v1=<HMAC-SHA256 hex>)).
  - Stripe has no public API to resend an event (the Stripe CLI's C(events resend) calls an internal route Stripe
    does not offer to users). Stripe's documented recovery, "process undelivered events", is to list them and
    process each one - this module does so by delivering each event to our endpoint, which then handles it as if
    Stripe had sent it.
  - Replaying to our endpoint does NOT change Stripe's C(delivery_success) flag or C(pending_webhooks) - Stripe
    keeps listing the events as undelivered (and may still retry them within 72 hours of their creation; the
    endpoint must de-duplicate by event id, as Stripe requires anyway). "The failed queue is drained" therefore
    means every failed event of the window is acknowledged in O(state_file) - RV(drained).
  - Events are replayed oldest first (the closest to Stripe giving up, 72 hours after creation), at most
    O(max_events) per run (the rest is counted in RV(remaining), which is not a failure), at most O(rate_per_second)
    requests per second. Each event is read again (C(GET /v1/events/{id})), serialized to JSON once, and exactly
    those bytes are signed and sent.
  - An event our endpoint acknowledged (any 2xx) is recorded in O(state_file) at once, so a re-run skips it
    (RV(skipped_already_acknowledged)); any other answer is a failure (RV(replayed[].outcome)) and is retried by the
    next run.
  - When the endpoint gives no HTTP answer (unreachable, timeout, TLS failure) for 3 events in a row, the run stops
    (RV(stopped_early)) - a down endpoint needs fixing first. This is a result, not a task failure.
  - The task fails, with RV(error_kind) and RV(error_source), when Stripe cannot be read (no key, refused key,
    unreachable), when the signing secret cannot be read from Secrets Manager, when O(state_file) cannot be read or
    written, and on invalid options (the message names the option; nothing is sent). The API key and the signing
    secret are never returned, logged or put in a message.
author: SVPMS Platform Team (@svpms)
options:
  api_key:
    description:
      - Stripe secret or restricted API key of the account (a restricted key needs read access to events).
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
      - Seconds for each Stripe API attempt (connecting, each read and the whole answer), more than 0 and at most 60.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the TLS certificates of O(api_url) and of O(url). Set to V(false) only for a test server.
    type: bool
    default: true
  url:
    description:
      - Absolute V(http://) or V(https://) URL of OUR webhook endpoint, the URL configured in Stripe for it, for example
        V(https://api.svpms.example.com/webhooks/stripe). Must not embed credentials (C(user:password@)).
      - O(state_file) keeps the acknowledgements of each URL apart (compared without query string).
    type: str
    required: true
  secret_id:
    description:
      - Name or ARN of the Secrets Manager secret that holds the endpoint signing secret (C(whsec_...)), for example
        V(svpms/prod/api/stripe-webhook-secret). The module reads it itself (version C(AWSCURRENT)); the value may be
        the plain C(whsec_...) string or a JSON object with the secret in C(secret) or C(signing_secret).
    type: str
    required: true
  window_hours:
    description:
      - How far back to look for undelivered events, in hours, 1 to 720 (Stripe keeps the delivery state of events for
        30 days). The default covers the 72 hours Stripe retries. Not used with O(event_ids).
    type: int
    default: 72
  event_ids:
    description:
      - Replay these events (C(evt_...)) instead of the undelivered events of the window, for example the events
        created while the endpoint was disabled (Stripe never attempts those). At most 1000 ids; duplicates are
        ignored. Each is read with C(GET /v1/events/{id}); an unknown id is reported in RV(missing_event_ids).
    type: list
    elements: str
  max_events:
    description:
      - The most events to replay in one run, 1 to 1000. The events left over are counted in RV(remaining); run the
        task again to replay them.
    type: int
    default: 100
  rate_per_second:
    description:
      - The most deliveries to start per second, more than 0 and at most 50. Keep it low enough for our endpoint and
        whatever it calls.
    type: float
    default: 5
  state_file:
    description:
      - Absolute path of the JSON file that records, per endpoint URL, the events our endpoint acknowledged (id,
        type, creation time, when, HTTP status). Its folder must exist.
      - Written atomically (a temporary file renamed over it) with mode C(0640) after every acknowledged event, so an
        interrupted run loses nothing. It never holds a secret, a key or an event body. Entries for events older than
        31 days (Stripe keeps events for 30) are dropped when it is written.
      - Not written in check mode.
    type: path
    required: true
  delivery_timeout:
    description:
      - Seconds each delivery may take in all (connecting and the whole answer), more than 0 and at most 60. Stripe
        itself gives up on an endpoint that answers slowly; acknowledge first, process later.
    type: float
    default: 10
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Reads the signing secret and the undelivered events (and, with O(event_ids), each named event), and returns
        in RV(planned) exactly the events a real run would replay, with the hours left before Stripe gives up on each.
        Nothing is sent to O(url) and O(state_file) is not written. C(changed) is true when there is something to
        replay.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
    details:
      - The diff lists the event ids added to O(state_file) for O(url) (in check mode, those that would be if every
        delivery were acknowledged).
notes:
  - IAM actions used - C(secretsmanager:GetSecretValue) (and C(kms:Decrypt) on the secret's key). Stripe API calls
    used - C(GET /v1/events) and C(GET /v1/events/{id}); a restricted key needs read access to events.
  - The deliveries come from the host that runs the task, not from Stripe. An endpoint that only admits Stripe's IP
    addresses rejects them.
  - The signature timestamp is the time of sending, as in Stripe's own retries, so an endpoint with the usual 300 s
    tolerance accepts a replayed event whatever its age. The event body is the one Stripe returns for the event
    (rendered with the API version the event was created with).
  - Stripe lists events newest first. At most 10000 undelivered events are read per run; when there are more,
    RV(candidates_truncated) is true and the oldest may not be among them - narrow O(window_hours) or use
    O(event_ids).
  - Redirects are never followed (Stripe does not follow them either). Only the short C(error) string of a JSON
    answer (at most 64 letters, digits, C(_), C(.), C(-)) is returned, never the rest of a body.
  - Time bound - each Stripe API call takes at most 4 x O(timeout) + 30 seconds (retries of 429, 5xx and connection
    errors), each delivery at most O(delivery_timeout) (never retried within a run), and the run at most about
    O(max_events) x (one API call + O(delivery_timeout) + 1 / O(rate_per_second)).
  - Two runs must not use the same O(state_file) at the same time (the last write wins).
requirements:
  - requests
  - boto3
seealso:
  - module: svpms.incident_response.stripe_webhook_info
  - module: svpms.incident_response.webhook_probe
  - name: Process undelivered webhook events
    description: Stripe's recovery procedure, with List Events and delivery_success=false.
    link: https://docs.stripe.com/webhooks/process-undelivered-events
  - name: Stripe - check the webhook signatures
    description: How Stripe signs deliveries and how a receiver verifies them.
    link: https://docs.stripe.com/webhooks#verify-events
'''

EXAMPLES = r'''
- name: What would be replayed (nothing is sent)
  svpms.incident_response.stripe_webhook_replay:
    api_key: "{{ stripe_api_key }}"
    url: https://api.svpms.example.com/webhooks/stripe
    secret_id: svpms/prod/api/stripe-webhook-secret
    region: eu-west-1
    state_file: /var/lib/svpms/stripe-replay-state.json
  check_mode: true
  register: replay_plan

- name: Replay the undelivered events of the last 72 hours to our endpoint, 5 per second, 200 per run
  svpms.incident_response.stripe_webhook_replay:
    api_key: "{{ stripe_api_key }}"
    url: https://api.svpms.example.com/webhooks/stripe
    secret_id: svpms/prod/api/stripe-webhook-secret
    region: eu-west-1
    state_file: /var/lib/svpms/stripe-replay-state.json
    max_events: 200
  register: replay

- name: A down endpoint needs fixing before anything can be replayed
  ansible.builtin.fail:
    msg: "{{ replay.stop_reason }}"
  when: replay.stopped_early

- name: Replay the events created while the endpoint was disabled
  svpms.incident_response.stripe_webhook_replay:
    api_key: "{{ stripe_api_key }}"
    url: https://api.svpms.example.com/webhooks/stripe
    secret_id: svpms/prod/api/stripe-webhook-secret
    state_file: /var/lib/svpms/stripe-replay-state.json
    event_ids: "{{ gap_event_ids }}"

- name: Against the sandbox
  svpms.incident_response.stripe_webhook_replay:
    api_key: "{{ svpms_stripe_api_key }}"
    api_url: "{{ svpms_stripe_api_url }}"
    url: "{{ svpms_stripe_webhook_url }}"
    secret_id: "{{ svpms_stripe_webhook_secret_id }}"
    state_file: "{{ playbook_dir }}/stripe-replay-state.json"
'''

RETURN = r'''
api_url:
  description: The Stripe API base URL called (without query string).
  returned: always
  type: str
  sample: https://api.stripe.com
key_hint:
  description: The key's prefix and last 4 characters - never more of it.
  returned: always
  type: str
  sample: sk_live_…4242
url:
  description: The endpoint replayed to, without query string.
  returned: always
  type: str
  sample: https://api.svpms.example.com/webhooks/stripe
secret_id:
  description: The secret the signing secret was read from.
  returned: always
  type: str
  sample: svpms/prod/api/stripe-webhook-secret
state_file:
  description: The state file (absolute path).
  returned: always
  type: str
  sample: /var/lib/svpms/stripe-replay-state.json
source:
  description:
    - Where the candidates came from - V(failed_events) (the undelivered events of the window) or V(event_ids).
  returned: always
  type: str
  sample: failed_events
window_hours:
  description: O(window_hours) (null with O(event_ids)).
  returned: always
  type: int
  sample: 72
candidates:
  description:
    - How many events were candidates - the undelivered events of the window, or the distinct O(event_ids) -
      acknowledged ones included.
  returned: when the candidates were read
  type: int
  sample: 14
candidates_truncated:
  description: Whether more than 10000 undelivered events exist (RV(candidates) is then a lower bound).
  returned: when the candidates were read
  type: bool
  sample: false
skipped_already_acknowledged:
  description: How many candidates O(state_file) already records as acknowledged by O(url); they are not sent again.
  returned: when the candidates were read
  type: int
  sample: 4
planned:
  description:
    - The events picked for this run (at most O(max_events)), oldest first - in check mode, exactly the events a real
      run would replay.
  returned: when the candidates were read
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
      description: Age in hours (one decimal).
      type: float
    hours_left:
      description: Hours before Stripe stops retrying the event (72 hours after creation); 0 when it already has.
      type: float
  sample:
    - {id: evt_1PdR5uLkdIwHu7ixq2bC, type: payment_intent.succeeded, created: '2026-01-12T09:30:00Z',
       age_hours: 61.2, hours_left: 10.8}
replayed:
  description:
    - One entry per event sent (or read) in this run, in order. Empty in check mode.
  returned: when the candidates were read
  type: list
  elements: dict
  contains:
    id:
      description: Event id.
      type: str
    type:
      description: Event type.
      type: str
    created:
      description: Creation time (UTC, ISO 8601).
      type: str
    status:
      description: HTTP status our endpoint answered; null without an answer.
      type: int
    outcome:
      description:
        - V(acknowledged) (2xx, recorded in O(state_file)); anything else is a failure - V(rejected) (4xx),
          V(server_error) (5xx), V(redirect) (3xx, not followed), V(unexpected) (another status), V(timeout),
          V(tls), V(unreachable), or V(not_found) (Stripe no longer has the event; nothing was sent).
      type: str
    latency_ms:
      description: Time to the end of the answer in milliseconds; null without an answer.
      type: float
    error:
      description: The short C(error) string of a JSON answer (for example V(invalid_signature)), else null.
      type: str
  sample:
    - {id: evt_1PdR5uLkdIwHu7ixq2bC, type: payment_intent.succeeded, created: '2026-01-12T09:30:00Z', status: 200,
       outcome: acknowledged, latency_ms: 41.7, error: null}
acknowledged:
  description: How many events our endpoint acknowledged in this run (0 in check mode).
  returned: when the candidates were read
  type: int
  sample: 10
failed_count:
  description:
    - How many events of this run were not acknowledged (every RV(replayed) entry that is not acknowledged). Not
      named C(failed), which Ansible reads as the task's own status.
  returned: when the candidates were read
  type: int
  sample: 0
remaining:
  description:
    - How many candidates were not attempted in this run - beyond O(max_events), or left when the run stopped early.
      A re-run picks them up (with the failed ones). Not a failure.
  returned: when the candidates were read
  type: int
  sample: 0
missing_event_ids:
  description: O(event_ids) that Stripe does not know (HTTP 404); nothing is sent for them.
  returned: when the candidates were read
  type: list
  elements: str
  sample: []
drained:
  description:
    - Whether every candidate is now acknowledged in O(state_file) (for the undelivered events of the window - the
      failed queue is drained for our endpoint). Always false when RV(candidates_truncated) is true. In check mode,
      whether it already is.
  returned: when the candidates were read
  type: bool
  sample: true
stopped_early:
  description: Whether the run stopped before the planned events were all attempted.
  returned: always
  type: bool
  sample: false
stop_reason:
  description: Why it stopped early, with what to do; null when it did not.
  returned: always
  type: str
  sample: The endpoint gave no HTTP answer to 3 events in a row (unreachable) - fix it, then run again.
problems:
  description: Sentences an on-call engineer reads - what is wrong and what to do. Empty when all is well.
  returned: always
  type: list
  elements: str
error_kind:
  description:
    - Why the task failed; null when it did not. From Stripe (RV(error_source=stripe)) - V(invalid_key),
      V(permission), V(not_found), V(rate_limited), V(server_error), V(unreachable), V(timeout), V(tls),
      V(bad_request) or V(api_error). From Secrets Manager (RV(error_source=secrets_manager)) - V(not_found),
      V(access_denied), V(unreachable), V(configuration), V(invalid_secret) or V(error). From the state file
      (RV(error_source=state_file)) - V(invalid_state) or V(io_error). V(invalid_option) for invalid options
      (RV(error_source) is then null).
  returned: always
  type: str
  sample: invalid_key
error_source:
  description: What failed - V(stripe), V(secrets_manager) or V(state_file); null when nothing did.
  returned: always
  type: str
  sample: stripe
http_status:
  description: HTTP status of the Stripe call that failed; null when Stripe gave no answer.
  returned: when the task failed on Stripe
  type: int
  sample: 401
error_code:
  description:
    - Stripe's error C(code) of the failed call (for example V(api_key_expired)), or the AWS error code when the
      secret could not be read; null when there is none.
  returned: when the task failed on Stripe or Secrets Manager
  type: str
  sample: api_key_expired
aws_action:
  description: The AWS action that failed (C(secretsmanager:GetSecretValue)).
  returned: when the secret could not be read from Secrets Manager
  type: str
msg:
  description: One line summing up the run, or why it failed. Never holds the key or the secret.
  returned: always
  type: str
'''

import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSModule  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import http_probe  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_api  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import webhook_delivery  # noqa: E402

MAX_TIMEOUT = 60.0
MAX_RATE = 50.0
MAX_EVENTS = 1000
MAX_EVENT_IDS = 1000
LIST_CAP = 10000
STOP_AFTER_UNREACHABLE = 3
STATE_MODE = 0o640
STATE_FORMAT = 'svpms.incident_response.stripe_webhook_replay/1'
STATE_KEEP_SECONDS = 31 * 86400
MAX_STATE_BYTES = 16 * 1024 * 1024
USER_AGENT = ('Stripe/1.0 (+https://stripe.com/docs/webhooks; replayed by '
              'svpms.incident_response.stripe_webhook_replay)')
EVENT_ID_RE = re.compile(r'^evt_[A-Za-z0-9_]{1,250}$')
NO_LOG_PARAMS = ('api_key', 'access_key', 'secret_key', 'session_token')
NETWORK_KINDS = ('unreachable', 'timeout', 'tls')

error_code = webhook_delivery.error_code  # the short error string of an answer


# --------------------------------------------------------------------------- pure helpers

def utc_iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def validate(params):
    """Messages for invalid options, each naming the option (an empty list when all are fine)."""
    errors = stripe_api.check_params(params)
    url = params.get('url')
    if not isinstance(url, str) or not url.strip():
        errors.append('url must be an absolute http:// or https:// URL of our webhook endpoint')
    else:
        problem = http_probe.validate_url(url.strip())
        if problem:
            if 'credentials' in problem:
                errors.append('url must not embed credentials (user:password@host)')
            else:
                errors.append(problem.replace(url.strip(), http_probe.redact_url(url.strip())))
    if not (params.get('secret_id') or '').strip():
        errors.append('secret_id must be a non-empty secret name or ARN')
    error = stripe_api.check_window_hours(params.get('window_hours'))
    if error:
        errors.append(error)
    if params.get('max_events') is None or not 1 <= params['max_events'] <= MAX_EVENTS:
        errors.append('max_events must be 1 to %d, got %s' % (MAX_EVENTS, params.get('max_events')))
    rate = params.get('rate_per_second')
    if rate is None or math.isnan(rate) or not 0 < rate <= MAX_RATE:
        errors.append('rate_per_second must be more than 0 and at most %g, got %s' % (MAX_RATE, rate))
    dt = params.get('delivery_timeout')
    if dt is None or math.isnan(dt) or not 0 < dt <= MAX_TIMEOUT:
        errors.append('delivery_timeout must be more than 0 and at most %g seconds, got %s' % (MAX_TIMEOUT, dt))
    ids = params.get('event_ids')
    if ids is not None:
        if not ids:
            errors.append('event_ids must list at least one event id (evt_...) when it is set')
        elif len(ids) > MAX_EVENT_IDS:
            errors.append('event_ids may list at most %d ids, got %d' % (MAX_EVENT_IDS, len(ids)))
        else:
            bad = [i for i in ids if not isinstance(i, str) or not EVENT_ID_RE.match(i.strip())]
            if bad:
                errors.append('event_ids must be Stripe event ids (evt_ followed by letters, digits or _), got %s'
                              % ', '.join(repr(b)[:60] for b in bad[:3]))
    path = params.get('state_file')
    if not isinstance(path, str) or not path.strip():
        errors.append('state_file must be the absolute path of the state file')
    elif not os.path.isabs(path):
        errors.append('state_file must be an absolute path, got %r' % path)
    elif os.path.isdir(path):
        errors.append('state_file %s is a directory; give the path of a file in it' % path)
    elif not os.path.isdir(os.path.dirname(path)):
        errors.append('state_file %s: its folder %s does not exist (create it first)' % (path, os.path.dirname(path)))
    return errors


def event_row(event, now):
    """``{id, type, created, age_hours, hours_left}`` of an event object."""
    age, left = stripe_api.event_age(event, now)
    return dict(id=event.get('id'), type=event.get('type') or 'unknown', created=stripe_api.iso_utc(event.get('created')),
                age_hours=None if age is None else round(age, 1), hours_left=None if left is None else round(left, 1))


def order_events(events):
    """Distinct event objects (by id), oldest first (an event without a creation time last).

    Works whether the listing is oldest first or newest first (Stripe's order).
    """
    seen = set()
    out = []
    for ev in events:
        if not isinstance(ev, dict) or not isinstance(ev.get('id'), str) or ev['id'] in seen:
            continue
        seen.add(ev['id'])
        out.append(ev)

    def created(ev):
        value = ev.get('created')
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    known = [created(ev) for ev in out if created(ev) is not None]
    if len(known) >= 2 and known[0] > known[-1]:
        out.reverse()  # listed newest first (Stripe's order): events of the same second keep their order too
    # A stable sort: events created in the same second stay in the order Stripe created them.
    return sorted(out, key=lambda ev: (0, created(ev)) if created(ev) is not None else (1, 0))


def plan(events, acknowledged, max_events):
    """``(selected, skipped, remaining)``: events not yet acknowledged, oldest first, at most max_events."""
    ordered = order_events(events)
    pending = [ev for ev in ordered if ev['id'] not in acknowledged]
    skipped = len(ordered) - len(pending)
    selected = pending[:max_events]
    return selected, skipped, len(pending) - len(selected)


def classify(raw):
    """The ``outcome`` word of one delivery."""
    return webhook_delivery.classify(raw, 'acknowledged')


def payload_of(event):
    """The delivery body - the event object as JSON, serialized once (these bytes are signed and sent)."""
    return json.dumps(event, indent=2, ensure_ascii=False).encode('utf-8')


delivery_headers = webhook_delivery.signed_headers  # (payload, secret, timestamp): signed as Stripe signs


def outcome_problems(replayed, url, secret_id):
    """Sentences about the failed deliveries of a run (pure)."""
    problems = []
    groups = {}
    for row in replayed:
        if row['outcome'] == 'acknowledged':
            continue
        label = row['outcome'] if row['status'] is None else 'HTTP %d%s' % (
            row['status'], ' ' + row['error'] if row['error'] else '')
        groups.setdefault((row['outcome'], label), []).append(row['id'])
    for (outcome, label), ids in sorted(groups.items(), key=lambda i: -len(i[1])):
        shown = ', '.join(ids[:5]) + (' and %d more' % (len(ids) - 5) if len(ids) > 5 else '')
        n = len(ids)
        what = '%d event%s' % (n, '' if n == 1 else 's')
        if outcome == 'rejected':
            problems.append(
                '%s rejected by %s (%s; %s): when it says the signature is invalid, the endpoint\'s secret differs '
                'from the one in %s (rolled in Stripe but not in the service?) or its clock is off; otherwise the '
                'handler refuses these events - check its logs. They are replayed again by the next run.'
                % (what, url, label, shown, secret_id))
        elif outcome == 'server_error':
            problems.append('%s failed in the webhook handler of %s (%s; %s): check the service logs and its '
                            'dependencies, then run again.' % (what, url, label, shown))
        elif outcome == 'redirect':
            problems.append('%s answered with a redirect by %s (%s; %s): Stripe does not follow redirects either - '
                            'configure the final URL in Stripe and here.' % (what, url, label, shown))
        elif outcome == 'not_found':
            problems.append('%s no longer exist in Stripe (%s): Stripe keeps events for 30 days; nothing was sent.'
                            % (what, shown))
        else:
            problems.append('%s got no acknowledgement from %s (%s; %s).' % (what, url, label, shown))
    return problems


# --------------------------------------------------------------------------- state file

class StateError(Exception):
    def __init__(self, kind, message):
        self.kind = kind
        self.message = message
        super(StateError, self).__init__(message)


def load_state(path):
    """The state document (a fresh one when the file does not exist). Raises StateError."""
    try:
        size = os.path.getsize(path)
    except OSError:
        if not os.path.lexists(path):
            return dict(format=STATE_FORMAT, endpoints={})
        raise StateError('io_error', 'state_file %s cannot be read' % path)
    if size > MAX_STATE_BYTES:
        raise StateError('invalid_state', 'state_file %s is larger than %d MiB: not a state file of this module'
                         % (path, MAX_STATE_BYTES // 1048576))
    try:
        with open(path, 'rb') as fh:
            raw = fh.read()
    except (IOError, OSError) as exc:
        raise StateError('io_error', 'state_file %s cannot be read: %s' % (path, exc.strerror or type(exc).__name__))
    if not raw.strip():
        return dict(format=STATE_FORMAT, endpoints={})
    try:
        doc = json.loads(raw.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        raise StateError('invalid_state', 'state_file %s is not JSON: not a state file of this module (move it away '
                                          'or choose another path)' % path)
    if not isinstance(doc, dict) or doc.get('format') != STATE_FORMAT or not isinstance(doc.get('endpoints'), dict):
        raise StateError('invalid_state', 'state_file %s is not a state file of this module (no "format": "%s"); '
                                          'move it away or choose another path' % (path, STATE_FORMAT))
    for url, entries in list(doc['endpoints'].items()):
        if not isinstance(entries, dict):
            raise StateError('invalid_state', 'state_file %s is damaged (the entry of %s is not an object)'
                             % (path, url))
    return doc


def prune_state(doc, now):
    """Drop entries of events older than Stripe keeps them (31 days), and empty endpoints."""
    limit = now - STATE_KEEP_SECONDS
    for url in list(doc['endpoints']):
        entries = doc['endpoints'][url]
        for evt_id in list(entries):
            created = entries[evt_id].get('created') if isinstance(entries[evt_id], dict) else None
            if isinstance(created, (int, float)) and not isinstance(created, bool) and created < limit:
                del entries[evt_id]
        if not entries:
            del doc['endpoints'][url]
    return doc


def save_state(path, doc, now):
    """Write the state atomically (temporary file in the same folder, fsync, rename), mode 0640."""
    doc = prune_state(doc, now)
    doc['updated_at'] = utc_iso(now)
    data = json.dumps(doc, indent=2, sort_keys=True).encode('utf-8') + b'\n'
    folder = os.path.dirname(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.%s.' % os.path.basename(path), suffix='.tmp')
        try:
            os.fchmod(fd, STATE_MODE)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        try:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:  # pragma: no cover - a folder that cannot be fsynced is still written
            pass
    except (IOError, OSError) as exc:
        raise StateError('io_error', 'state_file %s cannot be written: %s' % (path, exc.strerror or type(exc).__name__))
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


# --------------------------------------------------------------------------- deliveries

def send(opener, url, headers, data, timeout):
    """One delivery, hard-bounded by ``timeout`` (a request still running then is given up as a timeout)."""
    return webhook_delivery.send(opener, url, headers, data, timeout, USER_AGENT, name='stripe-webhook-replay')


class Pacer(object):
    """Starts at most ``rate`` deliveries per second: ``wait()`` before each one."""

    def __init__(self, rate, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / float(rate)
        self._clock = clock
        self._sleep = sleep
        self._last = None

    def wait(self):
        if self._last is not None:
            delay = self._last + self.interval - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._last = self._clock()


# --------------------------------------------------------------------------- module

def invocation(params):
    return webhook_delivery.invocation(params, NO_LOG_PARAMS)


class Run(object):
    """One module run: the result being built, and the way out (every exit scrubs secrets)."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.sensitive = []
        self.key = self.params.get('api_key')
        self.result = dict(changed=False, stopped_early=False, stop_reason=None, problems=[], error_kind=None,
                           error_source=None, invocation=invocation(self.params))

    def remember(self, value):
        webhook_delivery.remember(self.module.module, self.sensitive, value)

    def clean(self, data):
        return webhook_delivery.scrub(stripe_api.redact_data(data, self.key),
                                      self.sensitive + ([self.key] if self.key else []))

    def fail(self, msg, kind, source, **extra):
        self.result.update(extra)
        self.result.update(error_kind=kind, error_source=source)
        self.module.fail_json(msg=self.clean(msg), **self.clean(self.result))

    def exit(self, msg):
        self.module.exit_json(msg=self.clean(msg), **self.clean(self.result))


def read_secret(run, secret_id):
    try:
        return webhook_delivery.read_signing_secret(run.module.client('secretsmanager'), secret_id, run.remember)
    except webhook_delivery.SigningSecretError as err:
        extra = {}
        if err.aws_error is not None:
            extra = dict(aws_action=err.aws_error.action, error_code=err.aws_error.code)
        run.fail(err.message(secret_id, 'nothing was replayed'), err.kind, 'secrets_manager', **extra)


def main():
    argument_spec = stripe_api.stripe_argument_spec()
    argument_spec.update(
        url=dict(type='str', required=True),
        secret_id=dict(type='str', required=True),
        window_hours=dict(type='int', default=72),
        event_ids=dict(type='list', elements='str'),
        max_events=dict(type='int', default=100),
        rate_per_second=dict(type='float', default=5.0),
        state_file=dict(type='path', required=True),
        delivery_timeout=dict(type='float', default=10.0),
    )
    module = AWSModule(argument_spec=argument_spec, supports_check_mode=True)
    run = Run(module)
    params = module.params
    if not stripe_api.HAS_REQUESTS:
        run.fail('the requests library is required on the host that runs the task', 'configuration', 'stripe')
    errors = validate(params)
    if errors:
        run.fail('; '.join(errors), 'invalid_option', None)

    key = params['api_key']
    url = params['url'].strip()
    shown_url = http_probe.safe_url(url)
    state_key = stripe_api.normalize_url(shown_url)
    secret_id = params['secret_id'].strip()
    state_path = os.path.normpath(params['state_file'])
    by_ids = params['event_ids'] is not None
    check = module.check_mode
    run.result.update(api_url=stripe_api.safe_url(params['api_url']), key_hint=stripe_api.key_hint(key),
                      url=shown_url, secret_id=secret_id, state_file=state_path,
                      source='event_ids' if by_ids else 'failed_events',
                      window_hours=None if by_ids else params['window_hours'])

    # 1. The state file: readable, and (for a real run) its folder writable - before anything is sent.
    try:
        state = load_state(state_path)
    except StateError as err:
        run.fail(err.message, err.kind, 'state_file')
    if not check and not os.access(os.path.dirname(state_path), os.W_OK | os.X_OK):
        run.fail('state_file %s cannot be written: no write permission on its folder; nothing was replayed'
                 % state_path, 'io_error', 'state_file')
    acked = state['endpoints'].setdefault(state_key, {})
    acked_before = set(acked)

    # 2. The signing secret (also in check mode: an unreadable secret is worth knowing before the real run).
    secret = read_secret(run, secret_id)
    if not secret.startswith('whsec_'):
        run.result['problems'].append('The value in %s does not start with whsec_: it may not be a Stripe endpoint '
                                      'signing secret (an API key stored by mistake?).' % secret_id)

    # 3. The candidates.
    client = stripe_api.client_from_params(params)
    now = time.time()
    fetched = {}
    missing = []

    def stripe_fail(err, doing, **extra):
        out = err.to_result()
        out.pop('attempts', None)
        out.pop('reachable', None)
        run.fail(stripe_api.error_problem(err, stripe_api.key_hint(key), doing), err.kind, 'stripe',
                 **dict(out, **extra))

    if by_ids:
        ids = []
        for evt_id in params['event_ids']:
            evt_id = evt_id.strip()
            if evt_id not in ids:
                ids.append(evt_id)
        events = []
        for evt_id in ids:
            if evt_id in acked:
                events.append(dict(id=evt_id, created=acked[evt_id].get('created'), type=acked[evt_id].get('type')))
                continue
            try:
                event = client.get('/v1/events/%s' % evt_id)
            except stripe_api.StripeError as err:
                if err.kind == stripe_api.KIND_NOT_FOUND:
                    missing.append(evt_id)
                    continue
                stripe_fail(err, 'reading event %s (GET /v1/events/%s)' % (evt_id, evt_id))
            if not isinstance(event, dict) or event.get('id') != evt_id:
                stripe_fail(stripe_api.StripeError(stripe_api.KIND_API, message='the answer is not event %s' % evt_id),
                            'reading event %s' % evt_id)
            fetched[evt_id] = event
            events.append(event)
        truncated = False
        candidates = len(ids)
    else:
        since = int(now - params['window_hours'] * 3600)
        try:
            listed = stripe_api.list_failed_events(client, since, LIST_CAP)
        except stripe_api.StripeError as err:
            stripe_fail(err, 'listing undelivered events (GET /v1/events?delivery_success=false)')
        truncated = bool(listed.truncated)
        events = order_events(listed)
        candidates = len(events)

    selected, skipped, remaining = plan(events, acked, params['max_events'])
    run.result.update(candidates=candidates, candidates_truncated=truncated, skipped_already_acknowledged=skipped,
                      planned=[event_row(ev, now) for ev in selected], replayed=[], acknowledged=0, failed_count=0,
                      remaining=remaining, missing_event_ids=missing)
    if truncated:
        run.result['problems'].append(
            'More than %d undelivered events exist in the window: only those read are candidates, and Stripe lists '
            'newest first, so the oldest may be missing - narrow window_hours or pass event_ids.' % LIST_CAP)
    if missing:
        run.result['problems'].append(
            '%d of event_ids %s unknown to Stripe (HTTP 404: mistyped, another account or mode, or older than 30 '
            'days): %s.' % (len(missing), 'is' if len(missing) == 1 else 'are', ', '.join(missing[:5])))

    def diff(new_ids):
        before = '%d acknowledged event(s) for %s\n' % (len(acked_before), shown_url)
        after = '%d acknowledged event(s) for %s\n' % (len(acked_before) + len(new_ids), shown_url)
        after += ''.join('+ %s\n' % i for i in new_ids)
        return dict(before_header=state_path, after_header=state_path, before=before, after=after)

    if check:
        run.result['changed'] = bool(selected)
        run.result['drained'] = not truncated and not missing and not selected and remaining == 0
        if module.module._diff:
            run.result['diff'] = diff([ev['id'] for ev in selected])
        soon = [r for r in run.result['planned'] if r['hours_left'] is not None and r['hours_left'] < 12]
        run.exit('check mode: would replay %d of %d candidate event(s) to %s (%d already acknowledged, %d beyond '
                 'max_events)%s; nothing was sent' % (
                     len(selected), candidates, shown_url, skipped, remaining,
                     ', %d within 12 h of Stripe giving up' % len(soon) if soon else ''))

    # 4. The replay.
    opener = http_probe.shared_context_opener(params['validate_certs'])
    pacer = Pacer(params['rate_per_second'])
    replayed = run.result['replayed']
    new_ids = []
    unreached = 0
    attempted = 0
    for ev in selected:
        evt_id = ev['id']
        event = fetched.get(evt_id)
        if event is None:
            try:
                event = client.get('/v1/events/%s' % evt_id)
            except stripe_api.StripeError as err:
                if err.kind != stripe_api.KIND_NOT_FOUND:
                    run.result.update(acknowledged=len(new_ids), failed_count=len(replayed) - len(new_ids),
                                      remaining=remaining + len(selected) - attempted, stopped_early=True,
                                      stop_reason='Stripe failed while reading event %s (%s); the events '
                                                  'acknowledged so far are recorded in state_file.'
                                                  % (evt_id, err.kind),
                                      changed=bool(new_ids), drained=False)
                    stripe_fail(err, 'reading event %s (GET /v1/events/%s)' % (evt_id, evt_id))
                attempted += 1
                replayed.append(dict(id=evt_id, type=ev.get('type'), created=stripe_api.iso_utc(ev.get('created')),
                                     status=None, outcome='not_found', latency_ms=None, error=None))
                continue
        attempted += 1
        payload = payload_of(event)
        pacer.wait()
        raw = send(opener, url, delivery_headers(payload, secret, int(time.time())), payload,
                   params['delivery_timeout'])
        outcome = classify(raw)
        row = dict(id=evt_id, type=event.get('type'), created=stripe_api.iso_utc(event.get('created')),
                   status=raw['status'], outcome=outcome,
                   latency_ms=raw['latency_ms'] if raw['kind'] == 'http' else None,
                   error=error_code(raw['body'], run.sensitive + [key]) if raw['kind'] == 'http' else None)
        raw['body'] = None  # never kept beyond this point
        replayed.append(row)
        if outcome == 'acknowledged':
            acked[evt_id] = dict(type=event.get('type'), created=event.get('created'),
                                 acknowledged_at=utc_iso(time.time()), status=raw['status'])
            new_ids.append(evt_id)
            try:
                save_state(state_path, state, time.time())
            except StateError as err:
                run.result.update(acknowledged=len(new_ids), failed_count=len(replayed) - len(new_ids),
                                  remaining=remaining + len(selected) - attempted, stopped_early=True,
                                  stop_reason='state_file could not be written: the run stopped so that no event is '
                                              'replayed without a record.', changed=True, drained=False)
                run.fail(err.message + '; event %s was acknowledged but is not recorded (a re-run sends it again)'
                         % evt_id, err.kind, 'state_file')
        if outcome in NETWORK_KINDS:
            unreached += 1
        elif raw['kind'] == 'http':
            unreached = 0
        if unreached >= STOP_AFTER_UNREACHABLE and attempted < len(selected):
            run.result.update(stopped_early=True, stop_reason=(
                'The endpoint %s gave no HTTP answer to %d events in a row (%s): it is down or unreachable from '
                'this host; fix it (and check it with webhook_probe), then run again - %d planned event(s) were not '
                'attempted.' % (shown_url, unreached, outcome, len(selected) - attempted)))
            run.result['problems'].append(run.result['stop_reason'])
            break

    acknowledged = len(new_ids)
    failed = len(replayed) - acknowledged
    remaining += len(selected) - attempted
    drained = (not truncated and not missing and remaining == 0 and failed == 0)
    run.result.update(acknowledged=acknowledged, failed_count=failed, remaining=remaining, drained=drained,
                      changed=acknowledged > 0)
    run.result['problems'].extend(outcome_problems(replayed, shown_url, secret_id))
    if remaining and not run.result['stopped_early']:
        run.result['problems'].append('%d candidate event(s) beyond max_events=%d were not replayed in this run: run '
                                      'it again.' % (remaining, params['max_events']))
    if module.module._diff and new_ids:
        run.result['diff'] = diff(new_ids)
    run.exit('replayed %d event(s) to %s: %d acknowledged, %d failed, %d already acknowledged before, %d remaining%s'
             % (len(replayed), shown_url, acknowledged, failed, skipped, remaining,
                ' - STOPPED EARLY' if run.result['stopped_early'] else ''))


if __name__ == '__main__':
    main()
