# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Synthetic HTTP probing: N requests, bounded concurrency, per-request timeout.

``probe_once`` sends one request with ``ansible.module_utils.urls.open_url``
(no third-party library) and classifies the outcome as an HTTP status, a
``timeout`` or a ``connection_error``; it never raises for an unhealthy
service. ``run_probes`` sends ``count`` of them through a thread pool of
``concurrency`` workers. ``summarize`` (pure) turns outcomes into the
numbers an operator reads: error rate, nearest-rank latency percentiles of
the requests that got an HTTP answer, status counts, reachability.

Timeouts: ``timeout`` applies to connecting and to every socket read, and
the whole request (headers and body) is also cut off at ``timeout``
seconds: a body still streaming at the deadline counts as a ``timeout``.
The body is read (so latency includes it) but never kept, and at most
``MAX_BODY_BYTES`` are read. Redirects are not followed: a 3xx is reported
as its status. Header values are sent but never returned or logged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import ssl
import time

from concurrent.futures import ThreadPoolExecutor

from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, make_context, open_url

from ansible_collections.svpms.incident_response.plugins.module_utils import slo

KIND_HTTP = 'http'
KIND_TIMEOUT = 'timeout'
KIND_CONNECTION = 'connection_error'
MAX_BODY_BYTES = 1024 * 1024
CHUNK_BYTES = 16 * 1024
MAX_SAMPLE_ERRORS = 5
SAMPLE_ERROR_CHARS = 160
USER_AGENT = 'svpms-incident-response-http-probe/1.0'


def validate_url(url):
    """None if ``url`` is an absolute http(s) URL without credentials, else an error."""
    if not url or not isinstance(url, str):
        return 'url is required'
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return 'url is not a valid URL: %s' % exc
    if parts.scheme.lower() not in ('http', 'https'):
        return 'url must use http:// or https://, got %r' % (parts.scheme + '://' if parts.scheme else url)
    if not parts.hostname:
        return 'url must include a host name, got %r' % url
    if parts.username is not None or parts.password is not None:
        return ('url must not embed credentials (user:password@host); pass them in headers '
                '(e.g. Authorization), whose values are never logged')
    return None


def redact_url(url):
    """``url`` with any ``user:password@`` replaced by ``********@`` (for echoing input back)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if '@' not in parts.netloc:
        return url
    netloc = '********@' + parts.netloc.rsplit('@', 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def safe_url(url):
    """The URL without its query string and fragment (they may carry tokens)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, '', ''))


def _short(text):
    text = ' '.join(str(text).split())
    return text if len(text) <= SAMPLE_ERROR_CHARS else text[:SAMPLE_ERROR_CHARS - 3] + '...'


def is_timeout(exc):
    """True when a urllib/socket error is a timeout (also when wrapped in URLError.reason)."""
    reason = getattr(exc, 'reason', None)
    for candidate in (exc, reason):
        if isinstance(candidate, (socket.timeout, TimeoutError)):
            return True
        if candidate is not None and 'timed out' in str(candidate).lower():
            return True
    return False


def is_tls(exc):
    """True when a urllib error is a TLS/certificate failure."""
    reason = getattr(exc, 'reason', None) or exc
    return isinstance(reason, (ssl.SSLError, ssl.CertificateError)) or 'CERTIFICATE' in str(reason).upper()


def _outcome(kind, status=None, latency_ms=None, error=None):
    return dict(kind=kind, status=status, latency_ms=latency_ms, error=error)


