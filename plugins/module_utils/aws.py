# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared AWS plumbing for every module of svpms.incident_response.

One place for: the connection options (region, profile, endpoint_url,
credentials with env fallbacks and ``no_log``), client construction with
connect/read timeouts, retries with full-jitter backoff on *transient* errors
only, and typed errors that the module boundary turns into a ``fail_json``
message that says what to do.

Usage in a module::

    from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (
        AWSError, aws_argument_spec, AWSModule)

    module = AWSModule(argument_spec=dict(cluster=dict(type='str', required=True)),
                       supports_check_mode=True)
    ecs = module.client('ecs')
    try:
        resp = ecs.call('describe_services', cluster=..., services=[...])
    except AWSError as e:
        module.fail_aws(e)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import time

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by sanity only
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc

# Error codes that mean "try again later". Anything else (access denied,
# validation, not found) is final and is never retried.
TRANSIENT_ERROR_CODES = frozenset([
    'Throttling',
    'ThrottlingException',
    'ThrottledException',
    'RequestThrottled',
    'RequestThrottledException',
    'RequestLimitExceeded',
    'TooManyRequestsException',
    'ProvisionedThroughputExceededException',
    'SlowDown',
    'ServiceUnavailable',
    'ServiceUnavailableException',
    'InternalError',
    'InternalFailure',
    'InternalServerError',
    'InternalServiceError',
    'ServerException',
])

ACCESS_DENIED_CODES = frozenset([
    'AccessDenied',
    'AccessDeniedException',
    'UnauthorizedOperation',
    'UnrecognizedClientException',
    'InvalidClientTokenId',
    'SignatureDoesNotMatch',
    'ExpiredToken',
    'ExpiredTokenException',
])

NOT_FOUND_CODES = frozenset([
    'ClusterNotFoundException',
    'ServiceNotFoundException',
    'ResourceNotFoundException',
    'ParameterNotFound',
    'DBInstanceNotFound',
    'NoSuchEntity',
])

# boto3 client name -> IAM action prefix, where they differ.
IAM_PREFIX = {
    'cloudwatch': 'cloudwatch',
    'logs': 'logs',
}

DEFAULT_CONNECT_TIMEOUT = 5
DEFAULT_READ_TIMEOUT = 20
DEFAULT_MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0


def aws_argument_spec():
    """The connection options every AWS module accepts (a fresh dict)."""
    return dict(
        region=dict(type='str', aliases=['aws_region'],
                    fallback=(env_fallback, ['AWS_REGION', 'AWS_DEFAULT_REGION'])),
        profile=dict(type='str', aliases=['aws_profile'],
                     fallback=(env_fallback, ['AWS_PROFILE'])),
        endpoint_url=dict(type='str', aliases=['aws_endpoint_url'],
                          fallback=(env_fallback, ['AWS_ENDPOINT_URL'])),
        access_key=dict(type='str', aliases=['aws_access_key_id', 'aws_access_key'], no_log=True,
                        fallback=(env_fallback, ['AWS_ACCESS_KEY_ID'])),
        secret_key=dict(type='str', aliases=['aws_secret_access_key', 'aws_secret_key'], no_log=True,
                        fallback=(env_fallback, ['AWS_SECRET_ACCESS_KEY'])),
        session_token=dict(type='str', aliases=['aws_session_token'], no_log=True,
                           fallback=(env_fallback, ['AWS_SESSION_TOKEN'])),
        connect_timeout=dict(type='float', default=DEFAULT_CONNECT_TIMEOUT),
        read_timeout=dict(type='float', default=DEFAULT_READ_TIMEOUT),
        max_attempts=dict(type='int', default=DEFAULT_MAX_ATTEMPTS),
    )


