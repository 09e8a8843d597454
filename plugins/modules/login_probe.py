#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: login_probe
short_description: Synthetic login probe - sign in as a probe user and measure authentication failures
version_added: 1.0.0
description:
  - Detection step of the authentication failures scenario (scenario 3 of the incident response runbook).
    Signs in O(count) times as a synthetic user, at most O(concurrency) attempts at a time, and reports
    how many attempts failed, at which stage and why.
  - "An attempt is a login - a C(POST) of the JSON object C({<username_field>:<username>, <password_field>:<password>})
    to O(login_url) - and, when O(check_url) is set, a C(GET) of O(check_url) with the issued bearer token."
  - An attempt succeeds when the login answers a status in O(expected_login_status) with a non-empty string token in
    the JSON field O(token_field), and the check (when O(check_url) is set) answers HTTP 200, which proves that the
    issued token is accepted and that the session exists.
  - When O(logout_url) is set, every issued token is then sent in a C(POST) to O(logout_url) to remove the session.
    A failed logout is reported in RV(logout) but does not fail the attempt.
  - A failing or unreachable service is a result, not a module failure - refused connections, timeouts, TLS errors,
    HTTP errors and missing tokens are counted (RV(reachable=false) and RV(error_kind) when nothing answered at all).
    The task fails only on bad input. It always reports C(changed=false).
  - Each request is bounded by O(timeout) (connecting and the whole answer), redirects are never followed (a 3xx is a
    failure reason) and nothing is retried, because a probe measures.
