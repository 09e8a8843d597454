"""Scenario 4 (Stripe webhook failures) end to end: the faults the runbook
mitigates itself, on a private local sandbox with payments (the Stripe
stand-in delivering the twin's payment events to its /webhooks/stripe).

One sandbox, the tests run in file order: healthy (no incident) -> the
webhook route broken by a deployment (500): --check rolls back nothing and
replays nothing; auto rolls back, replays what Stripe gave up on, and
verifies with a fresh signed event and a drained queue, at -vvvv without a
key or signing secret in the output -> the signing secret changed out of band
(Stripe's deliveries fail, our own signature is accepted): auto puts the
previous secret back, redeploys and replays. State is read back from the
stand-in, moto and the twin.
"""
import pytest

from tests.e2e.conftest import run_playbook
from tests.e2e.payments import (C, FAST_VERIFY, assert_clean_output, payments, playbook, primary, replay_state, secret_value,
                                secret_versions, undelivered, wait_for_delivery, wait_for_undelivered)

pytestmark = pytest.mark.e2e
SANDBOX_PAYMENTS = True  # the sandbox fixture (conftest.py) starts the Stripe stand-in and payment traffic


def test_healthy_payments_have_no_symptom(sandbox, tmp_path):
    wait_for_delivery(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-healthy', playbook=playbook())
    assert run.rc == 0, run.output
    assert 'Symptom absent' in run.output
    summary = run.summary()
    assert summary['outcome'] == 'no_incident', summary
    assert_clean_output(run, sandbox)


def test_endpoint_down_check_mode_rolls_back_and_replays_nothing(sandbox, tmp_path):
    sandbox.inject('webhook_endpoint_down')
    wait_for_undelivered(sandbox, count=3)
    before = primary(sandbox)
    processed = payments(sandbox)['processed']
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-down-check', '--check', playbook=playbook())
    assert run.rc == 0, run.output[-4000:]
    summary = run.summary()
    assert summary['outcome'] == 'would_mitigate', summary
    assert summary['decision']['action'] == 'ecs_rollback', summary['decision']
    findings = {f['check']: f for f in summary['findings']}
    assert findings['our webhook endpoint and signature validation']['status'] == 'problem'
    assert findings['webhook endpoint at Stripe']['status'] == 'problem'
    mitigation = summary['mitigation']
    assert mitigation['status'] == 'would_apply'
    assert mitigation['replay']['ran'] and mitigation['replay']['check_mode'], mitigation
    assert primary(sandbox) == before, '--check must not roll back'
    assert payments(sandbox)['processed'] == processed, '--check must not deliver anything'
    assert replay_state(run, sandbox) is None, '--check must not write the replay state'
    assert_clean_output(run, sandbox)


def test_endpoint_down_auto_rolls_back_replays_and_verifies(sandbox, tmp_path):
    before = primary(sandbox)
    missed = {e['id'] for e in undelivered(sandbox)}
    assert missed
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-down-auto', '-vvvv', *FAST_VERIFY, playbook=playbook())
    assert run.rc == 0, run.output[-5000:]
    summary = run.summary()
    assert summary['outcome'] == 'recovered', summary
    mitigation = summary['mitigation']
    assert mitigation['action'] == 'ecs_rollback' and mitigation['status'] == 'applied', mitigation
    assert primary(sandbox)[1] != before[1], 'the service runs another revision'
    assert not sandbox.status(window=1)['service']['bad_revision']
    assert mitigation['replay']['acknowledged'] >= 1, mitigation['replay']
    verification = summary['verification']
    assert verification['status'] == 'passed', verification
    assert 'signed event accepted' in verification['summary'] and 'queue drained' in verification['summary']
    # every event Stripe had not delivered is now either delivered by Stripe (its retries after the
    # rollback) or acknowledged by the twin through the replay (recorded in the incident's state file)
    acknowledged = set().union(*[set(entries) for entries in replay_state(run, sandbox).values()])
    still_undelivered = {e['id'] for e in undelivered(sandbox)}
    assert (missed & still_undelivered) <= acknowledged, (missed & still_undelivered) - acknowledged
    assert_clean_output(run, sandbox)


def test_secret_mismatch_auto_restores_the_secret_redeploys_and_replays(sandbox, tmp_path):
    right = sandbox.stripe_endpoint()['_secret']
    res = sandbox.inject('webhook_secret_mismatch')
    assert secret_value(sandbox, C.STRIPE_WEBHOOK_SECRET_ID) != right
    wait_for_undelivered(sandbox, count=2)
    deployment = primary(sandbox)[0]
    run = run_playbook(sandbox, tmp_path, 'e2e-pay-secret-auto', *FAST_VERIFY, playbook=playbook())
    assert run.rc == 0, run.output[-5000:]
    summary = run.summary()
    assert summary['outcome'] == 'recovered', summary
    assert summary['decision']['action'] == 'secret_restore', summary['decision']
    mitigation = summary['mitigation']
    assert mitigation['status'] == 'applied', mitigation
    assert mitigation['before']['current_version'] == res['new_version_id']
    assert mitigation['after']['current_version'] == res['right_version_id']
    assert secret_value(sandbox, C.STRIPE_WEBHOOK_SECRET_ID) == right
    versions = secret_versions(sandbox, C.STRIPE_WEBHOOK_SECRET_ID)
    assert versions[res['new_version_id']] == ['AWSPREVIOUS'], versions
    assert primary(sandbox)[0] != deployment, 'the service was redeployed'
    assert payments(sandbox)['secrets']['webhook_secret_version'] == res['right_version_id']
    assert mitigation['replay']['acknowledged'] >= 1 and summary['verification']['status'] == 'passed'
    wait_for_delivery(sandbox)  # Stripe's own deliveries work again
    assert_clean_output(run, sandbox)
    # the post-incident report names the payments symptom, not an error rate; no secret in it
    post = run_playbook(sandbox, tmp_path, 'e2e-pay-secret-auto', playbook=playbook('post_incident.yml'))
    assert post.rc == 0, post.output[-3000:]
    report = post.report()
    assert 'Stripe webhook events not delivered (and not replayed) &gt;= 1' in report, report[:3000]
    assert 'secret_restore' in report
    assert_clean_output(post, sandbox)
