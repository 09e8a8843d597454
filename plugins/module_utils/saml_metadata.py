# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Read SAML 2.0 identity provider metadata, safely (pure logic, no network).

``parse_metadata(data, now)`` takes the raw bytes of an IdP metadata document
and returns its ``entity_id``, the ``sso_endpoints`` of its
``IDPSSODescriptor`` (binding and location) and its signing
``certificates`` (subject CN, validity, days left, expired), or raises a
typed ``MetadataError``.

Safety, before ElementTree ever sees the document:

- at most ``MAX_METADATA_BYTES`` (1 MiB) are accepted;
- a document that declares a DOCTYPE or an ENTITY is rejected outright, so
  neither external entities (file or network reads) nor entity expansion
  bombs ("billion laughs") can happen. The check is done twice: on the raw
  bytes (case-insensitive, also in UTF-16) and by an expat pre-pass whose
  DOCTYPE/entity handlers refuse the document before any entity is expanded.

``certificate_problems`` turns the certificates into the sentences an
on-call engineer reads. ``cryptography`` decodes the certificates; the
module checks ``HAS_CRYPTOGRAPHY`` and fails with ``missing_required_lib``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by sanity only
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

MAX_METADATA_BYTES = 1024 * 1024
MAX_CERTIFICATES = 20
MAX_ENDPOINTS = 20

NS_MD = 'urn:oasis:names:tc:SAML:2.0:metadata'
NS_DS = 'http://www.w3.org/2000/09/xmldsig#'
BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect'
BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST'

_MD = '{%s}' % NS_MD
_DS = '{%s}' % NS_DS

# kinds of MetadataError (the module's error_kind)
KIND_TOO_LARGE = 'too_large'
KIND_UNSAFE = 'unsafe_xml'
KIND_INVALID_XML = 'invalid_xml'
KIND_NOT_SAML = 'not_saml'

_FORBIDDEN = (b'<!doctype', b'<!entity')
_FORBIDDEN_UTF16 = tuple(f.decode('ascii').encode(enc) for f in _FORBIDDEN for enc in ('utf-16-le', 'utf-16-be'))
_WS = re.compile(r'\s+')


class MetadataError(Exception):
    """The document is not usable IdP metadata; ``kind`` says why."""

    def __init__(self, kind, message):
        self.kind = kind
        self.message = message
        super(MetadataError, self).__init__(message)


class _Refused(Exception):
    pass


def _refuse(*_args):
    raise _Refused()


def check_safe(data, max_bytes=MAX_METADATA_BYTES):
    """Raise MetadataError unless ``data`` (bytes) is small and declares no DOCTYPE/ENTITY."""
    if not isinstance(data, bytes):
        raise MetadataError(KIND_INVALID_XML, 'metadata must be bytes, got %s' % type(data).__name__)
    if len(data) > max_bytes:
        raise MetadataError(KIND_TOO_LARGE, 'metadata document is %d bytes, more than the %d bytes accepted'
                            % (len(data), max_bytes))
    if not data.strip():
        raise MetadataError(KIND_INVALID_XML, 'metadata document is empty')
    low = data.lower()
    if any(marker in low for marker in _FORBIDDEN + _FORBIDDEN_UTF16):
        raise MetadataError(KIND_UNSAFE, 'metadata document declares a DOCTYPE or ENTITY; refused (SAML metadata '
                            'never needs one, and entities allow external-entity reads and expansion bombs)')
    expat_prepass(data)


def expat_prepass(data):
    """Parse ``data`` with expat, refusing any DOCTYPE/entity declaration (second line of defence).

    The handlers fire at the declaration itself, before any entity is expanded
    or any external resource is read; expat detects the encoding itself.
    """
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    try:
        parser.Parse(data, True)
    except _Refused:
        raise MetadataError(KIND_UNSAFE, 'metadata document declares a DOCTYPE or ENTITY; refused')
    except xml.parsers.expat.ExpatError as exc:
        raise MetadataError(KIND_INVALID_XML, 'metadata is not well-formed XML: %s' % exc)


def _iso(stamp):
    return stamp.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace('+00:00', 'Z')


def _utc(cert, name):
    value = getattr(cert, name + '_utc', None)  # cryptography >= 42
    if value is None:
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def _subject(cert):
    try:
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names:
            return str(names[0].value)
        return cert.subject.rfc4514_string() or None
    except Exception:  # an odd subject must not hide the dates
        return None


