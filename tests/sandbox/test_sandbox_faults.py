"""The sandbox's scenario-2 (high latency) faults, against real backends.

One sandbox on free loopback ports (moto_server, the twin, its own
redis-server, a database and two roles on the machine's PostgreSQL), shared by
the tests in file order: healthy -> lock_contention, ended by terminating the
holder's backend as the runbook would -> cache_miss_storm, ended by putting the
TTL parameter back -> slow_deploy, ended by scaling out -> everything at once,
ended by `heal` -> `stop` drops the database and roles and frees the Redis
port. A second, short-lived sandbox points at a port where no PostgreSQL
listens. Latency and hit rate are read from the twin's /twin/state window,
database state from pg_stat_activity, AWS state from moto.
"""
import datetime
import json
import os
import subprocess
import sys
import time

import psycopg2
import pytest
import yaml

from tests.helpers.servers import REPO, free_port
from tests.helpers.waits import until

SANDBOX_DIR = os.path.join(REPO, 'sandbox')
sys.path.insert(0, SANDBOX_DIR)

from svpms_sandbox import Sandbox, SandboxError, UsageError  # noqa: E402
from svpms_sandbox import constants as C  # noqa: E402
from svpms_sandbox.procs import http_json, pid_alive, port_free  # noqa: E402

PG_ADMIN = dict(host=os.environ.get(C.PG_HOST_ENV) or C.PG_DEFAULT_HOST,
                port=int(os.environ.get(C.PG_PORT_ENV) or C.PG_DEFAULT_PORT),
                user=os.environ.get(C.PG_ADMIN_ENV) or C.PG_DEFAULT_ADMIN, connect_timeout=3)
ECS_DIMS = [{'Name': 'ClusterName', 'Value': C.CLUSTER}, {'Name': 'ServiceName', 'Value': C.SERVICE}]


def twin(box, window):
    status, state = http_json(box.twin_url + '/twin/state?window=%g' % window, timeout=5)
    assert status == 200
    return state


def window_where(box, window, pred, timeout, what, min_requests=10):
    """Wait until the twin's last-`window`-seconds numbers satisfy pred; -> that state."""
    def check():
        st = twin(box, window)
        w = st['window']
        return st if w['requests'] >= min_requests and w['p95_ms'] is not None and pred(st) else None
    return until(check, timeout, what=what)


def p95(st):
    return st['window']['p95_ms']


def hit_rate(st):
    return st['cache']['hit_rate_pct'] or 0.0


def pg(sql, args=(), dbname='postgres'):
    conn = psycopg2.connect(dbname=dbname, application_name='svpms-sandbox-test', **PG_ADMIN)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def cpu_max_since(box, since):
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    resp = box.boto('cloudwatch').get_metric_data(
        MetricDataQueries=[{'Id': 'cpu', 'MetricStat': {
            'Metric': {'Namespace': 'AWS/ECS', 'MetricName': 'CPUUtilization', 'Dimensions': ECS_DIMS},
            'Period': 60, 'Stat': 'Maximum'}}],
        StartTime=since, EndTime=end)
    values = resp['MetricDataResults'][0]['Values']
    return max(values) if values else None


def cli(state_dir, *args, env=None):
    run_env = dict(os.environ, PYTHONPATH=SANDBOX_DIR, **(env or {}))
    return subprocess.run([sys.executable, '-m', 'svpms_sandbox', '--state-dir', state_dir] + list(args),
                          capture_output=True, text=True, env=run_env, timeout=60, check=False)


