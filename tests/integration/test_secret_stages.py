"""module_utils/secret_stages against moto_server (the session ``moto`` fixture):
the stage map read from describe_secret and a stage move, as jwt_key_rotate and
stripe_key_update use them."""
import uuid

import boto3
import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils import aws, secret_stages
from tests.helpers.modules import AWS_TEST_CREDS


@pytest.fixture
def sm(moto):
    raw = boto3.client('secretsmanager', region_name=AWS_TEST_CREDS['region'], endpoint_url=moto.endpoint,
                       aws_access_key_id='setup', aws_secret_access_key='setup')
    return raw, aws.AWSClient(raw, 'secretsmanager', endpoint=moto.endpoint)


def stages_of(raw, name):
    return secret_stages.stage_versions(raw.describe_secret(SecretId=name)['VersionIdsToStages'])


def test_stage_versions_keeps_only_the_three_labels():
    assert secret_stages.stage_versions({'a': ['AWSPREVIOUS'], 'b': ['AWSCURRENT', 'AWSPENDING', 'custom']}) == {
        'AWSPREVIOUS': 'a', 'AWSCURRENT': 'b', 'AWSPENDING': 'b'}
    assert secret_stages.stage_versions(None) == {}


def test_pending_version_is_promoted_and_the_old_one_kept_previous(sm):
    raw, client = sm
    name = 'svpms/test/stages-%s' % uuid.uuid4().hex
    old = raw.create_secret(Name=name, SecretString='old-value')['VersionId']
    new = raw.put_secret_value(SecretId=name, SecretString='new-value', VersionStages=['AWSPENDING'])['VersionId']
    assert stages_of(raw, name) == {'AWSCURRENT': old, 'AWSPENDING': new}
    secret_stages.move_stage(client, name, 'AWSCURRENT', to_version=new, from_version=old)
    secret_stages.move_stage(client, name, 'AWSPENDING', from_version=new)
    assert stages_of(raw, name) == {'AWSCURRENT': new, 'AWSPREVIOUS': old}
    assert raw.get_secret_value(SecretId=name, VersionStage='AWSCURRENT')['SecretString'] == 'new-value'


def test_a_failed_move_raises_the_typed_aws_error(sm):
    raw, client = sm
    name = 'svpms/test/stages-%s' % uuid.uuid4().hex
    raw.create_secret(Name=name, SecretString='value')
    with pytest.raises(aws.AWSError):
        secret_stages.move_stage(client, name, 'AWSCURRENT', to_version='no-such-version')
