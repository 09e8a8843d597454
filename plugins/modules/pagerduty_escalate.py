#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pagerduty_escalate
short_description: Escalate an open PagerDuty incident up the escalation ladder
version_added: 1.0.0
description:
  - Finds the open (triggered or acknowledged) PagerDuty incident of O(dedup_key) with the REST API
    (C(GET <api_url>/incidents?incident_key=...&statuses[]=triggered&statuses[]=acknowledged)) and moves
    it to an escalation level with C(PUT <api_url>/incidents/<id>).
  - The ladder is the incident response playbook's - level 1 on-call engineer, 2 platform lead,
    3 engineering manager, 4 CTO. It must match the levels of the service's PagerDuty escalation policy.
  - O(next=true) moves one level up (for example when verification fails after a mitigation), capped at
    O(max_level); at the top it changes nothing and says so. An explicit O(escalation_level) is
    idempotent, and the module never moves an incident down the ladder.
  - Without an API token or a From address (options or E(PAGERDUTY_API_TOKEN), E(PAGERDUTY_FROM_EMAIL))
    the task is skipped, not failed.
author: SVPMS Platform Team (@svpms)
extends_documentation_fragment:
  - svpms.incident_response.notify
options:
  api_token:
    description:
      - "PagerDuty REST API token, sent as C(Authorization: Token token=...). Falls back to
        E(PAGERDUTY_API_TOKEN). Never returned or logged."
    type: str
  api_url:
    description:
      - Base URL of the PagerDuty REST API. Point it at a local receiver for tests and the sandbox.
    type: str
    default: https://api.pagerduty.com
  from_email:
    description:
      - Email address of a valid PagerDuty user, sent as the C(From) header (required by PagerDuty for
        changes made with an account-level token). Falls back to E(PAGERDUTY_FROM_EMAIL).
    type: str
  dedup_key:
    description:
      - The incident's deduplication key, the O(svpms.incident_response.pagerduty_event#module:dedup_key)
        it was triggered with (PagerDuty's C(incident_key)).
    type: str
    required: true
  escalation_level:
    description:
      - Escalation level to move the incident to, 1 to O(max_level). Mutually exclusive with O(next).
    type: int
  next:
    description:
      - Move the incident one level above its current level, capped at O(max_level).
      - Mutually exclusive with O(escalation_level); one of the two is required.
    type: bool
    default: false
  max_level:
    description:
      - Highest level of the ladder (of the PagerDuty escalation policy), 1 to 10.
    type: int
    default: 4
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Reads the incident (GET requests only), sends no C(PUT), and returns the levels and the
        RV(payload) it would send.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - The current level is read from the incident's C(escalation_level). When PagerDuty does not report it
    on the incident, the module derives it from the on-call entries (C(GET /oncalls)) of the incident's
    escalation policy that match its assignees; when that is not possible either, O(next) fails and asks
    for an explicit O(escalation_level).
  - An incident that is not open (never triggered, or resolved) is a failure that says so.
seealso:
  - module: svpms.incident_response.pagerduty_event
'''

EXAMPLES = r'''
- name: Verification failed - wake up the next level of the ladder
  svpms.incident_response.pagerduty_escalate:
    dedup_key: "svpms-{{ incident_id }}"
    next: true
  register: escalation

- name: Say who is being paged now
  ansible.builtin.debug:
    msg: "Escalated to level {{ escalation.after_level }} ({{ escalation.ladder_role }})"

- name: Bring in the engineering manager directly
  svpms.incident_response.pagerduty_escalate:
    dedup_key: "svpms-{{ incident_id }}"
    escalation_level: 3
    from_email: oncall-bot@svpms.example.com
'''

RETURN = r'''
incident_id:
  description: PagerDuty id of the incident.
  returned: when an open incident was found
  type: str
  sample: PT4KHLK
before_level:
  description: Escalation level before the task; V(null) when PagerDuty did not tell.
  returned: when an open incident was found
  type: int
  sample: 1
after_level:
  description: Escalation level after the task (in check mode, the level it would have).
  returned: when an open incident was found
  type: int
  sample: 2
ladder_role:
  description: Who RV(after_level) is on the ladder - on-call engineer, platform lead, engineering manager, CTO.
  returned: when an open incident was found
  type: str
  sample: platform lead
payload:
  description: The C(PUT) body sent (or, in check mode, that would be sent).
  returned: when the level changes
  type: dict
  sample: {"incident": {"type": "incident_reference", "escalation_level": 2}}
'''

from ansible.module_utils.basic import AnsibleModule, env_fallback  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import notify  # noqa: E402

SERVICE = 'PagerDuty REST API'
ACCEPT = 'application/vnd.pagerduty+json;version=2'
# The seed's escalation paths (incident-response-playbook.md, ESCALATION PATHS).
LADDER = {1: 'on-call engineer', 2: 'platform lead', 3: 'engineering manager', 4: 'CTO'}
OPEN_STATUSES = ('triggered', 'acknowledged')


def ladder_role(level):
    if level is None:
        return None
    return LADDER.get(level, 'level %d' % level)


def plan(current, requested, go_next, max_level):
    """Pure: -> (target level or None for 'no change', message)."""
    if go_next:
        if current is None:
            return None, None
        if current >= max_level:
            return None, ('already at the top of the ladder: level %d (%s); nobody left to escalate to'
                          % (current, ladder_role(current)))
        return current + 1, None
    if current is not None and requested == current:
        return None, 'already at level %d (%s)' % (current, ladder_role(current))
    if current is not None and requested < current:
        return None, ('already at level %d (%s), above the requested level %d: not moving the incident '
                      'down the ladder' % (current, ladder_role(current), requested))
    return requested, None


def _as_level(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def current_level(client, base, headers, incident):
    """The incident's escalation level: its own field, else derived from /oncalls; None if unknown."""
    level = _as_level(incident.get('escalation_level'))
    if level is not None:
        return level
    policy = (incident.get('escalation_policy') or {}).get('id')
    assignees = set((a.get('assignee') or {}).get('id') for a in incident.get('assignments') or [])
    assignees.discard(None)
    if not policy or not assignees:
        return None
    url = '%s?%s' % (notify.join_url(base, 'oncalls'),
                     notify.urlencode_pairs([('escalation_policy_ids[]', policy)]))
    answer = client.send_json('GET', url, headers=headers)[1]
    levels = [_as_level(o.get('escalation_level')) for o in (answer or {}).get('oncalls') or []
              if (o.get('user') or {}).get('id') in assignees]
    levels = [lv for lv in levels if lv is not None]
    return max(levels) if levels else None


def main():
    spec = notify.notify_argument_spec()
    spec.update(
        api_token=dict(type='str', no_log=True, fallback=(env_fallback, ['PAGERDUTY_API_TOKEN'])),
        api_url=dict(type='str', default='https://api.pagerduty.com'),
        from_email=dict(type='str', fallback=(env_fallback, ['PAGERDUTY_FROM_EMAIL'])),
        dedup_key=dict(type='str', required=True, no_log=False),
        escalation_level=dict(type='int'),
        next=dict(type='bool', default=False),
        max_level=dict(type='int', default=4),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           mutually_exclusive=[('escalation_level', 'next')])
    p = module.params
    notify.check_common(module)
    error = notify.check_base_url(p['api_url'], 'api_url')
    if error:
        module.fail_json(msg=error)
    if not 1 <= p['max_level'] <= 10:
        module.fail_json(msg='max_level must be between 1 and 10, got %d' % p['max_level'])
    if p['escalation_level'] is None and not p['next']:
        module.fail_json(msg='one of escalation_level or next=true is required')
    if p['escalation_level'] is not None and not 1 <= p['escalation_level'] <= p['max_level']:
        module.fail_json(msg='escalation_level must be between 1 and max_level=%d, got %d'
                         % (p['max_level'], p['escalation_level']))
    if not (p['dedup_key'] or '').strip():
        module.fail_json(msg='dedup_key must not be empty')
    missing = [how for value, how in ((p['api_token'], 'api_token or env PAGERDUTY_API_TOKEN'),
                                      (p['from_email'], 'from_email or env PAGERDUTY_FROM_EMAIL'))
               if not value]
    if missing:
        notify.exit_not_configured(module, 'PagerDuty REST API', 'set ' + ' and '.join(missing))

    client = notify.client_for(module, SERVICE, [p['api_token']],
                               token_hint='api_token or env PAGERDUTY_API_TOKEN, and from_email',
                               id_hint='api_url and dedup_key')
    headers = {'Authorization': 'Token token=%s' % p['api_token'], 'Accept': ACCEPT, 'From': p['from_email']}
    list_url = '%s?%s' % (notify.join_url(p['api_url'], 'incidents'), notify.urlencode_pairs(
        [('incident_key', p['dedup_key'])] + [('statuses[]', s) for s in OPEN_STATUSES]))
    try:
        answer = client.send_json('GET', list_url, headers=headers)[1]
        incidents = [i for i in (answer or {}).get('incidents') or [] if isinstance(i, dict)]
        if not incidents:
            module.fail_json(msg='%s: no open (triggered or acknowledged) incident with incident_key %s. '
                             'Trigger it first with svpms.incident_response.pagerduty_event and the same '
                             'dedup_key, or check dedup_key (a resolved incident cannot be escalated)'
                             % (SERVICE, p['dedup_key']), service=SERVICE, error_kind='not_found')
        if len(incidents) > 1:
            module.warn('%d open incidents share incident_key %s; escalating the first, %s'
                        % (len(incidents), p['dedup_key'], incidents[0].get('id')))
        incident = incidents[0]
        incident_id = incident.get('id')
        before = current_level(client, p['api_url'], headers, incident)
    except notify.NotifyError as err:
        notify.fail_notify(module, err, dedup_key=p['dedup_key'])

    target, message = plan(before, p['escalation_level'], p['next'], p['max_level'])
    result = dict(incident_id=incident_id, dedup_key=p['dedup_key'], before_level=before)
    if target is None and message is None:
        module.fail_json(msg='%s: incident %s does not report its escalation level, and no on-call entry of '
                         'its escalation policy matches its assignees; pass escalation_level explicitly'
                         % (SERVICE, incident_id), service=SERVICE, error_kind='api_error', **result)
    if target is None:
        module.exit_json(changed=False, after_level=before, ladder_role=ladder_role(before), msg=message,
                         **result)

    payload = {'incident': {'type': 'incident_reference', 'escalation_level': target}}
    result.update(payload=payload, ladder_role=ladder_role(target))
    if module.check_mode:
        module.exit_json(changed=True, after_level=target,
                         msg='check mode: would escalate incident %s from level %s to %d (%s); nothing sent'
                         % (incident_id, before, target, ladder_role(target)), **result)
    try:
        answer = client.send_json('PUT', notify.join_url(p['api_url'], 'incidents', incident_id), payload,
                                  headers=headers)[1]
    except notify.NotifyError as err:
        notify.fail_notify(module, err, **result)
    after = _as_level(((answer or {}).get('incident') or {}).get('escalation_level')) or target
    result['ladder_role'] = ladder_role(after)
    module.exit_json(changed=True, after_level=after,
                     msg='escalated incident %s from level %s to %d (%s)'
                     % (incident_id, before, after, ladder_role(after)), **result)


if __name__ == '__main__':
    main()
