# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Signed deliveries to OUR webhook endpoint, shared by webhook_probe and stripe_webhook_replay.

- The endpoint signing secret (``whsec_...``) read from AWS Secrets Manager: a plain string or a JSON object with
  the secret in ``secret`` or ``signing_secret``; the raw value and the secret are registered ``no_log`` and
  scrubbed from every output (``remember``, ``scrub``). No message ever holds them. It is read by staging label
  (AWSCURRENT); which versions are AWSCURRENT and AWSPREVIOUS, and when they were created, is read apart
  (``signing_secret_versions``) from version ids and dates only.
- One request hard-bounded by ``timeout`` (``send``): ``open_url``'s timeout applies to connecting and to each
  socket read, so an endpoint that trickles its answer could hold a request longer; the request runs in a daemon
  thread that is given up (a timeout) once ``timeout`` has passed. Redirects are never followed (Stripe does not
  follow them either), nothing is retried, at most MAX_BODY_BYTES of an answer are read and no error text is kept.

``request`` and ``call_with_deadline`` take the body reader and the error classifier as arguments, so that
login_probe (which keeps other error kinds and refuses oversized answers) bounds its requests the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import re
import threading
import time

from urllib.error import HTTPError

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSError
from ansible_collections.svpms.incident_response.plugins.module_utils import http_probe
from ansible_collections.svpms.incident_response.plugins.module_utils import secret_stages
from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_signature

MAX_BODY_BYTES = 64 * 1024
CHUNK_BYTES = 16 * 1024
MIN_MASK = 8
MASK = '********'
ERROR_RE = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')
KIND_HTTP = 'http'
KIND_TIMEOUT = 'timeout'
KIND_TLS = 'tls'
KIND_UNREACHABLE = 'unreachable'
NO_LOG_MARKER = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
STAGE_CURRENT = secret_stages.STAGE_CURRENT
STAGE_PREVIOUS = secret_stages.STAGE_PREVIOUS

# Why the secret could not be read, by AWSError kind (anything else: 'could not be read').
READ_FAILURES = {
    'not_found': 'does not exist in this account/region (check the name and region)',
    'access_denied': 'could not be read: access denied (allow secretsmanager:GetSecretValue and kms:Decrypt for the '
                     'caller)',
    'unreachable': 'could not be read: Secrets Manager is unreachable',
}


# --------------------------------------------------------------------------- secrets

def leaks(text, sensitive):
    """True when ``text`` holds a sensitive value, or is a piece (8 characters or more) of one."""
    if not text:
        return False
    for value in sensitive:
        if value and (value in text or (len(text) >= MIN_MASK and text in value)):
            return True
    return False


def scrub(value, sensitive):
    """``value`` (str, list, dict, nested) with every sensitive string replaced by a mask."""
    if isinstance(value, str):
        for secret in sorted((s for s in sensitive if s), key=len, reverse=True):
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, list):
        return [scrub(v, sensitive) for v in value]
    if isinstance(value, dict):
        return dict((k, scrub(v, sensitive)) for k, v in value.items())
    return value


def remember(module, sensitive, value):
    """Add a secret value to ``sensitive`` (scrubbed from the output) and, from 8 characters, to the
    ``no_log_values`` of the AnsibleModule ``module`` (shorter ones would mangle numbers and words)."""
    if isinstance(value, str) and value.strip():
        sensitive.append(value)
        if len(value) >= MIN_MASK:
            module.no_log_values.add(value)


def signing_secret(secret_string):
    """The signing secret held by a Secrets Manager value (str).

    A plain string (``whsec_...``) or a JSON object with the secret in
    ``secret`` or ``signing_secret``. Raises ValueError with a message that
    never holds the value.
    """
    if not isinstance(secret_string, str) or not secret_string.strip():
        raise ValueError('the secret value is empty')
    text = secret_string.strip()
    if text.startswith('{'):
        try:
            doc = json.loads(text)
        except ValueError:
            raise ValueError('the secret value starts with { but is not valid JSON')
        if not isinstance(doc, dict):
            raise ValueError('the secret value is JSON but not an object')
        for field in ('secret', 'signing_secret'):
            value = doc.get(field)
            if isinstance(value, str) and value.strip():
                text = value.strip()
                break
        else:
            raise ValueError('the secret value is a JSON object without a non-empty string in "secret" or '
                             '"signing_secret"')
    if any(ch.isspace() for ch in text):
        raise ValueError('the signing secret holds whitespace; a Stripe signing secret is one token (whsec_...)')
    return text