def certificate_info(der, now):
    """{subject, not_before, not_after, days_left, expired, not_yet_valid, sha256_fingerprint} of one DER certificate.

    ``days_left`` is whole days until not_after (negative once expired).
    Raises ValueError for bytes that are not a certificate.
    """
    cert = x509.load_der_x509_certificate(der)
    not_before = _utc(cert, 'not_valid_before')
    not_after = _utc(cert, 'not_valid_after')
    left = (not_after - now).total_seconds()
    return dict(
        subject=_subject(cert),
        not_before=_iso(not_before),
        not_after=_iso(not_after),
        days_left=int(left // 86400),
        expired=now >= not_after,
        not_yet_valid=now < not_before,
        sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(':').upper(),
    )


def _text(elem):
    return (elem.text or '').strip() if elem is not None else ''


def _idp_descriptor(root):
    """(EntityDescriptor, IDPSSODescriptor) of the first entity that is an IdP."""
    if root.tag == _MD + 'EntityDescriptor':
        entities = [root]
    elif root.tag == _MD + 'EntitiesDescriptor':
        entities = list(root.iter(_MD + 'EntityDescriptor'))
    else:
        raise MetadataError(KIND_NOT_SAML, 'not SAML 2.0 metadata: the root element is %s, expected md:EntityDescriptor '
                            'or md:EntitiesDescriptor (namespace %s)' % (root.tag, NS_MD))
    for entity in entities:
        idp = entity.find(_MD + 'IDPSSODescriptor')
        if idp is not None:
            return entity, idp
    raise MetadataError(KIND_NOT_SAML, 'SAML metadata without an IDPSSODescriptor: this is not identity provider '
                        'metadata (service provider metadata?)')


def parse_metadata(data, now=None, max_bytes=MAX_METADATA_BYTES):
    """Parse IdP metadata bytes; return {entity_id, sso_endpoints, certificates, certificate_errors}.

    ``now`` (an aware datetime, default the current UTC time) is the reference
    for days_left/expired. Raises MetadataError (kind: too_large, unsafe_xml,
    invalid_xml, not_saml). A certificate that cannot be decoded is named in
    ``certificate_errors`` rather than failing the whole document.
    """
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    check_safe(data, max_bytes)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:  # pragma: no cover - the expat pre-pass catches this first
        raise MetadataError(KIND_INVALID_XML, 'metadata is not well-formed XML: %s' % exc)
    entity, idp = _idp_descriptor(root)
    entity_id = (entity.get('entityID') or '').strip()
    if not entity_id:
        raise MetadataError(KIND_NOT_SAML, 'SAML metadata EntityDescriptor has no entityID')

    endpoints = []
    for sso in idp.findall(_MD + 'SingleSignOnService')[:MAX_ENDPOINTS]:
        endpoints.append(dict(binding=(sso.get('Binding') or '').strip() or None,
                              location=(sso.get('Location') or '').strip() or None))

    certificates = []
    errors = []
    seen = set()
    for key in idp.findall(_MD + 'KeyDescriptor'):
        use = (key.get('use') or '').strip()
        if use not in ('', 'signing'):
            continue
        for node in key.iter(_DS + 'X509Certificate'):
            raw = _WS.sub('', _text(node))
            if not raw:
                continue
            try:
                der = base64.b64decode(raw, validate=True)
                info = certificate_info(der, now)
            except (binascii.Error, ValueError) as exc:
                errors.append('a signing certificate in the metadata cannot be decoded (%s)' % str(exc)[:120])
                continue
            if info['sha256_fingerprint'] in seen:
                continue
            seen.add(info['sha256_fingerprint'])
            info['use'] = use or 'signing and encryption'
            certificates.append(info)
            if len(certificates) >= MAX_CERTIFICATES:
                break
        if len(certificates) >= MAX_CERTIFICATES:
            break
    return dict(entity_id=entity_id, sso_endpoints=endpoints, certificates=certificates,
                certificate_errors=errors)


def pick_sso_endpoint(endpoints):
    """The endpoint to probe: the HTTP-Redirect one, else the first with a location; None if none."""
    usable = [e for e in endpoints or [] if e.get('location')]
    for endpoint in usable:
        if endpoint.get('binding') == BINDING_REDIRECT:
            return endpoint
    return usable[0] if usable else None


def with_contact(sentence, contact):
    """``sentence`` followed by whom to call, when a support contact is known."""
    sentence = sentence.rstrip()
    if not sentence.endswith('.'):
        sentence += '.'
    if contact:
        sentence += ' Contact the identity provider\'s support: %s.' % contact.rstrip('.')
    return sentence


def certificate_problems(certificates, min_days_left, contact=None, errors=None):
    """Sentences about expired, expiring, not yet valid, missing or undecodable signing certificates."""
    problems = []
    for cert in certificates or []:
        name = 'CN=%s' % cert['subject'] if cert.get('subject') else 'without a subject'
        if cert['expired']:
            problems.append(with_contact(
                'IdP signing certificate %s expired on %s (%d days ago): assertions signed with it fail validation'
                % (name, cert['not_after'], -cert['days_left']), contact))
        elif cert['days_left'] < min_days_left:
            problems.append(with_contact(
                'IdP signing certificate %s expires in %d days (on %s), fewer than min_days_left=%d'
                % (name, cert['days_left'], cert['not_after'], min_days_left), contact))
        elif cert.get('not_yet_valid'):
            problems.append(with_contact(
                'IdP signing certificate %s is not valid before %s' % (name, cert['not_before']), contact))
    for error in errors or []:
        problems.append(with_contact('IdP metadata: %s' % error, contact))
    if not certificates and not errors:
        problems.append(with_contact('IdP metadata lists no signing certificate: assertions cannot be verified',
                                     contact))
    return problems
