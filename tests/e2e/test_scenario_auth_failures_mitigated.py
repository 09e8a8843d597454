"""Scenario 3 (authentication failures) end to end: the faults the runbook
mitigates itself, on a private local sandbox.

One sandbox, the tests run in file order: healthy (no incident) -> the
session store (Redis) stopped: --check restarts nothing, auto restarts it with
the configured command and a real login verifies -> the JWT key in Secrets
Manager changed out of band (the service signs with a key that is neither
AWSCURRENT nor AWSPREVIOUS): --check leaves every secret version, stage and
the deployment as they were, auto rotates the key and forces a redeployment,
verified by real logins; at -vvvv no key material and no password is printed.
State is read back from the sandbox's redis-server, moto and the twin.
"""
import pytest

from tests.e2e.auth import (FAST_VERIFY, assert_clean_output, heal, key_lines, login, playbook,
                            primary_deployment, secret_values, secret_versions, wait_for_login)
from tests.e2e.conftest import run_playbook

pytestmark = pytest.mark.e2e


def test_healthy_sandbox_has_no_auth_symptom(sandbox, tmp_path):
    assert login(sandbox) == (True, 'ok')
    run = run_playbook(sandbox, tmp_path, 'e2e-auth-healthy', playbook=playbook())
    assert run.rc == 0, run.output
    assert 'Symptom absent' in run.output
    assert run.summary()['outcome'] == 'no_incident'
    assert_clean_output(run)


def test_session_store_down_check_mode_restarts_nothing(sandbox, tmp_path):
    sandbox.inject('redis_down')
    assert not sandbox.redis_running()
    wait_for_login(sandbox, ok=False)
    run = run_playbook(sandbox, tmp_path, 'e2e-auth-redis-check', '--check', playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'would_mitigate', summary
    assert summary['decision']['action'] == 'redis_restart'
    assert 'session_store_unavailable' in summary['symptom']['summary']
    findings = {f['check']: f for f in summary['findings']}
    assert findings['session store (Redis)']['status'] == 'problem'
    assert 'does not answer' in findings['session store (Redis)']['summary']
    assert summary['mitigation']['status'] == 'would_apply'
    assert not sandbox.redis_running(), '--check must not restart Redis'
    assert_clean_output(run)


def test_session_store_down_auto_restarts_redis_and_logins_work(sandbox, tmp_path):
    assert not sandbox.redis_running()
    port = sandbox.redis_port
    run = run_playbook(sandbox, tmp_path, 'e2e-auth-redis-auto', *FAST_VERIFY, playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'recovered', summary
    assert summary['mitigation']['status'] == 'applied'
    assert summary['mitigation']['after']['run_id'], summary['mitigation']
    assert sandbox.redis_running() and sandbox.redis_port == port
    assert sandbox.redis_client().ping()
    # the verification signed in for real in every round
    assert summary['verification']['status'] == 'passed'
    assert all(r['login_failure_rate_pct'] in (0, 0.0, '0.0') for r in summary['verification']['rounds']), \
        summary['verification']['rounds']
    assert login(sandbox) == (True, 'ok')
    assert_clean_output(run)


def test_jwt_key_mismatch_check_mode_changes_no_secret_and_no_deployment(sandbox, tmp_path):
    sandbox.inject('jwt_key_mismatch')
    wait_for_login(sandbox, ok=False)
    assert login(sandbox)[1].startswith('me 401'), login(sandbox)
    versions, deployment = secret_versions(sandbox), primary_deployment(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-auth-jwt-check', '--check', playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'would_mitigate', summary
    assert summary['decision']['action'] == 'jwt_key_rotate'
    findings = {f['check']: f for f in summary['findings']}
    assert findings['JWT signing key']['status'] == 'problem'
    assert 'does not publish the AWSCURRENT key' in findings['JWT signing key']['summary']
    assert summary['mitigation']['status'] == 'would_apply'
    assert secret_versions(sandbox) == versions, '--check must not touch the secret'
    assert primary_deployment(sandbox) == deployment, '--check must not redeploy'
    assert login(sandbox)[0] is False
    assert_clean_output(run)


def test_jwt_key_mismatch_auto_rotates_redeploys_and_prints_no_key(sandbox, tmp_path):
    before_versions, before_deployment = secret_versions(sandbox), primary_deployment(sandbox)
    current_before = [v for v, stages in before_versions.items() if 'AWSCURRENT' in stages]
    run = run_playbook(sandbox, tmp_path, 'e2e-auth-jwt-auto', '-vvvv', *FAST_VERIFY, playbook=playbook())
    assert run.rc == 0, run.output[-5000:]
    summary = run.summary()
    assert summary['outcome'] == 'recovered', summary
    mitigation = summary['mitigation']
    assert mitigation['status'] == 'applied'
    assert mitigation['before']['current_version'] == current_before[0]
    after_versions = secret_versions(sandbox)
    current_after = [v for v, stages in after_versions.items() if 'AWSCURRENT' in stages]
    previous_after = [v for v, stages in after_versions.items() if 'AWSPREVIOUS' in stages]
    assert current_after[0] not in before_versions, 'a new key version is AWSCURRENT'
    assert mitigation['after']['current_version'] == current_after[0]
    assert previous_after == current_before, 'the replaced key stays AWSPREVIOUS for tokens in flight'
    assert primary_deployment(sandbox) != before_deployment, 'the service was redeployed'
    assert summary['verification']['status'] == 'passed'
    assert login(sandbox) == (True, 'ok')
    # no key material of any version, at -vvvv, in the output or the record
    lines = key_lines(secret_values(sandbox))
    assert lines
    assert_clean_output(run, extra_secrets=lines)
    # the post-incident report names the login symptom and shows the logins of each verification round
    post = run_playbook(sandbox, tmp_path, 'e2e-auth-jwt-auto', playbook=playbook('post_incident.yml'))
    assert post.rc == 0, post.output[-3000:]
    report = post.report()
    assert 'symptom: logins failing &gt;= 5 % (synthetic login and SSO start)' in report, report[:3000]
    assert '| logins failed % |' in report
    for text in (post.output, report):
        assert not any(line in text for line in lines)
    heal(sandbox)