def probe_once(url, method='GET', headers=None, timeout=5.0, validate_certs=True,
               opener=open_url, clock=time.monotonic):
    """Send one request; return ``{kind, status, latency_ms, error}``.

    ``kind`` is ``http`` (``status`` is the HTTP status, ``latency_ms`` the
    time to the end of the body), ``timeout`` or ``connection_error``
    (``status`` and ``latency_ms`` are None). ``error`` is a short text for
    anything that is not a plain 2xx, and never contains header values.
    """
    started = clock()
    deadline = started + timeout
    try:
        response = opener(url, method=method, headers=dict(headers or {}), timeout=timeout,
                          validate_certs=validate_certs, follow_redirects='none',
                          http_agent=USER_AGENT, use_netrc=False, force=True)
        try:
            status = response.getcode()
            read = 0
            if method != 'HEAD':
                while read < MAX_BODY_BYTES:
                    if clock() > deadline:
                        return _outcome(KIND_TIMEOUT, error='timeout: body not complete after %gs'
                                        % timeout)
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    read += len(chunk)
        finally:
            response.close()
        elapsed = clock() - started
        if elapsed > timeout:
            return _outcome(KIND_TIMEOUT, error='timeout: no complete answer within %gs' % timeout)
        return _outcome(KIND_HTTP, status=int(status), latency_ms=round(elapsed * 1000.0, 3))
    except HTTPError as exc:
        elapsed = clock() - started
        try:
            exc.close()
        except Exception:  # pragma: no cover - closing is best effort
            pass
        return _outcome(KIND_HTTP, status=int(exc.code), latency_ms=round(elapsed * 1000.0, 3),
                        error=_short('HTTP %s %s' % (exc.code, exc.reason or '')))
    except (URLError, socket.timeout, TimeoutError, HTTPException, UrlsConnectionError,
            ssl.SSLError, ssl.CertificateError, OSError, ValueError) as exc:
        if is_timeout(exc):
            return _outcome(KIND_TIMEOUT, error='timeout: no answer within %gs' % timeout)
        reason = getattr(exc, 'reason', None) or exc
        prefix = 'TLS error' if isinstance(reason, (ssl.SSLError, ssl.CertificateError)) or \
            'CERTIFICATE' in str(reason).upper() else 'connection error'
        return _outcome(KIND_CONNECTION, error=_short('%s: %s' % (prefix, reason)))
    except Exception as exc:  # never let one odd failure crash the probe
        return _outcome(KIND_CONNECTION, error=_short('%s: %s' % (type(exc).__name__, exc)))


def summarize(outcomes, expected_status=(200,)):
    """Aggregate probe outcomes (pure).

    Returns ``requests, completed, errors, error_rate_pct, latency_p50_ms,
    latency_p95_ms, latency_p99_ms, status_counts, reachable, sample_errors``.
    An error is a status not in ``expected_status``, a timeout or a
    connection error. Latency percentiles (nearest rank) cover the requests
    that got an HTTP answer, whatever the status; None when none did.
    """
    expected = set(int(s) for s in expected_status)
    status_counts = {}
    latencies = []
    samples = []
    errors = 0
    for outcome in outcomes:
        if outcome['kind'] == KIND_HTTP:
            key = str(outcome['status'])
            latencies.append(outcome['latency_ms'])
            failed = outcome['status'] not in expected
        else:
            key = outcome['kind']
            failed = True
        status_counts[key] = status_counts.get(key, 0) + 1
        if failed:
            errors += 1
            if outcome['kind'] == KIND_HTTP:
                text = _short('%s (not in expected_status)'
                              % (outcome.get('error') or 'HTTP %s' % outcome['status']))
            else:
                text = outcome.get('error') or outcome['kind']
            if text not in samples and len(samples) < MAX_SAMPLE_ERRORS:
                samples.append(text)
    requests = len(outcomes)
    rate = slo.error_rate(requests, errors)
    pct = slo.percentiles(latencies, (50, 95, 99))
    return dict(requests=requests, completed=len(latencies), errors=errors,
                error_rate_pct=rate['error_rate_pct'], latency_p50_ms=pct['p50'],
                latency_p95_ms=pct['p95'], latency_p99_ms=pct['p99'],
                status_counts=status_counts, reachable=bool(latencies), sample_errors=samples)


def shared_context_opener(validate_certs=True):
    """An open_url-compatible opener that builds the TLS context once.

    open_url makes a fresh SSLContext (and loads the CA bundle, ~25 ms of CPU
    under the GIL) for every request, which inflates the latency a probe
    measures; one context per probe run keeps the figures honest.
    """
    context = make_context(validate_certs=validate_certs)

    def opener(url, method='GET', **kwargs):
        return Request().open(method, url, context=context, **kwargs)
    return opener


def run_probes(url, count=20, concurrency=4, timeout=5.0, method='GET', headers=None,
               validate_certs=True, expected_status=(200,), opener=None):
    """Send ``count`` requests, at most ``concurrency`` at a time; return ``summarize``'s
    dict plus ``duration_ms`` (wall time of the whole probe)."""
    if opener is None:
        opener = shared_context_opener(validate_certs)
    started = time.monotonic()
    workers = max(1, min(int(concurrency), int(count)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(probe_once, url, method, headers, timeout, validate_certs, opener)
                   for _i in range(int(count))]
        outcomes = [f.result() for f in futures]
    summary = summarize(outcomes, expected_status)
    summary['duration_ms'] = round((time.monotonic() - started) * 1000.0, 3)
    return summary
