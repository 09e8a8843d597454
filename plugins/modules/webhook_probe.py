#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: webhook_probe
short_description: Probe our Stripe webhook endpoint the way Stripe delivers to it
version_added: 1.0.0
description:
  - Detection step of the Stripe webhook failures scenario (scenario 4 of the incident response runbook). Sends a
    harmless test event to OUR webhook endpoint O(url), signed with the endpoint signing secret exactly as Stripe
    signs deliveries (header C(Stripe-Signature) with C(t=<unix time>,v1=<HMAC-SHA256 hex>)), and reports whether
    the endpoint accepts what Stripe sends and rejects what an attacker could send.
  - The signing secret (C(whsec_...)) is read by the module itself from AWS Secrets Manager (O(secret_id), version
    C(AWSCURRENT)). The value may be the plain C(whsec_...) string or a JSON object with the secret in C(secret) or
    C(signing_secret). It is registered as C(no_log), never returned, logged or put in a message.
  - RV(secret_version) says which version of the secret is C(AWSCURRENT) and which C(AWSPREVIOUS), and when each was
    created (version ids and dates only, never a value) - a recent out-of-band change of the signing secret shows
    there, and M(svpms.incident_response.secret_restore) can put the previous version back.
  - Three requests are sent, one after the other, all a C(POST) of the same event, in this order. First the event
    with a wrong signature, which must be rejected with 4xx. Then the event correctly signed with a timestamp
    O(stale_seconds) old (a replay), which must be rejected with 4xx. Last the event correctly signed now, which must
    be accepted with 2xx. The rejections are sent first so that an endpoint that de-duplicates event ids cannot hide
    them.
  - "The event is C({\"id\": \"evt_svpms_probe_<random>\", \"object\": \"event\", \"type\": <event_type>,
    \"livemode\": false, \"created\": <now>, \"data\": {\"object\": {}}, ...})."
  - The probe event's type is not one Stripe sends, so the endpoint should acknowledge it with 2xx and do nothing, as
    Stripe recommends for event types a handler does not use (see U(https://docs.stripe.com/webhooks#handle-events)).
  - An endpoint that ACCEPTS (2xx) the forged or the replayed event takes forged events for real ones;
    RV(security_finding) is then true, which classifies as P0 C(Data breach or security compromise).
  - An unreachable, failing or slow endpoint is a result (RV(reachable), RV(error_kind), RV(problems)), not a module
    failure. The task fails on bad input, and when the secret cannot be read (RV(error_kind) V(not_found),
    V(access_denied), V(unreachable), V(configuration), V(invalid_secret) or V(error)). It always reports
    C(changed=false).
  - Each request is bounded by O(timeout) in all (connecting and the whole answer), redirects are never followed
    (Stripe does not follow them either) and nothing is retried, because a probe measures.
author: SVPMS Platform Team (@svpms)
options:
  url:
    description:
      - Absolute V(http://) or V(https://) URL of OUR webhook endpoint, the URL configured in Stripe for it, for example
        V(https://api.svpms.example.com/webhooks/stripe).
      - Must not embed credentials (C(user:password@)).
    type: str
    required: true
  secret_id:
    description:
      - Name or ARN of the Secrets Manager secret that holds the endpoint signing secret (C(whsec_...)), for example
        V(svpms/prod/api/stripe-webhook-secret).
    type: str
    required: true
  event_type:
    description:
      - C(type) of the probe event (letters, digits, C(_), C(.) and C(-), at most 100 characters).
      - Keep a type Stripe never sends, so the endpoint acknowledges the event without acting on it.
    type: str
    default: svpms.probe
  stale_seconds:
    description:
      - Age in seconds of the timestamp of the replayed (stale) request. It must be more than 300, the tolerance of
        Stripe's libraries; a correct endpoint would rightly accept a younger one.
    type: int
    default: 600
  slow_ms:
    description:
      - A correctly signed event acknowledged after more than this many milliseconds is reported as slow.
    type: int
    default: 2000
  timeout:
    description:
      - Seconds each request may take in all, connecting and reading the whole answer, more than 0 and at most 60.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the TLS certificate of O(url). A failed verification is reported as RV(error_kind=tls).
    type: bool
    default: true
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The three probe requests are sent in check mode too, because the probe is the detection. A probe event is a
        test event (C(livemode=false), a type Stripe never sends) that the endpoint acknowledges; nothing is changed
        in Stripe or AWS (the secret is only read).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - IAM actions used - C(secretsmanager:GetSecretValue) (and C(kms:Decrypt) on the secret's key), and
    C(secretsmanager:DescribeSecret) and C(secretsmanager:ListSecretVersionIds) for RV(secret_version) (without
    them RV(secret_version) is null, RV(notes) says why, and the probe still runs).
  - The probe comes from the host that runs the task, not from Stripe. An endpoint that only admits Stripe's IP
    addresses rejects the correctly signed event too.
  - The endpoint may store or log the probe event; its id starts with C(evt_svpms_probe_) so it can be told apart.
  - Only the short C(error) string of a JSON answer (at most 64 characters of letters, digits, C(_), C(.), C(-)) is
    returned, never the rest of a body.
seealso:
  - module: svpms.incident_response.http_probe
  - module: svpms.incident_response.incident_classify
  - name: Stripe - check the webhook signatures
    description: How Stripe signs deliveries and how a receiver verifies them.
    link: https://docs.stripe.com/webhooks#verify-events
'''

EXAMPLES = r'''
- name: Probe our Stripe webhook endpoint with the signing secret Stripe uses
  svpms.incident_response.webhook_probe:
    url: https://api.svpms.example.com/webhooks/stripe
    secret_id: svpms/prod/api/stripe-webhook-secret
    region: eu-west-1
  register: webhook

- name: An endpoint that accepts forged events is a P0 security incident
  ansible.builtin.set_fact:
    incident_signals:
      security_compromise: "{{ webhook.security_finding }}"

- name: Tell the on-call what is wrong with the endpoint
  ansible.builtin.debug:
    msg: "{{ webhook.problems }}"
  when: webhook.problems | length > 0
'''

RETURN = r'''
url:
  description: The endpoint probed, without query string.
  returned: always
  type: str
  sample: https://api.svpms.example.com/webhooks/stripe
secret_id:
  description: The secret the signing secret was read from.
  returned: always
  type: str
  sample: svpms/prod/api/stripe-webhook-secret
event_id:
  description: Id of the probe event sent (the same in the three requests).
  returned: when the probe ran
  type: str
  sample: evt_svpms_probe_6f1c2d9a0b7e4f3a8c5d1e2f
event_type:
  description: Type of the probe event.
  returned: when the probe ran
  type: str
  sample: svpms.probe
accepted:
  description:
    - Whether the correctly signed event was accepted (2xx). Null when the endpoint did not answer it.
  returned: when the probe ran
  type: bool
  sample: true
rejects_bad_signature:
  description:
    - Whether the event with a wrong signature was rejected (4xx); false when it was accepted (2xx).
      Null when the answer was neither (no answer, 3xx, 5xx).
  returned: when the probe ran
  type: bool
  sample: true
rejects_stale_timestamp:
  description:
    - Whether the correctly signed event with a timestamp O(stale_seconds) old was rejected (4xx); false when it was
      accepted (2xx). Null when the answer was neither.
  returned: when the probe ran
  type: bool
  sample: true
security_finding:
  description:
    - True when the forged or the stale event was ACCEPTED - the endpoint takes forged events for Stripe's. This
      classifies as P0 C(Data breach or security compromise) (signal C(security_compromise) of
      M(svpms.incident_response.incident_classify)).
  returned: when the probe ran
  type: bool
  sample: false
security_message:
  description: The sentence that explains RV(security_finding); null when there is no finding.
  returned: when the probe ran
  type: str
reachable:
  description: Whether the endpoint gave an HTTP answer to at least one request.
  returned: when the probe ran
  type: bool
  sample: true
error_kind:
  description:
    - When the probe ran - V(unreachable), V(timeout) or V(tls) when the endpoint (or the correctly signed request)
      got no HTTP answer, V(server_error) when a request got a 5xx, else null.
    - When the module failed - why the secret could not be read - V(not_found), V(access_denied), V(unreachable),
      V(configuration), V(invalid_secret) or V(error).
  returned: always
  type: str
  sample: server_error
checks:
  description: One entry per request.
  returned: when the probe ran
  type: dict
  contains:
    valid:
      description: The correctly signed event.
      type: dict
      contains:
        outcome:
          description: V(accepted) (2xx), V(rejected) (4xx), V(redirect) (3xx), V(server_error) (5xx),
            V(unexpected) (any other status), V(timeout), V(tls) or V(unreachable).
          type: str
        status:
          description: HTTP status of the answer; null without an answer.
          type: int
        latency_ms:
          description: Time to the end of the answer in milliseconds; null without an answer.
          type: float
        error:
          description: The short C(error) string of a JSON answer, else null.
          type: str
    bad_signature:
      description: The event with a wrong signature, same fields as RV(checks.valid).
      type: dict
    stale_timestamp:
      description: The correctly signed event with an old timestamp, same fields as RV(checks.valid).
      type: dict
  sample:
    valid: {outcome: accepted, status: 200, latency_ms: 12.4, error: null}
    bad_signature: {outcome: rejected, status: 400, latency_ms: 3.1, error: invalid_signature}
    stale_timestamp: {outcome: rejected, status: 400, latency_ms: 2.9, error: invalid_signature}
problems:
  description: Sentences an on-call engineer reads - what is wrong and what to do. Empty when all is well.
  returned: when the probe ran
  type: list
  elements: str
  sample:
    - The endpoint rejected a correctly signed event (HTTP 400 invalid_signature) - the endpoint's secret does not
      match Stripe's (svpms/prod/api/stripe-webhook-secret)...
secret_version:
  description:
    - Which versions of O(secret_id) are staged C(AWSCURRENT) and C(AWSPREVIOUS), and when each was created, read
      from C(DescribeSecret) and C(ListSecretVersionIds) (never a value).
    - Null when the versions could not be read (RV(notes) says why); the probe runs anyway.
  returned: when the probe ran
  type: dict
  contains:
    current_version_id:
      description: Version id staged C(AWSCURRENT).
      type: str
    current_created:
      description: When the C(AWSCURRENT) version was created, ISO 8601 UTC (null when the dates could not be read).
      type: str
    previous_version_id:
      description: Version id staged C(AWSPREVIOUS), or null when there is none.
      type: str
    previous_created:
      description: When the C(AWSPREVIOUS) version was created, ISO 8601 UTC, or null.
      type: str
  sample:
    current_version_id: 9b2e41c7-0f3a-4d58-a1f6-5c2d7e8b9a01
    current_created: "2026-11-04T09:12:44Z"
    previous_version_id: 3f0c9a52-5a1e-4c7b-9d7e-2b8f1c0e6a11
    previous_created: "2026-10-01T14:03:10Z"
notes:
  description:
    - Sentences about what the probe could not find out - for example why RV(secret_version) is null, or that the
      secret changed during the probe. Empty when there is nothing to say.
  returned: when the probe ran
  type: list
  elements: str
msg:
  description: One line summing up the probe, or why it could not run. Never holds the secret.
  returned: always
  type: str
'''

import json  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import time  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSModule  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import http_probe  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_signature  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import webhook_delivery  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.webhook_delivery import scrub  # noqa: E402

MAX_TIMEOUT = 60.0
MIN_STALE_SECONDS = stripe_signature.DEFAULT_TOLERANCE + 1
USER_AGENT = 'svpms-incident-response-webhook-probe/1.0'
EVENT_TYPE_RE = re.compile(r'^[A-Za-z0-9_.-]{1,100}$')
NO_LOG_PARAMS = ('access_key', 'secret_key', 'session_token')

CHECK_ORDER = ('bad_signature', 'stale_timestamp', 'valid')
CHECK_LABEL = {
    'valid': 'correctly signed event',
    'bad_signature': 'event with a wrong signature',
    'stale_timestamp': 'correctly signed event with a stale timestamp',
}
NETWORK_KINDS = ('tls', 'timeout', 'unreachable')
SECURITY_SEVERITY = 'P0'
SECURITY_DESCRIPTION = 'Data breach or security compromise'


# --------------------------------------------------------------------------- pure helpers

def classify(outcome):
    """The ``outcome`` word of one request result."""
    return webhook_delivery.classify(outcome, 'accepted')


def build_event(event_type, now, rand_hex):
    """The probe event (a dict), shaped like a Stripe event object."""
    return {
        'id': 'evt_svpms_probe_%s' % rand_hex,
        'object': 'event',
        'api_version': None,
        'created': int(now),
        'data': {'object': {}},
        'livemode': False,
        'pending_webhooks': 1,
        'request': {'id': None, 'idempotency_key': None},
        'type': event_type,
    }


def _answer(check):
    if check['status'] is None:
        return 'no answer (%s)' % check['outcome']
    return 'HTTP %d%s' % (check['status'], ' ' + check['error'] if check['error'] else '')


def evaluate(checks, url, secret_id, stale_seconds, slow_ms):
    """Top-level findings from the three checks (pure).

    ``checks`` maps valid/bad_signature/stale_timestamp to ``{outcome,
    status, latency_ms, error}``. Returns accepted, rejects_bad_signature,
    rejects_stale_timestamp, reachable, error_kind, security_finding,
    security_message, problems and msg.
    """
    valid, bad, stale = checks['valid'], checks['bad_signature'], checks['stale_timestamp']

    def rejects(check):
        if check['outcome'] == 'rejected':
            return True
        if check['outcome'] == 'accepted':
            return False
        return None

    out = dict(
        accepted=None if valid['status'] is None else valid['outcome'] == 'accepted',
        rejects_bad_signature=rejects(bad),
        rejects_stale_timestamp=rejects(stale),
        reachable=any(c['status'] is not None for c in checks.values()),
    )
    error_kind = None
    if not out['reachable']:
        kinds = [c['outcome'] for c in checks.values()]
        error_kind = sorted(set(kinds), key=lambda k: (-kinds.count(k), NETWORK_KINDS.index(k)))[0]
    elif valid['status'] is None:
        error_kind = valid['outcome']
    elif any(c['outcome'] == 'server_error' for c in checks.values()):
        error_kind = 'server_error'
    out['error_kind'] = error_kind

    problems = []
    forged = []
    if bad['outcome'] == 'accepted':
        forged.append('an event with a forged signature (%s)' % _answer(bad))
    if stale['outcome'] == 'accepted':
        forged.append('a correctly signed event replayed with a timestamp %d seconds old (%s)'
                      % (stale_seconds, _answer(stale)))
    out['security_finding'] = bool(forged)
    out['security_message'] = None
    if forged:
        out['security_message'] = (
            'SECURITY: the webhook endpoint %s ACCEPTED %s, so anyone who knows its URL can forge or replay Stripe '
            'events (for example mark an unpaid order as paid); this classifies as %s "%s" - make the endpoint '
            'verify the Stripe-Signature header with the signing secret and a 300 second tolerance (as '
            'stripe.Webhook.construct_event does) before it acts on an event, and review the events it processed.'
            % (url, ' and '.join(forged), SECURITY_SEVERITY, SECURITY_DESCRIPTION))
        problems.append(out['security_message'])

    if not out['reachable']:
        problems.append(
            'The webhook endpoint %s did not answer any probe request (%s): Stripe cannot deliver events to it. '
            'Stripe retries a failed delivery for up to three days; once the endpoint is back, replay what was '
            'missed (events with delivery_success=false). Check the service behind the URL (tasks, load balancer, '
            'DNS%s).' % (url, error_kind, ', TLS certificate' if error_kind == 'tls' else ''))
    else:
        outcome = valid['outcome']
        if outcome in NETWORK_KINDS:
            problems.append('The correctly signed event got no answer (%s) although other requests did: the '
                            'endpoint %s is unstable and Stripe deliveries fail the same way.' % (outcome, url))
        elif outcome == 'server_error':
            problems.append('The endpoint answered %s to a correctly signed event: the webhook handler is failing, '
                            'Stripe deliveries fail and are retried for up to three days - check the service logs '
                            'and its dependencies.' % _answer(valid))
        elif outcome == 'rejected':
            problems.append(
                'The endpoint rejected a correctly signed event (%s): the endpoint\'s secret does not match Stripe\'s '
                '(the signing secret in %s, rolled in Stripe but not in the service, or the service reads another '
                'secret), or it rejects event types it does not handle (it should acknowledge them with 2xx), its '
                'clock is off by more than its tolerance, or it only admits Stripe\'s IP addresses. Every Stripe '
                'delivery is probably failing the same way.' % (_answer(valid), secret_id))
        elif outcome == 'redirect':
            problems.append('The endpoint answered a correctly signed event with a redirect (%s): Stripe does not '
                            'follow redirects and counts the delivery as failed - configure the final URL in '
                            'Stripe.' % _answer(valid))
        elif outcome == 'unexpected':
            problems.append('The endpoint answered a correctly signed event with %s, which Stripe counts as a failed '
                            'delivery; it should answer 2xx.' % _answer(valid))
        if valid['latency_ms'] is not None and valid['latency_ms'] > slow_ms:
            problems.append('The endpoint took %d ms to answer a correctly signed event, more than slow_ms=%d: Stripe '
                            'gives up on slow deliveries and retries them - acknowledge with 2xx first and process '
                            'the event asynchronously.' % (valid['latency_ms'], slow_ms))
        for name, check in (('bad_signature', bad), ('stale_timestamp', stale)):
            # Only meaningful when the endpoint otherwise works (else the lines above say it all).
            if outcome != 'accepted' or check['outcome'] in ('accepted', 'rejected'):
                continue
            problems.append('The endpoint answered the %s with %s instead of a 4xx rejection: make sure it verifies '
                            'the Stripe-Signature header before anything else.' % (CHECK_LABEL[name], _answer(check)))
    out['problems'] = problems

    def word(check, good):
        return '%s (%s)' % (check['outcome'] if check['outcome'] != good else 'ok', _answer(check))

    out['msg'] = 'webhook probe of %s: valid event %s; forged signature %s; stale timestamp %s%s' % (
        url, word(valid, 'accepted'), word(bad, 'rejected'), word(stale, 'rejected'),
        ' - SECURITY FINDING (%s)' % SECURITY_SEVERITY if forged else '')
    return out


# --------------------------------------------------------------------------- requests

def send(opener, url, headers, data, timeout):
    """One POST, hard-bounded by ``timeout``; ``{kind, status, latency_ms, body}``."""
    return webhook_delivery.send(opener, url, headers, data, timeout, USER_AGENT, name='webhook-probe-request')


def run_probe(url, secret, event_type, stale_seconds, timeout, validate_certs, sensitive, opener=None):
    """Send the three requests; return (event, checks)."""
    if opener is None:
        opener = http_probe.shared_context_opener(validate_certs)
    now = int(time.time())
    event = build_event(event_type, now, secrets.token_hex(12))
    payload = json.dumps(event, indent=2, sort_keys=False).encode('utf-8')
    wrong_secret = 'whsec_' + secrets.token_hex(24)  # a random key: well-formed header, wrong HMAC
    signing_for = {  # (key, timestamp), taken when the request is sent
        'bad_signature': lambda: (wrong_secret, int(time.time())),
        'stale_timestamp': lambda: (secret, int(time.time()) - stale_seconds),
        'valid': lambda: (secret, int(time.time())),
    }
    checks = {}
    for name in CHECK_ORDER:
        headers = webhook_delivery.signed_headers(payload, *signing_for[name]())
        raw = send(opener, url, headers, payload, timeout)
        check = dict(outcome=classify(raw), status=raw['status'],
                     latency_ms=raw['latency_ms'] if raw['kind'] == 'http' else None,
                     error=webhook_delivery.error_code(raw['body'], sensitive) if raw['kind'] == 'http' else None)
        raw['body'] = None  # never kept beyond this point
        checks[name] = check
    return event, checks


# --------------------------------------------------------------------------- module

def validate(params):
    """The first problem with the parameters, naming the parameter, or None."""
    url = params['url']
    if not isinstance(url, str) or not url.strip():
        return 'url must be an absolute http:// or https:// URL of the webhook endpoint'
    problem = http_probe.validate_url(url.strip())
    if problem:
        if 'credentials' in problem:
            return 'url must not embed credentials (user:password@host)'
        return problem.replace(url.strip(), http_probe.redact_url(url.strip()))
    if not (params['secret_id'] or '').strip():
        return 'secret_id must be a non-empty secret name or ARN'
    if not isinstance(params['event_type'], str) or not EVENT_TYPE_RE.match(params['event_type']):
        return ('event_type must be 1 to 100 letters, digits, "_", "." or "-", got %r' % (params['event_type'],))
    if params['stale_seconds'] < MIN_STALE_SECONDS:
        return ('stale_seconds must be at least %d (more than the 300 second tolerance of Stripe\'s libraries, '
                'which a correct endpoint uses), got %d' % (MIN_STALE_SECONDS, params['stale_seconds']))
    if params['slow_ms'] < 1:
        return 'slow_ms must be 1 or more milliseconds, got %d' % params['slow_ms']
    if not 0 < params['timeout'] <= MAX_TIMEOUT:
        return 'timeout must be more than 0 and at most %g seconds, got %s' % (MAX_TIMEOUT, params['timeout'])
    return None


def invocation(params):
    return webhook_delivery.invocation(params, NO_LOG_PARAMS)


def main():
    module = AWSModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            secret_id=dict(type='str', required=True),
            event_type=dict(type='str', default='svpms.probe'),
            stale_seconds=dict(type='int', default=600),
            slow_ms=dict(type='int', default=2000),
            timeout=dict(type='float', default=10.0),
            validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    inv = invocation(params)
    problem = validate(params)
    if problem:
        module.fail_json(msg=problem, invocation=inv)
    url = params['url'].strip()
    shown_url = http_probe.safe_url(url)
    secret_id = params['secret_id'].strip()
    base = dict(changed=False, url=shown_url, secret_id=secret_id, invocation=inv)
    sensitive = []

    sm = module.client('secretsmanager')
    read = {}
    try:
        secret = webhook_delivery.read_signing_secret(
            sm, secret_id, lambda value: webhook_delivery.remember(module.module, sensitive, value), meta=read)
    except webhook_delivery.SigningSecretError as err:
        if err.aws_error is not None:
            out = err.aws_error.to_result()
            out.pop('reachable', None)  # RV(reachable) is the endpoint's; the probe did not run
        else:
            out = dict(error_kind=err.kind)
        out.update(base)
        module.fail_json(msg=scrub(err.message(secret_id, 'the endpoint was not probed'), sensitive), **out)

    # Which version was read, and which one it replaced: version ids and dates only, never a value.
    secret_version, notes = webhook_delivery.signing_secret_versions(sm, secret_id)
    if secret_version is not None and read.get('version_id') and \
            read['version_id'] != secret_version['current_version_id']:
        notes.append('The probe signed with version %s of %s, but AWSCURRENT is now version %s: the secret changed '
                     'during the probe; run it again' % (read['version_id'], secret_id,
                                                         secret_version['current_version_id']))

    event, checks = run_probe(url, secret, params['event_type'], params['stale_seconds'], params['timeout'],
                              params['validate_certs'], sensitive)
    result = evaluate(checks, shown_url, secret_id, params['stale_seconds'], params['slow_ms'])
    if not secret.startswith('whsec_'):
        result['problems'].append('The value in %s does not start with whsec_: it may not be a Stripe endpoint '
                                  'signing secret (an API key stored by mistake?).' % secret_id)
    result.update(base, event_id=event['id'], event_type=event['type'], checks=checks,
                  secret_version=secret_version, notes=notes)
    module.exit_json(**scrub(result, sensitive))


if __name__ == '__main__':
    main()
