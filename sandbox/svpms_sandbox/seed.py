"""Seed a fresh moto_server with the SVPMS production shape (ECS, Logs, SSM flags and cache TTL, EC2 network,
DynamoDB lock table, the API's JWT signing-key secret; the Stripe secrets by seed_stripe)."""

from . import auth
from . import aws
from . import constants as C


def container_definition(version, environment=None):
    env = [
        {'name': 'SVPMS_ENV', 'value': 'sandbox'},
        {'name': 'SVPMS_VERSION', 'value': version},
    ]
    env.extend(environment or [])
    return {
        'name': C.CONTAINER,
        'image': '%s.dkr.ecr.%s.amazonaws.com/svpms-api:%s' % (C.ACCOUNT_ID, C.REGION, version),
        'cpu': 512,
        'memory': 1024,  # moto requires memory on containers
        'essential': True,
        'portMappings': [{'containerPort': C.CONTAINER_PORT, 'protocol': 'tcp'}],
        'environment': env,
        'logConfiguration': {
            'logDriver': 'awslogs',
            'options': {
                'awslogs-group': C.LOG_GROUP,
                'awslogs-region': C.REGION,
                'awslogs-stream-prefix': 'ecs',
            },
        },
    }


def task_definition_kwargs(version):
    return {
        'family': C.FAMILY,
        'networkMode': 'awsvpc',
        'requiresCompatibilities': ['FARGATE'],
        'cpu': '512',
        'memory': '1024',
        'executionRoleArn': 'arn:aws:iam::%s:role/svpms-sandbox-ecs-execution' % C.ACCOUNT_ID,
        'taskRoleArn': 'arn:aws:iam::%s:role/svpms-sandbox-api-task' % C.ACCOUNT_ID,
        'containerDefinitions': [container_definition(version)],
    }


def seed(moto_port):
    """Create everything the runbooks expect. Returns a dict of created ids."""
    ec2 = aws.client('ec2', moto_port)
    ecs = aws.client('ecs', moto_port)
    logs = aws.client('logs', moto_port)
    ssm = aws.client('ssm', moto_port)

    # Network (moto validates subnet + security group for awsvpc services).
    vpc_id = ec2.create_vpc(CidrBlock='10.42.0.0/16')['Vpc']['VpcId']
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={'Value': True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={'Value': True})
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock='10.42.1.0/24',
                                  AvailabilityZone=C.REGION + 'a')['Subnet']['SubnetId']
    sg_id = ec2.create_security_group(GroupName='svpms-sandbox-api', VpcId=vpc_id,
                                      Description='svpms-api tasks (sandbox)')['GroupId']
    ec2.create_tags(Resources=[vpc_id, subnet_id, sg_id],
                    Tags=[{'Key': 'Name', 'Value': 'svpms-sandbox'}])

    # ECS: cluster, three good revisions, revision 1 deregistered (INACTIVE).
    ecs.create_cluster(clusterName=C.CLUSTER)
    arns = []
    for version in C.GOOD_VERSIONS:
        td = ecs.register_task_definition(**task_definition_kwargs(version))['taskDefinition']
        arns.append(td['taskDefinitionArn'])
    ecs.deregister_task_definition(taskDefinition='%s:%d' % (C.FAMILY, C.INACTIVE_REVISION))
    current = arns[-1]
    ecs.create_service(
        cluster=C.CLUSTER,
        serviceName=C.SERVICE,
        taskDefinition=current,
        desiredCount=C.DESIRED_COUNT,
        launchType='FARGATE',
        networkConfiguration={'awsvpcConfiguration': {
            'subnets': [subnet_id], 'securityGroups': [sg_id], 'assignPublicIp': 'DISABLED'}},
        loadBalancers=[{'targetGroupArn': C.TARGET_GROUP_ARN,
                        'containerName': C.CONTAINER, 'containerPort': C.CONTAINER_PORT}],
    )

    # CloudWatch Logs: the awslogs group and one task stream.
    logs.create_log_group(logGroupName=C.LOG_GROUP)
    logs.put_retention_policy(logGroupName=C.LOG_GROUP, retentionInDays=14)
    logs.create_log_stream(logGroupName=C.LOG_GROUP, logStreamName=C.LOG_STREAM)

    # SSM: integration circuit-breaker flags.
    for name, value in C.FLAGS.items():
        ssm.put_parameter(Name=C.FLAG_PREFIX + name, Value=value, Type='String',
                          Description='circuit breaker for the %s integration (sandbox)' % name)

    # SSM: the API's cache TTL setting (the twin re-reads it every ~2 s).
    ssm.put_parameter(Name=C.CACHE_TTL_PARAMETER, Value=str(C.GOOD_CACHE_TTL), Type='String',
                      Description='svpms-api response cache TTL in seconds (sandbox)')

    # DynamoDB: the one-mitigation-at-a-time lock table (incident_lock module),
    # created as the module's documentation says, TTL on expires_at.
    dynamodb = aws.client('dynamodb', moto_port)
    dynamodb.create_table(TableName=C.LOCK_TABLE,
                          AttributeDefinitions=[{'AttributeName': 'lock_key', 'AttributeType': 'S'}],
                          KeySchema=[{'AttributeName': 'lock_key', 'KeyType': 'HASH'}],
                          BillingMode='PAY_PER_REQUEST')
    dynamodb.update_time_to_live(TableName=C.LOCK_TABLE,
                                 TimeToLiveSpecification={'Enabled': True, 'AttributeName': 'expires_at'})

    # Secrets Manager: the API's JWT signing key, an RSA-2048 private key as a PKCS#8
    # PEM string (the twin signs with AWSCURRENT as loaded at deployment, and
    # verifies with AWSCURRENT + AWSPREVIOUS).
    secrets = aws.client('secretsmanager', moto_port)
    pem = auth.generate_rsa_pem()
    secret = secrets.create_secret(Name=C.JWT_SECRET_ID, SecretString=pem,
                                   Description='svpms-api JWT signing key (RS256, sandbox)')

    return {'vpc_id': vpc_id, 'subnet_id': subnet_id, 'security_group_id': sg_id,
            'task_definition': current, 'jwt_secret_version': secret['VersionId'],
            'jwt_kid': auth.load_key(pem).kid}


def seed_stripe(moto_port, webhook_secret, api_key=C.STRIPE_API_KEY):
    """The API's Stripe secrets in Secrets Manager: the API key (the sandbox placeholder) and the signing
    secret of the webhook endpoint registered at the Stripe stand-in. -> {secret id: version id}."""
    secrets = aws.client('secretsmanager', moto_port)
    out = {}
    for secret_id, value, what in ((C.STRIPE_KEY_SECRET_ID, api_key, 'Stripe secret API key'),
                                   (C.STRIPE_WEBHOOK_SECRET_ID, webhook_secret,
                                    'Stripe webhook endpoint signing secret (whsec_)')):
        out[secret_id] = secrets.create_secret(Name=secret_id, SecretString=value,
                                               Description='svpms-api %s (sandbox)' % what)['VersionId']
    return out
