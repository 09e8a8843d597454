#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pagerduty_event
short_description: Trigger, acknowledge or resolve a PagerDuty incident with the Events API v2
version_added: 1.0.0
description:
  - Sends one event to the PagerDuty Events API v2 (C(POST <events_url>/v2/enqueue)) - a V(trigger)
    pages the on-call engineer (P0/P1), V(acknowledge) and V(resolve) act on the incident the same
    O(dedup_key) opened.
  - O(dedup_key) is required and must be one key per incident (for example the incident id). PagerDuty
    folds every trigger with the key of an open incident into that incident, so re-running a runbook
    never opens a second incident or pages twice.
  - Without a routing key (O(routing_key) or E(PAGERDUTY_ROUTING_KEY)) the task is skipped, not failed.
author: SVPMS Platform Team (@svpms)
extends_documentation_fragment:
  - svpms.incident_response.notify
options:
  routing_key:
    description:
      - Integration key of the PagerDuty service (Events API v2 integration). Falls back to
        E(PAGERDUTY_ROUTING_KEY). Never returned or logged.
    type: str
  events_url:
    description:
      - Base URL of the Events API; the module posts to C(<events_url>/v2/enqueue).
      - Point it at a local receiver for tests and the sandbox.
    type: str
    default: https://events.pagerduty.com
  event_action:
    description:
      - V(trigger) opens an incident (when one with the same O(dedup_key) is open, the event is folded
        into it without a new page); V(acknowledge) stops the escalation; V(resolve) closes it.
    type: str
    choices: [trigger, acknowledge, resolve]
    default: trigger
  dedup_key:
    description:
      - The incident's deduplication key, at most 255 characters. Use the same key for every event of
        one incident.
    type: str
    required: true
  summary:
    description:
      - One-line description shown in the page, required for V(trigger). Longer than 1024 characters
        is truncated (with a warning).
    type: str
  source:
    description:
      - Where the problem is, for example the service or host name (V(trigger) only).
    type: str
    default: svpms-incident-response
  severity:
    description:
      - PagerDuty severity (V(trigger) only). P0 maps to V(critical), P1 to V(error).
    type: str
    choices: [critical, error, warning, info]
    default: error
  component:
    description:
      - Component of the source that is failing, for example V(api) (V(trigger) only).
    type: str
  group:
    description:
      - Logical grouping of components, for example V(svpms-prod) (V(trigger) only).
    type: str
  class:
    description:
      - Class/type of the event, for example V(high_error_rate) (V(trigger) only).
    type: str
  custom_details:
    description:
      - Free-form details shown in the incident, for example the error rate and the runbook (V(trigger)
        only).
    type: dict
  links:
    description:
      - Links shown in the incident, for example the dashboard and the incident report (V(trigger) only).
    type: list
    elements: dict
    suboptions:
      href:
        description: The URL.
        type: str
        required: true
      text:
        description: The link text.
        type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Sends nothing and returns the exact RV(payload) it would send (without the routing key).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - PagerDuty answers HTTP 202 once the event is queued; RV(status) and RV(message) are its answer.
    A send always reports C(changed=true), as the API does not say whether the event was folded into
    an open incident.
seealso:
  - module: svpms.incident_response.pagerduty_escalate
  - name: PagerDuty Events API v2
    description: Sending an event to the Events API.
    link: https://developer.pagerduty.com/docs/send-alert-event
'''

EXAMPLES = r'''
- name: Page the on-call engineer for a P1
  svpms.incident_response.pagerduty_event:
    event_action: trigger
    dedup_key: "svpms-{{ incident_id }}"
    summary: "P1 svpms-api: 5xx error rate 12.4% (threshold 5%)"
    source: svpms-api
    severity: error
    component: api
    group: svpms-prod
    class: high_error_rate
    custom_details:
      error_rate_pct: 12.4
      runbook: playbooks/scenario_high_error_rate.yml
    links:
      - href: https://grafana.svpms.example.com/d/production
        text: Production dashboard

- name: Resolve it once verified
  svpms.incident_response.pagerduty_event:
    event_action: resolve
    dedup_key: "svpms-{{ incident_id }}"
'''

RETURN = r'''
dedup_key:
  description: The incident's deduplication key (as PagerDuty confirmed it, when sent).
  returned: success
  type: str
  sample: svpms-20260213-high-error-rate
status:
  description: PagerDuty's status for the event.
  returned: when sent
  type: str
  sample: success
