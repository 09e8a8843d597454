# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""JWT signing keys held as secret values: describe, generate, compare with a JWKS.

Pure logic (no AWS, no network) for the jwt_key_info / jwt_key_rotate modules.
Nothing here ever returns key material: ``ParsedKey.describe()`` gives the kind,
algorithm, key id, size/curve and what is wrong, and errors name the problem,
never the value.

Secret shapes understood (the documented set, kept small on purpose):

``pem``
    The secret string is a PEM block: an RSA or EC private key (PKCS#8
    ``BEGIN PRIVATE KEY``, PKCS#1 ``BEGIN RSA PRIVATE KEY``, SEC1
    ``BEGIN EC PRIVATE KEY``) or a public key (``BEGIN PUBLIC KEY``,
    ``BEGIN RSA PUBLIC KEY``). Encrypted PEM is reported, not read.
``json_pem``
    A JSON object with the PEM in ``private_key_pem`` (or ``private_key`` or
    ``pem``), and optionally ``kid`` and ``alg`` (and ``public_key_pem``, which
    a rotation regenerates).
``json_hmac``
    A JSON object with the HMAC secret in ``key`` (or ``secret``), and
    optionally ``kid`` and ``alg`` (HS256 default, HS384, HS512). The secret
    is the UTF-8 bytes of the string, as most JWT libraries use it.
