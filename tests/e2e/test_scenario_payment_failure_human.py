"""Scenario 4 (Stripe webhook failures) end to end: the causes that need a
human or a credential only a human has, and routing from triage, on a private
local sandbox with payments.

One sandbox, the tests run in file order: a deployment that stopped checking
signatures (our endpoint accepts forged events), seen by triage as P0
(payment processing failure and a security compromise) and routed to this
runbook, which escalates and changes nothing -> the service's Stripe key
revoked: without a new key a human is asked for one and nothing is written;
with a new key in SVPMS_NEW_STRIPE_API_KEY the runbook verifies it, stores it
as AWSCURRENT and redeploys, and payments succeed again, without the key
ever printed at -vvvv -> our endpoint disabled at Stripe, in approve mode:
the run stops with the exact approval, then enables it and replays.
"""
import json
import os

import pytest

from tests.e2e.conftest import run_playbook
from tests.e2e.latency import wait_until
from tests.e2e.payments import (C, FAST_VERIFY, NEW_KEY, assert_clean_output, payments, playbook, primary,
                                secret_value, secret_versions, stripe, wait_for_delivery, wait_for_undelivered)

pytestmark = pytest.mark.e2e
SANDBOX_PAYMENTS = True  # the sandbox fixture (conftest.py) starts the Stripe stand-in and payment traffic


def triage_result(run):
    with open(os.path.join(run.incident_dir, 'triage.json')) as fh:
        return json.load(fh)


@pytest.fixture(autouse=True)
def healed_afterwards(sandbox):
    """Each test starts from a healthy sandbox, also after a failed one."""
    yield
    sandbox.heal()
    wait_for_delivery(sandbox)


def wait_for_payment_errors(box):
    return wait_until('payments to fail with 401', lambda: (
        payments(box)['api']['last_error'] == 'api_key_expired', payments(box)['api']['last_error']), timeout=20)


def test_forged_events_accepted_is_a_p0_security_escalation_through_triage(sandbox, tmp_path):
    sandbox.inject('signature_check_disabled')
    wait_until('the twin to stop checking signatures',
               lambda: (payments(sandbox)['signature_check'] is False, None), timeout=30)
    before = primary(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-forged', '-e', 'triage_route=true', *FAST_VERIFY,
                       playbook=playbook('triage.yml'))
    assert run.rc != 0, 'no automated mitigation: the run ends failed for a human'
    triaged = triage_result(run)
    assert triaged['severity'] == 'P0', triaged
    assert {'payment_processing_failure', 'security_compromise'} <= {m['id'] for m in triaged['matched']}, triaged
    assert triaged['signals']['security_compromise'] is True and triaged['signals']['payments_ok'] is False
    summary = run.summary()
    assert summary['scenario'] == 'payment_failure', summary
    assert summary['outcome'] == 'human_action_required', summary
    assert summary['decision']['action'] == 'escalate_security_finding', summary['decision']
    findings = {f['check']: f for f in summary['findings']}
    assert findings['our webhook endpoint and signature validation']['status'] == 'problem'
    assert primary(sandbox) == before, 'nothing is rolled back automatically'
    assert payments(sandbox)['signature_check'] is False
    puts = [n for n in sandbox.notifications() if n['method'] == 'PUT' and n['path'].startswith('/pagerduty/incidents/')]
    assert puts, 'escalated in PagerDuty to the next level'
    assert_clean_output(run, sandbox)