class AWSError(Exception):
    """A failed AWS call, with what an operator should do about it."""

    kind = 'error'
    reachable = True

    def __init__(self, service, operation, message, code=None, hint=None, attempts=1):
        self.service = service
        self.operation = operation
        self.message = message
        self.code = code
        self.hint = hint
        self.attempts = attempts
        super(AWSError, self).__init__(self.describe())

    @property
    def action(self):
        return '%s:%s' % (IAM_PREFIX.get(self.service, self.service), snake_to_pascal(self.operation))

    def describe(self):
        text = '%s failed' % self.action
        if self.code:
            text += ' (%s)' % self.code
        text += ': %s' % self.message
        if self.attempts > 1:
            text += ' [after %d attempts]' % self.attempts
        if self.hint:
            text += '. %s' % self.hint
        return text

    def to_result(self):
        return dict(reachable=self.reachable, error_kind=self.kind, error_code=self.code,
                    aws_action=self.action)


class AWSUnreachableError(AWSError):
    kind = 'unreachable'
    reachable = False


class AWSAccessDeniedError(AWSError):
    kind = 'access_denied'


class AWSNotFoundError(AWSError):
    kind = 'not_found'


class AWSConfigError(AWSError):
    kind = 'configuration'


# Words the AWS API (and IAM) spells in capitals: describe_db_instances is
# rds:DescribeDBInstances.
_API_WORDS = {'db': 'DB'}


def snake_to_pascal(name):
    return ''.join(_API_WORDS.get(part) or (part[:1].upper() + part[1:]) for part in name.split('_'))


def is_transient(exc):
    """True for errors worth retrying: throttling, 5xx, dropped connections."""
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
                        ConnectionClosedError)):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get('Error', {}).get('Code')
        status = exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode') or 0
        return code in TRANSIENT_ERROR_CODES or status >= 500
    return False