``raw_hmac``
    Any other secret string that is one token (printable ASCII, no spaces, no
    line breaks, not starting with ``{``, ``[`` or ``"``) is taken as an HS256
    secret, the string's bytes being the key.
``binary_hmac``
    A SecretBinary value that is not UTF-8 text: its bytes are the HS256 key.

Key ids: for RSA/EC keys the RFC 7638 JWK thumbprint (SHA-256) of the public
key is always computed; ``kid`` is the explicit ``kid`` of a JSON secret when
there is one, else the thumbprint. HMAC keys have no public part; their kid
is the explicit one or None (no thumbprint is published for a secret key, as
a hash of a weak secret would help guess it).

Minimum strength (RFC 7518 section 3.2 and 3.4): an HMAC key at least as long
as the hash (HS256 32 bytes, HS384 48, HS512 64); RSA at least 2048 bits.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import hashlib
import json
import os
import re

from ansible_collections.svpms.incident_response.plugins.module_utils import secret_stages

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by sanity only
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

KIND_RSA = 'rsa'
KIND_EC = 'ec'
KIND_HMAC = 'hmac'
KINDS = (KIND_RSA, KIND_EC, KIND_HMAC)

SHAPE_PEM = 'pem'
SHAPE_JSON_PEM = 'json_pem'
SHAPE_JSON_HMAC = 'json_hmac'
SHAPE_RAW_HMAC = 'raw_hmac'
SHAPE_BINARY_HMAC = 'binary_hmac'

PEM_FIELDS = ('private_key_pem', 'private_key', 'pem')
HMAC_FIELDS = ('key', 'secret')
# Fields a rotation rewrites (everything else in a JSON secret is kept as is).
KEY_FIELDS = frozenset(PEM_FIELDS + HMAC_FIELDS + ('public_key_pem', 'kid', 'alg'))

HMAC_MIN_BYTES = {'HS256': 32, 'HS384': 48, 'HS512': 64}
RSA_ALGS = ('RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512')
EC_CURVES = {
    # cryptography curve name -> (JWK crv, JWS alg, coordinate bytes)
    'secp256r1': ('P-256', 'ES256', 32),
    'secp384r1': ('P-384', 'ES384', 48),
    'secp521r1': ('P-521', 'ES512', 66),
}
RSA_MIN_BITS = 2048
RSA_DEFAULT_BITS = 2048
HMAC_GENERATED_BYTES = 64
MAX_SECRET_CHARS = 65536

_PEM_RE = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----', re.S)
_RAW_TOKEN_RE = re.compile(r'^[\x21-\x7e]+$')
MASK = '********'


class JWTKeyError(Exception):
    """A problem with a key or a JWKS; the message never holds key material."""


def require_cryptography():
    """None when cryptography imports, else the ImportError (for missing_required_lib)."""
    return None if HAS_CRYPTOGRAPHY else CRYPTOGRAPHY_IMPORT_ERROR


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def b64url_decode(text):
    text = str(text)
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def _int_bytes(value, length=None):
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, 'big')


def jwk_thumbprint(jwk):
    """RFC 7638 SHA-256 thumbprint (base64url) of an RSA or EC public JWK dict.

    Only the required members take part, in lexicographic order, without
    whitespace: RSA ``e, kty, n``; EC ``crv, kty, x, y``.
    """
    kty = jwk.get('kty')
    if kty == 'RSA':
        members = ('e', 'kty', 'n')
    elif kty == 'EC':
        members = ('crv', 'kty', 'x', 'y')
    else:
        raise JWTKeyError('no RFC 7638 thumbprint for kty %r (only RSA and EC are supported)' % kty)
    missing = [m for m in members if not isinstance(jwk.get(m), str)]
    if missing:
        raise JWTKeyError('JWK (kty %s) lacks %s' % (kty, ', '.join(missing)))
    canonical = json.dumps(dict((m, jwk[m]) for m in members), sort_keys=True, separators=(',', ':'))
    return b64url(hashlib.sha256(canonical.encode('utf-8')).digest())


def public_jwk(public_key):
    """The public JWK members (kty, n/e or crv/x/y) of a cryptography public key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {'kty': 'RSA', 'n': b64url(_int_bytes(numbers.n)), 'e': b64url(_int_bytes(numbers.e))}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = EC_CURVES.get(public_key.curve.name)
        if curve is None:
            raise JWTKeyError('EC curve %s has no JOSE name (supported: P-256, P-384, P-521)'
                              % public_key.curve.name)
        numbers = public_key.public_numbers()
        return {'kty': 'EC', 'crv': curve[0], 'x': b64url(_int_bytes(numbers.x, curve[2])),
                'y': b64url(_int_bytes(numbers.y, curve[2]))}
    raise JWTKeyError('unsupported public key type %s (RSA and EC only)' % type(public_key).__name__)


class ParsedKey(object):
    """What a secret value holds. Keeps the key object private; ``describe()`` is safe to return."""

    def __init__(self, kind=None, shape=None, alg=None, kid=None, kid_source=None, thumbprint=None,
                 bits=None, curve=None, private=None, key_bytes=None, parses=False, problem=None,
                 fields=None):
        self.kind = kind
        self.shape = shape
        self.alg = alg
        self.kid = kid
        self.kid_source = kid_source
        self.thumbprint = thumbprint
        self.bits = bits
        self.curve = curve
        self.private = private
        self.key_bytes = key_bytes
        self.parses = parses
        self.problem = problem
        # Field names / non-key fields of a JSON secret (never the key fields' values).
        self.fields = fields or {}
        self.jwk = None
        self._sensitive = []

    def sensitive_values(self):
        """Strings that must never be printed (for AnsibleModule.no_log_values)."""
        return [s for s in self._sensitive if s]

    def describe(self):
        return dict(kind=self.kind, shape=self.shape, alg=self.alg, kid=self.kid, kid_source=self.kid_source,
                    thumbprint=self.thumbprint, bits=self.bits, curve=self.curve, private=self.private,
                    key_bytes=self.key_bytes, parses=self.parses, problem=self.problem)


def _failed(problem, shape=None, kind=None):
    return ParsedKey(kind=kind, shape=shape, parses=False, problem=problem)


def _load_pem(pem_text, parsed):
    """Fill ``parsed`` from a PEM string; sets problem instead of raising."""
    match = _PEM_RE.search(pem_text)
    if not match:
        parsed.problem = 'the value has no complete PEM block (-----BEGIN ...----- to -----END ...-----)'
        return parsed
    label = match.group(1)
    data = match.group(0).encode('ascii', 'replace')
    if 'ENCRYPTED' in label or 'Proc-Type: 4,ENCRYPTED' in pem_text:
        parsed.problem = 'the PEM private key is encrypted with a passphrase; a JWT signer needs it unencrypted'
        return parsed
    try:
        if 'PRIVATE KEY' in label:
            key = serialization.load_pem_private_key(data, password=None)
            parsed.private = True
            pub = key.public_key()
        elif 'PUBLIC KEY' in label:
            pub = serialization.load_pem_public_key(data)
            parsed.private = False
        elif 'CERTIFICATE' in label:
            parsed.problem = 'the value is a certificate (%s), not a signing key' % label
            return parsed
        else:
            parsed.problem = 'PEM block %r is not a key' % label
            return parsed
    except Exception as exc:  # cryptography raises ValueError/TypeError/UnsupportedAlgorithm
        # The exception text of cryptography never holds the key, but keep only its class.
        parsed.problem = 'the PEM %s block does not load as a key (%s)' % (label, type(exc).__name__)
        return parsed
    try:
        jwk = public_jwk(pub)
    except JWTKeyError as exc:
        parsed.problem = str(exc)
        return parsed
    parsed.jwk = jwk
    parsed.thumbprint = jwk_thumbprint(jwk)
    if jwk['kty'] == 'RSA':
        parsed.kind = KIND_RSA
        parsed.bits = pub.key_size
        if parsed.alg is None:
            parsed.alg = 'RS256'
        elif parsed.alg not in RSA_ALGS:
            parsed.problem = 'alg %s does not fit an RSA key (expected one of %s)' % (parsed.alg, ', '.join(RSA_ALGS))
        if parsed.bits < RSA_MIN_BITS and not parsed.problem:
            parsed.problem = 'RSA key is %d bits; at least %d are required' % (parsed.bits, RSA_MIN_BITS)
    else:
        parsed.kind = KIND_EC
        parsed.curve = jwk['crv']
        parsed.bits = pub.curve.key_size
        expected = EC_CURVES[pub.curve.name][1]
        if parsed.alg is None:
            parsed.alg = expected
        elif parsed.alg != expected:
            parsed.problem = 'alg %s does not fit an EC %s key (expected %s)' % (parsed.alg, parsed.curve, expected)
    if parsed.kid is None:
        parsed.kid = parsed.thumbprint
        parsed.kid_source = 'thumbprint'
    if not parsed.private and not parsed.problem:
        parsed.problem = 'the secret holds only a public key; a service that signs tokens needs the private key'
    parsed.parses = True
    return parsed


def _hmac(secret_bytes, parsed):
    parsed.kind = KIND_HMAC
    parsed.private = True
    parsed.key_bytes = len(secret_bytes)
    if parsed.alg is None:
        parsed.alg = 'HS256'
    minimum = HMAC_MIN_BYTES.get(parsed.alg)
    if minimum is None:
        parsed.problem = 'alg %s does not fit an HMAC key (expected one of %s)' % (
            parsed.alg, ', '.join(sorted(HMAC_MIN_BYTES)))
    elif len(secret_bytes) < minimum:
        parsed.problem = 'HMAC key is %d bytes; %s needs at least %d bytes (RFC 7518 section 3.2)' % (
            len(secret_bytes), parsed.alg, minimum)
    parsed.parses = True
    return parsed


def _clean_str(value, name):
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise JWTKeyError('field %s must be a non-empty string of at most 256 characters' % name)
    return value.strip()


def parse_secret(secret_string=None, secret_binary=None):
    """Parse a Secrets Manager value into a ParsedKey. Never raises for a bad value.

    A value that cannot be understood gives ``parses=False`` and a ``problem``
    sentence; neither ever contains the value.
    """
    if not HAS_CRYPTOGRAPHY:  # pragma: no cover - the modules fail earlier with missing_required_lib
        raise JWTKeyError('the python cryptography library is required')
    if secret_string is None and secret_binary is not None:
        try:
            secret_string = bytes(secret_binary).decode('utf-8')
        except UnicodeDecodeError:
            parsed = ParsedKey(shape=SHAPE_BINARY_HMAC)
            return _hmac(bytes(secret_binary), parsed)
    if secret_string is None:
        return _failed('the secret version holds no value')
    if not isinstance(secret_string, str):
        return _failed('the secret value is a %s, not text' % type(secret_string).__name__)
    if len(secret_string) > MAX_SECRET_CHARS:
        return _failed('the secret value is %d characters, more than any key format here (%d)'
                       % (len(secret_string), MAX_SECRET_CHARS))
    text = secret_string.strip()
    if not text:
        return _failed('the secret value is empty')
    if text[0] in '{["':  # JSON (a raw HMAC secret never starts like JSON)
        parsed = _parse_json(text)
    elif '-----BEGIN' in text:
        parsed = ParsedKey(shape=SHAPE_PEM)
        parsed._sensitive = [secret_string, text]
        _load_pem(text, parsed)
        return parsed
    elif _RAW_TOKEN_RE.match(text) and text == secret_string:
        parsed = ParsedKey(shape=SHAPE_RAW_HMAC)
        parsed._sensitive = [secret_string]
        return _hmac(secret_string.encode('utf-8'), parsed)
    else:
        return _failed('the value is neither a PEM key, a JSON key object nor a single-token HMAC secret '
                       '(it contains spaces, line breaks or non-ASCII characters)')
    if parsed._sensitive is not None:
        parsed._sensitive.append(secret_string)
    return parsed


def _parse_json(text):
    try:
        doc = json.loads(text)
    except ValueError:
        return _failed('the value starts like JSON but is not valid JSON')
    if isinstance(doc, str):
        return _failed('the value is a JSON string, not a JSON key object')
    if not isinstance(doc, dict):
        return _failed('the JSON value is not an object')
    pem_field = next((f for f in PEM_FIELDS if f in doc), None)
    hmac_field = next((f for f in HMAC_FIELDS if f in doc), None)
    if pem_field is None and hmac_field is None:
        return _failed('the JSON object has none of the key fields %s (fields present: %s)' % (
            ', '.join(PEM_FIELDS + HMAC_FIELDS), ', '.join(sorted(str(k) for k in doc)) or 'none'))
    try:
        kid = _clean_str(doc.get('kid'), 'kid')
        alg = _clean_str(doc.get('alg'), 'alg')
    except JWTKeyError as exc:
        return _failed(str(exc), shape=SHAPE_JSON_PEM if pem_field else SHAPE_JSON_HMAC)
    extra = dict((k, v) for k, v in doc.items() if k not in KEY_FIELDS)
    if pem_field is not None:
        parsed = ParsedKey(shape=SHAPE_JSON_PEM, alg=alg, kid=kid, kid_source='explicit' if kid else None)
        parsed.fields = dict(key_field=pem_field, has_public_key_pem='public_key_pem' in doc, extra=extra)
        value = doc[pem_field]
        if not isinstance(value, str):
            parsed.problem = 'field %s must be a PEM string' % pem_field
            return parsed
        parsed._sensitive = [value]
        return _load_pem(value, parsed)
    parsed = ParsedKey(shape=SHAPE_JSON_HMAC, alg=alg, kid=kid, kid_source='explicit' if kid else None)
    parsed.fields = dict(key_field=hmac_field, extra=extra)
    value = doc[hmac_field]
    if not isinstance(value, str) or not value:
        parsed.kind = KIND_HMAC
        parsed.problem = 'field %s must be a non-empty string' % hmac_field
        return parsed
    parsed._sensitive = [value]
    return _hmac(value.encode('utf-8'), parsed)


# --------------------------------------------------------------------------- generation


def _new_kid(prefix='hmac', now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return '%s-%s-%s' % (prefix, now.strftime('%Y%m%d'), os.urandom(4).hex())


def _pem_private(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode('ascii')


def _pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode('ascii')


_CURVE_BY_CRV = {'P-256': ec.SECP256R1, 'P-384': ec.SECP384R1, 'P-521': ec.SECP521R1} if HAS_CRYPTOGRAPHY else {}


def generate_secret(kind, template=None, now=None):
    """Generate a new key of ``kind`` shaped like ``template`` (a ParsedKey or None).

    Returns ``(value, parsed)``: ``value`` is what to store (a str; bytes for
    the binary_hmac shape) and ``parsed`` its description (parse_secret of the
    value). RSA keeps the template's size when it is at least 2048 bits (else
    2048), EC its curve (else P-256); HMAC gets 64 random bytes. A JSON
    template keeps its field names and non-key fields; the kid is renewed
    (RFC 7638 thumbprint for RSA/EC, ``hmac-YYYYMMDD-<random>`` for HMAC).
    """
    if kind not in KINDS:
        raise JWTKeyError('key kind must be one of %s, got %r' % (', '.join(KINDS), kind))
    same = template is not None and template.kind == kind
    alg = template.alg if same and template.parses and not template.problem else None
    shape = template.shape if template is not None else None
    as_json = shape in (SHAPE_JSON_PEM, SHAPE_JSON_HMAC)
    fields = (template.fields if template is not None else {}) or {}
    extra = dict(fields.get('extra') or {})
    doc = None
    if kind == KIND_HMAC:
        raw = os.urandom(HMAC_GENERATED_BYTES)
        if shape == SHAPE_BINARY_HMAC and same:
            value = raw
        else:
            key_text = b64url(raw)  # 86 ASCII characters; the key is these bytes
            if as_json:
                key_field = fields.get('key_field') if shape == SHAPE_JSON_HMAC else 'key'
                doc = dict(extra, kid=_new_kid('hmac', now), alg=alg or 'HS256')
                doc[key_field or 'key'] = key_text
            else:
                value = key_text
    else:
        if kind == KIND_RSA:
            bits = template.bits if same and template.bits and template.bits >= RSA_MIN_BITS else RSA_DEFAULT_BITS
            key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        else:
            crv = template.curve if same and template.curve in _CURVE_BY_CRV else 'P-256'
            key = ec.generate_private_key(_CURVE_BY_CRV[crv]())
            alg = None
        pem = _pem_private(key)
        if as_json:
            key_field = fields.get('key_field') if shape == SHAPE_JSON_PEM else 'private_key_pem'
            thumb = jwk_thumbprint(public_jwk(key.public_key()))
            doc = dict(extra, kid=thumb)
            doc[key_field or 'private_key_pem'] = pem
            if kind == KIND_RSA:
                doc['alg'] = alg or 'RS256'
            else:
                doc['alg'] = EC_CURVES[key.curve.name][1]
            if fields.get('has_public_key_pem'):
                doc['public_key_pem'] = _pem_public(key)
        else:
            value = pem
    if doc is not None:
        value = json.dumps(doc, sort_keys=True)
    if isinstance(value, bytes):
        parsed = parse_secret(secret_binary=value)
        parsed._sensitive = []
    else:
        parsed = parse_secret(secret_string=value)
    if not parsed.parses or parsed.problem:  # pragma: no cover - would be a bug here
        raise JWTKeyError('generated %s key does not check out: %s' % (kind, parsed.problem))
    return value, parsed


# --------------------------------------------------------------------------- JWKS


def jwks_summary(doc):
    """Kids, thumbprints and problems of a JWKS document (a dict with ``keys``).

    Returns ``dict(kids, thumbprints, by_kid, problems)``: ``thumbprints`` maps
    each RSA/EC key's RFC 7638 thumbprint to its kid (or None); ``by_kid``
    maps kid to thumbprint; ``problems`` lists sentences (a JWKS that
    publishes private or symmetric key material is one). Raises JWTKeyError
    when the document is not a JWKS.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get('keys'), list):
        raise JWTKeyError('the document is not a JWKS (a JSON object with a "keys" list)')
    kids = []
    thumbprints = {}
    by_kid = {}
    problems = []
    for index, jwk in enumerate(doc['keys']):
        if not isinstance(jwk, dict):
            problems.append('JWKS entry %d is not a JSON object' % index)
            continue
        kid = jwk.get('kid') if isinstance(jwk.get('kid'), str) else None
        label = 'kid %s' % kid if kid else 'entry %d' % index
        if kid:
            kids.append(kid)
        if any(m in jwk for m in ('d', 'p', 'q', 'dp', 'dq', 'qi', 'k')):
            problems.append('the JWKS publishes private or symmetric key material (%s): remove it and treat '
                            'that key as leaked' % label)
        thumb = None
        if jwk.get('kty') in ('RSA', 'EC'):
            try:
                thumb = jwk_thumbprint(jwk)
            except JWTKeyError as exc:
                problems.append('JWKS %s: %s' % (label, exc))
        if thumb:
            thumbprints[thumb] = kid
        if kid:
            by_kid[kid] = thumb
    return dict(kids=kids, thumbprints=thumbprints, by_kid=by_kid, problems=problems)


