#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: statuspage_incident
short_description: Open, update or resolve an incident on an Atlassian Statuspage
version_added: 1.0.0
description:
  - Keeps the public status page in step with the incident through the Statuspage REST API v1.
  - V(create) opens an incident (C(POST <api_url>/pages/<page_id>/incidents), status C(investigating)).
    When an unresolved incident with the same O(name) is already open on the page, it is returned
    instead (C(changed=false)), so a re-run does not open a second one.
  - V(update) posts an update (C(PATCH <api_url>/pages/<page_id>/incidents/<incident_id>)) with
    O(status) V(identified) or V(monitoring) and the message O(body) - the playbook's "update the
    status page every 30 min".
  - V(resolve) sets the status to C(resolved); an incident that is already resolved is left alone.
  - Whether subscribers are notified is O(deliver_notifications), true by default (P0/P1 customers must be
    told); the playbook decides per severity.
  - Without an API key or page id (options or E(STATUSPAGE_API_KEY), E(STATUSPAGE_PAGE_ID)) the task is
    skipped, not failed.
author: SVPMS Platform Team (@svpms)
extends_documentation_fragment:
  - svpms.incident_response.notify
options:
  api_key:
    description:
      - "Statuspage API key, sent as C(Authorization: OAuth ...). Falls back to E(STATUSPAGE_API_KEY). Never
        returned or logged."
    type: str
  api_url:
    description:
      - Base URL of the Statuspage API. Point it at a local receiver for tests and the sandbox.
    type: str
    default: https://api.statuspage.io/v1
  page_id:
    description:
      - Id of the status page. Falls back to E(STATUSPAGE_PAGE_ID).
    type: str
  action:
    description:
      - V(create) a new incident, post an V(update) to one, or V(resolve) it.
    type: str
    choices: [create, update, resolve]
    required: true
  incident_id:
    description:
      - Id of the Statuspage incident (RV(incident_id) of V(create)); required for V(update) and V(resolve).
    type: str
  name:
    description:
      - Incident title shown to customers; required for V(create).
    type: str
  status:
    description:
      - Status of an V(update). V(create) always opens as V(investigating) and V(resolve) sets C(resolved).
    type: str
    choices: [investigating, identified, monitoring]
    default: identified
  body:
    description:
      - Customer-facing message of this create, update or resolve.
    type: str
  impact_override:
    description:
      - Impact shown on the page, overriding the one Statuspage computes from the components (V(create)
        and V(update)).
    type: str
    choices: [none, minor, major, critical]
  deliver_notifications:
    description:
      - Notify the page's subscribers (email, SMS, webhooks) of this create, update or resolve.
    type: bool
    default: true
  component_ids:
    description:
      - Ids of the page components the incident affects.
    type: list
    elements: str
  component_status:
    description:
      - Status to give O(component_ids). On V(resolve) it defaults to V(operational) when O(component_ids)
        is set; otherwise the components are left as they are.
    type: str
    choices: [operational, degraded_performance, partial_outage, major_outage, under_maintenance]
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Sends no request at all (not even the look-ups) and returns the exact RV(payload) it would send.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
seealso:
  - name: Statuspage API
    description: Incidents in the Statuspage REST API.
    link: https://developer.statuspage.io/#tag/incidents
'''

EXAMPLES = r'''
- name: Tell customers (P1)
  svpms.incident_response.statuspage_incident:
    action: create
    page_id: "{{ statuspage_page_id }}"
    name: Elevated API error rates
    body: We are investigating elevated error rates on the SVPMS API.
    impact_override: major
    component_ids: [k4mw7lbq2c8p]
    component_status: partial_outage
    deliver_notifications: true
  register: status_page

- name: Post the identified cause
  svpms.incident_response.statuspage_incident:
    action: update
    page_id: "{{ statuspage_page_id }}"
    incident_id: "{{ status_page.incident_id }}"
    status: identified
    body: A faulty deployment was identified and is being rolled back.

- name: Resolve it
  svpms.incident_response.statuspage_incident:
    action: resolve
    page_id: "{{ statuspage_page_id }}"
    incident_id: "{{ status_page.incident_id }}"
    body: Error rates are back to normal. We will publish a post-mortem.
    component_ids: [k4mw7lbq2c8p]
'''

RETURN = r'''
incident_id:
  description: Id of the Statuspage incident (in check mode for V(create), V(null)).
  returned: success
  type: str
  sample: p31zjtct2jer
status:
  description: Incident status after the task (in check mode, the status it would have).
  returned: success
  type: str
  sample: investigating
shortlink:
  description: Short public link to the incident.
  returned: when Statuspage returned the incident
  type: str
  sample: https://stspg.io/p31zj
payload:
  description: The JSON body sent (or, in check mode, that would be sent).
  returned: when a change is sent or planned
  type: dict
  sample:
    incident:
      name: Elevated API error rates
      status: investigating
      body: We are investigating elevated error rates on the SVPMS API.
      deliver_notifications: true
