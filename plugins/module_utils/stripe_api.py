# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Stripe API for the stripe_* modules of svpms.incident_response.

One place for: the connection options (``stripe_argument_spec``: the API key
with ``no_log`` and the ``STRIPE_API_KEY`` fallback, ``api_url``, ``timeout``,
``validate_certs``), ``StripeClient`` (``requests`` with one Session, Bearer
auth, ``Stripe-Version`` pinned), typed ``StripeError`` s whose messages say
what to do, and the pure rules the modules share (key kind and hint, error
classification, webhook endpoint matching, failed-event arithmetic), testable
without HTTP.

Retries (``StripeClient.request``), bounded:

- Retried: HTTP 429, HTTP 5xx, connection errors (the request never reached
  Stripe), and a timeout or a dropped answer when the request is idempotent
  (GET/DELETE, or a POST with an ``Idempotency-Key``). Stripe's own
  ``Stripe-Should-Retry`` header wins when present, as in Stripe's libraries.
  Anything else (400, 401, 403, 404, a TLS certificate failure) is final.
- Waits: ``Retry-After`` (seconds or an HTTP date) is honoured when it is at
  most ``max_retry_after`` (default 10 s); a longer ask is not waited for -
  the call fails at once as ``rate_limited`` and says how long Stripe asked.
  Without the header: full-jitter exponential backoff,
  ``uniform(0, min(5, 0.5 * 2**n))`` (0.5 s, 1 s, 2 s, 4 s, 5 s caps, the
  figures of Stripe's own libraries).
- Wall time: at most ``1 + retries`` attempts (default 4), each cut off at
  ``timeout`` seconds (connect, every socket read, and the whole answer,
  checked between reads), and one call never starts an attempt or a wait
  after its deadline ``max_time`` = ``(1 + retries) * timeout + retries *
  max_retry_after`` seconds (default 4 * 10 + 3 * 10 = 70 s). An attempt that
  starts just before the deadline gets only the time left.
  ``list_all`` makes at most ``ceil(max_items / 100)`` such calls.

Secrets: the key is only ever sent in the ``Authorization`` header (never to
``status_url``, never in a URL); every message, exception and result is passed
through ``redact`` (the key becomes its ``key_hint``, ``sk_test_...1234``) and
exceptions are raised ``from None`` so no chained ``requests`` exception (whose
request object holds the header) travels with them. Redirects are not
followed, so the key never goes to a second host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import ipaddress
import json
import math
import random
import re
import time

from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.basic import env_fallback

from ansible_collections.svpms.incident_response.plugins.module_utils.notify import (
    check_base_url,
    parse_retry_after,
    safe_url,
)

try:
    import requests
    from requests.auth import AuthBase
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by sanity only
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc
    AuthBase = object

DEFAULT_API_URL = 'https://api.stripe.com'
DEFAULT_STATUS_URL = 'https://status.stripe.com/current'
API_VERSION = '2024-06-20'
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_RETRY_AFTER = 10.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 5.0
STATUS_TIMEOUT_CAP = 5.0
PAGE_LIMIT = 100
MAX_BODY_BYTES = 32 * 1024 * 1024
STATUS_MAX_BODY_BYTES = 256 * 1024
CHUNK_BYTES = 64 * 1024
DETAIL_CHARS = 300
USER_AGENT = 'svpms-incident-response-stripe/1.0'
ELLIPSIS = u'\u2026'

# Stripe retries an undelivered webhook event for up to three days after it
# was created (docs.stripe.com/webhooks#automatic-retries), and List Events
# with delivery_success=false covers the last 30 days.
STRIPE_RETRY_HOURS = 72.0
EXPIRY_WARNING_HOURS = 12.0
MAX_WINDOW_HOURS = 720

KIND_INVALID_KEY = 'invalid_key'
KIND_PERMISSION = 'permission'
KIND_NOT_FOUND = 'not_found'
KIND_RATE_LIMITED = 'rate_limited'
KIND_SERVER = 'server_error'
KIND_UNREACHABLE = 'unreachable'
KIND_TIMEOUT = 'timeout'
KIND_TLS = 'tls'
KIND_BAD_REQUEST = 'bad_request'
KIND_API = 'api_error'          # any other answer (a 3xx, 402, 409, ...)

NOT_REACHED_KINDS = frozenset([KIND_UNREACHABLE, KIND_TIMEOUT, KIND_TLS])

HINTS = {
    KIND_INVALID_KEY: 'Stripe refuses the API key (api_key / STRIPE_API_KEY): it is mistyped, from another '
                      'account, rolled or revoked; use the current secret key from the Stripe Dashboard',
    KIND_PERMISSION: 'the key is valid but lacks the permission for this call (a restricted key): grant it '
                     'in the Dashboard or use a key that has it',
    KIND_NOT_FOUND: 'check the id, and that api_url points at the Stripe API itself',
    KIND_RATE_LIMITED: 'Stripe is rate limiting this account; retry later and look for a runaway client',
    KIND_SERVER: 'Stripe (or whatever answers at api_url) is failing; retry later and check status.stripe.com',
    KIND_UNREACHABLE: 'check api_url, DNS and the egress path (proxy, firewall) from this host to Stripe',
    KIND_TIMEOUT: 'check the network path to Stripe and status.stripe.com, or raise timeout',
    KIND_TLS: 'the TLS certificate of api_url could not be verified: check the CA bundle or an '
              'intercepting proxy (validate_certs=false only for a test server)',
    KIND_BAD_REQUEST: 'Stripe rejected the request parameters named above',
    KIND_API: 'unexpected answer from api_url: check that it is the Stripe API',
}

_KEY_PREFIX = re.compile(r'^(sk|rk|pk)_(live|test)_')
KEY_TYPES = {'sk': 'secret', 'rk': 'restricted', 'pk': 'publishable'}
LOOPBACK_NAMES = frozenset(['localhost', 'localhost.localdomain'])


# --------------------------------------------------------------------------- keys


def key_kind(key):
    """``(key_type, mode)`` of a Stripe API key from its prefix.

    ``key_type`` is ``secret`` (sk_), ``restricted`` (rk_), ``publishable``
    (pk_) or ``unknown``; ``mode`` is ``live``, ``test`` or None.
    """
    match = _KEY_PREFIX.match(key or '')
    if not match:
        return 'unknown', None
    return KEY_TYPES[match.group(1)], match.group(2)


def key_hint(key):
    """What may be shown of a key: ``sk_test_...1234`` (prefix, an ellipsis, the last 4 characters).

    Never more. A key without a Stripe prefix shows only its last 4
    characters, and a key shorter than 16 characters shows none of them.
    """
    key = key or ''
    match = _KEY_PREFIX.match(key)
    prefix = match.group(0) if match else ''
    tail = key[-4:] if len(key) >= 16 and len(key) - len(prefix) >= 12 else ''
    return prefix + ELLIPSIS + tail


def redact(text, key):
    """``text`` with every occurrence of ``key`` replaced by its ``key_hint``."""
    text = '' if text is None else str(text)
    if key:
        text = text.replace(key, key_hint(key))
    return text


def redact_data(data, key):
    """A copy of a JSON-like structure with the key redacted from every string in it."""
    if not key:
        return data
    if isinstance(data, dict):
        return dict((redact(k, key) if isinstance(k, str) else k, redact_data(v, key)) for k, v in data.items())
    if isinstance(data, (list, tuple)):
        return [redact_data(v, key) for v in data]
    if isinstance(data, str):
        return redact(data, key)
    return data


def check_key(key):
    """None if ``key`` can be sent in a header, else a message (which never contains the key)."""
    if not key or not key.strip():
        return 'api_key is empty: pass api_key or set STRIPE_API_KEY'
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return ('api_key contains whitespace or control characters (a stray newline from a file or vault?); '
                'the key shown is %s' % key_hint(key.strip()))
    try:
        key.encode('ascii')
    except UnicodeEncodeError:
        return 'api_key contains non-ASCII characters; Stripe keys are ASCII (key %s)' % key_hint(key)
    return None


# --------------------------------------------------------------------------- errors


class StripeError(Exception):
    """A failed Stripe API call. ``kind`` is one of the KIND_* values; the text never holds the key."""

    def __init__(self, kind, status=None, message='', code=None, error_type=None, param=None,
                 attempts=1, request_id=None, hint=None, where=None):
        self.kind = kind
        self.status = status
        self.message = message
        self.code = code
        self.error_type = error_type
        self.param = param
        self.attempts = attempts
        self.request_id = request_id
        self.hint = HINTS.get(kind) if hint is None else hint
        self.where = where
        super(StripeError, self).__init__(self.describe())

    @property
    def reachable(self):
        """Whether Stripe (or whatever is at api_url) answered over HTTP."""
        return self.kind not in NOT_REACHED_KINDS

    def describe(self):
        text = 'Stripe API'
        if self.where:
            text += ' %s' % self.where
        if self.status is not None:
            text += ' answered HTTP %s' % self.status
            if self.code:
                text += ' (%s)' % self.code
        text += ': %s' % (self.message or self.kind)
        if self.attempts > 1:
            text += ' [after %d attempts]' % self.attempts
        if self.hint:
            text += '. %s%s' % (self.hint[:1].upper(), self.hint[1:])
        return text

    def to_result(self):
        return dict(reachable=self.reachable, error_kind=self.kind, http_status=self.status,
                    error_code=self.code, attempts=self.attempts)


def kind_for_status(status):
    """The error kind of a non-2xx HTTP status."""
    if status == 400:
        return KIND_BAD_REQUEST
    if status == 401:
        return KIND_INVALID_KEY
    if status == 403:
        return KIND_PERMISSION
    if status == 404:
        return KIND_NOT_FOUND
    if status == 429:
        return KIND_RATE_LIMITED
    if status is not None and 500 <= status <= 599:
        return KIND_SERVER
    return KIND_API


def _short(text, limit=DETAIL_CHARS):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def parse_error_body(body):
    """``dict(type, code, message, param)`` from Stripe's ``{"error": {...}}`` body (values may be None).

    A body that is not Stripe's error object gives its text (shortened) as ``message``.
    """
    out = dict(type=None, code=None, message=None, param=None)
    if isinstance(body, dict) and isinstance(body.get('error'), dict):
        err = body['error']
        for field in out:
            value = err.get(field)
            out[field] = _short(value) if value not in (None, '') else None
    elif isinstance(body, dict) and body:
        out['message'] = _short(json.dumps(body, sort_keys=True))
    elif body not in (None, ''):
        out['message'] = _short(body)
    return out


# --------------------------------------------------------------------------- retries (pure)


def backoff_delay(attempt, base=BACKOFF_BASE, cap=BACKOFF_CAP, rand=random.uniform):
    """Full-jitter exponential backoff after failed attempt ``attempt`` (1-based)."""
    return rand(0, min(cap, base * (2 ** max(0, attempt - 1))))


def default_max_time(timeout, retries, max_retry_after=DEFAULT_MAX_RETRY_AFTER):
    """The wall-time bound of one call: every attempt's timeout plus the longest waits."""
    return (1 + retries) * float(timeout) + retries * max(float(max_retry_after), BACKOFF_CAP)


def is_retryable_status(status, should_retry=None):
    """Whether an HTTP answer is worth another attempt; ``Stripe-Should-Retry`` wins when set."""
    if should_retry is not None:
        flag = str(should_retry).strip().lower()
        if flag == 'true':
            return True
        if flag == 'false':
            return False
    return status == 429 or (status is not None and 500 <= status <= 599)


def plan_wait(attempt, retry_after=None, max_retry_after=DEFAULT_MAX_RETRY_AFTER, rand=random.uniform, now=None):
    """``(seconds, asked)`` to wait before the next attempt.

    ``asked`` is what a ``Retry-After`` header asked for (None without one).
    When it is more than ``max_retry_after`` the caller must not wait:
    ``seconds`` is then None.
    """
    asked = parse_retry_after(retry_after, now=now)
    if asked is not None:
        if asked > max_retry_after:
            return None, asked
        return asked, asked
    return backoff_delay(attempt, rand=rand), None


def encode_params(params):
    """Stripe's form encoding of query parameters as a list of pairs, in order.

    ``{'created': {'gte': 5}}`` -> ``created[gte]=5``; lists -> ``types[0]=a``;
    booleans -> ``true``/``false``; None values are left out.
    """
    pairs = []

    def walk(prefix, value):
        if value is None:
            return
        if isinstance(value, dict):
            for sub, inner in value.items():
                walk('%s[%s]' % (prefix, sub), inner)
        elif isinstance(value, (list, tuple)):
            for index, inner in enumerate(value):
                walk('%s[%d]' % (prefix, index), inner)
        elif isinstance(value, bool):
            pairs.append((prefix, 'true' if value else 'false'))
        else:
            pairs.append((prefix, str(value)))

    for name, value in (params or {}).items():
        walk(str(name), value)
    return pairs


# --------------------------------------------------------------------------- the client


class StripeList(list):
    """The items of a paged Stripe list; ``truncated`` is True when more were left unread."""

    truncated = False
    pages = 0


class _BearerAuth(AuthBase):
    """Sets the Authorization header (an auth object also stops requests from reading ~/.netrc)."""

    def __init__(self, key):
        self._key = key

    def __call__(self, request):
        request.headers['Authorization'] = 'Bearer %s' % self._key
        return request

    def __repr__(self):
        return '<Stripe bearer auth %s>' % key_hint(self._key)


class _Failure(Exception):
    """One failed attempt that never got an HTTP answer (internal)."""

    def __init__(self, kind, message, retryable):
        self.kind = kind
        self.message = message
        self.retryable = retryable
        super(_Failure, self).__init__(message)


def _reason(exc):
    """The innermost useful text of a requests/urllib3 exception, without the pool's boilerplate."""
    inner = exc
    for _depth in range(4):
        args = getattr(inner, 'args', ())
        nxt = getattr(inner, 'reason', None) or (args[0] if args and isinstance(args[0], BaseException) else None)
        if nxt is None or nxt is inner:
            break
        inner = nxt
    text = str(inner)
    # urllib3: "<urllib3.connection.HTTPConnection object at 0x...>: Failed to establish ...: [Errno 111] ..."
    text = re.sub(r'<[^>]*object at 0x[0-9a-f]+>:?\s*', '', text)
    return _short(text, 200)


class StripeClient(object):
    """Calls the Stripe API; raises StripeError. See the module docstring for retries and bounds.

    ``last`` describes the most recent call (also a failed one): ``method``,
    ``path``, ``status``, ``attempts``, ``latency_ms`` (the last attempt),
    ``elapsed_ms`` (the whole call, waits included), ``waits`` (seconds
    slept), ``request_id``.
    """

    def __init__(self, api_key, api_url=DEFAULT_API_URL, timeout=DEFAULT_TIMEOUT, api_version=API_VERSION,
                 retries=DEFAULT_RETRIES, validate_certs=True, max_retry_after=DEFAULT_MAX_RETRY_AFTER,
                 max_time=None, sleep=time.sleep, clock=time.monotonic, rand=random.uniform, session=None):
        if not HAS_REQUESTS:  # pragma: no cover - modules check first
            raise RuntimeError('the requests library is required')
        self._key = api_key
        self.api_url = (api_url or DEFAULT_API_URL).rstrip('/')
        self.timeout = float(timeout)
        self.api_version = api_version
        self.retries = max(0, int(retries))
        self.validate_certs = validate_certs
        self.max_retry_after = float(max_retry_after)
        self.max_time = float(max_time) if max_time is not None else default_max_time(
            self.timeout, self.retries, self.max_retry_after)
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._session = session
        self.requests_sent = 0
        self.last = {}
        self._t0 = None

    def __repr__(self):
        return '<StripeClient %s key %s>' % (safe_url(self.api_url), key_hint(self._key))

    @property
    def key_hint(self):
        return key_hint(self._key)

    @property
    def max_attempts(self):
        return 1 + self.retries

    @property
    def session(self):
        if self._session is None:
            self._session = requests.Session()
        return self._session

    def clean(self, text):
        return redact(text, self._key)

    # ----------------------------------------------------------------- one attempt

    def _read_body(self, response, deadline):
        chunks = []
        size = 0
        for chunk in response.iter_content(CHUNK_BYTES):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _Failure(KIND_SERVER, 'the answer is larger than %d MiB' % (MAX_BODY_BYTES // 1048576),
                               False)
            if self._clock() > deadline:
                raise _Failure(KIND_TIMEOUT, 'the answer was not complete within %gs' % (deadline - self._t0),
                               True)
        return b''.join(chunks)

    def _attempt(self, method, url, pairs, data, headers, timeout, idempotent):
        """-> (status, headers, body bytes); raises _Failure when there is no HTTP answer."""
        self.requests_sent += 1
        self._t0 = self._clock()
        deadline = self._t0 + timeout
        try:
            response = self.session.request(
                method, url, params=pairs or None, data=data, headers=headers, auth=_BearerAuth(self._key),
                timeout=(timeout, timeout), verify=self.validate_certs, allow_redirects=False, stream=True)
        except requests.exceptions.SSLError as exc:
            raise _Failure(KIND_TLS, 'TLS error: %s' % _reason(exc), False) from None
        except requests.exceptions.ConnectTimeout:
            raise _Failure(KIND_TIMEOUT, 'no connection within %gs' % timeout, True) from None
        except requests.exceptions.ReadTimeout:
            raise _Failure(KIND_TIMEOUT, 'no answer within %gs' % timeout, idempotent) from None
        except requests.exceptions.ConnectionError as exc:
            text = _reason(exc)
            # A dropped connection after the request was sent may have been processed.
            sent = any(word in text.lower() for word in ('aborted', 'reset by peer', 'remote end closed'))
            raise _Failure(KIND_UNREACHABLE, 'could not connect: %s' % text, idempotent or not sent) from None
        except (requests.exceptions.RequestException, ValueError) as exc:
            raise _Failure(KIND_API, 'request failed: %s' % _reason(exc), False) from None
        except Exception as exc:  # never let an odd failure carry the request (and its header) out
            raise _Failure(KIND_API, 'request failed: %s: %s' % (type(exc).__name__, _reason(exc)), False) from None
        try:
            try:
                body = self._read_body(response, deadline)
            except requests.exceptions.RequestException as exc:
                text = _reason(exc)
                if 'timed out' in text.lower():
                    raise _Failure(KIND_TIMEOUT, 'the answer was not complete within %gs' % timeout,
                                   idempotent) from None
                raise _Failure(KIND_UNREACHABLE, 'the connection dropped while reading the answer: %s' % text,
                               idempotent) from None
            except _Failure:
                raise
            except Exception as exc:  # pragma: no cover - requests wraps what it raises while reading
                raise _Failure(KIND_API, 'reading the answer failed: %s: %s' % (type(exc).__name__, _reason(exc)),
                               False) from None
            return response.status_code, dict((k.lower(), v) for k, v in response.headers.items()), body
        finally:
            response.close()

    # ----------------------------------------------------------------- a call

    def request(self, method, path, params=None, data=None, idempotency_key=None):
        """Call ``method path`` (path starts with ``/v1/``); return the JSON object of a 2xx answer.

        ``params`` go in the query string (Stripe's encoding, see
        ``encode_params``), ``data`` in a form body. Raises StripeError.
        """
        method = method.upper()
        url = self.api_url + path
        where = '%s %s' % (method, path)
        pairs = encode_params(params)
        body_pairs = encode_params(data) if data else None
        headers = {'Accept': 'application/json', 'Stripe-Version': self.api_version, 'User-Agent': USER_AGENT}
        if idempotency_key:
            headers['Idempotency-Key'] = idempotency_key
        idempotent = method in ('GET', 'HEAD', 'DELETE') or bool(idempotency_key)
        started = self._clock()
        deadline = started + self.max_time
        self.last = dict(method=method, path=path, status=None, attempts=0, latency_ms=None, elapsed_ms=None,
                         waits=[], request_id=None)
        attempt = 0
        while True:
            attempt += 1
            self.last['attempts'] = attempt
            timeout = min(self.timeout, max(deadline - self._clock(), 0.001))
            t0 = self._clock()
            status = None
            resp_headers = {}
            try:
                status, resp_headers, raw = self._attempt(method, url, pairs, body_pairs, headers, timeout,
                                                          idempotent)
            except _Failure as failure:
                err = StripeError(failure.kind, message=self.clean(failure.message), attempts=attempt,
                                  where=self.clean('%s (%s)' % (where, safe_url(self.api_url))))
                retryable = failure.retryable
            finally:
                now = self._clock()
                self.last['latency_ms'] = round((now - t0) * 1000.0, 3)
                self.last['elapsed_ms'] = round((now - started) * 1000.0, 3)
            if status is not None:
                self.last['status'] = status
                self.last['request_id'] = resp_headers.get('request-id')
                body = _decode(raw)
                if 200 <= status <= 299:
                    if not isinstance(body, dict):
                        raise StripeError(
                            KIND_SERVER, status=status, attempts=attempt, where=where,
                            message='the answer is not a JSON object (is api_url %s the Stripe API?)'
                            % self.clean(safe_url(self.api_url)))
                    return body
                err = self._http_error(where, status, body, resp_headers, attempt)
                retryable = is_retryable_status(status, resp_headers.get('stripe-should-retry'))
            if not retryable or attempt >= self.max_attempts:
                raise err
            delay, asked = plan_wait(attempt, resp_headers.get('retry-after') if status else None,
                                     self.max_retry_after, rand=self._rand)
            if delay is None:
                err.message += ('; Stripe asked to retry after %.0fs (Retry-After), more than the %gs this '
                                'module waits: not retried' % (asked, self.max_retry_after))
                raise StripeError(err.kind, err.status, err.message, err.code, err.error_type, err.param,
                                  attempt, err.request_id, where=where)
            if self._clock() + delay + min(self.timeout, 1.0) > deadline:
                err.message += ('; no time left for another attempt within the %gs bound of one call'
                                % self.max_time)
                raise StripeError(err.kind, err.status, err.message, err.code, err.error_type, err.param,
                                  attempt, err.request_id, where=err.where)
            self.last['waits'].append(round(delay, 3))
            self._sleep(delay)

    def _http_error(self, where, status, body, headers, attempts):
        detail = parse_error_body(body)
        kind = kind_for_status(status)
        message = detail['message'] or 'HTTP %s' % status
        if detail['param']:
            message += ' (param %s)' % detail['param']
        if 300 <= status <= 399:
            message += ' (a redirect to %s, not followed: set api_url to the API itself)' % safe_url(
                headers.get('location') or '?')
        if detail['message'] is None and not isinstance(body, dict) and status < 500:
            message += ' with a body that is not a Stripe error (is api_url the Stripe API?)'
        return StripeError(kind, status=status, message=self.clean(message), code=self.clean(detail['code'] or '')
                           or None, error_type=detail['type'], param=detail['param'], attempts=attempts,
                           request_id=headers.get('request-id'), where=where)

    def get(self, path, params=None):
        return self.request('GET', path, params=params)

    def list_all(self, path, params=None, max_items=PAGE_LIMIT):
        """Every item of a Stripe list, paging with ``starting_after``, at most ``max_items``.

        Returns a ``StripeList`` (a list) whose ``truncated`` is True when
        Stripe has more than ``max_items`` (or a page ended the paging early)
        and ``pages`` counts the calls made.
        """
        max_items = max(1, int(max_items))
        items = StripeList()
        query = dict(params or {})
        while True:
            query['limit'] = min(PAGE_LIMIT, max_items - len(items))
            page = self.get(path, query)
            items.pages += 1
            data = page.get('data')
            if not isinstance(data, list):
                raise StripeError(KIND_SERVER, status=self.last.get('status'), where='GET %s' % path,
                                  message='the answer is not a Stripe list (no "data" array)')
            items.extend(data)
            has_more = bool(page.get('has_more'))
            if len(items) >= max_items:
                items.truncated = has_more or len(items) > max_items
                del items[max_items:]
                return items
            if not has_more:
                return items
            last_id = data[-1].get('id') if data and isinstance(data[-1], dict) else None
            if not last_id:  # has_more with nothing to page from: stop rather than loop
                items.truncated = True
                return items
            query['starting_after'] = last_id


def _decode(raw):
    if not raw:
        return None
    text = raw.decode('utf-8', 'replace')
    try:
        return json.loads(text)
    except ValueError:
        return text


# --------------------------------------------------------------------------- module plumbing


def stripe_argument_spec():
    """The connection options every stripe_* module accepts (a fresh dict)."""
    return dict(
        api_key=dict(type='str', required=True, no_log=True, fallback=(env_fallback, ['STRIPE_API_KEY'])),
        api_url=dict(type='str', default=DEFAULT_API_URL),
        timeout=dict(type='float', default=DEFAULT_TIMEOUT),
        validate_certs=dict(type='bool', default=True),
    )


def is_loopback(host):
    host = (host or '').strip('[]').lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url_option(url, option, allow_http_loopback=True):
    """None if ``url`` is a usable base URL for ``option``, else a message naming the option."""
    error = check_base_url(url, option)
    if error:
        return error
    parts = urlsplit(url)
    if parts.scheme.lower() == 'http' and not (allow_http_loopback and is_loopback(parts.hostname)):
        return ('%s must use https:// (the API key would travel in clear text); plain http:// is accepted only '
                'for a loopback test server, got %s' % (option, safe_url(url)))
    return None


def check_params(params):
    """Messages for invalid connection options (an empty list when all are fine)."""
    errors = []
    error = check_key(params.get('api_key'))
    if error:
        errors.append(error)
    error = check_url_option(params.get('api_url'), 'api_url')
    if error:
        errors.append(error)
    timeout = params.get('timeout')
    if timeout is None or not (0 < timeout <= MAX_TIMEOUT) or math.isnan(timeout):
        errors.append('timeout must be more than 0 and at most %g seconds, got %s' % (MAX_TIMEOUT, timeout))
    return errors


def check_window_hours(window_hours):
    """The message for an invalid ``window_hours`` option (hours back to look for undelivered events), or None."""
    if window_hours is None or not 1 <= window_hours <= MAX_WINDOW_HOURS:
        return ('window_hours must be 1 to %d (Stripe keeps the delivery state of events for 30 days), got %s'
                % (MAX_WINDOW_HOURS, window_hours))
    return None


def list_failed_events(client, since, max_items, before=None):
    """The events created from ``since`` (and before ``before``) that Stripe failed to deliver to at least one
    endpoint (``GET /v1/events?delivery_success=false``), a StripeList (``truncated`` past ``max_items``)."""
    created = {'gte': int(since)}
    if before is not None:
        created['lt'] = int(before)
    return client.list_all('/v1/events', {'delivery_success': False, 'created': created}, max_items=max_items)


def client_from_params(params, **kwargs):
    return StripeClient(params['api_key'], api_url=params['api_url'], timeout=params['timeout'],
                        validate_certs=params['validate_certs'], **kwargs)


# --------------------------------------------------------------------------- Stripe status (best effort)


def fetch_status(url, timeout, validate_certs=True, session=None, clock=time.monotonic):
    """Best-effort read of Stripe's status summary (what the Stripe CLI reads; no documented API).

    No API key is sent. Returns ``dict(url, reachable, largestatus, message,
    statuses, time, error)``; never raises.
    """
    out = dict(url=safe_url(url), reachable=False, largestatus=None, message=None, statuses=None, time=None,
               error=None)
    timeout = min(float(timeout), STATUS_TIMEOUT_CAP)
    started = clock()
    try:
        sess = session or requests.Session()
        response = sess.get(url, timeout=(timeout, timeout), verify=validate_certs, stream=True,
                            headers={'Accept': 'application/json', 'User-Agent': USER_AGENT})
        try:
            chunks = []
            size = 0
            for chunk in response.iter_content(CHUNK_BYTES):
                chunks.append(chunk)
                size += len(chunk)
                if size > STATUS_MAX_BODY_BYTES or clock() - started > timeout:
                    raise ValueError('answer too large or too slow')
            out['reachable'] = True
            status = response.status_code
        finally:
            response.close()
        if status != 200:
            out['error'] = 'HTTP %s' % status
            return out
        body = json.loads(b''.join(chunks).decode('utf-8', 'replace'))
        if not isinstance(body, dict) or 'largestatus' not in body:
            out['error'] = 'the answer has no largestatus field'
            return out
        out['largestatus'] = _short(body.get('largestatus'), 40)
        out['message'] = _short(body['message']) if body.get('message') else None
        if isinstance(body.get('statuses'), dict):
            out['statuses'] = dict((str(k), _short(v, 40)) for k, v in body['statuses'].items())
        out['time'] = _short(body['time'], 60) if body.get('time') else None
    except requests.exceptions.RequestException as exc:
        out['error'] = _reason(exc)
    except ValueError as exc:
        out['error'] = 'unusable answer: %s' % _short(exc, 120)
    return out


# --------------------------------------------------------------------------- webhook endpoints (pure)

_DEFAULT_PORTS = {'http': 80, 'https': 443}


def normalize_url(url):
    """A URL for comparison: scheme and host lower-case, default port and trailing slash dropped."""
    try:
        parts = urlsplit((url or '').strip())
        port = parts.port
    except ValueError:
        return (url or '').strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or '').lower()
    if ':' in host:
        host = '[%s]' % host
    if port and _DEFAULT_PORTS.get(scheme) != port:
        host = '%s:%d' % (host, port)
    return urlunsplit((scheme, host, parts.path.rstrip('/'), parts.query, ''))


def endpoint_summary(endpoint):
    """The fields of a webhook_endpoint object an operator needs (never its secret)."""
    return dict(id=endpoint.get('id'), url=endpoint.get('url'), status=endpoint.get('status'),
                enabled_events=list(endpoint.get('enabled_events') or []),
                api_version=endpoint.get('api_version'), description=endpoint.get('description'),
                livemode=endpoint.get('livemode'), created=iso_utc(endpoint.get('created')))


def endpoint_findings(endpoints, endpoint_url=None, truncated=False):
    """What the account's webhook endpoints say about ours (pure).

    ``endpoints`` are webhook_endpoint objects (GET /v1/webhook_endpoints).
    Returns ``dict(endpoints, endpoints_total, endpoint_found,
    endpoint_enabled, problems)``: ``endpoints`` are the ones for
    ``endpoint_url`` (all of them when it is not given).
    """
    all_eps = [endpoint_summary(e) for e in endpoints if isinstance(e, dict)]
    problems = []
    result = dict(endpoints_total=len(all_eps), endpoint_found=None, endpoint_enabled=None)
    if endpoint_url:
        wanted = normalize_url(endpoint_url)
        mine = [e for e in all_eps if normalize_url(e['url']) == wanted]
        result['endpoint_found'] = bool(mine)
        enabled = [e for e in mine if e['status'] == 'enabled']
        result['endpoint_enabled'] = bool(enabled) if mine else None
        if not mine:
            others = ', '.join('%s (%s)' % (e['url'], e['status']) for e in all_eps[:5]) or 'none'
            problems.append(
                'No Stripe webhook endpoint points at our URL %s%s: Stripe sends our service no events at all. '
                'Endpoints in the account: %s. Create or correct the endpoint (same URL, the events we handle), '
                'then replay the events created since it went missing.'
                % (safe_url(endpoint_url), ' among the first %d read' % len(all_eps) if truncated else '', others))
        elif not enabled:
            for e in mine:
                problems.append(
                    'Webhook endpoint %s (%s) is disabled: it receives nothing, and Stripe does not queue or '
                    'retry events for a disabled endpoint - the events during the gap need a replay after it '
                    'is re-enabled.' % (e['id'], e['url']))
        elif len(enabled) > 1:
            problems.append(
                '%d enabled webhook endpoints (%s) point at our URL: every event is delivered %d times; '
                'handlers must be idempotent, or remove the duplicates.'
                % (len(enabled), ', '.join(e['id'] for e in enabled), len(enabled)))
        result['endpoints'] = mine
    else:
        result['endpoints'] = all_eps
        for e in all_eps:
            if e['status'] == 'disabled':
                problems.append(
                    'Webhook endpoint %s (%s) is disabled: it receives nothing, and events during the gap '
                    'need a replay after it is re-enabled.' % (e['id'], e['url']))
    result['problems'] = problems
    return result


# --------------------------------------------------------------------------- failed events (pure)


def iso_utc(ts):
    """ISO 8601 UTC text of a Unix timestamp (None when it is not a number)."""
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def event_age(event, now):
    """``(age_hours, hours_left)`` of an event object; hours_left is the time before Stripe stops retrying."""
    created = event.get('created')
    if isinstance(created, bool) or not isinstance(created, (int, float)):
        return None, None
    age = max(0.0, (now - created) / 3600.0)
    return age, max(0.0, STRIPE_RETRY_HOURS - age)


def failed_event_findings(events, now, window_hours, truncated=False, max_events=None,
                          warn_hours=EXPIRY_WARNING_HOURS, top=10):
    """Counts and deadlines of undelivered events (pure).

    ``events`` are event objects from ``GET /v1/events?delivery_success=false``
    (each not yet delivered to at least one endpoint: still being retried, or
    given up). Returns ``failed_events``, ``failed_events_by_type``,
    ``oldest_failed_age_hours``, ``pending_webhooks`` (sum over the events),
    ``expiring_soon`` (within ``warn_hours`` of Stripe's 72 h limit),
    ``retries_exhausted`` (older than 72 h), ``closest_to_expiry`` (up to
    ``top`` events, oldest first) and ``problems``.
    """
    seen = set()
    rows = []
    for ev in events:
        if not isinstance(ev, dict) or ev.get('id') in seen:
            continue
        seen.add(ev.get('id'))
        age, left = event_age(ev, now)
        pending = ev.get('pending_webhooks')
        rows.append(dict(id=ev.get('id'), type=ev.get('type') or 'unknown', created=iso_utc(ev.get('created')),
                         age_hours=None if age is None else round(age, 1),
                         hours_left=None if left is None else round(left, 1),
                         pending_webhooks=pending if isinstance(pending, int) and not isinstance(pending, bool)
                         else None, _age=age if age is not None else -1.0))
    by_type = {}
    for row in rows:
        by_type[row['type']] = by_type.get(row['type'], 0) + 1
    rows.sort(key=lambda r: -r['_age'])
    aged = [r for r in rows if r['_age'] >= 0]
    exhausted = [r for r in aged if r['_age'] >= STRIPE_RETRY_HOURS]
    soon = [r for r in aged if STRIPE_RETRY_HOURS - warn_hours <= r['_age'] < STRIPE_RETRY_HOURS]
    pending_total = sum(r['pending_webhooks'] or 0 for r in rows)
    closest = [r for r in aged if r['_age'] < STRIPE_RETRY_HOURS][:top]
    for row in rows:
        del row['_age']
    result = dict(failed_events=len(rows), failed_events_by_type=by_type,
                  oldest_failed_age_hours=aged[0]['age_hours'] if aged else None,
                  pending_webhooks=pending_total, expiring_soon=len(soon), retries_exhausted=len(exhausted),
                  closest_to_expiry=closest, events_truncated=bool(truncated))
    problems = []
    if rows:
        types = ', '.join('%s %d' % (t, n) for t, n in sorted(by_type.items(), key=lambda i: (-i[1], i[0]))[:8])
        problems.append(
            '%s%d event%s of the last %g h %s not delivered to at least one webhook endpoint (%s; deliveries still '
            'owed to endpoints, pending_webhooks: %d). Stripe retries each for up to 72 h after it was created; fix '
            'the endpoint, then replay whatever Stripe will not deliver in time.'
            % ('At least ' if truncated else '', len(rows), '' if len(rows) == 1 else 's', window_hours,
               'was' if len(rows) == 1 else 'were', types, pending_total))
    if soon:
        first = soon[0]
        problems.append(
            '%d failed event%s %s within %g h of Stripe giving up (72 h after creation; closest %s %s, %.1f h '
            'left): replay %s now, or our service never receives %s.'
            % (len(soon), '' if len(soon) == 1 else 's', 'is' if len(soon) == 1 else 'are', warn_hours,
               first['id'], first['type'], first['hours_left'], 'it' if len(soon) == 1 else 'them',
               'it' if len(soon) == 1 else 'them'))
    if exhausted:
        problems.append(
            '%d failed event%s %s older than 72 h: Stripe no longer retries %s; only a replay delivers %s '
            '(oldest %s, %.1f h old).'
            % (len(exhausted), '' if len(exhausted) == 1 else 's', 'is' if len(exhausted) == 1 else 'are',
               'it' if len(exhausted) == 1 else 'them', 'it' if len(exhausted) == 1 else 'them',
               exhausted[0]['id'], exhausted[0]['age_hours']))
    if truncated:
        problems.append(
            'Read only %s failed events (max_events): the counts are a lower bound; raise max_events for the '
            'full picture.' % (max_events if max_events is not None else len(rows)))
    result['problems'] = problems
    return result


# --------------------------------------------------------------------------- account / key (pure)


def key_status_from_error(err):
    """``valid`` is for a 2xx; an error gives ``revoked``, ``invalid``, ``restricted`` or ``unknown``."""
    if err.kind == KIND_INVALID_KEY:
        return 'revoked' if err.code in ('api_key_expired',) else 'invalid'
    if err.kind == KIND_PERMISSION:
        return 'restricted'
    return 'unknown'


def error_problem(err, hint, doing):
    """The sentence an on-call engineer reads for a failed call made while ``doing`` (e.g. 'listing events')."""
    status = 'HTTP %s%s' % (err.status, ' %s' % err.code if err.code else '') if err.status else err.kind
    if err.kind == KIND_INVALID_KEY and err.code == 'api_key_expired':
        return ('Stripe says the API key %s is expired or revoked (%s) while %s: every call made with it fails. '
                'Roll a new secret key in the Stripe Dashboard and store it where the service and this runbook '
                'read it.' % (hint, status, doing))
    if err.kind == KIND_INVALID_KEY:
        return ('Stripe rejects the API key %s (%s) while %s: it is mistyped, from another account or mode, or '
                'was rolled. Use the current secret key of the right account.' % (hint, status, doing))
    if err.kind == KIND_PERMISSION:
        return ('The key %s has no permission for %s (%s; a restricted key?): grant the permission in the '
                'Stripe Dashboard or use a key that has it.' % (hint, doing, status))
    if err.kind == KIND_RATE_LIMITED:
        return ('Stripe rate limits this account (%s) while %s: %s. Look for a runaway client and retry later.'
                % (status, doing, err.message))
    if err.kind == KIND_SERVER:
        return ('The Stripe API failed (%s) while %s: %s. Check status.stripe.com; if Stripe is fine, api_url '
                'may not point at the Stripe API.' % (status, doing, err.message))
    if err.kind in NOT_REACHED_KINDS:
        return ('Could not reach the Stripe API while %s: %s. Check DNS, proxy and firewall from this host and '
                'status.stripe.com; a service on the same network path cannot reach Stripe either.'
                % (doing, err.describe()))
    return 'The Stripe API refused %s: %s' % (doing, err.describe())