def test_fresh_sandbox_is_fast_and_cached(box):
    st = window_where(box, 5, lambda s: True, 15, '5 s of traffic', min_requests=40)
    assert p95(st) < 500 and hit_rate(st) >= 90, st['window']
    assert st['window']['errors_5xx'] == 0 and st['db']['lock_timeouts']['window'] == 0
    assert st['cache']['ttl_seconds'] == C.GOOD_CACHE_TTL and st['cache']['redis_reachable'] is True
    assert st['db']['enabled'] and st['db']['reachable'] and st['db']['database'] == 'svpms_sandbox_%d' % box.twin_port
    assert st['desired_count'] == 3 and st['lock_holder']['running'] is False
    # connection.yml: the database, Redis and TTL keys the high-latency runbook uses
    with open(box.connection_file) as fh:
        conn = yaml.safe_load(fh)
    app, batch = 'svpms_sbx_%d_app' % box.twin_port, 'svpms_sbx_%d_batch' % box.twin_port
    assert {k: v for k, v in conn.items() if k.startswith(('svpms_db_', 'svpms_redis_', 'svpms_cache_'))} == {
        'svpms_db_host': PG_ADMIN['host'], 'svpms_db_port': PG_ADMIN['port'],
        'svpms_db_name': 'svpms_sandbox_%d' % box.twin_port, 'svpms_db_user': PG_ADMIN['user'],
        'svpms_db_app_users': [app, batch], 'svpms_db_enabled': True, 'svpms_db_app_user': app,
        'svpms_redis_host': '127.0.0.1', 'svpms_redis_port': box.redis_port,
        'svpms_redis_restart_command': box.redis_restart_command(),
        'svpms_cache_ttl_parameter': '/svpms/sandbox/config/cache_ttl_seconds', 'svpms_cache_ttl_seconds': 300}
    assert box.boto('ssm').get_parameter(Name=C.CACHE_TTL_PARAMETER)['Parameter']['Value'] == '300'
    # the database as seeded: non-superuser roles, the API's role owns the tables, no index on tenant_id
    roles = dict(pg('SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN (%s, %s)', (app, batch)))
    assert roles == {app: False, batch: False}
    db = conn['svpms_db_name']
    assert pg('SELECT count(*), count(DISTINCT tenant_id) FROM items', dbname=db) == [(C.ITEMS_ROWS, C.TENANT_COUNT)]
    assert pg('SELECT count(*) FROM tenant_quotas', dbname=db) == [(C.TENANT_COUNT,)]
    assert {r[0] for r in pg("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'", dbname=db)} == {app}
    assert pg("SELECT indexdef FROM pg_indexes WHERE tablename = 'items'", dbname=db) == [
        ('CREATE UNIQUE INDEX items_pkey ON public.items USING btree (id)',)]
    # the API's sessions as configured; RDS DatabaseConnections is the real backend count
    sessions = pg("SELECT DISTINCT usename, application_name FROM pg_stat_activity WHERE datname = %s "
                  "AND application_name = 'svpms-api'", (db,))
    assert sessions == [(app, 'svpms-api')]
    assert until(lambda: twin(box, 5)['db']['connections'], 12, what='a DatabaseConnections count') >= 1
    st = box.status(window=5)
    assert st['running'] and st['processes']['redis']['up'] and st['database']['enabled']
    assert st['cache']['ttl_seconds'] == 300 and st['desired_count'] == 3 and st['lock_holder']['running'] is False
    text = cli(box.state_dir, 'status', '--window', '5').stdout
    assert 'redis-server  up' in text and 'cache         TTL 300 s' in text and 'database      svpms_sandbox_' in text


def test_unknown_fault_lists_all_faults(box):
    with pytest.raises(UsageError) as exc:
        box.inject('high_latency')
    assert ('allowed: cache_miss_storm, high_error_rate, idp_cert_expired, jwt_key_mismatch, lock_contention, '
            'redis_down, signature_check_disabled, slow_deploy, stripe_key_revoked, user_table_denied, '
            'webhook_endpoint_down, webhook_secret_mismatch') in str(exc.value)
    assert {n: f['kind'] for n, f in C.FAULTS.items()} == {
        'high_error_rate': 'deploy', 'slow_deploy': 'deploy', 'lock_contention': 'database',
        'cache_miss_storm': 'config', 'redis_down': 'process', 'jwt_key_mismatch': 'secret',
        'idp_cert_expired': 'certificate', 'user_table_denied': 'database',
        'webhook_secret_mismatch': 'secret', 'webhook_endpoint_down': 'deploy', 'stripe_key_revoked': 'stripe',
        'signature_check_disabled': 'deploy'}


def test_without_payments_there_is_no_stripe_and_payments_faults_refuse(box):
    """This file's box runs without payments (conftest.py): no stand-in, no Stripe settings, no payment traffic."""
    assert box.payments is False and not box.stripe_running() and port_free(box.stripe_port)
    with open(box.connection_file) as fh:
        conn = yaml.safe_load(fh)
    assert not [k for k in conn if k.startswith('svpms_stripe_')] and conn['svpms_health_url']
    st = box.status(window=3)
    assert st['running'] and st['payments_enabled'] is False
    assert st['payments']['api']['attempts'] == 0 and st['payments']['stripe_api_url'] is None
    for fault in C.PAYMENTS_FAULTS:
        with pytest.raises(UsageError, match='fault %s needs payments' % fault):
            box.inject(fault)
    proc = cli(box.state_dir, 'inject', 'webhook_endpoint_down')
    assert proc.returncode != 0 and 'needs payments' in proc.stderr and 'Traceback' not in proc.stderr
    assert 'payments      off: this sandbox was started without payments' in cli(box.state_dir, 'status').stdout
    assert box.injected_at() is None and not box.status(window=1)['service']['bad_revision']


