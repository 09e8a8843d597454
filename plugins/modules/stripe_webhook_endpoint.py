#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: stripe_webhook_endpoint
short_description: Re-enable a Stripe webhook endpoint or correct its URL through the Stripe API
version_added: 1.0.0
description:
  - The fix step of the Stripe webhook failures runbook. Selects one webhook endpoint of the account - by
    O(endpoint_id), or by O(match_url) (exactly one endpoint must point at it) - and makes its URL O(url) and its
    status enabled or disabled (O(enabled)) with C(POST /v1/webhook_endpoints/{id}), sending only what differs
    (C(url), C(disabled=false|true)).
  - Idempotent - an endpoint that already is as asked is left alone (C(changed) V(false), nothing is sent). When
    O(match_url) matches no endpoint but exactly one already points at O(url), that one is selected, so a URL
    correction can be run again.
  - B(Events created while the endpoint was disabled are never delivered by Stripe) - Stripe neither queues nor
    retries them for a disabled endpoint, and re-enabling it does not bring them back. Replay them after the
    endpoint is enabled (C(svpms.incident_response.stripe_webhook_replay); find them with
    M(svpms.incident_response.stripe_webhook_info)). The same holds for events sent to a wrong URL once Stripe gave
    up retrying them (72 hours).
  - The API key is never returned, logged or put in a message; only RV(key_hint). The endpoint signing secret is
    neither read nor changed (Stripe returns it only when an endpoint is created).
