"""module_utils/saml_metadata.py: safe parsing of SAML 2.0 IdP metadata.

The metadata documents have the shape real IdPs publish (md:EntityDescriptor >
md:IDPSSODescriptor with KeyDescriptor/ds:KeyInfo/ds:X509Data and
SingleSignOnService elements for the HTTP-Redirect and HTTP-POST bindings).
The certificates are real X.509 certificates made here with ``cryptography``
(self-signed, like most IdP signing certificates), with validity windows
around a fixed ``now`` so expired/expiring/valid are deterministic.
"""

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.svpms.incident_response.plugins.module_utils.saml_metadata import (
    BINDING_POST,
    BINDING_REDIRECT,
    MAX_METADATA_BYTES,
    MetadataError,
    certificate_problems,
    check_safe,
    expat_prepass,
    parse_metadata,
    pick_sso_endpoint,
)

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
ENTITY = 'https://login.example.com/saml/metadata'
SSO_REDIRECT = 'https://login.example.com/saml/sso/redirect'
SSO_POST = 'https://login.example.com/saml/sso/post'


def make_cert_b64(cn, not_before, not_after):
    """A self-signed certificate (EC P-256) as the base64 DER text metadata carries."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Example IdP')])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode('ascii')
    # wrapped at 64 columns with indentation, as IdPs publish it
    return '\n'.join('          ' + b64[i:i + 64] for i in range(0, len(b64), 64))


def metadata(certs=(), endpoints=((BINDING_REDIRECT, SSO_REDIRECT), (BINDING_POST, SSO_POST)), entity=ENTITY,
             extra_key=''):
    keys = ''.join('''
    <md:KeyDescriptor%s>
      <ds:KeyInfo>
        <ds:X509Data>
          <ds:X509Certificate>
%s
          </ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>''' % (' use="%s"' % use if use else '', b64) for use, b64 in certs)
    sso = ''.join('\n    <md:SingleSignOnService Binding="%s" Location="%s"/>' % e for e in endpoints)
    return ('''<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
                     xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="%s" validUntil="2027-01-01T00:00:00Z">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false"
                       protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">%s%s
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>%s
  </md:IDPSSODescriptor>
  <md:Organization>
    <md:OrganizationName xml:lang="en">Example</md:OrganizationName>
    <md:OrganizationDisplayName xml:lang="en">Example</md:OrganizationDisplayName>
    <md:OrganizationURL xml:lang="en">https://example.com</md:OrganizationURL>
  </md:Organization>
</md:EntityDescriptor>
''' % (entity, keys, extra_key, sso)).encode('utf-8')


def days(n):
    return datetime.timedelta(days=n)


@pytest.fixture(scope='module')
def certs():
    return dict(
        valid=make_cert_b64('login.example.com', NOW - days(100), NOW + days(265)),
        expiring=make_cert_b64('login-old.example.com', NOW - days(360), NOW + days(5)),
        expired=make_cert_b64('login-2025.example.com', NOW - days(400), NOW - days(7)),
        encryption=make_cert_b64('enc.example.com', NOW - days(10), NOW - days(1)),
        future=make_cert_b64('login-next.example.com', NOW + days(3), NOW + days(400)),
    )


def test_parses_entity_endpoints_and_valid_certificate(certs):
    parsed = parse_metadata(metadata([('signing', certs['valid'])]), now=NOW)
    assert parsed['entity_id'] == ENTITY
    assert parsed['sso_endpoints'] == [dict(binding=BINDING_REDIRECT, location=SSO_REDIRECT),
                                       dict(binding=BINDING_POST, location=SSO_POST)]
    assert len(parsed['certificates']) == 1
    cert = parsed['certificates'][0]
    assert cert['subject'] == 'login.example.com'
    assert cert['not_before'] == '2026-08-19T12:00:00Z'
    assert cert['not_after'] == '2027-08-19T12:00:00Z'
    assert cert['days_left'] == 265
    assert cert['expired'] is False
    assert cert['not_yet_valid'] is False
    assert len(cert['sha256_fingerprint'].split(':')) == 32
    assert parsed['certificate_errors'] == []
    assert certificate_problems(parsed['certificates'], 14) == []


def test_expired_and_expiring_certificates_with_contact(certs):
    doc = metadata([('signing', certs['expired']), ('', certs['expiring']), ('encryption', certs['encryption'])])
    parsed = parse_metadata(doc, now=NOW)
    by_cn = dict((c['subject'], c) for c in parsed['certificates'])
    # use="encryption" is left out; a KeyDescriptor without use counts as signing
    assert sorted(by_cn) == ['login-2025.example.com', 'login-old.example.com']
    assert by_cn['login-2025.example.com']['expired'] is True
    assert by_cn['login-2025.example.com']['days_left'] == -7
    assert by_cn['login-old.example.com']['expired'] is False
    assert by_cn['login-old.example.com']['days_left'] == 5
    assert by_cn['login-old.example.com']['use'] == 'signing and encryption'
    problems = certificate_problems(parsed['certificates'], 14, contact='Identity team, +49 30 1234567')
    assert len(problems) == 2
    assert 'CN=login-2025.example.com expired on ' in problems[0] and '(7 days ago)' in problems[0]
    assert 'CN=login-old.example.com expires in 5 days' in problems[1] and 'min_days_left=14' in problems[1]
    assert all(p.endswith("Contact the identity provider's support: Identity team, +49 30 1234567.") for p in problems)


def test_expiry_boundary_and_threshold(certs):
    parsed = parse_metadata(metadata([('signing', certs['expiring'])]), now=NOW)
    assert certificate_problems(parsed['certificates'], 5) == []  # 5 days left, threshold 5: fine
    assert len(certificate_problems(parsed['certificates'], 6)) == 1
    # exactly at not_after the certificate is expired
    at_end = NOW + days(5)
    cert = parse_metadata(metadata([('signing', certs['expiring'])]), now=at_end)['certificates'][0]
    assert cert['expired'] is True and cert['days_left'] == 0


def test_not_yet_valid_and_duplicates(certs):
    doc = metadata([('signing', certs['future']), ('signing', certs['future'])])
    parsed = parse_metadata(doc, now=NOW)
    assert len(parsed['certificates']) == 1  # the same certificate twice is reported once
    assert parsed['certificates'][0]['not_yet_valid'] is True
    problems = certificate_problems(parsed['certificates'], 14)
    assert problems == ['IdP signing certificate CN=login-next.example.com is not valid before 2026-11-30T12:00:00Z.']


def test_no_certificate_and_undecodable_certificate(certs):
    parsed = parse_metadata(metadata([]), now=NOW)
    assert parsed['certificates'] == []
    assert certificate_problems([], 14) == ['IdP metadata lists no signing certificate: assertions cannot be verified.']
    parsed = parse_metadata(metadata([('signing', 'bm90IGEgY2VydGlmaWNhdGU='), ('signing', certs['valid'])]), now=NOW)
    assert [c['subject'] for c in parsed['certificates']] == ['login.example.com']
    assert len(parsed['certificate_errors']) == 1
    problems = certificate_problems(parsed['certificates'], 14, errors=parsed['certificate_errors'])
    assert problems[0].startswith('IdP metadata: a signing certificate in the metadata cannot be decoded')


def test_entities_descriptor_picks_the_idp(certs):
    idp = metadata([('signing', certs['valid'])]).decode('utf-8').split('?>', 1)[1]
    sp = ('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com">'
          '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/>'
          '</md:EntityDescriptor>')
    doc = ('<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">%s%s</md:EntitiesDescriptor>'
           % (sp, idp)).encode('utf-8')
    assert parse_metadata(doc, now=NOW)['entity_id'] == ENTITY


def test_pick_sso_endpoint_prefers_redirect():
    post = dict(binding=BINDING_POST, location=SSO_POST)
    redirect = dict(binding=BINDING_REDIRECT, location=SSO_REDIRECT)
    assert pick_sso_endpoint([post, redirect]) == redirect
    assert pick_sso_endpoint([post]) == post
    assert pick_sso_endpoint([dict(binding=BINDING_REDIRECT, location=None)]) is None
    assert pick_sso_endpoint([]) is None


BILLION_LAUGHS = b'''<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol9;"/>'''

XXE = b'''<?xml version="1.0"?>
<!DOCTYPE md [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&xxe;"/>'''


@pytest.mark.parametrize('doc', [
    BILLION_LAUGHS,
    XXE,
    b'<!doctype html><html></html>',
    b'<?xml version="1.0"?><!DOCTYPE md SYSTEM "http://127.0.0.1:9/evil.dtd"><md:EntityDescriptor/>',
    XXE.decode('ascii').replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode('utf-16'),
], ids=['billion-laughs', 'xxe-file', 'html-doctype', 'external-dtd', 'xxe-utf16'])
def test_doctype_and_entity_rejected(doc):
    with pytest.raises(MetadataError) as info:
        parse_metadata(doc, now=NOW)
    assert info.value.kind == 'unsafe_xml'
    assert 'DOCTYPE or ENTITY' in info.value.message


@pytest.mark.parametrize('doc', [BILLION_LAUGHS, XXE, b'<?xml version="1.0"?><!DOCTYPE md><md/>'],
                         ids=['billion-laughs', 'xxe-file', 'bare-doctype'])
def test_expat_prepass_refuses_declarations_on_its_own(doc):
    """The second line of defence, without the byte scan in front of it."""
    with pytest.raises(MetadataError) as info:
        expat_prepass(doc)
    assert info.value.kind == 'unsafe_xml'


@pytest.mark.parametrize('doc, kind, text', [
    (b'<html><body>Login</body></html>', 'not_saml', 'root element is html'),
    (b'{"error": "not found"}', 'invalid_xml', 'not well-formed XML'),
    (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">', 'invalid_xml',
     'not well-formed XML'),
    (b'   \n', 'invalid_xml', 'empty'),
    (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp">'
     b'<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/>'
     b'</md:EntityDescriptor>', 'not_saml', 'without an IDPSSODescriptor'),
    (b'<EntityDescriptor entityID="x"><IDPSSODescriptor/></EntityDescriptor>', 'not_saml', 'expected md:EntityDescriptor'),
    (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><md:IDPSSODescriptor '
     b'protocolSupportEnumeration="x"/></md:EntityDescriptor>', 'not_saml', 'no entityID'),
], ids=['html', 'json', 'truncated', 'empty', 'sp-metadata', 'no-namespace', 'no-entity-id'])
def test_not_saml_or_not_xml(doc, kind, text):
    with pytest.raises(MetadataError) as info:
        parse_metadata(doc, now=NOW)
    assert info.value.kind == kind
    assert text in info.value.message


def test_oversize_rejected_before_parsing(certs):
    doc = metadata([('signing', certs['valid'])])
    padding = b'<!-- ' + b'x' * (MAX_METADATA_BYTES) + b' -->'
    with pytest.raises(MetadataError) as info:
        parse_metadata(doc + padding, now=NOW)
    assert info.value.kind == 'too_large'
    # a smaller cap applies when given
    with pytest.raises(MetadataError):
        parse_metadata(doc, now=NOW, max_bytes=100)
    assert parse_metadata(doc, now=NOW, max_bytes=len(doc))['entity_id'] == ENTITY


def test_check_safe_accepts_plain_metadata_and_refuses_str(certs):
    check_safe(metadata([('signing', certs['valid'])]))
    with pytest.raises(MetadataError) as info:
        check_safe(u'<md/>')
    assert info.value.kind == 'invalid_xml'


def test_default_now_is_current_time(certs):
    parsed = parse_metadata(metadata([('signing', certs['valid'])]))
    assert isinstance(parsed['certificates'][0]['days_left'], int)
