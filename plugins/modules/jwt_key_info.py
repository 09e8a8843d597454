#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: jwt_key_info
short_description: Inspect a JWT signing key held in AWS Secrets Manager, without revealing it
version_added: 1.0.0
description:
  - Reads the C(AWSCURRENT) and C(AWSPREVIOUS) versions of a Secrets Manager secret that holds a JWT
    signing key and reports what they are - RSA, EC or HMAC, algorithm, key id, size or curve, age -
    and what is wrong with them, for the authentication-failures runbook.
  - Understood secret values - a PEM RSA/EC private (or public) key; a JSON object with the PEM in
    C(private_key_pem) (or C(private_key), C(pem)) and optional C(kid), C(alg); a JSON object with an
    HMAC secret in C(key) (or C(secret)) and optional C(kid), C(alg) (V(HS256) by default); a bare
    single-token string (an HS256 secret); a binary secret (an HS256 secret).
  - For RSA/EC keys the key id is the C(kid) of a JSON secret, else the RFC 7638 JWK thumbprint of the
    public key. HMAC keys have no public part, so their key id is the explicit C(kid) or null.
  - With O(jwks_url), fetches the JWKS the verifiers use and says whether the current (and previous)
    public key is published there.
  - The key or secret value is never returned, logged or put in an error message.
  - Unreachable AWS, a missing secret or denied access is a finding (C(reachable), C(exists),
    C(error_kind), C(msg)), not a failure.
