"""The Sandbox: start/stop/status/inject/heal of moto_server + the service twin, by PID."""

import datetime
import json
import os
import socket
import subprocess
import sys
import time

from . import aws
from . import constants as C
from . import seed as seed_mod
from .procs import (SandboxError, http, http_json, pid_alive, port_free, read_pid, stop_pid,
                    tail, wait_http, write_pid)

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../sandbox
MOTO_MARKER = 'moto_server'
TWIN_MARKER = 'svpms_sandbox'
MOTO_START_TIMEOUT = 20.0
TWIN_START_TIMEOUT = 15.0
RECEIVER_MARKER = 'svpms_sandbox'
RECEIVER_START_TIMEOUT = 10.0
SWITCH_TIMEOUT = 10.0


class UsageError(SandboxError):
    """A bad request from the caller (e.g. unknown fault name): exit code 2."""


def utc_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


class Sandbox:
    """A local stand-in for SVPMS production: moto_server + the service twin.

    state_dir holds moto.pid, twin.pid, ports.json, moto.log, twin.log,
    connection.yml and injected_at. Ports: explicit arguments win; otherwise the
    ports of the sandbox running from state_dir; otherwise the defaults.
    """

    def __init__(self, state_dir=C.DEFAULT_STATE_DIR, moto_port=None, twin_port=None, out=None,
                 receiver_port=None):
        self.state_dir = os.path.abspath(state_dir)
        # ports of a running sandbox in this state dir (ignored once it is stopped)
        recorded = self._recorded_ports() if (self.moto_running() or self.twin_running()
                                              or self.receiver_running()) else {}
        self.moto_port = int(moto_port or recorded.get('moto_port') or C.DEFAULT_MOTO_PORT)
        self.twin_port = int(twin_port or recorded.get('twin_port') or C.DEFAULT_TWIN_PORT)
        # the notification receiver: an explicit port must be free; the default one is
        # replaced by a free port when busy (see _ensure_receiver)
        self._receiver_port_explicit = bool(receiver_port)
        self.receiver_port = int(receiver_port or recorded.get('receiver_port') or C.DEFAULT_RECEIVER_PORT)
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
        return {'moto_port': self.moto_port, 'twin_port': self.twin_port, 'receiver_port': self.receiver_port}

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
                '--moto-port', str(self.moto_port), '--twin-port', str(self.twin_port), 'twin']
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
        return {
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
        }

    def _write_connection(self):
        # JSON is valid YAML: usable as `-e @connection.yml` without PyYAML.
        tmp = self.connection_file + '.tmp'
        with open(tmp, 'w') as fh:
            fh.write('# written by `python -m svpms_sandbox start`; JSON is valid YAML\n')
            fh.write('# svpms_pagerduty_routing_key, svpms_pagerduty_api_token, svpms_slack_token and '
                     'svpms_statuspage_api_key are sandbox placeholders, not secrets\n')
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
            if wanted != (self.moto_port, self.twin_port):
                self._say('note: the sandbox in %s was started on ports %d/%d; keeping them '
                          '(stop it first to change ports)' % (self.state_dir, self.moto_port, self.twin_port))
        if self.receiver_running() and recorded.get('receiver_port'):
            self.receiver_port = int(recorded['receiver_port'])
        if moto_up and twin_up:
            self._ensure_receiver()
            with open(self.path('ports.json'), 'w') as fh:
                json.dump(self._ports(), fh)
            self._write_connection()
            return {'already_running': True, 'moto_pid': self.moto_pid(), 'twin_pid': self.twin_pid(),
                    'receiver_pid': self.receiver_pid(), 'connection_file': self.connection_file}
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
                self._start_moto()
                with open(self.path('ports.json'), 'w') as fh:
                    json.dump(self._ports(), fh)
                self._say('seeding moto (VPC, ECS cluster/task definitions/service, Logs, SSM flags)')
                seed_mod.seed(self.moto_port)
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
        return {'already_running': False, 'moto_pid': self.moto_pid(), 'twin_pid': self.twin_pid(),
                'receiver_pid': self.receiver_pid(), 'connection_file': self.connection_file}

    def stop(self):
        """Stop twin then moto by PID; remove pid files and connection.yml. Idempotent.

        -> {name: (pid, result)}, result one of not running / stopped / killed.
        """
        result = {}
        for name, marker in (('receiver', RECEIVER_MARKER), ('twin', TWIN_MARKER), ('moto', MOTO_MARKER)):
            result[name] = self._stop_one(name, marker)
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
        """Deploy a bad revision carrying fault `name`. -> dict (see CLI output)."""
        if name not in C.FAULTS:
            raise UsageError('unknown fault %r; allowed: %s' % (name, ', '.join(sorted(C.FAULTS))))
        self._require_moto()
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
        with open(self.path('injected_at'), 'w') as fh:
            fh.write(injected_at + '\n')
        switched = self._wait_twin_on(new_name) if wait else None
        return {'fault': name, 'injected_at': injected_at, 'from': current,
                'based_on': '%s:%d' % (base['family'], base['revision']),
                'task_definition': new_name, 'task_definition_arn': td['taskDefinitionArn'],
                'twin_switch_seconds': switched}

    def heal(self, wait=True):
        """Point the service back at the newest ACTIVE revision without a fault marker."""
        self._require_moto()
        current = aws.normalise_task_definition(self.service()['taskDefinition'])
        good = self._newest_good()
        if current == good['name']:
            return {'changed': False, 'task_definition': current}
        self._point_service_at(good['arn'])
        switched = self._wait_twin_on(good['name']) if wait else None
        try:
            os.remove(self.path('injected_at'))
        except FileNotFoundError:
            pass
        return {'changed': True, 'from': current, 'task_definition': good['name'],
                'twin_switch_seconds': switched}

    def injected_at(self):
        try:
            with open(self.path('injected_at')) as fh:
                return fh.read().strip() or None
        except OSError:
            return None

    # ----------------------------------------------------------------- status
    def status(self, window=C.STATUS_WINDOW):
        moto_up, twin_up = self.moto_running(), self.twin_running()
        receiver_up = self.receiver_running()
        st = {
            'state_dir': self.state_dir,
            'running': moto_up and twin_up and receiver_up,
            'processes': {
                'moto': {'up': moto_up, 'pid': self.moto_pid(), 'port': self.moto_port,
                         'endpoint': self.moto_endpoint, 'log': self.path('moto.log')},
                'twin': {'up': twin_up, 'pid': self.twin_pid(), 'port': self.twin_port,
                         'url': self.twin_url, 'log': self.path('twin.log')},
                'receiver': {'up': receiver_up, 'pid': self.receiver_pid(), 'port': self.receiver_port,
                             'url': self.receiver_url, 'log': self.path('receiver.log'),
                             'notifications': len(self.notifications()),
                             'notifications_file': self.notifications_file},
            },
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
            except Exception as exc:
                st['errors'].append('moto: %s: %s' % (type(exc).__name__, exc))
        if twin_up:
            try:
                st['twin'] = http_json(self.twin_url + '/twin/state?window=%g' % window, timeout=3)[1]
            except Exception as exc:
                st['errors'].append('twin: %s: %s' % (type(exc).__name__, exc))
        return st
