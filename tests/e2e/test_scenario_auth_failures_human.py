"""Scenario 3 (authentication failures) end to end: the causes that are a
human's to fix, and routing from triage, on a private local sandbox.

One sandbox, the tests run in file order: the IdP's signing certificate
expired (SSO fails; a finding with the IdP support contact, an escalation,
nothing changed) -> the API role lost SELECT on the users table (a finding
with the GRANT to give; the runbook never changes grants) -> Redis stopped,
seen by triage as "Authentication system down" (P1, paged) and routed to
this runbook, which restarts it and verifies with real logins.
"""
import json
import os

import pytest

from tests.e2e.auth import FAST_VERIFY, assert_clean_output, heal, login, playbook, sso_start_status, wait_for_login
from tests.e2e.conftest import run_playbook
from tests.e2e.latency import connection, wait_until

pytestmark = pytest.mark.e2e


def triage_result(run):
    with open(os.path.join(run.incident_dir, 'triage.json')) as fh:
        return json.load(fh)


@pytest.fixture(autouse=True)
def healed_afterwards(sandbox):
    """Each test starts from a healthy sandbox, also after a failed one."""
    yield
    heal(sandbox)


def test_expired_idp_certificate_is_escalated_with_the_support_contact(sandbox, tmp_path):
    conn = connection(sandbox)
    sandbox.inject('idp_cert_expired')
    wait_until('SSO to fail', lambda: (sso_start_status(sandbox) == 502, sso_start_status(sandbox)), timeout=30)
    assert login(sandbox) == (True, 'ok'), 'password logins are not affected'
    # through triage, as an alert would start it: SSO failing is "Authentication system down" (P1, paged)
    run = run_playbook(sandbox, tmp_path, 'e2e-auth-idp', '-e', 'triage_route=true', *FAST_VERIFY,
                       playbook=playbook('triage.yml'))
    assert run.rc != 0, 'no automated mitigation: the run ends failed for a human'
    assert 'No automated mitigation applies' in run.output
    summary = run.summary()
    assert summary['scenario'] == 'auth_failures', summary
    triaged = triage_result(run)
    assert triaged['severity'] == 'P1' and triaged['matched'][0]['id'] == 'authentication_down', triaged
    assert 'SSO start' in ' '.join(triaged['reasons']), triaged['reasons']
    assert summary['outcome'] == 'human_action_required', summary
    decision = summary['decision']
    assert decision['action'] == 'contact_idp_support'
    assert conn['svpms_saml_support_contact'] in decision['reason']
    findings = {f['check']: f for f in summary['findings']}
    assert findings['SAML IdP']['status'] == 'problem'
    assert 'expired' in findings['SAML IdP']['summary']
    assert findings['session store (Redis)']['status'] == 'ok'
    assert findings['JWT signing key']['status'] == 'ok'
    assert findings['users table']['status'] == 'ok'
    # escalated to the next level, and the thread names who to call
    puts = [n for n in sandbox.notifications() if n['method'] == 'PUT' and n['path'].startswith('/pagerduty/incidents/')]
    assert puts, 'escalated in PagerDuty to the next level'
    posts = [n for n in sandbox.notifications() if n['path'].endswith('/chat.postMessage')
             and 'e2e-auth-idp' in (n.get('json') or {}).get('text', '')]
    assert posts and 'Escalating.' in posts[-1]['json']['text'], posts
    assert 'identity-oncall@svpms.example.com' in posts[-1]['json']['text']
    assert sso_start_status(sandbox) == 502, 'the runbook has no automatic fix for the IdP'
    assert_clean_output(run)


def test_revoked_users_table_grant_is_a_finding_with_the_grant_to_give(sandbox, tmp_path):
    conn = connection(sandbox)
    sandbox.inject('user_table_denied')
    wait_for_login(sandbox, ok=False)
    assert login(sandbox)[1] == 'login 500 user_lookup_failed', login(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-auth-users', *FAST_VERIFY, playbook=playbook())
    assert run.rc != 0
    summary = run.summary()
    assert summary['outcome'] == 'human_action_required', summary
    assert summary['decision']['action'] == 'fix_users_table'
    assert 'GRANT SELECT' in summary['decision']['reason']
    assert conn['svpms_db_app_user'] in summary['decision']['reason']
    assert 'user_lookup_failed' in summary['symptom']['summary']
    findings = {f['check']: f for f in summary['findings']}
    assert findings['users table']['status'] == 'problem'
    assert login(sandbox)[0] is False, 'the runbook never changes grants'
    assert_clean_output(run)


def test_triage_routes_failing_logins_to_this_runbook(sandbox, tmp_path):
    sandbox.inject('redis_down')
    wait_for_login(sandbox, ok=False)
    run = run_playbook(sandbox, tmp_path, 'e2e-auth-triage', '-e', 'triage_route=true', *FAST_VERIFY,
                       '-e', 'verify_recovery_settle_seconds=15', playbook=playbook('triage.yml'))
    assert run.rc == 0, run.output[-5000:]
    summary = run.summary()
    assert summary['scenario'] == 'auth_failures', summary
    assert triage_result(run)['severity'] == 'P1'
    assert triage_result(run)['signals']['auth_ok'] is False
    assert summary['outcome'] == 'recovered', summary
    assert summary['decision']['action'] == 'redis_restart'
    assert sandbox.redis_running()
    # P1: paged
    paths = [n['path'] for n in sandbox.notifications()]
    assert any(p.endswith('/v2/enqueue') for p in paths), paths
    assert login(sandbox) == (True, 'ok')
    assert_clean_output(run)