author: SVPMS Platform Team (@svpms)
options:
  secret_id:
    description:
      - Name or ARN of the secret, for example V(svpms/prod/api/jwt-signing-key).
    type: str
    required: true
  max_age_days:
    description:
      - Rotation policy. C(rotation_due) is true when the C(AWSCURRENT) version is older than this many days.
      - V(0) reports any key as due.
    type: int
    default: 90
  jwks_url:
    description:
      - URL of the JWKS document (C(https://.../.well-known/jwks.json)) the token verifiers use.
      - When set, the module reports the published key ids and whether the current key is among them.
    type: str
  jwks_timeout:
    description:
      - Seconds to wait for the JWKS endpoint (connect and whole answer), at most 60.
    type: float
    default: 5
  jwks_validate_certs:
    description:
      - Verify the TLS certificate of O(jwks_url). Set V(false) only for a test endpoint.
    type: bool
    default: true
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - IAM actions used - C(secretsmanager:DescribeSecret), C(secretsmanager:ListSecretVersionIds),
    C(secretsmanager:GetSecretValue) (and C(kms:Decrypt) on the secret's key).
  - Requires the python C(cryptography) library (a dependency of ansible-core).
  - Minimum strength checked - HMAC keys at least as long as the hash (HS256 32 bytes, HS384 48,
    HS512 64; RFC 7518), RSA at least 2048 bits.
seealso:
  - module: svpms.incident_response.jwt_key_rotate
  - name: RFC 7638 JWK thumbprint
    description: How the key id of an RSA/EC key is computed.
    link: https://www.rfc-editor.org/rfc/rfc7638
'''

EXAMPLES = r'''
- name: Inspect the API's JWT signing key and the JWKS the gateway verifies with
  svpms.incident_response.jwt_key_info:
    secret_id: svpms/prod/api/jwt-signing-key
    max_age_days: 90
    jwks_url: https://auth.svpms.example/.well-known/jwks.json
    region: eu-west-1
  register: jwt_key

- name: Tell the on-call what is wrong with the key
  ansible.builtin.debug:
    msg: "{{ jwt_key.problems }}"
  when: jwt_key.problems | length > 0
'''

RETURN = r'''
secret_id:
  description: The secret asked for.
  returned: always
  type: str
  sample: svpms/prod/api/jwt-signing-key
reachable:
  description: Whether Secrets Manager answered.
  returned: always
  type: bool
  sample: true
exists:
  description: Whether the secret exists (false also when it could not be read at all).
  returned: always
  type: bool
  sample: true
error_kind:
  description:
    - Why the secret could not be read - V(not_found), V(access_denied), V(unreachable), V(configuration)
      or V(error). Absent when it was read.
  returned: when the secret could not be read
  type: str
  sample: access_denied
msg:
  description: What went wrong, in one sentence, with what to check. Never holds the secret value.
  returned: when the secret could not be read
  type: str
stages:
  description:
    - The staging labels present, each with its version id and creation time (UTC).
  returned: always
  type: dict
  sample:
    AWSCURRENT: {version_id: 5e1c..., created_at: '2026-11-27T08:41:00Z'}
    AWSPREVIOUS: {version_id: 0a9b..., created_at: '2026-08-01T10:00:00Z'}
current:
  description:
    - The C(AWSCURRENT) key, described. Null when there is none or it could not be read.
  returned: always
  type: dict
  contains:
    version_id:
      description: Version id of the secret version.
      type: str
    kind:
      description: V(rsa), V(ec) or V(hmac); null when the value is not understood.
      type: str
    shape:
      description: How the value is stored - V(pem), V(json_pem), V(json_hmac), V(raw_hmac) or V(binary_hmac).
      type: str
    alg:
      description: JWS algorithm (explicit, or the default for the key - RS256, ES256/384/512, HS256).
      type: str
    kid:
      description: Key id - the explicit C(kid) of a JSON secret, else the RFC 7638 thumbprint (RSA/EC).
      type: str
    kid_source:
      description: V(explicit) or V(thumbprint) (null for an HMAC key without kid).
      type: str
    thumbprint:
      description: RFC 7638 SHA-256 thumbprint of the public key (RSA/EC only).
      type: str
    bits:
      description: RSA modulus size or EC curve size in bits.
      type: int
    curve:
      description: EC curve (V(P-256), V(P-384), V(P-521)).
      type: str
    key_bytes:
      description: Length of an HMAC key in bytes.
      type: int
    private:
      description: Whether the secret holds a private (signing) key.
      type: bool
    created_at:
      description: Creation time of the version (UTC, ISO 8601).
      type: str
    age_days:
      description: Age of the version in days (one decimal).
      type: float
    parses:
      description: Whether the value was understood as a key.
      type: bool
    problem:
      description: What is wrong with this key, or null.
      type: str
previous:
  description: The C(AWSPREVIOUS) key, same shape as RV(current).
  returned: when an AWSPREVIOUS version exists
  type: dict
pending:
  description:
    - The C(AWSPENDING) key, same shape as RV(current), when it is on a version other than C(AWSCURRENT)
      (a rotation that was started and not finished).
  returned: when such a version exists
  type: dict
rotation_due:
  description: Whether the AWSCURRENT version is older than O(max_age_days). Null when unknown.
  returned: always
  type: bool
rotation_enabled:
  description: Whether Secrets Manager's own (Lambda) rotation is enabled on the secret.
  returned: when the secret exists
  type: bool
jwks:
  description: The comparison with the JWKS at O(jwks_url).
  returned: when O(jwks_url) is set
  type: dict
  contains:
    url:
      description: The URL fetched, without query string.
      type: str
    reachable:
      description: Whether the endpoint answered over HTTP.
      type: bool
    kids:
      description: Key ids the JWKS publishes.
      type: list
      elements: str
    current_published:
      description: Whether the AWSCURRENT public key (same thumbprint or kid) is in the JWKS; null for HMAC or unknown.
      type: bool
    previous_published:
      description: The same for the AWSPREVIOUS key.
      type: bool
    error_kind:
      description: V(unreachable), V(timeout), V(tls), V(not_found), V(server_error), V(invalid_jwks), ...
      type: str
    error:
      description: Why the JWKS could not be used; null when it could.
      type: str
problems:
  description: Sentences an on-call engineer reads - what is wrong and what to do. Empty when all is well.
  returned: always
  type: list
  elements: str
  sample:
    - The AWSCURRENT key (kid 2026-11) is 120.3 days old, older than max_age_days=90; rotate it with jwt_key_rotate.
'''

from ansible.module_utils.basic import missing_required_lib  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (  # noqa: E402
    AWSError,
    AWSModule,
    AWSNotFoundError,
)
from ansible_collections.svpms.incident_response.plugins.module_utils import jwt_keys  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.http_probe import (  # noqa: E402
    safe_url,
    validate_url,
)
from ansible_collections.svpms.incident_response.plugins.module_utils.notify import (  # noqa: E402
    NotifyClient,
    NotifyError,
)

MAX_JWKS_TIMEOUT = 60.0
MAX_VERSIONS = 100


class KeyReader(object):
    """Reads versions of one secret; remembers every value read, for redaction."""

    def __init__(self, module, sm, secret_id):
        self.module = module
        self.sm = sm
        self.secret_id = secret_id
        self.sensitive = []
        self.created = {}

    def remember(self, values):
        jwt_keys.remember_sensitive(values, self.sensitive, self.module.module.no_log_values)

    def clean(self, text):
        return jwt_keys.redact(text, self.sensitive)

    def read(self, version_id, stage, created):
        """Describe one version; a read error becomes the entry's problem."""
        entry = dict(version_id=version_id, created_at=jwt_keys.iso_utc(created),
                     age_days=jwt_keys.age_days(created))
        try:
            resp = self.sm.call('get_secret_value', SecretId=self.secret_id, VersionId=version_id)
        except AWSError as err:
            entry.update(kind=None, parses=False, problem='could not read the %s version: %s'
                         % (stage, self.clean(err.describe())), error_kind=err.kind)
            return entry, None
        self.remember([resp.get('SecretString')])
        parsed = jwt_keys.parse_secret(secret_string=resp.get('SecretString'),
                                       secret_binary=resp.get('SecretBinary'))
        self.remember(parsed.sensitive_values())
        entry.update(parsed.describe())
        if entry['created_at'] is None and resp.get('CreatedDate'):
            entry['created_at'] = jwt_keys.iso_utc(resp['CreatedDate'])
            entry['age_days'] = jwt_keys.age_days(resp['CreatedDate'])
            self.created[version_id] = resp['CreatedDate']
        return entry, parsed


def label(entry):
    if entry.get('kid'):
        return 'kid %s' % entry['kid']
    return 'version %s' % entry.get('version_id')


def fetch_jwks(params, current, previous):
    """The ``jwks`` result dict and the problems it shows."""
    url = params['jwks_url']
    out = dict(url=safe_url(url), reachable=False, kids=[], current_published=None,
               previous_published=None, error_kind=None, error=None)
    problems = []
    client = NotifyClient('JWKS endpoint', timeout=params['jwks_timeout'], max_attempts=2,
                          validate_certs=params['jwks_validate_certs'], max_retry_after=2.0,
                          id_hint='jwks_url')
    try:
        _status, body, _headers = client.send_json('GET', url)
        out['reachable'] = True
    except NotifyError as err:
        out['reachable'] = err.kind not in ('unreachable', 'timeout', 'tls')
        out['error_kind'] = err.kind
        out['error'] = err.describe()
        problems.append('Could not read the JWKS at %s: %s. Verifiers that use it cannot load keys either '
                        '- check the auth service that serves it.' % (out['url'], err.describe()))
        return out, problems
    try:
        summary = jwt_keys.jwks_summary(body)
    except jwt_keys.JWTKeyError as exc:
        out['error_kind'] = 'invalid_jwks'
        out['error'] = str(exc)
        problems.append('The JWKS at %s is unusable: %s.' % (out['url'], exc))
        return out, problems
    out['kids'] = summary['kids']
    problems.extend('JWKS at %s: %s.' % (out['url'], p) for p in summary['problems'])
    for stage, parsed, key in (('AWSCURRENT', current, 'current_published'),
                               ('AWSPREVIOUS', previous, 'previous_published')):
        is_published, problem = jwt_keys.published(parsed, summary)
        out[key] = is_published
        if problem:
            problems.append('The %s key: %s.' % (stage, problem))
        elif is_published is False and stage == 'AWSCURRENT':
            problems.append('The JWKS at %s does not publish the AWSCURRENT key (kid %s): verifiers using it reject '
                            'every token signed with it. Publish the key (redeploy the auth service) or roll back '
                            'with jwt_key_rotate action=rollback.' % (out['url'], parsed.kid))
        elif is_published is False:
            problems.append('The JWKS at %s no longer publishes the AWSPREVIOUS key (kid %s): tokens signed before '
                            'the last rotation fail verification until they expire.' % (out['url'], parsed.kid))
    return out, problems


def main():
    module = AWSModule(
        argument_spec=dict(
            secret_id=dict(type='str', required=True),
            max_age_days=dict(type='int', default=90),
            jwks_url=dict(type='str'),
            jwks_timeout=dict(type='float', default=5.0),
            jwks_validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not jwt_keys.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(jwt_keys.CRYPTOGRAPHY_IMPORT_ERROR))
    secret_id = (params['secret_id'] or '').strip()
    if not secret_id:
        module.fail_json(msg='secret_id must be a non-empty secret name or ARN')
    if params['max_age_days'] < 0:
        module.fail_json(msg='max_age_days must be 0 or more, got %s' % params['max_age_days'])
    if not 0 < params['jwks_timeout'] <= MAX_JWKS_TIMEOUT:
        module.fail_json(msg='jwks_timeout must be more than 0 and at most %g seconds, got %s'
                         % (MAX_JWKS_TIMEOUT, params['jwks_timeout']))
    if params['jwks_url']:
        error = validate_url(params['jwks_url'])
        if error:
            module.fail_json(msg=error.replace('url ', 'jwks_url ', 1))

    result = dict(changed=False, secret_id=secret_id, reachable=True, exists=False, stages={}, current=None,
                  rotation_due=None, problems=[])
    sm = module.client('secretsmanager')
    reader = KeyReader(module, sm, secret_id)

    try:
        desc = sm.call('describe_secret', SecretId=secret_id)
    except AWSNotFoundError as err:
        result.update(err.to_result())
        result['msg'] = 'Secret %s does not exist: %s' % (secret_id, err.describe())
        result['problems'].append('Secret %s does not exist in this account/region: check the name, region and '
                                  'the service configuration that points at it.' % secret_id)
        module.exit_json(**result)
    except AWSError as err:
        result.update(err.to_result())
        result['msg'] = err.describe()
        result['problems'].append('Could not read secret %s: %s' % (secret_id, err.describe()))
        module.exit_json(**result)

    result['exists'] = True
    result['rotation_enabled'] = bool(desc.get('RotationEnabled'))
    problems = result['problems']
    if desc.get('DeletedDate'):
        problems.append('Secret %s is scheduled for deletion (since %s): restore it before anything else.'
                        % (secret_id, jwt_keys.iso_utc(desc['DeletedDate'])))
    by_stage = jwt_keys.stage_versions(desc.get('VersionIdsToStages'))
    created = {}
    try:
        versions, _truncated = sm.paginate('list_secret_version_ids', 'Versions', max_items=MAX_VERSIONS,
                                           token_in='NextToken', token_out='NextToken', SecretId=secret_id)
        created = dict((v.get('VersionId'), v.get('CreatedDate')) for v in versions)
    except AWSError as err:  # dates are a nice-to-have; get_secret_value also returns CreatedDate
        module.warn('Could not list the versions of %s (creation dates may be missing): %s'
                    % (secret_id, err.describe()))
    result['stages'] = dict((stage, dict(version_id=vid, created_at=jwt_keys.iso_utc(created.get(vid))))
                            for stage, vid in sorted(by_stage.items()))

    current = previous = None
    cur_vid = by_stage.get(jwt_keys.STAGE_CURRENT)
    if cur_vid is None:
        problems.append('Secret %s has no AWSCURRENT version: services cannot load a signing key.' % secret_id)
    else:
        entry, current = reader.read(cur_vid, 'AWSCURRENT', created.get(cur_vid))
        result['current'] = entry
        if entry.get('error_kind'):
            result['error_kind'] = entry['error_kind']
            result['msg'] = entry['problem']
        if entry['problem']:
            problems.append('The AWSCURRENT key (%s): %s.' % (label(entry), entry['problem']))
        created_at = created.get(cur_vid) or reader.created.get(cur_vid)
        if created_at is not None:
            result['rotation_due'] = jwt_keys.age_days(created_at, digits=None) > params['max_age_days']
            if result['rotation_due']:
                problems.append('The AWSCURRENT key (%s) is %s days old, older than max_age_days=%d: rotate it '
                                'with jwt_key_rotate.' % (label(entry), entry['age_days'], params['max_age_days']))
    prev_vid = by_stage.get(jwt_keys.STAGE_PREVIOUS)
    if prev_vid is not None:
        entry, previous = reader.read(prev_vid, 'AWSPREVIOUS', created.get(prev_vid))
        result['previous'] = entry
        if entry.get('error_kind') or not entry['parses']:
            problems.append('The AWSPREVIOUS key (%s): %s; a rollback to it would not work.'
                            % (label(entry), entry['problem']))
    pend_vid = by_stage.get(jwt_keys.STAGE_PENDING)
    if pend_vid is not None and pend_vid != cur_vid:
        entry, _pending = reader.read(pend_vid, 'AWSPENDING', created.get(pend_vid))
        result['pending'] = entry
        problems.append('Version %s is AWSPENDING but not AWSCURRENT: a rotation was started and not finished. '
                        'Services that load AWSPENDING sign with a key verifiers may not know.' % pend_vid)

    if params['jwks_url']:
        result['jwks'], jwks_problems = fetch_jwks(params, current, previous)
        problems.extend(jwks_problems)

    result['problems'] = [reader.clean(p) for p in problems]
    if result.get('msg'):
        result['msg'] = reader.clean(result['msg'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
