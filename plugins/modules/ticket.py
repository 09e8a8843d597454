#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: ticket
short_description: Open a ticket for a P3 incident - a JSON webhook, or a Markdown ticket in the incident folder
version_added: 1.0.0
description:
  - The playbook's "P3 - create ticket". With O(url), posts the ticket as JSON (C(title), C(body),
    C(severity), C(labels), C(incident_id)) to a generic webhook (a ticketing system's inbound webhook,
    an automation endpoint).
  - Without O(url), writes the ticket as Markdown to C(<path>/ticket.md), O(path) being the incident
    folder. The file is idempotent - the same ticket again changes nothing - and supports diff mode.
  - With neither O(url) (nor E(SVPMS_TICKET_WEBHOOK_URL)) nor O(path), the task is skipped, not failed.
author: SVPMS Platform Team (@svpms)
extends_documentation_fragment:
  - svpms.incident_response.notify
options:
  title:
    description:
      - One-line ticket title.
    type: str
    required: true
  body:
    description:
      - Ticket text (Markdown) - what happened, the evidence, what to do next.
    type: str
    required: true
  severity:
    description:
      - Incident severity.
    type: str
    choices: [P0, P1, P2, P3]
    default: P3
  labels:
    description:
      - Labels/tags for the ticket.
    type: list
    elements: str
    default: []
  incident_id:
    description:
      - Id of the incident the ticket belongs to.
    type: str
  url:
    description:
      - Webhook URL to C(POST) the ticket to. Falls back to E(SVPMS_TICKET_WEBHOOK_URL).
      - Must not embed credentials (C(user:password@)); pass them in O(headers). Its query string is never
        returned.
    type: str
  headers:
    description:
      - Extra request headers for the webhook, for example C(Authorization). Values are sent but never
        returned or logged; only the names appear in RV(header_names).
    type: dict
    default: {}
  path:
    description:
      - The incident folder; without O(url) the ticket is written to C(<path>/ticket.md). The folder is
        created when missing.
    type: path
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Sends nothing and writes nothing; returns the RV(payload) it would send, or the RV(content) it
        would write and whether that would change the file.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: partial
    details:
      - For the Markdown ticket file only.
notes:
  - Posting to the webhook is not idempotent (every run that sends posts the ticket); a timeout after the
    request was sent is not retried.
'''

EXAMPLES = r'''
- name: Open the P3 ticket (webhook when configured, else incidents/<id>/ticket.md)
  svpms.incident_response.ticket:
    title: "svpms-api: slow CSV export for large tenants"
    body: |
      p95 of /api/v1/export is 1.4 s (SLO 1 s) for tenants over 10k items.
      Evidence: incidents/{{ incident_id }}/evidence.json
    severity: P3
    labels: [performance, export]
    incident_id: "{{ incident_id }}"
    url: "{{ svpms_ticket_webhook_url | default(omit) }}"
    headers:
      Authorization: "Bearer {{ ticket_webhook_token }}"
    path: "incidents/{{ incident_id }}"
'''

RETURN = r'''
destination:
  description: Where the ticket went - V(webhook) or V(file).
  returned: success, unless skipped
  type: str
  sample: file
ticket_file:
  description: The Markdown ticket file, C(<path>/ticket.md).
  returned: when written to a file
  type: str
  sample: incidents/20260213-slow-export/ticket.md
content:
  description: The Markdown ticket (in check mode, what would be written).
  returned: when written to a file
  type: str
  sample: "# [P3] svpms-api: slow CSV export for large tenants\n..."
payload:
  description: The JSON body sent to the webhook (or, in check mode, that would be sent).
  returned: when sent to a webhook
  type: dict
  sample: {"title": "svpms-api: slow CSV export", "body": "...", "severity": "P3", "labels": [], "incident_id": "x"}
response:
  description: What the webhook answered (parsed JSON, else text).
  returned: when sent to a webhook
  type: raw
  sample: {"id": "SVPMS-42"}
url:
  description: The webhook URL without its query string.
  returned: when sent to a webhook
  type: str
  sample: https://tickets.svpms.example.com/hooks/incident
header_names:
  description: Names of the headers sent to the webhook (values are never returned).
  returned: when sent to a webhook
  type: list
  elements: str
  sample: [Authorization]