def test_lock_contention_then_terminating_the_holder_recovers(box):
    res = box.inject('lock_contention')
    holder_pid, backend = res['lock_holder_pid'], res['backend_pid']
    assert res['kind'] == 'database' and res['blocked_sessions'] >= 1 and pid_alive(holder_pid)
    with open(os.path.join(box.state_dir, 'injected_at')) as fh:
        assert fh.read().strip() == res['injected_at']
    st = window_where(box, 8, lambda s: p95(s) > 1000, 20, 'p95 > 1000 ms under lock contention', min_requests=5)
    assert st['window']['errors_5xx'] == 0 and st['db']['lock_timeouts']['window'] > 0  # fails open, no 5xx
    assert st['lock_holder'] == {'pid': holder_pid, 'running': True}
    db = 'svpms_sandbox_%d' % box.twin_port
    [(state, user, app_name, idle_s)] = pg(
        'SELECT state, usename, application_name, extract(epoch FROM now() - state_change) FROM pg_stat_activity '
        'WHERE pid = %s', (backend,))
    assert (state, user, app_name) == ('idle in transaction', 'svpms_sbx_%d_batch' % box.twin_port,
                                       'svpms-nightly-reconcile')
    blocked = pg('SELECT usename, application_name, pg_blocking_pids(pid) FROM pg_stat_activity '
                 'WHERE datname = %s AND %s = ANY(pg_blocking_pids(pid))', (db, backend))
    assert blocked and {(row[0], row[1]) for row in blocked} == {('svpms_sbx_%d_app' % box.twin_port, 'svpms-api')}
    # the holder ran nothing after its UPDATE: state_change keeps ageing
    time.sleep(1.5)
    [(idle_later,)] = pg('SELECT extract(epoch FROM now() - state_change) FROM pg_stat_activity WHERE pid = %s',
                         (backend,))
    assert idle_later > idle_s + 1
    # the awslogs stream carries the fail-open warnings
    logs = box.boto('logs')
    events = until(lambda: logs.filter_log_events(
        logGroupName=C.LOG_GROUP, filterPattern='"rate-limit accounting skipped"')['events'], 12,
        what='lock timeout WARNING log events')
    assert 'WARNING svpms.db rate-limit accounting skipped: lock timeout on tenant_quotas' in events[0]['message']
    # the runbook's mitigation: terminate the idle-in-transaction blocker
    assert pg('SELECT pg_terminate_backend(%s)', (backend,)) == [(True,)]
    until(lambda: not pid_alive(holder_pid), 10, interval=0.2, what='the lock holder to exit')
    st = window_where(box, 4, lambda s: p95(s) < 500, 20, 'p95 < 500 ms after terminating the blocker')
    assert st['window']['lock_timeouts'] == 0 and st['lock_holder']['running'] is False


def test_cache_miss_storm_then_restoring_the_ttl_recovers(box):
    ssm = box.boto('ssm')
    res = box.inject('cache_miss_storm')
    assert res['kind'] == 'config' and res['ttl_seconds'] == 1 and res['flushed_keys'] > 0
    assert ssm.get_parameter(Name=C.CACHE_TTL_PARAMETER)['Parameter']['Value'] == '1'
    st = window_where(box, 6, lambda s: hit_rate(s) < 50 and p95(s) > 1000, 20,
                      'hit rate < 50% and p95 > 1000 ms in the storm')
    assert st['window']['errors_5xx'] == 0 and st['cache']['ttl_seconds'] == 1
    # the runbook's mitigation: put the TTL setting back
    ssm.put_parameter(Name=C.CACHE_TTL_PARAMETER, Value='300', Type='String', Overwrite=True)
    st = window_where(box, 4, lambda s: p95(s) < 500 and hit_rate(s) >= 90, 30,
                      'p95 < 500 ms and hit rate >= 90% after restoring the TTL')
    assert st['cache']['ttl_seconds'] == 300


def test_slow_deploy_then_scaling_out_recovers(box):
    since = datetime.datetime.now(datetime.timezone.utc)
    res = box.inject('slow_deploy')
    assert res['kind'] == 'deploy' and res['task_definition'] == 'svpms-api:4'
    st = window_where(box, 6, lambda s: p95(s) > 1000, 15, 'p95 > 1000 ms on the slow revision')
    assert st['window']['errors_5xx'] == 0 and st['fault'] == 'slow_deploy'
    assert until(lambda: (cpu_max_since(box, since) or 0) > 90, 15, what='ECS CPU > 90%') <= C.CPU_CAP
    # the runbook's mitigation: scale out 3 -> 6
    box.boto('ecs').update_service(cluster=C.CLUSTER, service=C.SERVICE, desiredCount=6)
    scaled = datetime.datetime.now(datetime.timezone.utc)
    st = window_where(box, 4, lambda s: p95(s) < 500, 20, 'p95 < 500 ms after scaling out')
    assert st['desired_count'] == 6 and st['fault'] == 'slow_deploy'
    time.sleep(6)  # one metrics interval at 6 tasks
    assert 40 < cpu_max_since(box, scaled + datetime.timedelta(seconds=1.5)) < 55


