"""module_utils/cloudwatch: the datapoints cloudwatch_metric_put builds (pure logic, no server)."""

import datetime

import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils.cloudwatch import (
    describe_datum,
    metric_datum,
    validate_namespace,
)

NOW = 1795800000.0  # 2026-11-27T... UTC, fixed


def test_datum_has_the_api_shape():
    datum = metric_datum(dict(name='HealthVerificationFailed', value=True, unit='Count',
                              dimensions={'Service': 'svpms-api', 'Environment': 'production'}), now=NOW)
    assert datum == dict(MetricName='HealthVerificationFailed', Value=1.0, Unit='Count',
                         Dimensions=[{'Name': 'Environment', 'Value': 'production'},
                                     {'Name': 'Service', 'Value': 'svpms-api'}],
                         Timestamp=datetime.datetime.utcfromtimestamp(NOW), StorageResolution=60)
    assert describe_datum('SVPMS/HV', datum).startswith(
        'SVPMS/HV/HealthVerificationFailed{Environment=production,Service=svpms-api} 1 Count @ ')


def test_defaults_and_explicit_timestamp():
    datum = metric_datum(dict(name='X', value='0.25', timestamp='2026-11-27T10:00:00Z',
                              storage_resolution='1'), now=NOW)
    assert datum['Value'] == 0.25 and datum['Unit'] == 'None' and datum['Dimensions'] == []
    assert datum['Timestamp'] == datetime.datetime(2026, 11, 27, 10, 0, 0)
    assert datum['StorageResolution'] == 1


@pytest.mark.parametrize('metric,expected', [
    ('x', 'metrics[3] must be a dictionary'),
    (dict(value=1), 'metrics[3].name'),
    (dict(name='X', value=1, colour='red'), 'unknown keys colour'),
    (dict(name='X', value=None), 'metrics[3].value must be a number'),
    (dict(name='X', value=float('nan')), 'finite number'),
    (dict(name='X', value=1e200), 'finite number'),
    (dict(name='X', value=1, unit='ms'), 'metrics[3].unit must be one of'),
    (dict(name='X', value=1, dimensions=['Service']), 'dimensions must be a dictionary'),
    (dict(name='X', value=1, dimensions=dict(('d%d' % i, 'v') for i in range(31))), 'at most 30'),
    (dict(name='X', value=1, dimensions={'Service': None}), 'metrics[3].dimensions.Service'),
    (dict(name='X', value=1, timestamp=NOW + 3 * 3600), 'two hours ahead'),
    (dict(name='X', value=1, timestamp='yesterday'), 'metrics[3].timestamp must be an ISO 8601'),
    (dict(name='X', value=1, storage_resolution=10), 'storage_resolution must be 1'),
])
def test_invalid_entries_name_the_field(metric, expected):
    with pytest.raises(ValueError) as err:
        metric_datum(metric, index=3, now=NOW)
    assert expected in str(err.value)


@pytest.mark.parametrize('namespace,ok', [
    ('SVPMS/HealthVerification', True), ('AWS/ECS', False), ('aws/ecs', False), ('', False),
    (':x', False), (' SVPMS', False), ('x' * 256, False),
])
def test_namespace(namespace, ok):
    assert (validate_namespace(namespace) is None) is ok
