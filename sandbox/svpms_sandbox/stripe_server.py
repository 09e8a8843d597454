"""The sandbox's Stripe stand-in: localstripe's aiohttp app, in-process, on 127.0.0.1 only.

localstripe (1.15.10, GPL-3.0-or-later, a test dependency) implements the
Stripe API's customers, payment methods, payment intents, charges, refunds,
events ... but its own launcher listens on all interfaces and keeps its store
in /tmp/localstripe.pickle, and it has no webhook endpoints API and no record
of delivery outcomes. This module runs its ``localstripe.server.app`` itself:

- bound to 127.0.0.1:<port> only; the store lives in the state dir
  (``stripe_store.pickle``, written at most every 5 s and at exit);
- localstripe's fire-and-forget webhook sender is replaced by our own
  delivery (below), so the stand-in knows each outcome.

SANDBOX EXTENSIONS (absent from localstripe; the shapes are the real API's
where the real API has the route):

- ``POST /v1/webhook_endpoints`` (``url``, ``enabled_events[]``; the answer
  carries ``secret`` once, as Stripe's; sandbox-only: an optional ``secret``
  parameter sets it instead of generating one), ``GET /v1/webhook_endpoints``
  (newest first, ``limit``/``starting_after``), ``GET/POST/DELETE
  /v1/webhook_endpoints/{id}`` (``url``, ``enabled_events[]``,
  ``disabled=true|false`` -> ``status`` disabled|enabled, ``description``).
  localstripe's own ``POST /_config/webhooks/{id}`` registers into the same
  list. Endpoints persist in ``stripe_webhook_endpoints.json`` (mode 0600).
- Events carry ``pending_webhooks`` (matching endpoints that have not yet
  received them) and ``request``; ``GET /v1/events`` keeps localstripe's
  order (oldest first) and paging, and accepts ``delivery_success=true|false``.
- Delivery: when an event is created it is POSTed (JSON, ``Stripe-Signature:
  t=<now>,v1=<HMAC-SHA256 hex of "<t>.<raw body>" with the endpoint secret>``,
  timeout 5 s) to each ENABLED endpoint whose ``enabled_events`` match (``*`` =
  all). A 2xx is delivered (``pending_webhooks`` decremented); otherwise it is
  retried after ~5 s and ~20 s (Stripe retries for up to three days; shortened
  here) and then given up. A disabled endpoint receives nothing: those events
  are never attempted. ``delivery_success`` is false for an event when one of
  its endpoints has a failed or skipped delivery not acknowledged since, true
  when ``pending_webhooks`` is 0 (events with no matching endpoint included),
  and neither while the first attempt is in flight. Deleting an endpoint
  drops its open deliveries.
- Revoked keys: a key listed in ``stripe_revoked_keys.json`` (its SHA-256 and
  last 4 characters only) gets 401 ``{"error": {"type":
  "invalid_request_error", "code": "api_key_expired", "message": "Expired API
  Key provided: sk_test_****XXXX"}}`` on every ``/v1/`` route. A malformed
  ``Authorization`` header (which crashes localstripe with a 500) gets 401.
- ``/_sandbox/`` routes (no API key; loopback only): ``GET /_sandbox/health``,
  ``GET /_sandbox/state``, ``GET /_sandbox/events/{id}/deliveries`` (every
  attempt), ``POST /_sandbox/events/{id}/retry`` (redeliver now to the
  endpoints that have not received it, like the Dashboard's "Resend"),
  ``POST /_sandbox/events/{id}/acknowledge`` (count it as delivered, e.g.
  after a replay straight to the endpoint), ``GET/POST/DELETE
  /_sandbox/revoked_keys`` (JSON ``{"key": ...}``).

Secrets (API keys, endpoint secrets) are never logged; keys show as
``sk_test_****XXXX``.
"""

import asyncio
import base64
import binascii
import datetime
import hashlib
import json
import logging
import os
import pickle
import secrets
import time

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from . import constants as C
from .payments import mask_key, new_webhook_secret, sign  # noqa: F401  (re-exported for the tests)

log = logging.getLogger('svpms_sandbox.stripe')

