"""The service twin: a tiny stand-in for the SVPMS API whose behaviour follows ECS.

It watches the sandbox ECS service's current task definition (in moto) and
behaves well or badly depending on that revision's SVPMS_TWIN_FAULT marker,
drives its own traffic, and publishes what an ALB / ECS / RDS / awslogs would:
CloudWatch metrics and log events, into the same moto_server.

Each GET /api/v1/items does what the real API does on its hot path, against
the sandbox's real backends: rate-limit accounting in PostgreSQL (an UPDATE
of the tenant's tenant_quotas row, lock_timeout 2.5 s, failing open), then a
Redis cache lookup; a miss runs the real items query plus the cold render
path and fills the cache with the TTL from SSM.

Threads: HTTP server (ThreadingHTTPServer), watcher (1 s; SSM TTL every 2 s),
traffic (~10 req/s), metrics publisher (5 s), log publisher (5 s). Pools are
bounded (PostgreSQL APP_POOL_MAX connections, Redis 24) and every PostgreSQL,
Redis and HTTP call has a timeout.
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

import psycopg2
import psycopg2.errors
import psycopg2.pool
import redis

from . import aws
from . import constants as C
from .procs import http, pid_alive, read_pid

log = logging.getLogger('svpms_sandbox.twin')

SIGNATURE_KEYERROR = 'keyerror'
SIGNATURE_DB = 'db_connect'
DB_SIGNATURE_SHARE = 0.12  # share of 500s that are the rarer database signature
ACCESS_LOG_SAMPLE = 0.2    # share of successful requests written as INFO access lines

Record = collections.namedtuple(
    'Record', 'ts method path status latency_ms request_id tenant signature cache db',
    defaults=(None, None))  # cache: 'hit'|'miss'|None; db: 'ok'|'lock_timeout'|'statement_timeout'|'error'|'skipped'|None
DB_RETRY_INTERVAL = 5.0  # seconds between attempts to (re)open the PostgreSQL pool


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
    def __init__(self, moto_port, twin_port, rps=C.TRAFFIC_RPS, state_dir=None, redis_port=None, db_cfg=None):
        self.moto_port = moto_port
        self.twin_port = twin_port
        self.rps = rps
        self.state_dir = state_dir
        self.redis_port = redis_port
        self.db_cfg = db_cfg if db_cfg and db_cfg.get('enabled') else None
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
        self._ssm = aws.client('ssm', moto_port)
        self.desired_count = C.DESIRED_COUNT
        # cache (Redis) and its TTL (SSM parameter)
        self.cache_ttl = C.GOOD_CACHE_TTL
        self.ttl_error = None
        self.redis_reachable = None
        self.redis = None
        if redis_port:
            self.redis = redis.Redis(connection_pool=redis.BlockingConnectionPool(
                host=C.HOST, port=redis_port, max_connections=24, timeout=C.REDIS_TIMEOUT,
                socket_timeout=C.REDIS_TIMEOUT, socket_connect_timeout=C.REDIS_TIMEOUT))
        # database (PostgreSQL): a bounded pool of the API's role
        self.pool = None
        self.pool_slots = threading.BoundedSemaphore(C.APP_POOL_MAX)
        self.db_reachable = None
        self.db_error = None
        self._db_next_try = 0.0
        self._db_lock = threading.Lock()
        self.db_connections = None
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
            desired = svc[0].get('desiredCount')
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
            if desired:
                self.desired_count = desired
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

    def read_ttl(self):
        """Re-read the cache TTL parameter; on failure keep the last value."""
        try:
            value = self._ssm.get_parameter(Name=C.CACHE_TTL_PARAMETER)['Parameter']['Value']
            ttl = int(value)
            if ttl < 1:
                raise ValueError('TTL %r is below 1 second' % value)
        except Exception as exc:
            error = '%s: %s' % (type(exc).__name__, exc)
            with self.lock:
                was, self.ttl_error = self.ttl_error, error
            if was is None:
                log.warning('cannot read the cache TTL from SSM %s (%s); keeping %d s',
                            C.CACHE_TTL_PARAMETER, error, self.cache_ttl)
            return
        with self.lock:
            old, self.cache_ttl, self.ttl_error = self.cache_ttl, ttl, None
        if ttl != old:
            log.info('cache TTL now %d s (was %d s, from SSM %s)', ttl, old, C.CACHE_TTL_PARAMETER)

    def _watch(self):
        last_ttl_read = time.monotonic()
        while not self.stop_event.is_set():
            self.poll_once()
            if time.monotonic() - last_ttl_read >= C.TTL_POLL_INTERVAL - 0.05:
                self.read_ttl()
                last_ttl_read = time.monotonic()
            if self.db_cfg and self.pool is None:
                self._db_pool()
            self.stop_event.wait(C.POLL_INTERVAL)

    # ----------------------------------------------------------------- database
    def _db_pool(self):
        """The PostgreSQL pool, opened (again) at most every DB_RETRY_INTERVAL s; None if unreachable."""
        if self.db_cfg is None:
            return None
        if self.pool is not None or time.monotonic() < self._db_next_try:
            return self.pool
        if not self._db_lock.acquire(blocking=False):  # another thread is trying right now
            return self.pool
        try:
            if self.pool is not None:
                return self.pool
            self._db_next_try = time.monotonic() + DB_RETRY_INTERVAL
            cfg = self.db_cfg
            try:
                self.pool = psycopg2.pool.ThreadedConnectionPool(
                    C.APP_POOL_MIN, C.APP_POOL_MAX, host=cfg['host'], port=cfg['port'], dbname=cfg['database'],
                    user=cfg['app_user'], connect_timeout=C.PG_CONNECT_TIMEOUT, application_name=C.APP_NAME,
                    options='-c lock_timeout=%s -c statement_timeout=%s' % (C.APP_LOCK_TIMEOUT,
                                                                            C.APP_STATEMENT_TIMEOUT))
            except psycopg2.Error as exc:
                error = ' '.join(str(exc).split())
                if self.db_reachable is not False:
                    log.warning('cannot open the database pool (%s@%s:%s/%s): %s; serving without the database',
                                cfg['app_user'], cfg['host'], cfg['port'], cfg['database'], error)
                self.db_reachable, self.db_error = False, error
                return None
            if self.db_reachable is False:
                log.info('database reachable again')
            self.db_reachable, self.db_error = True, None
            return self.pool
        finally:
            self._db_lock.release()

    def _db_run(self, fn):
        """Run fn(conn) on a pooled connection, in a transaction. -> (result, outcome).

        outcome: 'ok', 'lock_timeout', 'error' or 'skipped' (no database, or no
        pooled connection within POOL_ACQUIRE_TIMEOUT). Never raises.
        """
        pool = self._db_pool()
        if pool is None:
            return None, 'skipped'
        if not self.pool_slots.acquire(timeout=C.POOL_ACQUIRE_TIMEOUT):
            return None, 'skipped'
        conn, broken = None, False
        try:
            conn = pool.getconn()
            try:
                result = fn(conn)
                conn.commit()
                self.db_reachable, self.db_error = True, None
                return result, 'ok'
            except psycopg2.errors.LockNotAvailable:
                conn.rollback()
                return None, 'lock_timeout'
            except psycopg2.errors.QueryCanceled:  # statement_timeout (e.g. a tuple-lock wait then the row wait)
                conn.rollback()
                return None, 'statement_timeout'
            except psycopg2.Error as exc:
                broken = conn.closed or isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
                if not conn.closed:
                    try:
                        conn.rollback()
                    except psycopg2.Error:
                        broken = True
                self.db_error = ' '.join(str(exc).split())[:300]
                return None, 'error'
        except psycopg2.Error as exc:  # getconn could not connect
            self.db_reachable, self.db_error = False, ' '.join(str(exc).split())[:300]
            return None, 'error'
        finally:
            if conn is not None:
                try:
                    pool.putconn(conn, close=broken)
                except Exception:
                    pass
            self.pool_slots.release()

    def account(self, tenant):
        """Rate-limit accounting for one request; fails open. -> outcome of _db_run."""
        def update(conn):
            with conn.cursor() as cur:
                cur.execute('UPDATE tenant_quotas SET requests_today = requests_today + 1 WHERE tenant_id = %s',
                            (tenant,))
        return self._db_run(update)[1]

    def items_from_db(self, tenant):
        def select_items(conn):
            with conn.cursor() as cur:
                cur.execute('SELECT id, sku, name, quantity FROM items WHERE tenant_id = %s LIMIT 3', (tenant,))
                return [{'id': 'itm_%06d' % r[0], 'sku': r[1], 'name': r[2], 'quantity': r[3], 'tenant_id': tenant}
                        for r in cur.fetchall()]
        return self._db_run(select_items)[0]

    def count_db_connections(self):
        """Backends in the sandbox database (what RDS DatabaseConnections counts), or None."""
        def count(conn):
            with conn.cursor() as cur:
                cur.execute('SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()')
                return cur.fetchone()[0]
        return self._db_run(count)[0]

    # -------------------------------------------------------------------- cache
    @staticmethod
    def generated_items(tenant):
        return [{'id': 'itm_%06d' % random.randint(1, 999999), 'sku': 'SKU-%05d' % random.randint(1, 99999),
                 'name': random.choice(('pallet', 'crate', 'tote', 'drum', 'bin')),
                 'quantity': random.randint(0, 500), 'tenant_id': tenant} for _i in range(3)]

    def cache_get(self, tenant):
        if self.redis is None:
            return None
        try:
            raw = self.redis.get(C.CACHE_KEY_PREFIX + tenant)
            self.redis_reachable = True
        except redis.RedisError as exc:
            if self.redis_reachable is not False:
                log.warning('Redis on port %s unreachable (%s): every request is a cache miss', self.redis_port, exc)
            self.redis_reachable = False
            return None
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def cache_set(self, tenant, rows, ttl=None):
        if self.redis is None:
            return False
        try:
            self.redis.set(C.CACHE_KEY_PREFIX + tenant, json.dumps(rows), ex=int(ttl or self.cache_ttl))
            self.redis_reachable = True
            return True
        except redis.RedisError:
            self.redis_reachable = False
            return False

    def prewarm(self):
        """Fill the cache for every tenant, expiries spread over the TTL (no synchronized expiry wave)."""
        warmed = 0
        for tenant in C.TENANTS:
            rows = self.items_from_db(tenant) or self.generated_items(tenant)
            ttl = max(1, random.randint(self.cache_ttl // 2, self.cache_ttl)) if self.cache_ttl > 1 else 1
            if not self.cache_set(tenant, rows, ttl):
                break
            warmed += 1
        log.info('cache pre-warmed: %d/%d tenants (TTL %d s, database %s)', warmed, len(C.TENANTS),
                 self.cache_ttl, 'used' if self.pool is not None else 'not used')
        return warmed

    def lock_holder(self):
        if not self.state_dir:
            return {'pid': None, 'running': False}
        pid = read_pid(os.path.join(self.state_dir, C.LOCK_HOLDER_FILE + '.pid'))
        return {'pid': pid, 'running': pid_alive(pid, 'svpms_sandbox')}

    def hit_latency_ms(self, beh):
        lo, hi = beh['latency_ms']
        ms = random.uniform(lo, hi)
        if beh.get('cpu_bound'):
            with self.lock:
                desired = self.desired_count or C.DESIRED_COUNT
            ms *= (float(C.DESIRED_COUNT) / desired) ** 2
        return ms

    # ----------------------------------------------------------------- requests
    def record(self, rec):
        with self.lock:
            self.records.append(rec)
            self._metric_pending.append(rec)
            self._log_pending.append(rec)
            self.counters['requests'] += 1
            self.counters['status_%d' % rec.status] += 1
            self.since_change['requests'] += 1
            if rec.cache:
                self.counters['cache_%s' % rec.cache] += 1
            if rec.db == 'lock_timeout':
                self.counters['lock_timeouts'] += 1
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
        hits = sum(1 for r in recent if r.cache == 'hit')
        misses = sum(1 for r in recent if r.cache == 'miss')
        return {
            'seconds': seconds,
            'requests': n,
            'errors_5xx': errors,
            'error_rate': round(errors / n, 4) if n else 0.0,
            'p95_ms': p95(lat),
            'avg_ms': round(sum(lat) / n, 1) if n else None,
            'cache_hits': hits,
            'cache_misses': misses,
            'lock_timeouts': sum(1 for r in recent if r.db == 'lock_timeout'),
        }

    def state(self, window=C.STATUS_WINDOW):
        stats = self.window_stats(window)
        holder = self.lock_holder()
        hits, misses = stats['cache_hits'], stats['cache_misses']
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
                'desired_count': self.desired_count,
                'cache': {
                    'ttl_seconds': self.cache_ttl,
                    'ttl_parameter': C.CACHE_TTL_PARAMETER,
                    'ttl_read_error': self.ttl_error,
                    'window_seconds': stats['seconds'],
                    'hits': stats['cache_hits'],
                    'misses': stats['cache_misses'],
                    'hit_rate_pct': round(100.0 * hits / (hits + misses), 1) if hits + misses else None,
                    'redis_reachable': self.redis_reachable if self.redis is not None else False,
                    'redis_port': self.redis_port,
                    'totals': {'hits': self.counters['cache_hit'], 'misses': self.counters['cache_miss']},
                },
                'db': {
                    'enabled': self.db_cfg is not None,
                    'reachable': self.db_reachable if self.db_cfg is not None else False,
                    'database': self.db_cfg['database'] if self.db_cfg else None,
                    'error': self.db_error,
                    'lock_timeouts': {'window': stats['lock_timeouts'], 'total': self.counters['lock_timeouts']},
                    'connections': self.db_connections,
                },
                'lock_holder': holder,
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
                # longer than the lock wait plus the cold path: the semaphore then
                # bounds the requests in flight in the server as well
                http('GET', url, timeout=5.0)
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
        cpu = random.uniform(*beh['cpu'])
        if beh.get('cpu_bound'):
            with self.lock:
                desired = self.desired_count or C.DESIRED_COUNT
            cpu = min(C.CPU_CAP, cpu * float(C.DESIRED_COUNT) / desired)
        ecs = [{'MetricName': 'CPUUtilization', 'Dimensions': ecs_dims, 'Timestamp': now,
                'Unit': 'Percent', 'StorageResolution': 1,
                'Value': round(cpu, 2)},
               {'MetricName': 'MemoryUtilization', 'Dimensions': ecs_dims, 'Timestamp': now,
                'Unit': 'Percent', 'StorageResolution': 1,
                'Value': round(random.uniform(*beh['memory']), 2)}]
        if self.db_cfg is not None:  # the real number of backends in the sandbox database
            connections = self.count_db_connections()
            self.db_connections = connections
        else:  # no database: the made-up range of a quiet RDS instance
            connections = random.randint(20, 40)
        rds = [{'MetricName': 'DatabaseConnections',
                'Dimensions': [{'Name': 'DBInstanceIdentifier', 'Value': C.RDS_INSTANCE}],
                'Timestamp': now, 'Unit': 'Count', 'StorageResolution': 1,
                'Value': float(connections)}] if connections is not None else []
        for namespace, data in (('AWS/ApplicationELB', alb), ('AWS/ECS', ecs), ('AWS/RDS', rds)):
            if data:
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

    @staticmethod
    def db_event_message(rec):
        """The WARNING line of a request whose rate-limit accounting failed open, or None."""
        if rec.db == 'lock_timeout':
            return ('%s WARNING svpms.db rate-limit accounting skipped: lock timeout on tenant_quotas '
                    '(lock_timeout=%s, failing open) request_id=%s tenant=%s path=%s duration_ms=%d'
                    % (iso_z(rec.ts), C.APP_LOCK_TIMEOUT, rec.request_id, rec.tenant, rec.path, rec.latency_ms))
        if rec.db == 'statement_timeout':
            return ('%s WARNING svpms.db rate-limit accounting skipped: statement timeout on tenant_quotas '
                    '(statement_timeout=%s, failing open) request_id=%s tenant=%s path=%s duration_ms=%d'
                    % (iso_z(rec.ts), C.APP_STATEMENT_TIMEOUT, rec.request_id, rec.tenant, rec.path, rec.latency_ms))
        return None

    def publish_logs(self):
        batch = self._take('_log_pending')
        events = [{'timestamp': int(ts * 1000), 'message': msg} for ts, msg in self._take('_log_extra')]
        for rec in batch:
            msg = self.event_message(rec)
            if msg:
                events.append({'timestamp': int(rec.ts * 1000), 'message': msg})
            msg = self.db_event_message(rec)
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
                tenant = random.choice(C.TENANTS)
                signature = cache = db_outcome = None
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
                        # rate-limit accounting: waits up to lock_timeout, then fails open
                        db_outcome = twin.account(tenant)
                        body = twin.cache_get(tenant)
                        if body is not None:
                            cache = 'hit'
                            time.sleep(twin.hit_latency_ms(beh) / 1000.0)
                        else:
                            cache = 'miss'
                            body = twin.items_from_db(tenant) or twin.generated_items(tenant)
                            time.sleep(random.uniform(*C.MISS_PENALTY_MS) / 1000.0)  # the cold render path
                            twin.cache_set(tenant, body)
                        status = 200
                else:
                    return self._send(404, {'error': 'not_found', 'path': path})
                latency_ms = (time.monotonic() - started) * 1000.0
                twin.record(Record(time.time(), self.command, path, status, latency_ms,
                                   request_id, tenant, signature, cache, db_outcome))
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
        self.read_ttl()
        self._db_pool()
        self.prewarm()  # a fresh sandbox is healthy from the first request
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
            if self.pool is not None:
                try:
                    self.pool.closeall()
                except Exception:
                    pass
            log.info('twin stopped')

    def shutdown(self):
        self.stop_event.set()
        if self.server is not None:
            threading.Thread(target=self.server.shutdown, daemon=True).start()


def run(moto_port, twin_port, state_dir=None, redis_port=None, db_cfg=None):
    """Foreground entry point for `python -m svpms_sandbox twin`."""
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(threadName)s %(message)s')
    logging.getLogger('botocore').setLevel(logging.WARNING)
    twin = Twin(moto_port, twin_port, state_dir=state_dir, redis_port=redis_port, db_cfg=db_cfg)
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
