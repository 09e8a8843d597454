"""The sandbox's Stripe stand-in for tests, without a whole sandbox.

``start_stripe(tmp_dir)`` starts ``python -m svpms_sandbox --state-dir
<tmp_dir> --stripe-port <free port> stripe`` as its own process: localstripe's
API on 127.0.0.1 plus the sandbox extensions (``/v1/webhook_endpoints``,
signed delivery with retries, ``pending_webhooks``, ``GET
/v1/events?delivery_success=false``, revoked keys answering 401
``api_key_expired``; see ``sandbox/svpms_sandbox/stripe_server.py``). It
waits (at most 15 s) for ``GET /_sandbox/health`` and returns a
``StripeServer``; ``stop()`` ends it by its PID (SIGTERM, then SIGKILL)::

    from tests.helpers.stripe import API_KEY, start_stripe, sign

    srv = start_stripe(str(tmp_path))            # srv.url, srv.port, srv.pid, srv.state_dir
    try:
        we_id = srv.register_endpoint('http://127.0.0.1:%d/hook' % port, 'whsec_test123', events=None)
        status, pi = srv.api('POST', '/v1/payment_intents', {'amount': 1000, 'currency': 'usd',
                             'payment_method': 'pm_card_visa', 'confirm': 'true'})   # emits an event
        undelivered = srv.events(delivery_success=False)         # [event, ...] oldest first
        srv.deliveries(undelivered[0]['id'])                     # every attempt (status, error, at)
        srv.set_endpoint_disabled(we_id, True)                   # status -> disabled
        srv.revoke_key(API_KEY)                                  # now 401 api_key_expired
        srv.unrevoke_key(API_KEY)
    finally:
        srv.stop()

Or as a context manager: ``with start_stripe(str(tmp_path)) as srv: ...``.
``StripeClient(url)`` has the same calls (everything but ``stop``) for a
stand-in started elsewhere, e.g. a whole sandbox's ``StripeClient(box.stripe_url)``;
also ``endpoints()``, ``delete_endpoint(id)``, ``event(id)``, ``retry(id)``
(redeliver now), ``acknowledge(id)`` (count as delivered) and ``state()``.
Every call has a timeout. ``API_KEY`` is the sandbox placeholder key (not a
secret; localstripe accepts any ``sk_`` key). ``sign(payload, secret, t)``
makes a ``Stripe-Signature`` value like the stand-in's deliveries. Delivery:
each event is POSTed to every enabled endpoint whose ``enabled_events`` match,
~0.2 s after it was created, retried after ~5 s and ~20 s on a non-2xx or a
timeout (5 s), then given up (``delivery_success`` false).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from .servers import REPO, free_port

sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox import constants as _C  # noqa: E402
from svpms_sandbox.stripe_server import new_webhook_secret, sign  # noqa: E402,F401  (re-exported)

__all__ = ['API_KEY', 'StripeClient', 'StripeServer', 'new_webhook_secret', 'sign', 'start_stripe']

API_KEY = _C.STRIPE_API_KEY
START_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def _request(method, url, data=None, headers=None, json_body=None, timeout=HTTP_TIMEOUT):
    """-> (status, parsed JSON or text). HTTP errors are returned, not raised."""
    headers = dict(headers or {})
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode('utf-8')
        headers['Content-Type'] = 'application/json'
    elif data is not None:
        body = urllib.parse.urlencode(_flatten(data), doseq=True).encode('ascii')
        headers['Content-Type'] = 'application/x-www-form-urlencoded'
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    text = raw.decode('utf-8', 'replace')
    try:
        return status, json.loads(text) if text.strip() else None
    except ValueError:
        return status, text


def _flatten(data, prefix=None):
    """Stripe's form encoding: {'a': {'b': 1}, 'l': ['x']} -> [('a[b]', 1), ('l[0]', 'x')]."""
    out = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for k, v in items:
        name = str(k) if prefix is None else '%s[%s]' % (prefix, k)
        if isinstance(v, (dict, list, tuple)):
            out.extend(_flatten(v, name))
        elif isinstance(v, bool):
            out.append((name, 'true' if v else 'false'))
        elif v is not None:
            out.append((name, v))
    return out