class SigningSecretError(Exception):
    """The signing secret could not be read (``aws_error`` set) or is unusable (kind ``invalid_secret``)."""

    def __init__(self, kind, reason, aws_error=None):
        self.kind = kind
        self.reason = reason
        self.aws_error = aws_error
        super(SigningSecretError, self).__init__(reason)

    def message(self, secret_id, consequence):
        """The sentence for the operator, e.g. consequence ``nothing was replayed``. Never holds the secret."""
        if self.aws_error is not None:
            return 'The webhook signing secret %s %s; %s. %s' % (secret_id, self.reason, consequence,
                                                                 self.aws_error.describe())
        return 'The webhook signing secret %s is unusable: %s; %s.' % (secret_id, self.reason, consequence)


def read_signing_secret(sm, secret_id, keep, meta=None):
    """The signing secret in Secrets Manager secret ``secret_id`` (version AWSCURRENT).

    ``sm`` is an AWSModule client for ``secretsmanager``; ``keep(value)`` is called with the raw value and with the
    secret before anything else can show them (register them ``no_log``). Raises SigningSecretError.

    The version staged AWSCURRENT is asked for by name (``VersionStage``): without it some stand-ins (moto) answer
    with the newest version, not the current one. When ``meta`` (a dict) is given it is filled with ``version_id``
    (the version read) and ``created`` (its CreatedDate, ISO 8601 UTC, or None) - never with a value.
    """
    try:
        resp = sm.call('get_secret_value', SecretId=secret_id, VersionStage=STAGE_CURRENT)
    except AWSError as err:
        raise SigningSecretError(err.kind, READ_FAILURES.get(err.kind, 'could not be read'), aws_error=err)
    if meta is not None:
        meta['version_id'] = resp.get('VersionId')
        meta['created'] = secret_stages.iso_utc(resp.get('CreatedDate'))
    raw_string = resp.get('SecretString')
    if raw_string is None and resp.get('SecretBinary') is not None:
        try:
            raw_string = bytes(resp['SecretBinary']).decode('utf-8')
        except (UnicodeDecodeError, TypeError):
            raw_string = None
    keep(raw_string)
    try:
        secret = signing_secret(raw_string)
    except ValueError as exc:
        raise SigningSecretError('invalid_secret', str(exc))
    keep(secret)
    return secret


def signing_secret_versions(sm, secret_id):
    """``(secret_version, notes)`` - which versions of ``secret_id`` are AWSCURRENT and AWSPREVIOUS, and when each
    was created, from DescribeSecret (VersionIdsToStages) and ListSecretVersionIds (CreatedDate); never a value.

    ``secret_version`` is ``{current_version_id, current_created, previous_version_id, previous_created}`` (dates
    ISO 8601 UTC; the previous ones None without an AWSPREVIOUS version), or None when DescribeSecret failed or
    named no AWSCURRENT version. ``notes`` are sentences saying what could not be read. Never raises an AWSError.
    """
    try:
        desc = sm.call('describe_secret', SecretId=secret_id)
    except AWSError as err:
        return None, ['The versions of %s could not be read, so secret_version is null: %s'
                      % (secret_id, err.describe())]
    stages = secret_stages.stage_versions(desc.get('VersionIdsToStages'))
    current = stages.get(STAGE_CURRENT)
    if current is None:
        return None, ['Secret %s names no AWSCURRENT version, so secret_version is null' % secret_id]
    previous = stages.get(STAGE_PREVIOUS)
    notes = []
    created = {}
    try:
        items, _truncated = sm.paginate('list_secret_version_ids', 'Versions', token_in='NextToken',
                                        token_out='NextToken', SecretId=secret_id)
        for item in items:
            if item.get('VersionId'):
                created[item['VersionId']] = secret_stages.iso_utc(item.get('CreatedDate'))
    except AWSError as err:
        notes.append('The creation dates of the versions of %s could not be read, so they are null: %s'
                     % (secret_id, err.describe()))
    return dict(current_version_id=current, current_created=created.get(current),
                previous_version_id=previous, previous_created=created.get(previous) if previous else None), notes


def invocation(params, no_log_params):
    """The ``invocation`` of a result: no_log options masked, credentials in the ``url`` option masked."""
    masked = dict(params)
    for name in no_log_params:
        if masked.get(name):
            masked[name] = NO_LOG_MARKER
    if isinstance(masked.get('url'), str):
        masked['url'] = http_probe.redact_url(masked['url'])
    return dict(module_args=masked)


# --------------------------------------------------------------------------- answers

