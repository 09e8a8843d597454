"""Authentication building blocks of the sandbox (scenario 3), shared by the seed,
the CLI and the service twin: password hashes, JWT signing keys held in a
Secrets Manager secret, hand-made JWS sign/verify, and the certificate and
SAML metadata of the external IdP's stand-in.

Signing-key secret shapes read here are the ones our jwt_keys module utils
understand for RSA/EC keys (plugins/module_utils/jwt_keys.py):

    pem       the secret string is a PEM private key (PKCS#8, PKCS#1 or SEC1);
              a public-key PEM can verify but not sign
    json_pem  a JSON object with the PEM in private_key_pem (or private_key, or
              pem), optionally kid and alg

The kid is the JSON secret's explicit kid, else the RFC 7638 SHA-256
thumbprint of the public key (the same computation as jwt_keys.jwk_thumbprint).
HMAC secrets are not supported by the twin (nothing to publish in a JWKS).
Nothing here puts key material or passwords into an exception message.
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import time
import uuid
import zlib
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

from . import constants as C

# ------------------------------------------------------------------ passwords
HASH_ALGORITHM = 'pbkdf2_sha256'
_MAX_ITERATIONS = 1000000


def hash_password(password, iterations=C.PBKDF2_ITERATIONS, salt=None):
    """'pbkdf2_sha256$<iterations>$<salt>$<base64 hash>' of a password (a new random salt by default)."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'), salt.encode('utf-8'), iterations)
    return '%s$%d$%s$%s' % (HASH_ALGORITHM, iterations, salt, base64.b64encode(digest).decode('ascii'))


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))  # unknown users cost as much as known ones


def verify_password(password, encoded):
    """True when `password` matches `encoded` (constant-time compare). A malformed hash never matches."""
    if encoded is None:
        encoded, known = _DUMMY_HASH, False
    else:
        known = True
    try:
        algorithm, iterations, salt, b64 = encoded.split('$', 3)
        iterations = int(iterations)
        expected = base64.b64decode(b64, validate=True)
    except (AttributeError, ValueError, binascii.Error):
        return False
    if algorithm != HASH_ALGORITHM or not 1 <= iterations <= _MAX_ITERATIONS:
        return False
    digest = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'), salt.encode('utf-8'), iterations)
    return hmac.compare_digest(digest, expected) and known


# ---------------------------------------------------------------- JWT keys
PEM_FIELDS = ('private_key_pem', 'private_key', 'pem')
_PEM_RE = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----', re.S)
# JWS alg -> (key kind, hash, scheme or EC coordinate bytes)
ALGS = {
    'RS256': ('rsa', hashes.SHA256, 'pkcs1'), 'RS384': ('rsa', hashes.SHA384, 'pkcs1'),
    'RS512': ('rsa', hashes.SHA512, 'pkcs1'),
    'PS256': ('rsa', hashes.SHA256, 'pss'), 'PS384': ('rsa', hashes.SHA384, 'pss'),
    'PS512': ('rsa', hashes.SHA512, 'pss'),
    'ES256': ('ec', hashes.SHA256, 32), 'ES384': ('ec', hashes.SHA384, 48), 'ES512': ('ec', hashes.SHA512, 66),
}
EC_CURVES = {'secp256r1': ('P-256', 'ES256', 32), 'secp384r1': ('P-384', 'ES384', 48),
             'secp521r1': ('P-521', 'ES512', 66)}
_CURVE_BY_CRV = {'P-256': ec.SECP256R1, 'P-384': ec.SECP384R1, 'P-521': ec.SECP521R1}


class KeyLoadError(Exception):
    """A secret value that is not a usable JWT key (the message never holds the value)."""


class TokenError(Exception):
    """A bearer token that does not verify. `code`: invalid_token or token_expired."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def b64url_decode(text):
    if not isinstance(text, str) or not re.match(r'^[A-Za-z0-9_-]*$', text):
        raise ValueError('not base64url')
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def _int_bytes(value, length=None):
    return value.to_bytes(length or max(1, (value.bit_length() + 7) // 8), 'big')


def public_jwk(public_key):
    """Public JWK members of an RSA or EC public key (as jwt_keys.public_jwk)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        nums = public_key.public_numbers()
        return {'kty': 'RSA', 'n': b64url(_int_bytes(nums.n)), 'e': b64url(_int_bytes(nums.e))}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = EC_CURVES.get(public_key.curve.name)
        if curve is None:
            raise KeyLoadError('EC curve %s is not supported (P-256, P-384, P-521)' % public_key.curve.name)
        nums = public_key.public_numbers()
        return {'kty': 'EC', 'crv': curve[0], 'x': b64url(_int_bytes(nums.x, curve[2])),
                'y': b64url(_int_bytes(nums.y, curve[2]))}
    raise KeyLoadError('unsupported key type %s (RSA and EC only)' % type(public_key).__name__)