author: SVPMS Platform Team (@svpms)
options:
  api_key:
    description:
      - Stripe secret key, or a restricted key with write access to webhook endpoints.
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
  endpoint_id:
    description:
      - Id of the webhook endpoint, for example V(we_1PdR5uLkdIwHu7ix).
      - Exactly one of O(endpoint_id) and O(match_url) is required.
    type: str
  match_url:
    description:
      - Select the endpoint whose URL is this one (scheme and host compared case-insensitively, default port and
        trailing slash ignored). Exactly one endpoint must match; when several do, the task fails and lists their ids.
      - Usually our webhook URL (to re-enable the endpoint), or the wrong URL an endpoint points at (to correct it
        with O(url)).
    type: str
  url:
    description:
      - The URL the endpoint must have, for example V(https://api.svpms.example.com/webhooks/stripe). Must be
        C(https://), except for a loopback address (a test receiver).
      - Not set - the URL is left as it is.
    type: str
  enabled:
    description:
      - V(true) - the endpoint must be enabled (C(disabled=false)); V(false) - disabled (C(disabled=true)).
      - Not set - the status is left as it is.
    type: bool
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The endpoint is read; nothing is sent to change it. RV(after) and the diff show what would change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
notes:
  - Stripe retries an undelivered event for up to three days, but only to enabled endpoints - see the description
    about replaying the gap after re-enabling.
  - Stripe is called with bounded retries (HTTP 429, 5xx and connection errors, at most 3 retries; the update also
    after a timeout, as it carries an C(Idempotency-Key)); each call takes at most 4 x O(timeout) + 30 seconds, and
    the module makes at most two (read, update).
  - The C(Stripe-Version) header is pinned to C(2024-06-20). Redirects are not followed.
requirements:
  - requests
seealso:
  - module: svpms.incident_response.stripe_webhook_info
  - module: svpms.incident_response.stripe_account_info
  - name: Webhook endpoints API
    description: Update a webhook endpoint (url, disabled, enabled_events).
    link: https://docs.stripe.com/api/webhook_endpoints/update
  - name: Process undelivered webhook events
    description: Stripe's recovery procedure for events that were not delivered.
    link: https://docs.stripe.com/webhooks/process-undelivered-events
'''

EXAMPLES = r'''
- name: Re-enable our webhook endpoint
  svpms.incident_response.stripe_webhook_endpoint:
    api_key: "{{ stripe_api_key }}"
    match_url: https://api.svpms.example.com/webhooks/stripe
    enabled: true
  register: endpoint_fix

- name: Tell the on-call that the gap needs a replay
  ansible.builtin.debug:
    msg: "{{ endpoint_fix.notes }}"
  when: endpoint_fix is changed

- name: Point the endpoint that was set to a wrong host back at our URL, and enable it
  svpms.incident_response.stripe_webhook_endpoint:
    api_key: "{{ stripe_api_key }}"
    match_url: https://api.svpms-old.example.com/webhooks/stripe
    url: https://api.svpms.example.com/webhooks/stripe
    enabled: true

- name: Against the sandbox stand-in, by id, in check mode first
  svpms.incident_response.stripe_webhook_endpoint:
    api_key: "{{ svpms_stripe_api_key }}"
    api_url: "{{ svpms_stripe_api_url }}"
    endpoint_id: "{{ stripe_webhooks.endpoints[0].id }}"
    enabled: true
  check_mode: true
'''

RETURN = r'''
api_url:
  description: The API base URL called (without query string).
  returned: always
  type: str
  sample: https://api.stripe.com
key_hint:
  description: The API key's prefix and last 4 characters - never more of it.
  returned: always
  type: str
  sample: sk_live_…4242
endpoint_id:
  description: Id of the endpoint selected; null when none could be.
  returned: always
  type: str
  sample: we_1PdR5uLkdIwHu7ix
before:
  description: The endpoint as Stripe returned it before the task.
  returned: when an endpoint was selected
  type: dict
  contains:
    id:
      description: Endpoint id.
      type: str
    url:
      description: The URL Stripe posts events to.
      type: str
    status:
      description: V(enabled) or V(disabled).
      type: str
    enabled_events:
      description: Event types it receives (C(*) for all).
      type: list
      elements: str
  sample: {id: we_1PdR5uLkdIwHu7ix, url: https://api.svpms.example.com/webhooks/stripe, status: disabled,
           enabled_events: ['*']}
after:
  description:
    - The endpoint after the task, as Stripe returned it from the update (the same as RV(before) when nothing
      changed); in check mode, the planned state.
  returned: when an endpoint was selected
  type: dict
  contains:
    id:
      description: Endpoint id.
      type: str
    url:
      description: The URL Stripe posts events to.
      type: str
    status:
      description: V(enabled) or V(disabled).
      type: str
    enabled_events:
      description: Event types it receives.
      type: list
      elements: str
  sample: {id: we_1PdR5uLkdIwHu7ix, url: https://api.svpms.example.com/webhooks/stripe, status: enabled,
           enabled_events: ['*']}
sent:
  description: The parameters sent (or, in check mode, that would be sent) to C(POST /v1/webhook_endpoints/{id}); empty
    when nothing differs.
  returned: when an endpoint was selected
  type: dict
  sample: {disabled: false}
replay_needed:
  description:
    - Whether the task enabled a disabled endpoint or moved it away from another URL - events of the gap were not
      delivered to our URL and need a replay.
  returned: when an endpoint was selected
  type: bool
  sample: true
notes:
  description: What to do next (the replay), in sentences.
  returned: always
  type: list
  elements: str
  sample:
    - Webhook endpoint we_1PdR5uLkdIwHu7ix was disabled - Stripe never delivers the events created while it was
      disabled. Replay them now (stripe_webhook_replay), starting from when the endpoint was disabled.
candidates:
  description: The endpoints considered when the selection failed (id, url, status).
  returned: when no single endpoint matched
  type: list
  elements: dict
reachable:
  description: Whether the Stripe API answered (on a failed call).
  returned: on failure
  type: bool
error_kind:
  description:
    - Why it failed - V(no_match), V(ambiguous), or the kind of the failed Stripe call (V(invalid_key),
      V(permission), V(not_found), V(rate_limited), V(server_error), V(unreachable), V(timeout), V(tls),
      V(bad_request), V(api_error)), or V(verify) when Stripe's answer does not show the change.
  returned: on failure
  type: str
http_status:
  description: HTTP status of the failed call's last answer; null when nothing answered.
  returned: on failure of a Stripe call
  type: int
'''

import re  # noqa: E402
import uuid  # noqa: E402

from urllib.parse import urlsplit  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_api  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.http_probe import validate_url  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.notify import safe_url  # noqa: E402

MAX_ENDPOINTS = 100          # Stripe allows 16 webhook endpoints per account; one page covers them
FIELDS = ('id', 'url', 'status', 'enabled_events')


# --------------------------------------------------------------------------- pure helpers


def check_url(url, option, https_only):
    """None when ``url`` is usable for ``option``, else a message naming the option."""
    error = validate_url(url)
    if error:
        return error.replace('url ', '%s ' % option, 1)
    parts = urlsplit(url)
    if https_only and parts.scheme.lower() != 'https' and not stripe_api.is_loopback(parts.hostname):
        return ('%s must use https:// (Stripe sends payment data to it); plain http:// is accepted only for a '
                'loopback test receiver, got %s' % (option, safe_url(url)))
    return None


def view(endpoint):
    """The fields of an endpoint this module reports (never its secret)."""
    return dict(id=endpoint.get('id'), url=endpoint.get('url'), status=endpoint.get('status'),
                enabled_events=list(endpoint.get('enabled_events') or []))


def select(endpoints, match_url, url=None):
    """``(endpoint, error_kind, message)``: the one endpoint pointing at ``match_url``.

    When none does and ``url`` is given, the one already pointing at ``url``
    (a URL correction that was already made).
    """
    wanted = stripe_api.normalize_url(match_url)
    found = [e for e in endpoints if stripe_api.normalize_url(e.get('url')) == wanted]
    if not found and url:
        target = stripe_api.normalize_url(url)
        found = [e for e in endpoints if stripe_api.normalize_url(e.get('url')) == target]
        if len(found) == 1:
            return found[0], None, None
        if len(found) > 1:
            return None, 'ambiguous', (
                'No webhook endpoint points at match_url %s, and %d point at url %s (%s): remove the duplicates or '
                'select one with endpoint_id' % (safe_url(match_url), len(found), safe_url(url),
                                                 ', '.join(e.get('id') for e in found)))
    if len(found) == 1:
        return found[0], None, None
    if found:
        return None, 'ambiguous', (
            '%d webhook endpoints point at match_url %s (%s): select one with endpoint_id (and consider removing the '
            'others - each one receives every event)'
            % (len(found), safe_url(match_url), ', '.join(e.get('id') for e in found)))
    listed = ', '.join('%s %s (%s)' % (e.get('id'), e.get('url'), e.get('status')) for e in endpoints[:10]) or 'none'
    return None, 'no_match', (
        'No webhook endpoint points at match_url %s%s. Endpoints in the account: %s. Check the URL, or create the '
        'endpoint (in the Stripe Dashboard, with the events we handle)'
        % (safe_url(match_url), ' or at url %s' % safe_url(url) if url else '', listed))


def changes(current, url, enabled):
    """The parameters to send so that ``current`` gets ``url`` / ``enabled`` (only what differs)."""
    sent = {}
    if url is not None and url != current.get('url'):
        sent['url'] = url
    if enabled is not None and (current.get('status') == 'enabled') != enabled:
        sent['disabled'] = not enabled
    return sent


def predict(current, sent):
    after = dict(current)
    if 'url' in sent:
        after['url'] = sent['url']
    if 'disabled' in sent:
        after['status'] = 'disabled' if sent['disabled'] else 'enabled'
    return after


def diff_text(state):
    return ''.join('%s: %s\n' % (k, state.get(k)) for k in ('url', 'status'))


def replay_notes(before, after):
    """(replay_needed, notes) after ``before`` became ``after`` (pure)."""
    notes = []
    if before.get('status') != 'enabled' and after.get('status') == 'enabled':
        notes.append('Webhook endpoint %s was disabled - Stripe never delivers the events created while it was '
                     'disabled, and re-enabling it does not bring them back. Replay them now (stripe_webhook_replay), '
                     'starting from when the endpoint was disabled.' % after.get('id'))
    if before.get('url') != after.get('url') and after.get('status') == 'enabled':
        notes.append('Webhook endpoint %s pointed at %s: the events Stripe sent there never reached us, and those '
                     'older than 72 hours are no longer retried. Replay the events of the gap '
                     '(stripe_webhook_replay; stripe_webhook_info lists the undelivered ones).'
                     % (after.get('id'), before.get('url')))
    if after.get('status') == 'disabled' and before.get('status') != 'disabled':
        notes.append('Webhook endpoint %s is now disabled: from now on it receives no events, and Stripe will not '
                     'deliver them later; plan a replay from this moment when it is enabled again.' % after.get('id'))
    return bool(notes) and after.get('status') == 'enabled', notes


# --------------------------------------------------------------------------- the module


def main():
    argument_spec = stripe_api.stripe_argument_spec()
    argument_spec.update(
        endpoint_id=dict(type='str'),
        match_url=dict(type='str'),
        url=dict(type='str'),
        enabled=dict(type='bool'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('endpoint_id', 'match_url')],
                           required_one_of=[('endpoint_id', 'match_url')])
    if not stripe_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=str(stripe_api.REQUESTS_IMPORT_ERROR))
    params = module.params
    key = params['api_key']
    errors = stripe_api.check_params(params)
    endpoint_id = (params['endpoint_id'] or '').strip() or None
    match_url = (params['match_url'] or '').strip() or None
    url = params['url'].strip() if params['url'] is not None else None
    if params['endpoint_id'] is not None and not re.match(r'^[A-Za-z0-9_]{1,255}$', endpoint_id or ''):
        errors.append('endpoint_id must be a webhook endpoint id such as we_1PdR5uLkdIwHu7ix, got %r'
                      % params['endpoint_id'])
    if params['match_url'] is not None:
        error = check_url(match_url, 'match_url', https_only=False)
        if error:
            errors.append(error)
    if url is not None:
        error = check_url(url, 'url', https_only=True)
        if error:
            errors.append(error)
    if url is None and params['enabled'] is None:
        errors.append('nothing to do: set url and/or enabled')
    hint = stripe_api.key_hint(key)
    result = dict(changed=False, api_url=safe_url(params['api_url']), key_hint=hint, endpoint_id=None, notes=[])

    def finish(fail=False, **extra):
        out = dict(result)
        out.update(extra)
        out = stripe_api.redact_data(out, key)
        if fail:
            module.fail_json(**out)
        module.exit_json(**out)

    if errors:
        finish(fail=True, msg='; '.join(errors))

    client = stripe_api.client_from_params(params)

    def stripe_failed(err, doing, **extra):
        extra.update(err.to_result())
        extra['http_status'] = err.status
        finish(fail=True, msg=client.clean(stripe_api.error_problem(err, hint, doing)), **extra)

    # 1. Select the endpoint.
    if endpoint_id:
        try:
            current = client.get('/v1/webhook_endpoints/%s' % endpoint_id)
        except stripe_api.StripeError as err:
            if err.kind == stripe_api.KIND_NOT_FOUND:
                finish(fail=True, msg='No webhook endpoint %s in this Stripe account (HTTP 404): check the id, the '
                                      'account and the mode (live or test) of the key %s' % (endpoint_id, hint),
                       error_kind='not_found', reachable=True, http_status=404)
            stripe_failed(err, 'reading webhook endpoint %s (GET /v1/webhook_endpoints/%s)'
                          % (endpoint_id, endpoint_id))
    else:
        try:
            endpoints = client.list_all('/v1/webhook_endpoints', max_items=MAX_ENDPOINTS)
        except stripe_api.StripeError as err:
            stripe_failed(err, 'listing webhook endpoints (GET /v1/webhook_endpoints)')
        endpoints = [e for e in endpoints if isinstance(e, dict)]
        current, kind, message = select(endpoints, match_url, url)
        if current is None:
            finish(fail=True, msg=message, error_kind=kind, reachable=True,
                   candidates=[dict(id=e.get('id'), url=e.get('url'), status=e.get('status')) for e in endpoints])
    before = view(current)
    ep_id = before['id']
    result.update(endpoint_id=ep_id, before=before)

    # 2. What differs.
    sent = changes(before, url, params['enabled'])
    after = predict(before, sent)
    result.update(sent=sent, after=after, changed=bool(sent))
    if sent and module._diff:
        result['diff'] = dict(before_header='stripe:webhook_endpoint/%s' % ep_id,
                              after_header='stripe:webhook_endpoint/%s' % ep_id,
                              before=diff_text(before), after=diff_text(after))
    if not sent or module.check_mode:
        result['replay_needed'], result['notes'] = replay_notes(before, after) if sent else (False, [])
        if not sent and before['status'] != 'enabled':
            result['notes'].append('Webhook endpoint %s is disabled: it receives no events.' % ep_id)
        finish()

    # 3. Update: one POST with only what differs (an Idempotency-Key makes a retry after a timeout safe).
    try:
        updated = client.request('POST', '/v1/webhook_endpoints/%s' % ep_id, data=sent,
                                 idempotency_key='svpms-we-%s' % uuid.uuid4())
    except stripe_api.StripeError as err:
        stripe_failed(err, 'updating webhook endpoint %s (POST /v1/webhook_endpoints/%s)' % (ep_id, ep_id),
                      changed=False, after=before)
    after = view(updated)
    result['after'] = after
    if 'diff' in result:
        result['diff']['after'] = diff_text(after)
    if changes(after, url, params['enabled']):
        finish(fail=True, msg='Stripe accepted the update of webhook endpoint %s but its answer shows url %s and '
                              'status %s, not what was asked; check the endpoint in the Dashboard'
                              % (ep_id, after['url'], after['status']), error_kind='verify', reachable=True)
    result['replay_needed'], result['notes'] = replay_notes(before, after)
    finish()


if __name__ == '__main__':
    main()
