"""The sandbox's scenario-4 (Stripe payment webhook) faults, against the real stand-in and twin.

One sandbox on free loopback ports, shared by the tests in file order:
healthy payments are delivered and processed -> the twin rejects a missing,
wrong or stale signature -> the `stripe` library verifies what the stand-in
signs -> webhook_secret_mismatch, webhook_endpoint_down, stripe_key_revoked and
signature_check_disabled each show their symptom through HTTP (the stand-in's
API and /_sandbox/ extension, the twin's webhook route and /twin/state,
CloudWatch Logs) and `heal` restores the behaviour -> an event missed while our
endpoint was disabled is replayed by hand (fetched, signed with the right
secret, POSTed to the twin): accepted once, then reported as a duplicate.
"""
import datetime
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stripe
import yaml

from tests.helpers.servers import REPO
from tests.helpers.stripe import StripeClient, sign
from tests.helpers.waits import until

sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox import constants as C  # noqa: E402
from svpms_sandbox.procs import http, http_json, pid_alive, port_free  # noqa: E402

SANDBOX_PAYMENTS = True  # the box fixture (conftest.py) starts the Stripe stand-in and payments
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def payments(box):
    status, state = http_json(box.twin_url + '/twin/state?window=5', timeout=5)
    assert status == 200
    return state['payments']


