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

Authentication (scenario 3): POST /api/v1/auth/login looks the user up in
public.users (the API role's pool), checks the pbkdf2 hash, stores a session
in Redis (svpms:session:<uuid>) and returns an RS256 JWT signed with the key a
task loads from the Secrets Manager secret's AWSCURRENT when it starts (twin
start, a new PRIMARY deployment id, a new task definition). GET /api/v1/auth/me
and POST /api/v1/auth/logout verify the bearer token with the keys staged
AWSCURRENT and AWSPREVIOUS (re-read every ~2 s) and need the Redis session.
GET /.well-known/jwks.json publishes what the deployment loaded. Under /idp
the twin also plays the external SAML IdP (metadata + a login page), and
GET /api/v1/auth/saml/login is the SP side: a redirect to the IdP while the IdP
signing certificate (re-read from the state dir every ~2 s) is valid, else 502.
Every auth failure is logged (awslogs format, logger svpms.auth) and counted
under "auth" in /twin/state.

Payments (scenario 4, payments.py): POST /webhooks/stripe verifies Stripe-Signature
with the webhook secret a task loads from Secrets Manager at deployment start
(idempotent per event id), and a payments thread creates and confirms a
PaymentIntent at the Stripe stand-in every ~2 s with the API key loaded the
same way; counted under "payments" in /twin/state, failures logged (svpms.payments).

Threads: HTTP server (ThreadingHTTPServer), watcher (1 s; SSM TTL, verification
keys and the IdP certificate every 2 s), traffic (~10 req/s), payments (2 s),
metrics publisher (5 s), log publisher (5 s). Pools are bounded (PostgreSQL
APP_POOL_MAX connections, Redis 24) and every PostgreSQL, Redis and HTTP call
has a timeout.
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

from . import auth
from . import aws
from . import constants as C
from . import payments as payments_mod
from .procs import http, pid_alive, read_pid

log = logging.getLogger('svpms_sandbox.twin')

SIGNATURE_KEYERROR = 'keyerror'
SIGNATURE_DB = 'db_connect'
SIGNATURE_AUTH = 'auth'    # auth endpoint requests: logged by auth_outcome, not as access lines
DB_SIGNATURE_SHARE = 0.12  # share of 500s that are the rarer database signature
ACCESS_LOG_SAMPLE = 0.2    # share of successful requests written as INFO access lines

# The answer of an auth endpoint: body is a dict (JSON), bytes (raw) or None (no body).
AuthResult = collections.namedtuple('AuthResult', 'status body error message headers content_type',
                                    defaults=(None, None, None, None))
