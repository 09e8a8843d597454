"""Scenario 1 (high 5xx error rate) end to end on the local sandbox.

The tests share one sandbox and run in file order, like an incident does:
healthy -> fault injected -> approve mode stops -> --check changes nothing
-> auto mode rolls back and verifies -> the installed collection by FQCN.
Every assertion about state is read back from moto itself.
"""
import glob
import os
import subprocess

import pytest

from tests.e2e.conftest import run_playbook, wait_for_symptom
from tests.helpers.servers import REPO, VENV_BIN, free_port

pytestmark = pytest.mark.e2e

SECRETS = ('sandbox-secret-key',)


def service(box):
    ecs = box.boto('ecs')
    return ecs.describe_services(cluster='svpms-sandbox-cluster', services=['svpms-api'])['services'][0]


def current_revision(box):
    return int(service(box)['taskDefinition'].rsplit(':', 1)[1])


def assert_no_secrets(run):
    texts = [run.output]
    for name in ('report.md', 'timeline.jsonl', 'summary.json'):
        path = os.path.join(run.incident_dir, name)
        if os.path.exists(path):
            texts.append(open(path).read())
    for secret in SECRETS:
        for text in texts:
            assert secret not in text


def test_healthy_system_changes_nothing(sandbox, tmp_path):
    before = current_revision(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-healthy')
    assert run.rc == 0, run.output
    assert 'Symptom absent' in run.output
    assert run.summary()['outcome'] == 'no_incident'
    assert current_revision(sandbox) == before
    assert 'Traceback' not in run.output
    assert_no_secrets(run)


def test_approve_mode_stops_before_the_change(sandbox, tmp_path):
    good = current_revision(sandbox)
    sandbox.inject('high_error_rate')
    bad = current_revision(sandbox)
    assert bad > good
    wait_for_symptom(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-approve', '-e', 'incident_mode=approve')
    assert run.rc != 0
    token = 'ecs_rollback:svpms-api:svpms-api:%d' % good
    assert 'incident_approve=%s' % token in run.output
    assert current_revision(sandbox) == bad, 'approve mode must not change anything'
    summary = run.summary()
    assert summary['outcome'] == 'approval_required'
    assert summary['mitigation']['token'] == token
    assert 'incident_approve=%s' % token in run.report()
    assert_no_secrets(run)


def test_aws_unreachable_is_evidence_not_a_crash(sandbox, tmp_path):
    """With AWS unreachable mid-incident the runbook detects through the probe,
    records every unreachable check, changes nothing and says to escalate."""
    bad = current_revision(sandbox)
    closed = 'http://127.0.0.1:%d' % free_port()
    run = run_playbook(sandbox, tmp_path, 'e2e-unreachable', '-e', 'svpms_aws_endpoint_url=%s' % closed)
    assert run.rc != 0
    assert 'No automated mitigation applies: escalate' in run.output
    assert 'Traceback' not in run.output
    summary = run.summary()
    assert summary['symptom']['present'] is True
    assert 'synthetic probe' in summary['symptom']['source']
    findings = {f['check']: f for f in summary['findings']}
    assert findings['recent deployments']['status'] == 'unreachable'
    assert closed in findings['recent deployments']['summary']
    assert findings['logs']['status'] == 'unreachable'
    assert summary['outcome'] == 'human_action_required'
    reason = summary['decision']['reason']
    assert 'evidence is incomplete' in reason and 'recent deployments' in reason and 'within limits' not in reason
    assert current_revision(sandbox) == bad
    assert_no_secrets(run)


def test_check_mode_changes_nothing_and_reports_the_plan(sandbox, tmp_path):
    bad = current_revision(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-check', '--check')
    assert run.rc == 0, run.output
    assert current_revision(sandbox) == bad, '--check must not change anything'
    summary = run.summary()
    assert summary['outcome'] == 'would_mitigate'
    assert summary['mitigation']['status'] == 'would_apply'
    assert summary['mitigation']['after']['task_definition'].endswith(':%d' % (bad - 1))
    report = run.report()
    assert 'would_apply' in report and 'after (would be)' in report
    rollback = [e for e in run.timeline() if e['action'] == 'svpms.incident_response.ecs_rollback']
    assert rollback and rollback[0]['status'] == 'changed' and rollback[0]['check_mode'] is True


def test_auto_mode_rolls_back_and_verifies(sandbox, tmp_path):
    bad = current_revision(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-auto', '-e', 'incident_mode=auto')
    assert run.rc == 0, run.output
    assert current_revision(sandbox) == bad - 1
    summary = run.summary()
    assert summary['outcome'] == 'recovered'
    assert summary['decision']['action'] == 'ecs_rollback'
    assert summary['mitigation']['status'] == 'applied'
    assert summary['mitigation']['before']['task_definition'].endswith(':%d' % bad)
    assert summary['mitigation']['after']['task_definition'].endswith(':%d' % (bad - 1))
    assert summary['verification']['status'] == 'passed'
    assert all(r['ok'] for r in summary['verification']['rounds'])
    # the stack traces the bad revision logged are in the report
    assert summary['signatures'] and summary['signatures'][0]['count'] > 0
    report = run.report()
    assert 'ecs_rollback' in report and 'recovered' in report
    phases = {e['phase'] for e in run.timeline()}
    assert {'detect', 'investigate', 'decide', 'mitigate', 'verify', 'record'} <= phases
    assert_no_secrets(run)


def test_rerun_right_after_recovery_changes_nothing(sandbox, tmp_path):
    """The detection window still holds the bad revision's errors (metrics lag);
    the runbook must see that the latest datapoints are clean and not roll back
    further or scale out."""
    before = service(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-rerun')
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'no_incident', summary['symptom']
    after = service(sandbox)
    assert after['taskDefinition'] == before['taskDefinition']
    assert after['desiredCount'] == before['desiredCount']


def test_installed_collection_runs_by_fqcn(sandbox, tmp_path):
    """After `ansible-galaxy collection build` + `install`, the playbook runs by FQCN."""
    build = tmp_path / 'build'
    coll = tmp_path / 'collections'
    subprocess.run([os.path.join(VENV_BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path',
                    str(build), REPO], check=True, capture_output=True, cwd=REPO, timeout=120)
    tarball = glob.glob(str(build / 'svpms-incident_response-*.tar.gz'))[0]
    subprocess.run([os.path.join(VENV_BIN, 'ansible-galaxy'), 'collection', 'install', '--force', '-p',
                    str(coll), tarball], check=True, capture_output=True, cwd=str(tmp_path), timeout=120)
    workdir = tmp_path / 'elsewhere'
    workdir.mkdir()
    cfg = workdir / 'ansible.cfg'
    cfg.write_text('[defaults]\ncollections_path = %s\ncallbacks_enabled = '
                   'svpms.incident_response.incident_timeline\n' % coll)
    run = run_playbook(sandbox, tmp_path, 'e2e-fqcn', playbook='svpms.incident_response.scenario_high_error_rate',
                       env={'ANSIBLE_CONFIG': str(cfg)}, cwd=str(workdir))
    assert run.rc == 0, run.output
    assert run.summary()['outcome'] == 'no_incident'
    assert run.timeline(), 'the installed callback wrote the timeline'
    assert 'svpms.incident_response.service_metrics_info' in {e['action'] for e in run.timeline()}
