"""An RDS source instance and its read replica in moto, for the promotion tests."""
import contextlib
import uuid

import boto3


@contextlib.contextmanager
def source_and_replica(endpoint, prefix):
    """Yield dict(rds, source, replica): unique names (moto is shared by the session), deleted after."""
    suffix = uuid.uuid4().hex[:8]
    source, replica = '%s-%s' % (prefix, suffix), '%s-replica-%s' % (prefix, suffix)
    rds = boto3.client('rds', region_name='us-east-1', endpoint_url=endpoint,
                       aws_access_key_id='setup', aws_secret_access_key='setup')
    rds.create_db_instance(DBInstanceIdentifier=source, Engine='postgres', DBInstanceClass='db.t3.micro',
                           MasterUsername='svpms', MasterUserPassword='not-a-real-password', AllocatedStorage=20,
                           BackupRetentionPeriod=1)
    rds.create_db_instance_read_replica(DBInstanceIdentifier=replica, SourceDBInstanceIdentifier=source)
    try:
        yield dict(rds=rds, source=source, replica=replica)
    finally:
        for name in (replica, source):
            try:
                rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
            except Exception:  # pylint: disable=broad-except
                pass