def jwk_thumbprint(jwk):
    """RFC 7638 SHA-256 thumbprint (base64url) of an RSA or EC public JWK."""
    members = ('e', 'kty', 'n') if jwk['kty'] == 'RSA' else ('crv', 'kty', 'x', 'y')
    canonical = json.dumps({m: jwk[m] for m in members}, sort_keys=True, separators=(',', ':'))
    return b64url(hashlib.sha256(canonical.encode('utf-8')).digest())


class JWTKey:
    """One signing/verification key: kid, alg, the public JWK; signs when it holds the private key."""

    def __init__(self, public_key, private_key=None, alg=None, kid=None, version_id=None, shape='pem'):
        self.public_key = public_key
        self.private_key = private_key
        self.jwk_public = public_jwk(public_key)
        self.thumbprint = jwk_thumbprint(self.jwk_public)
        self.kind = 'rsa' if self.jwk_public['kty'] == 'RSA' else 'ec'
        if self.kind == 'rsa':
            self.alg = alg or 'RS256'
            if ALGS.get(self.alg, ('',))[0] != 'rsa':
                raise KeyLoadError('alg %s does not fit an RSA key' % self.alg)
            if public_key.key_size < 2048:
                raise KeyLoadError('RSA key is %d bits; at least 2048 are required' % public_key.key_size)
        else:
            expected = EC_CURVES[public_key.curve.name][1]
            if alg not in (None, expected):
                raise KeyLoadError('alg %s does not fit an EC %s key (expected %s)'
                                   % (alg, self.jwk_public['crv'], expected))
            self.alg = expected
        self.kid = kid or self.thumbprint
        self.version_id = version_id
        self.shape = shape

    @property
    def can_sign(self):
        return self.private_key is not None

    def jwk(self):
        return dict(self.jwk_public, kid=self.kid, alg=self.alg, use='sig')

    def sign(self, data):
        kind, hash_cls, scheme = ALGS[self.alg]
        if kind == 'rsa':
            pad = padding.PKCS1v15() if scheme == 'pkcs1' else padding.PSS(
                mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)
            return self.private_key.sign(data, pad, hash_cls())
        r, s = decode_dss_signature(self.private_key.sign(data, ec.ECDSA(hash_cls())))
        return _int_bytes(r, scheme) + _int_bytes(s, scheme)

    def verify(self, data, signature):
        kind, hash_cls, scheme = ALGS[self.alg]
        try:
            if kind == 'rsa':
                pad = padding.PKCS1v15() if scheme == 'pkcs1' else padding.PSS(
                    mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)
                self.public_key.verify(signature, data, pad, hash_cls())
            else:
                if len(signature) != 2 * scheme:
                    return False
                der = encode_dss_signature(int.from_bytes(signature[:scheme], 'big'),
                                           int.from_bytes(signature[scheme:], 'big'))
                self.public_key.verify(der, data, ec.ECDSA(hash_cls()))
            return True
        except InvalidSignature:
            return False


def load_key(secret_string, version_id=None):
    """A JWTKey from a secret value (shapes pem / json_pem). Raises KeyLoadError naming the problem."""
    if not isinstance(secret_string, str) or not secret_string.strip():
        raise KeyLoadError('the secret version holds no text value')
    text = secret_string.strip()
    kid = alg = None
    shape = 'pem'
    if text.startswith('{'):
        try:
            doc = json.loads(text)
        except ValueError:
            raise KeyLoadError('the value starts like JSON but is not valid JSON')
        if not isinstance(doc, dict):
            raise KeyLoadError('the JSON value is not an object')
        field = next((f for f in PEM_FIELDS if f in doc), None)
        if field is None:
            raise KeyLoadError('the JSON object has no PEM key field (%s); HMAC keys are not supported by the '
                               'service twin' % ', '.join(PEM_FIELDS))
        kid, alg, text = doc.get('kid'), doc.get('alg'), doc[field]
        shape = 'json_pem'
        if not isinstance(text, str) or (kid is not None and not isinstance(kid, str)) or (
                alg is not None and not isinstance(alg, str)):
            raise KeyLoadError('fields %s, kid and alg of the JSON secret must be strings' % field)
    match = _PEM_RE.search(text)
    if not match:
        raise KeyLoadError('the value is not a PEM key (HMAC secrets are not supported by the service twin)')
    label, data = match.group(1), match.group(0).encode('ascii', 'replace')
    try:
        if 'ENCRYPTED' in label:
            raise KeyLoadError('the PEM private key is encrypted')
        if 'PRIVATE KEY' in label:
            private = serialization.load_pem_private_key(data, password=None)
            public = private.public_key()
        elif 'PUBLIC KEY' in label:
            private, public = None, serialization.load_pem_public_key(data)
        else:
            raise KeyLoadError('PEM block %s is not a key' % label)
    except KeyLoadError:
        raise
    except Exception as exc:  # ValueError / TypeError / UnsupportedAlgorithm; never the value
        raise KeyLoadError('the PEM %s block does not load as a key (%s)' % (label, type(exc).__name__))
    return JWTKey(public, private, alg=alg, kid=kid, version_id=version_id, shape=shape)


