"""Observability modules against real backends on loopback.

service_metrics_info, log_error_signatures_info and ssm_flag run against our
moto_server (the ``moto`` fixture); http_probe against a tiny http.server on
a free port. Every module runs as a real module file (``run_module``).

moto limits (see /work/shared/notes/moto.md): percentile statistics fail
GetMetricData with a 500, so the metrics tests use latency_source=average
and the percentile path is covered by tests/unit/.../test_cloudwatch_stubber.py;
filter patterns other than bare words match everything, so the log tests rely
on the module's client-side error check; logStreamNamePrefix is ignored by
moto, so the prefix test also proves the client-side stream filter.
"""

import datetime
import http.server
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config

from tests.helpers.modules import AWS_TEST_CREDS, assert_no_traceback, run_module
from tests.helpers.servers import free_port

SECRET_VALUES = (AWS_TEST_CREDS['secret_key'], AWS_TEST_CREDS['access_key'])
UTC = datetime.timezone.utc


def aws_args(moto, **kwargs):
    args = dict(AWS_TEST_CREDS, endpoint_url=moto.endpoint)
    args.update(kwargs)
    return args


def boto(moto, service):
    return boto3.client(service, endpoint_url=moto.endpoint, region_name='us-east-1',
                        aws_access_key_id=AWS_TEST_CREDS['access_key'],
                        aws_secret_access_key=AWS_TEST_CREDS['secret_key'],
                        config=Config(retries={'max_attempts': 1}, connect_timeout=2,
                                      read_timeout=10))


def assert_clean(result, samples_hold_tracebacks=False):
    """No module traceback, no credentials in the output.

    Log samples legitimately contain application tracebacks, so for those
    results only stderr and the ``exception`` key are checked.
    """
    if samples_hold_tracebacks:
        assert 'Traceback' not in result.stderr, result.stderr
        assert not result.get('exception'), result.get('exception')
    else:
        assert_no_traceback(result)
    for secret in SECRET_VALUES:
        assert secret not in result.stdout