def published(parsed, summary):
    """Whether ``parsed`` (a ParsedKey) is in the JWKS ``summary``; with a problem sentence or None.

    RSA/EC: published when the JWKS holds the same public key (same RFC 7638
    thumbprint) or lists the key's kid. A kid listed with a different public
    key is reported. HMAC keys are not published in a JWKS: None.
    """
    if parsed is None or not parsed.parses or parsed.kind not in (KIND_RSA, KIND_EC):
        return None, None
    if parsed.thumbprint in summary['thumbprints']:
        listed_kid = summary['thumbprints'][parsed.thumbprint]
        if parsed.kid_source == 'explicit' and listed_kid and listed_kid != parsed.kid:
            return True, ('the JWKS publishes this public key under kid %s, but the secret says kid %s: tokens '
                          'carry %s and verifiers will not find it' % (listed_kid, parsed.kid, parsed.kid))
        return True, None
    if parsed.kid in summary['by_kid']:
        if summary['by_kid'][parsed.kid] is not None:
            return False, ('the JWKS lists kid %s with a different public key: verifiers will reject tokens '
                           'signed with this key' % parsed.kid)
        return True, None
    return False, None


# --------------------------------------------------------------------------- Secrets Manager helpers (pure)

# The staging labels and their reader live in secret_stages (shared with stripe_key_update).
STAGE_CURRENT = secret_stages.STAGE_CURRENT
STAGE_PREVIOUS = secret_stages.STAGE_PREVIOUS
STAGE_PENDING = secret_stages.STAGE_PENDING
STAGES = secret_stages.STAGES
stage_versions = secret_stages.stage_versions


