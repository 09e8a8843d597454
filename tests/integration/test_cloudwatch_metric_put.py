"""cloudwatch_metric_put against our moto_server (the ``moto`` fixture), run as a real module file.

What is published is read back with GetMetricData (the Maximum of the minute), as the
CloudWatch alarm on a health verification verdict would read it.
"""

import datetime
import time
import uuid

import pytest

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.servers import free_port
from tests.integration.test_observability_modules import aws_args, boto

UTC = datetime.timezone.utc


def namespace():
    return 'SVPMS/Test%s' % uuid.uuid4().hex[:10]


def published_max(moto, ns, name, dimensions):
    cw = boto(moto, 'cloudwatch')
    end = datetime.datetime.now(UTC) + datetime.timedelta(minutes=2)
    resp = cw.get_metric_data(
        MetricDataQueries=[{'Id': 'm', 'ReturnData': True, 'MetricStat': {
            'Metric': {'Namespace': ns, 'MetricName': name,
                       'Dimensions': [{'Name': k, 'Value': v} for k, v in sorted(dimensions.items())]},
            'Period': 60, 'Stat': 'Maximum'}}],
        StartTime=end - datetime.timedelta(minutes=15), EndTime=end)
    return resp['MetricDataResults'][0]['Values']


def listed(moto, ns):
    return boto(moto, 'cloudwatch').list_metrics(Namespace=ns)['Metrics']


def verdict_metrics(failed):
    return [dict(name='HealthVerificationFailed', value=failed, unit='Count',
                 dimensions={'Service': 'svpms-api', 'Environment': 'sandbox'}),
            dict(name='HealthChecksFailing', value=2 if failed else 0, unit='Count',
                 dimensions={'Service': 'svpms-api', 'Environment': 'sandbox'})]


def test_publishes_every_datapoint_in_one_request(moto):
    ns = namespace()
    result = run_module('cloudwatch_metric_put', aws_args(moto, namespace=ns, metrics=verdict_metrics(True)))
    assert_no_traceback(result)
    assert not result.failed, result.data
    assert result['changed'] is True and result['published'] is True
    assert [m['name'] for m in result['metrics']] == ['HealthVerificationFailed', 'HealthChecksFailing']
    assert result['metrics'][0]['value'] == 1.0  # true is published as 1
    dims = {'Service': 'svpms-api', 'Environment': 'sandbox'}
    assert published_max(moto, ns, 'HealthVerificationFailed', dims) == [1.0]
    assert published_max(moto, ns, 'HealthChecksFailing', dims) == [2.0]
    for secret in (AWS_TEST_CREDS['access_key'], AWS_TEST_CREDS['secret_key']):
        assert secret not in result.stdout


def test_check_mode_sends_nothing_and_shows_the_datapoints(moto):
    ns = namespace()
    result = run_module('cloudwatch_metric_put', aws_args(moto, namespace=ns, metrics=verdict_metrics(False)),
                        check=True)
    assert_no_traceback(result)
    assert result['changed'] is True and result['published'] is False
    assert 'HealthVerificationFailed{Environment=sandbox,Service=svpms-api} 0 Count' in result['diff']['after']
    assert listed(moto, ns) == []


@pytest.mark.parametrize('ns,metrics,expected', [
    ('AWS/ApplicationELB', [dict(name='X', value=1)], 'reserved'),
    ('SVPMS/Test', [dict(name='X', value='many')], 'metrics[0].value must be a number'),
    ('SVPMS/Test', [dict(name='X', value=1), dict(name='Y', value=1, unit='Requests')],
     "metrics[1].unit must be one of"),
    ('SVPMS/Test', [dict(name='X', value=1, dimensions={'Service': ''})], 'metrics[0].dimensions.Service'),
    ('SVPMS/Test', [dict(name='X', value=1, timestamp='2020-01-01T00:00:00Z')], 'two weeks old'),
    ('SVPMS/Test', [dict(name='X', value=1, storage_resolution=5)], 'storage_resolution'),
])
def test_bad_input_names_the_field_and_publishes_nothing(moto, ns, metrics, expected):
    # the first entries are valid: nothing of them is sent either
    result = run_module('cloudwatch_metric_put', aws_args(moto, namespace=ns, metrics=metrics))
    assert_no_traceback(result)
    assert result.failed
    assert expected in result['msg'], result['msg']
    if not ns.startswith('AWS/'):
        assert listed(moto, ns) == []


def test_more_than_one_request_is_refused(moto):
    ns = namespace()
    metrics = [dict(name='M%d' % i, value=i) for i in range(1001)]
    result = run_module('cloudwatch_metric_put', aws_args(moto, namespace=ns, metrics=metrics))
    assert result.failed and 'at most 1000' in result['msg']
    assert listed(moto, ns) == []


def test_unreachable_cloudwatch_is_reported_not_a_crash():
    endpoint = 'http://127.0.0.1:%d' % free_port()  # nothing listens there
    start = time.monotonic()
    result = run_module('cloudwatch_metric_put', dict(AWS_TEST_CREDS, endpoint_url=endpoint, connect_timeout=1,
                                                      max_attempts=2, namespace='SVPMS/Test',
                                                      metrics=[dict(name='X', value=1)]))
    assert_no_traceback(result)
    assert result.failed and result['published'] is False
    assert result['reachable'] is False and result['error_kind'] == 'unreachable'
    assert endpoint in result['msg']
    assert time.monotonic() - start < 30
