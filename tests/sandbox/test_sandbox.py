"""The local sandbox (sandbox/svpms_sandbox): moto_server + the service twin.

One sandbox on free loopback ports in a tmp state dir, shared by the tests of
this module in file order: seed state -> traffic shows up in CloudWatch
metrics and Logs -> inject a bad revision -> the twin degrades -> stop leaves
no process behind. Every assertion about AWS state is read back from moto.
"""
import datetime
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.helpers.servers import REPO
from tests.helpers.waits import until

SANDBOX_DIR = os.path.join(REPO, 'sandbox')
SANDBOX_PAYMENTS = True  # the full sandbox, as `make demo` starts it (the box fixture, conftest.py)
sys.path.insert(0, SANDBOX_DIR)

from svpms_sandbox import UsageError  # noqa: E402
from svpms_sandbox import constants as C  # noqa: E402
from svpms_sandbox.procs import http_json, pid_alive  # noqa: E402

CONNECTION_KEYS = {
    'svpms_aws_endpoint_url', 'svpms_aws_region', 'svpms_aws_access_key', 'svpms_aws_secret_key',
    'svpms_ecs_cluster', 'svpms_ecs_service', 'svpms_health_url', 'svpms_api_probe_url',
    'svpms_log_group', 'svpms_alb_load_balancer', 'svpms_alb_target_group', 'svpms_rds_instance',
    'svpms_flag_prefix',
}
# the notification receiver's endpoints and sandbox placeholder credentials
CONNECTION_KEYS |= {
    'svpms_pagerduty_events_url', 'svpms_pagerduty_api_url', 'svpms_slack_api_url', 'svpms_statuspage_api_url',
    'svpms_statuspage_page_id', 'svpms_slack_channel', 'svpms_pagerduty_from_email', 'svpms_lock_table',
    'svpms_pagerduty_routing_key', 'svpms_pagerduty_api_token', 'svpms_slack_token', 'svpms_statuspage_api_key',
}
# the sandbox database, its own Redis and the cache TTL setting (scenario 2)
CONNECTION_KEYS |= {
    'svpms_db_host', 'svpms_db_port', 'svpms_db_name', 'svpms_db_user', 'svpms_db_app_users', 'svpms_db_enabled',
    'svpms_redis_host', 'svpms_redis_port', 'svpms_cache_ttl_parameter', 'svpms_cache_ttl_seconds',
}
# the login path, the JWT key, the IdP stand-in, the users table and the session store (scenario 3)
CONNECTION_KEYS |= {
    'svpms_login_url', 'svpms_login_check_url', 'svpms_logout_url', 'svpms_sso_start_url', 'svpms_login_probe_user',
    'svpms_login_probe_password', 'svpms_jwt_secret_id', 'svpms_jwks_url', 'svpms_saml_metadata_url',
    'svpms_saml_support_contact', 'svpms_users_table', 'svpms_db_app_user', 'svpms_session_redis_host',
    'svpms_session_redis_port', 'svpms_redis_restart_command',
}
# the Stripe stand-in, the API's Stripe secrets and OUR webhook endpoint (scenario 4)
CONNECTION_KEYS |= {
    'svpms_stripe_api_url', 'svpms_stripe_api_key', 'svpms_stripe_key_secret_id', 'svpms_stripe_webhook_url',
    'svpms_stripe_webhook_secret_id', 'svpms_stripe_livemode', 'svpms_stripe_status_url',
}
ALB_DIMS = [{'Name': 'LoadBalancer', 'Value': C.ALB_LOAD_BALANCER},
            {'Name': 'TargetGroup', 'Value': C.ALB_TARGET_GROUP}]


def metric_sum(box, name, dims, stat='Sum', minutes=5):
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
    resp = box.boto('cloudwatch').get_metric_data(
        MetricDataQueries=[{'Id': 'm', 'MetricStat': {
            'Metric': {'Namespace': 'ignored-by-moto-when-dimensions-are-given', 'MetricName': name,
                       'Dimensions': dims},
            'Period': 60, 'Stat': stat}}],
        StartTime=end - datetime.timedelta(minutes=minutes), EndTime=end)
    values = resp['MetricDataResults'][0]['Values']
    return sum(values) if values else None


def twin_state(box, window=5):
    status, state = http_json(box.twin_url + '/twin/state?window=%d' % window)
    assert status == 200
    return state


