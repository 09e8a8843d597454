"""The Sandbox: start/stop/status/inject/heal of moto_server, the service twin, the
notification receiver, the sandbox's own redis-server and the Stripe stand-in, by
PID, plus the sandbox database on the machine's PostgreSQL (created by start,
dropped by stop). The Stripe part lives in stripe_ops.StripeMixin.
"""

import datetime
import json
import os
import socket
import subprocess
import sys
import time

from . import auth
from . import aws
from . import constants as C
from . import db as db_mod
from . import seed as seed_mod
from .procs import (SandboxError, http, http_json, pid_alive, port_free, read_pid, stop_pid,
                    tail, wait_http, write_pid)
from .stripe_ops import STRIPE_MARKER, StripeMixin

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../sandbox
MOTO_MARKER = 'moto_server'
TWIN_MARKER = 'svpms_sandbox'
MOTO_START_TIMEOUT = 20.0
TWIN_START_TIMEOUT = 15.0
RECEIVER_MARKER = 'svpms_sandbox'
RECEIVER_START_TIMEOUT = 10.0
SWITCH_TIMEOUT = 10.0
REDIS_MARKER = 'redis-server'
REDIS_START_TIMEOUT = 10.0
LOCK_HOLDER_MARKER = 'svpms_sandbox'
LOCK_WAIT_TIMEOUT = 10.0  # inject lock_contention: holder idle in transaction + a blocked API session
AUTH_WAIT_TIMEOUT = 15.0  # the twin picking up keys / the IdP certificate (2 s polls) or a new deployment


class UsageError(SandboxError):
    """A bad request from the caller (e.g. unknown fault name): exit code 2."""


def utc_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((C.HOST, 0))
        return sock.getsockname()[1]


def _write_json(path, obj):
    tmp = path + '.tmp'
    with open(tmp, 'w') as fh:
        json.dump(obj, fh, default=str)
    os.replace(tmp, path)