def _pem(private_key):
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode('ascii')


def generate_rsa_pem(bits=2048):
    """A new RSA private key as a PKCS#8 PEM string (the seed's secret shape)."""
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def new_secret_like(template_value=None):
    """A new key value of the same kind and shape as `template_value` (RSA PEM when unknown)."""
    try:
        template = load_key(template_value)
    except KeyLoadError:
        template = None
    if template is not None and template.kind == 'ec':
        private = ec.generate_private_key(_CURVE_BY_CRV[template.jwk_public['crv']]())
    else:
        private = rsa.generate_private_key(public_exponent=65537,
                                           key_size=max(2048, template.public_key.key_size if template else 2048))
    pem = _pem(private)
    if template is None or template.shape != 'json_pem':
        return pem
    doc = json.loads(template_value)
    field = next(f for f in PEM_FIELDS if f in doc)
    key = JWTKey(private.public_key(), private, alg=None if template.kind == 'ec' else template.alg)
    doc.update({field: pem, 'kid': key.thumbprint, 'alg': key.alg})
    if 'public_key_pem' in doc:
        doc['public_key_pem'] = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode('ascii')
    return json.dumps(doc, sort_keys=True)


# --------------------------------------------------------------------- JWS
def encode_jwt(claims, key):
    """A compact JWS (header alg, typ JWT, kid) of `claims`, signed with `key`."""
    header = {'alg': key.alg, 'typ': 'JWT', 'kid': key.kid}
    signing_input = '%s.%s' % (b64url(json.dumps(header, separators=(',', ':')).encode('utf-8')),
                               b64url(json.dumps(claims, separators=(',', ':')).encode('utf-8')))
    return '%s.%s' % (signing_input, b64url(key.sign(signing_input.encode('ascii'))))


def decode_jwt(token, keys_by_kid, now=None):
    """Verify a compact JWS with the key named by its kid; -> claims. Raises TokenError."""
    if not isinstance(token, str) or token.count('.') != 2 or len(token) > 8192:
        raise TokenError('invalid_token', 'the bearer token is not a compact JWS')
    head_b64, body_b64, sig_b64 = token.split('.')
    try:
        header = json.loads(b64url_decode(head_b64))
        claims = json.loads(b64url_decode(body_b64))
        signature = b64url_decode(sig_b64)
    except (ValueError, UnicodeDecodeError):
        raise TokenError('invalid_token', 'the bearer token is not a compact JWS')
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError('invalid_token', 'the token header or claims are not JSON objects')
    kid, alg = header.get('kid'), header.get('alg')
    key = keys_by_kid.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenError('invalid_token', 'the token is signed with kid %s, which is not among the verification '
                         'keys (AWSCURRENT/AWSPREVIOUS of the signing-key secret)' % (str(kid)[:80],))
    if alg != key.alg:
        raise TokenError('invalid_token', 'the token alg %s does not match key %s (%s)' % (str(alg)[:16], kid, key.alg))
    if not key.verify((head_b64 + '.' + body_b64).encode('ascii'), signature):
        raise TokenError('invalid_token', 'the token signature does not verify with key %s' % kid)
    exp = claims.get('exp')
    if not isinstance(exp, (int, float)):
        raise TokenError('invalid_token', 'the token has no exp claim')
    if (now if now is not None else time.time()) >= exp:
        raise TokenError('token_expired', 'the token expired at %s' % datetime.datetime.fromtimestamp(
            exp, datetime.timezone.utc).isoformat(timespec='seconds'))
    if not isinstance(claims.get('sub'), str) or not isinstance(claims.get('sid'), str):
        raise TokenError('invalid_token', 'the token lacks the sub or sid claim')
    return claims


