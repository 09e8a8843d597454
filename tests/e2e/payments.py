"""Helpers of the scenario 4 (Stripe webhook failures) end-to-end tests: the
Stripe stand-in's events, the twin's payments state, the Stripe secrets in
moto, and every secret that must never be printed.
"""
import json
import os
import sys
import time

from tests.e2e import latency
from tests.e2e.latency import connection, wait_until
from tests.helpers.servers import REPO
from tests.helpers.stripe import StripeClient

sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox import constants as C  # noqa: E402
from svpms_sandbox.procs import http_json  # noqa: E402

FAST_VERIFY = ('-e', 'verify_recovery_watch_seconds=10', '-e', 'verify_recovery_interval_seconds=5',
               '-e', 'incident_mode=auto')
# A new key for the service (test mode, as the sandbox's): a placeholder the stand-in accepts.
NEW_KEY = 'sk_test_sandbox_rotated_%s' % ('7' * 24)


def playbook(name='scenario_payment_failure.yml'):
    return '%s/playbooks/%s' % (REPO, name)


def payments(box):
    status, state = http_json(box.twin_url + '/twin/state?window=5', timeout=5)
    assert status == 200
    return state['payments']


class OperatorClient(StripeClient):
    """Reads the stand-in with the operator's key (the service's key may be revoked)."""

    def api(self, method, path, data=None, key=C.STRIPE_OPERATOR_KEY, params=None, timeout=10):
        return super().api(method, path, data=data, key=key, params=params, timeout=timeout)


def stripe(box):
    return OperatorClient(box.stripe_url)


def undelivered(box):
    return stripe(box).events(delivery_success=False)


def wait_for_undelivered(box, count=2, timeout=30):
    """Until the stand-in holds `count` events it could not deliver (payments every 2 s)."""
    return wait_until('%d undelivered Stripe events' % count,
                      lambda: (len(undelivered(box)) >= count, len(undelivered(box))), timeout=timeout, interval=1)


def wait_for_delivery(box, timeout=30):
    """Until an event created from now on is delivered to the twin."""
    since = int(time.time()) + 1
    return wait_until('an event delivered', lambda: (
        any(e['created'] >= since for e in stripe(box).events(delivery_success=True)), None),
        timeout=timeout, interval=1)


def secret_versions(box, secret_id):
    """{version_id: sorted stages} of a secret (no values)."""
    versions = box.boto('secretsmanager').list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)
    return {v['VersionId']: sorted(v.get('VersionStages', [])) for v in versions['Versions']}


def secret_value(box, secret_id, stage='AWSCURRENT'):
    return box.boto('secretsmanager').get_secret_value(SecretId=secret_id, VersionStage=stage)['SecretString']


def all_secret_values(box):
    """Every value of both Stripe secrets, the operator's key and the stand-in's endpoint secret."""
    sm = box.boto('secretsmanager')
    values = {C.STRIPE_OPERATOR_KEY, C.STRIPE_API_KEY, NEW_KEY}
    for secret_id in (C.STRIPE_WEBHOOK_SECRET_ID, C.STRIPE_KEY_SECRET_ID):
        for version_id in secret_versions(box, secret_id):
            values.add(sm.get_secret_value(SecretId=secret_id, VersionId=version_id)['SecretString'])
    endpoint = box.stripe_endpoint()
    if endpoint:
        values.add(endpoint['_secret'])
    return values


def replay_state(run, box):
    """{url: {event id: entry}} of the replay state the runbook keeps per service next to the incidents."""
    path = os.path.join(os.path.dirname(run.incident_dir), 'stripe-replay-%s.json' % connection(box)['svpms_ecs_service'])
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)['endpoints']


def primary(box):
    svc = box.service()
    return [d['id'] for d in svc['deployments'] if d['status'] == 'PRIMARY'], svc['taskDefinition']


def assert_clean_output(run, box, extra=()):
    """No traceback; no key and no signing secret (any version) in the output or the record."""
    secrets = tuple(sorted(all_secret_values(box))) + tuple(extra) + ('sandbox-secret-key',)
    latency.assert_clean_output(run, secrets=secrets)
