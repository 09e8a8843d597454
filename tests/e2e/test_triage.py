"""Triage (playbooks/triage.yml) end to end on a private local sandbox.

The tests share one sandbox and run in file order, like an incident does:
healthy (P3, nothing opened) -> bad deploy injected -> P1 with the error rate
as the reason -> AWS unreachable (still classified, the unreadable evidence
named) -> routed to the high_error_rate runbook, rolled back and verified.
State is read back from moto itself.
"""
import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import run_playbook
from tests.helpers.servers import REPO, free_port

sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox import Sandbox  # noqa: E402

pytestmark = pytest.mark.e2e

PLAYBOOK = os.path.join(REPO, 'playbooks', 'triage.yml')
SECRETS = ('sandbox-secret-key',)


@pytest.fixture(scope='module')
def triage_sandbox(tmp_path_factory):
    """A sandbox of our own (moto_server + twin) on free loopback ports."""
    state = tmp_path_factory.mktemp('triage-sandbox')
    box = Sandbox(str(state), moto_port=free_port(), twin_port=free_port(), receiver_port=free_port(),
                  payments=False)
    box.start()
    try:
        yield box
    finally:
        box.stop()


def triage(box, tmp_path, incident_id, *extra):
    return run_playbook(box, tmp_path, incident_id, *extra, playbook=PLAYBOOK)


def triage_json(run):
    with open(os.path.join(run.incident_dir, 'triage.json')) as fh:
        return json.load(fh)


def wait_for_error_rate(box, threshold, timeout=120):
    """Wait, bounded, until CloudWatch shows a 5xx rate above threshold over the
    last 60 s (the sandbox's detection window), so the classification does not
    depend on how much healthy traffic is still in the window."""
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'wait_for_symptom.py'),
                           '--state-dir', box.state_dir, '--threshold', str(threshold), '--timeout', str(timeout)],
                          capture_output=True, text=True, timeout=timeout + 30, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def current_revision(box):
    ecs = box.boto('ecs')
    svc = ecs.describe_services(cluster='svpms-sandbox-cluster', services=['svpms-api'])['services'][0]
    return int(svc['taskDefinition'].rsplit(':', 1)[1])


def assert_clean(run):
    assert 'Traceback' not in run.output
    texts = [run.output]
    if os.path.isdir(run.incident_dir):
        for name in os.listdir(run.incident_dir):
            with open(os.path.join(run.incident_dir, name)) as fh:
                texts.append(fh.read())
    for secret in SECRETS:
        for text in texts:
            assert secret not in text


def test_healthy_is_p3_and_opens_nothing(triage_sandbox, tmp_path):
    before = current_revision(triage_sandbox)
    run = triage(triage_sandbox, tmp_path, 'triage-healthy')
    assert run.rc == 0, run.output
    assert 'svpms-api: P3 - no rule matched: no incident' in run.output
    assert not os.path.exists(run.incident_dir), 'a healthy run must not open an incident'
    assert not os.path.exists(os.path.dirname(run.incident_dir)) or not os.listdir(os.path.dirname(run.incident_dir))
    assert current_revision(triage_sandbox) == before
    assert_clean(run)


def test_bad_input_is_rejected_with_the_field_named(triage_sandbox, tmp_path):
    bad_rules = json.dumps({'triage_rules': [
        {'id': 'errors', 'severity': 'P1', 'description': 'errors', 'when': {'signal': 'error_rate_pct', 'op': '=>', 'value': 3}}]})
    run = triage(triage_sandbox, tmp_path, 'triage-bad-rules', '-e', bad_rules)
    assert run.rc != 0
    assert "rules[0] (id 'errors').when.op must be one of" in run.output
    assert not os.path.exists(run.incident_dir)

    run = triage(triage_sandbox, tmp_path, 'triage-bad-arg', '-e', 'triage_probe_count=many')
    assert run.rc != 0
    assert 'triage_probe_count' in run.output
    assert_clean(run)