def post_webhook(box, body, header=None):
    """POST body (bytes) to the twin's webhook route. -> (status, JSON)."""
    req = urllib.request.Request(box.twin_url + C.STRIPE_WEBHOOK_PATH, data=body, method='POST',
                                 headers=dict({'Content-Type': 'application/json'},
                                              **({'Stripe-Signature': header} if header else {})))
    try:
        with OPENER.open(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def secret_value(box, secret_id, stage='AWSCURRENT'):
    return box.boto('secretsmanager').get_secret_value(SecretId=secret_id, VersionStage=stage)['SecretString']


def right_secret(box):
    """The signing secret of our endpoint as the stand-in (Stripe) knows it."""
    return box.stripe_endpoint()['_secret']


def delivered_after(client, since):
    """Events created at or after `since` that every endpoint received."""
    return [e for e in client.events(delivery_success=True) if e['created'] >= since]


def undelivered_after(client, since):
    return [e for e in client.events(delivery_success=False) if e['created'] >= since]


def test_healthy_payments_are_delivered_and_processed(box):
    client = StripeClient(box.stripe_url)
    with open(box.connection_file) as fh:
        conn = yaml.safe_load(fh)
    assert {k: v for k, v in conn.items() if k.startswith('svpms_stripe_')} == {
        'svpms_stripe_api_url': box.stripe_url, 'svpms_stripe_api_key': C.STRIPE_OPERATOR_KEY,
        'svpms_stripe_key_secret_id': 'svpms/sandbox/api/stripe-api-key',
        'svpms_stripe_webhook_url': box.twin_url + '/webhooks/stripe',
        'svpms_stripe_webhook_secret_id': 'svpms/sandbox/api/stripe-webhook-secret', 'svpms_stripe_livemode': False,
        'svpms_stripe_status_url': ''}
    assert secret_value(box, C.STRIPE_KEY_SECRET_ID) == C.STRIPE_API_KEY != C.STRIPE_OPERATOR_KEY
    assert secret_value(box, C.STRIPE_WEBHOOK_SECRET_ID) == right_secret(box)
    assert right_secret(box).startswith('whsec_sandbox')
    [ours] = client.endpoints()
    assert (ours['url'], ours['status'], ours['enabled_events'], ours['object']) == (
        conn['svpms_stripe_webhook_url'], 'enabled', ['*'], 'webhook_endpoint') and 'secret' not in ours
    events = until(lambda: [e for e in client.events(delivery_success=True) if e['type'] == 'payment_intent.succeeded']
                   if len(client.events()) >= 3 else None, 20, what='3 payment events delivered')
    assert all(e['pending_webhooks'] == 0 for e in events) and not client.events(delivery_success=False)
    record = client.deliveries(events[0]['id'])
    assert record['delivery_success'] is True and [a['status'] for a in record['targets'][0]['attempts']] == [200]
    ids = {e['id'] for e in events}

    def processed_all():
        pay = payments(box)
        return pay if ids <= set(pay['last_event_ids']) else None

    pay = until(processed_all, 10, what='the twin to have processed the delivered events')
    assert pay['processed'] >= len(events) and pay['rejected_total'] == 0 and pay['signature_check'] is True
    assert pay['api']['succeeded'] >= 3 and pay['api']['failed'] == 0 and pay['api']['by_status'].get('200') >= 3
    assert pay['secrets']['api_key'] == 'sk_test_****0000' and C.STRIPE_API_KEY not in json.dumps(pay)
    st = box.status(window=5)
    assert st['running'] and st['processes']['stripe']['up'] and st['stripe']['events']['undelivered'] == 0


def test_healthy_twin_rejects_missing_wrong_and_stale_signatures(box):
    client = StripeClient(box.stripe_url)
    event = until(lambda: client.events(delivery_success=True)[-1:], 20, what='a delivered event')[0]
    body = json.dumps(event).encode('utf-8')
    before = payments(box)['rejected']
    now = int(time.time())
    assert post_webhook(box, body) == (400, {'error': 'missing_signature', 'message': 'no Stripe-Signature header'})
    status, answer = post_webhook(box, body, sign(body, 'whsec_sandbox_not_the_right_one', now))
    assert (status, answer['error']) == (400, 'invalid_signature')
    status, answer = post_webhook(box, body, sign(body, right_secret(box), now - C.STRIPE_SIGNATURE_TOLERANCE - 60))
    assert (status, answer['error']) == (400, 'timestamp_outside_tolerance')
    status, answer = post_webhook(box, body + b' ', sign(body, right_secret(box), now))  # body changed after signing
    assert (status, answer['error']) == (400, 'invalid_signature')
    # the right secret and a fresh timestamp: accepted, and known already (the stand-in delivered it)
    assert post_webhook(box, body, sign(body, right_secret(box), now)) == (200, {'received': True, 'duplicate': True})
    after = payments(box)['rejected']
    assert {k: after.get(k, 0) - before.get(k, 0) for k in after} == {
        'missing_signature': 1, 'invalid_signature': 2, 'timestamp_outside_tolerance': 1}


def test_the_stripe_library_verifies_what_the_stand_in_signs(box):
    client = StripeClient(box.stripe_url)
    got = []

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append((self.rfile.read(int(self.headers['Content-Length'])), self.headers['Stripe-Signature']))
            self.send_response(200)
            self.send_header('Content-Length', '0')
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = 'whsec_sandbox_test_capture'
    we_id = client.register_endpoint('http://127.0.0.1:%d/hook' % server.server_port, secret,
                                     events=['payment_intent.succeeded'])
    try:
        until(lambda: got, 10, what='a delivery to the capture endpoint')
    finally:
        client.delete_endpoint(we_id)
        server.shutdown()
        server.server_close()
    payload, header = got[0]
    event = stripe.Webhook.construct_event(payload, header, secret)  # tolerance 300 s, like the twin's
    assert event['id'].startswith('evt_') and event['type'] == 'payment_intent.succeeded'
    assert event['data']['object']['status'] == 'succeeded' and event['data']['object']['amount'] >= 500
    assert abs(int(header.split(',')[0][2:]) - time.time()) < 30  # t = the delivery time
    try:
        stripe.Webhook.construct_event(payload, header, 'whsec_sandbox_wrong')
        raise AssertionError('a wrong secret verified')
    except stripe.SignatureVerificationError:
        pass
    assert [e['id'] for e in client.endpoints()] == [box.stripe_endpoint()['id']]


def test_webhook_secret_mismatch_piles_up_undelivered_events(box):
    client = StripeClient(box.stripe_url)
    right = right_secret(box)
    rejected = payments(box)['rejected'].get('invalid_signature', 0)
    res = box.inject('webhook_secret_mismatch')
    assert res['kind'] == 'secret' and res['twin_wait_seconds'] is not None
    assert secret_value(box, C.STRIPE_WEBHOOK_SECRET_ID) != right
    assert secret_value(box, C.STRIPE_WEBHOOK_SECRET_ID).startswith('whsec_')
    assert secret_value(box, C.STRIPE_WEBHOOK_SECRET_ID, 'AWSPREVIOUS') == right
    assert payments(box)['secrets']['webhook_secret_version'] == res['new_version_id']
    since = int(time.time())
    piled = until(lambda: undelivered_after(client, since)[1:] and undelivered_after(client, since), 15,
                  what='2 undelivered events')
    assert all(e['pending_webhooks'] == 1 for e in piled)
    attempt = client.deliveries(piled[0]['id'])['targets'][0]['attempts'][0]
    assert attempt['status'] == 400 and 'invalid_signature' in attempt['response_body']
    assert payments(box)['rejected']['invalid_signature'] >= rejected + 2
    assert right not in json.dumps(payments(box)) and right not in json.dumps(box.status())
    healed = box.heal()
    assert any('Stripe webhook secret' in a for a in healed['actions']), healed
    assert secret_value(box, C.STRIPE_WEBHOOK_SECRET_ID) == right
    since = int(time.time()) + 1
    until(lambda: delivered_after(client, since), 10, what='an event delivered after heal')


def test_webhook_endpoint_down_answers_500_and_deliveries_fail(box):
    client = StripeClient(box.stripe_url)
    res = box.inject('webhook_endpoint_down')
    assert res['kind'] == 'deploy' and res['twin_switch_seconds'] is not None
    since = int(time.time())
    [failed] = until(lambda: undelivered_after(client, since)[:1], 10, what='an undelivered event')
    assert client.deliveries(failed['id'])['targets'][0]['attempts'][0]['status'] == 500
    body = json.dumps(failed).encode('utf-8')
    assert post_webhook(box, body, sign(body, right_secret(box), int(time.time())))[0] == 500
    assert payments(box)['webhook_status_override'] == 500
    assert 'task definition' in ' '.join(box.heal()['actions'])
    since = int(time.time()) + 1
    until(lambda: delivered_after(client, since), 10, what='an event delivered after heal')


def test_stripe_key_revoked_fails_payments_with_401(box):
    client = StripeClient(box.stripe_url)
    res = box.inject('stripe_key_revoked')
    assert res['kind'] == 'stripe' and res['key'] == 'sk_test_****0000' and C.STRIPE_API_KEY not in json.dumps(res)
    status, answer = client.api('GET', '/v1/balance')
    assert status == 401 and answer['error'] == {
        'type': 'invalid_request_error', 'code': 'api_key_expired',
        'message': 'Expired API Key provided: sk_test_****0000'}
    api = payments(box)['api']
    assert api['last_status'] == 401 and api['by_error']['api_key_expired'] >= 1
    lines = until(lambda: [e['message'] for e in box.boto('logs').filter_log_events(
        logGroupName=C.LOG_GROUP, filterPattern='"svpms.payments"')['events'] if 'api_key_expired' in e['message']],
        12, what='an svpms.payments log line')
    assert ' ERROR svpms.payments ' in lines[0] and ' status=401 error=api_key_expired ' in lines[0]
    assert C.STRIPE_API_KEY not in '\n'.join(lines)
    assert [k['masked'] for k in client.state()['revoked_keys']] == ['sk_test_****0000']
    healed = box.heal()
    assert any('no longer revoked' in a for a in healed['actions']), healed
    assert client.api('GET', '/v1/balance')[0] == 200
    healed_at = time.time()

    def paid_after_heal():
        api = payments(box)['api']
        return api['last_status'] == 200 and api['last_error'] is None and api['last_at'] and \
            datetime.datetime.fromisoformat(api['last_at']).timestamp() > healed_at

    until(paid_after_heal, 10, what='a successful payment after heal')


def test_signature_check_disabled_accepts_forged_events(box):
    forged = json.dumps({'id': 'evt_forged_%d' % time.time(), 'object': 'event', 'type': 'payment_intent.succeeded',
                         'data': {'object': {'id': 'pi_forged', 'amount': 1}}}).encode('utf-8')
    res = box.inject('signature_check_disabled')
    assert res['kind'] == 'deploy'
    assert post_webhook(box, forged) == (200, {'received': True})
    assert post_webhook(box, forged, 't=1,v1=00')[0] == 200
    pay = payments(box)
    assert pay['signature_check'] is False and pay['unverified_accepted'] >= 2
    box.heal()
    assert post_webhook(box, forged)[1]['error'] == 'missing_signature'
    assert payments(box)['signature_check'] is True


def test_replaying_an_event_missed_while_disabled_is_idempotent(box):
    client = StripeClient(box.stripe_url)
    we_id = box.stripe_endpoint()['id']
    assert client.set_endpoint_disabled(we_id, True)['status'] == 'disabled'
    try:
        since = int(time.time())
        [missed] = until(lambda: undelivered_after(client, since)[:1], 10, what='an event while disabled')
    finally:
        assert client.set_endpoint_disabled(we_id, False)['status'] == 'enabled'
    record = client.deliveries(missed['id'])
    assert record['pending_webhooks'] == 1 and record['targets'][0]['status'] == 'skipped'
    assert record['targets'][0]['attempts'] == []  # a disabled endpoint receives nothing
    assert not payments(box)['last_event_ids'] or missed['id'] not in payments(box)['last_event_ids']
    # the documented recovery: fetch the event, deliver it to our endpoint signed with the endpoint secret
    body = json.dumps(client.event(missed['id'])).encode('utf-8')
    secret = secret_value(box, C.STRIPE_WEBHOOK_SECRET_ID)
    assert post_webhook(box, body, sign(body, secret, int(time.time()))) == (200, {'received': True})
    assert post_webhook(box, body, sign(body, secret, int(time.time()))) == (200, {'received': True, 'duplicate': True})
    assert missed['id'] in payments(box)['last_event_ids']
    # still undelivered for Stripe until acknowledged (or redelivered)
    assert missed['id'] in [e['id'] for e in client.events(delivery_success=False)]
    assert client.acknowledge(missed['id'])['delivery_success'] is True
    assert client.event(missed['id'])['pending_webhooks'] == 0


def test_nothing_to_heal_then_stop_stops_the_stand_in(box):
    assert box.heal()['changed'] is False
    pid, port = box.stripe_pid(), box.stripe_port
    assert http('GET', box.stripe_url + '/_sandbox/health')[0] == 200
    res = box.stop()
    assert res['stripe'] == (pid, 'stopped') and not pid_alive(pid) and port_free(port)
    assert not box.stripe_running()
