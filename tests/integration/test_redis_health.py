"""redis_health against real redis-server processes of our own.

Each fixture starts ``redis-server`` on a free loopback port (no persistence)
and stops it by PID in its finaliser; the machine's Redis on 6379 is never
touched. The test causes what the module must see - 30 hits and 70 misses
during the sample, evictions at maxmemory, slow commands with secret values -
and checks the module's numbers against that and against the server itself
(INFO commandstats, SCAN). Faults: nothing listening, wrong/no password, a TCP
server that accepts and never answers, a port that answers HTTP, a replica
that refuses writes, a server at maxmemory with noeviction.
"""

import os
import re
import secrets
import socket
import subprocess
import threading
import time
import uuid

import pytest
import redis

from tests.helpers.modules import assert_no_traceback, run_module
from tests.helpers.servers import free_port, stop_pid

CANARY_PREFIX = 'svpms:incident-canary:'
CHECK_MODE_SKIP = 'check mode: the canary writes a key'
COMMAND_RE = re.compile(r'^[A-Z?][A-Z0-9_|.-]* \(\d+ args?\)$')


class RedisServer:
    def __init__(self, log_dir, *extra, password=None):
        self.port = free_port()
        self.password = password
        self.args = ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                     '--appendonly', 'no', '--daemonize', 'no'] + list(extra)
        if password:
            self.args += ['--requirepass', password]
        self.log_path = os.path.join(log_dir, 'redis-%d.log' % self.port)
        self.proc = None

    def start(self):
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return self
            except redis.RedisError as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError('redis-server on port %d did not answer within 10 s: %s (log %s)'
                                       % (self.port, exc, self.log_path))
                time.sleep(0.05)

    def client(self):
        return redis.Redis(host='127.0.0.1', port=self.port, password=self.password, decode_responses=True,
                           socket_timeout=5, socket_connect_timeout=5, protocol=2)

    def stop(self):
        if self.proc:
            stop_pid(self.proc)

    def args_for_module(self, **kwargs):
        args = dict(host='127.0.0.1', port=self.port, connect_timeout=2, socket_timeout=2, sample_seconds=0)
        if self.password:
            args['password'] = self.password
        args.update(kwargs)
        return args


def start_server(tmp_path_factory, *extra, password=None):
    return RedisServer(str(tmp_path_factory.mktemp('redis')), *extra, password=password).start()


@pytest.fixture(scope='module')
def plain(tmp_path_factory):
    server = start_server(tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope='module')
def secured(tmp_path_factory):
    server = start_server(tmp_path_factory, password='pw-' + secrets.token_hex(12))
    yield server
    server.stop()


@pytest.fixture(scope='module')
def lru(tmp_path_factory):
    server = start_server(tmp_path_factory, '--maxmemory', '2mb', '--maxmemory-policy', 'allkeys-lru')
    yield server
    server.stop()


def run(args, check=False, secrets_=()):
    result = run_module('redis_health', args, check=check)
    assert_no_traceback(result)
    for secret in secrets_:
        assert secret not in result.stdout and secret not in result.stderr, 'secret leaked'
    return result


class Background:
    """Run the module in a thread; wait until its first INFO snapshot is taken."""

    def __init__(self, server, args):
        self.server = server
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(args,), daemon=True)

    def _run(self, args):
        try:
            self.result = run(args)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def start(self):
        self.thread.start()
        return self

    def wait_first_snapshot(self, timeout=15):
        """The module's connection shows cmd=info once the first INFO ran (it then sleeps the sample)."""
        client = self.server.client()
        own = client.client_id()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(c.get('cmd') == 'info' and int(c['id']) != own for c in client.client_list()):
                return
            if not self.thread.is_alive():
                break
            time.sleep(0.01)
        raise AssertionError('the module took no INFO snapshot within %s s (%s)' % (timeout, self.error))

    def join(self, timeout=30):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), 'module still running after %s s' % timeout
        if self.error:
            raise self.error
        return self.result


def calls(client, command):
    return int(client.info('commandstats').get('cmdstat_%s' % command, {}).get('calls', 0))


def canary_keys(client):
    return list(client.scan_iter(match=CANARY_PREFIX + '*', count=1000))


# --- measurements ------------------------------------------------------------------

