# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""One HTTP JSON client for every notifier (PagerDuty, Slack, Statuspage, ticket webhook).

``NotifyClient.send_json`` sends one JSON request through ansible's ``Request``
with ONE TLS context per client (``http_probe.shared_context_opener``), so a
module that makes several calls (find the incident, then escalate it) loads
the CA bundle once. Every attempt has ``timeout``; the whole call is bounded
by ``max_attempts`` attempts and the waits between them.

Retries, in one place (``plan_retry``):

- HTTP 429 (and Statuspage's historical 420) and 5xx are retried. A
  ``Retry-After`` header (seconds or an HTTP date) is honoured when it is at
  most ``max_retry_after`` seconds; a longer one fails at once with a message
  that says so, instead of holding an incident run hostage. Without the header
  the wait is full-jitter exponential backoff (``aws.backoff_delay``: at most
  0.5 s, 1 s, 2 s, ... capped at 8 s).
- Connection errors (refused, DNS, TLS handshake timeout): the request never
  reached the service, so they are retried with backoff. A timeout or a
  dropped connection *after* the request was sent is retried only when the
  caller says the request is idempotent (PagerDuty events carry a dedup_key;
  GET/PUT/PATCH are idempotent; a Slack post is not), so a slow Slack never
  gets the same message twice.
- Anything else (401, 403, 404, 400, 422, a TLS certificate failure) is final.

Failures raise ``NotifyError(service, message, status, hint)``; the module
boundary turns it into ``fail_json`` (``fail_notify``). Messages name the
service, the method and the URL without its query string, and never contain a
token: every value passed as ``secrets`` is replaced by ``********``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import email.utils
import json
import math
import socket
import ssl
import time

from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError

from ansible_collections.svpms.incident_response.plugins.module_utils.http_probe import (
    is_timeout,
    is_tls,
    shared_context_opener,
    validate_url,
)

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_MAX_RETRY_AFTER = 30.0
MAX_TIMEOUT = 300.0
MAX_ATTEMPTS_LIMIT = 10
MAX_BODY_BYTES = 1024 * 1024
CHUNK_BYTES = 16 * 1024
DETAIL_CHARS = 300
MASK = '********'
USER_AGENT = 'svpms-incident-response-notify/1.0'

# HTTP statuses worth another attempt. 420 is what Statuspage's API used to
# answer when rate limiting ("Enhance your calm"); 429 everywhere else.
RATE_LIMIT_STATUSES = frozenset([420, 429])

KIND_AUTH = 'auth'
KIND_NOT_FOUND = 'not_found'
KIND_RATE_LIMITED = 'rate_limited'
KIND_SERVER = 'server_error'
KIND_REJECTED = 'rejected'
KIND_UNREACHABLE = 'unreachable'
KIND_TIMEOUT = 'timeout'
KIND_TLS = 'tls'
KIND_API = 'api_error'

RETRY = 'retry'
GIVE_UP = 'give_up'
TOO_LONG = 'too_long'


class NotifyError(Exception):
    """A failed notification, with what an on-call engineer should do about it."""

    def __init__(self, service, message, status=None, hint=None, attempts=1, kind=KIND_API):
        self.service = service
        self.message = message
        self.status = status
        self.hint = hint
        self.attempts = attempts
        self.kind = kind
        super(NotifyError, self).__init__(self.describe())

    def describe(self):
        text = '%s: %s' % (self.service, self.message)
        if self.attempts > 1:
            text += ' [after %d attempts]' % self.attempts
        if self.hint:
            text += '. %s' % self.hint
        return text

    def to_result(self):
        return dict(service=self.service, http_status=self.status, error_kind=self.kind,
                    attempts=self.attempts)


# --------------------------------------------------------------------------- pure helpers


def is_retryable_status(status):
    """True for HTTP statuses worth another attempt: rate limits and 5xx."""
    return status in RATE_LIMIT_STATUSES or (status is not None and 500 <= status <= 599)


def parse_retry_after(value, now=None):
    """Seconds to wait from a ``Retry-After`` value, or None when absent/unparseable.

    Accepts delta-seconds (``"120"``, leniently ``"1.5"``) and an HTTP date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``); a date in the past means 0.
    ``now`` is a POSIX timestamp (for tests); default: the current time.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds):
            return None
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _backoff(attempt):
    # Imported here: module_utils.aws imports boto3 (~0.3 s), which only the rare
    # retry path needs; the full-jitter formula stays in one place.
    from ansible_collections.svpms.incident_response.plugins.module_utils.aws import backoff_delay
    return backoff_delay(attempt)


def plan_retry(status, retry_after, attempt, max_attempts, max_retry_after=DEFAULT_MAX_RETRY_AFTER,
               now=None, backoff=_backoff):
    """Decide what to do after attempt number ``attempt`` (1-based) failed.

    ``status`` is the HTTP status, or None for a connection error that the
    caller already judged safe to retry. ``retry_after`` is the raw header
    value (or None). Returns ``(action, delay_seconds)``:

    - ``('give_up', None)``: not retryable (a 4xx other than 429/420), or no
      attempts left;
    - ``('too_long', seconds)``: the service asked to wait longer than
      ``max_retry_after``; do not wait, fail and say so;
    - ``('retry', seconds)``: wait that long, then try again - the
      Retry-After value when the service sent one, else full-jitter backoff.
    """
    if status is not None and not is_retryable_status(status):
        return GIVE_UP, None
    if attempt >= max_attempts:
        return GIVE_UP, None
    wait = parse_retry_after(retry_after, now=now) if status is not None else None
    if wait is not None:
        if wait > max_retry_after:
            return TOO_LONG, wait
        return RETRY, wait
    return RETRY, backoff(attempt - 1)


def safe_url(url):
    """The URL without credentials, query string or fragment (they may carry tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return '<invalid URL>'
    netloc = parts.netloc.rsplit('@', 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, '', ''))


def join_url(base, *segments):
    """``base`` plus path segments, each percent-encoded (an id never changes the path)."""
    path = '/'.join(quote(str(s), safe='') for s in segments)
    return base.rstrip('/') + '/' + path


def urlencode_pairs(pairs):
    """A query string from (name, value) pairs, in order (names such as ``statuses[]`` repeat)."""
    return urlencode([(str(k), str(v)) for k, v in pairs])


def check_base_url(url, option):
    """None if ``url`` (the value of ``option``) is a usable http(s) base URL, else an error."""
    error = validate_url(url)
    if error:
        return '%s: %s' % (option, error)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return '%s must be a base URL without a query string or fragment, got %s' % (option, safe_url(url))
    return None


def redact(text, secrets):
    """``text`` with every non-empty secret value replaced by ``********``."""
    text = '' if text is None else str(text)
    for secret in sorted((s for s in secrets or () if s), key=len, reverse=True):
        text = text.replace(str(secret), MASK)
    return text


def _short(text, limit=DETAIL_CHARS):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def error_detail(body):
    """A short human text from an API error body (PagerDuty, Slack, Statuspage or plain text)."""
    if body is None or body == '':
        return ''
    if isinstance(body, dict):
        parts = []
        error = body.get('error')
        if isinstance(error, dict):
            parts.append(error.get('message') or '')
            parts.extend(str(e) for e in error.get('errors') or [])
            if error.get('code') is not None:
                parts.append('code %s' % error['code'])
        elif isinstance(error, list):
            parts.extend(str(e) for e in error)
        elif error:
            parts.append(str(error))
        if body.get('message'):
            parts.insert(0, str(body['message']))
        parts.extend(str(e) for e in body.get('errors') or [] if isinstance(body.get('errors'), list))
        text = '; '.join(p for p in parts if p)
        return _short(text or json.dumps(body, sort_keys=True))
    return _short(body)


def _decode(raw, content_type):
    text = raw.decode('utf-8', 'replace')
    if not text.strip():
        return None
    if 'json' in (content_type or '').lower() or text.lstrip()[:1] in ('{', '['):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _headers_dict(headers):
    if headers is None:
        return {}
    try:
        items = headers.items()
    except AttributeError:
        return {}
    return dict((str(k).lower(), str(v)) for k, v in items)


# --------------------------------------------------------------------------- the client


class NotifyClient(object):
    """HTTP JSON client for one notification service, with one TLS context.

    ``service`` names the service in errors ("PagerDuty Events API").
    ``token_hint`` says which option/env var holds the credential (for 401/403),
    ``id_hint`` which options identify the target (for 404). ``secrets`` are
    values that must never appear in an error message.
    """

    def __init__(self, service, timeout=DEFAULT_TIMEOUT, max_attempts=DEFAULT_MAX_ATTEMPTS,
                 validate_certs=True, max_retry_after=DEFAULT_MAX_RETRY_AFTER, token_hint=None,
                 id_hint=None, secrets=None, sleep=time.sleep, opener=None, clock=time.monotonic):
        self.service = service
        self.timeout = float(timeout)
        self.max_attempts = max(1, int(max_attempts))
        self.validate_certs = validate_certs
        self.max_retry_after = float(max_retry_after)
        self.token_hint = token_hint
        self.id_hint = id_hint
        self.secrets = [s for s in (secrets or []) if s]
        self._sleep = sleep
        self._clock = clock
        self._opener = opener
        self.requests_sent = 0

    @property
    def opener(self):
        if self._opener is None:  # built on first use: no TLS work for a module that sends nothing
            self._opener = shared_context_opener(self.validate_certs)
        return self._opener

    def _error(self, message, status=None, hint=None, attempts=1, kind=KIND_API):
        return NotifyError(self.service, redact(message, self.secrets), status=status,
                           hint=redact(hint, self.secrets) if hint else None, attempts=attempts, kind=kind)

    def _read(self, response, deadline):
        chunks = []
        size = 0
        while size < MAX_BODY_BYTES:
            if self._clock() > deadline:
                raise socket.timeout('body not complete within %gs' % self.timeout)
            chunk = response.read(CHUNK_BYTES)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b''.join(chunks)

    def _attempt(self, method, url, data, headers):
        """One request. -> ('http', status, body, headers) or ('conn', sent, exc)."""
        started = self._clock()
        self.requests_sent += 1
        try:
            response = self.opener(url, method=method, data=data, headers=headers, timeout=self.timeout,
                                   validate_certs=self.validate_certs, follow_redirects='none',
                                   http_agent=USER_AGENT, use_netrc=False, force=True)
            try:
                raw = self._read(response, started + self.timeout)
                resp_headers = _headers_dict(getattr(response, 'headers', None))
                status = int(response.getcode())
            finally:
                response.close()
            return 'http', status, _decode(raw, resp_headers.get('content-type')), resp_headers
        except HTTPError as exc:
            resp_headers = _headers_dict(exc.headers)
            try:
                raw = exc.read() if exc.fp is not None else b''
            except Exception:  # an error body we cannot read is still an HTTP answer
                raw = b''
            finally:
                try:
                    exc.close()
                except Exception:  # pragma: no cover - best effort
                    pass
            return 'http', int(exc.code), _decode(raw[:MAX_BODY_BYTES], resp_headers.get('content-type')), resp_headers
        except URLError as exc:
            # urllib wraps errors raised while connecting/sending: the service never got the request
            return 'conn', False, exc
        except (socket.timeout, TimeoutError, HTTPException, UrlsConnectionError, ssl.SSLError,
                ssl.CertificateError, OSError, ValueError) as exc:
            # raised while waiting for/reading the answer: the request may have been processed
            return 'conn', not isinstance(exc, (UrlsConnectionError, ssl.SSLError, ssl.CertificateError)), exc

    def _http_failure(self, method, url, status, body, attempts, retry_after=None, too_long=None,
                      location=None):
        where = '%s %s' % (method, safe_url(url))
        detail = error_detail(body)
        text = '%s answered HTTP %d' % (where, status)
        if detail:
            text += ': %s' % detail
        if too_long is not None:
            return self._error(
                '%s and asked to retry after %.0fs (Retry-After: %s), more than max_retry_after=%gs: '
                'not waiting' % (text, too_long, retry_after, self.max_retry_after), status=status,
                hint='rate limited: the service throttles this token; retry later or raise max_retry_after',
                attempts=attempts, kind=KIND_RATE_LIMITED)
        if status in RATE_LIMIT_STATUSES:
            return self._error(text, status=status, attempts=attempts, kind=KIND_RATE_LIMITED,
                               hint='rate limited: still throttled after %d attempts; retry later' % attempts)
        if status in (401, 403):
            return self._error(text, status=status, attempts=attempts, kind=KIND_AUTH,
                               hint='check the token%s and its permissions'
                               % (' (%s)' % self.token_hint if self.token_hint else ''))
        if status == 404:
            return self._error(text, status=status, attempts=attempts, kind=KIND_NOT_FOUND,
                               hint='check the id/URL%s' % (' (%s)' % self.id_hint if self.id_hint else ''))
        if 300 <= status <= 399:
            return self._error('%s (a redirect to %s, not followed)' % (text, safe_url(location or '?')),
                               status=status, attempts=attempts, kind=KIND_REJECTED,
                               hint='check the base URL: it should point at the API itself')
        if status >= 500:
            return self._error(text, status=status, attempts=attempts, kind=KIND_SERVER,
                               hint='the service is failing; retry later and check its status page')
        return self._error(text, status=status, attempts=attempts, kind=KIND_REJECTED,
                           hint='the service rejected the request; check the fields named above')

    def _conn_failure(self, method, url, exc, attempts):
        where = '%s %s' % (method, safe_url(url))
        reason = getattr(exc, 'reason', None) or exc
        if is_timeout(exc):
            return self._error('%s: no answer within %gs' % (where, self.timeout), attempts=attempts,
                               kind=KIND_TIMEOUT,
                               hint='check the base URL and the network path to the service, or raise timeout')
        if is_tls(exc):
            return self._error('%s: TLS error: %s' % (where, _short(reason)), attempts=attempts, kind=KIND_TLS,
                               hint='check the certificate chain (validate_certs=false only for a test receiver)')
        return self._error('%s: could not connect: %s' % (where, _short(reason)), attempts=attempts,
                           kind=KIND_UNREACHABLE,
                           hint='check the base URL and that the service is reachable from this host')

    def send_json(self, method, url, payload=None, headers=None, idempotent=None):
        """Send ``payload`` as JSON; return ``(status, body, headers)`` for a 2xx answer.

        ``body`` is the parsed JSON (or the text, or None when empty);
        ``headers`` a dict with lower-case names. Raises NotifyError otherwise.
        ``idempotent`` (default: True except for POST) allows retrying a
        request that may have reached the service (a timeout while waiting).
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method != 'POST'
        send_headers = {'Accept': 'application/json'}
        data = None
        if payload is not None:
            data = json.dumps(payload, sort_keys=True, separators=(',', ':')).encode('utf-8')
            send_headers['Content-Type'] = 'application/json; charset=utf-8'
        send_headers.update(headers or {})
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(method, url, data, send_headers)
            if outcome[0] == 'http':
                status, body, resp_headers = outcome[1:]
                if 200 <= status <= 299:
                    return status, body, resp_headers
                retry_after = resp_headers.get('retry-after')
                action, delay = plan_retry(status, retry_after, attempt, self.max_attempts,
                                           self.max_retry_after)
                if action == RETRY:
                    self._sleep(delay)
                    continue
                raise self._http_failure(method, url, status, body, attempt, retry_after,
                                         too_long=delay if action == TOO_LONG else None,
                                         location=resp_headers.get('location'))
            maybe_sent, exc = outcome[1], outcome[2]
            if (not maybe_sent or idempotent) and not is_tls(exc):
                action, delay = plan_retry(None, None, attempt, self.max_attempts, self.max_retry_after)
                if action == RETRY:
                    self._sleep(delay)
                    continue
            raise self._conn_failure(method, url, exc, attempt)


def send_json(method, url, payload=None, headers=None, timeout=DEFAULT_TIMEOUT,
              max_attempts=DEFAULT_MAX_ATTEMPTS, sleep=time.sleep, service='HTTP endpoint', **kwargs):
    """One-shot form of ``NotifyClient(...).send_json(...)``; see NotifyClient."""
    client = NotifyClient(service, timeout=timeout, max_attempts=max_attempts, sleep=sleep, **kwargs)
    return client.send_json(method, url, payload, headers)


# --------------------------------------------------------------------------- module helpers


def notify_argument_spec():
    """The options every notifier accepts (doc fragment svpms.incident_response.notify)."""
    return dict(
        timeout=dict(type='float', default=DEFAULT_TIMEOUT),
        max_attempts=dict(type='int', default=DEFAULT_MAX_ATTEMPTS),
        validate_certs=dict(type='bool', default=True),
        max_retry_after=dict(type='float', default=DEFAULT_MAX_RETRY_AFTER),
    )


def check_common(module):
    """fail_json on out-of-range shared options."""
    p = module.params
    if not 0 < p['timeout'] <= MAX_TIMEOUT:
        module.fail_json(msg='timeout must be more than 0 and at most %g seconds, got %s' % (MAX_TIMEOUT, p['timeout']))
    if not 1 <= p['max_attempts'] <= MAX_ATTEMPTS_LIMIT:
        module.fail_json(msg='max_attempts must be between 1 and %d, got %s' % (MAX_ATTEMPTS_LIMIT, p['max_attempts']))
    if not 0 <= p['max_retry_after'] <= 3600:
        module.fail_json(msg='max_retry_after must be between 0 and 3600 seconds, got %s' % p['max_retry_after'])


def client_for(module, service, secrets, token_hint=None, id_hint=None):
    """A NotifyClient configured from the shared options."""
    p = module.params
    return NotifyClient(service, timeout=p['timeout'], max_attempts=p['max_attempts'],
                        validate_certs=p['validate_certs'], max_retry_after=p['max_retry_after'],
                        token_hint=token_hint, id_hint=id_hint, secrets=secrets)


def exit_not_configured(module, service, how):
    """Exit (never fail): the notifier has no credentials/URL here."""
    module.exit_json(changed=False, skipped=True,
                     msg='skipped: %s not configured (%s)' % (service, how))


def masked_invocation(module, headers, option='headers', min_scrub_length=6):
    """module_args for ``invocation`` with every header value masked (names kept).

    Header values shorter than ``min_scrub_length`` are also dropped from
    AnsibleModule's no_log list, which masks them as substrings anywhere in
    the output (a value such as "1" would mangle numbers); they never reach
    the output anyway, as the invocation is rebuilt with every value masked.
    """
    values = set(headers.values())
    module.no_log_values.difference_update(
        [v for v in list(module.no_log_values) if v in values and len(v) < min_scrub_length])
    args = dict(module.params)
    args[option] = dict((k, 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER') for k in headers)
    return dict(module_args=args)


def fail_notify(module, err, **result):
    """fail_json with the typed error's message and machine-readable fields."""
    out = err.to_result()
    out.update(result)
    module.fail_json(msg=err.describe(), **out)
