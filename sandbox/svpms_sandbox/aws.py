"""boto3 clients for the sandbox's moto_server, and ECS identifier helpers."""

import boto3
from botocore.config import Config

from . import constants as C

BOTO_CONFIG = Config(
    region_name=C.REGION,
    retries={'max_attempts': 1},
    connect_timeout=2,
    read_timeout=10,
    # Loopback endpoint: never route through an HTTP(S)_PROXY from the environment.
    proxies={},
)


def endpoint_url(moto_port):
    return 'http://%s:%d' % (C.HOST, moto_port)


def client(service_name, moto_port):
    """A boto3 client bound to the sandbox's moto_server (never real AWS)."""
    session = boto3.session.Session(
        aws_access_key_id=C.ACCESS_KEY,
        aws_secret_access_key=C.SECRET_KEY,
        region_name=C.REGION,
    )
    return session.client(service_name, endpoint_url=endpoint_url(moto_port), config=BOTO_CONFIG)


def normalise_task_definition(value):
    """'arn:aws:ecs:...:task-definition/svpms-api:4' or 'svpms-api:4' -> 'svpms-api:4'.

    moto stores whatever string update_service was given (an ARN after
    create_service, 'family:rev' if the caller passed that), so compare only
    normalised identifiers. A bare family (no revision) is returned unchanged.
    """
    if not value:
        return value
    return value.split('/')[-1]


def split_task_definition(value):
    """-> (family, revision or None)."""
    name = normalise_task_definition(value)
    if ':' in name:
        family, rev = name.rsplit(':', 1)
        try:
            return family, int(rev)
        except ValueError:
            return name, None
    return name, None


def fault_of(task_definition):
    """The fault marker (SVPMS_TWIN_FAULT) of a described task definition, or None."""
    for container in task_definition.get('containerDefinitions', []):
        for env in container.get('environment', []) or []:
            if env.get('name') == C.FAULT_ENV and env.get('value'):
                return env['value']
    return None


def version_of(task_definition):
    """The image tag of the main container, e.g. '1.4.3'."""
    for container in task_definition.get('containerDefinitions', []):
        image = container.get('image', '')
        if ':' in image.rsplit('/', 1)[-1]:
            return image.rsplit(':', 1)[-1]
    return None
