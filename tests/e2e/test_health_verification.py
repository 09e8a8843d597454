"""Scheduled health verification (playbooks/health_verification.yml) end to end
on a private local sandbox with payments: every check of a healthy service
passes (exit 0, health.json, junit.xml); then, with a bad deployment and a
second service whose endpoints do not answer, the run exits non-zero, names
the SLO breach of one and the other as down, and the JUnit report has a
failure per broken check. Read-only: the sandbox is not changed by the run.
Both runs publish each verdict as CloudWatch metrics (read back from the
sandbox's moto_server); the dead service's AWS endpoint does not answer
either, which is reported as an unpublished metric, not a crash.
"""
import datetime
import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from tests.e2e.conftest import sandbox_inventory, wait_for_metrics, wait_for_symptom
from tests.helpers.servers import REPO, VENV_BIN, free_port

pytestmark = pytest.mark.e2e
SANDBOX_PAYMENTS = True  # the Stripe key check needs the stand-in
SECRETS = ('sandbox-secret-key', 'sk_test_sandbox_0000000000000000000000000000',
           'sk_test_sandbox_operator_00000000000000000000')


def inventory(box, tmp_path, broken=False):
    """The sandbox inventory with this sandbox's settings; broken=True adds svpms-orders, whose /health answers
    nowhere (its other checks are not configured)."""
    inv = sandbox_inventory(box, tmp_path / ('inventory-%s' % ('two' if broken else 'one')))
    if broken:
        closed = 'http://127.0.0.1:%d' % free_port()
        orders = {'svpms_health_url': closed + '/health', 'svpms_api_probe_url': closed + '/health',
                  'svpms_latency_source': 'probe', 'svpms_aws_endpoint_url': closed, 'ansible_connection': 'local',
                  'ansible_python_interpreter': '{{ ansible_playbook_python }}'}
        with open(os.path.join(inv, 'orders.yml'), 'w') as fh:
            yaml.safe_dump({'all': {'children': {'svpms_services': {'hosts': {'svpms-orders': orders}}}}}, fh)
    return inv


def run(box, tmp_path, inv, *extra):
    out = tmp_path / 'health'
    env = dict(os.environ, SVPMS_HEALTH_DIR=str(out), ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_NOCOLOR='1')
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), os.path.join(REPO, 'playbooks', 'health_verification.yml'),
           '-i', inv, '-e', 'health_check_window_seconds=60', '-e', 'health_check_period_seconds=10'] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO, check=False,
                          stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert 'Traceback' not in output
    with open(out / 'health.json') as fh:
        summary = json.load(fh)
    junit = ET.parse(str(out / 'junit.xml')).getroot()
    for text in (output, json.dumps(summary), ET.tostring(junit, encoding='unicode')):
        for secret in SECRETS:
            assert secret not in text
    return proc.returncode, output, summary, junit


METRICS = ('-e', 'svpms_health_metric_namespace=SVPMS/HealthVerification',
           '-e', '{"svpms_health_metric_dimensions": {"Environment": "sandbox"}}')


def published(box, name, service):
    """The Maximum of each minute of the last 15 of SVPMS/HealthVerification <name> for this service."""
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)
    resp = box.boto('cloudwatch').get_metric_data(
        MetricDataQueries=[{'Id': 'm', 'ReturnData': True, 'MetricStat': {
            'Metric': {'Namespace': 'SVPMS/HealthVerification', 'MetricName': name,
                       'Dimensions': [{'Name': 'Environment', 'Value': 'sandbox'},
                                      {'Name': 'Service', 'Value': service}]},
            'Period': 60, 'Stat': 'Maximum'}}],
        StartTime=end - datetime.timedelta(minutes=15), EndTime=end)
    return resp['MetricDataResults'][0]['Values']


def checks(summary, service):
    [svc] = [s for s in summary['services'] if s['service'] == service]
    return svc['verdict'], {c['check']: c for c in svc['checks']}


def test_healthy_service_passes_every_check(sandbox, tmp_path):
    wait_for_metrics(sandbox)
    rc, output, summary, junit = run(sandbox, tmp_path, inventory(sandbox, tmp_path), *METRICS)
    assert rc == 0, output[-4000:]
    assert summary['verdict'] == 'healthy' and summary['counts'] == {'healthy': 1}, summary
    verdict, by_check = checks(summary, 'svpms-api')
    assert verdict == 'healthy'
    assert {k: c['status'] for k, c in by_check.items()} == {
        'health': 'ok', 'ecs_tasks': 'ok', 'error_rate': 'ok', 'latency_p95': 'ok', 'db_connections': 'ok',
        'redis': 'ok', 'stripe_key': 'ok'}, by_check
    assert by_check['ecs_tasks']['value'] == '3/3' and by_check['stripe_key']['value'] == 'valid'
    assert junit.get('failures') == '0' and junit.get('errors') == '0' and junit.get('tests') == '7'
    assert [tc.get('name') for tc in junit.iter('testcase')] == list(by_check)
    # the verdict, published for an alarm
    assert 'verdict metric: published to SVPMS/HealthVerification' in output
    assert summary['metric_failures'] == []
    assert published(sandbox, 'HealthVerificationFailed', 'svpms-api') == [0.0]
    assert published(sandbox, 'HealthChecksFailing', 'svpms-api') == [0.0]


def test_breach_and_a_dead_service_fail_the_run_with_junit_failures(sandbox, tmp_path):
    sandbox.inject('high_error_rate')
    wait_for_symptom(sandbox)
    bad_revision = sandbox.service()['taskDefinition']
    rc, output, summary, junit = run(sandbox, tmp_path, inventory(sandbox, tmp_path, broken=True), *METRICS)
    assert rc != 0, output[-4000:]
    assert 'Health verification failed: svpms-api, svpms-orders' in output
    assert summary['verdict'] == 'slo_breach' and summary['counts'] == {'slo_breach': 1, 'down': 1}, summary
    verdict, by_check = checks(summary, 'svpms-api')
    assert verdict == 'slo_breach' and by_check['error_rate']['status'] == 'breach', by_check['error_rate']
    assert float(by_check['error_rate']['value']) >= 1.0
    verdict, by_check = checks(summary, 'svpms-orders')
    assert verdict == 'down' and by_check['health']['status'] == 'problem', by_check['health']
    assert by_check['ecs_tasks']['status'] == 'skipped'
    suites = {s.get('name'): s for s in junit.iter('testsuite')}
    assert set(suites) == {'svpms-api', 'svpms-orders'}
    failed = {(s, tc.get('name')) for s, suite in suites.items() for tc in suite.iter('testcase')
              if tc.find('failure') is not None}
    assert ('svpms-api', 'error_rate') in failed and ('svpms-orders', 'health') in failed, failed
    assert int(junit.get('failures')) == len(failed)
    # svpms-api's verdict reached CloudWatch; svpms-orders' AWS endpoint does not answer: reported, not a crash
    assert 1.0 in published(sandbox, 'HealthVerificationFailed', 'svpms-api')
    assert max(published(sandbox, 'HealthChecksFailing', 'svpms-api')) >= 1.0
    assert summary['metric_failures'] == ['svpms-orders'], summary['metric_failures']
    [orders] = [s for s in summary['services'] if s['service'] == 'svpms-orders']
    assert orders['metric']['published'] is False and 'could not reach' in orders['metric']['error']
    assert 'verdict metric: NOT published to SVPMS/HealthVerification' in output
    assert 'WARNING - the verdict metric of svpms-orders was not' in output
    assert sandbox.service()['taskDefinition'] == bad_revision, 'health verification changes nothing'
    sandbox.heal()
