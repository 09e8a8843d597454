#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: cloudwatch_metric_put
short_description: Publish custom CloudWatch metrics (for example a health verification verdict)
version_added: 1.0.0
description:
  - Sends O(metrics) to CloudWatch in one C(PutMetricData) request, so that a task publishes all of
    its datapoints or none of them.
  - Made for scheduled health verification - publishing C(HealthVerificationFailed) (1 or 0) per
    service lets a CloudWatch alarm page when a verification fails, and, with missing data treated
    as breaching, when verification stops running.
  - Every input is validated before anything is sent; a bad entry fails naming the entry and field.
  - Publishing a datapoint always changes CloudWatch, so the task reports C(changed) whenever
    O(metrics) is not empty.
author: SVPMS Platform Team (@svpms)
options:
  namespace:
    description:
      - Namespace of the metrics, for example V(SVPMS/HealthVerification).
      - Namespaces starting with V(AWS/) are reserved for AWS services and refused.
    type: str
    required: true
  metrics:
    description:
      - The datapoints, at most 1000 (one request).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Metric name, for example V(HealthVerificationFailed).
        type: str
        required: true
      value:
        description:
          - The value. V(true) and V(false) are published as 1 and 0.
        type: raw
        required: true
      unit:
        description: A CloudWatch standard unit, for example V(Count), V(Percent), V(Milliseconds) or V(None).
        type: str
        default: 'None'
      dimensions:
        description: 'Dimension names and values (at most 30), for example C({"Service": "svpms-api"}).'
        type: dict
        default: {}
      timestamp:
        description:
          - ISO 8601 time or epoch seconds; at most two weeks old and two hours ahead. Default now.
        type: raw
      storage_resolution:
        description: V(60) for a standard-resolution metric, V(1) for high resolution.
        type: int
        default: 60
        choices: [1, 60]
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode every datapoint is validated and returned but C(PutMetricData) is never called.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
notes:
  - IAM action used - C(cloudwatch:PutMetricData), which can be limited to the namespace with the
    C(cloudwatch:namespace) condition key.
  - A transient error is retried with the same timestamps; a retried request that had in fact arrived
    adds a second sample of the same value (C(Maximum) and C(Minimum) are unchanged).
seealso:
  - name: PutMetricData
    description: CloudWatch API reference.
    link: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
  - name: Using Amazon CloudWatch alarms
    description: Alarms on custom metrics, and how missing data is treated.
    link: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
'''

EXAMPLES = r'''
- name: Publish the health verification verdict of a service
  svpms.incident_response.cloudwatch_metric_put:
    namespace: SVPMS/HealthVerification
    metrics:
      - name: HealthVerificationFailed
        value: "{{ health_check_result.verdict in ['slo_breach', 'down'] }}"
        unit: Count
        dimensions:
          Service: svpms-api
          Environment: production
    region: us-east-1
'''

RETURN = r'''
namespace:
  description: The namespace.
  returned: always
  type: str
  sample: SVPMS/HealthVerification
metrics:
  description: The datapoints as sent (in check mode, as they would be sent).
  returned: always
  type: list
  elements: dict
  sample:
    - name: HealthVerificationFailed
      value: 0.0
      unit: Count
      dimensions: {Service: svpms-api}
      timestamp: "2026-11-27T17:40:00Z"
      storage_resolution: 60
published:
  description: Whether the datapoints were sent (V(false) in check mode and when O(metrics) is empty).
  returned: always
  type: bool
  sample: true
'''

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (  # noqa: E402
    AWSError,
    AWSModule,
)
from ansible_collections.svpms.incident_response.plugins.module_utils.cloudwatch import (  # noqa: E402
    MAX_METRICS_PER_PUT,
    describe_datum,
    iso,
    metric_datum,
    validate_namespace,
)


def as_result(datum):
    return dict(name=datum['MetricName'], value=datum['Value'], unit=datum['Unit'],
                dimensions=dict((d['Name'], d['Value']) for d in datum['Dimensions']),
                timestamp=iso(datum['Timestamp']), storage_resolution=datum['StorageResolution'])


def main():
    module = AWSModule(
        argument_spec=dict(
            namespace=dict(type='str', required=True),
            # limits checked entry by entry in module_utils/cloudwatch.metric_datum, so an error names the entry
            metrics=dict(type='list', elements='dict', required=True, options=dict(
                name=dict(type='str', required=True),
                value=dict(type='raw', required=True),
                unit=dict(type='str', default='None'),
                dimensions=dict(type='dict', default={}),
                timestamp=dict(type='raw'),
                storage_resolution=dict(type='int', default=60, choices=[1, 60]),
            )),
        ),
        supports_check_mode=True,
    )
    namespace = module.params['namespace']
    error = validate_namespace(namespace)
    if error:
        module.fail_json(msg=error, published=False)
    metrics = module.params['metrics']
    if len(metrics) > MAX_METRICS_PER_PUT:
        module.fail_json(msg='metrics has %d entries; at most %d fit in one PutMetricData request (this module '
                             'sends one, so that nothing is half-published)' % (len(metrics), MAX_METRICS_PER_PUT),
                         published=False)
    try:
        data = [metric_datum(metric, index) for index, metric in enumerate(metrics)]
    except ValueError as exc:
        module.fail_json(msg=str(exc), namespace=namespace, published=False)

    sent = [as_result(datum) for datum in data]
    result = dict(changed=bool(data), namespace=namespace, metrics=sent, published=False)
    if data:
        result['diff'] = dict(before='', after=''.join(describe_datum(namespace, d) + '\n' for d in data),
                              after_header='cloudwatch:%s' % namespace)
    if data and not module.check_mode:
        cloudwatch = module.client('cloudwatch')
        try:
            cloudwatch.call('put_metric_data', Namespace=namespace, MetricData=data)
        except AWSError as err:
            module.fail_aws(err, namespace=namespace, metrics=sent, published=False)
        result['published'] = True
    module.exit_json(**result)


if __name__ == '__main__':
    main()