def test_revoked_key_without_a_new_one_asks_a_human_and_writes_nothing(sandbox, tmp_path):
    sandbox.inject('stripe_key_revoked')
    wait_for_payment_errors(sandbox)
    versions = secret_versions(sandbox, C.STRIPE_KEY_SECRET_ID)
    before = primary(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-key-human', *FAST_VERIFY, playbook=playbook(),
                       env={'SVPMS_NEW_STRIPE_API_KEY': ''})
    assert run.rc != 0, run.output[-3000:]
    summary = run.summary()
    assert summary['outcome'] == 'human_action_required', summary
    decision = summary['decision']
    assert decision['action'] == 'replace_stripe_api_key', decision
    assert 'SVPMS_NEW_STRIPE_API_KEY' in decision['reason'] and 'sk_test_…0000' in decision['reason'], decision
    findings = {f['check']: f for f in summary['findings']}
    assert findings["the service's Stripe API key"]['status'] == 'problem'
    assert 'revoked' in findings["the service's Stripe API key"]['summary']
    assert secret_versions(sandbox, C.STRIPE_KEY_SECRET_ID) == versions and primary(sandbox) == before
    assert_clean_output(run, sandbox)


def test_revoked_key_with_a_new_one_is_verified_stored_redeployed(sandbox, tmp_path):
    sandbox.inject('stripe_key_revoked')
    wait_for_payment_errors(sandbox)
    deployment = primary(sandbox)[0]
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-key-auto', '-vvvv', *FAST_VERIFY, playbook=playbook(),
                       env={'SVPMS_NEW_STRIPE_API_KEY': NEW_KEY})
    assert run.rc == 0, run.output[-5000:]
    summary = run.summary()
    assert summary['outcome'] == 'recovered', summary
    mitigation = summary['mitigation']
    assert mitigation['action'] == 'stripe_key_update' and mitigation['status'] == 'applied', mitigation
    assert mitigation['after']['key'] == 'sk_test_…7777', mitigation
    assert secret_value(sandbox, C.STRIPE_KEY_SECRET_ID) == NEW_KEY
    assert secret_value(sandbox, C.STRIPE_KEY_SECRET_ID, 'AWSPREVIOUS') == C.STRIPE_API_KEY
    assert primary(sandbox)[0] != deployment, 'the service was redeployed to load the key'
    assert 'service key sk_test_…7777 valid' in summary['verification']['summary'], summary['verification']
    wait_until('payments to succeed again', lambda: (
        payments(sandbox)['api']['last_error'] is None and payments(sandbox)['api']['last_status'] == 200,
        payments(sandbox)['api']), timeout=20)
    assert_clean_output(run, sandbox)


def test_disabled_endpoint_waits_for_approval_then_is_enabled_and_replayed(sandbox, tmp_path):
    """incident_mode=approve (production's default): the run stops with the exact approval and changes nothing;
    re-run with it, the endpoint is enabled through the API and the missed events are replayed."""
    client = stripe(sandbox)
    we_id = sandbox.stripe_endpoint()['id']
    assert client.set_endpoint_disabled(we_id, True)['status'] == 'disabled'
    wait_for_undelivered(sandbox, count=2)
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-disabled', '-e', 'incident_mode=approve', playbook=playbook())
    assert run.rc != 0, run.output[-3000:]
    token = 'stripe_webhook_endpoint:svpms-api:%s' % we_id
    assert 'incident_approve=%s' % token in run.output
    summary = run.summary()
    assert summary['outcome'] == 'approval_required', summary
    assert summary['mitigation']['replay'] == {'ran': False}
    assert client.endpoint(we_id)['status'] == 'disabled', 'approve mode must not change anything'
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-disabled', '-e', 'incident_mode=approve',
                       '-e', 'incident_approve=%s' % token, *FAST_VERIFY[:4], playbook=playbook())
    assert run.rc == 0, run.output[-5000:]
    summary = run.summary()
    assert summary['outcome'] == 'recovered', summary
    assert summary['mitigation']['status'] == 'applied'
    assert summary['mitigation']['after'] == {'endpoint': we_id, 'status': 'enabled'}
    assert client.endpoint(we_id)['status'] == 'enabled'
    assert summary['mitigation']['replay']['acknowledged'] >= 2, summary['mitigation']['replay']
    wait_for_delivery(sandbox)
    assert_clean_output(run, sandbox)
