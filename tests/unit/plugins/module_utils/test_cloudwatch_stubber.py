"""CloudWatch GetMetricData helper, on recorded real-API response shapes.

moto answers any percentile statistic (p95, p99) in GetMetricData with an
HTTP 500 (see /work/shared/notes/moto.md), so the percentile path cannot be
tested against moto_server. These tests drive module_utils/cloudwatch.py
through an AWSClient wrapping a real ``boto3.client('cloudwatch')`` whose
responses come from ``botocore.stub.Stubber``: botocore validates both our
request parameters and the stubbed responses against the real API model, and
the response bodies follow what CloudWatch returns (MetricDataResults with
Id/Label/Timestamps/Values/StatusCode/Messages, NextToken, Messages).
"""

import datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ansible_collections.svpms.incident_response.plugins.module_utils import cloudwatch as cw
from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (
    AWSClient,
    AWSUnreachableError,
)
from ansible_collections.svpms.incident_response.plugins.modules import service_metrics_info as smi

UTC = datetime.timezone.utc
LB = 'app/svpms-prod-alb/50dc6c495c0c9188'
TG = 'targetgroup/svpms-api/73e2d6bc24d8a067'
DIMS = dict(LoadBalancer=LB, TargetGroup=TG)
START = 1770976800  # 2026-02-13T10:00:00Z
END = START + 300


def ts(minute):
    return datetime.datetime(2026, 2, 13, 10, minute, tzinfo=UTC)


def result(qid, label, points, status='Complete'):
    return {'Id': qid, 'Label': label, 'Timestamps': [t for t, _v in points],
            'Values': [v for _t, v in points], 'StatusCode': status, 'Messages': []}


@pytest.fixture
def stubbed():
    client = boto3.client('cloudwatch', region_name='us-east-1', aws_access_key_id='x',
                          aws_secret_access_key='y')
    with Stubber(client) as stubber:
        yield AWSClient(client, 'cloudwatch', max_attempts=1, sleep=lambda _s: None), stubber
        stubber.assert_no_pending_responses()


def percentile_queries():
    return [
        cw.metric_query('requests', 'AWS/ApplicationELB', 'RequestCount', DIMS, 'Sum', 60,
                        label='RequestCount Sum'),
        cw.metric_query('errors_5xx', 'AWS/ApplicationELB', 'HTTPCode_Target_5XX_Count', DIMS,
                        'Sum', 60, label='HTTPCode_Target_5XX_Count Sum'),
        cw.metric_query('latency_p95_ms', 'AWS/ApplicationELB', 'TargetResponseTime', DIMS, 'p95',
                        60, label='TargetResponseTime p95'),
        cw.metric_query('latency_p99_ms', 'AWS/ApplicationELB', 'TargetResponseTime', DIMS, 'p99',
                        60, label='TargetResponseTime p99'),
    ]


def expected_request(queries, token=None):
    params = {'MetricDataQueries': queries, 'StartTime': ANY, 'EndTime': ANY,
              'ScanBy': 'TimestampAscending'}
    if token:
        params['NextToken'] = token
    return params


def test_all_queries_in_one_call_and_percentiles_in_ms(stubbed):
    client, stubber = stubbed
    queries = percentile_queries()
    stubber.add_response('get_metric_data', {
        'MetricDataResults': [
            result('requests', 'RequestCount Sum', [(ts(0), 1000.0), (ts(1), 1200.0)]),
            result('errors_5xx', 'HTTPCode_Target_5XX_Count Sum', [(ts(0), 10.0), (ts(1), 62.0)]),
            result('latency_p95_ms', 'TargetResponseTime p95', [(ts(0), 0.412), (ts(1), 0.8755)]),
            result('latency_p99_ms', 'TargetResponseTime p99', [(ts(0), 1.21), (ts(1), 2.5)]),
        ],
        'Messages': [],
    }, expected_request(queries))

    results, calls = cw.get_metric_data(client, queries, START, END)

    assert calls == 1  # one GetMetricData request carried every query
    assert set(results) == {'requests', 'errors_5xx', 'latency_p95_ms', 'latency_p99_ms'}
    p95 = results['latency_p95_ms']['points']
    assert [cw.iso(t) for t, _v in p95] == ['2026-02-13T10:00:00Z', '2026-02-13T10:01:00Z']
    assert cw.scaled(cw.series_max(p95), 1000.0) == 875.5
    assert cw.scaled(cw.series_max(results['latency_p99_ms']['points']), 1000.0) == 2500.0
    assert cw.series_sum(results['requests']['points']) == 2200.0
    assert cw.series_records(p95, 1000.0) == [
        {'timestamp': '2026-02-13T10:00:00Z', 'value': 412.0},
        {'timestamp': '2026-02-13T10:01:00Z', 'value': 875.5}]


