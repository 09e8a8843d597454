"""Alerts start the matching runbook (Event-Driven Ansible): ansible-rulebook
runs extensions/eda/rulebooks/svpms_alerts.yml on loopback; the test posts
real alert payloads - a storm of three CloudWatch 5xx alarms through an SNS
HTTP subscription, two Alertmanager latency alerts, a PagerDuty incident that
names no scenario, and an SNS subscription confirmation - and asserts from
the incident records and ansible-rulebook's output (it exits 0 even when a
playbook fails) that each runbook ran exactly once, for the alert's service,
with the alert's incident id. The sandbox is healthy, so each run finds no
symptom and changes nothing. ansible-rulebook is stopped by its PID.
"""
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from tests.e2e.conftest import sandbox_inventory
from tests.helpers.servers import REPO, VENV_BIN, free_port, stop_pid
from tests.helpers.waits import until

pytestmark = pytest.mark.e2e
RULEBOOK = os.path.join(REPO, 'extensions', 'eda', 'rulebooks', 'svpms_alerts.yml')
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sns_alarm(changed_at):
    alarm = {'AlarmName': 'svpms-api-5xx-rate', 'AlarmDescription': 'API 5xx above 2 %; service=svpms-api',
             'NewStateValue': 'ALARM', 'NewStateReason': 'Threshold Crossed: 1 datapoint [7.5] > 2.0',
             'StateChangeTime': changed_at, 'Region': 'US East (N. Virginia)',
             'Trigger': {'MetricName': 'HTTPCode_Target_5XX_Count', 'Namespace': 'AWS/ApplicationELB',
                         'Dimensions': [{'value': 'app/svpms-prod-alb/1234', 'name': 'LoadBalancer'}]}}
    return {'Type': 'Notification', 'MessageId': 'm-%s' % changed_at,
            'TopicArn': 'arn:aws:sns:us-east-1:123456789012:svpms-alarms', 'Subject': 'ALARM: "svpms-api-5xx-rate"',
            'Message': json.dumps(alarm), 'Timestamp': changed_at, 'SignatureVersion': '1'}


ALERTMANAGER = {
    'version': '4', 'groupKey': '{}:{alertname="SvpmsApiLatencyHigh"}', 'status': 'firing', 'receiver': 'svpms-eda',
    'commonLabels': {'alertname': 'SvpmsApiLatencyHigh', 'service': 'svpms-api', 'severity': 'page'},
    'commonAnnotations': {'summary': 'p95 above 1000 ms for 5 minutes'},
    'alerts': [{'status': 'firing', 'labels': {'alertname': 'SvpmsApiLatencyHigh', 'service': 'svpms-api'},
                'startsAt': '2026-11-27T14:00:00Z'}]}
PAGERDUTY = {'event': {'id': '01DEN4BUBS', 'event_type': 'incident.triggered', 'resource_type': 'incident',
                       'data': {'id': 'Q2ABCDEF12345', 'type': 'incident', 'title': 'SVPMS API unhealthy',
                                'service': {'id': 'PSVC', 'summary': 'svpms-api'}}}}
SNS_CONFIRM = {'Type': 'SubscriptionConfirmation', 'MessageId': 'c-1', 'Token': 'tok',
               'TopicArn': 'arn:aws:sns:us-east-1:123456789012:svpms-alarms',
               'SubscribeURL': 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok'}


def post(port, body):
    req = urllib.request.Request('http://127.0.0.1:%d/alerts' % port, data=json.dumps(body).encode(), method='POST',
                                 headers={'Content-Type': 'application/json'})
    with OPENER.open(req, timeout=5) as resp:
        return resp.status


def test_alerts_start_the_right_runbook_once_per_service(sandbox, tmp_path):
    port = free_port()
    inventory = sandbox_inventory(sandbox, tmp_path / 'inventory')
    incidents = tmp_path / 'incidents'
    variables = tmp_path / 'vars.yml'
    variables.write_text(json.dumps({'svpms_eda_host': '127.0.0.1', 'svpms_eda_port': port,
                                     'svpms_eda_default_service': 'svpms_services'}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, '.collections'),
               ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), SVPMS_INCIDENT_ROOT=str(incidents),
               PATH=VENV_BIN + os.pathsep + os.environ.get('PATH', ''))
    log = open(tmp_path / 'rulebook.log', 'w+')
    proc = subprocess.Popen([os.path.join(VENV_BIN, 'ansible-rulebook'), '--rulebook', RULEBOOK, '-i', inventory,
                             '--vars', str(variables), '-v'], stdout=log, stderr=subprocess.STDOUT, env=env,
                            cwd=str(tmp_path), start_new_session=True)
    try:
        def listening():
            assert proc.poll() is None, open(tmp_path / 'rulebook.log').read()[-3000:]
            try:
                return post(port, SNS_CONFIRM) == 200
            except OSError:
                return False
        until(listening, 90, interval=1, what='ansible-rulebook to listen on 127.0.0.1:%d' % port)
        # a storm: three firings of the same alarm, two of the same Alertmanager group, one PagerDuty incident
        for i in range(3):
            assert post(port, sns_alarm('2026-11-27T14:0%d:00.000+0000' % i)) == 200
        for _i in range(2):
            assert post(port, ALERTMANAGER) == 200
        assert post(port, PAGERDUTY) == 200

        def summaries():
            found = {}
            for name in (os.listdir(incidents) if incidents.exists() else []):
                path = incidents / name / 'summary.json'
                if path.exists():
                    with open(path) as fh:
                        found[name] = json.load(fh)
            text = open(tmp_path / 'rulebook.log').read()
            done = len(found) >= 2 and text.count('svpms-api: P3 - no rule matched') >= 1
            return (found, text) if done else None

        found, _text = until(summaries, 420, interval=2, what='the runbooks the alerts started to finish')
        time.sleep(5)  # anything the throttle failed to hold back would have started by now
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stop_pid(proc)
        log.close()
    output = open(tmp_path / 'rulebook.log').read()
    assert 'Traceback' not in output
    scenarios = sorted((s['scenario'], s['outcome']) for s in found.values())
    assert scenarios == [('high_error_rate', 'no_incident'), ('high_latency', 'no_incident')], found
    cw = [name for name in found if name.startswith('cw-svpms-api-5xx-rate-')]
    am = [name for name in found if name.startswith('am-')]
    assert len(cw) == 1 and len(am) == 1, sorted(found)  # the storm started one run each
    assert output.count('svpms-api: P3 - no rule matched') == 1, 'PagerDuty: triage ran once'
    assert 'SNS subscription confirmation received: open https://sns.us-east-1.amazonaws.com/' in output
    assert sandbox.status(window=1)['service']['bad_revision'] is False