def test_heal_restores_everything(box):
    box.inject('cache_miss_storm')
    holder = box.inject('lock_contention')
    res = box.heal()
    assert res['changed'] and res['task_definition'] == 'svpms-api:3'
    assert any(a.startswith('lock holder') for a in res['actions'])
    assert 'cache TTL 1 -> 300 s' in res['actions'] and 'desiredCount 6 -> 3' in res['actions']
    assert 'task definition svpms-api:4 -> svpms-api:3' in res['actions']
    svc = box.service()
    assert svc['taskDefinition'].split('/')[-1] == 'svpms-api:3' and svc['desiredCount'] == 3
    assert box.boto('ssm').get_parameter(Name=C.CACHE_TTL_PARAMETER)['Parameter']['Value'] == '300'
    assert not pid_alive(holder['lock_holder_pid']) and box.injected_at() is None
    assert pg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'svpms-nightly-reconcile' "
              "AND datname = %s", ('svpms_sandbox_%d' % box.twin_port,)) == [(0,)]
    st = window_where(box, 4, lambda s: p95(s) < 500 and hit_rate(s) >= 90, 30, 'a healthy twin after heal')
    assert (st['task_definition'], st['desired_count'], st['cache']['ttl_seconds']) == ('svpms-api:3', 3, 300)
    assert box.heal()['changed'] is False  # nothing left to heal


def test_stop_drops_the_database_and_frees_redis(box):
    redis_pid, port = box.redis_pid(), box.redis_port
    assert pid_alive(redis_pid) and not port_free(port)
    res = box.stop()
    assert res['database'][1].startswith('dropped svpms_sandbox_%d' % box.twin_port)
    assert res['redis'] == (redis_pid, 'stopped')
    assert pg('SELECT datname FROM pg_database WHERE datname = %s', ('svpms_sandbox_%d' % box.twin_port,)) == []
    assert pg('SELECT rolname FROM pg_roles WHERE rolname LIKE %s', ('svpms_sbx_%d_%%' % box.twin_port,)) == []
    assert not pid_alive(redis_pid) and port_free(port)
    assert box.stop()['database'] == (None, 'not created')  # idempotent


def test_without_postgresql_the_sandbox_runs_and_db_faults_refuse(tmp_path, monkeypatch):
    no_pg = str(free_port())  # nothing listens there
    monkeypatch.setenv(C.PG_PORT_ENV, no_pg)
    sb = Sandbox(str(tmp_path / 'sandbox'), moto_port=free_port(), twin_port=free_port(),
                 receiver_port=free_port(), redis_port=free_port(), payments=False)
    try:
        started = sb.start()
        assert started['database'] is None and 'not reachable' in started['database_error']
        with open(sb.connection_file) as fh:
            conn = yaml.safe_load(fh)
        assert conn['svpms_db_enabled'] is False and conn['svpms_db_host'] == ''
        st = window_where(sb, 3, lambda s: True, 10, '3 s of traffic')
        assert st['db'] == dict(st['db'], enabled=False, reachable=False) and st['window']['errors_5xx'] == 0
        assert p95(st) < 500 and st['cache']['redis_reachable']
        with pytest.raises(SandboxError, match='fault lock_contention needs the sandbox database, but this sandbox '
                                               'runs without PostgreSQL'):
            sb.inject('lock_contention')
        proc = cli(sb.state_dir, 'inject', 'lock_contention', env={C.PG_PORT_ENV: no_pg})
        assert proc.returncode == 1 and 'needs the sandbox database' in proc.stderr
        assert 'Traceback' not in proc.stderr and not sb.lock_holder_running()
        proc = cli(sb.state_dir, 'status', env={C.PG_PORT_ENV: no_pg})
        assert 'database      NONE: the sandbox runs without PostgreSQL' in proc.stdout
        status = json.loads(cli(sb.state_dir, 'status', '--json', env={C.PG_PORT_ENV: no_pg}).stdout)
        assert status['database']['enabled'] is False and status['db']['enabled'] is False
    finally:
        res = sb.stop()
    assert res['database'][1].startswith('not created')