def test_extra_signal_hook_db_unreachable_is_p1_without_a_route(triage_sandbox, tmp_path):
    """A check this collection cannot run yet reports through triage_extra_signals;
    an unreachable database is evidence (P1). No runbook automates it, so with
    routing on the run escalates instead of guessing."""
    before = current_revision(triage_sandbox)
    extra = json.dumps({'triage_extra_signals': {'db_reachable': 'unreachable'},
                        'triage_extra_sources': {'db_reachable': 'psql svpms-sandbox-db: connection timed out'},
                        'triage_route': True})
    run = triage(triage_sandbox, tmp_path, 'triage-db', '-e', extra)
    assert run.rc != 0
    assert 'No automated mitigation applies: escalate' in run.output
    result = triage_json(run)
    assert result['severity'] == 'P1' and result['response'] == '30 min'
    assert result['matched'][0]['id'] == 'database_connection_failures'
    assert result['reasons'][0] == ('P1 database_connection_failures - Database connection failures: db_reachable is '
                                    'false (did not answer) (psql svpms-sandbox-db: connection timed out)')
    assert result['route'] == {}
    assert 'no scenario runbook automates database_connection_failures' in result['next_step']
    summary = run.summary()
    assert summary['outcome'] == 'human_action_required' and summary['scenario'] == 'triage'
    assert current_revision(triage_sandbox) == before
    assert_clean(run)


def test_high_error_rate_is_p1_with_the_error_rate_as_reason(triage_sandbox, tmp_path):
    good = current_revision(triage_sandbox)
    triage_sandbox.inject('high_error_rate')
    bad = current_revision(triage_sandbox)
    assert bad > good
    wait_for_error_rate(triage_sandbox, 15)
    run = triage(triage_sandbox, tmp_path, 'triage-p1')
    assert run.rc == 0, run.output
    assert 'svpms-api: P1 - respond 30 min' in run.output
    result = triage_json(run)
    assert result['severity'] == 'P1'
    assert result['response'] == '30 min' and result['response_minutes'] == 30 and result['page'] == 'pagerduty'
    assert result['respond_by']
    assert result['matched'][0]['id'] == 'partial_degradation'
    assert result['reasons'][0].startswith('P1 partial_degradation')
    assert 'error_rate_pct = ' in result['reasons'][0] and 'CloudWatch ALB metrics' in result['reasons'][0]
    assert result['affected_features'] == ['API']
    assert result['route']['scenario'] == 'high_error_rate' and result['routing'] is False
    # /health fails about half the time on the bad revision: degraded, not a complete outage
    assert 'complete_outage' not in [m['id'] for m in result['matched']]
    summary = run.summary()
    assert summary['scenario'] == 'triage'
    assert summary['symptom']['present'] is True and summary['symptom']['summary'].startswith('P1 (respond 30 min)')
    assert 'triage_route=true' in summary['decision']['reason']
    assert current_revision(triage_sandbox) == bad, 'triage without routing must not change anything'
    assert_clean(run)


def test_aws_unreachable_still_classifies_with_the_evidence(triage_sandbox, tmp_path):
    bad = current_revision(triage_sandbox)
    closed = 'http://127.0.0.1:%d' % free_port()
    run = triage(triage_sandbox, tmp_path, 'triage-unreachable', '-e', 'svpms_aws_endpoint_url=%s' % closed)
    assert run.rc == 0, run.output
    result = triage_json(run)
    assert result['severity'] in ('P1', 'P2')  # the error rate comes from the API probe now
    assert result['unreadable'] == ['running_tasks', 'desired_tasks']
    unreadable = [r for r in result['reasons'] if 'could not be read' in r]
    assert len(unreadable) == 2 and all(closed in r for r in unreadable), result['reasons']
    assert 'synthetic probe' in result['reasons'][0] and closed in result['reasons'][0]
    evidence = {e['signal']: e for e in result['evidence']}
    assert evidence['running_tasks']['status'] == 'unreachable'
    assert current_revision(triage_sandbox) == bad
    assert_clean(run)


def test_routing_runs_the_runbook_and_recovers(triage_sandbox, tmp_path):
    bad = current_revision(triage_sandbox)
    run = triage(triage_sandbox, tmp_path, 'triage-route', '-e', 'triage_route=true')
    assert run.rc == 0, run.output
    assert current_revision(triage_sandbox) == bad - 1, 'back on the good revision'
    result = triage_json(run)
    assert result['severity'] == 'P1' and result['routing'] is True
    assert result['route']['role'] == 'svpms.incident_response.high_error_rate'
    summary = run.summary()
    assert summary['scenario'] == 'high_error_rate'
    assert summary['outcome'] == 'recovered'
    assert summary['decision']['action'] == 'ecs_rollback'
    assert summary['mitigation']['status'] == 'applied'
    assert summary['verification']['status'] == 'passed'
    assert 'Mitigated and verified' in run.output
    assert_clean(run)