message:
  description: PagerDuty's message for the event.
  returned: when sent
  type: str
  sample: Event processed
payload:
  description: The JSON body sent (or, in check mode, that would be sent), without C(routing_key).
  returned: success
  type: dict
  sample:
    event_action: trigger
    dedup_key: svpms-20260213-high-error-rate
    payload:
      summary: "P1 svpms-api: 5xx error rate 12.4% (threshold 5%)"
      source: svpms-api
      severity: error
'''

from ansible.module_utils.basic import AnsibleModule, env_fallback  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import notify  # noqa: E402

SERVICE = 'PagerDuty Events API'
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
TRIGGER_FIELDS = ('component', 'group', 'class')


def build_payload(params):
    """The event body without routing_key (pure); -> (payload, truncated)."""
    body = dict(event_action=params['event_action'], dedup_key=params['dedup_key'])
    truncated = False
    if params['event_action'] == 'trigger':
        summary = params['summary']
        if len(summary) > MAX_SUMMARY:
            summary, truncated = summary[:MAX_SUMMARY], True
        event = dict(summary=summary, source=params['source'], severity=params['severity'])
        for field in TRIGGER_FIELDS:
            if params.get(field):
                event[field] = params[field]
        if params.get('custom_details'):
            event['custom_details'] = params['custom_details']
        body['payload'] = event
        if params.get('links'):
            body['links'] = [dict((k, v) for k, v in link.items() if v is not None) for link in params['links']]
    return body, truncated


def main():
    spec = notify.notify_argument_spec()
    spec.update(
        routing_key=dict(type='str', no_log=True, fallback=(env_fallback, ['PAGERDUTY_ROUTING_KEY'])),
        events_url=dict(type='str', default='https://events.pagerduty.com'),
        event_action=dict(type='str', default='trigger', choices=['trigger', 'acknowledge', 'resolve']),
        dedup_key=dict(type='str', required=True, no_log=False),
        summary=dict(type='str'),
        source=dict(type='str', default='svpms-incident-response'),
        severity=dict(type='str', default='error', choices=['critical', 'error', 'warning', 'info']),
        component=dict(type='str'),
        group=dict(type='str'),
        custom_details=dict(type='dict'),
        links=dict(type='list', elements='dict',
                   options=dict(href=dict(type='str', required=True), text=dict(type='str'))),
    )
    spec['class'] = dict(type='str')
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('event_action', 'trigger', ['summary'])])
    p = module.params
    notify.check_common(module)
    error = notify.check_base_url(p['events_url'], 'events_url')
    if error:
        module.fail_json(msg=error)
    if not (p['dedup_key'] or '').strip() or len(p['dedup_key']) > MAX_DEDUP_KEY:
        module.fail_json(msg='dedup_key must be 1 to %d characters, got %d' % (MAX_DEDUP_KEY, len(p['dedup_key'] or '')))
    if p['event_action'] == 'trigger' and not (p['summary'] or '').strip():
        module.fail_json(msg='summary must not be empty for event_action=trigger')
    if not p['routing_key']:
        notify.exit_not_configured(module, 'PagerDuty', 'set routing_key or env PAGERDUTY_ROUTING_KEY')

    payload, truncated = build_payload(p)
    if truncated:
        module.warn('summary is longer than %d characters; truncated (PagerDuty rejects longer ones)' % MAX_SUMMARY)
    url = notify.join_url(p['events_url'], 'v2', 'enqueue')
    if module.check_mode:
        module.exit_json(changed=True, dedup_key=p['dedup_key'], payload=payload,
                         msg='check mode: would POST %s (event_action=%s); nothing sent'
                         % (notify.safe_url(url), p['event_action']))

    client = notify.client_for(module, SERVICE, [p['routing_key']],
                               token_hint='routing_key or env PAGERDUTY_ROUTING_KEY: the integration key '
                               'of an Events API v2 integration',
                               id_hint='events_url')
    body = dict(payload, routing_key=p['routing_key'])
    try:
        # The dedup_key makes a repeated event harmless: a timeout may be retried.
        answer = client.send_json('POST', url, body, idempotent=True)[1]
    except notify.NotifyError as err:
        notify.fail_notify(module, err, dedup_key=p['dedup_key'], payload=payload)
    answer = answer if isinstance(answer, dict) else {}
    module.exit_json(changed=True, dedup_key=answer.get('dedup_key') or p['dedup_key'],
                     status=answer.get('status'), message=answer.get('message'), payload=payload)


if __name__ == '__main__':
    main()