# ------------------------------------------------------- the IdP's stand-in
IDP_SUBJECT_CN = 'svpms-sandbox-idp signing (IdP stand-in)'


def _idp_key(state_dir):
    """The IdP stand-in's RSA signing key from the state dir; made (mode 0600) when missing."""
    path = os.path.join(state_dir, C.IDP_KEY_FILE)
    try:
        with open(path, 'rb') as fh:
            return serialization.load_pem_private_key(fh.read(), password=None)
    except (OSError, ValueError):
        pass
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as fh:
        fh.write(_pem(key).encode('ascii'))
    os.replace(tmp, path)
    return key


def write_idp_cert(state_dir, not_before, not_after):
    """(Re)write the IdP stand-in's self-signed signing certificate (same key). -> cert_summary()."""
    key = _idp_key(state_dir)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, IDP_SUBJECT_CN),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'SVPMS sandbox (external IdP stand-in)')])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = os.path.join(state_dir, C.IDP_CERT_FILE)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)
    return cert_summary(cert)


def new_valid_idp_cert(state_dir, days=C.IDP_CERT_DAYS):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return write_idp_cert(state_dir, now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days))


def new_expired_idp_cert(state_dir, days_ago=C.IDP_EXPIRED_DAYS_AGO):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return write_idp_cert(state_dir, now - datetime.timedelta(days=C.IDP_CERT_DAYS + days_ago),
                          now - datetime.timedelta(days=days_ago))


def read_idp_cert(state_dir):
    """The IdP stand-in's certificate from the state dir. Raises OSError / ValueError."""
    with open(os.path.join(state_dir, C.IDP_CERT_FILE), 'rb') as fh:
        return x509.load_pem_x509_certificate(fh.read())


def _utc(cert, name):
    value = getattr(cert, name + '_utc', None)
    return value if value is not None else getattr(cert, name).replace(tzinfo=datetime.timezone.utc)


def cert_summary(cert, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = _utc(cert, 'not_valid_before'), _utc(cert, 'not_valid_after')
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {'subject': str(names[0].value) if names else None,
            'not_before': not_before.isoformat(), 'not_after': not_after.isoformat(),
            'valid_now': not_before <= now < not_after,
            'sha256_fingerprint': cert.fingerprint(hashes.SHA256()).hex(':').upper()}


def idp_cert_valid(state_dir):
    """True when the IdP stand-in's certificate file reads and is valid now."""
    try:
        return cert_summary(read_idp_cert(state_dir))['valid_now']
    except (OSError, ValueError):
        return False


def idp_metadata(cert, entity_id, sso_url, contact=C.SAML_SUPPORT_CONTACT):
    """SAML 2.0 IdP metadata (bytes) with one signing certificate and an HTTP-Redirect SSO endpoint."""
    der_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode('ascii')
    wrapped = '\n'.join(der_b64[i:i + 64] for i in range(0, len(der_b64), 64))
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
           'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID=%s>\n'
           '  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" '
           'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\n'
           '    <md:KeyDescriptor use="signing">\n'
           '      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n%s\n</ds:X509Certificate></ds:X509Data>'
           '</ds:KeyInfo>\n'
           '    </md:KeyDescriptor>\n'
           '    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>\n'
           '    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
           'Location=%s/>\n'
           '  </md:IDPSSODescriptor>\n'
           '  <md:ContactPerson contactType="support">\n'
           '    <md:Company>%s</md:Company>\n'
           '  </md:ContactPerson>\n'
           '</md:EntityDescriptor>\n') % (quoteattr(entity_id), wrapped, quoteattr(sso_url), escape(contact))
    return doc.encode('utf-8')


def authn_request_url(sso_url, sp_entity_id, acs_url, relay_state='/'):
    """The HTTP-Redirect binding URL of a fresh (unsigned) AuthnRequest to the IdP."""
    issued = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    request = ('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
               'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_%s" Version="2.0" IssueInstant="%s" '
               'Destination=%s AssertionConsumerServiceURL=%s '
               'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
               '<saml:Issuer>%s</saml:Issuer></samlp:AuthnRequest>'
               % (uuid.uuid4().hex, issued, quoteattr(sso_url), quoteattr(acs_url), escape(sp_entity_id)))
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflater.compress(request.encode('utf-8')) + deflater.flush()
    return '%s?%s' % (sso_url, urlencode({'SAMLRequest': base64.b64encode(raw).decode('ascii'),
                                          'RelayState': relay_state}))