def test_next_token_pages_are_merged_per_query_id(stubbed):
    client, stubber = stubbed
    queries = percentile_queries()
    # CloudWatch splits long answers across pages; one id can span both pages.
    stubber.add_response('get_metric_data', {
        'MetricDataResults': [
            result('requests', 'RequestCount Sum', [(ts(0), 500.0), (ts(1), 500.0)],
                   status='PartialData'),
        ],
        'NextToken': 'page-2-token',
    }, expected_request(queries))
    stubber.add_response('get_metric_data', {
        'MetricDataResults': [
            result('requests', 'RequestCount Sum', [(ts(2), 250.0)]),
            result('errors_5xx', 'HTTPCode_Target_5XX_Count Sum', [(ts(2), 25.0)]),
            result('latency_p95_ms', 'TargetResponseTime p95', [(ts(2), 0.3)]),
            result('latency_p99_ms', 'TargetResponseTime p99', [(ts(2), 0.9)]),
        ],
    }, expected_request(queries, token='page-2-token'))

    results, calls = cw.get_metric_data(client, queries, START, END)

    assert calls == 2
    assert [v for _t, v in results['requests']['points']] == [500.0, 500.0, 250.0]
    assert results['requests']['status_code'] == 'Complete'
    assert cw.series_sum(results['errors_5xx']['points']) == 25.0


def test_descending_timestamps_are_sorted_ascending(stubbed):
    client, stubber = stubbed
    queries = percentile_queries()[:1]
    stubber.add_response('get_metric_data', {'MetricDataResults': [
        result('requests', 'RequestCount Sum', [(ts(2), 3.0), (ts(0), 1.0), (ts(1), 2.0)])]},
        expected_request(queries))
    results, _calls = cw.get_metric_data(client, queries, START, END)
    assert [v for _t, v in results['requests']['points']] == [1.0, 2.0, 3.0]


def test_max_pages_stops_and_marks_partial(stubbed):
    client, stubber = stubbed
    queries = percentile_queries()[:1]
    stubber.add_response('get_metric_data', {
        'MetricDataResults': [result('requests', 'RequestCount Sum', [(ts(0), 1.0)])],
        'NextToken': 'more'}, expected_request(queries))
    results, calls = cw.get_metric_data(client, queries, START, END, max_pages=1)
    assert calls == 1
    assert results['requests']['status_code'] == 'PartialData'


def test_server_error_is_a_typed_error(stubbed):
    # What moto does for p95: HTTP 500 for the whole call.
    client, stubber = stubbed
    stubber.add_client_error('get_metric_data', service_error_code='InternalFailure',
                             service_message='boom', http_status_code=500)
    with pytest.raises(AWSUnreachableError) as info:
        cw.get_metric_data(client, percentile_queries(), START, END)
    assert info.value.action == 'cloudwatch:GetMetricData'


def test_module_percentile_path_summary(stubbed):
    """service_metrics_info's own query building and reduction, latency_source=percentiles."""
    client, stubber = stubbed
    params = dict(_load_balancer=LB, _target_group=TG, include_elb_5xx=True,
                  latency_source='percentiles', ecs_cluster=None, ecs_service=None,
                  db_instance=None)
    queries, factors = smi.build_queries(params, 60, 300)
    ids = [q['Id'] for q in queries]
    assert ids == ['requests', 'errors_5xx', 'errors_elb_5xx', 'latency_p95_ms',
                   'latency_p95_ms_window', 'latency_p99_ms', 'latency_p99_ms_window']
    assert {q['MetricStat']['Stat'] for q in queries if q['Id'].startswith('latency')} == {'p95', 'p99'}
    elb = next(q for q in queries if q['Id'] == 'errors_elb_5xx')
    assert elb['MetricStat']['Metric']['Dimensions'] == [{'Name': 'LoadBalancer', 'Value': LB}]
    stubber.add_response('get_metric_data', {'MetricDataResults': [
        result('requests', 'RequestCount Sum', [(ts(0), 600.0), (ts(1), 400.0)]),
        result('errors_5xx', 'HTTPCode_Target_5XX_Count Sum', [(ts(0), 30.0), (ts(1), 10.0)]),
        result('errors_elb_5xx', 'HTTPCode_ELB_5XX_Count Sum', [(ts(1), 10.0)]),
        result('latency_p95_ms', 'TargetResponseTime p95', [(ts(0), 0.9), (ts(1), 0.3)]),
        result('latency_p95_ms_window', 'TargetResponseTime p95', [(ts(0), 0.7125)]),
        result('latency_p99_ms', 'TargetResponseTime p99', [(ts(0), 1.9), (ts(1), 0.5)]),
        result('latency_p99_ms_window', 'TargetResponseTime p99', [(ts(0), 1.6)]),
    ]}, expected_request(queries))

    results, calls = cw.get_metric_data(client, queries, START, END)
    notes = []
    summary = smi.summarize(results, params, notes)

    assert calls == 1
    assert summary['requests'] == 1000 and summary['errors_5xx'] == 40
    assert summary['errors_elb_5xx'] == 10
    # ELB 5xx count in both numerator and denominator: 50 / 1010
    assert summary['error_rate_pct'] == round(100.0 * 50 / 1010, 4)
    # whole-window statistic, not the max or mean of the per-minute ones
    assert summary['latency_p95_ms'] == 712.5
    assert summary['latency_p99_ms'] == 1600.0
    assert summary['latency_avg_ms'] is None
    assert summary['no_traffic'] is False
    assert factors['latency_p95_ms'] == 1000.0