'''

from ansible.module_utils.basic import AnsibleModule, env_fallback  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import notify  # noqa: E402

SERVICE = 'Statuspage API'
DEFAULT_RESOLVE_BODY = 'This incident has been resolved.'


def build_payload(params):
    """The request body for the action (pure)."""
    action = params['action']
    incident = {}
    if action == 'create':
        incident.update(name=params['name'], status='investigating')
    elif action == 'update':
        incident['status'] = params['status']
    else:
        incident['status'] = 'resolved'
    body = params.get('body')
    if action == 'resolve' and not body:
        body = DEFAULT_RESOLVE_BODY
    if body:
        incident['body'] = body
    if params.get('impact_override') and action != 'resolve':
        incident['impact_override'] = params['impact_override']
    incident['deliver_notifications'] = params['deliver_notifications']
    components = params.get('component_ids') or []
    if components:
        incident['component_ids'] = components
        component_status = params.get('component_status') or ('operational' if action == 'resolve' else None)
        if component_status:
            incident['components'] = dict((c, component_status) for c in components)
    return {'incident': incident}


def _result(incident, **extra):
    incident = incident if isinstance(incident, dict) else {}
    out = dict(incident_id=incident.get('id'), status=incident.get('status'), shortlink=incident.get('shortlink'))
    out.update(extra)
    return out


def main():
    spec = notify.notify_argument_spec()
    spec.update(
        api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['STATUSPAGE_API_KEY'])),
        api_url=dict(type='str', default='https://api.statuspage.io/v1'),
        page_id=dict(type='str', fallback=(env_fallback, ['STATUSPAGE_PAGE_ID'])),
        action=dict(type='str', required=True, choices=['create', 'update', 'resolve']),
        incident_id=dict(type='str'),
        name=dict(type='str'),
        status=dict(type='str', default='identified', choices=['investigating', 'identified', 'monitoring']),
        body=dict(type='str'),
        impact_override=dict(type='str', choices=['none', 'minor', 'major', 'critical']),
        deliver_notifications=dict(type='bool', default=True),
        component_ids=dict(type='list', elements='str'),
        component_status=dict(type='str', choices=['operational', 'degraded_performance', 'partial_outage',
                                                   'major_outage', 'under_maintenance']),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('action', 'create', ['name']),
                                        ('action', 'update', ['incident_id']),
                                        ('action', 'resolve', ['incident_id'])])
    p = module.params
    notify.check_common(module)
    error = notify.check_base_url(p['api_url'], 'api_url')
    if error:
        module.fail_json(msg=error)
    for option in ('name', 'incident_id'):
        if p[option] is not None and not p[option].strip():
            module.fail_json(msg='%s must not be empty' % option)
    missing = [how for value, how in ((p['api_key'], 'api_key or env STATUSPAGE_API_KEY'),
                                      (p['page_id'], 'page_id or env STATUSPAGE_PAGE_ID')) if not value]
    if missing:
        notify.exit_not_configured(module, 'Statuspage', 'set ' + ' and '.join(missing))

    payload = build_payload(p)
    incidents_url = notify.join_url(p['api_url'], 'pages', p['page_id'], 'incidents')
    if p['action'] == 'create':
        url, method = incidents_url, 'POST'
    else:
        url, method = notify.join_url(incidents_url, p['incident_id']), 'PATCH'
    if module.check_mode:
        module.exit_json(changed=True, incident_id=p['incident_id'], status=payload['incident']['status'],
                         payload=payload, msg='check mode: would %s %s; nothing sent' % (method, notify.safe_url(url)))

    client = notify.client_for(module, SERVICE, [p['api_key']], token_hint='api_key or env STATUSPAGE_API_KEY',
                               id_hint='page_id%s and api_url' % ('' if p['action'] == 'create' else ', incident_id'))
    headers = {'Authorization': 'OAuth %s' % p['api_key']}
    try:
        if p['action'] == 'create':
            unresolved = client.send_json('GET', notify.join_url(incidents_url, 'unresolved'), headers=headers)[1]
            for incident in unresolved if isinstance(unresolved, list) else []:
                if isinstance(incident, dict) and incident.get('name') == p['name']:
                    module.exit_json(changed=False, **_result(
                        incident, msg='an unresolved incident named %r is already open on the page: %s'
                        % (p['name'], incident.get('id'))))
        elif p['action'] == 'resolve':
            current = client.send_json('GET', url, headers=headers)[1]
            if isinstance(current, dict) and current.get('status') in ('resolved', 'postmortem'):
                module.exit_json(changed=False, **_result(current, msg='incident %s is already %s'
                                                          % (p['incident_id'], current.get('status'))))
        answer = client.send_json(method, url, payload, headers=headers)[1]
    except notify.NotifyError as err:
        notify.fail_notify(module, err, payload=payload)
    module.exit_json(changed=True, payload=payload, **_result(answer))


if __name__ == '__main__':
    main()
