"""Scenario 2 (high latency) end to end, the database cause, on the local sandbox.

One sandbox, the tests run in file order: healthy -> lock_contention (a batch
session idle in transaction holds the row locks every API request waits on)
-> approve mode stops and --check lists the blocker, both ending nothing ->
auto ends exactly the blocker (cancel cannot end an idle transaction, so it is
terminated after the grace period) and verifies. State is read back from
PostgreSQL's pg_stat_activity and the twin's own latency.
"""
import pytest

from tests.e2e.conftest import run_playbook
from tests.e2e.latency import (FAST_VERIFY, HOLDER_APP, assert_clean_output, db_sessions, heal, playbook,
                               wait_for_latency)

pytestmark = pytest.mark.e2e


def test_healthy_sandbox_has_no_latency_symptom(sandbox, tmp_path):
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-healthy', playbook=playbook())
    assert run.rc == 0, run.output
    assert 'Symptom absent' in run.output
    assert run.summary()['outcome'] == 'no_incident'
    assert_clean_output(run)


def test_lock_contention_is_found_and_gated(sandbox, tmp_path):
    """approve mode and --check name the blocking session and end nothing."""
    sandbox.inject('lock_contention')
    wait_for_latency(sandbox)
    holder = db_sessions(sandbox, HOLDER_APP)
    assert len(holder) == 1 and holder[0][1] == 'idle in transaction', holder
    pid = holder[0][0]

    run = run_playbook(sandbox, tmp_path, 'e2e-lat-approve', '-e', 'incident_mode=approve', playbook=playbook())
    assert run.rc != 0
    summary = run.summary()
    assert summary['outcome'] == 'approval_required', summary
    assert summary['decision']['action'] == 'pg_cancel_queries'
    assert str(pid) in summary['decision']['target']
    findings = {f['check']: f for f in summary['findings']}
    assert findings['database locks and long-running queries']['status'] == 'problem'
    assert str(pid) in findings['database locks and long-running queries']['summary']
    assert 'incident_approve=pg_cancel_queries:svpms-api:' in run.output
    assert db_sessions(sandbox, HOLDER_APP) == holder, 'approve mode must not end the session'

    run = run_playbook(sandbox, tmp_path, 'e2e-lat-check', '--check', playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'would_mitigate'
    assert summary['mitigation']['status'] == 'would_apply'
    assert str(pid) in summary['mitigation']['after']['sessions']
    assert 'would_cancel' in summary['mitigation']['after']['sessions']
    assert db_sessions(sandbox, HOLDER_APP) == holder, '--check must not end the session'
    assert_clean_output(run)


def test_lock_contention_auto_ends_exactly_the_blocker(sandbox, tmp_path):
    holder = db_sessions(sandbox, HOLDER_APP)
    assert holder, 'the lock holder of the previous test is still there'
    pid = holder[0][0]
    api_before = {p for p, _s in db_sessions(sandbox, 'svpms-api')}
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-auto', *FAST_VERIFY, playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'recovered', summary
    mitigation = summary['mitigation']
    assert mitigation['status'] == 'applied'
    # cancel cannot end an idle-in-transaction session: it was terminated after the grace period
    assert '%d terminated' % pid in mitigation['after']['sessions'], mitigation
    assert db_sessions(sandbox, HOLDER_APP) == []
    # the API's own sessions (the waiters) were not touched
    api_after = {p for p, _s in db_sessions(sandbox, 'svpms-api')}
    assert api_before & api_after, (api_before, api_after)
    assert summary['verification']['status'] == 'passed'
    assert_clean_output(run)
    heal(sandbox)