def test_module_percentile_path_no_datapoints_is_no_traffic(stubbed):
    client, stubber = stubbed
    params = dict(_load_balancer=LB, _target_group=TG, include_elb_5xx=False,
                  latency_source='percentiles', ecs_cluster=None, ecs_service=None,
                  db_instance=None)
    queries, _factors = smi.build_queries(params, 60, 300)
    stubber.add_response('get_metric_data', {'MetricDataResults': [
        result(q['Id'], q['Label'], []) for q in queries]}, expected_request(queries))
    results, _calls = cw.get_metric_data(client, queries, START, END)
    notes = []
    summary = smi.summarize(results, params, notes)
    assert summary['requests'] == 0 and summary['error_rate_pct'] == 0.0
    assert summary['no_traffic'] is True
    assert summary['latency_p95_ms'] is None and summary['latency_p99_ms'] is None
    assert any('no_traffic' in n for n in notes)


class TestQueriesAndWindows:
    def test_metric_query_shape(self):
        query = cw.metric_query('cpu_avg_pct', 'AWS/ECS', 'CPUUtilization',
                                dict(ServiceName='svpms-api', ClusterName='svpms-prod'), 'Average', 60)
        assert query == {'Id': 'cpu_avg_pct', 'ReturnData': True, 'MetricStat': {
            'Metric': {'Namespace': 'AWS/ECS', 'MetricName': 'CPUUtilization',
                       'Dimensions': [{'Name': 'ClusterName', 'Value': 'svpms-prod'},
                                      {'Name': 'ServiceName', 'Value': 'svpms-api'}]},
            'Period': 60, 'Stat': 'Average'}}
        assert cw.describe_query(query)['dimensions'] == {'ClusterName': 'svpms-prod',
                                                          'ServiceName': 'svpms-api'}

    @pytest.mark.parametrize('qid', ['Requests', '1abc', 'a-b', ''])
    def test_bad_query_ids(self, qid):
        with pytest.raises(ValueError):
            cw.metric_query(qid, 'AWS/ECS', 'CPUUtilization', {}, 'Average', 60)

    @pytest.mark.parametrize('period,ok', [(1, True), (5, True), (10, True), (30, True), (60, True),
                                           (300, True), (7, False), (0, False), (90, False),
                                           (-60, False), (True, False)])
    def test_validate_period(self, period, ok):
        assert (cw.validate_period(period) is None) is ok

    def test_duplicate_ids_and_too_many_queries(self):
        q = cw.metric_query('a', 'N', 'M', {}, 'Sum', 60)
        with pytest.raises(ValueError):
            cw.get_metric_data(None, [q, dict(q)], START, END)
        with pytest.raises(ValueError):
            cw.get_metric_data(None, [dict(q, Id='q%d' % i) for i in range(501)], START, END)

    @pytest.mark.parametrize('value,expected', [
        ('2026-02-13T10:00:00Z', START),
        ('2026-02-13T10:00:00', START),
        ('2026-02-13 10:00:00.250Z', START + 0.25),
        ('2026-02-13T11:00:00+01:00', START),
        ('2026-02-13T05:30:00-0430', START),
        ('2026-02-13', START - 36000),
        (str(START), START),
        (START, START),
    ])
    def test_parse_time(self, value, expected):
        assert cw.parse_time(value) == pytest.approx(expected)

    @pytest.mark.parametrize('value', ['yesterday', '2026-13-01T00:00:00Z', '2026-02-13T25:00:00Z',
                                       '1770976800000', '-5'])
    def test_parse_time_rejects(self, value):
        with pytest.raises(ValueError) as info:
            cw.parse_time(value, 'start_time')
        assert 'start_time' in str(info.value)

    def test_resolve_window(self):
        assert cw.resolve_window(300, None, None, now=END) == (START, END)
        assert cw.resolve_window(300, '2026-02-13T10:00:00Z', None, now=END + 60) == (START, END + 60)
        with pytest.raises(ValueError) as info:
            cw.resolve_window(300, '2026-02-13T10:10:00Z', '2026-02-13T10:00:00Z')
        assert 'start_time' in str(info.value)
        with pytest.raises(ValueError):
            cw.resolve_window(0, None, None)

    def test_align_and_window_period(self):
        assert cw.align_window(START + 10, END + 5, 60) == (START, END + 60)
        assert cw.align_window(START + 10, START + 20, 60) == (START, START + 60)
        assert cw.window_period(START, END) == 300
        assert cw.window_period(START, START + 30) == 30
        assert cw.window_period(START, START + 90) == 120

    def test_reductions(self):
        pts = [(1, 2.0), (2, 4.0)]
        assert cw.series_sum([]) == 0.0
        assert cw.series_avg([]) is None and cw.series_max([]) is None
        assert cw.series_avg(pts) == 3.0 and cw.series_max(pts) == 4.0
        assert cw.weighted_avg(pts, [(1, 3.0), (2, 1.0)]) == 2.5
        assert cw.weighted_avg(pts, []) == 3.0