def minute_floor(seconds):
    return int(seconds // 60 * 60)


# --------------------------------------------------------------------------- metrics


@pytest.fixture
def alb_metrics(moto):
    """Known datapoints in three whole minutes starting 10 minutes ago."""
    cw = boto(moto, 'cloudwatch')
    suffix = uuid.uuid4().hex[:12]
    lb = 'app/test-alb-%s/50dc6c495c0c9188' % suffix
    tg = 'targetgroup/api-%s/73e2d6bc24d8a067' % suffix
    cluster, service, db = 'cluster-%s' % suffix, 'api-%s' % suffix, 'db-%s' % suffix
    base = minute_floor(time.time()) - 600
    alb = [{'Name': 'LoadBalancer', 'Value': lb}, {'Name': 'TargetGroup', 'Value': tg}]
    ecs = [{'Name': 'ClusterName', 'Value': cluster}, {'Name': 'ServiceName', 'Value': service}]
    rds = [{'Name': 'DBInstanceIdentifier', 'Value': db}]

    def put(namespace, name, dims, minute, values, unit='None'):
        ts = datetime.datetime.fromtimestamp(base + minute * 60 + 15, tz=UTC)
        cw.put_metric_data(Namespace=namespace, MetricData=[
            dict(MetricName=name, Dimensions=dims, Timestamp=ts, Values=values, Unit=unit)])

    elb = 'AWS/ApplicationELB'
    for minute, (requests, errors) in enumerate([(100, 10), (150, 5), (250, 10)]):
        put(elb, 'RequestCount', alb, minute, [requests], 'Count')
        put(elb, 'HTTPCode_Target_5XX_Count', alb, minute, [errors], 'Count')
    put(elb, 'HTTPCode_ELB_5XX_Count', [{'Name': 'LoadBalancer', 'Value': lb}], 1, [5], 'Count')
    put(elb, 'TargetResponseTime', alb, 0, [0.1, 0.2, 0.3, 0.4], 'Seconds')
    put(elb, 'TargetResponseTime', alb, 1, [0.5], 'Seconds')
    put('AWS/ECS', 'CPUUtilization', ecs, 0, [40.0, 60.0], 'Percent')
    put('AWS/ECS', 'CPUUtilization', ecs, 1, [80.0], 'Percent')
    put('AWS/ECS', 'MemoryUtilization', ecs, 0, [30.0], 'Percent')
    put('AWS/ECS', 'MemoryUtilization', ecs, 1, [50.0], 'Percent')
    put('AWS/RDS', 'DatabaseConnections', rds, 0, [10.0, 20.0], 'Count')
    put('AWS/RDS', 'DatabaseConnections', rds, 1, [30.0], 'Count')
    return dict(load_balancer=lb, target_group=tg, ecs_cluster=cluster, ecs_service=service,
                db_instance=db, base=base)


def metrics_args(moto, m, **kwargs):
    args = aws_args(moto, load_balancer=m['load_balancer'], target_group=m['target_group'],
                    latency_source='average', start_time=str(m['base']),
                    end_time=str(m['base'] + 300))
    args.update(kwargs)
    return args


def test_metrics_exact_values_in_one_call(moto, alb_metrics):
    m = alb_metrics
    result = run_module('service_metrics_info', metrics_args(
        moto, m, ecs_cluster=m['ecs_cluster'], ecs_service=m['ecs_service'],
        db_instance=m['db_instance']))
    assert_clean(result)
    assert not result.failed, result
    assert result['changed'] is False
    assert result['requests'] == 500
    assert result['errors_5xx'] == 25
    assert result['error_rate_pct'] == 5.0
    assert result['no_traffic'] is False
    assert result['errors_elb_5xx'] is None
    # whole-window Average of 0.1, 0.2, 0.3, 0.4, 0.5 s
    assert result['latency_avg_ms'] == 300.0
    assert result['latency_p95_ms'] is None and result['latency_p99_ms'] is None
    assert result['latency_source'] == 'average'
    assert any('latency_source=average' in n for n in result['notes'])
    assert result['cpu_avg_pct'] == 65.0 and result['cpu_max_pct'] == 80.0
    assert result['memory_avg_pct'] == 40.0 and result['memory_max_pct'] == 50.0
    assert result['db_connections_max'] == 30.0 and result['db_connections_avg'] == 22.5
    assert result['api_calls'] == 1
    start = datetime.datetime.fromtimestamp(m['base'], tz=UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
    assert result['window'] == dict(start=start, end=result['window']['end'],
                                    duration_seconds=300, period_seconds=60)
    assert [p['value'] for p in result['series']['requests']] == [100.0, 150.0, 250.0]
    assert [p['value'] for p in result['series']['latency_avg_ms']] == [250.0, 500.0]
    stamps = [p['timestamp'] for p in result['series']['requests']]
    assert stamps == sorted(stamps) and stamps[0] == start
    assert set(result['series']) == {'requests', 'errors_5xx', 'latency_avg_ms', 'cpu_avg_pct',
                                     'cpu_max_pct', 'memory_avg_pct', 'memory_max_pct',
                                     'db_connections_max', 'db_connections_avg'}
    ids = [q['id'] for q in result['queries']]
    assert ids[:2] == ['requests', 'errors_5xx'] and 'latency_avg_ms_window' in ids
    assert result['queries'][0]['dimensions'] == {'LoadBalancer': m['load_balancer'],
                                                  'TargetGroup': m['target_group']}


def test_metrics_elb_5xx_counts_as_errors(moto, alb_metrics):
    result = run_module('service_metrics_info', metrics_args(moto, alb_metrics,
                                                             include_elb_5xx=True))
    assert_clean(result)
    assert result['errors_elb_5xx'] == 5
    assert result['error_rate_pct'] == round(100.0 * 30 / 505, 4)


def test_metrics_accepts_arns_and_iso_times(moto, alb_metrics):
    m = alb_metrics
    iso = datetime.datetime.fromtimestamp(m['base'], tz=UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
    result = run_module('service_metrics_info', metrics_args(
        moto, m, load_balancer='arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/'
        + m['load_balancer'],
        target_group='arn:aws:elasticloadbalancing:us-east-1:123456789012:' + m['target_group'],
        start_time=iso, end_time=None, latency_source='none'))
    assert_clean(result)
    assert result['requests'] == 500 and result['error_rate_pct'] == 5.0
    assert result['latency_avg_ms'] is None
    assert not any(q['id'].startswith('latency') for q in result['queries'])


def test_metrics_no_datapoints_is_no_traffic(moto, alb_metrics):
    result = run_module('service_metrics_info', metrics_args(
        moto, alb_metrics, target_group='targetgroup/idle-%s/0000000000000000' % uuid.uuid4().hex[:8],
        start_time=None, end_time=None, window_seconds=300))
    assert_clean(result)
    assert not result.failed, result
    assert result['requests'] == 0 and result['errors_5xx'] == 0
    assert result['error_rate_pct'] == 0
    assert result['no_traffic'] is True
    assert result['latency_avg_ms'] is None
    assert result['series']['requests'] == []
    assert any('no_traffic' in n for n in result['notes'])


def test_metrics_percentiles_on_moto_fail_with_a_hint(moto, alb_metrics):
    # moto answers p95/p99 with HTTP 500; the module says what to do instead.
    result = run_module('service_metrics_info', metrics_args(moto, alb_metrics,
                                                             latency_source='percentiles'))
    assert_clean(result)
    assert result.failed
    assert 'cloudwatch:GetMetricData' in result['msg']
    assert 'latency_source=average' in result['msg']


@pytest.mark.parametrize('override,parameter', [
    (dict(period_seconds=7), 'period_seconds'),
    (dict(period_seconds=90), 'period_seconds'),
    (dict(start_time='yesterday'), 'start_time'),
    (dict(start_time=None, end_time=None, window_seconds=0), 'window_seconds'),
    (dict(target_group='svpms-api'), 'target_group'),
    (dict(load_balancer='net/x/y'), 'load_balancer'),
    (dict(latency_source='median'), 'latency_source'),
    (dict(ecs_cluster='only-cluster'), 'ecs_service'),
])
def test_metrics_bad_input_names_the_parameter(moto, alb_metrics, override, parameter):
    result = run_module('service_metrics_info', metrics_args(moto, alb_metrics, **override))
    assert_clean(result)
    assert result.failed
    assert parameter in result['msg']


# --------------------------------------------------------------------------- logs

ERP_TRACEBACK = '''ERROR [req-{req}] Unhandled exception on POST /v1/orders/{order}
Traceback (most recent call last):
  File "/usr/local/lib/python3.11/site-packages/flask/app.py", line 1463, in wsgi_app
    response = self.full_dispatch_request()
  File "/app/svpms/integrations/erp.py", line 42, in push
    resp = self.session.post(url, json=payload, timeout=5)
requests.exceptions.ConnectTimeout: Max retries exceeded with url: /api/invoices/{order}'''

DB_TRACEBACK = '''ERROR request {req} failed
Traceback (most recent call last):
  File "/app/svpms/api/auth.py", line 20, in login
    user = users.find(email)
  File "/app/svpms/db/pool.py", line 77, in acquire
    raise OperationalError("pool exhausted")
svpms.db.errors.OperationalError: pool exhausted after {ms} ms for {req}'''


@pytest.fixture
def log_group(moto):
    logs = boto(moto, 'logs')
    name = '/ecs/svpms-api-%s' % uuid.uuid4().hex[:8]
    logs.create_log_group(logGroupName=name)
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - 120000

    def put(stream, messages, offset_ms):
        logs.create_log_stream(logGroupName=name, logStreamName=stream)
        events = [dict(timestamp=start_ms + offset_ms + i * 100, message=msg)
                  for i, msg in enumerate(messages)]
        logs.put_log_events(logGroupName=name, logStreamName=stream, logEvents=events)

    api = []
    for i in range(6):
        api.append(ERP_TRACEBACK.format(req=uuid.uuid4().hex[:8], order=1000 + i * 7))
        api.append('INFO GET /v1/orders/%d 200 12ms' % i)
    for i in range(3):
        api.append(DB_TRACEBACK.format(req=uuid.uuid4(), ms=3000 + i))
    # Mentions ERROR (so the server-side filter lets it through) but is not an error.
    api.append('{"level": "info", "message": "ERROR budget at 40%"}')
    api.append('INFO ERRORS_TOTAL=0')
    put('api/ecs/1', api, 0)
    put('worker/ecs/1', [DB_TRACEBACK.format(req='worker-%d' % i, ms=i) for i in range(4)], 5000)
    return dict(name=name, start=start_ms // 1000 - 1, end=now_ms // 1000 + 1)


def log_args(moto, group, **kwargs):
    args = aws_args(moto, log_group=group['name'], start_time=str(group['start']),
                    end_time=str(group['end']))
    args.update(kwargs)
    return args


def test_logs_two_signatures_with_counts_and_samples(moto, log_group):
    result = run_module('log_error_signatures_info', log_args(moto, log_group,
                                                              log_stream_prefix='api/'))
    assert_clean(result, samples_hold_tracebacks=True)
    assert not result.failed, result
    assert result['changed'] is False
    sigs = result['signatures']
    assert [(s['signature'], s['count']) for s in sigs] == [
        ('requests.exceptions.ConnectTimeout at /app/svpms/integrations/erp.py:push', 6),
        ('svpms.db.errors.OperationalError at /app/svpms/db/pool.py:acquire', 3)]
    erp = sigs[0]
    assert erp['exception_type'] == 'requests.exceptions.ConnectTimeout'
    assert erp['top_frame'] == '/app/svpms/integrations/erp.py:push'
    assert erp['sample'].startswith('ERROR [req-') and 'Traceback' in erp['sample']
    assert erp['sample'].endswith('/api/invoices/1035')  # the most recent occurrence
    assert erp['first_seen'] < erp['last_seen']
    assert erp['first_seen'].endswith('Z')
    # 6 + 3 errors + 2 ERROR-mentioning non-errors pass the filter; INFO 200 lines do not
    assert result['events_scanned'] == 11
    assert result['error_events'] == 9
    assert result['truncated'] is False
    assert set(result['window']) == {'start', 'end', 'duration_seconds'}


def test_logs_all_streams_and_sample_truncation(moto, log_group):
    result = run_module('log_error_signatures_info', log_args(moto, log_group, sample_chars=120))
    assert_clean(result, samples_hold_tracebacks=True)
    counts = dict((s['exception_type'], s['count']) for s in result['signatures'])
    assert counts == {'requests.exceptions.ConnectTimeout': 6, 'svpms.db.errors.OperationalError': 7}
    assert result['signatures'][0]['exception_type'] == 'svpms.db.errors.OperationalError'
    assert all(len(s['sample']) <= 120 for s in result['signatures'])


def test_logs_unsupported_pattern_still_classified_client_side(moto, log_group):
    # moto matches everything for ?A ?B patterns; INFO lines must still be dropped.
    result = run_module('log_error_signatures_info', log_args(
        moto, log_group, log_stream_prefix='api/', filter_pattern='?ERROR ?Traceback'))
    assert_clean(result, samples_hold_tracebacks=True)
    assert result['events_scanned'] == 17
    assert result['error_events'] == 9 and len(result['signatures']) == 2


def test_logs_caps_set_truncated(moto, log_group):
    result = run_module('log_error_signatures_info', log_args(moto, log_group, max_events=4))
    assert_clean(result, samples_hold_tracebacks=True)
    assert result['truncated'] is True
    assert result['events_scanned'] == 4
    assert sum(s['count'] for s in result['signatures']) == result['error_events'] <= 4


def test_logs_missing_group_fails_clearly(moto):
    result = run_module('log_error_signatures_info', aws_args(moto, log_group='/ecs/nope-%s'
                                                              % uuid.uuid4().hex[:6]))
    assert_clean(result)
    assert result.failed
    assert 'logs:FilterLogEvents' in result['msg']
    assert result['error_kind'] == 'not_found'


@pytest.mark.parametrize('override,parameter', [
    (dict(max_events=0), 'max_events'),
    (dict(max_pages=0), 'max_pages'),
    (dict(sample_chars=5), 'sample_chars'),
    (dict(end_time='not-a-time'), 'end_time'),
])
def test_logs_bad_input_names_the_parameter(moto, log_group, override, parameter):
    result = run_module('log_error_signatures_info', log_args(moto, log_group, **override))
    assert_clean(result)
    assert result.failed and parameter in result['msg']


# --------------------------------------------------------------------------- ssm_flag


@pytest.fixture
def flag(moto):
    ssm = boto(moto, 'ssm')
    name = '/svpms/test/flags/erp_integration_%s' % uuid.uuid4().hex[:8]
    ssm.put_parameter(Name=name, Value='enabled', Type='String')
    return ssm, name


def test_ssm_flag_check_apply_idempotent(moto, flag):
    ssm, name = flag
    args = aws_args(moto, name=name, value='disabled')

    check = run_module('ssm_flag', args, check=True)
    assert_clean(check)
    assert check['changed'] is True
    assert check['before'] == 'enabled' and check['after'] == 'disabled'
    assert check['version'] == 1
    assert check['diff']['before'] == 'enabled\n' and check['diff']['after'] == 'disabled\n'
    assert ssm.get_parameter(Name=name)['Parameter']['Value'] == 'enabled'  # untouched

    applied = run_module('ssm_flag', args)
    assert_clean(applied)
    assert applied['changed'] is True and applied['version'] == 2
    assert applied['name'] == name
    param = ssm.get_parameter(Name=name)['Parameter']
    assert param['Value'] == 'disabled' and param['Version'] == 2 and param['Type'] == 'String'

    again = run_module('ssm_flag', args)
    assert_clean(again)
    assert again['changed'] is False
    assert again['before'] == again['after'] == 'disabled'
    assert again['version'] == 2
    assert 'diff' not in again

    again_check = run_module('ssm_flag', args, check=True)
    assert again_check['changed'] is False


def test_ssm_flag_must_exist_refuses_typos(moto, flag):
    ssm, name = flag
    typo = name + 'x'
    result = run_module('ssm_flag', aws_args(moto, name=typo, value='disabled'))
    assert_clean(result)
    assert result.failed
    assert 'does not exist' in result['msg'] and 'must_exist' in result['msg']
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=typo)


def test_ssm_flag_creates_when_allowed(moto, flag):
    ssm, name = flag
    new = name + '_new'
    check = run_module('ssm_flag', aws_args(moto, name=new, value='disabled', must_exist=False),
                       check=True)
    assert check['changed'] is True and check['before'] is None and check['version'] is None
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=new)
    created = run_module('ssm_flag', aws_args(moto, name=new, value='disabled', must_exist=False))
    assert_clean(created)
    assert created['changed'] is True and created['version'] == 1
    assert ssm.get_parameter(Name=new)['Parameter']['Value'] == 'disabled'


def test_ssm_flag_refuses_secure_string(moto):
    ssm = boto(moto, 'ssm')
    name = '/svpms/test/secret_%s' % uuid.uuid4().hex[:8]
    ssm.put_parameter(Name=name, Value='do-not-print-me', Type='SecureString')
    result = run_module('ssm_flag', aws_args(moto, name=name, value='disabled'))
    assert_clean(result)
    assert result.failed and 'SecureString' in result['msg']
    assert 'do-not-print-me' not in result.stdout


def test_ssm_flag_empty_value_rejected(moto, flag):
    _ssm, name = flag
    result = run_module('ssm_flag', aws_args(moto, name=name, value=''))
    assert result.failed and 'value' in result['msg']


# --------------------------------------------------------------------------- unreachable AWS


@pytest.mark.parametrize('module,args', [
    ('service_metrics_info', dict(load_balancer='app/a/b', target_group='targetgroup/c/d',
                                  latency_source='average')),
    ('log_error_signatures_info', dict(log_group='/ecs/x')),
    ('ssm_flag', dict(name='/svpms/x', value='disabled')),
])
def test_unreachable_endpoint_fails_cleanly(module, args):
    endpoint = 'http://127.0.0.1:%d' % free_port()  # nothing listens there
    result = run_module(module, dict(AWS_TEST_CREDS, endpoint_url=endpoint, connect_timeout=1,
                                     **args))
    assert_clean(result)
    assert result.failed
    assert result['reachable'] is False
    assert result['error_kind'] == 'unreachable'
    assert 'could not reach' in result['msg'] and endpoint in result['msg']


# --------------------------------------------------------------------------- http_probe


class ProbeHandler(http.server.BaseHTTPRequestHandler):
    """Every 4th request answers 500, the rest 200, each after DELAY seconds."""

    DELAY = 0.05
    lock = threading.Lock()
    counter = 0
    auth_seen = []

    def do_GET(self):  # noqa: N802 - http.server API
        if self.path.startswith('/slow'):
            time.sleep(2.0)
            return self._answer(200)
        with ProbeHandler.lock:
            ProbeHandler.counter += 1
            n = ProbeHandler.counter
            ProbeHandler.auth_seen.append(self.headers.get('Authorization'))
        time.sleep(self.DELAY)
        self._answer(500 if n % 4 == 0 else 200)

    def do_HEAD(self):  # noqa: N802
        self.send_response(204)
        self.end_headers()

    def _answer(self, status):
        body = b'{"status": "ok"}' if status == 200 else b'{"status": "error"}'
        try:
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def probe_server():
    port = free_port()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), ProbeHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ProbeHandler.counter = 0
    ProbeHandler.auth_seen = []
    yield 'http://127.0.0.1:%d' % port
    server.shutdown()
    server.server_close()


def test_http_probe_exact_counts_and_plausible_latency(probe_server):
    secret = 'Bearer probe-secret-token-4f9a1c'
    result = run_module('http_probe', dict(url=probe_server + '/health?token=qs-secret-77',
                                           count=20, concurrency=4, timeout=5,
                                           headers={'Authorization': secret, 'X-Retry': '1'}))
    assert_clean(result)
    assert not result.failed, result
    assert result['changed'] is False
    assert result['requests'] == 20 and result['completed'] == 20
    assert result['errors'] == 5
    assert result['error_rate_pct'] == 25.0
    assert result['status_counts'] == {'200': 15, '500': 5}
    assert result['reachable'] is True
    assert result['sample_errors'] == ['HTTP 500 Internal Server Error (not in expected_status)']
    for key in ('latency_p50_ms', 'latency_p95_ms', 'latency_p99_ms'):
        assert 50.0 <= result[key] < 3000.0, (key, result[key])
    assert result['latency_p50_ms'] <= result['latency_p95_ms'] <= result['latency_p99_ms']
    # the header was sent, its value never echoed (not even in the invocation)
    assert ProbeHandler.auth_seen == [secret] * 20
    assert 'probe-secret-token' not in result.stdout + result.stderr
    assert result['header_names'] == ['Authorization', 'X-Retry']
    assert result['url'] == probe_server + '/health'
    assert 'qs-secret-77' not in str(result['url'])


def test_http_probe_expected_status_and_check_mode(probe_server):
    result = run_module('http_probe', dict(url=probe_server + '/', count=8, concurrency=8,
                                           expected_status=[200, 500]), check=True)
    assert_clean(result)
    assert result['changed'] is False  # probes run in check mode too
    assert result['errors'] == 0 and result['status_counts'] == {'200': 6, '500': 2}


def test_http_probe_head(probe_server):
    result = run_module('http_probe', dict(url=probe_server + '/', count=3, method='HEAD',
                                           expected_status=[204]))
    assert_clean(result)
    assert result['status_counts'] == {'204': 3} and result['errors'] == 0


def test_http_probe_timeouts_are_data(probe_server):
    result = run_module('http_probe', dict(url=probe_server + '/slow', count=2, concurrency=2,
                                           timeout=0.5))
    assert_clean(result)
    assert not result.failed
    assert result['status_counts'] == {'timeout': 2}
    assert result['reachable'] is False and result['error_rate_pct'] == 100.0
    assert result['latency_p95_ms'] is None
    assert result['sample_errors'][0].startswith('timeout')


def test_http_probe_closed_port_is_unreachable_not_failed():
    url = 'http://127.0.0.1:%d/health' % free_port()
    result = run_module('http_probe', dict(url=url, count=5, timeout=2))
    assert_clean(result)
    assert not result.failed
    assert result['reachable'] is False
    assert result['status_counts'] == {'connection_error': 5}
    assert result['errors'] == 5 and result['error_rate_pct'] == 100.0
    assert result['latency_p50_ms'] is None
    assert len(result['sample_errors']) == 1
    assert result['sample_errors'][0].startswith('connection error')


@pytest.mark.parametrize('args,parameter', [
    (dict(url='ftp://example.com/file'), 'url'),
    (dict(url='not a url'), 'url'),
    (dict(url='https://user:hunter2@example.com/'), 'url'),
    (dict(url='http://127.0.0.1/', count=0), 'count'),
    (dict(url='http://127.0.0.1/', count=1001), 'count'),
    (dict(url='http://127.0.0.1/', concurrency=33), 'concurrency'),
    (dict(url='http://127.0.0.1/', timeout=0), 'timeout'),
    (dict(url='http://127.0.0.1/', method='POST'), 'method'),
    (dict(url='http://127.0.0.1/', expected_status=[999]), 'expected_status'),
])
def test_http_probe_bad_input_names_the_parameter(args, parameter):
    result = run_module('http_probe', args)
    assert_clean(result)
    assert result.failed
    assert parameter in result['msg']
    assert 'hunter2' not in result.stdout
