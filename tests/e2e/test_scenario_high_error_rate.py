"""Scenario 1 (high 5xx error rate) end to end on the local sandbox.

The tests share one sandbox and run in file order, like an incident does:
healthy -> fault injected -> approve mode stops -> --check changes nothing
-> auto mode rolls back and verifies -> the installed collection by FQCN.
Every assertion about state is read back from moto itself.
"""
import concurrent.futures
import fcntl
import glob
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import termios
import time

import pytest

from tests.e2e.conftest import run_playbook, wait_for_symptom
from tests.helpers.servers import REPO, VENV_BIN, free_port

pytestmark = pytest.mark.e2e

SECRETS = ('sandbox-secret-key',)
RECOVERED = {}  # incident directories (approve run, auto run) that later tests run again


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
    assert 'Re-run with -e incident_approve=%s to apply' % token in run.output  # the final message too
    assert current_revision(sandbox) == bad, 'approve mode must not change anything'
    summary = run.summary()
    assert summary['outcome'] == 'approval_required'
    assert summary['mitigation']['approval'] == token
    assert 'incident_approve=%s' % token in run.report()
    assert_no_secrets(run)
    RECOVERED['approve_dir'] = run.incident_dir


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
    # --check on an incident that has a record (the approve run's) keeps that record; its plan is last_run.json
    incident = os.path.basename(RECOVERED['approve_dir'])
    shutil.copytree(RECOVERED['approve_dir'], str(tmp_path / 'incidents' / incident))
    again = run_playbook(sandbox, tmp_path, incident, '--check')
    assert again.rc == 0, again.output
    assert again.summary()['outcome'] == 'approval_required'
    with open(os.path.join(again.incident_dir, 'last_run.json')) as fh:
        plan = json.load(fh)
    assert plan['outcome'] == 'would_mitigate' and plan['check_mode'] is True
    assert 'The incident record (outcome approval_required) is kept' in again.output
    assert current_revision(sandbox) == bad


def run_in_terminal(cmd, env, answer, timeout=300):
    """Run cmd on a pseudo-terminal (an operator at a shell); type `answer`
    when the approval prompt shows. Returns (exit code, everything printed)."""
    master, slave = pty.openpty()

    def controlling_terminal():  # as in an operator's shell: the pty is the session's terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO,
                            preexec_fn=controlling_terminal)  # pylint: disable=subprocess-popen-preexec-fn
    os.close(slave)
    out, answered_at = b'', None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _w, _x = select.select([master], [], [], 1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
            # pause flushes typed-ahead input when it starts reading (the
            # terminal still echoes it): answer again every 3 s until the play
            # has moved on to the task after the prompt.
            if (b'Type yes to apply it now' in out and b"Take the operator's answer" not in out
                    and (answered_at is None or time.monotonic() - answered_at > 3)):
                os.write(master, answer.encode() + b'\r')
                answered_at = time.monotonic()
        return proc.wait(timeout=30), out.decode(errors='replace')
    finally:
        # the run is its own session (setsid): stop it and its forked workers
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        os.close(master)


def test_interactive_approval_answered_no_changes_nothing(sandbox, tmp_path):
    """At a terminal, approve mode shows the planned change and asks; 'no' stops."""
    bad = current_revision(sandbox)
    root = tmp_path / 'incidents'
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), os.path.join(REPO, 'playbooks', 'scenario_high_error_rate.yml'),
           '-i', os.path.join(REPO, 'inventories', 'sandbox'), '-e', '@' + os.path.join(sandbox.state_dir, 'connection.yml'),
           '-e', 'incident_id=e2e-interactive', '-e', 'incident_mode=approve']
    env = dict(os.environ, SVPMS_INCIDENT_ROOT=str(root), ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_NOCOLOR='1')
    rc, out = run_in_terminal(cmd, env, 'no')
    assert 'APPROVAL REQUIRED (incident_mode=approve)' in out, out
    assert 'ecs_rollback svpms-api:%d' % (bad - 1) in out
    assert rc != 0 and 'Approval required: nothing was changed' in out
    assert current_revision(sandbox) == bad


def test_auto_mode_rolls_back_and_verifies_one_run_at_a_time(sandbox, tmp_path):
    """Two runs start together (an alert fired twice): the DynamoDB lock lets one
    mitigate; the other sees the holder, changes nothing and says so."""
    bad = current_revision(sandbox)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run_playbook, sandbox, tmp_path, name, '-e', 'incident_mode=auto')
                   for name in ('e2e-auto', 'e2e-auto-twin')]
        runs = [f.result() for f in futures]
    outcomes = sorted(r.summary()['outcome'] for r in runs)
    assert outcomes == ['mitigation_in_progress', 'recovered'], [r.output[-3000:] for r in runs]
    run = [r for r in runs if r.summary()['outcome'] == 'recovered'][0]
    other = [r for r in runs if r is not run][0]
    assert other.rc == 0, other.output
    assert 'Not mitigating concurrently' in other.output
    assert other.summary()['mitigation']['lock_holder']['owner'].startswith('e2e-auto')
    rollbacks = [e for r in runs for e in r.timeline()
                 if e['action'] == 'svpms.incident_response.ecs_rollback' and e['status'] == 'changed']
    assert len(rollbacks) == 1
    ddb = sandbox.boto('dynamodb')
    assert 'Item' not in ddb.get_item(TableName='svpms-sandbox-incident-locks',
                                      Key={'lock_key': {'S': 'svpms-api'}}), 'the lock was released'
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
    RECOVERED['dir'] = run.incident_dir


def test_rerun_right_after_recovery_changes_nothing(sandbox, tmp_path):
    """The detection window still holds the bad revision's errors (metrics lag);
    the runbook must see that the latest datapoints are clean and not roll back
    further or scale out."""
    before = service(sandbox)
    # the same incident: its record (the rollback) must survive the re-run
    incident = os.path.basename(RECOVERED['dir'])
    shutil.copytree(RECOVERED['dir'], str(tmp_path / 'incidents' / incident))
    run = run_playbook(sandbox, tmp_path, incident)
    assert run.rc == 0, run.output
    with open(os.path.join(run.incident_dir, 'last_run.json')) as fh:
        assert json.load(fh)['outcome'] == 'no_incident'
    summary = run.summary()
    assert summary['outcome'] == 'recovered' and summary['mitigation']['status'] == 'applied'
    with open(os.path.join(run.incident_dir, 'state.json')) as fh:
        state = json.load(fh)
    assert state['phase'] == 'recovered' and state['last_run_outcome'] == 'no_incident'
    assert 'The incident record (outcome recovered) is kept' in run.output
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