class TestLogPagination:
    """log_error_signatures_info's FilterLogEvents loop, on stubbed CloudWatch Logs pages.

    moto paginates only by ``limit``, so the page cap (CloudWatch returns
    empty pages with a nextToken while it searches) is tested here.
    """

    PARAMS = dict(log_group='/ecs/svpms-api', filter_pattern='ERROR', log_stream_prefix=None,
                  max_events=5000, max_pages=2)

    @staticmethod
    def logs_client():
        client = boto3.client('logs', region_name='us-east-1', aws_access_key_id='x',
                              aws_secret_access_key='y')
        return client, Stubber(client)

    @staticmethod
    def event(i):
        return {'logStreamName': 'api/1', 'timestamp': 1770976800000 + i, 'message': 'ERROR %d' % i,
                'ingestionTime': 1770976800000 + i, 'eventId': str(i)}

    def test_max_pages_truncates(self):
        from ansible_collections.svpms.incident_response.plugins.modules import (
            log_error_signatures_info as lesi)
        client, stubber = self.logs_client()
        base = {'logGroupName': '/ecs/svpms-api', 'startTime': 1, 'endTime': 2,
                'filterPattern': 'ERROR', 'limit': 5000}
        stubber.add_response('filter_log_events', {'events': [], 'nextToken': 't1'}, base)
        stubber.add_response('filter_log_events', {'events': [self.event(1)], 'nextToken': 't2'},
                             dict(base, nextToken='t1', limit=5000))
        with stubber:
            events, pages, truncated = lesi.read_events(
                AWSClient(client, 'logs', max_attempts=1), self.PARAMS, 1, 2)
        stubber.assert_no_pending_responses()
        assert (len(events), pages, truncated) == (1, 2, True)

    def test_max_events_shrinks_the_page_limit_and_stops(self):
        from ansible_collections.svpms.incident_response.plugins.modules import (
            log_error_signatures_info as lesi)
        client, stubber = self.logs_client()
        params = dict(self.PARAMS, max_events=3, max_pages=50, log_stream_prefix='api/')
        base = {'logGroupName': '/ecs/svpms-api', 'startTime': 1, 'endTime': 2,
                'filterPattern': 'ERROR', 'logStreamNamePrefix': 'api/', 'limit': 3}
        stubber.add_response('filter_log_events', {'events': [self.event(1), self.event(2)],
                                                   'nextToken': 't1'}, base)
        stubber.add_response('filter_log_events', {'events': [self.event(3)], 'nextToken': 't2'},
                             dict(base, nextToken='t1', limit=1))
        with stubber:
            events, pages, truncated = lesi.read_events(
                AWSClient(client, 'logs', max_attempts=1), params, 1, 2)
        assert (len(events), pages, truncated) == (3, 2, True)

    def test_last_page_is_not_truncated(self):
        from ansible_collections.svpms.incident_response.plugins.modules import (
            log_error_signatures_info as lesi)
        client, stubber = self.logs_client()
        stubber.add_response('filter_log_events', {'events': [self.event(1)]})
        with stubber:
            events, pages, truncated = lesi.read_events(
                AWSClient(client, 'logs', max_attempts=1), self.PARAMS, 1, 2)
        assert (len(events), pages, truncated) == (1, 1, False)
