"""The service twin: a tiny stand-in for the SVPMS API whose behaviour follows ECS.

It watches the sandbox ECS service's current task definition (in moto) and
behaves well or badly depending on that revision's SVPMS_TWIN_FAULT marker,
drives its own traffic, and publishes what an ALB / ECS / RDS / awslogs would:
CloudWatch metrics and log events, into the same moto_server.

Threads: HTTP server (ThreadingHTTPServer), watcher (1 s), traffic (~10 req/s),
metrics publisher (5 s), log publisher (5 s). Stdlib + boto3 only.
"""

import collections
import datetime
import json
import logging
import os
import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import aws
from . import constants as C
from .procs import http

log = logging.getLogger('svpms_sandbox.twin')

SIGNATURE_KEYERROR = 'keyerror'
SIGNATURE_DB = 'db_connect'
DB_SIGNATURE_SHARE = 0.12  # share of 500s that are the rarer database signature
ACCESS_LOG_SAMPLE = 0.2    # share of successful requests written as INFO access lines

Record = collections.namedtuple(
    'Record', 'ts method path status latency_ms request_id tenant signature')


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(ts):
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec='milliseconds')


def iso_z(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'


def p95(values):
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, int(0.95 * len(ordered) + 0.999999) - 1)  # nearest rank
    return round(ordered[min(rank, len(ordered) - 1)], 1)