def json_object(body):
    """The JSON object a body holds (bytes or str), or None for anything else."""
    if not body:
        return None
    try:
        doc = json.loads(body.decode('utf-8') if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def error_code(body, sensitive=()):
    """The short ``error`` string of a JSON object body (or ``error.code`` / ``error.type``), or None."""
    doc = json_object(body)
    if doc is None:
        return None
    code = doc.get('error')
    if isinstance(code, dict):
        code = code.get('code') or code.get('type')
    if not isinstance(code, str) or not ERROR_RE.match(code) or leaks(code, sensitive):
        return None
    return code


def classify(outcome, success):
    """The outcome word of one request result: ``success`` (2xx), rejected, redirect, server_error, unexpected,
    or the network kind (timeout, tls, unreachable) when there was no HTTP answer."""
    if outcome['kind'] != KIND_HTTP:
        return outcome['kind']
    status = outcome['status']
    if 200 <= status <= 299:
        return success
    if 400 <= status <= 499:
        return 'rejected'
    if 300 <= status <= 399:
        return 'redirect'
    if 500 <= status <= 599:
        return 'server_error'
    return 'unexpected'


def signed_headers(payload, secret, timestamp):
    """The headers of a delivery of ``payload`` (bytes) signed as Stripe signs it, at ``timestamp``."""
    return {
        'Content-Type': 'application/json; charset=utf-8',
        'Accept': '*/*; q=0.5, application/json',
        'Cache-Control': 'no-cache',
        stripe_signature.HEADER_NAME: stripe_signature.sign(payload, secret, int(timestamp)),
    }


# --------------------------------------------------------------------------- requests

def outcome(kind, status=None, latency_ms=None, body=None):
    return dict(kind=kind, status=status, latency_ms=latency_ms, body=body)


def network_kind(exc):
    """timeout / tls / unreachable, without keeping the error text."""
    if http_probe.is_timeout(exc):
        return KIND_TIMEOUT
    if http_probe.is_tls(exc):
        return KIND_TLS
    return KIND_UNREACHABLE


class Late(Exception):
    """The answer was not complete by the deadline."""


def read_body(response, deadline, clock):
    """At most MAX_BODY_BYTES of the body (the rest is not read); raises Late at the deadline."""
    chunks = []
    size = 0
    while size < MAX_BODY_BYTES:
        if clock() > deadline:
            raise Late()
        chunk = response.read(CHUNK_BYTES)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b''.join(chunks)


def request(opener, url, headers, data, timeout, user_agent, method='POST', read=read_body,
            classify_error=network_kind, clock=time.monotonic):
    """One request; ``{kind, status, latency_ms, body}``. Never raises, keeps no error text.

    ``opener`` is open_url-like; ``read(response, deadline, clock)`` reads the body (raising Late at the deadline)
    and its result is ``body``; ``classify_error(exc)`` names the kind of a request that got no HTTP answer.
    """
    started = clock()
    deadline = started + timeout

    def elapsed_ms():
        return round((clock() - started) * 1000.0, 3)

    try:
        try:
            response = opener(url, method=method, headers=headers, data=data, timeout=timeout,
                              follow_redirects='none', http_agent=user_agent, use_netrc=False, force=True)
        except HTTPError as exc:
            response = exc  # 4xx, 5xx, or a 3xx not followed: the body may hold an error string
        try:
            status = int(response.getcode())
            empty = isinstance(response, HTTPError) and getattr(response, 'fp', None) is None
            body = read(io.BytesIO(b'') if empty else response, deadline, clock)
        finally:
            try:
                response.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
        if clock() > deadline:
            return outcome(KIND_TIMEOUT, latency_ms=elapsed_ms())
        return outcome(KIND_HTTP, status=status, latency_ms=elapsed_ms(), body=body)
    except Late:
        return outcome(KIND_TIMEOUT, latency_ms=elapsed_ms())
    except Exception as exc:  # never let one odd failure crash the caller; its text is never kept
        return outcome(classify_error(exc), latency_ms=elapsed_ms())


def call_with_deadline(work, timeout, on_timeout, name, clock=time.monotonic):
    """``work()`` run in a daemon thread and given up after ``timeout`` seconds.

    Returns what ``work()`` returned, or ``on_timeout(elapsed_ms)`` when it had not finished by then (or raised).
    """
    box = {}
    done = threading.Event()
    started = clock()

    def target():
        try:
            box['result'] = work()
        finally:
            done.set()

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    if not done.wait(timeout) or 'result' not in box:
        return on_timeout(round((clock() - started) * 1000.0, 3))
    return box['result']


def send(opener, url, headers, data, timeout, user_agent, name='webhook-delivery', clock=time.monotonic):
    """One POST hard-bounded by ``timeout`` (a request still running then is given up as a timeout);
    ``{kind, status, latency_ms, body}``."""
    return call_with_deadline(
        lambda: request(opener, url, headers, data, timeout, user_agent, clock=clock), timeout,
        lambda elapsed_ms: outcome(KIND_TIMEOUT, latency_ms=elapsed_ms), name, clock)