def iso_utc(when):
    """ISO 8601 UTC text of an aware datetime (naive is taken as UTC); None stays None."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def age_days(when, now=None, digits=1):
    """Days (rounded to ``digits``; None: not rounded) from ``when`` to ``now``; None when ``when`` is None."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    days = max(0.0, (now - when).total_seconds() / 86400.0)
    return days if digits is None else round(days, digits)


def redact(text, secrets=()):
    """``text`` with every secret string and any PEM block replaced; safe for output."""
    if text is None:
        return None
    text = str(text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if isinstance(secret, bytes):
            continue
        text = text.replace(secret, MASK)
    text = _PEM_RE.sub('[PEM block removed]', text)
    return re.sub(r'-----BEGIN [A-Z0-9 ]+-----[^\s]*', '[PEM block removed]', text)


# Shorter values are not registered as no_log: Ansible would mask every
# occurrence of, say, "rsa" in the output.
SECRETS_MIN_MASK = 8


def remember_sensitive(values, sensitive, no_log_values):
    """Keep values read or generated for redaction (``redact``), and register the
    ones long enough as no_log so Ansible masks them anywhere in the output."""
    for value in values:
        if isinstance(value, str) and value:
            sensitive.append(value)
            if len(value) >= SECRETS_MIN_MASK:
                no_log_values.add(value)