class Twin:
    def __init__(self, moto_port, twin_port, rps=C.TRAFFIC_RPS):
        self.moto_port = moto_port
        self.twin_port = twin_port
        self.rps = rps
        self.base_url = 'http://%s:%d' % (C.HOST, twin_port)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.started_at = time.time()
        # behaviour, as last read from ECS
        self.task_definition = None       # 'svpms-api:3'
        self.task_definition_raw = None   # as stored by moto
        self.fault = None
        self.version = None
        self.behaviour_since = None
        self.moto_reachable = None
        self.last_poll_at = None
        self.last_poll_error = None
        self._td_cache = {}               # 'family:rev' -> (fault, version)
        # request bookkeeping
        self.records = collections.deque(maxlen=20000)
        self._metric_pending = []
        self._log_pending = []
        self._log_extra = []              # ready-made (ts, message) events, e.g. task started
        self.counters = collections.Counter()
        self.since_change = collections.Counter()
        self.published = {'metrics_at': None, 'metric_batches': 0, 'logs_at': None,
                          'log_events': 0, 'publish_errors': 0}
        self._ecs = aws.client('ecs', moto_port)
        self._cw = aws.client('cloudwatch', moto_port)
        self._logs = aws.client('logs', moto_port)
        self.server = None
        self.threads = []

    # ---------------------------------------------------------------- behaviour
    def behaviour(self):
        with self.lock:
            fault = self.fault
        if not fault:
            return C.GOOD_BEHAVIOUR
        return C.FAULTS.get(fault) or C.FAULTS['high_error_rate']

    def _describe_revision(self, name):
        if name in self._td_cache:
            return self._td_cache[name]
        td = self._ecs.describe_task_definition(taskDefinition=name)['taskDefinition']
        result = (aws.fault_of(td), aws.version_of(td), '%s:%d' % (td['family'], td['revision']))
        if aws.split_task_definition(name)[1] is not None:  # a bare family is not cacheable
            self._td_cache[name] = result
        return result

    def poll_once(self):
        try:
            svc = self._ecs.describe_services(cluster=C.CLUSTER, services=[C.SERVICE])['services']
            if not svc:
                raise RuntimeError('service %s not found in cluster %s' % (C.SERVICE, C.CLUSTER))
            raw = svc[0]['taskDefinition']
            fault, version, name = self._describe_revision(aws.normalise_task_definition(raw))
        except Exception as exc:  # moto down or odd: keep the last behaviour
            with self.lock:
                was = self.moto_reachable
                self.moto_reachable = False
                self.last_poll_error = '%s: %s' % (type(exc).__name__, exc)
                current = self.task_definition
            if was is not False:
                log.warning('cannot read the ECS service from moto (%s); keeping behaviour of %s',
                            self.last_poll_error, current)
            return
        now = time.time()
        changed = False
        with self.lock:
            if self.moto_reachable is False:
                log.info('moto reachable again')
            self.moto_reachable = True
            self.last_poll_at = now
            self.last_poll_error = None
            self.task_definition_raw = raw
            if name != self.task_definition:
                old = self.task_definition
                self.task_definition, self.fault, self.version = name, fault, version
                self.behaviour_since = now
                self.since_change = collections.Counter()
                changed = True
        if changed:
            if fault and fault not in C.FAULTS:
                log.warning('unknown fault marker %r on %s: behaving as high_error_rate', fault, name)
            log.info('service now on %s (version %s, fault=%s, was %s): behaviour %s',
                     name, version, fault, old, 'BAD' if fault else 'good')
            self._queue_lifecycle_log(now, name, version, old)

    def _watch(self):
        while not self.stop_event.is_set():
            self.poll_once()
            self.stop_event.wait(C.POLL_INTERVAL)

    # ----------------------------------------------------------------- requests
    def record(self, rec):
        with self.lock:
            self.records.append(rec)
            self._metric_pending.append(rec)
            self._log_pending.append(rec)
            self.counters['requests'] += 1
            self.counters['status_%d' % rec.status] += 1
            self.since_change['requests'] += 1
            if rec.status >= 500:
                self.counters['errors_5xx'] += 1
                self.since_change['errors_5xx'] += 1

    def window_stats(self, seconds):
        cutoff = time.time() - seconds
        with self.lock:
            recent = [r for r in self.records if r.ts >= cutoff]
        n = len(recent)
        errors = sum(1 for r in recent if r.status >= 500)
        lat = [r.latency_ms for r in recent]
        return {
            'seconds': seconds,
            'requests': n,
            'errors_5xx': errors,
            'error_rate': round(errors / n, 4) if n else 0.0,
            'p95_ms': p95(lat),
            'avg_ms': round(sum(lat) / n, 1) if n else None,
        }

    def state(self, window=C.STATUS_WINDOW):
        stats = self.window_stats(window)
        with self.lock:
            sc = dict(self.since_change)
            by_status = {k[7:]: v for k, v in self.counters.items() if k.startswith('status_')}
            return {
                'task_definition': self.task_definition,
                'task_definition_raw': self.task_definition_raw,
                'version': self.version,
                'fault': self.fault,
                'behaviour': 'bad' if self.fault else 'good',
                'behaviour_since': iso(self.behaviour_since),
                'moto_reachable': self.moto_reachable,
                'last_poll_at': iso(self.last_poll_at),
                'last_poll_error': self.last_poll_error,
                'counters': {'requests': self.counters['requests'],
                             'errors_5xx': self.counters['errors_5xx'],
                             'by_status': by_status},
                'since_change': {'requests': sc.get('requests', 0),
                                 'errors_5xx': sc.get('errors_5xx', 0),
                                 'error_rate': round(sc.get('errors_5xx', 0) / sc['requests'], 4)
                                 if sc.get('requests') else 0.0},
                'window': stats,
                'published': dict(self.published),
                'pid': os.getpid(),
                'started_at': iso(self.started_at),
                'traffic_rps': self.rps,
            }

    # ------------------------------------------------------------------ traffic
    def _traffic(self):
        url = self.base_url + '/api/v1/items'
        interval = 1.0 / self.rps
        inflight = threading.Semaphore(8)

        def one():
            try:
                http('GET', url, timeout=2.0)
            except Exception as exc:  # server busy / stopping: the next tick tries again
                log.debug('traffic request failed: %s', exc)
            finally:
                inflight.release()

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix='traffic') as pool:
            next_t = time.monotonic()
            while not self.stop_event.is_set():
                if inflight.acquire(blocking=False):
                    pool.submit(one)
                next_t += interval
                delay = next_t - time.monotonic()
                if delay < -1.0:  # fell behind (e.g. suspended): do not burst
                    next_t = time.monotonic()
                    delay = 0
                if delay > 0:
                    self.stop_event.wait(delay)

    # ------------------------------------------------------------------ metrics
    def _take(self, attr):
        with self.lock:
            batch = getattr(self, attr)
            setattr(self, attr, [])
        return batch

    def publish_metrics(self):
        batch = self._take('_metric_pending')
        beh = self.behaviour()
        now = utcnow()
        n = len(batch)
        errors = sum(1 for r in batch if r.status >= 500)
        alb_dims = [{'Name': 'LoadBalancer', 'Value': C.ALB_LOAD_BALANCER},
                    {'Name': 'TargetGroup', 'Value': C.ALB_TARGET_GROUP}]

        def datum(name, unit, stamp, **kw):
            d = {'MetricName': name, 'Dimensions': alb_dims, 'Timestamp': stamp,
                 'Unit': unit, 'StorageResolution': 1}
            d.update(kw)
            return d

        # One datapoint per second, stamped with the second its requests were
        # served in (as ALB stamps a datapoint with the start of its period):
        # a query "since T" then sees only requests served since T, whatever
        # the publishing lag.
        by_second = collections.defaultdict(list)
        for r in batch:
            by_second[int(r.ts)].append(r)
        if not by_second:
            by_second[int(now.timestamp())] = []
        alb = []
        for second in sorted(by_second):
            recs = by_second[second]
            stamp = datetime.datetime.fromtimestamp(second, datetime.timezone.utc)
            alb += [datum('RequestCount', 'Count', stamp, Value=float(len(recs))),
                    datum('HTTPCode_Target_5XX_Count', 'Count', stamp,
                          Value=float(sum(1 for r in recs if r.status >= 500))),
                    datum('HTTPCode_Target_2XX_Count', 'Count', stamp,
                          Value=float(sum(1 for r in recs if 200 <= r.status < 300)))]
            if recs:
                # seconds, as Values/Counts (latency rounded to 1 ms); <=150 values per datum
                hist = collections.Counter(round(r.latency_ms / 1000.0, 3) for r in recs)
                items = sorted(hist.items())
                for i in range(0, len(items), 150):
                    chunk = items[i:i + 150]
                    alb.append(datum('TargetResponseTime', 'Seconds', stamp,
                                     Values=[v for v, c in chunk], Counts=[float(c) for v, c in chunk]))
        ecs_dims = [{'Name': 'ClusterName', 'Value': C.CLUSTER},
                    {'Name': 'ServiceName', 'Value': C.SERVICE}]
        ecs = [{'MetricName': 'CPUUtilization', 'Dimensions': ecs_dims, 'Timestamp': now,
                'Unit': 'Percent', 'StorageResolution': 1,
                'Value': round(random.uniform(*beh['cpu']), 2)},
               {'MetricName': 'MemoryUtilization', 'Dimensions': ecs_dims, 'Timestamp': now,
                'Unit': 'Percent', 'StorageResolution': 1,
                'Value': round(random.uniform(*beh['memory']), 2)}]
        rds = [{'MetricName': 'DatabaseConnections',
                'Dimensions': [{'Name': 'DBInstanceIdentifier', 'Value': C.RDS_INSTANCE}],
                'Timestamp': now, 'Unit': 'Count', 'StorageResolution': 1,
                'Value': float(random.randint(20, 40))}]
        for namespace, data in (('AWS/ApplicationELB', alb), ('AWS/ECS', ecs), ('AWS/RDS', rds)):
            self._cw.put_metric_data(Namespace=namespace, MetricData=data)
        with self.lock:
            self.published['metrics_at'] = now.isoformat(timespec='milliseconds')
            self.published['metric_batches'] += 1
            self.published['last_interval'] = {'requests': n, 'errors_5xx': errors}

    # --------------------------------------------------------------------- logs
    def _queue_lifecycle_log(self, ts, name, version, old):
        msg = ('%s INFO svpms.lifecycle task started task_definition=%s version=%s previous=%s '
               'task_id=%s' % (iso_z(ts), name, version, old, uuid.uuid4().hex))
        with self.lock:
            self._log_extra.append((ts, msg))

    @staticmethod
    def event_message(rec):
        """The awslogs message for a request record, or None when it is not logged."""
        stamp = iso_z(rec.ts)
        head = '%s %%s %%s request_id=%s tenant=%s method=%s path=%s status=%d duration_ms=%d' % (
            stamp, rec.request_id, rec.tenant, rec.method, rec.path, rec.status, rec.latency_ms)
        if rec.status >= 500 and rec.signature == SIGNATURE_KEYERROR:
            return (head % ('ERROR', 'svpms.api') + ' Unhandled exception in list_items\n'
                    'Traceback (most recent call last):\n'
                    '  File "/app/svpms/api/middleware.py", line 88, in dispatch\n'
                    '    response = await call_next(request)\n'
                    '  File "/app/svpms/api/items.py", line 42, in list_items\n'
                    '    tenant = request.state.tenant["id"]\n'
                    "KeyError: 'id'")
        if rec.status >= 500 and rec.signature == SIGNATURE_DB:
            return (head % ('ERROR', 'svpms.db') + ' Database connection failed\n'
                    'Traceback (most recent call last):\n'
                    '  File "/app/svpms/api/items.py", line 57, in list_items\n'
                    '    rows = await repo.list_items(tenant_id, limit=50)\n'
                    '  File "/app/svpms/db/pool.py", line 131, in acquire\n'
                    '    conn = psycopg2.connect(self.dsn, connect_timeout=3)\n'
                    'psycopg2.OperationalError: could not connect to server: Connection timed out\n'
                    '\tIs the server running on host "%s.c1a2b3c4d5e6.%s.rds.amazonaws.com" (10.42.%d.%d) '
                    'and accepting\n\tTCP/IP connections on port 5432?'
                    % (C.RDS_INSTANCE, C.REGION, random.randint(2, 9), random.randint(10, 250)))
        if rec.status >= 500:  # /health 503
            return head % ('WARNING', 'svpms.health') + ' health check degraded checks=db:ok,tenant_cache:error'
        if rec.status < 400 and random.random() < ACCESS_LOG_SAMPLE:
            return head % ('INFO', 'svpms.access')
        return None

    def publish_logs(self):
        batch = self._take('_log_pending')
        events = [{'timestamp': int(ts * 1000), 'message': msg} for ts, msg in self._take('_log_extra')]
        for rec in batch:
            msg = self.event_message(rec)
            if msg:
                events.append({'timestamp': int(rec.ts * 1000), 'message': msg})
        if not events:
            return
        events.sort(key=lambda e: e['timestamp'])  # PutLogEvents: chronological within a batch
        for i in range(0, len(events), 5000):
            chunk = events[i:i + 5000]
            try:
                self._logs.put_log_events(logGroupName=C.LOG_GROUP, logStreamName=C.LOG_STREAM,
                                          logEvents=chunk)
            except self._logs.exceptions.ResourceNotFoundException:
                self._logs.create_log_stream(logGroupName=C.LOG_GROUP, logStreamName=C.LOG_STREAM)
                self._logs.put_log_events(logGroupName=C.LOG_GROUP, logStreamName=C.LOG_STREAM,
                                          logEvents=chunk)
        with self.lock:
            self.published['logs_at'] = utcnow().isoformat(timespec='milliseconds')
            self.published['log_events'] += len(events)

    def _publisher(self, fn, what):
        failing = False
        while not self.stop_event.wait(C.PUBLISH_INTERVAL):
            try:
                fn()
                if failing:
                    log.info('%s publishing works again', what)
                failing = False
            except Exception as exc:  # moto down: drop this interval, keep going
                with self.lock:
                    self.published['publish_errors'] += 1
                if not failing:
                    log.warning('%s publishing failed (dropping this interval): %s: %s',
                                what, type(exc).__name__, exc)
                failing = True

    # ------------------------------------------------------------------- server
    def _make_handler(self):
        twin = self

        class Handler(BaseHTTPRequestHandler):
            server_version = 'svpms-api-twin/1.0'

            def log_message(self, fmt, *args):  # no per-request stderr noise
                pass

            def _send(self, status, body, request_id=None, td=None):
                data = json.dumps(body).encode('utf-8')
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                if request_id:
                    self.send_header('X-Request-Id', request_id)
                if td:
                    self.send_header('X-Svpms-Task-Definition', td)
                self.end_headers()
                if self.command != 'HEAD':
                    self.wfile.write(data)

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                started = time.monotonic()
                url = urlsplit(self.path)
                path = url.path.rstrip('/') or '/'
                if path == '/twin/state':
                    qs = parse_qs(url.query)
                    try:
                        window = min(max(float(qs.get('window', [C.STATUS_WINDOW])[0]), 1.0), 3600.0)
                    except ValueError:
                        window = C.STATUS_WINDOW
                    return self._send(200, twin.state(window))
                beh = twin.behaviour()
                with twin.lock:
                    td, version = twin.task_definition, twin.version
                request_id = uuid.uuid4().hex
                tenant = 'tnt_%04d' % random.randint(1000, 9999)
                signature = None
                if path == '/health':
                    time.sleep(random.uniform(0.001, 0.004))
                    if random.random() < beh['health_503_ratio']:
                        status, body = 503, {'status': 'degraded', 'task_definition': td,
                                             'version': version,
                                             'checks': {'db': 'ok', 'tenant_cache': 'error'}}
                    else:
                        status, body = 200, {'status': 'ok', 'task_definition': td, 'version': version}
                elif path == '/api/v1/items':
                    if random.random() < beh['items_500_ratio']:
                        signature = SIGNATURE_DB if random.random() < DB_SIGNATURE_SHARE else SIGNATURE_KEYERROR
                        time.sleep(random.uniform(0.005, 0.02) if signature == SIGNATURE_KEYERROR
                                   else random.uniform(0.2, 0.4))
                        status, body = 500, {'error': 'internal_server_error',
                                             'message': 'Internal Server Error',
                                             'request_id': request_id}
                    else:
                        lo, hi = beh['latency_ms']
                        time.sleep(random.uniform(lo, hi) / 1000.0)
                        status = 200
                        body = [{'id': 'itm_%06d' % random.randint(1, 999999),
                                 'sku': 'SKU-%05d' % random.randint(1, 99999),
                                 'name': random.choice(('pallet', 'crate', 'tote', 'drum', 'bin')),
                                 'quantity': random.randint(0, 500),
                                 'tenant_id': tenant} for i in range(3)]
                else:
                    return self._send(404, {'error': 'not_found', 'path': path})
                latency_ms = (time.monotonic() - started) * 1000.0
                twin.record(Record(time.time(), self.command, path, status, latency_ms,
                                   request_id, tenant, signature))
                self._send(status, body, request_id, td)

        self._handler = Handler

    def bind(self):
        self._make_handler()
        self.server = ThreadingHTTPServer((C.HOST, self.twin_port), self._handler)
        self.server.daemon_threads = True

    def serve(self):
        if self.server is None:
            self.bind()
        self.poll_once()  # know the behaviour before the first request
        for target, name in ((self._watch, 'watcher'),
                             (self._traffic, 'traffic'),
                             (lambda: self._publisher(self.publish_metrics, 'metrics'), 'metrics'),
                             (lambda: self._publisher(self.publish_logs, 'logs'), 'logs')):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self.threads.append(t)
        log.info('twin listening on %s (moto %s, traffic %.0f req/s)',
                 self.base_url, aws.endpoint_url(self.moto_port), self.rps)
        try:
            self.server.serve_forever(poll_interval=0.2)
        finally:
            self.stop_event.set()
            self.server.server_close()
            for t in self.threads:
                t.join(timeout=3)
            log.info('twin stopped')

    def shutdown(self):
        self.stop_event.set()
        if self.server is not None:
            threading.Thread(target=self.server.shutdown, daemon=True).start()


def run(moto_port, twin_port):
    """Foreground entry point for `python -m svpms_sandbox twin`."""
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(threadName)s %(message)s')
    logging.getLogger('botocore').setLevel(logging.WARNING)
    twin = Twin(moto_port, twin_port)
    try:
        twin.bind()
    except OSError as exc:
        log.error('cannot listen on %s:%d: %s', C.HOST, twin_port, exc)
        return 1

    def on_signal(signum, _frame):
        log.info('signal %d: stopping', signum)
        twin.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    twin.serve()
    return 0
