# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Stripe webhook signatures (the ``Stripe-Signature`` header), as Stripe documents them.

Stripe signs every webhook delivery with the endpoint's signing secret
(``whsec_...``): ``v1 = hex(HMAC-SHA256(secret, "<t>.<raw body>"))`` where
``t`` is a Unix timestamp, and sends ``Stripe-Signature: t=<t>,v1=<hex>``.
While a secret is being rolled the header carries one ``v1`` entry per
active secret (and test-mode deliveries may add a ``v0`` entry); a receiver
accepts the delivery when ANY ``v1`` entry matches, compares in constant
time, and rejects a timestamp older than its tolerance (300 seconds in
Stripe's libraries). The whole secret string, ``whsec_`` prefix included,
is the HMAC key (it is not base64-decoded).

``verify`` behaves like ``stripe.WebhookSignature.verify_header`` of the
official library: same parsing (the first ``t`` entry wins; other schemes are
ignored), signatures checked before the timestamp, only timestamps in the
PAST are limited by the tolerance, and a tolerance of ``None`` or ``0``
skips the timestamp check. Failures raise a ``StripeSignatureError``
subclass whose ``kind`` says which; no message ever holds the secret.

This module has no third-party dependency (the collection's modules never
import ``stripe``); the unit tests check it against the official library.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import time

SCHEME = 'v1'
DEFAULT_TOLERANCE = 300
HEADER_NAME = 'Stripe-Signature'


class StripeSignatureError(ValueError):
    """A webhook signature could not be verified. ``kind`` says why."""

    kind = 'invalid'

    def __init__(self, message):
        self.message = message
        super(StripeSignatureError, self).__init__(message)


class NoSignatureError(StripeSignatureError):
    """No (or an empty) ``Stripe-Signature`` header, or no ``v1`` entry in it."""

    kind = 'no_signature'


class MalformedHeaderError(StripeSignatureError):
    """The header has no usable ``t=<unix time>`` entry."""

    kind = 'malformed_header'


class BadSignatureError(StripeSignatureError):
    """No ``v1`` entry matches the payload signed with the secret."""

    kind = 'bad_signature'


class TimestampOutsideToleranceError(StripeSignatureError):
    """The signature is right but ``t`` is older than the tolerance."""

    kind = 'timestamp_outside_tolerance'

    def __init__(self, message, timestamp=None, age_seconds=None):
        self.timestamp = timestamp
        self.age_seconds = age_seconds
        super(TimestampOutsideToleranceError, self).__init__(message)


class NoSecretError(StripeSignatureError):
    """No (or a blank) signing secret was given."""

    kind = 'no_secret'


def _bytes(value, what):
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode('utf-8')
    raise TypeError('%s must be bytes or str, got %s' % (what, type(value).__name__))


def _secret_bytes(secret):
    if secret is None or not isinstance(secret, (str, bytes, bytearray)) or not _bytes(secret, 'secret').strip():
        raise NoSecretError('no webhook signing secret was provided (it starts with whsec_)')
    return _bytes(secret, 'secret')


def compute_signature(payload, secret, timestamp):
    """Hex HMAC-SHA256 of ``"<timestamp>.<payload>"`` keyed with the whole ``secret``."""
    signed = b'%d.' % int(timestamp) + _bytes(payload, 'payload')
    return hmac.new(_secret_bytes(secret), signed, hashlib.sha256).hexdigest()


def sign(payload, secret, timestamp=None):
    """The ``Stripe-Signature`` header value ``t=<timestamp>,v1=<hex>`` for ``payload``.

    ``payload`` is the exact body sent (bytes, or str encoded as UTF-8);
    ``timestamp`` is a Unix time (now when omitted).
    """
    if timestamp is None:
        timestamp = int(time.time())
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError('timestamp must be an int (Unix time), got %s' % type(timestamp).__name__)
    return 't=%d,%s=%s' % (timestamp, SCHEME, compute_signature(payload, secret, timestamp))


def parse(header, scheme=SCHEME):
    """``(timestamp, [signatures of scheme])`` from a ``Stripe-Signature`` value.

    Entries are ``key=value`` separated by commas; the first ``t`` entry is
    the timestamp, every ``scheme`` entry is a candidate signature and other
    entries (``v0``, unknown keys) are ignored. Raises ``NoSignatureError``
    for an empty header or one without a ``scheme`` entry and
    ``MalformedHeaderError`` when there is no integer ``t``.
    """
    if isinstance(header, (bytes, bytearray)):
        try:
            header = bytes(header).decode('ascii')
        except UnicodeDecodeError:
            raise MalformedHeaderError('the Stripe-Signature header is not ASCII')
    if not header or not isinstance(header, str) or not header.strip():
        raise NoSignatureError('no Stripe-Signature header value was provided')
    timestamp = None
    signatures = []
    for item in header.split(','):
        key, sep, value = item.strip().partition('=')
        key = key.strip()
        if key == 't' and timestamp is None:
            text = value.strip()
            if not sep or not text.lstrip('-').isdigit() or not text.isascii():
                raise MalformedHeaderError('the Stripe-Signature header has no valid t=<unix time> entry')
            timestamp = int(text)
        elif key == scheme and sep:
            signatures.append(value.strip())
    if timestamp is None:
        raise MalformedHeaderError('the Stripe-Signature header has no t=<unix time> entry')
    if not signatures:
        raise NoSignatureError('no signatures found with the expected scheme %s in the Stripe-Signature header'
                               % scheme)
    return timestamp, signatures


def verify(payload, header, secret, tolerance=DEFAULT_TOLERANCE, now=None):
    """Check a delivery the way Stripe's libraries do; return its timestamp.

    Raises ``NoSecretError``, ``NoSignatureError``, ``MalformedHeaderError``,
    ``BadSignatureError`` (no ``v1`` entry matches, compared in constant
    time) or ``TimestampOutsideToleranceError`` (``t`` older than
    ``tolerance`` seconds before ``now``; skipped when ``tolerance`` is None
    or 0, as in Stripe's libraries). ``now`` defaults to the current time.
    """
    key = _secret_bytes(secret)
    if tolerance is not None and (isinstance(tolerance, bool) or tolerance < 0):
        raise ValueError('tolerance must be a number of seconds, 0 or more, or None')
    timestamp, signatures = parse(header)
    expected = compute_signature(payload, key, timestamp).encode('ascii')
    matched = False
    for candidate in signatures:
        try:
            given = candidate.encode('ascii')
        except UnicodeEncodeError:
            continue
        # Every entry is compared (no early exit), each in constant time.
        if hmac.compare_digest(expected, given):
            matched = True
    if not matched:
        raise BadSignatureError('no signature in the Stripe-Signature header matches the payload signed with the '
                                'endpoint secret')
    if tolerance:
        current = time.time() if now is None else now
        age = current - timestamp
        if timestamp < current - tolerance:
            raise TimestampOutsideToleranceError(
                'the Stripe-Signature timestamp %d is %d seconds old, outside the tolerance of %g seconds'
                % (timestamp, int(age), tolerance), timestamp=timestamp, age_seconds=age)
    return timestamp
