"""Notifier modules against a real HTTP receiver on loopback.

pagerduty_event, pagerduty_escalate, slack_message, statuspage_incident and
ticket run as real module files (``run_module``) against ``Receiver``
(tests/helpers/receiver.py): a ThreadingHTTPServer on 127.0.0.1 that answers
like PagerDuty, Slack and Statuspage (stateful: a trigger opens an incident
that the escalation then finds) and can be scripted per request (a 429 with
Retry-After, 5xx, 4xx, Slack's ok:false, a slow answer). Every test asserts
the exact requests the receiver saw, and that no token reaches the output.
"""

import json
import time

import pytest

from tests.helpers.modules import assert_no_traceback, run_module
from tests.helpers.receiver import Receiver
from tests.helpers.servers import free_port

ROUTING_KEY = 'rk-test-0123456789abcdef0123456789'
PD_TOKEN = 'pd-api-token-secret-4242'
SLACK_TOKEN = 'xoxb-test-slack-secret-7777'
SP_KEY = 'sp-api-key-secret-9999'
WEBHOOK_TOKEN = 'webhook-bearer-secret-5555'
SECRETS = (ROUTING_KEY, PD_TOKEN, SLACK_TOKEN, SP_KEY, WEBHOOK_TOKEN)
FROM = 'oncall-bot@svpms.example.com'
PAGE = 'page1'
ENV_VARS = ('PAGERDUTY_ROUTING_KEY', 'PAGERDUTY_API_TOKEN', 'PAGERDUTY_FROM_EMAIL', 'SLACK_BOT_TOKEN',
            'STATUSPAGE_API_KEY', 'STATUSPAGE_PAGE_ID', 'SVPMS_TICKET_WEBHOOK_URL')


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """A developer's own notifier credentials must never leak into these tests."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def rx():
    with Receiver() as receiver:
        yield receiver


def assert_clean(result):
    assert_no_traceback(result)
    for secret in SECRETS:
        assert secret not in result.stdout, secret
        assert secret not in result.stderr, secret


def closed_url():
    return 'http://127.0.0.1:%d' % free_port()  # nothing listens there


# --------------------------------------------------------------------------- PagerDuty Events API v2


def pd_event(rx, **kwargs):
    args = dict(routing_key=ROUTING_KEY, events_url=rx.url, dedup_key='svpms-inc-1',
                summary='P1 svpms-api: 5xx error rate 12.4%', source='svpms-api', severity='error')
    args.update(kwargs)
    return args


def test_pagerduty_trigger_sends_the_exact_event(rx):
    result = run_module('pagerduty_event', pd_event(
        rx, component='api', group='svpms-prod', custom_details={'error_rate_pct': 12.4},
        links=[{'href': 'https://grafana.svpms.example.com/d/production', 'text': 'Dashboard'}],
        **{'class': 'high_error_rate'}))
    assert_clean(result)
    assert result.rc == 0 and result['changed'] is True, result
    assert (result['status'], result['message'], result['dedup_key']) == ('success', 'Event processed',
                                                                          'svpms-inc-1')
    [req] = rx.requests
    assert (req.method, req.path, req.status) == ('POST', '/v2/enqueue', 202)
    assert req.header('content-type').startswith('application/json')
    assert req.header('authorization') is None  # Events API v2 authenticates with the body's routing_key
    assert req.json == {
        'routing_key': ROUTING_KEY, 'event_action': 'trigger', 'dedup_key': 'svpms-inc-1',
        'payload': {'summary': 'P1 svpms-api: 5xx error rate 12.4%', 'source': 'svpms-api', 'severity': 'error',
                    'component': 'api', 'group': 'svpms-prod', 'class': 'high_error_rate',
                    'custom_details': {'error_rate_pct': 12.4}},
        'links': [{'href': 'https://grafana.svpms.example.com/d/production', 'text': 'Dashboard'}]}
    expected = dict(req.json)
    del expected['routing_key']
    assert result['payload'] == expected  # the exact body, without the routing key


def test_pagerduty_same_dedup_key_never_opens_a_second_incident(rx):
    for _attempt in range(2):
        result = run_module('pagerduty_event', pd_event(rx))
        assert_clean(result)
        assert result['dedup_key'] == 'svpms-inc-1'
    first, second = rx.requests
    assert first.json['dedup_key'] == second.json['dedup_key'] == 'svpms-inc-1'
    [incident] = rx.state['pagerduty_incidents']
    assert incident['status'] == 'triggered' and incident['alert_counts']['all'] == 2
    for action, status in (('acknowledge', 'acknowledged'), ('resolve', 'resolved')):
        result = run_module('pagerduty_event', dict(routing_key=ROUTING_KEY, events_url=rx.url,
                                                    dedup_key='svpms-inc-1', event_action=action))
        assert_clean(result)
        assert result['changed'] and result['payload'] == {'event_action': action, 'dedup_key': 'svpms-inc-1'}
        assert rx.requests[-1].json == dict(result['payload'], routing_key=ROUTING_KEY)
        assert rx.state['pagerduty_incidents'][0]['status'] == status


def test_pagerduty_long_summary_is_truncated_to_1024(rx):
    result = run_module('pagerduty_event', pd_event(rx, summary='x' * 2000))
    assert_clean(result)
    assert len(rx.requests[0].json['payload']['summary']) == 1024
    assert 'truncated' in json.dumps(result.get('warnings'))  # ansible-core 2.19 warnings are objects


def test_pagerduty_check_mode_sends_nothing_and_shows_the_payload(rx):
    result = run_module('pagerduty_event', pd_event(rx, custom_details={'runbook': 'high_error_rate'}), check=True)
    assert_clean(result)
    assert result.rc == 0 and result['changed'] is True
    assert rx.requests == []
    assert result['payload'] == {'event_action': 'trigger', 'dedup_key': 'svpms-inc-1',
                                 'payload': {'summary': 'P1 svpms-api: 5xx error rate 12.4%', 'source': 'svpms-api',
                                             'severity': 'error', 'custom_details': {'runbook': 'high_error_rate'}}}
    assert 'check mode' in result['msg']


def test_pagerduty_not_configured_is_skipped(rx):
    args = pd_event(rx)
    del args['routing_key']
    result = run_module('pagerduty_event', args)
    assert_clean(result)
    assert result.rc == 0 and not result.failed
    assert result['changed'] is False and result['skipped'] is True
    assert result['msg'] == 'skipped: PagerDuty not configured (set routing_key or env PAGERDUTY_ROUTING_KEY)'
    assert rx.requests == []


def test_pagerduty_routing_key_from_the_environment(rx, monkeypatch):
    monkeypatch.setenv('PAGERDUTY_ROUTING_KEY', ROUTING_KEY)
    args = pd_event(rx)
    del args['routing_key']
    result = run_module('pagerduty_event', args)
    assert_clean(result)
    assert result['changed'] and rx.requests[0].json['routing_key'] == ROUTING_KEY


def test_pagerduty_429_honours_retry_after(rx):
    rx.script('POST', '/v2/enqueue', dict(status=429, body={'status': 'throttle event', 'message': 'Requests for '
                                                            'this service are arriving too quickly.'},
                                          headers={'Retry-After': '1'}))
    result = run_module('pagerduty_event', pd_event(rx))
    assert_clean(result)
    assert result['changed'] and result['status'] == 'success'
    first, second = rx.requests
    assert (first.status, second.status) == (429, 202)
    assert second.received - first.received >= 1.0
    assert second.json == first.json


def test_pagerduty_retry_after_longer_than_allowed_fails_at_once(rx):
    rx.script('POST', '/v2/enqueue', dict(status=429, body={'status': 'throttle event'},
                                          headers={'Retry-After': '120'}))
    started = time.monotonic()
    result = run_module('pagerduty_event', pd_event(rx))
    assert_clean(result)
    assert result.failed and time.monotonic() - started < 20
    assert len(rx.requests) == 1
    assert result['msg'].startswith('PagerDuty Events API: POST http://127.0.0.1:')
    assert 'Retry-After: 120' in result['msg'] and 'max_retry_after=30s' in result['msg']
    assert 'rate limited' in result['msg']
    assert (result['error_kind'], result['http_status']) == ('rate_limited', 429)


def test_pagerduty_5xx_is_retried_then_succeeds(rx):
    rx.script('POST', '/v2/enqueue', dict(status=500, body={'status': 'error'}), dict(status=503))
    result = run_module('pagerduty_event', pd_event(rx))
    assert_clean(result)
    assert result['changed'] and [r.status for r in rx.requests] == [500, 503, 202]


def test_pagerduty_5xx_until_the_last_attempt_fails_clearly(rx):
    rx.script('POST', '/v2/enqueue', dict(status=502), dict(status=502))
    result = run_module('pagerduty_event', pd_event(rx, max_attempts=2))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 2
    assert 'PagerDuty Events API' in result['msg'] and 'HTTP 502' in result['msg']
    assert '[after 2 attempts]' in result['msg'] and 'retry later' in result['msg']
    assert (result['error_kind'], result['attempts']) == ('server_error', 2)


def test_pagerduty_invalid_event_is_not_retried(rx):
    rx.script('POST', '/v2/enqueue', dict(status=400, body={
        'status': 'invalid event', 'message': 'Event object is invalid',
        'errors': ["Length of 'routing_key' is incorrect (should be 32 characters)"]}))
    result = run_module('pagerduty_event', pd_event(rx))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 1
    assert 'HTTP 400' in result['msg'] and "Length of 'routing_key' is incorrect" in result['msg']
    assert result['error_kind'] == 'rejected' and result['payload']['dedup_key'] == 'svpms-inc-1'


def test_pagerduty_forbidden_says_check_the_token(rx):
    rx.script('POST', '/v2/enqueue', dict(status=403, body={'status': 'forbidden', 'message': 'Forbidden'}))
    result = run_module('pagerduty_event', pd_event(rx))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 1
    assert 'check the token (routing_key or env PAGERDUTY_ROUTING_KEY' in result['msg']
    assert result['error_kind'] == 'auth'


def test_pagerduty_unreachable_fails_clearly():
    url = closed_url()
    result = run_module('pagerduty_event', dict(routing_key=ROUTING_KEY, events_url=url, dedup_key='k',
                                                summary='s', max_attempts=2))
    assert_clean(result)
    assert result.failed
    assert result['msg'].startswith('PagerDuty Events API: POST %s/v2/enqueue: could not connect' % url)
    assert '[after 2 attempts]' in result['msg'] and 'check the base URL' in result['msg']
    assert result['error_kind'] == 'unreachable'


def test_pagerduty_bad_input_names_the_option(rx):
    result = run_module('pagerduty_event', pd_event(rx, events_url='ftp://example.com'))
    assert_clean(result)
    assert result.failed and 'events_url' in result['msg']
    result = run_module('pagerduty_event', pd_event(rx, summary=None))
    assert result.failed and 'summary' in result['msg']
    assert rx.requests == []


# --------------------------------------------------------------------------- PagerDuty REST: escalate


def escalate(rx, **kwargs):
    args = dict(api_token=PD_TOKEN, api_url=rx.url, from_email=FROM, dedup_key='svpms-inc-1')
    args.update(kwargs)
    return args


def trigger(rx, dedup_key='svpms-inc-1'):
    result = run_module('pagerduty_event', pd_event(rx, dedup_key=dedup_key))
    assert result['changed'], result
    rx.clear()
    return rx.state['pagerduty_incidents'][-1]['id']


def test_escalate_next_moves_one_level_up_with_the_exact_requests(rx):
    incident_id = trigger(rx)
    result = run_module('pagerduty_escalate', escalate(rx, next=True))
    assert_clean(result)
    assert result['changed'] is True
    assert (result['incident_id'], result['before_level'], result['after_level'], result['ladder_role']) == \
        (incident_id, 1, 2, 'platform lead')
    get, put = rx.requests
    assert (get.method, get.path) == ('GET', '/incidents')
    assert get.query == {'incident_key': ['svpms-inc-1'], 'statuses[]': ['triggered', 'acknowledged']}
    assert (put.method, put.path, put.status) == ('PUT', '/incidents/%s' % incident_id, 200)
    assert put.json == {'incident': {'type': 'incident_reference', 'escalation_level': 2}}
    for req in (get, put):
        assert req.header('authorization') == 'Token token=%s' % PD_TOKEN
        assert req.header('accept') == 'application/vnd.pagerduty+json;version=2'
        assert req.header('from') == FROM
    assert rx.state['pagerduty_incidents'][0]['escalation_level'] == 2


def test_escalate_next_is_capped_at_the_top_of_the_ladder(rx):
    trigger(rx)
    roles = []
    for _level in (2, 3, 4):
        result = run_module('pagerduty_escalate', escalate(rx, next=True))
        assert_clean(result)
        roles.append(result['ladder_role'])
    assert roles == ['platform lead', 'engineering manager', 'CTO']
    rx.clear()
    result = run_module('pagerduty_escalate', escalate(rx, next=True))
    assert_clean(result)
    assert result['changed'] is False and (result['before_level'], result['after_level']) == (4, 4)
    assert 'top of the ladder' in result['msg'] and 'CTO' in result['msg']
    assert [r.method for r in rx.requests] == ['GET']  # no PUT


def test_escalate_explicit_level_is_idempotent_and_never_goes_down(rx):
    trigger(rx)
    result = run_module('pagerduty_escalate', escalate(rx, escalation_level=3))
    assert_clean(result)
    assert result['changed'] and (result['before_level'], result['after_level']) == (1, 3)
    assert result['ladder_role'] == 'engineering manager'
    rx.clear()
    for level in (3, 2):
        result = run_module('pagerduty_escalate', escalate(rx, escalation_level=level))
        assert_clean(result)
        assert result['changed'] is False and result['after_level'] == 3
    assert 'not moving the incident down' in result['msg']
    assert [r.method for r in rx.requests] == ['GET', 'GET']


def test_escalate_check_mode_reads_but_does_not_put(rx):
    trigger(rx)
    result = run_module('pagerduty_escalate', escalate(rx, next=True), check=True)
    assert_clean(result)
    assert result['changed'] is True and result['after_level'] == 2
    assert result['payload'] == {'incident': {'type': 'incident_reference', 'escalation_level': 2}}
    assert [r.method for r in rx.requests] == ['GET']
    assert rx.state['pagerduty_incidents'][0]['escalation_level'] == 1


def test_escalate_derives_the_level_from_oncalls_when_the_incident_has_none(rx):
    incident_id = trigger(rx)
    rx.script('GET', '/incidents', dict(body={'incidents': [{
        'id': incident_id, 'status': 'triggered', 'incident_key': 'svpms-inc-1',
        'escalation_policy': {'id': 'PSVPMS1', 'type': 'escalation_policy_reference'},
        'assignments': [{'assignee': {'id': 'PUSER02', 'type': 'user_reference'}}]}]}))
    result = run_module('pagerduty_escalate', escalate(rx, next=True))
    assert_clean(result)
    assert (result['before_level'], result['after_level']) == (2, 3)
    assert [(r.method, r.path) for r in rx.requests] == [
        ('GET', '/incidents'), ('GET', '/oncalls'), ('PUT', '/incidents/%s' % incident_id)]
    assert rx.requests[1].query == {'escalation_policy_ids[]': ['PSVPMS1']}


def test_escalate_without_an_open_incident_fails_clearly(rx):
    result = run_module('pagerduty_escalate', escalate(rx, next=True, dedup_key='never-triggered'))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 1
    assert 'no open (triggered or acknowledged) incident with incident_key never-triggered' in result['msg']


@pytest.mark.parametrize('missing,how', [
    ('api_token', 'set api_token or env PAGERDUTY_API_TOKEN'),
    ('from_email', 'set from_email or env PAGERDUTY_FROM_EMAIL'),
])
def test_escalate_not_configured_is_skipped(rx, missing, how):
    args = escalate(rx, next=True)
    del args[missing]
    result = run_module('pagerduty_escalate', args)
    assert_clean(result)
    assert result.rc == 0 and result['skipped'] is True and result['changed'] is False
    assert result['msg'] == 'skipped: PagerDuty REST API not configured (%s)' % how
    assert rx.requests == []


def test_escalate_unauthorized_says_check_the_token(rx):
    rx.script('GET', '/incidents', dict(status=401, body={'error': {'message': 'Unauthorized', 'code': 2006}}))
    result = run_module('pagerduty_escalate', escalate(rx, next=True))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 1
    assert result['msg'].startswith('PagerDuty REST API: GET http://127.0.0.1:')
    assert 'HTTP 401: Unauthorized; code 2006' in result['msg']
    assert 'check the token (api_token or env PAGERDUTY_API_TOKEN' in result['msg']
    assert '?' not in result['msg'].split(' answered')[0]  # the URL is shown without its query


# --------------------------------------------------------------------------- Slack


def slack(rx, **kwargs):
    args = dict(token=SLACK_TOKEN, api_url=rx.url, channel='#incidents', text='P2 svpms-api: ERP errors')
    args.update(kwargs)
    return args


def test_slack_posts_and_threads_the_updates(rx):
    blocks = [{'type': 'section', 'text': {'type': 'mrkdwn', 'text': '*P2* ERP errors'}}]
    root = run_module('slack_message', slack(rx, blocks=blocks))
    assert_clean(root)
    assert (root['ts'], root['channel'], root['thread_ts']) == ('1700000000.000100', 'C123', '1700000000.000100')
    reply = run_module('slack_message', slack(rx, text='Mitigated', thread_ts=root['thread_ts']))
    assert_clean(reply)
    assert (reply['ts'], reply['thread_ts']) == ('1700000000.000200', '1700000000.000100')
    first, second = rx.requests
    for req in (first, second):
        assert (req.method, req.path) == ('POST', '/chat.postMessage')
        assert req.header('authorization') == 'Bearer %s' % SLACK_TOKEN
        assert req.header('content-type') == 'application/json; charset=utf-8'
    assert first.json == {'channel': '#incidents', 'text': 'P2 svpms-api: ERP errors', 'blocks': blocks}
    assert second.json == {'channel': '#incidents', 'text': 'Mitigated', 'thread_ts': '1700000000.000100'}
    assert reply['payload'] == second.json


@pytest.mark.parametrize('error,hint', [
    ('not_in_channel', 'invite the bot to the channel'),
    ('invalid_auth', 'check the token (token or env SLACK_BOT_TOKEN)'),
    ('channel_not_found', 'check channel (#incidents)'),
])
def test_slack_ok_false_fails_with_the_error_and_what_to_do(rx, error, hint):
    rx.script('POST', '/chat.postMessage', dict(status=200, body={'ok': False, 'error': error}))
    result = run_module('slack_message', slack(rx))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 1  # an answered error is final
    assert result['msg'].startswith('Slack Web API: chat.postMessage to #incidents failed: %s' % error)
    assert hint in result['msg'] and result['slack_error'] == error


def test_slack_ratelimited_honours_retry_after(rx):
    rx.script('POST', '/chat.postMessage', dict(status=429, body={'ok': False, 'error': 'ratelimited'},
                                                headers={'Retry-After': '1'}))
    result = run_module('slack_message', slack(rx))
    assert_clean(result)
    assert result['changed'] and result['ts'] == '1700000000.000100'
    first, second = rx.requests
    assert second.received - first.received >= 1.0


def test_slack_timeout_after_sending_is_not_retried(rx):
    # the message may have been posted: a second attempt could post it twice
    rx.script('POST', '/chat.postMessage', dict(delay=2.0, body={'ok': True, 'ts': '1', 'channel': 'C123'}))
    result = run_module('slack_message', slack(rx, timeout=0.5, max_attempts=3))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 1
    assert 'no answer within 0.5s' in result['msg'] and result['error_kind'] == 'timeout'


def test_slack_check_mode_and_not_configured_send_nothing(rx):
    result = run_module('slack_message', slack(rx, thread_ts='1700000000.000100'), check=True)
    assert_clean(result)
    assert result['changed'] is True and result['payload'] == {
        'channel': '#incidents', 'text': 'P2 svpms-api: ERP errors', 'thread_ts': '1700000000.000100'}
    args = slack(rx)
    del args['token']
    result = run_module('slack_message', args)
    assert_clean(result)
    assert result.rc == 0 and result['skipped'] is True
    assert result['msg'] == 'skipped: Slack not configured (set token or env SLACK_BOT_TOKEN)'
    assert rx.requests == []


# --------------------------------------------------------------------------- Statuspage


def statuspage(rx, **kwargs):
    args = dict(api_key=SP_KEY, api_url=rx.url, page_id=PAGE)
    args.update(kwargs)
    return args


def test_statuspage_lifecycle_with_the_exact_requests(rx):
    created = run_module('statuspage_incident', statuspage(
        rx, action='create', name='Elevated API error rates', body='We are investigating.',
        impact_override='major', component_ids=['cmp1'], component_status='partial_outage'))
    assert_clean(created)
    assert created['changed'] and created['status'] == 'investigating'
    incident_id = created['incident_id']
    assert created['shortlink'] == 'https://stspg.io/%s' % incident_id[:5]
    lookup, post = rx.requests
    assert (lookup.method, lookup.path) == ('GET', '/pages/%s/incidents/unresolved' % PAGE)
    assert (post.method, post.path, post.status) == ('POST', '/pages/%s/incidents' % PAGE, 201)
    assert post.json == {'incident': {
        'name': 'Elevated API error rates', 'status': 'investigating', 'body': 'We are investigating.',
        'impact_override': 'major', 'deliver_notifications': True, 'component_ids': ['cmp1'],
        'components': {'cmp1': 'partial_outage'}}}
    assert all(r.header('authorization') == 'OAuth %s' % SP_KEY for r in rx.requests)

    rx.clear()  # a re-run finds the open incident instead of opening a second one
    again = run_module('statuspage_incident', statuspage(rx, action='create', name='Elevated API error rates'))
    assert_clean(again)
    assert again['changed'] is False and again['incident_id'] == incident_id
    assert [r.method for r in rx.requests] == ['GET']

    rx.clear()
    update = run_module('statuspage_incident', statuspage(rx, action='update', incident_id=incident_id,
                                                          status='monitoring', body='Fix deployed.',
                                                          deliver_notifications=False))
    assert_clean(update)
    assert update['changed'] and update['status'] == 'monitoring'
    [patch] = rx.requests
    assert (patch.method, patch.path) == ('PATCH', '/pages/%s/incidents/%s' % (PAGE, incident_id))
    assert patch.json == {'incident': {'status': 'monitoring', 'body': 'Fix deployed.',
                                       'deliver_notifications': False}}

    rx.clear()
    resolved = run_module('statuspage_incident', statuspage(rx, action='resolve', incident_id=incident_id,
                                                            component_ids=['cmp1']))
    assert_clean(resolved)
    assert resolved['changed'] and resolved['status'] == 'resolved'
    get, patch = rx.requests
    assert (get.method, patch.method) == ('GET', 'PATCH')
    assert patch.json['incident']['status'] == 'resolved'
    assert patch.json['incident']['components'] == {'cmp1': 'operational'}
    rx.clear()
    again = run_module('statuspage_incident', statuspage(rx, action='resolve', incident_id=incident_id))
    assert_clean(again)
    assert again['changed'] is False and [r.method for r in rx.requests] == ['GET']
    [stored] = rx.state['statuspage_incidents']
    assert [u['status'] for u in stored['incident_updates']] == ['resolved', 'monitoring', 'investigating']


def test_statuspage_unknown_incident_is_not_retried_and_says_what_to_check(rx):
    result = run_module('statuspage_incident', statuspage(rx, action='update', incident_id='nope', body='x'))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 1
    assert 'Statuspage API: PATCH http://127.0.0.1:' in result['msg'] and 'HTTP 404' in result['msg']
    assert 'check the id/URL (page_id, incident_id and api_url)' in result['msg']


def test_statuspage_check_mode_sends_nothing(rx):
    result = run_module('statuspage_incident', statuspage(rx, action='create', name='Degraded', body='b'),
                        check=True)
    assert_clean(result)
    assert result['changed'] is True and rx.requests == []
    assert result['payload'] == {'incident': {'name': 'Degraded', 'status': 'investigating', 'body': 'b',
                                              'deliver_notifications': True}}


def test_statuspage_not_configured_is_skipped(rx):
    result = run_module('statuspage_incident', dict(api_key=SP_KEY, api_url=rx.url, action='create', name='n'))
    assert_clean(result)
    assert result.rc == 0 and result['skipped'] is True
    assert result['msg'] == 'skipped: Statuspage not configured (set page_id or env STATUSPAGE_PAGE_ID)'
    assert rx.requests == []


# --------------------------------------------------------------------------- ticket


def ticket(**kwargs):
    args = dict(title='svpms-api: slow CSV export', body='p95 1.4 s for large tenants.', labels=['perf'],
                incident_id='inc-42')
    args.update(kwargs)
    return args


def test_ticket_webhook_posts_the_exact_payload_and_hides_header_values(rx):
    result = run_module('ticket', ticket(url=rx.url + '/tickets',
                                         headers={'Authorization': 'Bearer %s' % WEBHOOK_TOKEN}))
    assert_clean(result)
    assert result['changed'] and result['destination'] == 'webhook'
    assert result['response'] == {'id': 'SVPMS-1', 'status': 'open'}
    assert result['header_names'] == ['Authorization']
    assert result['invocation']['module_args']['headers'] == {'Authorization': 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'}
    [req] = rx.requests
    assert (req.method, req.path, req.status) == ('POST', '/tickets', 201)
    assert req.header('authorization') == 'Bearer %s' % WEBHOOK_TOKEN
    assert req.json == {'title': 'svpms-api: slow CSV export', 'body': 'p95 1.4 s for large tenants.',
                        'severity': 'P3', 'labels': ['perf'], 'incident_id': 'inc-42'}


def test_ticket_webhook_rejection_says_check_the_credentials(rx):
    rx.script('POST', '/tickets', dict(status=401, body={'error': 'bad credentials'}))
    result = run_module('ticket', ticket(url=rx.url + '/tickets?key=%s' % WEBHOOK_TOKEN))
    assert_clean(result)
    assert result.failed and len(rx.requests) == 1
    assert 'ticket webhook: POST %s/tickets answered HTTP 401: bad credentials' % rx.url in result['msg']
    assert 'check the token (the credentials in headers)' in result['msg']


def test_ticket_markdown_file_check_mode_apply_idempotent(rx, tmp_path):
    folder = tmp_path / 'incidents' / 'inc-42'
    planned = run_module('ticket', ticket(path=str(folder)), check=True)
    assert_clean(planned)
    assert planned['changed'] is True and not folder.exists()
    assert planned['content'].startswith('# [P3] svpms-api: slow CSV export\n')
    applied = run_module('ticket', ticket(path=str(folder)))
    assert_clean(applied)
    assert applied['changed'] is True and applied['ticket_file'] == str(folder / 'ticket.md')
    assert (folder / 'ticket.md').read_text() == planned['content'] == applied['content']
    assert '- **Incident:** inc-42' in applied['content'] and '- **Labels:** perf' in applied['content']
    again = run_module('ticket', ticket(path=str(folder)))
    assert again['changed'] is False
    changed = run_module('ticket', ticket(path=str(folder), body='Now p95 1.6 s.'), check=True)
    assert changed['changed'] is True and changed['diff']['after'].endswith('Now p95 1.6 s.\n')
    assert 'p95 1.4 s' in (folder / 'ticket.md').read_text()
    assert rx.requests == []


def test_ticket_check_mode_and_not_configured_send_nothing(rx):
    result = run_module('ticket', ticket(url=rx.url + '/tickets'), check=True)
    assert_clean(result)
    assert result['changed'] is True and result['payload']['title'] == 'svpms-api: slow CSV export'
    result = run_module('ticket', ticket())
    assert_clean(result)
    assert result.rc == 0 and result['skipped'] is True and result['msg'].startswith(
        'skipped: ticket not configured (set url or env SVPMS_TICKET_WEBHOOK_URL')
    assert rx.requests == []


def test_ticket_unreachable_webhook_fails_clearly():
    url = closed_url() + '/tickets'
    result = run_module('ticket', ticket(url=url, max_attempts=1))
    assert_clean(result)
    assert result.failed and result['msg'].startswith('ticket webhook: POST %s: could not connect' % url)