def cli(box, *args):
    env = dict(os.environ, PYTHONPATH=SANDBOX_DIR)
    return subprocess.run([sys.executable, '-m', 'svpms_sandbox', '--state-dir', box.state_dir] + list(args),
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_seed_state(box):
    ecs = box.boto('ecs')
    active = ecs.list_task_definitions(familyPrefix=C.FAMILY, status='ACTIVE')['taskDefinitionArns']
    inactive = ecs.list_task_definitions(familyPrefix=C.FAMILY, status='INACTIVE')['taskDefinitionArns']
    assert sorted(a.rsplit(':', 1)[1] for a in active) == ['2', '3']
    assert [a.rsplit(':', 1)[1] for a in inactive] == ['1']
    svc = ecs.describe_services(cluster=C.CLUSTER, services=[C.SERVICE])['services'][0]
    assert svc['taskDefinition'].split('/')[-1] == 'svpms-api:3'
    assert (svc['desiredCount'], svc['runningCount'], svc['launchType']) == (3, 3, 'FARGATE')
    assert svc['deployments'][0]['rolloutState'] == 'COMPLETED'
    ecs.get_waiter('services_stable').wait(cluster=C.CLUSTER, services=[C.SERVICE],
                                           WaiterConfig={'Delay': 1, 'MaxAttempts': 3})
    ssm = box.boto('ssm')
    for name in ('erp', 'email'):
        assert ssm.get_parameter(Name=C.FLAG_PREFIX + name)['Parameter']['Value'] == 'enabled'
    groups = box.boto('logs').describe_log_groups(logGroupNamePrefix=C.LOG_GROUP)['logGroups']
    assert [g['logGroupName'] for g in groups] == [C.LOG_GROUP]
    # connection.yml: exactly the agreed keys, loadable as YAML, pointing at this sandbox
    with open(box.connection_file) as fh:
        conn = yaml.safe_load(fh)
    assert set(conn) == CONNECTION_KEYS
    assert conn['svpms_aws_endpoint_url'] == 'http://127.0.0.1:%d' % box.moto_port
    assert conn['svpms_health_url'] == 'http://127.0.0.1:%d/health' % box.twin_port
    assert conn['svpms_flag_prefix'] == '/svpms/sandbox/flags/integrations/'
    state = twin_state(box)
    assert (state['task_definition'], state['fault'], state['behaviour']) == ('svpms-api:3', None, 'good')
    status, health = http_json(conn['svpms_health_url'])
    assert status == 200 and health['status'] == 'ok' and health['task_definition'] == 'svpms-api:3'


def test_traffic_shows_up_in_metrics_and_logs(box):
    requests = until(lambda: metric_sum(box, 'RequestCount', ALB_DIMS), 15, what='RequestCount > 0')
    assert requests > 0
    assert metric_sum(box, 'HTTPCode_Target_5XX_Count', ALB_DIMS) == 0  # published explicitly
    avg = metric_sum(box, 'TargetResponseTime', ALB_DIMS, stat='Average')
    assert 0 < avg < 0.5  # seconds
    ecs_dims = [{'Name': 'ClusterName', 'Value': C.CLUSTER}, {'Name': 'ServiceName', 'Value': C.SERVICE}]
    assert 0 < metric_sum(box, 'CPUUtilization', ecs_dims, stat='Average') < 100
    assert 0 < metric_sum(box, 'MemoryUtilization', ecs_dims, stat='Average') < 100
    db = metric_sum(box, 'DatabaseConnections', [{'Name': 'DBInstanceIdentifier', 'Value': C.RDS_INSTANCE}],
                    stat='Average')
    if box.db_info()['enabled']:  # the real number of backends in the sandbox database
        assert db >= 1
    else:  # without PostgreSQL: a made-up quiet range
        assert 20 <= db <= 40
    logs = box.boto('logs')
    events = until(lambda: logs.filter_log_events(logGroupName=C.LOG_GROUP, filterPattern='svpms.access')['events'],
                   10, what='access log events')
    assert 'status=200' in events[0]['message']


def test_unknown_fault_is_a_usage_error(box):
    with pytest.raises(UsageError, match='allowed: .*high_error_rate'):
        box.inject('no_such_fault')
    proc = cli(box, 'inject', 'no_such_fault')
    assert proc.returncode == 2
    assert 'high_error_rate' in proc.stderr and 'Traceback' not in proc.stderr


def test_inject_moves_the_service_to_a_bad_revision(box):
    res = box.inject('high_error_rate')
    assert res['task_definition'] == 'svpms-api:4' and res['from'] == 'svpms-api:3'
    assert res['twin_switch_seconds'] is not None and res['twin_switch_seconds'] < 5
    with open(os.path.join(box.state_dir, 'injected_at')) as fh:
        assert fh.read().strip() == res['injected_at']
    ecs = box.boto('ecs')
    svc = ecs.describe_services(cluster=C.CLUSTER, services=[C.SERVICE])['services'][0]
    assert svc['taskDefinition'].split('/')[-1] == 'svpms-api:4'
    # the bad revision is rev 3 plus the fault marker, nothing else
    good = ecs.describe_task_definition(taskDefinition='svpms-api:3')['taskDefinition']['containerDefinitions'][0]
    bad = ecs.describe_task_definition(taskDefinition='svpms-api:4')['taskDefinition']['containerDefinitions'][0]
    assert {'name': C.FAULT_ENV, 'value': 'high_error_rate'} in bad['environment']
    bad['environment'] = [e for e in bad['environment'] if e['name'] != C.FAULT_ENV]
    assert bad == good
    # the twin serves the bad behaviour: ~30% of /api/v1/items fail
    state = twin_state(box)
    assert (state['task_definition'], state['fault'], state['behaviour']) == ('svpms-api:4', 'high_error_rate', 'bad')

    def enough_requests():
        s = twin_state(box)
        return s if s['since_change']['requests'] >= 40 else None

    state = until(enough_requests, 15, what='40 requests on the bad revision')
    assert state['since_change']['error_rate'] > 0.1
    assert state['window']['error_rate'] > 0.1
    # ... which CloudWatch and Logs see
    assert until(lambda: metric_sum(box, 'HTTPCode_Target_5XX_Count', ALB_DIMS, minutes=1), 12,
                 what='5xx in CloudWatch')
    logs = box.boto('logs')
    tracebacks = until(lambda: logs.filter_log_events(logGroupName=C.LOG_GROUP,
                                                      filterPattern='"KeyError: \'id\'"')['events'],
                       12, what='KeyError traceback log events')
    message = tracebacks[0]['message']
    assert message.count('\n') >= 4 and '\nTraceback (most recent call last):\n' in message
    assert 'File "/app/svpms/api/items.py", line 42, in list_items' in message


def test_cli_start_is_idempotent_and_status_reports_the_bad_revision(box):
    proc = cli(box, 'start')
    assert proc.returncode == 0 and 'already running' in proc.stdout, proc.stdout + proc.stderr
    proc = cli(box, 'status', '--json')
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    assert st['running'] and st['service']['task_definition'] == 'svpms-api:4'
    assert st['service']['bad_revision'] is True and st['service']['fault'] == 'high_error_rate'
    assert st['twin']['behaviour'] == 'bad' and st['twin']['window']['requests'] > 0


def test_heal_returns_to_the_newest_good_revision(box):
    res = box.heal()
    assert res['changed'] and res['task_definition'] == 'svpms-api:3'
    assert twin_state(box)['behaviour'] == 'good'


def test_notification_receiver_plays_the_apis_and_records_redacted(box):
    from tests.helpers.modules import run_module

    with open(box.connection_file) as fh:
        conn = yaml.safe_load(fh)
    base = 'http://127.0.0.1:%d' % box.receiver_port
    assert (conn['svpms_pagerduty_events_url'], conn['svpms_pagerduty_api_url'], conn['svpms_slack_api_url'],
            conn['svpms_statuspage_api_url']) == (base + '/pagerduty-events', base + '/pagerduty',
                                                  base + '/slack/api', base + '/statuspage/v1')
    assert (conn['svpms_statuspage_page_id'], conn['svpms_slack_channel']) == ('sandboxpage', '#incidents')
    placeholders = [conn[k] for k in ('svpms_pagerduty_routing_key', 'svpms_pagerduty_api_token',
                                      'svpms_slack_token', 'svpms_statuspage_api_key')]
    assert all(v.startswith('sandbox-') for v in placeholders)
    with open(box.connection_file) as fh:
        assert 'placeholders, not secrets' in fh.readline() + fh.readline()

    # an incident's notifications, end to end through the real modules
    pd = dict(routing_key=conn['svpms_pagerduty_routing_key'], events_url=conn['svpms_pagerduty_events_url'],
              dedup_key='sandbox-test-incident', summary='P1 svpms-api: 5xx error rate 31%', source='svpms-api')
    for _rerun in range(2):
        assert run_module('pagerduty_event', pd)['status'] == 'success'
    escalated = run_module('pagerduty_escalate', dict(
        api_token=conn['svpms_pagerduty_api_token'], api_url=conn['svpms_pagerduty_api_url'],
        from_email=conn['svpms_pagerduty_from_email'], dedup_key='sandbox-test-incident', next=True))
    assert (escalated['before_level'], escalated['after_level'], escalated['ladder_role']) == (1, 2, 'platform lead')
    slack = dict(token=conn['svpms_slack_token'], api_url=conn['svpms_slack_api_url'],
                 channel=conn['svpms_slack_channel'], text='P1 svpms-api: paging on-call')
    root = run_module('slack_message', slack)
    reply = run_module('slack_message', dict(slack, text='rolled back', thread_ts=root['thread_ts']))
    assert reply['thread_ts'] == root['ts'] and reply['ts'] > root['ts']
    page = dict(api_key=conn['svpms_statuspage_api_key'], api_url=conn['svpms_statuspage_api_url'],
                page_id=conn['svpms_statuspage_page_id'])
    opened = run_module('statuspage_incident', dict(page, action='create', name='Elevated API error rates'))
    assert opened['status'] == 'investigating'
    resolved = run_module('statuspage_incident', dict(page, action='resolve', incident_id=opened['incident_id']))
    assert resolved['status'] == 'resolved'
    assert run_module('pagerduty_event', dict(pd, event_action='resolve'))['changed']

    # the receiver's state: one PagerDuty incident (dedup), escalated, then resolved
    status, state = http_json(base + '/receiver/state')
    assert status == 200
    [incident] = state['pagerduty_incidents']
    assert (incident['incident_key'], incident['escalation_level'], incident['status']) == \
        ('sandbox-test-incident', 2, 'resolved')
    assert [m['thread_ts'] for m in state['slack_messages'] if 'thread_ts' in m] == [root['ts']]

    # every request recorded, auth values redacted, scheme kept
    records = box.notifications()
    assert [(r['service'], r['method']) for r in records] == [
        ('pagerduty_events', 'POST'), ('pagerduty_events', 'POST'), ('pagerduty_rest', 'GET'),
        ('pagerduty_rest', 'PUT'), ('slack', 'POST'), ('slack', 'POST'), ('statuspage', 'GET'),
        ('statuspage', 'POST'), ('statuspage', 'GET'), ('statuspage', 'PATCH'), ('pagerduty_events', 'POST')]
    assert records[0]['path'] == '/pagerduty-events/v2/enqueue' and records[0]['status'] == 202
    assert records[0]['json']['routing_key'] == '<redacted>' and records[0]['json']['dedup_key'] == 'sandbox-test-incident'
    assert records[2]['headers']['authorization'] == 'Token token=<redacted>'
    assert records[4]['headers']['authorization'] == 'Bearer <redacted>'
    assert records[7]['headers']['authorization'] == 'OAuth <redacted>'
    with open(box.notifications_file) as fh:
        journal = fh.read()
    assert not any(v in journal for v in placeholders)

    proc = cli(box, 'status', '--json')
    st = json.loads(proc.stdout)
    receiver = st['processes']['receiver']
    assert receiver['up'] and receiver['port'] == box.receiver_port and receiver['notifications'] == len(records)
    text = cli(box, 'status').stdout
    assert 'notifications up' in text and '%d recorded in %s' % (len(records), box.notifications_file) in text


def test_stop_leaves_no_process(box):
    pids = [box.moto_pid(), box.twin_pid(), box.receiver_pid()]
    assert all(pids) and all(pid_alive(p) for p in pids)
    box.stop()
    assert not any(pid_alive(p) for p in pids)
    assert box.moto_pid() is None and box.twin_pid() is None
    assert not os.path.exists(box.connection_file)
    box.stop()  # idempotent
    proc = cli(box, 'status')
    assert proc.returncode == 1 and 'DOWN' in proc.stdout