AuthRequest = collections.namedtuple('AuthRequest', 'method path headers body query request_id')
API_AUTH_ENDPOINTS = ('login', 'me', 'logout', 'saml_login')  # the API's own endpoints (recorded, logged)

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
    def __init__(self, moto_port, twin_port, rps=C.TRAFFIC_RPS, state_dir=None, redis_port=None, db_cfg=None,
                 stripe_port=None):
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
        # authentication: signing key (loaded per deployment), verification keys (refreshed),
        # the IdP certificate as the SP side last read it, outcome counters
        self._sm = aws.client('secretsmanager', moto_port)
        self._key_cache = {}              # secret version id -> auth.JWTKey, or a str naming its problem
        self.signing_key = None           # from AWSCURRENT when the deployment started
        self.signing_error = None
        self.deployment_keys = []         # AWSCURRENT + AWSPREVIOUS when the deployment started: the JWKS
        self.keys_loaded_for = None       # (PRIMARY deployment id, task definition)
        self.keys_loaded_at = None
        self.primary_deployment_id = None  # as last read from ECS
        self.verification_keys = {}       # kid -> auth.JWTKey (AWSCURRENT + AWSPREVIOUS, re-read every 2 s)
        self.verification_stages = {}     # stage -> kid
        self.verification_error = None
        self.verification_read_at = None
        self.idp_cert = None              # auth.cert_summary of the IdP certificate file, or None
        self.idp_cert_error = None
        self.idp_cert_read_at = None
        self.auth_counters = collections.defaultdict(collections.Counter)
        self.routes = {
            ('POST', C.LOGIN_PATH): ('login', self.auth_login),
            ('GET', C.LOGIN_CHECK_PATH): ('me', self.auth_me),
            ('POST', C.LOGOUT_PATH): ('logout', self.auth_logout),
            ('GET', C.SSO_START_PATH): ('saml_login', self.auth_saml_login),
            ('GET', C.JWKS_PATH): ('jwks', self.auth_jwks),
            ('GET', C.IDP_METADATA_PATH): ('idp_metadata', self.idp_metadata),
            ('GET', C.IDP_SSO_PATH): ('idp_sso', self.idp_sso),
        }
        # payments (scenario 4): the Stripe webhook endpoint and the payments traffic
        self.payments = payments_mod.Payments(self, AuthResult, stripe_port)
        self.routes[('POST', C.STRIPE_WEBHOOK_PATH)] = ('stripe_webhook', self.payments.webhook)
        self.route_outcome = {'stripe_webhook': self.payments_outcome}  # others: auth_outcome
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
            primary = next((d.get('id') for d in svc[0].get('deployments') or [] if d.get('status') == 'PRIMARY'),
                           None)
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
            self.primary_deployment_id = primary
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
        # a new deployment (or revision) starts tasks that load the signing key afresh
        if (primary, name) != self.keys_loaded_for or self.signing_key is None:
            self.load_deployment_keys(primary, name)
        # ... and the Stripe webhook secret and API key
        self.payments.maybe_load(primary, name)

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
        periodic = [[self.read_ttl, C.TTL_POLL_INTERVAL, time.monotonic()],
                    [self.refresh_verification_keys, C.KEYS_POLL_INTERVAL, time.monotonic()],
                    [self.read_idp_cert, C.IDP_CERT_POLL_INTERVAL, time.monotonic()]]
        while not self.stop_event.is_set():
            self.poll_once()
            for entry in periodic:
                fn, interval, last = entry
                if time.monotonic() - last >= interval - 0.05:
                    try:
                        fn()
                    except Exception as exc:  # a bug must not stop the watcher
                        log.exception('%s failed: %s', fn.__name__, exc)
                    entry[2] = time.monotonic()
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

    def _db_run(self, fn, detail=None):
        """Run fn(conn) on a pooled connection, in a transaction. -> (result, outcome).

        outcome: 'ok', 'lock_timeout', 'statement_timeout', 'error' or 'skipped' (no
        database, or no pooled connection within POOL_ACQUIRE_TIMEOUT). Never raises.
        detail (a dict, optional) receives for a failure 'error' (text) and
        'unavailable' (True: the database could not be reached or timed out;
        False: it answered with an error, e.g. permission denied).
        """
        detail = {} if detail is None else detail
        pool = self._db_pool()
        if pool is None:
            detail.update(unavailable=True, error=self.db_error if self.db_cfg else 'no database configured')
            return None, 'skipped'
        if not self.pool_slots.acquire(timeout=C.POOL_ACQUIRE_TIMEOUT):
            detail.update(unavailable=True, error='no pooled connection within %.0f s' % C.POOL_ACQUIRE_TIMEOUT)
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
                detail.update(unavailable=True, error='lock timeout (%s)' % C.APP_LOCK_TIMEOUT)
                return None, 'lock_timeout'
            except psycopg2.errors.QueryCanceled:  # statement_timeout (e.g. a tuple-lock wait then the row wait)
                conn.rollback()
                detail.update(unavailable=True, error='statement timeout (%s)' % C.APP_STATEMENT_TIMEOUT)
                return None, 'statement_timeout'
            except psycopg2.Error as exc:
                broken = conn.closed or isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
                if not conn.closed:
                    try:
                        conn.rollback()
                    except psycopg2.Error:
                        broken = True
                self.db_error = ' '.join(str(exc).split())[:300]
                detail.update(unavailable=bool(broken), error=self.db_error)
                return None, 'error'
        except psycopg2.Error as exc:  # getconn could not connect
            self.db_reachable, self.db_error = False, ' '.join(str(exc).split())[:300]
            detail.update(unavailable=True, error=self.db_error)
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

    # ------------------------------------------------------------ signing keys
    def _secret_stages(self):
        """{stage: version id} of the signing-key secret (AWSCURRENT, AWSPREVIOUS). Raises on AWS errors."""
        desc = self._sm.describe_secret(SecretId=C.JWT_SECRET_ID)
        out = {}
        for version_id, stages in (desc.get('VersionIdsToStages') or {}).items():
            for stage in stages or []:
                if stage in ('AWSCURRENT', 'AWSPREVIOUS'):
                    out[stage] = version_id
        return out

    def _key_of(self, version_id):
        """The auth.JWTKey of a secret version, or a str naming why it is none (cached: versions are
        immutable). Raises on AWS errors."""
        cached = self._key_cache.get(version_id)
        if cached is not None:
            return cached
        resp = self._sm.get_secret_value(SecretId=C.JWT_SECRET_ID, VersionId=version_id)
        try:
            key = auth.load_key(resp.get('SecretString'), version_id)
        except auth.KeyLoadError as exc:
            key = 'version %s is not a usable key: %s' % (version_id, exc)
        if len(self._key_cache) > 200:
            self._key_cache.clear()
        self._key_cache[version_id] = key
        return key

    def load_deployment_keys(self, deployment_id, task_definition):
        """What a task of a new deployment does at start: load the signing key from AWSCURRENT (and
        publish AWSCURRENT + AWSPREVIOUS in the JWKS), and read its verification keys. When the
        secret cannot be read the old signing key stays (and the next poll tries again)."""
        try:
            stages = self._secret_stages()
            if 'AWSCURRENT' not in stages:
                raise RuntimeError('the secret has no AWSCURRENT version')
            current = self._key_of(stages['AWSCURRENT'])
            previous = self._key_of(stages['AWSPREVIOUS']) if 'AWSPREVIOUS' in stages else None
        except Exception as exc:
            error = 'cannot read the signing key from secret %s: %s: %s' % (
                C.JWT_SECRET_ID, type(exc).__name__, ' '.join(str(exc).split())[:300])
            with self.lock:
                was, self.signing_error = self.signing_error, error
                kid = self.signing_key.kid if self.signing_key else None
            if was != error:
                log.warning('%s; %s', error, 'keeping signing key %s' % kid if kid
                            else 'no signing key: logins answer 500 signing_key_unavailable')
            return
        if isinstance(current, str):
            signing, error = None, 'AWSCURRENT of secret %s: %s' % (C.JWT_SECRET_ID, current)
        elif not current.can_sign:
            signing, error = None, ('AWSCURRENT of secret %s (version %s) holds only a public key'
                                    % (C.JWT_SECRET_ID, current.version_id))
        else:
            signing, error = current, None
        published = []
        for key in (current, previous):
            if isinstance(key, auth.JWTKey) and key.kid not in [k.kid for k in published]:
                published.append(key)
        with self.lock:
            was_kid = self.signing_key.kid if self.signing_key else None
            was_error, self.signing_error = self.signing_error, error
            self.signing_key = signing
            self.deployment_keys = published
            self.keys_loaded_for = (deployment_id, task_definition)
            self.keys_loaded_at = time.time()
        if error:
            if error != was_error:
                log.error('deployment %s (%s): no signing key (%s): logins answer 500 signing_key_unavailable',
                          deployment_id, task_definition, error)
        else:
            log.info('deployment %s (%s): signing with kid %s (secret version %s, was kid %s); JWKS publishes %s',
                     deployment_id, task_definition, signing.kid, signing.version_id, was_kid,
                     ', '.join(k.kid for k in published))
        self.refresh_verification_keys(stages)

    def refresh_verification_keys(self, stages=None):
        """Re-read the verification keys (AWSCURRENT + AWSPREVIOUS); on a read failure keep the last ones."""
        try:
            stages = stages if stages is not None else self._secret_stages()
            keys, by_stage, problems = {}, {}, []
            for stage in ('AWSCURRENT', 'AWSPREVIOUS'):
                if stage not in stages:
                    continue
                key = self._key_of(stages[stage])
                if isinstance(key, str):
                    problems.append('%s %s' % (stage, key))
                    continue
                keys[key.kid] = key
                by_stage[stage] = key.kid
        except Exception as exc:
            error = 'cannot read the verification keys from secret %s: %s: %s' % (
                C.JWT_SECRET_ID, type(exc).__name__, ' '.join(str(exc).split())[:300])
            with self.lock:
                was, self.verification_error = self.verification_error, error
            if was != error:
                log.warning('%s; keeping kids %s', error, ', '.join(sorted(self.verification_keys)) or '(none)')
            return
        with self.lock:
            changed = by_stage != self.verification_stages
            self.verification_keys, self.verification_stages = keys, by_stage
            self.verification_error = '; '.join(problems) or None
            self.verification_read_at = time.time()
        if changed:
            log.info('verification keys now %s', ', '.join('%s=%s' % kv for kv in sorted(by_stage.items()))
                     or '(none)')

    def read_idp_cert(self):
        """The SP side re-reads the IdP signing certificate (as an SP refreshes IdP metadata)."""
        summary, error = None, None
        if not self.state_dir:
            error = 'no state dir: the IdP stand-in has no certificate'
        else:
            try:
                summary = auth.cert_summary(auth.read_idp_cert(self.state_dir))
            except (OSError, ValueError) as exc:
                error = 'cannot read the IdP certificate %s: %s: %s' % (
                    os.path.join(self.state_dir, C.IDP_CERT_FILE), type(exc).__name__, exc)
        with self.lock:
            before = (self.idp_cert or {}).get('sha256_fingerprint'), self.idp_cert_error
            self.idp_cert, self.idp_cert_error, self.idp_cert_read_at = summary, error, time.time()
        if before != ((summary or {}).get('sha256_fingerprint'), error):
            if error:
                log.warning('%s', error)
            else:
                log.log(logging.INFO if summary['valid_now'] else logging.WARNING,
                        'IdP signing certificate %s: not before %s, not after %s (%s now)',
                        summary['sha256_fingerprint'][:23], summary['not_before'], summary['not_after'],
                        'valid' if summary['valid_now'] else 'NOT valid')

    # ------------------------------------------------------------- auth requests
    def _fail(self, status, error, message, **headers):
        return AuthResult(status, {'error': error, 'message': message}, error, message, headers or None)

    def lookup_user(self, email):
        """-> (user dict or None, failure AuthResult or None)."""
        def select_user(conn):
            with conn.cursor() as cur:
                cur.execute('SELECT id, email, password_hash, active FROM public.users WHERE email = %s', (email,))
                return cur.fetchone()
        detail = {}
        row, outcome = self._db_run(select_user, detail)
        if outcome == 'ok':
            return (dict(zip(('id', 'email', 'password_hash', 'active'), row)) if row else None), None
        if outcome == 'error' and not detail.get('unavailable'):
            return None, self._fail(500, 'user_lookup_failed', 'looking the user up in %s failed: %s'
                                    % (C.USERS_TABLE, detail.get('error')))
        return None, self._fail(503, 'user_store_unavailable', 'the user database is unavailable: %s'
                                % (detail.get('error') or outcome))

    def _session_key(self, sid):
        return C.SESSION_KEY_PREFIX + sid

    def _redis_failure(self, exc):
        if self.redis is not None:
            self.redis_reachable = False
        return self._fail(503, 'session_store_unavailable', 'the session store (Redis %s:%s) is unavailable: %s'
                          % (C.HOST, self.redis_port, ' '.join(str(exc).split())[:200]))

    def auth_login(self, req):
        if req.body is None:
            return self._fail(400, 'invalid_request', 'the body must be a JSON object of at most %d bytes'
                              % C.MAX_AUTH_BODY)
        try:
            doc = json.loads(req.body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            doc = None
        if not isinstance(doc, dict):
            return self._fail(400, 'invalid_request', 'the body must be a JSON object with email and password')
        email, password = doc.get('email'), doc.get('password')
        if not isinstance(email, str) or not email.strip() or len(email) > 320:
            return self._fail(400, 'invalid_request', 'email must be a non-empty string')
        if not isinstance(password, str) or not password or len(password) > 1024:
            return self._fail(400, 'invalid_request', 'password must be a non-empty string')
        email = email.strip().lower()
        user, failure = self.lookup_user(email)
        if failure:
            return failure
        matches = auth.verify_password(password, user['password_hash'] if user else None)
        if not (user and matches and user['active']):
            return self._fail(401, 'invalid_credentials', 'unknown user, wrong password or inactive account')
        with self.lock:
            key, key_error = self.signing_key, self.signing_error
        if key is None:
            return self._fail(500, 'signing_key_unavailable', 'no JWT signing key loaded: %s'
                              % (key_error or 'not loaded yet'))
        if self.redis is None:
            return self._fail(503, 'session_store_unavailable', 'no session store (Redis) is configured')
        sid, now = str(uuid.uuid4()), int(time.time())
        session = {'user_id': user['id'], 'email': user['email'], 'created_at': now}
        try:
            self.redis.set(self._session_key(sid), json.dumps(session), ex=C.SESSION_TTL)
            self.redis_reachable = True
        except redis.RedisError as exc:
            return self._redis_failure(exc)
        token = auth.encode_jwt({'iss': self.base_url, 'sub': user['email'], 'sid': sid, 'iat': now,
                                 'exp': now + C.ACCESS_TOKEN_TTL}, key)
        return AuthResult(200, {'access_token': token, 'token_type': 'Bearer', 'expires_in': C.ACCESS_TOKEN_TTL})

    def _authenticate(self, req):
        """-> (claims, None) or (None, failure AuthResult) for the request's bearer token."""
        scheme, _sep, token = (req.headers.get('Authorization') or '').strip().partition(' ')
        challenge = {'WWW-Authenticate': 'Bearer error="invalid_token"'}
        if scheme.lower() != 'bearer' or not token.strip():
            return None, self._fail(401, 'invalid_token', 'missing Authorization: Bearer <token>', **challenge)
        with self.lock:
            keys = dict(self.verification_keys)
        try:
            return auth.decode_jwt(token.strip(), keys), None
        except auth.TokenError as exc:
            return None, self._fail(401, exc.code, exc.message, **challenge)

    def auth_me(self, req):
        claims, failure = self._authenticate(req)
        if failure:
            return failure
        if self.redis is None:
            return self._fail(503, 'session_store_unavailable', 'no session store (Redis) is configured')
        try:
            raw = self.redis.get(self._session_key(claims['sid']))
            self.redis_reachable = True
        except redis.RedisError as exc:
            return self._redis_failure(exc)
        try:
            session = json.loads(raw) if raw is not None else None
        except ValueError:
            session = None
        if not isinstance(session, dict) or session.get('email') != claims['sub']:
            return self._fail(401, 'session_expired', 'the session of this token has ended (logged out or expired)')
        return AuthResult(200, {'email': claims['sub'], 'session_id': claims['sid']})

    def auth_logout(self, req):
        claims, failure = self._authenticate(req)
        if failure:
            return failure
        if self.redis is None:
            return self._fail(503, 'session_store_unavailable', 'no session store (Redis) is configured')
        try:
            deleted = self.redis.delete(self._session_key(claims['sid']))
            self.redis_reachable = True
        except redis.RedisError as exc:
            return self._redis_failure(exc)
        if not deleted:
            return self._fail(401, 'session_expired', 'the session of this token has ended (logged out or expired)')
        return AuthResult(204, None)

    def auth_jwks(self, req):
        with self.lock:
            keys = [k.jwk() for k in self.deployment_keys]
        return AuthResult(200, {'keys': keys}, headers={'Cache-Control': 'no-cache'})

    def auth_saml_login(self, req):
        """The SP side of SSO: redirect to the IdP while its signing certificate is valid."""
        with self.lock:
            cert, error = self.idp_cert, self.idp_cert_error
        if cert is None:
            return self._fail(502, 'idp_metadata_unavailable', error or 'the IdP metadata has not been read yet')
        now = datetime.datetime.now(datetime.timezone.utc)
        not_before = datetime.datetime.fromisoformat(cert['not_before'])
        not_after = datetime.datetime.fromisoformat(cert['not_after'])
        if now >= not_after:
            return self._fail(502, 'idp_certificate_expired', 'the IdP signing certificate CN=%s expired on %s: '
                              'assertions signed with it fail validation' % (cert['subject'], cert['not_after']))
        if now < not_before:
            return self._fail(502, 'idp_certificate_expired', 'the IdP signing certificate CN=%s is not valid '
                              'before %s' % (cert['subject'], cert['not_before']))
        location = auth.authn_request_url(self.base_url + C.IDP_SSO_PATH, self.base_url + '/sp',
                                          self.base_url + '/api/v1/auth/saml/acs')
        return AuthResult(302, {'location': location}, headers={'Location': location})

    # The external SAML IdP's stand-in: it publishes its metadata and a login page.
    def idp_metadata(self, req):
        try:
            cert = auth.read_idp_cert(self.state_dir or '')
        except (OSError, ValueError) as exc:
            return self._fail(503, 'idp_metadata_unavailable', 'the IdP stand-in has no usable certificate (%s)'
                              % type(exc).__name__)
        body = auth.idp_metadata(cert, self.base_url + C.IDP_PATH, self.base_url + C.IDP_SSO_PATH)
        return AuthResult(200, body, content_type='application/samlmetadata+xml')

    def idp_sso(self, req):
        page = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Sign in - SVPMS sandbox IdP '
                '(stand-in)</title></head><body>\n<h1>Sign in</h1>\n<p>SVPMS sandbox identity provider '
                '(a stand-in for the external IdP).</p>\n<form method="post" action="%s">'
                '<label>Email <input name="email" type="email"></label> '
                '<label>Password <input name="password" type="password"></label> '
                '<button type="submit">Sign in</button></form>\n</body></html>\n' % C.IDP_SSO_PATH)
        return AuthResult(200, page.encode('utf-8'), content_type='text/html; charset=utf-8')

    def auth_outcome(self, endpoint, req, res, latency_ms):
        """Count an auth answer; the API's own endpoints are also recorded (ALB metrics) and their
        failures logged (awslogs, logger svpms.auth, never the request body)."""
        now = time.time()
        with self.lock:
            counter = self.auth_counters[endpoint]
            counter['total'] += 1
            counter['status_%d' % res.status] += 1
            if res.error:
                counter['error_%s' % res.error] += 1
        if endpoint not in API_AUTH_ENDPOINTS:
            return
        self.record(Record(now, req.method, req.path, res.status, latency_ms, req.request_id, None, SIGNATURE_AUTH))
        if res.status < 400:
            return
        level = 'ERROR' if res.status >= 500 else 'WARNING'
        message = ' '.join(str(res.message or '').split())[:500]
        line = ('%s %s svpms.auth request_id=%s method=%s path=%s status=%d error=%s duration_ms=%d %s'
                % (iso_z(now), level, req.request_id, req.method, req.path, res.status, res.error, latency_ms,
                   message))
        with self.lock:
            self._log_extra.append((now, line))
        log.log(logging.ERROR if res.status >= 500 else logging.WARNING, 'auth %s %s -> %d %s: %s',
                req.method, req.path, res.status, res.error, message)

    def queue_log(self, ts, line):
        """Queue a ready-made awslogs line (published with the next log batch)."""
        with self.lock:
            self._log_extra.append((ts, line))

    def payments_outcome(self, endpoint, req, res, latency_ms):
        """Record a webhook answer (ALB metrics) and log its failures (awslogs, logger svpms.payments)."""
        now = time.time()
        self.record(Record(now, req.method, req.path, res.status, latency_ms, req.request_id, None, SIGNATURE_AUTH))
        if res.status < 400:
            return
        level = 'ERROR' if res.status >= 500 else 'WARNING'
        message = ' '.join(str(res.message or '').split())[:500]
        self.queue_log(now, '%s %s svpms.payments request_id=%s method=%s path=%s status=%d error=%s duration_ms=%d '
                       'Stripe webhook %s: %s' % (iso_z(now), level, req.request_id, req.method, req.path,
                                                  res.status, res.error, latency_ms,
                                                  'failed' if res.status >= 500 else 'rejected', message))

    def auth_state(self):
        with self.lock:
            key = self.signing_key
            counters = {}
            for endpoint, counter in self.auth_counters.items():
                counters[endpoint] = {
                    'total': counter['total'],
                    'by_status': {k[7:]: v for k, v in counter.items() if k.startswith('status_')},
                    'by_error': {k[6:]: v for k, v in counter.items() if k.startswith('error_')}}
            loaded = self.keys_loaded_for or (None, None)
            cert = dict(self.idp_cert or {}, error=self.idp_cert_error, read_at=iso(self.idp_cert_read_at))
            if self.idp_cert:
                cert['valid_now'] = (datetime.datetime.fromisoformat(self.idp_cert['not_before'])
                                     <= utcnow() < datetime.datetime.fromisoformat(self.idp_cert['not_after']))
            return {
                'secret_id': C.JWT_SECRET_ID,
                'signing_kid': key.kid if key else None,
                'signing_alg': key.alg if key else None,
                'signing_version_id': key.version_id if key else None,
                'signing_error': self.signing_error,
                'deployment_id': loaded[0],
                'deployment_task_definition': loaded[1],
                'primary_deployment_id': self.primary_deployment_id,
                'keys_loaded_at': iso(self.keys_loaded_at),
                'jwks_kids': [k.kid for k in self.deployment_keys],
                'verification_kids': sorted(self.verification_keys),
                'verification_stages': dict(self.verification_stages),
                'verification_error': self.verification_error,
                'verification_read_at': iso(self.verification_read_at),
                'session_store': {'redis_port': self.redis_port, 'key_prefix': C.SESSION_KEY_PREFIX,
                                  'ttl_seconds': C.SESSION_TTL},
                'idp_cert': cert,
                'counters': counters,
            }

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
        auth_state = self.auth_state()
        payments_state = self.payments.state()
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
                'auth': auth_state,
                'payments': payments_state,
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
        if rec.signature == SIGNATURE_AUTH:  # auth_outcome queues its own lines
            return None
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
            timeout = 30  # seconds a client may take to send its request

            def log_message(self, fmt, *args):  # no per-request stderr noise
                pass

            def _send_auth(self, res, request_id):
                if isinstance(res.body, dict):
                    data, ctype = json.dumps(res.body).encode('utf-8'), 'application/json'
                else:
                    data, ctype = res.body or b'', res.content_type or 'application/octet-stream'
                self.send_response(res.status)
                if res.status != 204:
                    self.send_header('Content-Type', res.content_type or ctype)
                    self.send_header('Content-Length', str(len(data)))
                self.send_header('X-Request-Id', request_id)
                self.send_header('Cache-Control', 'no-store')
                for name, value in (res.headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != 'HEAD' and res.status != 204:
                    self.wfile.write(data)

            def _read_body(self, limit=C.MAX_AUTH_BODY):
                """The request body (bytes), or None when it is larger than limit or unreadable."""
                try:
                    length = int(self.headers.get('Content-Length') or 0)
                except ValueError:
                    return None
                if length < 0 or length > limit:
                    return None
                try:
                    return self.rfile.read(length) if length else b''
                except OSError:
                    return None

            def _route(self, method, path, query):
                """Serve an auth / IdP route. -> False when `path` is none of them."""
                route = twin.routes.get((method, path))
                if route is None:
                    allowed = sorted(m for m, p in twin.routes if p == path)
                    if not allowed:
                        return False
                    self._send(405, {'error': 'method_not_allowed', 'allowed': allowed})
                    return True
                started = time.monotonic()
                endpoint, fn = route
                limit = C.MAX_WEBHOOK_BODY if endpoint == 'stripe_webhook' else C.MAX_AUTH_BODY
                req = AuthRequest(method, path, self.headers, self._read_body(limit) if method == 'POST' else b'',
                                  parse_qs(query), uuid.uuid4().hex)
                try:
                    res = fn(req)
                except Exception as exc:  # a bug: answer 500 rather than drop the connection
                    log.exception('%s %s failed', method, path)
                    res = AuthResult(500, {'error': 'internal_error', 'message': type(exc).__name__},
                                     'internal_error', type(exc).__name__)
                outcome = twin.route_outcome.get(endpoint, twin.auth_outcome)
                outcome(endpoint, req, res, (time.monotonic() - started) * 1000.0)
                self._send_auth(res, req.request_id)
                return True

            def do_POST(self):
                url = urlsplit(self.path)
                path = url.path.rstrip('/') or '/'
                if not self._route('POST', path, url.query):
                    self._send(404, {'error': 'not_found', 'path': path})

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
                if self._route('GET', path, url.query):
                    return
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
        self.poll_once()  # know the behaviour (and load the signing key) before the first request
        self.read_ttl()
        self.read_idp_cert()
        self._db_pool()
        self.prewarm()  # a fresh sandbox is healthy from the first request
        for target, name in ((self._watch, 'watcher'),
                             (self._traffic, 'traffic'),
                             (self.payments.run, 'payments'),
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


def run(moto_port, twin_port, state_dir=None, redis_port=None, db_cfg=None, stripe_port=None):
    """Foreground entry point for `python -m svpms_sandbox twin`."""
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(threadName)s %(message)s')
    logging.getLogger('botocore').setLevel(logging.WARNING)
    twin = Twin(moto_port, twin_port, state_dir=state_dir, redis_port=redis_port, db_cfg=db_cfg,
                stripe_port=stripe_port)
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