author: SVPMS Platform Team (@svpms)
options:
  login_url:
    description:
      - Absolute V(http://) or V(https://) URL of the login endpoint, for example V(https://api.svpms.example.com/v1/auth/login).
      - Must not embed credentials (C(user:password@)).
    type: str
    required: true
  username:
    description:
      - User name (or e-mail address) of the synthetic probe user.
    type: str
    required: true
  password:
    description:
      - Password of the synthetic probe user. Never returned or logged.
      - When not given, it is read from the environment variable E(SVPMS_LOGIN_PROBE_PASSWORD).
    type: str
    required: true
  username_field:
    description:
      - Name of the JSON field of the login request that holds O(username).
    type: str
    default: email
  password_field:
    description:
      - Name of the JSON field of the login request that holds O(password).
    type: str
    default: password
  token_field:
    description:
      - Name of the top-level field of the login's JSON answer that holds the bearer token.
    type: str
    default: access_token
  check_url:
    description:
      - Absolute V(http://) or V(https://) URL requested with C(GET) and C(Authorization) set to C(Bearer <token>)
        after each successful login, for example V(https://api.svpms.example.com/v1/me).
      - It must answer HTTP 200. Leave it out to test the login alone.
    type: str
  logout_url:
    description:
      - Absolute V(http://) or V(https://) URL that receives a C(POST) with the bearer token after the check, to
        remove the session the probe created. Any 2xx answer counts as a logout.
      - Leave it out to let the probe's sessions expire on their own.
    type: str
  count:
    description:
      - Number of attempts, 1 to 100.
    type: int
    default: 5
  concurrency:
    description:
      - Maximum attempts in flight at once, 1 to 8.
    type: int
    default: 1
  timeout:
    description:
      - Seconds each request (login, check, logout) may take in all, connecting and reading the whole answer,
        more than 0 and at most 60. A request over it counts as a C(timeout).
    type: float
    default: 5
  validate_certs:
    description:
      - Verify the TLS certificates of the endpoints. A failed verification counts as a C(TLS error).
    type: bool
    default: true
  expected_login_status:
    description:
      - HTTP statuses of the login answer that count as a successful login (100 to 599). The answer must
        also hold a token.
    type: list
    elements: int
    default: [200]
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Check mode is supported and the probe still runs, because the probe is the detection. It signs in as the
        synthetic user like any login and changes no configuration; a O(logout_url) removes the session, otherwise
        it expires.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - The password is registered as C(no_log). Prefer the environment variable E(SVPMS_LOGIN_PROBE_PASSWORD) (or a vault
    variable) over a clear-text value in a playbook.
  - The password, the issued tokens and the C(Authorization) header are never returned or logged. Of an error answer
    only the short C(error) string of a JSON body is kept (at most 64 characters of C(A-Z a-z 0-9 _ . -)), never the
    body, and not even that string when it contains the password or a token.
  - RV(token_kids) is read from the header of JWT-shaped tokens only (base64url JSON); the signature is not verified
    and the claims are not decoded.
  - Each attempt signs in once. With a wrong password, every attempt counts towards the lockout policy of the
    synthetic user; keep O(count) small.
  - The probe takes at most about ceil(O(count) / O(concurrency)) * 3 * O(timeout) seconds (login, check and logout
    are each bounded by O(timeout)).
  - The query strings of the URLs are left out of the returned URLs, as they may carry tokens.
seealso:
  - module: svpms.incident_response.http_probe
  - module: svpms.incident_response.jwt_key_info
'''

EXAMPLES = r'''
- name: Can the synthetic user sign in, and is its token accepted?
  svpms.incident_response.login_probe:
    login_url: https://api.svpms.example.com/v1/auth/login
    check_url: https://api.svpms.example.com/v1/me
    logout_url: https://api.svpms.example.com/v1/auth/logout
    username: synthetic-probe@svpms.example.com
    # password from the environment variable SVPMS_LOGIN_PROBE_PASSWORD
  register: login

- name: Show why logins fail
  ansible.builtin.debug:
    msg: "{{ login.failure_reasons }} (token kids {{ login.token_kids }})"
  when: login.failed_attempts > 0

- name: Verify the resolution - every login works again
  ansible.builtin.assert:
    that:
      - login.reachable
      - login.failure_rate_pct == 0

- name: Probe a login form with other field names, a few at a time
  svpms.incident_response.login_probe:
    login_url: https://sso.svpms.example.com/api/login
    username: probe-user
    password: "{{ vault_login_probe_password }}"
    username_field: username
    token_field: token
    expected_login_status: [200, 201]
    count: 20
    concurrency: 4
    timeout: 3
'''

RETURN = r'''
login_url:
  description: The login URL without its query string.
  returned: always
  type: str
  sample: https://api.svpms.example.com/v1/auth/login
check_url:
  description: The check URL without its query string; V(null) when not set.
  returned: always
  type: str
  sample: https://api.svpms.example.com/v1/me
logout_url:
  description: The logout URL without its query string; V(null) when not set.
  returned: always
  type: str
  sample: https://api.svpms.example.com/v1/auth/logout
attempts:
  description: Attempts made (O(count)).
  returned: always
  type: int
  sample: 5
succeeded:
  description: Attempts that signed in (and passed the check).
  returned: always
  type: int
  sample: 2
failed_attempts:
  description:
    - Attempts that did not sign in (or did not pass the check).
    - Named C(failed_attempts) because Ansible reads a C(failed) key of a module result as the task status.
  returned: always
  type: int
  sample: 3
failure_rate_pct:
  description: 100 * failed_attempts / attempts, rounded to 4 decimals.
  returned: always
  type: float
  sample: 60.0
reachable:
  description: V(false) only when no request (login, check or logout) got any HTTP answer.
  returned: always
  type: bool
  sample: true
error_kind:
  description:
    - Why nothing answered when RV(reachable) is V(false) - V(unreachable) (connection refused, DNS or other
      connection error), V(timeout) or V(tls). V(null) when something answered.
  returned: always
  type: str
  sample: null
failure_reasons:
  description:
    - Failed attempts per reason. A reason names the failed stage and what happened, for example
      C(login HTTP 503 session_store_unavailable), C(login HTTP 401), C(login HTTP 302), C(login timeout),
      C(login connection refused), C(login connection error), C(login DNS error), C(login TLS error),
      C(login no token), C(login answer too large), C(check HTTP 401 invalid_token) or C(check timeout).
    - The last word of an HTTP reason is the C(error) string of a JSON error body, when it has a short one.
  returned: always
  type: dict
  sample: {"login HTTP 503 session_store_unavailable": 3}
sample_errors:
  description: Up to 5 failed attempts, one per distinct reason first, in attempt order.
  returned: always
  type: list
  elements: dict
  contains:
    attempt:
      description: Number of the attempt, from 1.
      type: int
    stage:
      description: The failed stage, V(login) or V(check).
      type: str
    reason:
      description: The reason, as in RV(failure_reasons).
      type: str
    status:
      description: HTTP status of the failed request; V(null) when it got no HTTP answer.
      type: int
    latency_ms:
      description: Time the failed request took, until its answer or its error.
      type: float
  sample:
    - {"attempt": 1, "stage": "login", "reason": "login HTTP 503 session_store_unavailable", "status": 503, "latency_ms": 12.4}
latency_p50_ms:
  description: Median duration (nearest rank) of the successful attempts, login plus check; V(null) when none succeeded.
  returned: always
  type: float
  sample: 84.2
latency_p95_ms:
  description: p95 duration (nearest rank) of the successful attempts, login plus check; V(null) when none succeeded.
  returned: always
  type: float
  sample: 131.7
login:
  description: Summary of the login requests.
  returned: always
  type: dict
  contains:
    requests:
      description: Login requests sent.
      type: int
    status_counts:
      description:
        - Requests per outcome - the HTTP status as a string, or V(timeout), V(connection_refused), V(dns_error),
          V(connection_error) or V(tls_error).
      type: dict
    errors:
      description: Login requests that failed the attempt (unexpected status, no answer, no token).
      type: int
    latency_p50_ms:
      description: Median latency of the requests that got an HTTP answer; V(null) when none did.
      type: float
    latency_p95_ms:
      description: p95 latency of the requests that got an HTTP answer; V(null) when none did.
      type: float
  sample: {"requests": 5, "status_counts": {"200": 2, "503": 3}, "errors": 3, "latency_p50_ms": 9.1, "latency_p95_ms": 14.0}
check:
  description: Summary of the check requests, the same keys as RV(login); V(0) requests when O(check_url) is not set.
  returned: always
  type: dict
  sample: {"requests": 2, "status_counts": {"200": 2}, "errors": 0, "latency_p50_ms": 4.2, "latency_p95_ms": 5.0}
logout:
  description:
    - Summary of the logout requests (one per issued token), the same keys as RV(login) plus C(failure_reasons).
    - A failed logout is only noted here; the attempt still counts as succeeded.
  returned: when O(logout_url) is set
  type: dict
  sample: {"requests": 2, "status_counts": {"204": 2}, "errors": 0, "failure_reasons": {}}
token_kids:
  description:
    - Distinct C(kid) values of the JWT headers of the issued tokens, sorted. A token that is not a JWT gives none.
    - A C(kid) names the signing key; it is not secret. Several values show tokens signed with several keys.
  returned: always
  type: list
  elements: str
  sample: [svpms-2026-01]
msg:
  description: One line for the operator.
  returned: always
  type: str
  sample: "login probe: 3 of 5 attempts failed (60.0%): login HTTP 503 session_store_unavailable x3"
'''

import base64  # noqa: E402
import errno  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, env_fallback  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import http_probe, slo  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import webhook_delivery  # noqa: E402

USER_AGENT = 'svpms-incident-response-login-probe/1.0'
MAX_BODY_BYTES = 256 * 1024
CHUNK_BYTES = 16 * 1024
MAX_COUNT = 100
MAX_CONCURRENCY = 8
MAX_TIMEOUT = 60.0
MAX_SAMPLE_ERRORS = 5
MASK = '********'
# A password shorter than this is not registered for Ansible's substring scrubbing of
# the whole output (it would mangle numbers and words); it never reaches the output
# anyway, and the invocation is rebuilt with the password masked.
MIN_SCRUB_LENGTH = 6

ERROR_RE = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')
B64URL_RE = re.compile(r'^[A-Za-z0-9_-]+={0,2}$')
KID_RE = re.compile(r'^[\x21-\x7e]{1,128}$')

KIND_HTTP = webhook_delivery.KIND_HTTP        # 'http'
KIND_TIMEOUT = webhook_delivery.KIND_TIMEOUT  # 'timeout'
KIND_REFUSED = 'connection_refused'
KIND_DNS = 'dns_error'
KIND_CONNECTION = 'connection_error'
KIND_TLS = 'tls_error'

NETWORK_REASONS = {
    KIND_TIMEOUT: 'timeout',
    KIND_REFUSED: 'connection refused',
    KIND_DNS: 'DNS error',
    KIND_CONNECTION: 'connection error',
    KIND_TLS: 'TLS error',
}
ERROR_KINDS = {KIND_TIMEOUT: 'timeout', KIND_TLS: 'tls', KIND_REFUSED: 'unreachable', KIND_DNS: 'unreachable',
               KIND_CONNECTION: 'unreachable'}


# --------------------------------------------------------------------------- pure helpers

def leaks(text, secrets):
    """True when ``text`` contains a secret, or is a piece (8 characters or more) of one."""
    if not text:
        return False
    for secret in secrets:
        if secret and (secret in text or (len(text) >= 8 and text in secret)):
            return True
    return False


json_object = webhook_delivery.json_object  # the JSON object a body holds, or None


def error_code(body, secrets=()):
    """The short ``error`` string of a JSON object body, or None.

    Only a string of at most 64 characters of ``[A-Za-z0-9_.-]`` that holds no
    secret is kept; the rest of the body never is.
    """
    doc = json_object(body)
    if doc is None:
        return None
    code = doc.get('error')
    if not isinstance(code, str) or not ERROR_RE.match(code) or leaks(code, secrets):
        return None
    return code


def extract_token(body, field):
    """The non-empty string in the top-level ``field`` of a JSON object body, or None."""
    doc = json_object(body)
    if doc is None:
        return None
    token = doc.get(field)
    if not isinstance(token, str) or not token.strip():
        return None
    return token


def b64url_decode(text):
    if not B64URL_RE.match(text):
        raise ValueError('not base64url')
    text = text.rstrip('=')
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def token_kid(token, secrets=()):
    """The ``kid`` of a JWT's (JWS or JWE compact) header, or None. Only the header is decoded."""
    if not isinstance(token, str):
        return None
    parts = token.split('.')
    if len(parts) not in (3, 5) or not parts[0]:
        return None
    try:
        header = json.loads(b64url_decode(parts[0]).decode('utf-8'))
    except (ValueError, UnicodeDecodeError, TypeError):
        return None
    if not isinstance(header, dict):
        return None
    kid = header.get('kid')
    if not isinstance(kid, str) or not KID_RE.match(kid) or leaks(kid, list(secrets) + [token]):
        return None
    return kid


def failure_reason(stage, outcome, error=None):
    """``<stage> HTTP <status>[ <error>]`` or ``<stage> <network failure>``."""
    kind = outcome['kind']
    if kind == KIND_HTTP:
        return '%s HTTP %d%s' % (stage, outcome['status'], ' ' + error if error else '')
    return '%s %s' % (stage, NETWORK_REASONS.get(kind, 'connection error'))


def stage_summary(outcomes, failures):
    """``requests, status_counts, errors, latency_p50_ms, latency_p95_ms`` of one stage's outcomes."""
    counts = {}
    latencies = []
    for outcome in outcomes:
        if outcome['kind'] == KIND_HTTP:
            key = str(outcome['status'])
            latencies.append(outcome['latency_ms'])
        else:
            key = outcome['kind']
        counts[key] = counts.get(key, 0) + 1
    pct = slo.percentiles(latencies, (50, 95))
    return dict(requests=len(outcomes), status_counts=counts, errors=failures,
                latency_p50_ms=pct['p50'], latency_p95_ms=pct['p95'])


def summarize(results, logout_used=False):
    """Aggregate attempt results (pure).

    Each result is ``{attempt, ok, stage, reason, status, latency_ms,
    outcomes: {login, check, logout}, kid}`` where ``stage``/``reason``/
    ``status`` describe the failure (None when ok) and ``latency_ms`` is the
    duration of the attempt (login plus check) or of its failed request.
    """
    results = sorted(results, key=lambda r: r['attempt'])
    attempts = len(results)
    ok = [r for r in results if r['ok']]
    bad = [r for r in results if not r['ok']]
    reasons = {}
    for r in bad:
        reasons[r['reason']] = reasons.get(r['reason'], 0) + 1

    samples = []
    seen = set()
    for r in bad:
        if r['reason'] not in seen:
            seen.add(r['reason'])
            samples.append(r)
    for r in bad:
        if r not in samples:
            samples.append(r)
    samples = sorted(samples[:MAX_SAMPLE_ERRORS], key=lambda r: r['attempt'])
    sample_errors = [dict(attempt=r['attempt'], stage=r['stage'], reason=r['reason'], status=r['status'],
                          latency_ms=r['latency_ms']) for r in samples]

    stages = {}
    for stage in ('login', 'check', 'logout'):
        outcomes = [r['outcomes'][stage] for r in results if r['outcomes'].get(stage)]
        failures = [r for r in results if r['outcomes'].get(stage) and r.get('stage_failed', {}).get(stage)]
        stages[stage] = (outcomes, failures)

    everything = [o for outcomes, _f in stages.values() for o in outcomes]
    reachable = any(o['kind'] == KIND_HTTP for o in everything)
    error_kind = None
    if not reachable and everything:
        kinds = {}
        for outcome in everything:
            kind = ERROR_KINDS.get(outcome['kind'], 'unreachable')
            kinds[kind] = kinds.get(kind, 0) + 1
        order = ['tls', 'timeout', 'unreachable']
        error_kind = sorted(kinds, key=lambda k: (-kinds[k], order.index(k)))[0]

    pct = slo.percentiles([r['latency_ms'] for r in ok], (50, 95))
    summary = dict(
        attempts=attempts,
        succeeded=len(ok),
        failed_attempts=len(bad),
        failure_rate_pct=slo.error_rate(attempts, len(bad))['error_rate_pct'],
        reachable=reachable,
        error_kind=error_kind,
        failure_reasons=reasons,
        sample_errors=sample_errors,
        latency_p50_ms=pct['p50'],
        latency_p95_ms=pct['p95'],
        login=stage_summary(stages['login'][0], len(stages['login'][1])),
        check=stage_summary(stages['check'][0], len(stages['check'][1])),
        token_kids=sorted(set(r['kid'] for r in results if r.get('kid'))),
    )
    if logout_used:
        logout = stage_summary(stages['logout'][0], len(stages['logout'][1]))
        notes = {}
        for r in results:
            note = r.get('logout_note')
            if note:
                notes[note] = notes.get(note, 0) + 1
        logout['failure_reasons'] = notes
        summary['logout'] = logout
    return summary


def describe(summary):
    """One line for the operator."""
    head = 'login probe: %d of %d attempts failed (%s%%)' % (
        summary['failed_attempts'], summary['attempts'], summary['failure_rate_pct'])
    if summary['reachable'] is False:
        head += ', nothing answered (%s)' % summary['error_kind']
    if summary['failure_reasons']:
        top = sorted(summary['failure_reasons'].items(), key=lambda kv: (-kv[1], kv[0]))
        head += ': ' + ', '.join('%s x%d' % kv for kv in top)
    if summary['token_kids']:
        head += '; token kid(s) %s' % ', '.join(summary['token_kids'])
    return head


# --------------------------------------------------------------------------- requests

def _outcome(kind, status=None, latency_ms=None, body=None, too_large=False):
    return dict(kind=kind, status=status, latency_ms=latency_ms, body=body, too_large=too_large)


def _network_kind(exc):
    """Classify a urllib/socket error without keeping its text."""
    if http_probe.is_timeout(exc):
        return KIND_TIMEOUT
    if http_probe.is_tls(exc):
        return KIND_TLS
    reason = getattr(exc, 'reason', None)
    for candidate in (reason, exc):
        if isinstance(candidate, ConnectionRefusedError) or getattr(candidate, 'errno', None) == errno.ECONNREFUSED:
            return KIND_REFUSED
        if isinstance(candidate, socket.gaierror):
            return KIND_DNS
    return KIND_CONNECTION


def _read_body(response, deadline, clock):
    """(body, too_large): at most MAX_BODY_BYTES are read; raises webhook_delivery.Late at the deadline."""
    chunks = []
    size = 0
    while True:
        if clock() > deadline:
            raise webhook_delivery.Late()
        chunk = response.read(CHUNK_BYTES)
        if not chunk:
            return b''.join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None, True


def _request(opener, url, method, headers, data, timeout, clock):
    """One request; ``{kind, status, latency_ms, body, too_large}``. Never raises, keeps no error text."""
    raw = webhook_delivery.request(opener, url, headers, data, timeout, USER_AGENT, method=method, read=_read_body,
                                   classify_error=_network_kind, clock=clock)
    body, too_large = raw['body'] if raw['kind'] == KIND_HTTP else (None, False)
    return _outcome(raw['kind'], status=raw['status'], latency_ms=raw['latency_ms'], body=body, too_large=too_large)


def send(opener, url, method, headers, data, timeout, clock=time.monotonic):
    """One request, hard-bounded by ``timeout``.

    open_url's timeout applies to connecting and to each socket read, so a server that
    trickles its answer could hold a request for longer; the request runs in a daemon
    thread and is given up (counted as a timeout) once ``timeout`` has passed.
    Returns ``{kind, status, latency_ms, body, too_large}``.
    """
    return webhook_delivery.call_with_deadline(
        lambda: _request(opener, url, method, headers, data, timeout, clock), timeout,
        lambda elapsed_ms: _outcome(KIND_TIMEOUT, latency_ms=elapsed_ms), 'login-probe-request', clock)


def run_attempt(number, config, opener, secrets_seen):
    """One attempt: login, then check and logout when configured. Returns an attempt result."""
    c = config
    secrets = [c['password']]
    result = dict(attempt=number, ok=False, stage=None, reason=None, status=None, latency_ms=None,
                  outcomes={}, stage_failed={}, kid=None, logout_note=None)
    payload = json.dumps({c['username_field']: c['username'], c['password_field']: c['password']})
    login = send(opener, c['login_url'], 'POST',
                 {'Content-Type': 'application/json', 'Accept': 'application/json'},
                 payload.encode('utf-8'), c['timeout'])
    result['outcomes']['login'] = login
    token = None
    reason = None
    if login['kind'] != KIND_HTTP:
        reason = failure_reason('login', login)
    elif login['status'] not in c['expected_login_status']:
        reason = failure_reason('login', login, error_code(login['body'], secrets))
    elif login['too_large']:
        reason = 'login answer too large'
    else:
        token = extract_token(login['body'], c['token_field'])
        if token is None:
            reason = 'login no token'
    login['body'] = None  # never kept beyond this point
    if reason:
        result['stage_failed']['login'] = True
        result.update(stage='login', reason=reason, status=login['status'], latency_ms=login['latency_ms'])
        return result

    secrets.append(token)
    secrets_seen(token)
    result['kid'] = token_kid(token, secrets)
    bearer = {'Authorization': 'Bearer ' + token, 'Accept': 'application/json'}
    total = login['latency_ms']
    if c['check_url']:
        check = send(opener, c['check_url'], 'GET', bearer, None, c['timeout'])
        result['outcomes']['check'] = check
        if check['kind'] != KIND_HTTP or check['status'] != 200:
            result['stage_failed']['check'] = True
            result.update(stage='check', reason=failure_reason('check', check, error_code(check['body'], secrets)),
                          status=check['status'], latency_ms=check['latency_ms'])
        else:
            total += check['latency_ms']
        check['body'] = None
    if result['stage'] is None:
        result.update(ok=True, latency_ms=round(total, 3))
    if c['logout_url']:
        logout = send(opener, c['logout_url'], 'POST', bearer, b'', c['timeout'])
        result['outcomes']['logout'] = logout
        if logout['kind'] != KIND_HTTP or not 200 <= logout['status'] <= 299:
            result['stage_failed']['logout'] = True
            result['logout_note'] = failure_reason('logout', logout, error_code(logout['body'], secrets))
        logout['body'] = None
    return result


def run_probe(config, secrets_seen=lambda token: None, opener=None):
    """Run ``count`` attempts, at most ``concurrency`` at a time; return ``summarize``'s dict."""
    if opener is None:
        opener = http_probe.shared_context_opener(config['validate_certs'])
    workers = max(1, min(int(config['concurrency']), int(config['count'])))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_attempt, n, config, opener, secrets_seen)
                   for n in range(1, int(config['count']) + 1)]
        results = [f.result() for f in futures]
    return summarize(results, logout_used=bool(config['logout_url']))


# --------------------------------------------------------------------------- module

def _url_problem(name, url):
    """An error naming ``name`` when ``url`` is not usable, else None (never echoes credentials)."""
    problem = http_probe.validate_url(url)
    if not problem:
        return None
    if 'credentials' in problem:
        return ('%s must not embed credentials (user:password@host); the probe user signs in with '
                'username and password' % name)
    problem = problem.replace(url, http_probe.redact_url(url)) if url else problem
    return problem.replace('url', name, 1)


def validate(params):
    """The first problem with the parameters, naming the parameter, or None."""
    for name in ('login_url', 'check_url', 'logout_url'):
        url = params[name]
        if url is None and name != 'login_url':
            continue
        if not isinstance(url, str) or not url.strip():
            return '%s must be an absolute http:// or https:// URL%s' % (
                name, '' if name == 'login_url' else '; leave it out to skip this step')
        problem = _url_problem(name, url.strip())
        if problem:
            return problem
    if not (params['username'] or '').strip():
        return 'username must not be empty'
    if not params['password']:
        return ('password must not be empty; pass it or set the environment variable '
                'SVPMS_LOGIN_PROBE_PASSWORD')
    for name in ('username_field', 'password_field', 'token_field'):
        if not (params[name] or '').strip():
            return '%s must not be empty' % name
    if params['username_field'] == params['password_field']:
        return 'username_field and password_field must differ, both are %r' % params['username_field']
    if not 1 <= params['count'] <= MAX_COUNT:
        return 'count must be between 1 and %d, got %d' % (MAX_COUNT, params['count'])
    if not 1 <= params['concurrency'] <= MAX_CONCURRENCY:
        return 'concurrency must be between 1 and %d, got %d' % (MAX_CONCURRENCY, params['concurrency'])
    if not 0 < params['timeout'] <= MAX_TIMEOUT:
        return 'timeout must be more than 0 and at most %g seconds, got %s' % (MAX_TIMEOUT, params['timeout'])
    if not params['expected_login_status']:
        return 'expected_login_status must list at least one HTTP status'
    bad = [s for s in params['expected_login_status'] if not 100 <= s <= 599]
    if bad:
        return 'expected_login_status must hold HTTP statuses (100-599), got %s' % bad
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            login_url=dict(type='str', required=True),
            username=dict(type='str', required=True),
            password=dict(type='str', required=True, no_log=True,
                          fallback=(env_fallback, ['SVPMS_LOGIN_PROBE_PASSWORD'])),
            username_field=dict(type='str', default='email'),
            password_field=dict(type='str', default='password', no_log=False),
            token_field=dict(type='str', default='access_token', no_log=False),
            check_url=dict(type='str'),
            logout_url=dict(type='str'),
            count=dict(type='int', default=5),
            concurrency=dict(type='int', default=1),
            timeout=dict(type='float', default=5),
            validate_certs=dict(type='bool', default=True),
            expected_login_status=dict(type='list', elements='int', default=[200]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    password = params['password'] or ''
    if len(password) < MIN_SCRUB_LENGTH:
        module.no_log_values.discard(password)
    masked = dict(params, password=MASK if password else password)
    for name in ('login_url', 'check_url', 'logout_url'):
        if isinstance(params[name], str):
            masked[name] = http_probe.redact_url(params[name])
    invocation = dict(module_args=masked)

    problem = validate(params)
    if problem:
        module.fail_json(msg=problem, invocation=invocation)

    config = dict(params)
    for name in ('login_url', 'check_url', 'logout_url'):
        config[name] = params[name].strip() if params[name] else None
    config['expected_login_status'] = set(params['expected_login_status'])
    lock = threading.Lock()

    def secrets_seen(token):
        # Defence in depth: Ansible also masks every issued token anywhere in the output.
        if len(token) >= MIN_SCRUB_LENGTH:
            with lock:
                module.no_log_values.add(token)

    summary = run_probe(config, secrets_seen)
    module.exit_json(
        changed=False,
        msg=describe(summary),
        login_url=http_probe.safe_url(config['login_url']),
        check_url=http_probe.safe_url(config['check_url']) if config['check_url'] else None,
        logout_url=http_probe.safe_url(config['logout_url']) if config['logout_url'] else None,
        invocation=invocation,
        **summary
    )


if __name__ == '__main__':
    main()