SANDBOX_PREFIX = '/_sandbox/'
ENDPOINT_PREFIX = 'we_'
FLUSH_INTERVAL = 5.0   # seconds between writes of the store (and at exit)
RESPONSE_SNIPPET = 200
ENDPOINT_STATUSES = ('enabled', 'disabled')


# ----------------------------------------------------------------- pure helpers (also used by core/tests)
def utc_iso(ts=None):
    ts = time.time() if ts is None else ts
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def key_digest(key):
    return hashlib.sha256(key.encode('utf-8')).hexdigest()


def _write_json(path, obj, private=False):
    tmp = '%s.tmp%d' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, 'w') as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _read_json(path, default):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return default


def read_revoked(state_dir):
    """-> [{'sha256', 'last4', 'masked', 'revoked_at'}] from the state dir's revoked-keys file."""
    data = _read_json(os.path.join(state_dir, C.STRIPE_REVOKED_FILE), {})
    return list(data.get('keys', [])) if isinstance(data, dict) else []


def revoke_key_file(state_dir, key):
    """Add key to the revoked list (idempotent). -> True when it was not revoked before."""
    entries = read_revoked(state_dir)
    digest = key_digest(key)
    if any(e.get('sha256') == digest for e in entries):
        return False
    entries.append({'sha256': digest, 'last4': key[-4:], 'masked': mask_key(key), 'revoked_at': utc_iso()})
    _write_json(os.path.join(state_dir, C.STRIPE_REVOKED_FILE), {'keys': entries})
    return True


def unrevoke_key_file(state_dir, key=None):
    """Take key (or every key, with None) off the revoked list. -> how many were removed."""
    entries = read_revoked(state_dir)
    keep = [] if key is None else [e for e in entries if e.get('sha256') != key_digest(key)]
    if len(keep) != len(entries):
        _write_json(os.path.join(state_dir, C.STRIPE_REVOKED_FILE), {'keys': keep})
    return len(entries) - len(keep)


def event_matches(enabled_events, event_type):
    return '*' in enabled_events or event_type in enabled_events


def _bool_param(value, name):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ('true', 'false'):
        return value.lower() == 'true'
    raise _StripeError(400, 'Invalid boolean: %r' % (value,), param=name)


class _StripeError(Exception):
    """An API error answered with Stripe's error shape."""

    def __init__(self, status, message, code=None, param=None, etype='invalid_request_error'):
        super().__init__(message)
        self.status = status
        self.body = {'error': {'type': etype, 'message': message}}
        if code:
            self.body['error']['code'] = code
        if param:
            self.body['error']['param'] = param

    def response(self):
        return web.json_response(self.body, status=self.status)


def _json(obj, status=200):
    return web.json_response(obj, status=status, dumps=lambda x: json.dumps(x, indent=2, sort_keys=True) + '\n')


