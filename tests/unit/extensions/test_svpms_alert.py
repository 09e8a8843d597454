"""The EDA event filter svpms_alert (extensions/eda/plugins/event_filter): which
runbook and which service each alert payload calls for. Pure logic on the
payload shapes CloudWatch (through SNS), Alertmanager and PagerDuty send.
"""
import importlib.util
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, '..', '..', '..', 'extensions', 'eda', 'plugins', 'event_filter', 'svpms_alert.py')
_spec = importlib.util.spec_from_file_location('svpms_alert', PATH)
svpms_alert = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svpms_alert)


def sns(alarm, kind='Notification'):
    return {'payload': {'Type': kind, 'TopicArn': 'arn:aws:sns:us-east-1:1:alarms', 'Message': json.dumps(alarm)},
            'meta': {'endpoint': 'alerts'}}


def svpms(event):
    return svpms_alert.main(event)['svpms']


def test_cloudwatch_5xx_alarm_runs_scenario_1_for_the_named_service():
    info = svpms(sns({'AlarmName': 'svpms-api-5xx-rate', 'NewStateValue': 'ALARM', 'AlarmDescription': 'service=svpms-api',
                      'StateChangeTime': '2026-11-27T14:00:00.000+0000', 'NewStateReason': 'Threshold Crossed',
                      'Trigger': {'MetricName': 'HTTPCode_Target_5XX_Count', 'Dimensions': []}}))
    assert (info['source'], info['state'], info['scenario'], info['service']) == (
        'cloudwatch', 'firing', 'high_error_rate', 'svpms-api')
    assert info['incident_id'].startswith('cw-svpms-api-5xx-rate-2026-11-27T14-00-00.000-0000-')


def test_cloudwatch_dimension_and_explicit_scenario_win_and_ok_is_resolved():
    info = svpms(sns({'AlarmName': 'api-errors', 'NewStateValue': 'OK', 'AlarmDescription': 'scenario=payment_failure',
                      'Trigger': {'MetricName': 'Errors', 'Dimensions': [{'name': 'ServiceName', 'value': 'svpms-pay'}]}}))
    assert (info['state'], info['scenario'], info['service']) == ('resolved', 'payment_failure', 'svpms-pay')


def test_latency_words_and_unknown_names_fall_back_to_triage():
    assert svpms(sns({'AlarmName': 'p95 TargetResponseTime', 'NewStateValue': 'ALARM'}))['scenario'] == 'high_latency'
    info = svpms(sns({'AlarmName': 'something odd', 'NewStateValue': 'ALARM'}))
    assert (info['scenario'], info['service']) == ('triage', 'svpms_services')


def test_subscription_confirmation_is_not_an_alert():
    event = {'payload': {'Type': 'SubscriptionConfirmation', 'TopicArn': 'arn:t', 'SubscribeURL': 'https://sns/x'}}
    info = svpms(event)
    assert (info['state'], info['scenario'], info['subscribe_url']) == ('other', 'none', 'https://sns/x')


def test_alertmanager_labels():
    info = svpms({'payload': {'groupKey': '{}:{alertname="LoginFailures"}', 'status': 'firing',
                              'commonLabels': {'alertname': 'LoginFailures', 'service': 'svpms-api'},
                              'alerts': [{'status': 'firing', 'labels': {'alertname': 'LoginFailures'}}]}})
    assert (info['source'], info['scenario'], info['service']) == ('alertmanager', 'auth_failures', 'svpms-api')
    assert info['incident_id'].startswith('am-')


def test_pagerduty_triggered_and_resolved():
    body = {'event': {'event_type': 'incident.triggered',
                      'data': {'id': 'Q1', 'title': 'Stripe webhooks failing', 'service': {'summary': 'svpms-api'}}}}
    info = svpms({'payload': body})
    assert (info['source'], info['state'], info['scenario'], info['service']) == (
        'pagerduty', 'firing', 'payment_failure', 'svpms-api')
    body['event']['event_type'] = 'incident.resolved'
    assert svpms({'payload': body})['state'] == 'resolved'


def test_unknown_and_malformed_payloads_never_raise():
    assert svpms({'payload': {'hello': 'world'}})['source'] == 'unknown'
    broken = {'payload': {'Type': 'Notification', 'TopicArn': 'arn:t', 'Message': '{not json'}}
    info = svpms(broken)
    assert info['source'] == 'cloudwatch' and info['scenario'] == 'triage'
    weird = {'payload': {'alerts': 'not a list', 'groupKey': 1, 'commonLabels': 'x'}}
    assert svpms(weird)['source'] == 'unknown'


def test_service_names_are_made_safe():
    info = svpms(sns({'AlarmName': 'x 5xx', 'NewStateValue': 'ALARM', 'AlarmDescription': 'service=../../etc'}))
    assert '/' not in info['service'] and '/' not in info['incident_id']
