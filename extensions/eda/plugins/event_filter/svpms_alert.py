"""svpms_alert: an Event-Driven Ansible event filter that reads the alert
payloads SVPMS receives on its webhook - a CloudWatch alarm delivered by an
SNS HTTP(S) subscription, an Alertmanager webhook, a PagerDuty v3 webhook -
and adds ``event.svpms``: which runbook the alert calls for and for which
service, so the rulebook's rules stay simple.

    filters:
      - svpms.incident_response.svpms_alert:
          default_service: svpms_services

``event.svpms``: ``source`` (cloudwatch, alertmanager, pagerduty, unknown),
``state`` (firing, resolved, other), ``scenario`` (high_error_rate,
high_latency, auth_failures, payment_failure, or triage when the alert does
not say), ``service`` (an inventory host or group), ``incident_id`` (stable
per alert, safe as a directory name) and ``summary``. An SNS subscription
confirmation is ``state: other`` with ``subscribe_url`` (confirm it by hand).
Nothing raises: a payload it does not know is ``source: unknown``.
"""
import hashlib
import json
import re

DOCUMENTATION = r'''
---
short_description: Normalise CloudWatch (SNS), Alertmanager and PagerDuty alerts for the SVPMS rulebook.
description:
  - Adds event.svpms with source, state, scenario, service, incident_id and summary.
options:
  default_service:
    description: The service when the alert names none (an inventory host or group).
    type: str
    default: svpms_services
'''

# Words in an alarm / alert name or metric that say which runbook applies.
SCENARIO_WORDS = (
    ('payment_failure', ('stripe', 'webhook', 'payment')),
    ('auth_failures', ('auth', 'login', 'jwt', 'saml', 'sso')),
    ('high_latency', ('latency', 'responsetime', 'p95', 'slow')),
    ('high_error_rate', ('5xx', 'error', 'errors', 'httpcode_target_5xx')),
)
SCENARIOS = tuple(s for s, _w in SCENARIO_WORDS)
SAFE = re.compile(r'[^A-Za-z0-9._-]+')


def _scenario(*texts):
    text = ' '.join(str(t) for t in texts if t).lower()
    for scenario, words in SCENARIO_WORDS:
        if any(w in text for w in words):
            return scenario
    return 'triage'


def _incident_id(prefix, *parts):
    raw = '-'.join(str(p) for p in parts if p)
    short = SAFE.sub('-', raw).strip('-')[:48]
    return '%s-%s-%s' % (prefix, short or 'alert', hashlib.sha256(raw.encode('utf-8')).hexdigest()[:8])


def _service(value, default):
    value = SAFE.sub('-', str(value or '')).strip('-')
    return value or default


def _cloudwatch(body, default):
    """SNS envelope (Type Notification, Message = the alarm as a JSON string)."""
    if body.get('Type') == 'SubscriptionConfirmation':
        return dict(source='cloudwatch', state='other', scenario='none', service=default, incident_id='',
                    summary='SNS subscription confirmation: open SubscribeURL to confirm',
                    subscribe_url=body.get('SubscribeURL'))
    try:
        alarm = json.loads(body.get('Message') or '{}')
    except ValueError:
        alarm = {}
    trigger = alarm.get('Trigger') or {}
    dims = {d.get('name') or d.get('Name'): d.get('value') or d.get('Value') for d in trigger.get('Dimensions') or []}
    explicit = re.search(r'scenario=([a-z_]+)', alarm.get('AlarmDescription') or '')
    service = dims.get('ServiceName') or (re.search(r'service=([\w.-]+)', alarm.get('AlarmDescription') or '') or [None, None])[1]
    state = {'ALARM': 'firing', 'OK': 'resolved'}.get(alarm.get('NewStateValue'), 'other')
    return dict(source='cloudwatch', state=state,
                scenario=explicit.group(1) if explicit and explicit.group(1) in SCENARIOS
                else _scenario(alarm.get('AlarmName'), trigger.get('MetricName')),
                service=_service(service, default),
                incident_id=_incident_id('cw', alarm.get('AlarmName'), alarm.get('StateChangeTime')),
                summary='%s: %s' % (alarm.get('AlarmName'), alarm.get('NewStateReason') or alarm.get('NewStateValue')))


def _alertmanager(body, default):
    labels = dict(body.get('commonLabels') or {})
    firing = [a for a in body.get('alerts') or [] if a.get('status') == 'firing']
    if firing:
        labels = dict(firing[0].get('labels') or {}, **labels)
    annotations = body.get('commonAnnotations') or (firing[0].get('annotations') if firing else {}) or {}
    scenario = labels.get('scenario') if labels.get('scenario') in SCENARIOS else _scenario(labels.get('alertname'))
    return dict(source='alertmanager', state='firing' if body.get('status') == 'firing' else 'resolved',
                scenario=scenario, service=_service(labels.get('service'), default),
                incident_id=_incident_id('am', labels.get('alertname'), body.get('groupKey')),
                summary='%s: %s' % (labels.get('alertname'), annotations.get('summary') or ''))


def _pagerduty(body, default):
    event = body.get('event') or {}
    data = event.get('data') or {}
    kind = event.get('event_type') or ''
    svc = (data.get('service') or {}).get('summary')
    return dict(source='pagerduty',
                state='firing' if kind == 'incident.triggered' else 'resolved' if kind == 'incident.resolved' else 'other',
                scenario=_scenario(data.get('title')), service=_service(svc, default),
                incident_id=_incident_id('pd', data.get('id')), summary=data.get('title') or kind)


def main(event, default_service='svpms_services'):
    body = event.get('payload') if isinstance(event.get('payload'), dict) else event
    try:
        if 'Type' in body and 'TopicArn' in body:
            info = _cloudwatch(body, default_service)
        elif 'alerts' in body and 'groupKey' in body:
            info = _alertmanager(body, default_service)
        elif isinstance(body.get('event'), dict) and 'event_type' in body['event']:
            info = _pagerduty(body, default_service)
        else:
            info = dict(source='unknown', state='other', scenario='none', service=default_service, incident_id='',
                        summary='payload not recognised')
    except Exception as exc:  # a malformed alert must not stop the rulebook
        info = dict(source='unknown', state='other', scenario='none', service=default_service, incident_id='',
                    summary='payload not understood: %s' % type(exc).__name__)
    event['svpms'] = info
    return event