'''

import os  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, env_fallback  # noqa: E402
from ansible.module_utils.common.text.converters import to_bytes, to_text  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import notify  # noqa: E402

SERVICE = 'ticket webhook'
FILE_NAME = 'ticket.md'


def render_markdown(params):
    """The Markdown ticket (pure and deterministic: the same input gives the same file)."""
    lines = ['# [%s] %s' % (params['severity'], ' '.join(params['title'].split())), '']
    lines.append('- **Severity:** %s' % params['severity'])
    if params.get('incident_id'):
        lines.append('- **Incident:** %s' % params['incident_id'])
    if params.get('labels'):
        lines.append('- **Labels:** %s' % ', '.join(params['labels']))
    lines += ['', params['body'].strip(), '']
    return '\n'.join(lines)


def build_payload(params):
    return dict(title=params['title'], body=params['body'], severity=params['severity'],
                labels=list(params.get('labels') or []), incident_id=params.get('incident_id'))


def write_file(module, folder):
    target = os.path.join(folder, FILE_NAME)
    content = render_markdown(module.params)
    before = None
    if os.path.exists(target):
        with open(target, 'rb') as fh:
            before = to_text(fh.read(), errors='surrogate_or_strict')
    changed = before != content
    result = dict(destination='file', ticket_file=target, content=content, changed=changed)
    if module._diff:
        result['diff'] = dict(before=before or '', after=content, before_header=target, after_header=target)
    if changed and not module.check_mode:
        try:
            if not os.path.isdir(folder):
                os.makedirs(folder)
            fd, tmp = tempfile.mkstemp(prefix='.ticket.', suffix='.tmp', dir=folder)
            with os.fdopen(fd, 'wb') as fh:
                fh.write(to_bytes(content, errors='surrogate_or_strict'))
            module.atomic_move(tmp, target)
        except (IOError, OSError) as exc:
            module.fail_json(msg='could not write the ticket %s: %s' % (target, exc), ticket_file=target)
    module.exit_json(**result)


def main():
    spec = notify.notify_argument_spec()
    spec.update(
        title=dict(type='str', required=True),
        body=dict(type='str', required=True),
        severity=dict(type='str', default='P3', choices=['P0', 'P1', 'P2', 'P3']),
        labels=dict(type='list', elements='str', default=[]),
        incident_id=dict(type='str'),
        url=dict(type='str', fallback=(env_fallback, ['SVPMS_TICKET_WEBHOOK_URL'])),
        headers=dict(type='dict', default={}, no_log=True),
        path=dict(type='path'),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    headers = dict((str(k), '' if v is None else str(v)) for k, v in (p['headers'] or {}).items())
    invocation = notify.masked_invocation(module, headers)
    if p['url']:
        invocation['module_args']['url'] = notify.safe_url(p['url'])

    def fail(msg, **kwargs):
        module.fail_json(msg=msg, invocation=invocation, **kwargs)

    notify.check_common(module)
    if not (p['title'] or '').strip():
        fail('title must not be empty')
    if not (p['body'] or '').strip():
        fail('body must not be empty')
    for name in headers:
        if not name or any(ch in name for ch in ':\r\n ') or any(ch in headers[name] for ch in '\r\n'):
            fail('headers must map header names to single-line values; invalid header name %r' % name)

    if not p['url']:
        if not p['path']:
            notify.exit_not_configured(module, 'ticket', 'set url or env SVPMS_TICKET_WEBHOOK_URL for a '
                                       'webhook, or path for a Markdown ticket in the incident folder')
        write_file(module, p['path'])

    error = notify.validate_url(p['url'])
    if error:
        fail('url: %s' % error)
    payload = build_payload(p)
    result = dict(destination='webhook', url=notify.safe_url(p['url']), header_names=sorted(headers),
                  payload=payload, invocation=invocation)
    if module.check_mode:
        module.exit_json(changed=True, msg='check mode: would POST %s; nothing sent' % result['url'], **result)
    query = p['url'].split('?', 1)[1] if '?' in p['url'] else None
    secrets = [v for v in headers.values() if len(v) >= 6] + ([query] if query else [])
    client = notify.client_for(module, SERVICE, secrets,
                               token_hint='the credentials in headers', id_hint='url')
    try:
        answer = client.send_json('POST', p['url'], payload, headers=headers)[1]
    except notify.NotifyError as err:
        notify.fail_notify(module, err, **result)
    module.exit_json(changed=True, response=answer, **result)


if __name__ == '__main__':
    main()