def test_hit_rate_over_the_sample_is_what_the_test_caused(plain):
    client = plain.client()
    prefix = 'it:hits:%s:' % uuid.uuid4().hex
    for i in range(30):
        client.set(prefix + str(i), 'v', ex=60)
    job = Background(plain, plain.args_for_module(sample_seconds=2, min_hit_rate_pct=80)).start()
    job.wait_first_snapshot()
    pipe = client.pipeline(transaction=False)
    for i in range(30):
        pipe.get(prefix + str(i))          # 30 hits
    for i in range(70):
        pipe.get(prefix + 'missing:%d' % i)  # 70 misses
    pipe.execute()
    result = job.join()
    assert not result.failed and result['reachable'] is True and result['changed'] is False
    assert result['sample']['hits'] == 30 and result['sample']['misses'] == 70
    assert result['hit_rate_pct'] == 30.0
    assert result['evictions_in_sample'] == 0
    assert 1.9 <= result['sample_seconds'] <= 4
    assert result['ops_per_sec'] > 0
    assert 'hit rate 30% over 2 s is below 80%' in result['problems']
    assert result['msg'].startswith('Redis %s (master) at 127.0.0.1:%d: ' % (result['redis_version'], plain.port))
    assert result['ping']['count'] == 5
    assert 0 < result['ping']['min_ms'] <= result['ping']['avg_ms'] <= result['ping']['max_ms']
    info = client.info()
    assert result['keyspace_hits'] <= info['keyspace_hits']
    assert result['hit_rate_pct_lifetime'] is not None
    assert result['role'] == 'master' and result['redis_version'] == info['redis_version']
    # no maxmemory on this server: no percentage, and the module says why
    assert result['maxmemory_bytes'] == 0 and result['memory_pct'] is None
    assert any('maxmemory is 0 (no limit)' in note for note in result['notes'])


def test_evictions_and_memory_at_maxmemory(lru):
    client = lru.client()
    job = Background(lru, lru.args_for_module(sample_seconds=2, max_memory_pct=50)).start()
    job.wait_first_snapshot()
    evicted_before = client.info('stats')['evicted_keys']
    pipe = client.pipeline(transaction=False)
    for i in range(400):                      # ~4 MB into a 2 MB server
        pipe.set('it:lru:%d' % i, 'x' * 10000)
    pipe.execute()
    caused = client.info('stats')['evicted_keys'] - evicted_before
    assert caused > 0
    result = job.join()
    assert not result.failed and result['reachable'] is True
    assert result['evictions_in_sample'] == caused
    assert 'evicted %d keys in 2 s' % caused in result['problems']
    assert result['maxmemory_bytes'] == 2 * 1024 * 1024
    assert result['maxmemory_policy'] == 'allkeys-lru'
    assert result['memory_pct'] == round(100.0 * result['used_memory_bytes'] / result['maxmemory_bytes'], 1)
    assert result['memory_pct'] >= 50
    assert any(p.startswith('memory ') and p.endswith('% of maxmemory') for p in result['problems'])
    assert result['evicted_keys'] >= caused


def test_slowlog_shows_commands_without_their_values(plain):
    client = plain.client()
    token = 'session-token-' + secrets.token_hex(16)
    client.config_set('slowlog-log-slower-than', 0)
    try:
        client.slowlog_reset()
        client.set('session:%s' % uuid.uuid4().hex, token, ex=60)
        client.hset('it:slow:%s' % uuid.uuid4().hex, mapping={'user': token, 'csrf': token})
        result = run(plain.args_for_module(slowlog_count=128), secrets_=(token,))
    finally:
        client.config_set('slowlog-log-slower-than', 10000)
    assert not result.failed and result['reachable'] is True
    slowlog = result['slowlog']
    assert slowlog, result
    for entry in slowlog:
        assert set(entry) >= {'id', 'started_at', 'duration_ms', 'command'}
        assert COMMAND_RE.match(entry['command']), entry
        assert entry['started_at'].endswith('Z')
    commands = [e['command'] for e in slowlog]
    assert 'SET (4 args)' in commands         # SET key value EX 60
    assert 'HSET (5 args)' in commands
    durations = [e['duration_ms'] for e in slowlog]
    assert durations == sorted(durations, reverse=True)
    assert 'session:' not in result.stdout
    top = run(plain.args_for_module(slowlog_count=2))['slowlog']
    assert len(top) == 2


# --- canary --------------------------------------------------------------------------

def test_canary_writes_reads_and_leaves_nothing_behind(plain):
    client = plain.client()
    sets, dels = calls(client, 'set'), calls(client, 'del')
    result = run(plain.args_for_module(canary=True, canary_ttl_seconds=45))
    assert not result.failed and result['changed'] is False
    canary = result['canary']
    assert canary['ok'] is True, canary
    assert canary['error'] is None and canary['cleanup'] == 'deleted'
    assert canary['key'].startswith(CANARY_PREFIX)
    assert canary['key_ttl_seconds'] == 45
    assert canary['write_ms'] > 0 and canary['read_ms'] > 0
    assert calls(client, 'set') == sets + 1 and calls(client, 'del') == dels + 1
    assert canary_keys(client) == []
    assert client.exists(canary['key']) == 0
    assert not any(p.startswith('canary') for p in result['problems'])