class StripeClient:
    """Calls to a running stand-in at ``url`` (e.g. a whole sandbox's: ``StripeClient(box.stripe_url)``)."""

    def __init__(self, url):
        self.url = url.rstrip('/')

    def __repr__(self):
        return '<StripeClient %s>' % self.url

    # ---------------------------------------------------------------- the API
    def api(self, method, path, data=None, key=API_KEY, params=None, timeout=HTTP_TIMEOUT):
        """A Stripe API call (form-encoded like Stripe's libraries). -> (status, JSON)."""
        url = self.url + path + ('?' + urllib.parse.urlencode(_flatten(params), doseq=True) if params else '')
        headers = {'Authorization': 'Bearer %s' % key} if key else {}
        return _request(method, url, data=data if method != 'GET' else None, headers=headers, timeout=timeout)

    def sandbox(self, method, path, json_body=None, timeout=HTTP_TIMEOUT):
        """A sandbox-only /_sandbox/ call (no API key). -> (status, JSON)."""
        return _request(method, self.url + '/_sandbox/' + path.lstrip('/'), json_body=json_body, timeout=timeout)

    @staticmethod
    def _ok(res, what):
        status, body = res
        if status != 200:
            raise AssertionError('%s: HTTP %s %s' % (what, status, body))
        return body

    def register_endpoint(self, url, secret=None, events=None):
        """Register a webhook endpoint (POST /v1/webhook_endpoints; ``secret`` is the sandbox-only
        parameter, generated when None). events: list of types, None = ['*']. -> 'we_...'."""
        data = {'url': url, 'enabled_events': list(events or ['*'])}
        if secret is not None:
            data['secret'] = secret
        return self._ok(self.api('POST', '/v1/webhook_endpoints', data), 'register_endpoint')['id']

    def endpoint(self, we_id):
        return self._ok(self.api('GET', '/v1/webhook_endpoints/%s' % we_id), 'endpoint')

    def endpoints(self):
        return self._ok(self.api('GET', '/v1/webhook_endpoints', params={'limit': 100}), 'endpoints')['data']

    def delete_endpoint(self, we_id):
        return self._ok(self.api('DELETE', '/v1/webhook_endpoints/%s' % we_id), 'delete_endpoint')

    def set_endpoint_disabled(self, we_id, disabled=True):
        return self._ok(self.api('POST', '/v1/webhook_endpoints/%s' % we_id, {'disabled': bool(disabled)}),
                        'set_endpoint_disabled')

    def revoke_key(self, key):
        """From now on the key gets 401 api_key_expired (kept in the state dir as SHA-256 + last 4)."""
        return self._ok(self.sandbox('POST', 'revoked_keys', {'key': key}), 'revoke_key')

    def unrevoke_key(self, key=None):
        """Take the key (None: every key) off the revoked list."""
        return self._ok(self.sandbox('DELETE', 'revoked_keys', {'key': key} if key else {}), 'unrevoke_key')

    def event(self, event_id):
        return self._ok(self.api('GET', '/v1/events/%s' % event_id), 'event')

    def events(self, delivery_success=None, type=None, limit=100):  # pylint: disable=redefined-builtin
        """All events (oldest first, paged with starting_after), optionally filtered."""
        params = {'limit': limit}
        if delivery_success is not None:
            params['delivery_success'] = bool(delivery_success)
        if type:
            params['type'] = type
        out = []
        for _page in range(1000):  # bounded paging
            page = self._ok(self.api('GET', '/v1/events', params=params), 'events')
            out.extend(page['data'])
            if not page['has_more'] or not page['data']:
                return out
            params['starting_after'] = page['data'][-1]['id']
        return out

    def deliveries(self, event_id):
        """The stand-in's delivery record of one event: pending_webhooks, delivery_success, targets with
        their status (pending/delivered/failed/skipped/acknowledged) and attempts (status, error, at)."""
        return self._ok(self.sandbox('GET', 'events/%s/deliveries' % event_id), 'deliveries')

    def retry(self, event_id):
        """Redeliver now to the endpoints that have not received it. -> the delivery record."""
        return self._ok(self.sandbox('POST', 'events/%s/retry' % event_id), 'retry')

    def acknowledge(self, event_id):
        """Count the event as delivered (e.g. after a replay straight to the endpoint)."""
        return self._ok(self.sandbox('POST', 'events/%s/acknowledge' % event_id), 'acknowledge')

    def state(self):
        return self._ok(self.sandbox('GET', 'state'), 'state')


class StripeServer(StripeClient):
    """A running stand-in of its own: ``url``, ``port``, ``pid``, ``state_dir``, ``log_path``."""

    def __init__(self, state_dir, port, proc, log_path):
        super().__init__('http://127.0.0.1:%d' % port)
        self.state_dir = state_dir
        self.port = port
        self.proc = proc
        self.pid = proc.pid
        self.log_path = log_path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return '<StripeServer %s pid %d>' % (self.url, self.pid)

    # ---------------------------------------------------------------- process
    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM by PID, wait up to timeout, then SIGKILL. Idempotent."""
        if self.proc.poll() is not None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=timeout)


def start_stripe(tmp_dir, port=None):
    """Start the stand-in with state in tmp_dir on port (default: a free one). -> StripeServer."""
    tmp_dir = os.path.abspath(str(tmp_dir))
    os.makedirs(tmp_dir, exist_ok=True)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([os.path.join(REPO, 'sandbox')] + [
        p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env['PYTHONUNBUFFERED'] = '1'
    last = None
    for _attempt in range(3):  # a free port can be taken between the check and the bind: try another
        chosen = port or free_port()
        log_path = os.path.join(tmp_dir, 'stripe-%d.log' % chosen)
        with open(log_path, 'ab') as log:
            proc = subprocess.Popen(
                [sys.executable, '-m', 'svpms_sandbox', '--state-dir', tmp_dir, '--stripe-port', str(chosen),
                 'stripe'], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_dir,
                start_new_session=True, close_fds=True)
        server = StripeServer(tmp_dir, chosen, proc, log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = server.sandbox('GET', 'health', timeout=1.0)
                if status == 200 and body.get('pid') == proc.pid:
                    return server
            except OSError as exc:  # still starting
                last = exc
            time.sleep(0.1)
        server.stop()
        with open(log_path, 'rb') as fh:
            last = '%s; log tail: %s' % (last, fh.read()[-800:].decode('utf-8', 'replace'))
        if port:
            break
    raise RuntimeError('waited %.0fs for the Stripe stand-in to answer GET /_sandbox/health: %s'
                       % (START_TIMEOUT, last))