def backoff_delay(attempt, base=BACKOFF_BASE, cap=BACKOFF_CAP, rand=random.uniform):
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt))."""
    return rand(0, min(cap, base * (2 ** attempt)))


def classify(exc, service, operation, endpoint, attempts):
    """Turn a botocore exception into a typed AWSError with an operator hint."""
    where = endpoint or 'the AWS regional endpoint'
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
                        ConnectionClosedError)):
        return AWSUnreachableError(
            service, operation, 'could not reach %s: %s' % (where, exc), code='Unreachable',
            hint='Check endpoint_url/region and that the network path to AWS is open',
            attempts=attempts)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AWSConfigError(
            service, operation, 'no usable AWS credentials (%s)' % exc, code='NoCredentials',
            hint='Set access_key/secret_key or profile, or the AWS_* environment variables')
    if isinstance(exc, NoRegionError):
        return AWSConfigError(service, operation, 'no region configured', code='NoRegion',
                              hint='Set region or AWS_REGION')
    if isinstance(exc, ProfileNotFound):
        return AWSConfigError(service, operation, str(exc), code='ProfileNotFound',
                              hint='Check the profile name against ~/.aws/config')
    if isinstance(exc, ClientError):
        err = exc.response.get('Error', {})
        code = err.get('Code') or 'Unknown'
        message = err.get('Message') or str(exc)
        status = exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode') or 0
        if code in ACCESS_DENIED_CODES or status == 403:
            return AWSAccessDeniedError(
                service, operation, message, code=code,
                hint='Allow %s:%s for the caller (or check the credentials)' % (
                    IAM_PREFIX.get(service, service), snake_to_pascal(operation)))
        if code in NOT_FOUND_CODES:
            return AWSNotFoundError(service, operation, message, code=code,
                                    hint='Check the name and the region/account it lives in')
        if status >= 500 or code in TRANSIENT_ERROR_CODES:
            return AWSUnreachableError(
                service, operation, '%s answered HTTP %s: %s' % (where, status, message), code=code,
                hint='The service is failing or throttling; retry later or check endpoint_url',
                attempts=attempts)
        return AWSError(service, operation, message, code=code, attempts=attempts)
    return AWSError(service, operation, str(exc), code=type(exc).__name__, attempts=attempts)


class AWSClient(object):
    """A boto3 client whose calls retry transient errors and raise AWSError."""

    def __init__(self, client, service, endpoint=None, max_attempts=DEFAULT_MAX_ATTEMPTS,
                 sleep=time.sleep):
        self.client = client
        self.service = service
        self.endpoint = endpoint
        self.max_attempts = max(1, int(max_attempts))
        self._sleep = sleep

    def call(self, operation, **kwargs):
        attempt = 0
        while True:
            attempt += 1
            try:
                return getattr(self.client, operation)(**kwargs)
            except (BotoCoreError, ClientError) as exc:
                if is_transient(exc) and attempt < self.max_attempts:
                    self._sleep(backoff_delay(attempt - 1))
                    continue
                raise classify(exc, self.service, operation, self.endpoint, attempt)

    def paginate(self, operation, result_key, max_items=None, token_in='nextToken',
                 token_out='nextToken', **kwargs):
        """Collect ``result_key`` across pages, stopping at ``max_items``.

        Returns (items, truncated). Each page goes through call(), so retries
        and typed errors apply per page.
        """
        items = []
        params = dict(kwargs)
        while True:
            page = self.call(operation, **params)
            items.extend(page.get(result_key, []))
            token = page.get(token_out)
            if max_items is not None and len(items) >= max_items:
                return items[:max_items], bool(token) or len(items) > max_items
            if not token:
                return items, False
            params[token_in] = token


def build_client(params, service, sleep=time.sleep):
    """Build an AWSClient from module params (connection options above)."""
    config = Config(
        connect_timeout=params.get('connect_timeout') or DEFAULT_CONNECT_TIMEOUT,
        read_timeout=params.get('read_timeout') or DEFAULT_READ_TIMEOUT,
        # Our own loop retries (transient errors only, full jitter); botocore's
        # must not multiply it.
        retries={'max_attempts': 1, 'mode': 'standard'},
        user_agent_extra='svpms.incident_response',
    )
    session_kwargs = {}
    if params.get('profile'):
        session_kwargs['profile_name'] = params['profile']
    session = boto3.session.Session(**session_kwargs)
    client_kwargs = dict(config=config)
    for option, boto_name in (('region', 'region_name'), ('endpoint_url', 'endpoint_url'),
                              ('access_key', 'aws_access_key_id'),
                              ('secret_key', 'aws_secret_access_key'),
                              ('session_token', 'aws_session_token')):
        if params.get(option):
            client_kwargs[boto_name] = params[option]
    client = session.client(service, **client_kwargs)
    return AWSClient(client, service, endpoint=params.get('endpoint_url'),
                     max_attempts=params.get('max_attempts') or DEFAULT_MAX_ATTEMPTS, sleep=sleep)


class AWSModule(object):
    """AnsibleModule with the shared AWS connection options merged in."""

    def __init__(self, argument_spec=None, **kwargs):
        spec = aws_argument_spec()
        spec.update(argument_spec or {})
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        if not HAS_BOTO3:
            self.module.fail_json(msg=missing_required_lib('boto3 and botocore'),
                                  exception=str(BOTO3_IMPORT_ERROR))
        for option in ('connect_timeout', 'read_timeout'):
            if self.params[option] <= 0:
                self.module.fail_json(msg='%s must be a positive number of seconds, got %s'
                                      % (option, self.params[option]))
        if self.params['max_attempts'] < 1:
            self.module.fail_json(msg='max_attempts must be 1 or more, got %s' % self.params['max_attempts'])

    @property
    def params(self):
        return self.module.params

    @property
    def check_mode(self):
        return self.module.check_mode

    def client(self, service):
        try:
            return build_client(self.params, service)
        except (BotoCoreError, ValueError) as exc:
            err = classify(exc, service, 'create_client', self.params.get('endpoint_url'), 1)
            self.fail_aws(err)

    def fail_aws(self, err, **result):
        """Fail with the typed error's message and machine-readable fields."""
        out = err.to_result()
        out.update(result)
        self.module.fail_json(msg=err.describe(), **out)

    def fail_json(self, **kwargs):
        self.module.fail_json(**kwargs)

    def exit_json(self, **kwargs):
        self.module.exit_json(**kwargs)
