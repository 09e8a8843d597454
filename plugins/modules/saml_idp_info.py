#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: saml_idp_info
short_description: Check a SAML identity provider through its metadata during login failures
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Fetches the SAML 2.0 metadata of an identity provider (IdP) from O(metadata_url) and reports its
    entity id, its single sign-on endpoints and its signing certificates with their validity.
  - Says in plain sentences what would make logins fail (RV(problems)) - the metadata cannot be fetched
    or is not SAML metadata, a signing certificate expired or expires within O(min_days_left) days,
    the single sign-on endpoint does not answer. Each sentence names O(support_contact) when given.
  - The metadata is parsed safely - at most 1 MiB, and a document that declares a C(DOCTYPE) or an
    C(ENTITY) is refused (no external entities, no entity expansion bombs).
  - Metadata that cannot be fetched or parsed is a finding, not a failure - the task succeeds with
    RV(error_kind) and RV(msg).
  - Always reports C(changed=false); only sends C(GET) requests.
options:
  metadata_url:
    description:
      - URL of the IdP metadata, C(http://) or C(https://), without embedded credentials.
      - For example V(https://login.example.com/saml/metadata).
    type: str
    required: true
  timeout:
    description:
      - Seconds each request (the metadata fetch, the endpoint check) may take in all, more than 0 and at most 120.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the TLS certificates of the metadata URL and the single sign-on endpoint.
        Switch it off only for a test IdP.
    type: bool
    default: true
  check_sso_endpoint:
    description:
      - Send one C(GET) (redirects not followed) to the single sign-on endpoint with the HTTP-Redirect
        binding, or to the first endpoint when there is none.
      - Any HTTP answer below 500 counts as reachable - an IdP answers a request without a C(SAMLRequest)
        with a 4xx or a redirect.
    type: bool
    default: true
  min_days_left:
    description:
      - A signing certificate expiring in fewer days than this is a problem, 0 to 3650.
    type: int
    default: 14
  support_contact:
    description:
      - Who runs the IdP and answers when it fails (a team, a phone number, a ticket queue). Appended to
        every sentence of RV(problems) so the on-call engineer knows whom to call.
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing) in diff mode.
    support: none
notes:
  - Certificates are taken from the C(KeyDescriptor) elements of the C(IDPSSODescriptor) with C(use="signing")
    or without C(use); encryption-only keys are left out. The same certificate listed twice is reported once.
  - Redirects of the metadata URL are not followed; a 3xx answer is reported as an C(http_error).
requirements:
  - cryptography
'''

EXAMPLES = r'''
- name: Check the IdP behind the failing logins
  svpms.incident_response.saml_idp_info:
    metadata_url: https://login.example.com/saml/metadata
    support_contact: Identity team, +49 30 1234567 (24/7), queue IAM-OPS
  register: idp

- name: Show what is wrong with the IdP
  ansible.builtin.debug:
    var: idp.problems
  when: idp.problems | length > 0

- name: Warn a month ahead of a certificate rollover, without probing the endpoint
  svpms.incident_response.saml_idp_info:
    metadata_url: https://idp.example.org/metadata.xml
    min_days_left: 30
    check_sso_endpoint: false
'''

RETURN = r'''
reachable:
  description: Whether the metadata was fetched (an HTTP 2xx answer).
  returned: always
  type: bool
  sample: true
metadata_status:
  description: HTTP status of the metadata request; V(null) when nothing answered.
  returned: always
  type: int
  sample: 200
entity_id:
  description: The IdP's C(entityID); V(null) when the metadata was not usable.
  returned: always
  type: str
  sample: https://login.example.com/saml/metadata
sso_endpoints:
  description: The C(SingleSignOnService) endpoints of the IdP.
  returned: always
  type: list
  elements: dict
  contains:
    binding:
      description: SAML binding URI.
      type: str
      sample: urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect
    location:
      description: Endpoint URL.
      type: str
      sample: https://login.example.com/saml/sso
sso_checked:
  description: URL of the single sign-on endpoint that was checked; V(null) when none was.
  returned: always
  type: str
  sample: https://login.example.com/saml/sso
sso_reachable:
  description:
    - Whether the checked single sign-on endpoint gave an HTTP answer below 500.
    - V(null) when it was not checked (O(check_sso_endpoint=false), no usable metadata, no endpoint).
  returned: always
  type: bool
  sample: true
sso_status:
  description: HTTP status of the endpoint check; V(null) when nothing answered or nothing was checked.
  returned: always
  type: int
  sample: 400
sso_error:
  description: Why the endpoint check got no usable answer (timeout, connection or TLS error, HTTP 5xx).
  returned: always
  type: str
  sample: "connection error: [Errno 111] Connection refused"
certificates:
  description: The IdP's signing certificates.
  returned: always
  type: list
  elements: dict
  contains:
    subject:
      description: Common name (CN) of the subject, or the whole subject when it has no CN.
      type: str
      sample: login.example.com
    not_before:
      description: Start of validity, ISO 8601 UTC.
      type: str
      sample: "2025-06-01T00:00:00Z"
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
      sample: "2027-06-01T00:00:00Z"
    days_left:
      description: Whole days until RV(certificates[].not_after); negative once expired.
      type: int
      sample: 186
    expired:
      description: Whether the certificate has expired.
      type: bool
      sample: false
    not_yet_valid:
      description: Whether the certificate is not valid yet.
      type: bool
      sample: false
    sha256_fingerprint:
      description: SHA-256 fingerprint, to compare with the certificate the service provider trusts.
      type: str
      sample: "3A:7F:...:C2"
    use:
      description: The C(use) of its C(KeyDescriptor) (V(signing), or V(signing and encryption) when not given).
      type: str
      sample: signing
problems:
  description: Sentences saying what would make logins fail, each ending with the support contact when given.
  returned: always
  type: list
  elements: str
  sample:
    - "IdP signing certificate CN=login.example.com expired on 2026-11-20T00:00:00Z (7 days ago): assertions
      signed with it fail validation. Contact the identity provider's support: Identity team, +49 30 1234567."
error_kind:
  description:
    - Why the metadata is not usable, V(null) when it is.
    - V(unreachable), V(timeout), V(tls), V(auth_failed) (401), V(permission) (403), V(http_error) (any other
      status that is not 2xx), V(too_large), V(unsafe_xml) (DOCTYPE/ENTITY), V(invalid_xml), V(not_saml).
  returned: always
  type: str
  sample: timeout
msg:
  description: One line for the operator - what was found, or why the metadata is not usable and what to check.
  returned: always
  type: str
  sample: "IdP https://login.example.com/saml/metadata: 1 problem(s): ..."
'''

import socket  # noqa: E402
import ssl  # noqa: E402
import time  # noqa: E402

from http.client import HTTPException  # noqa: E402
from urllib.error import HTTPError, URLError  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import http_probe  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.saml_metadata import (  # noqa: E402
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    MAX_METADATA_BYTES,
    MetadataError,
    certificate_problems,
    parse_metadata,
    pick_sso_endpoint,
    with_contact,
)

MAX_TIMEOUT = 120.0
CHUNK_BYTES = 64 * 1024
USER_AGENT = 'svpms-incident-response-saml-idp-info/1.0'

HINTS = dict(
    unreachable='check the URL and that the IdP is reachable from this host (DNS, firewall, proxy)',
    timeout='the IdP (or the network path to it) is slow or dropping packets; retry or raise timeout',
    tls='check the IdP\'s certificate chain and host name (validate_certs=false only for a test IdP)',
    auth_failed='the metadata URL asks for credentials; ask the IdP team for the public metadata URL',
    permission='the IdP refuses this host; ask the IdP team whether the metadata URL is restricted',
    http_error='check the metadata URL with the IdP team',
    too_large='this is not a metadata document; check the URL',
    unsafe_xml='the document was refused for safety; check the URL and who serves it',
    invalid_xml='the URL does not serve XML metadata; check the URL',
    not_saml='the URL does not serve the IdP\'s SAML metadata; check the URL',
)


class FetchError(Exception):
    def __init__(self, kind, message, status=None):
        self.kind = kind
        self.message = message
        self.status = status
        super(FetchError, self).__init__(message)


def _short(text, limit=200):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def fetch_metadata(url, timeout, validate_certs, clock=time.monotonic):
    """GET ``url``; return (status, body bytes). Raises FetchError. The whole request is bounded by ``timeout``."""
    started = clock()
    deadline = started + timeout
    where = http_probe.safe_url(url)
    try:
        response = open_url(url, method='GET', headers={'Accept': 'application/samlmetadata+xml, application/xml, text/xml'},
                            timeout=timeout, validate_certs=validate_certs, follow_redirects='none',
                            http_agent=USER_AGENT, use_netrc=False, force=True)
        try:
            status = int(response.getcode())
            chunks = []
            size = 0
            while True:
                if clock() > deadline:
                    raise FetchError('timeout', '%s: the metadata was not complete after %gs' % (where, timeout))
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_METADATA_BYTES:
                    raise FetchError('too_large', '%s: the document is larger than %d bytes; not read further'
                                     % (where, MAX_METADATA_BYTES), status=status)
        finally:
            response.close()
        return status, b''.join(chunks)
    except FetchError:
        raise
    except HTTPError as exc:
        try:
            exc.close()
        except Exception:  # pragma: no cover - best effort
            pass
        status = int(exc.code)
        kind = {401: 'auth_failed', 403: 'permission'}.get(status, 'http_error')
        extra = ' (a redirect, not followed)' if 300 <= status <= 399 else ''
        raise FetchError(kind, '%s answered HTTP %d %s%s' % (where, status, _short(exc.reason or ''), extra),
                         status=status)
    except (URLError, socket.timeout, TimeoutError, HTTPException, UrlsConnectionError, ssl.SSLError,
            ssl.CertificateError, OSError, ValueError) as exc:
        reason = getattr(exc, 'reason', None) or exc
        if http_probe.is_timeout(exc):
            raise FetchError('timeout', '%s: no answer within %gs' % (where, timeout))
        if http_probe.is_tls(exc):
            raise FetchError('tls', '%s: TLS error: %s' % (where, _short(reason)))
        raise FetchError('unreachable', '%s: could not connect: %s' % (where, _short(reason)))


def check_sso(endpoint, timeout, validate_certs):
    """(reachable, status, error) of one GET to the endpoint; any HTTP answer below 500 is reachable."""
    problem = http_probe.validate_url(endpoint['location'])
    if problem:
        return False, None, 'the SSO location is not usable: %s' % problem.replace('url ', 'location ', 1)
    outcome = http_probe.probe_once(endpoint['location'], method='GET', timeout=timeout,
                                    validate_certs=validate_certs)
    if outcome['kind'] == http_probe.KIND_HTTP:
        status = outcome['status']
        if status < 500:
            return True, status, None
        return False, status, outcome.get('error') or 'HTTP %d' % status
    return False, None, outcome.get('error') or outcome['kind']


def empty_result():
    return dict(changed=False, reachable=False, metadata_status=None, entity_id=None, sso_endpoints=[],
                sso_checked=None, sso_reachable=None, sso_status=None, sso_error=None, certificates=[],
                problems=[], error_kind=None, msg='')


def main():
    module = AnsibleModule(
        argument_spec=dict(
            metadata_url=dict(type='str', required=True),
            timeout=dict(type='float', default=10.0),
            validate_certs=dict(type='bool', default=True),
            check_sso_endpoint=dict(type='bool', default=True),
            min_days_left=dict(type='int', default=14),
            support_contact=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    p = module.params
    url = (p['metadata_url'] or '').strip()
    problem = http_probe.validate_url(url)
    if problem:
        module.fail_json(msg=problem.replace('url', 'metadata_url', 1))
    if not 0 < p['timeout'] <= MAX_TIMEOUT:
        module.fail_json(msg='timeout must be more than 0 and at most %g seconds, got %s' % (MAX_TIMEOUT, p['timeout']))
    if not 0 <= p['min_days_left'] <= 3650:
        module.fail_json(msg='min_days_left must be between 0 and 3650, got %s' % p['min_days_left'])
    contact = (p['support_contact'] or '').strip() or None
    where = 'IdP metadata %s' % http_probe.safe_url(url)

    result = empty_result()
    try:
        status, body = fetch_metadata(url, p['timeout'], p['validate_certs'])
        result['reachable'] = True
        result['metadata_status'] = status
        parsed = parse_metadata(body)
    except (FetchError, MetadataError) as err:
        result['metadata_status'] = getattr(err, 'status', None) or result['metadata_status']
        if result['metadata_status'] and 200 <= result['metadata_status'] <= 299:
            result['reachable'] = True  # it answered, with a document that is too large
        result['error_kind'] = err.kind
        if isinstance(err, MetadataError):
            text = '%s is not usable SAML metadata: %s' % (where, err.message)
        else:
            text = 'IdP metadata unreachable: %s' % err.message
        result['msg'] = '%s; %s' % (text, HINTS.get(err.kind, 'check the URL'))
        result['problems'] = [with_contact(text + ': SAML logins cannot be checked (and service providers that '
                                           'refresh metadata from it may fail)', contact)]
        module.exit_json(**result)

    result['entity_id'] = parsed['entity_id']
    result['sso_endpoints'] = parsed['sso_endpoints']
    result['certificates'] = parsed['certificates']
    problems = certificate_problems(parsed['certificates'], p['min_days_left'], contact, parsed['certificate_errors'])

    endpoint = pick_sso_endpoint(parsed['sso_endpoints'])
    if endpoint is None:
        problems.append(with_contact('IdP metadata lists no SingleSignOnService endpoint with a location', contact))
    elif p['check_sso_endpoint']:
        reachable, sso_status, error = check_sso(endpoint, p['timeout'], p['validate_certs'])
        result.update(sso_checked=endpoint['location'], sso_reachable=reachable, sso_status=sso_status,
                      sso_error=error)
        if not reachable:
            problems.append(with_contact('IdP single sign-on endpoint %s is unreachable (%s): users cannot log in'
                                         % (endpoint['location'], error), contact))
    result['problems'] = problems
    if problems:
        result['msg'] = '%s (%s): %d problem(s): %s' % (where, parsed['entity_id'], len(problems), ' '.join(problems))
    else:
        result['msg'] = '%s (%s): metadata, %d signing certificate(s)%s look fine' % (
            where, parsed['entity_id'], len(parsed['certificates']),
            ' and the SSO endpoint' if result['sso_reachable'] else '')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