# ----------------------------------------------------------------- the stand-in
class StripeStandIn:
    """Wires localstripe's module-level app to this state dir (one per process)."""

    def __init__(self, state_dir, port):
        self.state_dir = os.path.abspath(state_dir)
        self.port = port
        self.store_path = os.path.join(self.state_dir, C.STRIPE_STORE_FILE)
        self.endpoints_path = os.path.join(self.state_dir, C.STRIPE_ENDPOINTS_FILE)
        self.revoked_path = os.path.join(self.state_dir, C.STRIPE_REVOKED_FILE)
        self.endpoints = {}          # id -> endpoint dict (with '_secret'), insertion = creation order
        self._revoked = (None, set())  # (mtime, {sha256})
        self._dirty = False
        self._session = None
        self._tasks = set()
        self.counters = {'attempts': 0, 'delivered': 0, 'failed_attempts': 0, 'gave_up': 0,
                         'skipped_disabled': 0, 'revoked_key_rejections': 0}
        # localstripe is imported here (it builds its app at import time).
        from localstripe import resources, server  # pylint: disable=import-outside-toplevel
        self.ls_resources, self.ls_server = resources, server
        self.store = resources.store
        self.app = server.app

    # -------------------------------------------------------------- wiring
    def install(self):
        standin = self
        resources, server = self.ls_resources, self.ls_server

        def dump_to_disk(_store):
            standin._dirty = True

        def try_load_from_disk(store):
            try:
                with open(standin.store_path, 'rb') as fh:
                    old = pickle.load(fh)
            except FileNotFoundError:
                return
            except Exception as exc:  # a torn or foreign file: start empty, say so
                log.warning('cannot load the store %s (%s: %s); starting empty', standin.store_path,
                            type(exc).__name__, exc)
                return
            dict.clear(store)
            dict.update(store, old)

        resources.Store.dump_to_disk = dump_to_disk
        resources.Store.try_load_from_disk = try_load_from_disk
        # localstripe's sender is replaced by ours (resources imported it by name).
        resources.schedule_webhook = self.schedule_event
        server.register_webhook = self._config_register
        event_cls = resources.Event
        original_list = event_cls.__dict__['_api_list_all'].__func__

        def list_events(cls, url, delivery_success=None, **kwargs):
            want = None if delivery_success is None else _bool_param(delivery_success, 'delivery_success')
            li = original_list(cls, url, **kwargs)
            if want is not None:
                li._list = [e for e in li._list if standin.delivery_success(e) is want]
            return li

        event_cls._api_list_all = classmethod(list_events)

        app = self.app
        app.middlewares.insert(0, self._middleware)
        r = app.router
        r.add_route('GET', '/v1/webhook_endpoints', self.h_list_endpoints)
        r.add_route('POST', '/v1/webhook_endpoints', self.h_create_endpoint)
        r.add_route('GET', '/v1/webhook_endpoints/{id}', self.h_get_endpoint)
        r.add_route('POST', '/v1/webhook_endpoints/{id}', self.h_update_endpoint)
        r.add_route('DELETE', '/v1/webhook_endpoints/{id}', self.h_delete_endpoint)
        r.add_route('GET', '/_sandbox/health', self.h_health)
        r.add_route('GET', '/_sandbox/state', self.h_state)
        r.add_route('GET', '/_sandbox/events/{id}/deliveries', self.h_deliveries)
        r.add_route('POST', '/_sandbox/events/{id}/retry', self.h_retry)
        r.add_route('POST', '/_sandbox/events/{id}/acknowledge', self.h_acknowledge)
        r.add_route('GET', '/_sandbox/revoked_keys', self.h_revoked_list)
        r.add_route('POST', '/_sandbox/revoked_keys', self.h_revoke)
        r.add_route('DELETE', '/_sandbox/revoked_keys', self.h_unrevoke)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)

    def load(self):
        self.store.try_load_from_disk()
        for ep in _read_json(self.endpoints_path, {}).get('endpoints', []):
            self.endpoints[ep['id']] = ep
        # Deliveries that were in flight when the previous process ended are given up.
        for key, obj in list(self.store.items()):
            if key.startswith('event:'):
                for target in (getattr(obj, '_sbx_targets', None) or {}).values():
                    if target['status'] == 'pending':
                        target.update(status='failed', gave_up=True, next_retry_at=None,
                                      note='the stand-in restarted during delivery')

    def flush(self):
        if not self._dirty:
            return
        self._dirty = False
        tmp = self.store_path + '.tmp'
        with open(tmp, 'wb') as fh:
            pickle.dump(dict(self.store), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.store_path)

    def save_endpoints(self):
        _write_json(self.endpoints_path, {'endpoints': list(self.endpoints.values())}, private=True)

    async def _on_startup(self, _app):
        self._session = ClientSession(timeout=ClientTimeout(total=C.STRIPE_DELIVERY_TIMEOUT), trust_env=False)
        self._spawn(self._flusher())

    async def _on_cleanup(self, _app):
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self.flush()

    def _spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _flusher(self):
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                self.flush()
            except Exception as exc:
                log.error('cannot write the store %s: %s', self.store_path, exc)

    # -------------------------------------------------------------- auth + revoked keys (sandbox extension)
    def revoked_digests(self):
        try:
            mtime = os.stat(self.revoked_path).st_mtime_ns
        except OSError:
            mtime = None
        if mtime != self._revoked[0]:
            self._revoked = (mtime, {e.get('sha256') for e in read_revoked(self.state_dir)})
        return self._revoked[1]

    @staticmethod
    def request_key(request):
        """-> (key or None, malformed: bool) from Authorization (Bearer, or Basic key:)."""
        header = request.headers.get('Authorization')
        if header is None:
            return None, False
        parts = header.split(' ')
        if len(parts) != 2 or parts[0] not in ('Bearer', 'Basic'):
            return None, True
        if parts[0] == 'Bearer':
            return parts[1], False
        try:
            return base64.b64decode(parts[1].encode('ascii'), validate=True).decode('utf-8').split(':')[0], False
        except (binascii.Error, ValueError):
            return None, True

    @web.middleware
    async def _middleware(self, request, handler):
        if request.path.startswith(SANDBOX_PREFIX):
            # Sandbox-only routes skip localstripe's API-key check (loopback only).
            try:
                return await request.match_info.handler(request)
            except _StripeError as exc:
                return exc.response()
        if request.path.startswith('/v1/'):
            key, malformed = self.request_key(request)
            if malformed:
                return _StripeError(401, 'Invalid Authorization header: use "Bearer sk_..." (or HTTP Basic with '
                                         'the key as user name).').response()
            if key and key_digest(key) in self.revoked_digests():
                self.counters['revoked_key_rejections'] += 1
                return _StripeError(401, 'Expired API Key provided: %s' % mask_key(key),
                                    code='api_key_expired').response()
        try:
            return await handler(request)
        except _StripeError as exc:
            return exc.response()

    # -------------------------------------------------------------- webhook endpoints API (sandbox extension)
    @staticmethod
    def export_endpoint(ep, with_secret=False):
        out = {k: v for k, v in ep.items() if not k.startswith('_')}
        if with_secret:
            out['secret'] = ep['_secret']
        return out

    def _endpoint(self, we_id):
        ep = self.endpoints.get(we_id)
        if ep is None:
            raise _StripeError(404, "No such webhook endpoint: '%s'" % we_id, code='resource_missing', param='id')
        return ep

    @staticmethod
    def _check_url(url):
        if not isinstance(url, str) or not url.startswith(('http://', 'https://')):
            raise _StripeError(400, 'Invalid URL: must be an http(s) URL.', param='url')
        return url

    @staticmethod
    def _check_events(events):
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list) or not events or not all(isinstance(e, str) and e for e in events):
            raise _StripeError(400, 'Invalid enabled_events: a non-empty array of event types or "*".',
                               param='enabled_events')
        return events

    def add_endpoint(self, url, enabled_events, secret=None, description=None, we_id=None):
        ep = {'id': we_id or ENDPOINT_PREFIX + secrets.token_hex(12), 'object': 'webhook_endpoint',
              'api_version': None, 'application': None, 'created': int(time.time()),
              'description': description, 'enabled_events': list(enabled_events), 'livemode': False,
              'metadata': {}, 'status': 'enabled', 'url': url, '_secret': secret or new_webhook_secret()}
        self.endpoints[ep['id']] = ep
        self.save_endpoints()
        log.info('webhook endpoint %s registered for %s (events %s)', ep['id'], url, ', '.join(enabled_events))
        return ep

    def _config_register(self, we_id, url, secret, events):
        """localstripe's POST /_config/webhooks/{id}, kept working on the same endpoint list."""
        self.endpoints.pop(we_id, None)
        self.add_endpoint(url, events or ['*'], secret=secret, we_id=we_id)

    async def _data(self, request):
        data = await self.ls_server.get_post_data(request) or {}
        if not isinstance(data, dict):
            raise _StripeError(400, 'Invalid request body.')
        return data

    async def h_list_endpoints(self, request):
        q = self.ls_server.unflatten_data(request.query)
        try:
            limit = int(q.get('limit', 10))
            assert 1 <= limit <= 100
        except (ValueError, AssertionError):
            raise _StripeError(400, 'Invalid integer: limit must be between 1 and 100.', param='limit')
        items = list(reversed(list(self.endpoints.values())))  # newest first, as Stripe lists them
        after = q.get('starting_after')
        if after:
            ids = [e['id'] for e in items]
            if after not in ids:
                raise _StripeError(400, "No such webhook endpoint: '%s'" % after, param='starting_after')
            items = items[ids.index(after) + 1:]
        return _json({'object': 'list', 'url': '/v1/webhook_endpoints', 'has_more': len(items) > limit,
                      'data': [self.export_endpoint(e) for e in items[:limit]]})

    async def h_create_endpoint(self, request):
        data = await self._data(request)
        if not data.get('url'):
            raise _StripeError(400, 'Missing required param: url.', param='url')
        if 'enabled_events' not in data:
            raise _StripeError(400, 'Missing required param: enabled_events.', param='enabled_events')
        secret = data.get('secret')  # sandbox-only parameter
        if secret is not None and (not isinstance(secret, str) or not secret.startswith('whsec_')):
            raise _StripeError(400, 'Invalid secret: must start with whsec_ (sandbox extension).', param='secret')
        ep = self.add_endpoint(self._check_url(data['url']), self._check_events(data['enabled_events']),
                               secret=secret, description=data.get('description'))
        return _json(self.export_endpoint(ep, with_secret=True))

    async def h_get_endpoint(self, request):
        return _json(self.export_endpoint(self._endpoint(request.match_info['id'])))

    async def h_update_endpoint(self, request):
        ep = self._endpoint(request.match_info['id'])
        data = await self._data(request)
        unknown = set(data) - {'url', 'enabled_events', 'disabled', 'description', 'metadata'}
        if unknown:
            raise _StripeError(400, 'Received unknown parameter: %s' % sorted(unknown)[0], param=sorted(unknown)[0])
        changes = {}
        if 'url' in data:
            changes['url'] = self._check_url(data['url'])
        if 'enabled_events' in data:
            changes['enabled_events'] = self._check_events(data['enabled_events'])
        if 'disabled' in data:
            changes['status'] = 'disabled' if _bool_param(data['disabled'], 'disabled') else 'enabled'
        if 'description' in data:
            changes['description'] = data['description'] or None
        if isinstance(data.get('metadata'), dict):
            changes['metadata'] = dict(ep['metadata'], **data['metadata'])
        if changes.get('status') and changes['status'] != ep['status']:
            log.info('webhook endpoint %s %s', ep['id'], changes['status'])
        ep.update(changes)
        self.save_endpoints()
        return _json(self.export_endpoint(ep))

    async def h_delete_endpoint(self, request):
        ep = self._endpoint(request.match_info['id'])
        del self.endpoints[ep['id']]
        self.save_endpoints()
        # a deleted endpoint no longer waits for anything: drop its open deliveries
        for key, event in list(self.store.items()):
            if key.startswith('event:'):
                self._drop_target(event, ep['id'])
        return _json({'id': ep['id'], 'object': 'webhook_endpoint', 'deleted': True})

    # -------------------------------------------------------------- delivery (sandbox extension)
    def schedule_event(self, event):
        """Replaces localstripe's schedule_webhook: called synchronously when an event is created."""
        targets = {}
        for ep in self.endpoints.values():
            if not event_matches(ep['enabled_events'], event.type):
                continue
            if ep['status'] == 'disabled':
                targets[ep['id']] = {'status': 'skipped', 'reason': 'endpoint disabled', 'attempts': [],
                                     'gave_up': True, 'next_retry_at': None}
                self.counters['skipped_disabled'] += 1
            else:
                targets[ep['id']] = {'status': 'pending', 'attempts': [], 'gave_up': False, 'next_retry_at': None}
        event._sbx_targets = targets
        event.pending_webhooks = len(targets)
        if not hasattr(event, 'request'):
            event.request = {'id': None, 'idempotency_key': None}
        self._dirty = True
        for we_id, target in targets.items():
            if target['status'] == 'pending':
                self._spawn(self._deliver_with_retries(event, we_id))

    def _drop_target(self, event, we_id):
        targets = getattr(event, '_sbx_targets', None) or {}
        target = targets.get(we_id)
        if target is None or target['status'] in ('delivered', 'acknowledged'):
            return
        del targets[we_id]
        event.pending_webhooks = max(0, getattr(event, 'pending_webhooks', 1) - 1)
        self._dirty = True

    @staticmethod
    def delivery_success(event):
        """True/False/None (first attempt still in flight) for the delivery_success filter."""
        targets = getattr(event, '_sbx_targets', None) or {}
        statuses = [t['status'] for t in targets.values()]
        if any(s in ('failed', 'skipped') for s in statuses):
            return False
        if all(s in ('delivered', 'acknowledged') for s in statuses):
            return True
        return None

    def _settle(self, event, target, status):
        was_open = target['status'] not in ('delivered', 'acknowledged')
        target['status'] = status
        target['next_retry_at'] = None
        if was_open and status in ('delivered', 'acknowledged'):
            event.pending_webhooks = max(0, getattr(event, 'pending_webhooks', 1) - 1)
        self._dirty = True

    async def _attempt(self, event, we_id, manual=False):
        """One signed POST of the event to endpoint we_id. -> the attempt record."""
        ep = self.endpoints[we_id]
        target = event._sbx_targets[we_id]
        payload = json.dumps(event._export(), indent=2, sort_keys=True).encode('utf-8')
        now = int(time.time())
        headers = {'Content-Type': 'application/json; charset=utf-8',
                   'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
                   'Stripe-Signature': sign(payload, ep['_secret'], now)}
        record = {'attempt': len(target['attempts']) + 1, 'at': utc_iso(now), 'timestamp': now, 'url': ep['url'],
                  'manual': manual, 'status': None, 'error': None, 'response_body': None, 'duration_ms': None}
        t0 = time.monotonic()
        try:
            async with self._session.post(ep['url'], data=payload, headers=headers, allow_redirects=False) as resp:
                record['status'] = resp.status
                record['response_body'] = (await resp.text(errors='replace'))[:RESPONSE_SNIPPET]
        except asyncio.TimeoutError:
            record['error'] = 'timeout after %gs' % C.STRIPE_DELIVERY_TIMEOUT
        except (ClientError, OSError, ValueError) as exc:
            record['error'] = '%s: %s' % (type(exc).__name__, exc)
        record['duration_ms'] = round((time.monotonic() - t0) * 1000.0, 1)
        target['attempts'].append(record)
        if event._sbx_targets.get(we_id) is not target:  # the endpoint was deleted meanwhile
            return record
        self.counters['attempts'] += 1
        ok = record['status'] is not None and 200 <= record['status'] < 300
        if ok:
            self.counters['delivered'] += 1
            if target['status'] not in ('delivered', 'acknowledged'):
                self._settle(event, target, 'delivered')
        else:
            self.counters['failed_attempts'] += 1
            if target['status'] == 'pending':
                target['status'] = 'failed'
        self._dirty = True
        if not ok or manual or record['attempt'] > 1:  # routine first-attempt successes are not logged
            log.info('delivery %s %s -> %s attempt %d%s: %s', event.id, event.type, we_id, record['attempt'],
                     ' (manual)' if manual else '', record['status'] or record['error'])
        return record

    async def _deliver_with_retries(self, event, we_id):
        target = event._sbx_targets[we_id]
        delays = (C.STRIPE_DELIVERY_DELAY,) + tuple(C.STRIPE_RETRY_DELAYS)
        for i, delay in enumerate(delays):
            if i:
                target['next_retry_at'] = utc_iso(time.time() + delay)
            await asyncio.sleep(delay)
            if target['status'] in ('delivered', 'acknowledged'):
                return
            ep = self.endpoints.get(we_id)
            if ep is None:
                self._drop_target(event, we_id)
                return
            if ep['status'] != 'enabled':
                target.update(status='failed' if target['attempts'] else 'skipped', gave_up=True,
                              next_retry_at=None, reason='endpoint disabled')
                self._dirty = True
                return
            record = await self._attempt(event, we_id)
            if record['status'] is not None and 200 <= record['status'] < 300:
                return
        target.update(gave_up=True, next_retry_at=None)
        self.counters['gave_up'] += 1
        self._dirty = True
        log.info('delivery %s -> %s given up after %d attempts', event.id, we_id, len(target['attempts']))

    # -------------------------------------------------------------- /_sandbox/ routes
    def _event(self, evt_id):
        event = self.store.get('event:' + evt_id)
        if event is None:
            raise _StripeError(404, "No such event: '%s'" % evt_id, code='resource_missing', param='id')
        return event

    def delivery_view(self, event):
        targets = getattr(event, '_sbx_targets', None) or {}
        return {'event': event.id, 'type': event.type, 'created': event.created,
                'pending_webhooks': getattr(event, 'pending_webhooks', 0),
                'delivery_success': self.delivery_success(event),
                'targets': [dict(t, webhook_endpoint=we_id, url=(self.endpoints.get(we_id) or {}).get('url'))
                            for we_id, t in targets.items()]}

    async def h_health(self, _request):
        return _json({'ok': True, 'pid': os.getpid(), 'port': self.port, 'state_dir': self.state_dir})

    async def h_state(self, _request):
        events = [v for k, v in self.store.items() if k.startswith('event:')]
        success = [self.delivery_success(e) for e in events]
        return _json({
            'pid': os.getpid(), 'port': self.port,
            'endpoints': [self.export_endpoint(e) for e in self.endpoints.values()],
            'revoked_keys': [{k: e.get(k) for k in ('masked', 'revoked_at')} for e in read_revoked(self.state_dir)],
            'events': {'total': len(events), 'delivered': success.count(True),
                       'undelivered': success.count(False), 'in_flight': success.count(None),
                       'undelivered_ids': [e.id for e, s in zip(events, success) if s is False][-50:]},
            'deliveries': dict(self.counters),
            'retry_delays': list(C.STRIPE_RETRY_DELAYS), 'delivery_timeout': C.STRIPE_DELIVERY_TIMEOUT,
        })

    async def h_deliveries(self, request):
        return _json(self.delivery_view(self._event(request.match_info['id'])))

    async def h_retry(self, request):
        """Redeliver now to every endpoint that has not received the event (enabled endpoints only)."""
        event = self._event(request.match_info['id'])
        attempted = []
        for we_id, target in list((getattr(event, '_sbx_targets', None) or {}).items()):
            if target['status'] in ('delivered', 'acknowledged'):
                continue
            ep = self.endpoints.get(we_id)
            if ep is None or ep['status'] != 'enabled':
                continue
            attempted.append(await self._attempt(event, we_id, manual=True))
        view = self.delivery_view(event)
        view['attempted'] = attempted
        return _json(view)

    async def h_acknowledge(self, request):
        event = self._event(request.match_info['id'])
        acknowledged = []
        for we_id, target in (getattr(event, '_sbx_targets', None) or {}).items():
            if target['status'] not in ('delivered', 'acknowledged'):
                self._settle(event, target, 'acknowledged')
                target['gave_up'] = False
                acknowledged.append(we_id)
        view = self.delivery_view(event)
        view['acknowledged'] = acknowledged
        return _json(view)

    async def _key_param(self, request):
        try:
            data = await request.json()
        except ValueError:
            data = None
        key = data.get('key') if isinstance(data, dict) else None
        return key

    async def h_revoked_list(self, _request):
        return _json({'revoked_keys': [{k: e.get(k) for k in ('masked', 'revoked_at')}
                                       for e in read_revoked(self.state_dir)]})

    async def h_revoke(self, request):
        key = await self._key_param(request)
        if not isinstance(key, str) or not key:
            raise _StripeError(400, 'Missing required param: key (a JSON body {"key": "sk_..."}).', param='key')
        changed = revoke_key_file(self.state_dir, key)
        if changed:
            log.info('API key %s revoked', mask_key(key))
        return _json({'revoked': mask_key(key), 'changed': changed})

    async def h_unrevoke(self, request):
        key = await self._key_param(request)  # none: un-revoke every key
        removed = unrevoke_key_file(self.state_dir, key if isinstance(key, str) and key else None)
        return _json({'removed': removed})


def run(state_dir, port):
    """Foreground entry point for `python -m svpms_sandbox --stripe-port P stripe`."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s %(message)s')
    os.makedirs(state_dir, exist_ok=True)
    standin = StripeStandIn(state_dir, port)
    standin.install()
    standin.load()
    log.info('Stripe stand-in (localstripe, in-process) listening on http://%s:%d, store %s', C.HOST, port,
             standin.store_path)
    try:
        web.run_app(standin.app, host=C.HOST, port=port, access_log=None, print=None, handle_signals=True,
                    shutdown_timeout=2.0)
    except OSError as exc:
        log.error('cannot listen on %s:%d: %s', C.HOST, port, exc)
        return 1
    log.info('Stripe stand-in stopped')
    return 0
