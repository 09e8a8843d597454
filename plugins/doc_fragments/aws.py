# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options shared by every AWS module (module_utils/aws.py).
    DOCUMENTATION = r'''
options:
  region:
    description:
      - AWS region, for example V(eu-west-1).
      - Falls back to E(AWS_REGION), then E(AWS_DEFAULT_REGION).
    type: str
    aliases: [aws_region]
  profile:
    description:
      - Named profile from the AWS config/credentials files. Falls back to E(AWS_PROFILE).
    type: str
    aliases: [aws_profile]
  endpoint_url:
    description:
      - Alternative endpoint, for example a VPC endpoint or the local sandbox's moto_server.
      - Falls back to E(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
  access_key:
    description:
      - AWS access key id. Falls back to E(AWS_ACCESS_KEY_ID). Never logged.
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - AWS secret access key. Falls back to E(AWS_SECRET_ACCESS_KEY). Never logged.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - STS session token for temporary credentials. Falls back to E(AWS_SESSION_TOKEN). Never logged.
    type: str
    aliases: [aws_session_token]
  connect_timeout:
    description:
      - Seconds to wait for a TCP connection to the AWS endpoint.
    type: float
    default: 5
  read_timeout:
    description:
      - Seconds to wait for an AWS API response.
    type: float
    default: 20
  max_attempts:
    description:
      - Attempts per API call. Only transient errors (throttling, HTTP 5xx, dropped
        connections) are retried, with full-jitter exponential backoff.
    type: int
    default: 4
notes:
  - Errors name the IAM action that failed (for example C(ecs:DescribeServices)) and what to check.
  - An unreachable endpoint fails with C(reachable=false) and a message, never a traceback.
requirements:
  - boto3 >= 1.34.0
  - botocore >= 1.34.0
'''
