#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: slack_message
short_description: Post an incident message to Slack, optionally in the incident's thread
version_added: 1.0.0
description:
  - Posts one message with the Slack Web API (C(POST <api_url>/chat.postMessage)) as a bot - the P2
    notification, and every update of an incident in the C(#incidents) thread.
  - One thread per incident - the first message starts it (its RV(ts) becomes RV(thread_ts)); pass that
    RV(thread_ts) to every later message so that it replies in the thread.
  - Slack answers HTTP 200 with C(ok=false) on errors; the module fails with Slack's error and what to do
    (for example invite the bot for C(not_in_channel), check the token for C(invalid_auth)).
  - Without a bot token (O(token) or E(SLACK_BOT_TOKEN)) the task is skipped, not failed.
author: SVPMS Platform Team (@svpms)
extends_documentation_fragment:
  - svpms.incident_response.notify
options:
  token:
    description:
      - "Slack bot token (C(xoxb-...)) with the C(chat:write) scope, sent as C(Authorization: Bearer ...).
        Falls back to E(SLACK_BOT_TOKEN). Never returned or logged."
    type: str
  api_url:
    description:
      - Base URL of the Slack Web API. Point it at a local receiver for tests and the sandbox.
    type: str
    default: https://slack.com/api
  channel:
    description:
      - Channel id (V(C0123ABCD)) or name (V(#incidents)). The bot must be a member of it.
    type: str
    required: true
  text:
    description:
      - Message text (Slack mrkdwn). With O(blocks) it is the notification and fallback text.
    type: str
    required: true
  blocks:
    description:
      - Block Kit blocks for a richer message.
    type: list
    elements: dict
  thread_ts:
    description:
      - C(ts) of the incident thread's first message; the message replies in that thread.
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Sends nothing and returns the exact RV(payload) it would send.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - Posting is not idempotent - every run that sends posts a message. A timeout after the request was
    sent is therefore not retried (Slack may have posted it); HTTP 429 (C(ratelimited), with
    C(Retry-After)) and 5xx are.
seealso:
  - name: chat.postMessage
    description: Slack Web API method reference.
    link: https://api.slack.com/methods/chat.postMessage
'''

EXAMPLES = r'''
- name: Open the incident thread in the incidents channel
  svpms.incident_response.slack_message:
    channel: "#incidents"
    text: ":rotating_light: P2 svpms-api: ERP integration errors since 03:12 UTC. Incident {{ incident_id }}"
  register: slack_root

- name: Post an update in the same thread
  svpms.incident_response.slack_message:
    channel: "#incidents"
    thread_ts: "{{ slack_root.thread_ts }}"
    text: "Mitigation: ERP integration disabled with the circuit breaker; watching the error rate."
'''

RETURN = r'''
ts:
  description: Slack timestamp (id) of the posted message.
  returned: when sent
  type: str
  sample: "1700000000.000100"
channel:
  description: Id of the channel the message was posted in.
  returned: when sent
  type: str
  sample: C0123ABCD
thread_ts:
  description:
    - The incident thread's root - the given O(thread_ts), or this message's RV(ts) when it started the
      thread. Store it with the incident and pass it to later messages.
  returned: when sent
  type: str
  sample: "1700000000.000100"
payload:
  description: The JSON body sent (or, in check mode, that would be sent).
  returned: success
  type: dict
  sample: {"channel": "#incidents", "text": "Mitigation applied", "thread_ts": "1700000000.000100"}
'''

from ansible.module_utils.basic import AnsibleModule, env_fallback  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import notify  # noqa: E402

SERVICE = 'Slack Web API'
TOKEN_HOW = 'token or env SLACK_BOT_TOKEN'
AUTH_ERRORS = ('invalid_auth', 'not_authed', 'token_revoked', 'token_expired', 'account_inactive',
               'no_permission', 'ekm_access_denied', 'not_allowed_token_type')
HINTS = {
    'not_in_channel': 'invite the bot to the channel (/invite @<bot> in {channel}) and run again',
    'channel_not_found': 'check channel ({channel}): the id or name, and that the bot can see it',
    'is_archived': 'channel {channel} is archived: unarchive it or use another channel',
    'missing_scope': 'the bot token lacks the chat:write scope: add it to the Slack app and reinstall it',
    'msg_too_long': 'shorten text (Slack cuts messages at 40,000 characters)',
    'no_text': 'set text (or blocks)',
    'invalid_blocks': 'check blocks against the Block Kit reference',
    'invalid_blocks_format': 'blocks must be a list of Block Kit block objects',
    'too_many_attachments': 'send fewer blocks',
    'restricted_action': 'a workspace setting stops the bot posting in {channel}',
    'ratelimited': 'rate limited: retry later',
}


def slack_hint(error, channel):
    if error in AUTH_ERRORS:
        return 'check the token (%s): a valid bot token of this workspace' % TOKEN_HOW
    hint = HINTS.get(error)
    return hint.format(channel=channel) if hint else 'see https://api.slack.com/methods/chat.postMessage#errors'


def build_payload(params):
    payload = dict(channel=params['channel'], text=params['text'])
    if params.get('blocks'):
        payload['blocks'] = params['blocks']
    if params.get('thread_ts'):
        payload['thread_ts'] = params['thread_ts']
    return payload


def main():
    spec = notify.notify_argument_spec()
    spec.update(
        token=dict(type='str', no_log=True, fallback=(env_fallback, ['SLACK_BOT_TOKEN'])),
        api_url=dict(type='str', default='https://slack.com/api'),
        channel=dict(type='str', required=True),
        text=dict(type='str', required=True),
        blocks=dict(type='list', elements='dict'),
        thread_ts=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    notify.check_common(module)
    error = notify.check_base_url(p['api_url'], 'api_url')
    if error:
        module.fail_json(msg=error)
    if not (p['channel'] or '').strip():
        module.fail_json(msg='channel must not be empty')
    if not (p['text'] or '').strip():
        module.fail_json(msg='text must not be empty')
    if not p['token']:
        notify.exit_not_configured(module, 'Slack', 'set %s' % TOKEN_HOW)

    payload = build_payload(p)
    url = notify.join_url(p['api_url'], 'chat.postMessage')
    if module.check_mode:
        module.exit_json(changed=True, payload=payload,
                         msg='check mode: would POST %s to %s%s; nothing sent'
                         % (notify.safe_url(url), p['channel'], ' (thread %s)' % p['thread_ts']
                            if p['thread_ts'] else ''))

    client = notify.client_for(module, SERVICE, [p['token']], token_hint=TOKEN_HOW, id_hint='api_url')
    try:
        answer = client.send_json('POST', url, payload, headers={'Authorization': 'Bearer %s' % p['token']})[1]
    except notify.NotifyError as err:
        notify.fail_notify(module, err, payload=payload)
    if not isinstance(answer, dict) or answer.get('ok') is not True:
        slack_error = answer.get('error') if isinstance(answer, dict) else None
        err = notify.NotifyError(
            SERVICE, notify.redact('chat.postMessage to %s failed: %s%s' % (
                p['channel'], slack_error or 'answer without ok=true: %s' % notify.error_detail(answer),
                ' (needed: %s)' % answer['needed'] if isinstance(answer, dict) and answer.get('needed') else ''),
                [p['token']]),
            status=200, hint=slack_hint(slack_error, p['channel']),
            kind=notify.KIND_AUTH if slack_error in AUTH_ERRORS else notify.KIND_API)
        notify.fail_notify(module, err, payload=payload, slack_error=slack_error)
    if answer.get('warning'):  # e.g. missing_charset, superfluous_charset
        module.warn('Slack answered ok with a warning: %s' % notify.redact(answer['warning'], [p['token']]))
    ts = answer.get('ts')
    module.exit_json(changed=True, ts=ts, channel=answer.get('channel'), thread_ts=p['thread_ts'] or ts,
                     payload=payload)


if __name__ == '__main__':
    main()
