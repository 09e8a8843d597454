"""The service twin's payments side (scenario 4): Stripe webhooks in, PaymentIntents out.

- ``POST /webhooks/stripe`` (OUR webhook endpoint): verifies ``Stripe-Signature``
  as Stripe documents it (``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``
  with the endpoint secret, constant-time compare, tolerance 300 s, the
  signature checked before the timestamp like Stripe's libraries) with the
  secret a task loads from Secrets Manager (``svpms/sandbox/api/stripe-webhook-secret``,
  AWSCURRENT) when it starts: twin start, a new PRIMARY deployment id or a new
  task definition (like the JWT signing key). Answers 400 ``{"error":
  "missing_signature" | "invalid_signature" | "timestamp_outside_tolerance" |
  "invalid_payload"}``; a valid event is processed once: 200 ``{"received":
  true}``, a repeat 200 ``{"received": true, "duplicate": true}``.
- A payments thread creates and confirms a PaymentIntent (``pm_card_visa``)
  at the Stripe stand-in every ~2 s with the API key the task loaded from
  ``svpms/sandbox/api/stripe-api-key``; each emits ``payment_intent.succeeded``,
  which the stand-in delivers back to the webhook. Failures are counted and
  logged (awslogs, logger ``svpms.payments``).
- Deploy-fault knobs (constants.FAULTS): ``webhook_status`` (500: the route
  fails before verifying) and ``webhook_verify`` (False: anything is accepted,
  even unsigned).

Counters go to /twin/state under "payments". Secrets are never logged or
exposed: the state shows secret version ids and the key as sk_test_****XXXX.
"""

import collections
import datetime
import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from . import constants as C

log = logging.getLogger('svpms_sandbox.twin')

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
PROCESSED_MAX = 50000   # event ids remembered for idempotency