class Sandbox(StripeMixin):
    """A local stand-in for SVPMS production: moto_server + the service twin.

    state_dir holds moto.pid, twin.pid, ports.json, moto.log, twin.log,
    connection.yml and injected_at. Ports: explicit arguments win; otherwise the
    ports of the sandbox running from state_dir; otherwise the defaults.
    """

    def __init__(self, state_dir=C.DEFAULT_STATE_DIR, moto_port=None, twin_port=None, out=None,
                 receiver_port=None, redis_port=None, stripe_port=None, payments=None):
        self.state_dir = os.path.abspath(state_dir)
        # ports of a running sandbox in this state dir (ignored once it is stopped)
        recorded = self._recorded_ports() if (self.moto_running() or self.twin_running()
                                              or self.receiver_running() or self.redis_running()
                                              or self.stripe_running()) else {}
        self.moto_port = int(moto_port or recorded.get('moto_port') or C.DEFAULT_MOTO_PORT)
        self.twin_port = int(twin_port or recorded.get('twin_port') or C.DEFAULT_TWIN_PORT)
        # the notification receiver: an explicit port must be free; the default one is
        # replaced by a free port when busy (see _ensure_receiver)
        self._receiver_port_explicit = bool(receiver_port)
        self.receiver_port = int(receiver_port or recorded.get('receiver_port') or C.DEFAULT_RECEIVER_PORT)
        # the sandbox's own redis-server: same rule (never the machine's Redis on 6379)
        self._redis_port_explicit = bool(redis_port)
        self.redis_port = int(redis_port or recorded.get('redis_port') or C.DEFAULT_REDIS_PORT)
        # the Stripe stand-in: same rule
        self._stripe_port_explicit = bool(stripe_port)
        self.stripe_port = int(stripe_port or recorded.get('stripe_port') or C.DEFAULT_STRIPE_PORT)
        # payments (scenario 4): the Stripe stand-in, the twin's webhook route and payment traffic. Off
        # (payments=False) a sandbox has no Stripe at all: lighter, for the tests of scenarios 1-3.
        self.payments = bool(recorded.get('payments', True) if payments is None else payments)
        self._out = out  # callable(str) for progress lines; None = silent
        self._procs = {}  # Popen objects we started in this process (reaped on stop)

    # ------------------------------------------------------------------ paths
    def path(self, name):
        return os.path.join(self.state_dir, name)

    @property
    def moto_endpoint(self):
        return aws.endpoint_url(self.moto_port)

    @property
    def twin_url(self):
        return 'http://%s:%d' % (C.HOST, self.twin_port)

    @property
    def connection_file(self):
        return self.path(C.CONNECTION_FILE)

    @property
    def receiver_url(self):
        return 'http://%s:%d' % (C.HOST, self.receiver_port)

    @property
    def notifications_file(self):
        return self.path(C.NOTIFICATIONS_FILE)

    def notifications(self):
        """The requests the notification receiver recorded (auth values redacted), oldest first."""
        try:
            with open(self.notifications_file) as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except OSError:
            return []

    def _ports(self):
        return {'moto_port': self.moto_port, 'twin_port': self.twin_port, 'receiver_port': self.receiver_port,
                'redis_port': self.redis_port, 'stripe_port': self.stripe_port, 'payments': self.payments}

    def _say(self, msg):
        if self._out:
            self._out(msg)

    def _recorded_ports(self):
        try:
            with open(self.path('ports.json')) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def boto(self, service_name):
        """A boto3 client for the sandbox's moto_server."""
        return aws.client(service_name, self.moto_port)

    # -------------------------------------------------------------- processes
    def moto_pid(self):
        return read_pid(self.path('moto.pid'))

    def twin_pid(self):
        return read_pid(self.path('twin.pid'))

    def moto_running(self):
        return pid_alive(self.moto_pid(), MOTO_MARKER)

    def twin_running(self):
        return pid_alive(self.twin_pid(), TWIN_MARKER)

    def receiver_pid(self):
        return read_pid(self.path('receiver.pid'))

    def receiver_running(self):
        return pid_alive(self.receiver_pid(), RECEIVER_MARKER)

    def redis_pid(self):
        return read_pid(self.path('redis.pid'))

    def redis_running(self):
        return pid_alive(self.redis_pid(), REDIS_MARKER)

    def lock_holder_pid(self):
        return read_pid(self.path(C.LOCK_HOLDER_FILE + '.pid'))

    def lock_holder_running(self):
        return pid_alive(self.lock_holder_pid(), LOCK_HOLDER_MARKER)

    def _python_env(self):
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [PACKAGE_PARENT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
        env['PYTHONUNBUFFERED'] = '1'
        return env

    def _spawn(self, name, argv, env, log_name):
        log = open(self.path(log_name), 'ab')
        try:
            log.write(('--- %s starting %s: %s\n' % (utc_iso(), name, ' '.join(argv))).encode())
            log.flush()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=self.state_dir, start_new_session=True, close_fds=True)
        finally:
            log.close()
        self._procs[proc.pid] = proc
        write_pid(self.path('%s.pid' % name), proc.pid)
        return proc

    def _start_moto(self):
        if not port_free(self.moto_port):
            raise SandboxError('port %d (moto_server) is already in use on %s; stop whatever listens '
                               'there or pass --moto-port' % (self.moto_port, C.HOST))
        exe = os.path.join(os.path.dirname(sys.executable), 'moto_server')
        if not os.path.exists(exe):
            raise SandboxError('moto_server not found next to %s (install moto[server] in this venv)'
                               % sys.executable)
        env = dict(os.environ)
        # services report runningCount 3 == desiredCount 3, so deployments are COMPLETED
        # and the services_stable waiter passes (moto/ecs/models.py Service.__init__)
        env['MOTO_ECS_SERVICE_RUNNING'] = str(C.DESIRED_COUNT)
        proc = self._spawn('moto', [exe, '-H', C.HOST, '-p', str(self.moto_port)], env, 'moto.log')
        url = self.moto_endpoint + '/moto-api/'
        self._say('waiting up to %.0fs for moto_server (pid %d) to answer GET %s'
                  % (MOTO_START_TIMEOUT, proc.pid, url))
        try:
            wait_http(url, MOTO_START_TIMEOUT, proc_alive=lambda: proc.poll() is None, what='moto_server')
        except SandboxError as exc:
            self._stop_one('moto', MOTO_MARKER)
            log_path = self.path('moto.log')
            raise SandboxError('%s\n--- tail of %s ---\n%s' % (exc, log_path, tail(log_path)))
        status = http('POST', self.moto_endpoint + '/moto-api/seed?a=42', timeout=5)[0]
        if status != 200:
            raise SandboxError('POST /moto-api/seed?a=42 answered HTTP %d' % status)

    def _start_twin(self):
        if not port_free(self.twin_port):
            raise SandboxError('port %d (service twin) is already in use on %s; stop whatever listens '
                               'there or pass --twin-port' % (self.twin_port, C.HOST))
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [PACKAGE_PARENT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
        env['PYTHONUNBUFFERED'] = '1'
        argv = [sys.executable, '-m', 'svpms_sandbox', '--state-dir', self.state_dir,
                '--moto-port', str(self.moto_port), '--twin-port', str(self.twin_port),
                '--redis-port', str(self.redis_port), '--stripe-port', str(self.stripe_port), 'twin']
        proc = self._spawn('twin', argv, env, 'twin.log')
        url = self.twin_url + '/health'
        self._say('waiting up to %.0fs for the service twin (pid %d) to answer GET %s'
                  % (TWIN_START_TIMEOUT, proc.pid, url))
        try:
            wait_http(url, TWIN_START_TIMEOUT, proc_alive=lambda: proc.poll() is None, what='service twin')
        except SandboxError as exc:
            self._stop_one('twin', TWIN_MARKER)
            log_path = self.path('twin.log')
            raise SandboxError('%s\n--- tail of %s ---\n%s' % (exc, log_path, tail(log_path)))

    def _start_receiver(self):
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [PACKAGE_PARENT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
        env['PYTHONUNBUFFERED'] = '1'
        argv = [sys.executable, '-m', 'svpms_sandbox', '--state-dir', self.state_dir,
                '--receiver-port', str(self.receiver_port), 'receiver']
        proc = self._spawn('receiver', argv, env, 'receiver.log')
        url = self.receiver_url + '/receiver/state'
        self._say('waiting up to %.0fs for the notification receiver (pid %d) to answer GET %s'
                  % (RECEIVER_START_TIMEOUT, proc.pid, url))
        try:
            wait_http(url, RECEIVER_START_TIMEOUT, proc_alive=lambda: proc.poll() is None,
                      what='notification receiver')
        except SandboxError as exc:
            self._stop_one('receiver', RECEIVER_MARKER)
            log_path = self.path('receiver.log')
            raise SandboxError('%s\n--- tail of %s ---\n%s' % (exc, log_path, tail(log_path)))

    def _ensure_receiver(self):
        """Start the notification receiver unless it runs already."""
        if self.receiver_running():
            return
        if os.path.exists(self.path('receiver.pid')):  # a receiver that is gone
            os.remove(self.path('receiver.pid'))
        if not port_free(self.receiver_port):
            if self._receiver_port_explicit:
                raise SandboxError('port %d (notification receiver) is already in use on %s; stop whatever '
                                   'listens there or pass --receiver-port' % (self.receiver_port, C.HOST))
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((C.HOST, 0))
                port = sock.getsockname()[1]
            self._say('port %d (notification receiver) is busy: using free port %d instead'
                      % (self.receiver_port, port))
            self.receiver_port = port
        self._start_receiver()

    # ------------------------------------------------------------------ redis
    def redis_client(self, timeout=2.0):
        import redis  # the venv's redis-py; only the CLI paths that talk to Redis need it
        return redis.Redis(host=C.HOST, port=self.redis_port, socket_timeout=timeout,
                           socket_connect_timeout=timeout)

    def _start_redis(self):
        argv = [C.REDIS_SERVER, '--port', str(self.redis_port), '--bind', C.HOST, '--save', '',
                '--appendonly', 'no', '--dir', self.state_dir, '--daemonize', 'no']
        proc = self._spawn('redis', argv, dict(os.environ), 'redis.log')
        self._say('waiting up to %.0fs for redis-server (pid %d) to answer PING on %s:%d'
                  % (REDIS_START_TIMEOUT, proc.pid, C.HOST, self.redis_port))
        client = self.redis_client(timeout=0.5)
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last = 'exited with code %s' % proc.returncode
                break
            try:
                if client.ping():
                    return
            except Exception as exc:  # still starting
                last = exc
            time.sleep(0.1)
        self._stop_one('redis', REDIS_MARKER)
        log_path = self.path('redis.log')
        raise SandboxError('redis-server on port %d did not answer PING within %.0fs (%s)\n--- tail of %s ---\n%s'
                           % (self.redis_port, REDIS_START_TIMEOUT, last, log_path, tail(log_path)))

    def _ensure_redis(self):
        """Start the sandbox's redis-server unless it runs already (a free port when the default is busy)."""
        if self.redis_running():
            return
        if os.path.exists(self.path('redis.pid')):
            os.remove(self.path('redis.pid'))
        if not os.path.exists(C.REDIS_SERVER):
            raise SandboxError('%s not found (install the redis-server package)' % C.REDIS_SERVER)
        for attempt in (1, 2):
            if not port_free(self.redis_port):
                if self._redis_port_explicit:
                    raise SandboxError('port %d (redis-server) is already in use on %s; stop whatever listens '
                                       'there or pass --redis-port' % (self.redis_port, C.HOST))
                port = _free_port()
                self._say('port %d (redis-server) is busy: using free port %d instead' % (self.redis_port, port))
                self.redis_port = port
            try:
                return self._start_redis()
            except SandboxError:
                # lost a race for the port with another process: once more on a free port
                if self._redis_port_explicit or attempt == 2 or port_free(self.redis_port):
                    raise

    # --------------------------------------------------------------- database
    def db_info(self):
        """What `start` set up on PostgreSQL (db.json), or None before the first start."""
        return db_mod.read_db_file(self.state_dir)

    def _setup_db(self):
        """Create and seed the sandbox database; without PostgreSQL the sandbox runs without it."""
        try:
            cfg = db_mod.settings(self.twin_port)
        except db_mod.DatabaseError as exc:
            raise SandboxError(str(exc))
        info = dict(cfg, enabled=False, error=None)
        self._say('creating database %s and roles %s, %s on PostgreSQL %s'
                  % (cfg['database'], cfg['app_user'], cfg['batch_user'], db_mod.where(cfg)))
        try:
            counts = db_mod.create(cfg)
            info.update(enabled=True, rows=counts)
        except db_mod.DatabaseError as exc:
            info['error'] = str(exc)
            self._say('warning: %s; the sandbox runs WITHOUT a database (the twin serves without it, '
                      'the database faults cannot be injected)' % exc)
        _write_json(self.path(C.DB_FILE), info)
        return info

    def _drop_db(self):
        info = self.db_info()
        if not info:
            return None, 'not created'
        if not info.get('enabled'):
            result = 'not created (%s)' % (info.get('error') or 'PostgreSQL was not reachable')
        else:
            try:
                result = db_mod.drop(info)
            except db_mod.DatabaseError as exc:
                return None, 'NOT dropped: %s' % exc
        os.remove(self.path(C.DB_FILE))
        return None, result

    def _require_db(self, fault):
        info = self.db_info()
        if not info or not info.get('enabled'):
            why = (info or {}).get('error') or 'no sandbox database was created'
            raise SandboxError('fault %s needs the sandbox database, but this sandbox runs without PostgreSQL (%s); '
                               'make PostgreSQL reachable (%s/%s/%s) and restart the sandbox'
                               % (fault, why, C.PG_HOST_ENV, C.PG_PORT_ENV, C.PG_ADMIN_ENV))
        return info

    def _stop_one(self, name, marker):
        pid_file = self.path('%s.pid' % name)
        pid = read_pid(pid_file)
        result = 'not running'
        if pid:
            proc = self._procs.pop(pid, None)
            result = stop_pid(pid, marker)
            if proc is not None:
                try:
                    proc.wait(timeout=5)  # reap our own child
                except subprocess.TimeoutExpired:
                    pass
        try:
            os.remove(pid_file)
        except FileNotFoundError:
            pass
        return pid, result

    # ---------------------------------------------------------------- commands
    def connection(self):
        info = self.db_info() or {}
        try:
            cfg = db_mod.settings(self.twin_port)
        except db_mod.DatabaseError:
            cfg = {}
        cfg.update({k: v for k, v in info.items() if k in cfg})
        enabled = bool(info.get('enabled'))
        conn = {
            'svpms_aws_endpoint_url': self.moto_endpoint,
            'svpms_aws_region': C.REGION,
            'svpms_aws_access_key': C.ACCESS_KEY,
            'svpms_aws_secret_key': C.SECRET_KEY,
            'svpms_ecs_cluster': C.CLUSTER,
            'svpms_ecs_service': C.SERVICE,
            'svpms_health_url': self.twin_url + '/health',
            'svpms_api_probe_url': self.twin_url + '/api/v1/items',
            'svpms_log_group': C.LOG_GROUP,
            'svpms_alb_load_balancer': C.ALB_LOAD_BALANCER,
            'svpms_alb_target_group': C.ALB_TARGET_GROUP,
            'svpms_rds_instance': C.RDS_INSTANCE,
            'svpms_flag_prefix': C.FLAG_PREFIX,
            # notification receiver (PagerDuty, Slack, Statuspage on loopback)
            'svpms_pagerduty_events_url': self.receiver_url + C.RECEIVER_PREFIXES['pagerduty_events'],
            'svpms_pagerduty_api_url': self.receiver_url + C.RECEIVER_PREFIXES['pagerduty_api'],
            'svpms_slack_api_url': self.receiver_url + C.RECEIVER_PREFIXES['slack_api'],
            'svpms_statuspage_api_url': self.receiver_url + C.RECEIVER_PREFIXES['statuspage_api'],
            'svpms_statuspage_page_id': C.STATUSPAGE_PAGE_ID,
            'svpms_slack_channel': C.SLACK_CHANNEL,
            'svpms_pagerduty_from_email': C.PAGERDUTY_FROM_EMAIL,
            # sandbox PLACEHOLDERS, not secrets (the receiver accepts any non-empty value)
            'svpms_pagerduty_routing_key': C.PAGERDUTY_ROUTING_KEY,
            'svpms_pagerduty_api_token': C.PAGERDUTY_API_TOKEN,
            'svpms_slack_token': C.SLACK_TOKEN,
            'svpms_statuspage_api_key': C.STATUSPAGE_API_KEY,
            'svpms_lock_table': C.LOCK_TABLE,
            # PostgreSQL: the operator's role connects; the app/batch roles' sessions may be cancelled.
            # Without a database the host is empty (the runbooks skip their database checks).
            'svpms_db_host': cfg.get('host', '') if enabled else '',
            'svpms_db_port': cfg.get('port', C.PG_DEFAULT_PORT),
            'svpms_db_name': cfg.get('database', ''),
            'svpms_db_user': cfg.get('admin_user', C.PG_DEFAULT_ADMIN),
            'svpms_db_app_users': [cfg.get('app_user', ''), cfg.get('batch_user', '')],
            'svpms_db_enabled': enabled,
            # the sandbox's own Redis (the API's cache) and the cache TTL setting in SSM
            'svpms_redis_host': C.HOST,
            'svpms_redis_port': self.redis_port,
            'svpms_cache_ttl_parameter': C.CACHE_TTL_PARAMETER,
            'svpms_cache_ttl_seconds': C.GOOD_CACHE_TTL,
            # authentication (scenario 3): the API's auth endpoints, the synthetic probe user
            'svpms_login_url': self.twin_url + C.LOGIN_PATH,
            'svpms_login_check_url': self.twin_url + C.LOGIN_CHECK_PATH,
            'svpms_logout_url': self.twin_url + C.LOGOUT_PATH,
            'svpms_sso_start_url': self.twin_url + C.SSO_START_PATH,
            'svpms_login_probe_user': C.PROBE_USER,
            'svpms_login_probe_password': C.PROBE_PASSWORD,  # sandbox placeholder, not a secret
            # the JWT signing key (Secrets Manager) and the JWKS the API publishes
            'svpms_jwt_secret_id': C.JWT_SECRET_ID,
            'svpms_jwks_url': self.twin_url + C.JWKS_PATH,
            # the external SAML IdP (a stand-in served by the twin) and whom to call about it
            'svpms_saml_metadata_url': self.twin_url + C.IDP_METADATA_PATH,
            'svpms_saml_support_contact': C.SAML_SUPPORT_CONTACT,
            # the users table and the API's database role (its privileges on the table)
            'svpms_users_table': C.USERS_TABLE,
            'svpms_db_app_user': cfg.get('app_user', ''),
            # the session store (the sandbox's own redis-server) and how to restart it, as an argv (no shell)
            'svpms_session_redis_host': C.HOST,
            'svpms_session_redis_port': self.redis_port,
            'svpms_redis_restart_command': self.redis_restart_command(),
            # payments (scenario 4): the Stripe stand-in (production: https://api.stripe.com), the operator's
            # API key (a sandbox placeholder, not a secret, and not the service's key; production: from a vault /
            # STRIPE_API_KEY), the secrets the API loads at deployment, and OUR webhook endpoint
            'svpms_stripe_api_url': self.stripe_url,
            'svpms_stripe_api_key': C.STRIPE_OPERATOR_KEY,
            'svpms_stripe_key_secret_id': C.STRIPE_KEY_SECRET_ID,
            'svpms_stripe_webhook_url': self.stripe_webhook_url,
            'svpms_stripe_webhook_secret_id': C.STRIPE_WEBHOOK_SECRET_ID,
            'svpms_stripe_livemode': False,
            'svpms_stripe_status_url': '',  # no internet here: the runbook skips Stripe's public status page
        }
        if not self.payments:  # no Stripe in this sandbox: the runbooks skip the payments checks
            conn = {k: v for k, v in conn.items() if not k.startswith('svpms_stripe_')}
        return conn

    def redis_restart_command(self):
        """argv that (re)starts this sandbox's redis-server on its recorded port, without a shell."""
        return ['/usr/bin/env', 'PYTHONPATH=%s' % PACKAGE_PARENT, sys.executable, '-m', 'svpms_sandbox',
                '--state-dir', self.state_dir, 'redis-start']

    def _write_connection(self):
        # JSON is valid YAML: usable as `-e @connection.yml` without PyYAML.
        tmp = self.connection_file + '.tmp'
        with open(tmp, 'w') as fh:
            fh.write('# written by `python -m svpms_sandbox start`; JSON is valid YAML\n')
            fh.write('# svpms_pagerduty_routing_key, svpms_pagerduty_api_token, svpms_slack_token, '
                     'svpms_statuspage_api_key, svpms_login_probe_password and svpms_stripe_api_key are sandbox '
                     'placeholders, not secrets\n')
            json.dump(self.connection(), fh, indent=2, sort_keys=False)
            fh.write('\n')
        os.replace(tmp, self.connection_file)

    def start(self):
        """Start (or confirm) moto + twin. -> dict(already_running=bool, ...)."""
        os.makedirs(self.state_dir, exist_ok=True)
        moto_up, twin_up = self.moto_running(), self.twin_running()
        recorded = self._recorded_ports()
        if moto_up and recorded:
            # a running sandbox keeps the ports it was started with
            wanted = (self.moto_port, self.twin_port)
            self.moto_port = int(recorded.get('moto_port', self.moto_port))
            self.twin_port = int(recorded.get('twin_port', self.twin_port))
            if bool(recorded.get('payments', True)) != self.payments:
                self._say('note: the sandbox in %s was started %s payments; keeping that (stop it first to change)'
                          % (self.state_dir, 'with' if recorded.get('payments', True) else 'without'))
                self.payments = bool(recorded.get('payments', True))
            if wanted != (self.moto_port, self.twin_port):
                self._say('note: the sandbox in %s was started on ports %d/%d; keeping them '
                          '(stop it first to change ports)' % (self.state_dir, self.moto_port, self.twin_port))
        if self.receiver_running() and recorded.get('receiver_port'):
            self.receiver_port = int(recorded['receiver_port'])
        if self.redis_running() and recorded.get('redis_port'):
            self.redis_port = int(recorded['redis_port'])
        if (self.stripe_running() or (moto_up and twin_up)) and recorded.get('stripe_port'):
            self.stripe_port = int(recorded['stripe_port'])  # the running twin talks to that port
        if moto_up and twin_up:
            self._ensure_receiver()
            self._ensure_redis()  # the twin reconnects by itself
            if self.payments:
                self._ensure_stripe(keep_port=bool(recorded.get('stripe_port')))
                self._seed_stripe(fresh=False)
            with open(self.path('ports.json'), 'w') as fh:
                json.dump(self._ports(), fh)
            self._write_connection()
            return {'already_running': True, 'moto_pid': self.moto_pid(), 'twin_pid': self.twin_pid(),
                    'receiver_pid': self.receiver_pid(), 'redis_pid': self.redis_pid(),
                    'stripe_pid': self.stripe_pid(),
                    'database': (self.db_info() or {}).get('database') if (self.db_info() or {}).get('enabled')
                    else None, 'connection_file': self.connection_file}
        if twin_up:  # twin without moto: its moto state is gone, start over
            self._say('twin (pid %d) runs without moto: stopping it and starting afresh' % self.twin_pid())
            self._stop_one('twin', TWIN_MARKER)
        stale = ['twin.pid'] if moto_up else ['twin.pid', 'moto.pid']
        for name in stale:  # pid files of processes that are gone
            if os.path.exists(self.path(name)):
                os.remove(self.path(name))
        wanted = [(self.twin_port, 'service twin')] + ([] if moto_up else [(self.moto_port, 'moto_server')])
        busy = [(port, what) for port, what in wanted if not port_free(port)]
        if busy:
            raise SandboxError('; '.join('port %d (%s) is already in use on %s' % (port, what, C.HOST)
                                         for port, what in busy)
                               + ': stop whatever listens there or pass --moto-port/--twin-port')
        try:
            if moto_up:
                self._say('moto_server already running (pid %d): keeping its state, restarting the twin'
                          % self.moto_pid())
            else:
                for name in ('injected_at', C.CONNECTION_FILE, C.NOTIFICATIONS_FILE):
                    if os.path.exists(self.path(name)):
                        os.remove(self.path(name))
                # leftovers of a sandbox that died here: its lock holder, Stripe stand-in and database
                self._stop_one(C.LOCK_HOLDER_FILE, LOCK_HOLDER_MARKER)
                self._stop_one('stripe', STRIPE_MARKER)
                self._clear_stripe_files()
                if (self.db_info() or {}).get('enabled'):
                    self._say('dropping the database left by the previous sandbox: %s' % self._drop_db()[1])
                self._start_moto()
                with open(self.path('ports.json'), 'w') as fh:
                    json.dump(self._ports(), fh)
                self._say('seeding moto (VPC, ECS cluster/task definitions/service, Logs, SSM flags and '
                          'cache TTL)')
                seed_mod.seed(self.moto_port)
            self._ensure_redis()
            if not moto_up or not auth.idp_cert_valid(self.state_dir):
                # the external IdP's stand-in: its signing key and a certificate valid 365 days
                for name in ((C.IDP_KEY_FILE, C.IDP_CERT_FILE) if not moto_up else ()):
                    if os.path.exists(self.path(name)):
                        os.remove(self.path(name))
                self._say('generating the IdP stand-in\'s signing key and certificate (%d days) in %s'
                          % (C.IDP_CERT_DAYS, self.state_dir))
                auth.new_valid_idp_cert(self.state_dir)
            if not moto_up or not (self.db_info() or {}).get('enabled'):
                self._setup_db()  # a fresh start gets a fresh database
            if self.payments:
                self._ensure_stripe()
                self._seed_stripe(fresh=not moto_up)
            with open(self.path('ports.json'), 'w') as fh:
                json.dump(self._ports(), fh)
            self._start_twin()
            self._ensure_receiver()
        except BaseException:
            self.stop()
            if os.path.exists(self.path('ports.json')):
                os.remove(self.path('ports.json'))
            raise
        with open(self.path('ports.json'), 'w') as fh:
            json.dump(self._ports(), fh)
        self._write_connection()
        info = self.db_info() or {}
        return {'already_running': False, 'moto_pid': self.moto_pid(), 'twin_pid': self.twin_pid(),
                'receiver_pid': self.receiver_pid(), 'redis_pid': self.redis_pid(), 'stripe_pid': self.stripe_pid(),
                'database': info.get('database') if info.get('enabled') else None,
                'database_error': info.get('error'), 'connection_file': self.connection_file}

    def stop(self):
        """Stop the lock holder, receiver, twin, Stripe stand-in, redis-server and moto by PID, then drop the
        sandbox database and roles; remove pid files and connection.yml. Idempotent.

        -> {name: (pid, result)}, result one of not running / stopped / killed; for
        'database' (None, what was dropped).
        """
        result = {}
        for name, marker in (('lock_holder', LOCK_HOLDER_MARKER), ('receiver', RECEIVER_MARKER),
                             ('twin', TWIN_MARKER), ('stripe', STRIPE_MARKER), ('redis', REDIS_MARKER),
                             ('moto', MOTO_MARKER)):
            result[name] = self._stop_one(name, marker)
        result['database'] = self._drop_db()
        try:  # its endpoints are gone; `start` writes a fresh one
            os.remove(self.connection_file)
        except FileNotFoundError:
            pass
        return result

    # ------------------------------------------------------------------- ECS
    def _require_moto(self):
        if not self.moto_running():
            raise SandboxError('the sandbox is not running (no live moto_server for %s); run `start` first'
                               % self.state_dir)

    def revisions(self):
        """All revisions of the family: [{name, arn, revision, status, fault, version}], oldest first."""
        ecs = self.boto('ecs')
        arns = []
        for status in ('ACTIVE', 'INACTIVE'):
            arns += ecs.list_task_definitions(familyPrefix=C.FAMILY, status=status)['taskDefinitionArns']
        out = []
        for arn in arns:
            td = ecs.describe_task_definition(taskDefinition=arn)['taskDefinition']
            out.append({'name': '%s:%d' % (td['family'], td['revision']), 'arn': td['taskDefinitionArn'],
                        'revision': td['revision'], 'status': td['status'],
                        'fault': aws.fault_of(td), 'version': aws.version_of(td)})
        return sorted(out, key=lambda r: r['revision'])  # moto ignores sort='DESC'

    def service(self):
        svc = self.boto('ecs').describe_services(cluster=C.CLUSTER, services=[C.SERVICE])['services']
        if not svc:
            raise SandboxError('service %s not found in cluster %s' % (C.SERVICE, C.CLUSTER))
        return svc[0]

    def _newest_good(self):
        good = [r for r in self.revisions() if r['status'] == 'ACTIVE' and not r['fault']]
        if not good:
            raise SandboxError('no ACTIVE revision of %s without a fault marker' % C.FAMILY)
        return good[-1]

    def _wait_twin_on(self, name, timeout=SWITCH_TIMEOUT):
        """Wait until the twin reports task definition `name`. -> seconds waited, or None."""
        if not self.twin_running():
            return None
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                state = http_json(self.twin_url + '/twin/state', timeout=2)[1]
                if state and state.get('task_definition') == name:
                    return round(time.monotonic() - t0, 2)
            except Exception:
                pass
            time.sleep(0.1)
        raise SandboxError('the service twin did not switch to %s within %.0fs (see %s)'
                           % (name, timeout, self.path('twin.log')))

    def _point_service_at(self, arn):
        self.boto('ecs').update_service(cluster=C.CLUSTER, service=C.SERVICE, taskDefinition=arn,
                                        forceNewDeployment=True)

    def inject(self, name, wait=True):
        """Bring about fault `name`: a deploy fault by a bad revision, the others by their own handler
        (by name). -> dict (see CLI output)."""
        if name not in C.FAULTS:
            raise UsageError('unknown fault %r; allowed: %s' % (name, ', '.join(sorted(C.FAULTS))))
        kind = C.FAULTS[name]['kind']
        self._require_moto()
        if name in C.PAYMENTS_FAULTS and not self.payments:
            raise UsageError('fault %s needs payments (the Stripe stand-in), and this sandbox was started without '
                             'them; stop it and start it with payments' % name)
        handlers = {
            'lock_contention': self._inject_lock_contention,
            'cache_miss_storm': self._inject_cache_miss_storm,
            'redis_down': self._inject_redis_down,
            'jwt_key_mismatch': lambda n: self._inject_jwt_key_mismatch(n, wait),
            'idp_cert_expired': lambda n: self._inject_idp_cert_expired(n, wait),
            'user_table_denied': self._inject_user_table_denied,
            'webhook_secret_mismatch': lambda n: self._inject_webhook_secret_mismatch(n, wait),
            'stripe_key_revoked': lambda n: self._inject_stripe_key_revoked(n, wait),
        }
        if name in handlers:
            res = handlers[name](name)
        elif kind == 'deploy':
            res = self._inject_deploy(name, wait)
        else:  # a FAULTS entry nobody handles
            raise SandboxError('fault %s (kind %r) has no handler; inject handles deploy faults and %s'
                               % (name, kind, ', '.join(sorted(handlers))))
        injected_at = res.pop('injected_at')
        with open(self.path('injected_at'), 'w') as fh:
            fh.write(injected_at + '\n')
        return dict(res, fault=name, kind=kind, injected_at=injected_at)

    def _inject_deploy(self, name, wait):
        """Deploy a bad revision carrying fault `name`."""
        ecs = self.boto('ecs')
        current = aws.normalise_task_definition(self.service()['taskDefinition'])
        base = ecs.describe_task_definition(taskDefinition=current)['taskDefinition']
        if aws.fault_of(base) or base['status'] != 'ACTIVE':
            base_name = self._newest_good()['name']
            base = ecs.describe_task_definition(taskDefinition=base_name)['taskDefinition']
        kwargs = {k: base[k] for k in ('family', 'taskRoleArn', 'executionRoleArn', 'networkMode',
                                       'containerDefinitions', 'volumes', 'placementConstraints',
                                       'requiresCompatibilities', 'cpu', 'memory')
                  if base.get(k) not in (None, [], '')}
        for container in kwargs['containerDefinitions']:
            env = [e for e in container.get('environment', []) if e.get('name') != C.FAULT_ENV]
            env.append({'name': C.FAULT_ENV, 'value': name})
            container['environment'] = env
        td = ecs.register_task_definition(**kwargs)['taskDefinition']
        new_name = '%s:%d' % (td['family'], td['revision'])
        self._point_service_at(td['taskDefinitionArn'])
        injected_at = utc_iso()
        switched = self._wait_twin_on(new_name) if wait else None
        return {'injected_at': injected_at, 'from': current,
                'based_on': '%s:%d' % (base['family'], base['revision']),
                'task_definition': new_name, 'task_definition_arn': td['taskDefinitionArn'],
                'twin_switch_seconds': switched}

    def _inject_lock_contention(self, name):
        """Start the lock holder; wait until it is idle in transaction and blocks the API."""
        info = self._require_db(name)
        already = self.lock_holder_running()
        if not already:
            if os.path.exists(self.path(C.LOCK_HOLDER_FILE + '.pid')):
                os.remove(self.path(C.LOCK_HOLDER_FILE + '.pid'))
            argv = [sys.executable, '-m', 'svpms_sandbox', '--state-dir', self.state_dir, 'lock-holder']
            self._spawn(C.LOCK_HOLDER_FILE, argv, self._python_env(), C.LOCK_HOLDER_FILE + '.log')
        injected_at = utc_iso()
        pid = self.lock_holder_pid()
        self._say('waiting up to %.0fs for the lock holder (pid %d) to sit idle in transaction and block '
                  'an API session' % (LOCK_WAIT_TIMEOUT, pid))
        t0 = time.monotonic()
        holder, blocked, last_error = None, [], None
        while time.monotonic() - t0 < LOCK_WAIT_TIMEOUT:
            if not self.lock_holder_running():
                self._stop_one(C.LOCK_HOLDER_FILE, LOCK_HOLDER_MARKER)
                log_path = self.path(C.LOCK_HOLDER_FILE + '.log')
                raise SandboxError('the lock holder exited before holding its locks\n--- tail of %s ---\n%s'
                                   % (log_path, tail(log_path)))
            try:
                holders, sessions = db_mod.lock_holder_sessions(info)
            except Exception as exc:  # noqa: BLE001 -- reported below if it lasts
                last_error = exc
                holders, sessions = [], []
            holder = next((h for h in holders if h['state'] == 'idle in transaction'), None)
            if holder:
                blocked = [b for b in sessions if holder['pid'] in (b['blocking_pids'] or [])
                           and b['usename'] == info['app_user']]
                if blocked or not self.twin_running():
                    break
            time.sleep(0.2)
        if holder is None:
            self._stop_one(C.LOCK_HOLDER_FILE, LOCK_HOLDER_MARKER)
            raise SandboxError('the lock holder did not sit idle in transaction within %.0fs (last error: %s); '
                               'stopped it (see %s)' % (LOCK_WAIT_TIMEOUT, last_error,
                                                        self.path(C.LOCK_HOLDER_FILE + '.log')))
        return {'injected_at': injected_at, 'already_running': already, 'lock_holder_pid': pid,
                'backend_pid': holder['pid'], 'database': info['database'], 'holder_user': info['batch_user'],
                'application_name': C.BATCH_APP_NAME, 'blocked_sessions': len(blocked),
                'wait_seconds': round(time.monotonic() - t0, 2)}

    def _inject_cache_miss_storm(self, name):
        """Push a 1 s cache TTL, wait for the twin to read it, then flush the cache."""
        if not self.redis_running():
            raise SandboxError('fault %s needs the sandbox\'s redis-server, which is not running; run `start`'
                               % name)
        ssm = self.boto('ssm')
        previous = self._ttl_value(ssm)
        ssm.put_parameter(Name=C.CACHE_TTL_PARAMETER, Value=str(C.STORM_CACHE_TTL), Type='String', Overwrite=True)
        injected_at = utc_iso()
        # flush only once the twin uses the new TTL, or it would refill the cache for 300 s
        waited = self._wait_twin_ttl(C.STORM_CACHE_TTL)
        try:
            keys = self.redis_client().dbsize()
            self.redis_client().flushdb()
        except Exception as exc:
            raise SandboxError('FLUSHDB on the sandbox redis-server (port %d) failed: %s' % (self.redis_port, exc))
        return {'injected_at': injected_at, 'ttl_parameter': C.CACHE_TTL_PARAMETER, 'ttl_before': previous,
                'ttl_seconds': C.STORM_CACHE_TTL, 'flushed_keys': keys, 'redis_port': self.redis_port,
                'twin_ttl_seconds': waited}

    # ------------------------------------------------- authentication faults
    def _inject_redis_down(self, name):
        """Stop the sandbox's redis-server by PID; its port stays recorded (for `redis-start`)."""
        port = self.redis_port
        if not self.redis_running():
            return {'injected_at': utc_iso(), 'redis_port': port, 'redis_pid': None, 'already_down': True,
                    'summary': 'redis-server (port %d) was not running; nothing stopped' % port}
        pid, result = self._stop_one('redis', REDIS_MARKER)
        return {'injected_at': utc_iso(), 'redis_port': port, 'redis_pid': pid, 'already_down': False,
                'summary': 'redis-server pid %d on port %d %s (the session store and cache); the port stays '
                           'recorded: restart it with `redis-start` (or `heal`)' % (pid, port, result)}

    def _twin_auth(self):
        """The twin's "auth" state (signing kid, verification kids, IdP certificate ...)."""
        if not self.twin_running():
            raise SandboxError('the service twin is not running; run `start`')
        try:
            status, state = http_json(self.twin_url + '/twin/state?window=1', timeout=3)
        except Exception as exc:
            raise SandboxError('the service twin did not answer GET /twin/state: %s' % exc)
        if status != 200 or not isinstance(state, dict) or 'auth' not in state:
            raise SandboxError('the service twin answered GET /twin/state with HTTP %s and no auth state' % status)
        return state['auth']

    def _wait_twin_auth(self, pred, what, timeout=AUTH_WAIT_TIMEOUT):
        """Wait until pred(twin auth state) holds. -> seconds waited."""
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            try:
                last = self._twin_auth()
                if pred(last):
                    return round(time.monotonic() - t0, 2)
            except SandboxError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise SandboxError('waited %.0fs for %s; the twin\'s auth state was %s (see %s)'
                           % (timeout, what, last, self.path('twin.log')))

    def _secret_stages(self, sm):
        stages = {}
        for version_id, labels in (sm.describe_secret(SecretId=C.JWT_SECRET_ID).get('VersionIdsToStages')
                                   or {}).items():
            for label in labels or []:
                stages[label] = version_id
        return stages

    def _secret_value(self, sm, version_id):
        return sm.get_secret_value(SecretId=C.JWT_SECRET_ID, VersionId=version_id).get('SecretString')

    def _secret_kid(self, sm, version_id):
        """kid of a secret version's key, or None when it holds no usable key."""
        try:
            return auth.load_key(self._secret_value(sm, version_id)).kid
        except auth.KeyLoadError:
            return None

    def _inject_jwt_key_mismatch(self, name, wait=True):
        """Out-of-band key change: a new AWSCURRENT, and AWSPREVIOUS removed from the version the twin
        signs with; wait until the twin verifies with the new key only."""
        if not self.twin_running():
            raise SandboxError('fault %s needs the service twin (it signs with the key its deployment loaded); '
                               'run `start`' % name)
        signing_kid = self._twin_auth().get('signing_kid')
        if not signing_kid:
            raise SandboxError('the service twin has no signing key loaded (see %s)' % self.path('twin.log'))
        sm = self.boto('secretsmanager')
        before = self._secret_stages(sm)
        new_value = auth.new_secret_like(self._secret_value(sm, before['AWSCURRENT'])
                                         if 'AWSCURRENT' in before else None)
        new_kid = auth.load_key(new_value).kid
        new_version = sm.put_secret_value(SecretId=C.JWT_SECRET_ID, SecretString=new_value)['VersionId']
        stages = self._secret_stages(sm)
        removed_from = None
        previous = stages.get('AWSPREVIOUS')
        if previous and self._secret_kid(sm, previous) == signing_kid:
            sm.update_secret_version_stage(SecretId=C.JWT_SECRET_ID, VersionStage='AWSPREVIOUS',
                                           RemoveFromVersionId=previous)
            removed_from = previous
        injected_at = utc_iso()
        waited = None
        if wait:
            waited = self._wait_twin_auth(
                lambda a: new_kid in a['verification_kids'] and signing_kid not in a['verification_kids'],
                'the twin to verify with the new AWSCURRENT key (kid %s) only' % new_kid)
        return {'injected_at': injected_at, 'secret_id': C.JWT_SECRET_ID, 'new_version_id': new_version,
                'new_kid': new_kid, 'signing_kid': signing_kid, 'previous_removed_from': removed_from,
                'twin_wait_seconds': waited,
                'summary': 'secret %s: new AWSCURRENT version %s (kid %s)%s; the twin still signs with kid %s, '
                           'which is neither AWSCURRENT nor AWSPREVIOUS' % (
                               C.JWT_SECRET_ID, new_version, new_kid,
                               ', AWSPREVIOUS removed from version %s' % removed_from if removed_from else '',
                               signing_kid)}

    def _inject_idp_cert_expired(self, name, wait=True):
        """Replace the IdP stand-in's certificate by one that expired IDP_EXPIRED_DAYS_AGO days ago."""
        cert = auth.new_expired_idp_cert(self.state_dir)
        injected_at = utc_iso()
        waited = None
        if wait and self.twin_running():
            waited = self._wait_twin_auth(lambda a: a['idp_cert'].get('not_after') == cert['not_after'],
                                          'the twin to read the expired IdP certificate')
        return {'injected_at': injected_at, 'certificate': cert, 'twin_wait_seconds': waited,
                'summary': 'the IdP stand-in\'s signing certificate now expired on %s (%s)'
                           % (cert['not_after'], self.path(C.IDP_CERT_FILE))}

    def _inject_user_table_denied(self, name):
        """REVOKE SELECT ON public.users FROM the API's role."""
        info = self._require_db(name)
        try:
            db_mod.set_users_privilege(info, False)
            allowed = db_mod.users_privilege(info)
        except db_mod.DatabaseError as exc:
            raise SandboxError(str(exc))
        if allowed:
            raise SandboxError('after REVOKE the role %s can still SELECT from %s (a grant to PUBLIC or a role it '
                               'is member of?)' % (info['app_user'], C.USERS_TABLE))
        return {'injected_at': utc_iso(), 'database': info['database'], 'app_user': info['app_user'],
                'table': C.USERS_TABLE,
                'summary': 'REVOKE SELECT ON %s FROM %s in %s' % (C.USERS_TABLE, info['app_user'], info['database'])}

    def redis_start(self):
        """`redis-start`: start the sandbox's redis-server on its recorded port unless it runs; bounded
        wait for PING. -> {already_running, pid, port}. Raises SandboxError (port taken, no sandbox ...)."""
        if not (self.moto_running() or self.twin_running()):
            raise SandboxError('the sandbox in %s is not running (no live moto_server or twin): run `start`, '
                               'which starts redis-server too' % self.state_dir)
        recorded = self._recorded_ports()
        port = self.redis_port if self._redis_port_explicit else recorded.get('redis_port')
        if not port:
            raise SandboxError('no sandbox recorded in %s (ports.json is missing): run `start` first' % self.state_dir)
        self.redis_port = int(port)
        if self.redis_running():
            try:
                if self.redis_client(timeout=2.0).ping():
                    return {'already_running': True, 'pid': self.redis_pid(), 'port': self.redis_port}
            except Exception as exc:
                raise SandboxError('redis-server pid %d runs but does not answer PING on %s:%d: %s'
                                   % (self.redis_pid(), C.HOST, self.redis_port, exc))
        if os.path.exists(self.path('redis.pid')):  # a redis-server that is gone
            os.remove(self.path('redis.pid'))
        if not os.path.exists(C.REDIS_SERVER):
            raise SandboxError('%s not found (install the redis-server package)' % C.REDIS_SERVER)
        if not port_free(self.redis_port):
            raise SandboxError('port %d (the sandbox\'s redis-server) is taken by another process on %s; the '
                               'service twin uses that port, so free it (this command will not pick another)'
                               % (self.redis_port, C.HOST))
        self._start_redis()
        return {'already_running': False, 'pid': self.redis_pid(), 'port': self.redis_port}

    def _heal_auth(self, actions, wait):
        """The authentication part of heal: the users grant, the IdP certificate, the JWT signing key."""
        info = self.db_info() or {}
        if info.get('enabled'):
            try:
                if not db_mod.users_privilege(info):
                    db_mod.set_users_privilege(info, True)
                    actions.append('GRANT SELECT ON %s TO %s' % (C.USERS_TABLE, info['app_user']))
            except db_mod.DatabaseError as exc:
                raise SandboxError(str(exc))
        if not auth.idp_cert_valid(self.state_dir):
            cert = auth.new_valid_idp_cert(self.state_dir)
            actions.append('IdP certificate renewed (valid until %s)' % cert['not_after'])
            if wait and self.twin_running():
                self._wait_twin_auth(lambda a: a['idp_cert'].get('sha256_fingerprint') == cert['sha256_fingerprint'],
                                     'the twin to read the renewed IdP certificate')
        if not self.twin_running():
            return
        sm = self.boto('secretsmanager')
        stages = self._secret_stages(sm)
        current_kid = self._secret_kid(sm, stages['AWSCURRENT']) if 'AWSCURRENT' in stages else None
        state = self._twin_auth()
        if current_kid and state.get('signing_kid') == current_kid and current_kid in state['verification_kids']:
            return
        value = auth.new_secret_like(self._secret_value(sm, stages['AWSCURRENT']) if 'AWSCURRENT' in stages
                                     else None)
        new_kid = auth.load_key(value).kid
        sm.put_secret_value(SecretId=C.JWT_SECRET_ID, SecretString=value)
        self.boto('ecs').update_service(cluster=C.CLUSTER, service=C.SERVICE, forceNewDeployment=True)
        actions.append('JWT signing key: new AWSCURRENT (kid %s) and a forced new deployment (the twin signed '
                       'with kid %s)' % (new_kid, state.get('signing_kid')))
        if wait:
            self._wait_twin_auth(lambda a: a['signing_kid'] == new_kid and new_kid in a['verification_kids']
                                 and new_kid in a['jwks_kids'], 'the twin to sign with the new key (kid %s)' % new_kid)

    def _ttl_value(self, ssm):
        try:
            return ssm.get_parameter(Name=C.CACHE_TTL_PARAMETER)['Parameter']['Value']
        except ssm.exceptions.ParameterNotFound:
            return None

    def _wait_twin_ttl(self, ttl, timeout=SWITCH_TIMEOUT):
        """Wait until the twin reports cache TTL `ttl`. -> seconds waited, or None without a twin."""
        if not self.twin_running():
            return None
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                state = http_json(self.twin_url + '/twin/state?window=1', timeout=2)[1]
                if state and state.get('cache', {}).get('ttl_seconds') == ttl:
                    return round(time.monotonic() - t0, 2)
            except Exception:
                pass
            time.sleep(0.2)
        raise SandboxError('the service twin did not pick up cache TTL %d s within %.0fs (see %s)'
                           % (ttl, timeout, self.path('twin.log')))

    def heal(self, wait=True):
        """Undo every fault: stop the lock holder, restart redis-server on its port, restore the cache
        TTL and desiredCount, point the service back at the newest ACTIVE revision without a fault
        marker, GRANT SELECT on the users table again, renew an invalid IdP certificate, and when the
        twin does not sign with the AWSCURRENT key put a new key and force a new deployment. Stripe:
        restart a dead stand-in, un-revoke every API key, and when the API does not verify webhooks with
        the endpoint's secret restore it as AWSCURRENT and redeploy (undelivered events stay undelivered:
        heal restores behaviour, it does not replay)."""
        self._require_moto()
        actions = []
        pid, stopped = self._stop_one(C.LOCK_HOLDER_FILE, LOCK_HOLDER_MARKER)
        if stopped != 'not running':
            actions.append('lock holder (pid %d) %s' % (pid, stopped))
        if not self.redis_running():
            started = self.redis_start()
            actions.append('redis-server restarted on port %d (pid %d)' % (started['port'], started['pid']))
        ssm = self.boto('ssm')
        ttl = self._ttl_value(ssm)
        if ttl != str(C.GOOD_CACHE_TTL):
            ssm.put_parameter(Name=C.CACHE_TTL_PARAMETER, Value=str(C.GOOD_CACHE_TTL), Type='String',
                              Overwrite=True)
            actions.append('cache TTL %s -> %d s' % (ttl, C.GOOD_CACHE_TTL))
        svc = self.service()
        current = aws.normalise_task_definition(svc['taskDefinition'])
        good = self._newest_good()
        if svc.get('desiredCount') != C.DESIRED_COUNT:
            self.boto('ecs').update_service(cluster=C.CLUSTER, service=C.SERVICE, desiredCount=C.DESIRED_COUNT)
            actions.append('desiredCount %s -> %d' % (svc.get('desiredCount'), C.DESIRED_COUNT))
        res = {'task_definition': good['name'], 'twin_switch_seconds': None}
        if current != good['name']:
            self._point_service_at(good['arn'])
            actions.append('task definition %s -> %s' % (current, good['name']))
            res['from'] = current
            res['twin_switch_seconds'] = self._wait_twin_on(good['name']) if wait else None
        if wait and ttl != str(C.GOOD_CACHE_TTL):
            self._wait_twin_ttl(C.GOOD_CACHE_TTL)
        self._heal_auth(actions, wait)
        if self.payments:
            self._heal_stripe(actions, wait)
        try:
            os.remove(self.path('injected_at'))
        except FileNotFoundError:
            pass
        res.update(changed=bool(actions), actions=actions)
        return res

    def injected_at(self):
        try:
            with open(self.path('injected_at')) as fh:
                return fh.read().strip() or None
        except OSError:
            return None

    # ----------------------------------------------------------------- status
    def status(self, window=C.STATUS_WINDOW):
        moto_up, twin_up = self.moto_running(), self.twin_running()
        receiver_up, redis_up = self.receiver_running(), self.redis_running()
        stripe_up = self.stripe_running()
        info = self.db_info() or {}
        holder_pid = self.lock_holder_pid()
        st = {
            'state_dir': self.state_dir,
            'running': moto_up and twin_up and receiver_up and redis_up and (stripe_up or not self.payments),
            'payments_enabled': self.payments,
            'processes': {
                'moto': {'up': moto_up, 'pid': self.moto_pid(), 'port': self.moto_port,
                         'endpoint': self.moto_endpoint, 'log': self.path('moto.log')},
                'twin': {'up': twin_up, 'pid': self.twin_pid(), 'port': self.twin_port,
                         'url': self.twin_url, 'log': self.path('twin.log')},
                'receiver': {'up': receiver_up, 'pid': self.receiver_pid(), 'port': self.receiver_port,
                             'url': self.receiver_url, 'log': self.path('receiver.log'),
                             'notifications': len(self.notifications()),
                             'notifications_file': self.notifications_file},
                'stripe': {'up': stripe_up, 'pid': self.stripe_pid(), 'port': self.stripe_port,
                           'url': self.stripe_url, 'log': self.path('stripe.log')},
                'redis': {'up': redis_up, 'pid': self.redis_pid(), 'port': self.redis_port,
                          'url': 'redis://%s:%d/0' % (C.HOST, self.redis_port), 'log': self.path('redis.log')},
            },
            'database': {'enabled': bool(info.get('enabled')), 'host': info.get('host'), 'port': info.get('port'),
                         'database': info.get('database'), 'app_user': info.get('app_user'),
                         'batch_user': info.get('batch_user'), 'error': info.get('error')},
            'lock_holder': {'pid': holder_pid, 'running': self.lock_holder_running(),
                            'log': self.path(C.LOCK_HOLDER_FILE + '.log')},
            'desired_count': None,
            'stripe': self.stripe_status(),
            'cache': None,
            'db': None,
            'connection_file': self.connection_file if os.path.exists(self.connection_file) else None,
            'injected_at': self.injected_at(),
            'service': None,
            'twin': None,
            'errors': [],
        }
        if moto_up:
            try:
                svc = self.service()
                current = aws.normalise_task_definition(svc['taskDefinition'])
                revs = {r['name']: r for r in self.revisions()}
                rev = revs.get(current) or {}
                st['service'] = {
                    'cluster': C.CLUSTER, 'name': C.SERVICE,
                    'task_definition': current,
                    'task_definition_raw': svc['taskDefinition'],
                    'fault': rev.get('fault'),
                    'bad_revision': bool(rev.get('fault')),
                    'revision_status': rev.get('status'),
                    'version': rev.get('version'),
                    'desired': svc.get('desiredCount'), 'running': svc.get('runningCount'),
                    'pending': svc.get('pendingCount'),
                    'deployments': [{'id': d.get('id'), 'status': d.get('status'),
                                     'taskDefinition': aws.normalise_task_definition(d.get('taskDefinition')),
                                     'rolloutState': d.get('rolloutState'),
                                     'createdAt': d['createdAt'].isoformat() if d.get('createdAt') else None}
                                    for d in svc.get('deployments', [])],
                    'revisions': [{k: r[k] for k in ('name', 'status', 'fault', 'version')}
                                  for r in revs.values()],
                }
                st['desired_count'] = svc.get('desiredCount')
                ttl = self._ttl_value(self.boto('ssm'))
                st['service']['cache_ttl_parameter'] = {'name': C.CACHE_TTL_PARAMETER, 'value': ttl}
            except Exception as exc:
                st['errors'].append('moto: %s: %s' % (type(exc).__name__, exc))
        if twin_up:
            try:
                st['twin'] = http_json(self.twin_url + '/twin/state?window=%g' % window, timeout=3)[1]
                st['cache'] = st['twin'].get('cache')
                st['db'] = st['twin'].get('db')
                st['payments'] = st['twin'].get('payments')
            except Exception as exc:
                st['errors'].append('twin: %s: %s' % (type(exc).__name__, exc))
        return st