def test_canary_is_skipped_in_check_mode_and_writes_nothing(plain):
    client = plain.client()
    sets, dels, gets = calls(client, 'set'), calls(client, 'del'), calls(client, 'get')
    result = run(plain.args_for_module(canary=True), check=True)
    assert not result.failed and result['changed'] is False and result['reachable'] is True
    assert result['canary'] == {'skipped': CHECK_MODE_SKIP}
    assert (calls(client, 'set'), calls(client, 'del'), calls(client, 'get')) == (sets, dels, gets)
    assert canary_keys(client) == []
    assert result['ping']['count'] == 5  # the read-only checks still ran


def test_canary_on_a_read_only_replica_is_a_finding(tmp_path_factory):
    replica = start_server(tmp_path_factory, '--replicaof', '127.0.0.1', str(free_port()))
    try:
        result = run(replica.args_for_module(canary=True))
    finally:
        replica.stop()
    assert not result.failed and result['reachable'] is True
    assert result['role'] == 'slave'
    assert result['canary']['ok'] is False
    assert result['canary']['error'].startswith('READONLY')
    assert result['canary']['cleanup'] == 'nothing written'
    assert any(p.startswith('canary failed: READONLY') for p in result['problems'])
    assert any(p.startswith('replica link to master') for p in result['problems'])


def test_canary_at_maxmemory_with_noeviction_is_a_finding(plain):
    client = plain.client()
    client.config_set('maxmemory', 1)
    try:
        result = run(plain.args_for_module(canary=True))
    finally:
        client.config_set('maxmemory', 0)
    assert not result.failed and result['reachable'] is True
    assert result['canary']['ok'] is False and result['canary']['error'].startswith('OOM')
    assert any(p.startswith('canary failed: OOM') for p in result['problems'])
    assert any('policy noeviction' in p for p in result['problems'])
    assert canary_keys(client) == []


# --- faults ---------------------------------------------------------------------------

def test_nothing_listening_is_unreachable():
    result = run(dict(host='127.0.0.1', port=free_port(), connect_timeout=2, socket_timeout=2, canary=True))
    assert not result.failed and result['changed'] is False
    assert result['reachable'] is False and result['error_kind'] == 'unreachable'
    assert 'Connection refused' in result['msg'] and 'redis-server is running' in result['msg']
    assert result['canary']['ok'] is False
    assert result['memory_pct'] is None and result['slowlog'] is None


def test_wrong_password_is_auth_failed_and_never_shown(secured):
    wrong = 'wrong-' + secrets.token_hex(8)
    result = run(secured.args_for_module(password=wrong), secrets_=(wrong, secured.password))
    assert not result.failed
    assert result['reachable'] is False and result['error_kind'] == 'auth_failed'
    assert 'WRONGPASS' in result['msg']


def test_missing_password_is_auth_failed(secured):
    args = secured.args_for_module()
    del args['password']
    result = run(args, secrets_=(secured.password,))
    assert result['reachable'] is False and result['error_kind'] == 'auth_failed'
    assert 'NOAUTH' in result['msg'] and 'REDISCLI_AUTH' in result['msg']


def test_right_password_from_redicli_auth(secured, monkeypatch):
    args = secured.args_for_module()
    del args['password']
    monkeypatch.setenv('REDISCLI_AUTH', secured.password)
    result = run(args, secrets_=(secured.password,))
    assert result['reachable'] is True and result['error_kind'] is None


@pytest.fixture
def tcp_server():
    """A TCP server on a free port that accepts and then either says nothing or answers HTTP."""
    servers = []

    def start(reply=None):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(('127.0.0.1', 0))
        sock.listen(8)
        held = []

        def serve():
            while True:
                try:
                    conn = sock.accept()[0]
                except OSError:
                    return
                held.append(conn)
                if reply:
                    conn.recv(1024)
                    conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        servers.append((sock, held))
        return sock.getsockname()[1]

    yield start
    for sock, held in servers:
        sock.close()
        for conn in held:
            conn.close()


def test_server_that_never_answers_is_a_timeout(tcp_server):
    port = tcp_server()
    started = time.monotonic()
    result = run(dict(host='127.0.0.1', port=port, connect_timeout=1, socket_timeout=1))
    elapsed = time.monotonic() - started
    assert not result.failed
    assert result['reachable'] is False and result['error_kind'] == 'timeout'
    assert 'socket_timeout=1.0s' in result['msg']
    assert elapsed < 6, elapsed  # one socket_timeout plus interpreter start, no retries


def test_port_that_is_not_redis_is_a_protocol_finding(tcp_server):
    port = tcp_server(reply=b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')
    result = run(dict(host='127.0.0.1', port=port, connect_timeout=1, socket_timeout=1))
    assert not result.failed
    assert result['reachable'] is False and result['error_kind'] == 'protocol'
    assert 'not Redis' in result['msg']


def test_bad_input_names_the_option(plain):
    result = run(plain.args_for_module(ping_count=0, canary_prefix='sv pms*'))
    assert result.failed
    assert 'ping_count must be between 1 and 100' in result['msg']
    assert 'canary_prefix must be' in result['msg']