class SignatureError(Exception):
    """code: missing_signature | invalid_signature | timestamp_outside_tolerance."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def sign(payload, secret, timestamp):
    """The Stripe-Signature header value for payload (bytes): 't=<ts>,v1=<hex HMAC-SHA256>'."""
    signed = str(int(timestamp)).encode('ascii') + b'.' + payload
    return 't=%d,v1=%s' % (int(timestamp), hmac.new(secret.encode('utf-8'), signed, hashlib.sha256).hexdigest())


def verify(payload, header, secret, tolerance=C.STRIPE_SIGNATURE_TOLERANCE, now=None):
    """Check a Stripe-Signature header against payload (bytes) and secret; raises SignatureError."""
    if not header or not header.strip():
        raise SignatureError('missing_signature', 'no Stripe-Signature header')
    timestamp, candidates = None, []
    for item in header.split(','):
        key, sep, value = item.strip().partition('=')
        if not sep:
            continue
        if key == 't':
            try:
                timestamp = int(value)
            except ValueError:
                timestamp = None
        elif key == 'v1':
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError('invalid_signature', 'unable to extract a timestamp and v1 signatures from the header')
    expected = sign(payload, secret, timestamp).split('v1=', 1)[1]
    if not any(hmac.compare_digest(expected.encode('ascii'), c.encode('ascii', 'replace')) for c in candidates):
        raise SignatureError('invalid_signature', 'no v1 signature matches the payload and the endpoint secret')
    now = time.time() if now is None else now
    if tolerance and timestamp < now - tolerance:
        raise SignatureError('timestamp_outside_tolerance', 'the signature timestamp %d is more than %d s old'
                             % (timestamp, tolerance))
    return timestamp


def new_webhook_secret():
    """A fresh endpoint signing secret: 'whsec_sandbox' + 32 hex characters."""
    return 'whsec_sandbox' + secrets.token_hex(16)


def mask_key(key):
    """'sk_test_abc...wxyz' -> 'sk_test_****wxyz' (Stripe's way of naming a key in an error)."""
    key = key or ''
    parts = key.split('_')
    return '%s****%s' % ('_'.join(parts[:2]) + '_' if len(parts) > 2 else '', key[-4:])


class Payments:
    """Owned by the Twin: twin.payments. Thread-safe (its own lock)."""

    def __init__(self, twin, result, stripe_port=None):
        self.twin = twin
        self.result = result              # twin.AuthResult(status, body, error, message, ...)
        self.api_url = 'http://%s:%d' % (C.HOST, stripe_port) if stripe_port else None
        self.lock = threading.Lock()
        # loaded at deployment start (never exposed): the endpoint secret and the API key
        self._webhook_secret = None
        self._api_key = None
        self.webhook_secret_version = None
        self.api_key_version = None
        self.loaded_for = None            # (PRIMARY deployment id, task definition)
        self.loaded_at = None
        self.load_error = None
        self.processed = collections.OrderedDict()   # event id -> processed at
        self.webhooks = collections.Counter()
        self.rejected = collections.Counter()
        self.last_event_ids = collections.deque(maxlen=C.PAYMENTS_RECENT)
        self.last_rejected = collections.deque(maxlen=C.PAYMENTS_RECENT)
        self.webhook_at = {'processed': None, 'rejected': None}
        self.api = collections.Counter()
        self.api_by_status = collections.Counter()
        self.api_by_error = collections.Counter()
        self.api_last = {'status': None, 'error': None, 'message': None, 'at': None,
                         'success_at': None, 'failure_at': None, 'payment_intent': None}
        self._failing = False

    # ------------------------------------------------------------ deployment
    def maybe_load(self, deployment_id, task_definition):
        if not self.api_url:  # a sandbox without payments: no Stripe secrets to load
            return
        if (deployment_id, task_definition) != self.loaded_for or self._webhook_secret is None:
            self.load(deployment_id, task_definition)

    def load(self, deployment_id, task_definition):
        """What a task of a new deployment does at start: read both secrets' AWSCURRENT. On a read failure
        the old values stay and the next poll tries again."""
        sm = self.twin._sm
        try:
            # by stage: moto's default version does not follow update_secret_version_stage
            hook = sm.get_secret_value(SecretId=C.STRIPE_WEBHOOK_SECRET_ID, VersionStage='AWSCURRENT')
            key = sm.get_secret_value(SecretId=C.STRIPE_KEY_SECRET_ID, VersionStage='AWSCURRENT')
        except Exception as exc:
            error = 'cannot read the Stripe secrets (%s, %s): %s: %s' % (
                C.STRIPE_WEBHOOK_SECRET_ID, C.STRIPE_KEY_SECRET_ID, type(exc).__name__,
                ' '.join(str(exc).split())[:300])
            with self.lock:
                was, self.load_error = self.load_error, error
            if was != error:
                log.warning('%s; %s', error, 'keeping the ones loaded before' if self._webhook_secret
                            else 'webhooks answer 500 and no payments are made until they can be read')
            return
        with self.lock:
            changed = (hook['VersionId'], key['VersionId']) != (self.webhook_secret_version, self.api_key_version)
            self._webhook_secret = (hook.get('SecretString') or '').strip()
            self._api_key = (key.get('SecretString') or '').strip()
            self.webhook_secret_version, self.api_key_version = hook['VersionId'], key['VersionId']
            self.loaded_for = (deployment_id, task_definition)
            self.loaded_at = time.time()
            self.load_error = None
        log.info('deployment %s (%s): Stripe webhook secret version %s, API key %s (version %s)%s',
                 deployment_id, task_definition, hook['VersionId'], mask_key(self._api_key), key['VersionId'],
                 '' if changed else ' (unchanged)')

    # ------------------------------------------------------------ webhooks
    def webhook(self, req):
        """POST /webhooks/stripe. -> twin.AuthResult-like tuple (status, body, error, message)."""
        result = self.result
        beh = self.twin.behaviour()
        with self.lock:
            self.webhooks['received'] += 1
            secret = self._webhook_secret
        if beh.get('webhook_status'):
            return result(int(beh['webhook_status']), {'error': 'internal_error', 'message': 'Internal Server Error'},
                          'internal_error', 'Unhandled exception in stripe_webhook: KeyError: \'data\'')
        if req.body is None:
            return self._reject('invalid_payload', 'the body must be a JSON event of at most %d bytes'
                                % C.MAX_WEBHOOK_BODY)
        verify_on = beh.get('webhook_verify', True)
        if verify_on:
            if not secret:
                return result(500, {'error': 'webhook_secret_unavailable',
                                    'message': 'no webhook signing secret loaded'},
                              'webhook_secret_unavailable', self.load_error or 'not loaded yet')
            try:
                verify(req.body, req.headers.get('Stripe-Signature'), secret)
            except SignatureError as exc:
                return self._reject(exc.code, exc.message)
        try:
            event = json.loads(req.body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            event = None
        evt_id = event.get('id') if isinstance(event, dict) else None
        if not isinstance(evt_id, str) or not evt_id:
            if not verify_on:  # accepts anything: the fault
                with self.lock:
                    self.webhooks['unverified_accepted'] += 1
                return result(200, {'received': True})
            return self._reject('invalid_payload', 'the body is not a JSON event with an id')
        now = time.time()
        with self.lock:
            if not verify_on:
                self.webhooks['unverified_accepted'] += 1
            if evt_id in self.processed:
                self.webhooks['duplicates'] += 1
                return result(200, {'received': True, 'duplicate': True})
            self.processed[evt_id] = now
            while len(self.processed) > PROCESSED_MAX:
                self.processed.popitem(last=False)
            self.webhooks['processed'] += 1
            self.webhooks['type_%s' % event.get('type')] += 1
            self.last_event_ids.append(evt_id)
            self.webhook_at['processed'] = now
        return result(200, {'received': True})

    def _reject(self, code, message):
        with self.lock:
            self.rejected[code] += 1
            self.last_rejected.append(code)
            self.webhook_at['rejected'] = time.time()
        return self.result(400, {'error': code, 'message': message}, code, message)

    def is_processed(self, evt_id):
        with self.lock:
            return evt_id in self.processed

    # ------------------------------------------------------------ payments traffic
    def _call(self, method, path, data):
        """-> (status or None, parsed JSON or None, error text or None)."""
        body = urllib.parse.urlencode(data).encode('ascii') if data is not None else None
        req = urllib.request.Request(self.api_url + path, data=body, method=method, headers={
            'Authorization': 'Bearer %s' % self._api_key,
            'Content-Type': 'application/x-www-form-urlencoded',
            'Stripe-Version': C.STRIPE_API_VERSION,
            'Idempotency-Key': str(uuid.uuid4())})
        try:
            with _OPENER.open(req, timeout=C.PAYMENTS_TIMEOUT) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except Exception as exc:  # unreachable, timeout
            return None, None, '%s: %s' % (type(exc).__name__, exc)
        try:
            return status, json.loads(raw.decode('utf-8')), None
        except ValueError:
            return status, None, None

    def pay_once(self):
        """Create and confirm one PaymentIntent. -> (ok, status, error code)."""
        if not self.api_url:
            return None
        with self.lock:
            has_key = bool(self._api_key)
        if not has_key:
            return None
        started = time.monotonic()
        amount = random.randint(500, 25000)
        order = 'ord_%s' % uuid.uuid4().hex[:12]
        status, body, error = self._call('POST', '/v1/payment_intents', {
            'amount': amount, 'currency': 'usd', 'payment_method': 'pm_card_visa', 'confirm': 'true',
            'metadata[order_id]': order})
        ms = (time.monotonic() - started) * 1000.0
        err = (body or {}).get('error') if isinstance(body, dict) else None
        code = None
        if status is None:
            code, message = 'unreachable', error
        elif status >= 400 or not isinstance(body, dict):
            code = (err or {}).get('code') or (err or {}).get('type') or 'http_%d' % status
            message = (err or {}).get('message') or 'HTTP %d' % status
        elif body.get('status') != 'succeeded':
            code, message = 'payment_%s' % body.get('status'), 'PaymentIntent %s is %s' % (
                body.get('id'), body.get('status'))
        else:
            message = None
        now = time.time()
        with self.lock:
            self.api['attempts'] += 1
            self.api_by_status[str(status) if status is not None else 'unreachable'] += 1
            self.api_last.update(status=status, error=code, message=message, at=now)
            if code is None:
                self.api['succeeded'] += 1
                self.api_last.update(success_at=now, payment_intent=body.get('id'))
            else:
                self.api['failed'] += 1
                self.api_by_error[code] += 1
                self.api_last['failure_at'] = now
        if code is not None:
            line = ('%s ERROR svpms.payments request_id=%s method=POST path=/v1/payment_intents status=%s error=%s '
                    'duration_ms=%d stripe call failed: %s' % (
                        _iso_z(now), uuid.uuid4().hex, status if status is not None else 0, code, ms,
                        ' '.join(str(message).split())[:300]))
            self.twin.queue_log(now, line)
            if not self._failing:
                log.error('payments: POST /v1/payment_intents -> %s %s: %s', status, code, message)
            self._failing = True
        elif self._failing:
            log.info('payments: POST /v1/payment_intents succeeds again')
            self._failing = False
        return code is None, status, code

    def run(self):
        """The payments thread: one PaymentIntent every PAYMENTS_INTERVAL seconds."""
        stop = self.twin.stop_event
        while not stop.wait(C.PAYMENTS_INTERVAL):
            try:
                self.pay_once()
            except Exception as exc:  # a bug must not stop the thread
                log.exception('payments: %s', exc)

    # ------------------------------------------------------------ state
    def state(self):
        beh = self.twin.behaviour()
        with self.lock:
            loaded = self.loaded_for or (None, None)
            webhooks = {k: v for k, v in self.webhooks.items() if not k.startswith('type_')}
            return {
                'stripe_api_url': self.api_url,
                'webhook_path': C.STRIPE_WEBHOOK_PATH,
                'signature_check': bool(beh.get('webhook_verify', True)),
                'webhook_status_override': beh.get('webhook_status'),
                'secrets': {
                    'webhook_secret_id': C.STRIPE_WEBHOOK_SECRET_ID,
                    'webhook_secret_version': self.webhook_secret_version,
                    'api_key_secret_id': C.STRIPE_KEY_SECRET_ID,
                    'api_key_version': self.api_key_version,
                    'api_key': mask_key(self._api_key) if self._api_key else None,
                    'deployment_id': loaded[0], 'task_definition': loaded[1],
                    'loaded_at': _iso(self.loaded_at), 'error': self.load_error,
                },
                'received': webhooks.get('received', 0),
                'processed': webhooks.get('processed', 0),
                'duplicates': webhooks.get('duplicates', 0),
                'unverified_accepted': webhooks.get('unverified_accepted', 0),
                'rejected': dict(self.rejected),
                'rejected_total': sum(self.rejected.values()),
                'by_type': {k[5:]: v for k, v in self.webhooks.items() if k.startswith('type_')},
                'last_event_ids': list(self.last_event_ids),
                'last_rejections': list(self.last_rejected),
                'last_processed_at': _iso(self.webhook_at['processed']),
                'last_rejected_at': _iso(self.webhook_at['rejected']),
                'api': {
                    'attempts': self.api['attempts'], 'succeeded': self.api['succeeded'],
                    'failed': self.api['failed'], 'by_status': dict(self.api_by_status),
                    'by_error': dict(self.api_by_error), 'last_status': self.api_last['status'],
                    'last_error': self.api_last['error'], 'last_message': self.api_last['message'],
                    'last_at': _iso(self.api_last['at']), 'last_success_at': _iso(self.api_last['success_at']),
                    'last_failure_at': _iso(self.api_last['failure_at']),
                    'last_payment_intent': self.api_last['payment_intent'],
                    'interval_seconds': C.PAYMENTS_INTERVAL,
                },
            }


def _iso(ts):
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec='milliseconds')


def _iso_z(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'
