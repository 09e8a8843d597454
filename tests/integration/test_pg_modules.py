"""pg_activity, pg_cancel_queries and pg_query_stats against the real PostgreSQL on 127.0.0.1:5432.

Everything here is real: a database and roles of our own (unique names, dropped at
the end), real client sessions opened with psycopg2 - `pg_sleep` statements, sessions
left idle in a transaction, a lock holder (`LOCK TABLE ... ACCESS EXCLUSIVE` left idle
in transaction) with a queue of waiters behind it - and the modules run as Ansible
runs them (tests/helpers/modules.run_module). What the modules report or did is
checked through pg_stat_activity / pg_stat_user_tables from a separate connection.

Other engineers' tests may use the same server at the same time, so every assertion
is about our own pids, roles and databases, never about server-wide totals.
"""

import threading
import time
import uuid

import psycopg2
import pytest

from tests.helpers.modules import assert_no_traceback, run_adhoc, run_module
from tests.helpers.servers import free_port

HOST = '127.0.0.1'
PORT = 5432
SECRET = 'hunter2-secret'
SECRET_SLEEP = "SELECT pg_sleep(60) WHERE '%s' <> ''" % SECRET


def admin_conn(db='postgres'):
    conn = psycopg2.connect(host=HOST, port=PORT, user='postgres', dbname=db, connect_timeout=5,
                            application_name='svpms-it-admin')
    conn.autocommit = True
    return conn


class Env:
    def __init__(self):
        s = uuid.uuid4().hex[:8]
        self.db = 'svpms_it_%s' % s
        self.other_db = 'svpms_it_%s_other' % s
        self.app = 'svpms_it_app_%s' % s
        self.batch = 'svpms_it_batch_%s' % s
        self.ops = 'svpms_it_ops_%s' % s      # pg_monitor + pg_signal_backend: what the docs ask for
        self.mon = 'svpms_it_mon_%s' % s      # pg_monitor only
        self.nobody = 'svpms_it_nobody_%s' % s
        self.roles = [self.app, self.batch, self.ops, self.mon, self.nobody]
        self.admin = admin_conn()

    def sql(self, statement, args=None, db=None):
        conn = self.admin if db is None else admin_conn(db)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return cur.fetchall() if cur.description else None
        finally:
            if db is not None:
                conn.close()

    def setup(self):
        for role in self.roles:
            self.sql('CREATE ROLE %s LOGIN' % role)
        self.sql('GRANT pg_monitor, pg_signal_backend TO %s' % self.ops)
        self.sql('GRANT pg_monitor TO %s' % self.mon)
        for db in (self.db, self.other_db):
            self.sql('CREATE DATABASE %s' % db)
        self.sql('CREATE TABLE t (id int); INSERT INTO t VALUES (1); GRANT ALL ON t TO %s, %s'
                 % (self.app, self.batch), db=self.db)

    def kill_ours(self):
        self.sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() '
                 'AND (datname = ANY(%s) OR usename = ANY(%s))', ([self.db, self.other_db], self.roles))

    def teardown(self):
        self.kill_ours()
        for db in (self.db, self.other_db):
            self.sql('DROP DATABASE IF EXISTS %s WITH (FORCE)' % db)
        for role in self.roles:
            self.sql('DROP ROLE IF EXISTS %s' % role)
        self.admin.close()

    def activity(self, pids):
        rows = self.sql('SELECT pid, state, wait_event_type, backend_start::text, query_start::text, '
                        'xact_start::text FROM pg_stat_activity WHERE pid = ANY(%s)', (list(pids),))
        return dict((r[0], dict(state=r[1], wait_event_type=r[2], backend_start=r[3], query_start=r[4],
                                xact_start=r[5])) for r in rows)

    def wait_for(self, pids, predicate, what, timeout=10.0):
        """Poll pg_stat_activity until predicate(rows by pid) holds; bounded."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.activity(pids)
            if predicate(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError('waited %.0fs for %s; pg_stat_activity: %r' % (timeout, what, rows))
            time.sleep(0.05)

    def run(self, name, check=False, **args):
        base = dict(host=HOST, port=PORT, user='postgres', database=self.db, connect_timeout=3)
        base.update(args)
        result = run_module(name, base, check=check)
        assert_no_traceback(result)
        assert SECRET not in result.stdout and SECRET not in result.stderr, 'secret literal leaked'
        return result


class Backend:
    """One real client session (role, database, application_name); statements may run in a thread."""

    def __init__(self, env, role, db=None, app='it-app'):
        self.conn = psycopg2.connect(host=HOST, port=PORT, user=role, dbname=db or env.db, connect_timeout=5,
                                     application_name=app)
        self.conn.autocommit = True
        self.role = role
        self.error = None
        self.thread = None
        with self.conn.cursor() as cur:
            cur.execute("SET statement_timeout = '90s'")  # a safety net: nothing outlives the test run
            cur.execute('SELECT pg_backend_pid()')
            self.pid = cur.fetchone()[0]

    def execute(self, sql):
        with self.conn.cursor() as cur:
            cur.execute(sql)

    def start(self, sql):
        def target():
            try:
                self.execute(sql)
            except Exception as exc:  # cancelled / terminated: what some tests expect
                self.error = exc
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        return self

    def finished(self, timeout):
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True

    def close(self):
        if self.finished(5):
            try:
                self.conn.close()
            except Exception:
                pass


@pytest.fixture(scope='module')
def env():
    e = Env()
    e.setup()
    yield e
    e.teardown()


@pytest.fixture
def scene(env):
    """Opens Backends for one test; terminates and closes them afterwards."""
    opened = []

    def open_backend(role, db=None, app='it-app'):
        backend = Backend(env, role, db=db, app=app)
        opened.append(backend)
        return backend

    yield open_backend
    env.kill_ours()
    for backend in opened:
        backend.close()


def lock_scene(env, scene):
    """holder: ACCESS EXCLUSIVE, idle in transaction. Queue: r1 (SELECT), ddl (LOCK), r2 (SELECT)."""
    holder = scene(env.app, app='it-holder')
    holder.execute('BEGIN')
    holder.execute('LOCK TABLE t IN ACCESS EXCLUSIVE MODE')
    holder.execute("SELECT 'hunter2-secret' AS last_statement")
    waiters = []
    for role, app, sql in ((env.app, 'it-reader', 'SELECT * FROM t'),
                           (env.batch, 'it-ddl', 'BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT'),
                           (env.app, 'it-reader', 'SELECT * FROM t')):
        waiter = scene(role, app=app).start(sql)
        env.wait_for([waiter.pid], lambda rows, p=waiter.pid: rows.get(p, {}).get('wait_event_type') == 'Lock',
                     'pid %s to wait for the lock' % waiter.pid)
        waiters.append(waiter)
    return holder, waiters


def active_sleeper(env, scene, role, db=None, app='it-sleeper', sql=SECRET_SLEEP):
    backend = scene(role, db=db, app=app).start(sql)
    env.wait_for([backend.pid], lambda rows: (rows.get(backend.pid) or {}).get('state') == 'active'
                 and (rows.get(backend.pid) or {}).get('wait_event_type') == 'Timeout',
                 'pid %s to sleep' % backend.pid)
    return backend


def by_pid(items):
    return dict((item['pid'], item) for item in items)


# --- pg_activity -------------------------------------------------------------------


def test_activity_reports_lock_chain_roots_long_running_and_idle(env, scene):
    holder, (r1, ddl, r2) = lock_scene(env, scene)
    sleeper = active_sleeper(env, scene, env.app)
    time.sleep(1.2)

    result = env.run('pg_activity', long_running_seconds=1, idle_in_transaction_seconds=1)
    assert result['changed'] is False and result['reachable'] is True, result

    blocked = by_pid(result['blocked'])
    assert set([r1.pid, ddl.pid, r2.pid]) <= set(blocked)
    assert blocked[r1.pid]['blocked_by'] == [holder.pid]
    assert blocked[ddl.pid]['blocked_by'] == sorted([holder.pid, r1.pid])   # queued behind r1's request
    assert blocked[r2.pid]['blocked_by'] == sorted([holder.pid, ddl.pid])   # queued behind ddl's request
    for pid in (r1.pid, ddl.pid, r2.pid):
        assert blocked[pid]['root_blockers'] == [holder.pid]
        assert blocked[pid]['waiting_seconds'] >= 1
        assert blocked[pid]['database'] == env.db
    assert blocked[ddl.pid]['user'] == env.batch and blocked[ddl.pid]['application'] == 'it-ddl'

    blockers = by_pid(result['blockers'])
    assert holder.pid in blockers
    assert blockers[holder.pid]['blocked_count'] == 3
    assert blockers[holder.pid]['blocking'] == sorted([r1.pid, ddl.pid, r2.pid])
    assert blockers[holder.pid]['state'] == 'idle in transaction'
    assert blockers[holder.pid]['xact_age_seconds'] >= 1
    assert blockers[holder.pid]['query'] == 'SELECT ? AS last_statement'
    assert r1.pid not in blockers and ddl.pid not in blockers   # waiters are not roots

    idle = by_pid(result['idle_in_transaction'])
    assert holder.pid in idle and idle[holder.pid]['duration_seconds'] >= 1

    long_running = by_pid(result['long_running'])
    assert long_running[sleeper.pid]['duration_seconds'] >= 1
    assert long_running[sleeper.pid]['query'] == 'SELECT pg_sleep(?) WHERE ? <> ?'
    assert long_running[sleeper.pid]['wait_event'] == 'PgSleep'

    assert result['connections'] >= 5
    usable = result['max_connections'] - result['reserved_connections']
    assert result['utilisation_pct'] == round(result['connections'] * 100.0 / usable, 1)
    assert result['by_state']['active'] >= 4 and result['by_state']['idle in transaction'] >= 1
    assert dict(application='it-reader', user=env.app, database=env.db, count=2) in result['by_application']
    assert result['in_recovery'] is False and isinstance(result['replication'], list)
    assert result['limited_visibility'] is False
    # our own session never shows up: it is the only one with this application_name on our database
    assert not [a for a in result['by_application'] if a['application'] == 'svpms-incident-response'
                and a['database'] == env.db]

    # pg_monitor is enough to see all of it
    as_ops = env.run('pg_activity', user=env.ops, long_running_seconds=1, idle_in_transaction_seconds=1)
    assert by_pid(as_ops['blocked'])[r2.pid]['root_blockers'] == [holder.pid]
    assert by_pid(as_ops['blockers'])[holder.pid]['blocked_count'] == 3
    assert as_ops['limited_visibility'] is False

    # without it the module says what is missing instead of pretending all is quiet
    as_nobody = env.run('pg_activity', user=env.nobody)
    assert as_nobody['reachable'] is True and as_nobody['limited_visibility'] is True
    assert 'GRANT pg_monitor TO %s' % env.nobody in str(as_nobody.get('warnings')), as_nobody


def test_activity_scoped_to_a_database_leaves_out_the_others(env, scene):
    """Two databases on one server: the lock waits and runaway queries of the
    other one are not this service's incident (the runbooks pass their own)."""
    holder, (r1, ddl, r2) = lock_scene(env, scene)
    elsewhere = active_sleeper(env, scene, env.app, db=env.other_db)
    time.sleep(1.2)
    mine = env.run('pg_activity', databases=[env.other_db], long_running_seconds=1, idle_in_transaction_seconds=1)
    assert mine['blocked'] == [] and mine['blockers'] == [] and mine['idle_in_transaction'] == []
    assert [s['pid'] for s in mine['long_running']] == [elsewhere.pid]
    assert mine['connections_in_scope'] == 1 < mine['connections']
    theirs = env.run('pg_activity', databases=[env.db], long_running_seconds=1, idle_in_transaction_seconds=1)
    assert by_pid(theirs['blockers'])[holder.pid]['blocked_count'] == 3
    assert set(by_pid(theirs['blocked'])) == set([r1.pid, ddl.pid, r2.pid])
    assert elsewhere.pid not in by_pid(theirs['long_running'])


def test_activity_replica_finding_and_unreachable_primary(env):
    port = free_port()
    result = env.run('pg_activity', replica_host=HOST, replica_port=port)
    assert result['reachable'] is True and not result.get('failed')
    assert result['replica']['reachable'] is False and result['replica']['error_kind'] == 'unreachable'
    assert result['replica']['port'] == port

    # the primary itself as "replica": reachable, but not in recovery, and that is said
    same = env.run('pg_activity', replica_host=HOST)
    assert same['replica']['reachable'] is True and same['replica']['in_recovery'] is False
    assert 'not in recovery' in same['replica']['msg']


# --- pg_cancel_queries ---------------------------------------------------------


def test_cancel_blockers_check_mode_then_apply_then_idempotent(env, scene):
    holder, waiters = lock_scene(env, scene)
    all_pids = [holder.pid] + [w.pid for w in waiters]
    time.sleep(1.2)
    args = dict(target='blockers', min_duration_seconds=1, users=[env.app, env.batch], databases=[env.db],
                grace_seconds=1)

    check = env.run('pg_cancel_queries', check=True, **args)
    assert not check.get('failed'), check
    assert check['changed'] is True
    assert [s['pid'] for s in check['sessions']] == [holder.pid]
    session = check['sessions'][0]
    assert session['action'] == 'would_cancel'
    assert session['blocking'] == sorted(w.pid for w in waiters)
    assert session['duration_seconds'] >= 1 and session['state'] == 'idle in transaction'
    assert check['cancelled'] == [] and check['terminated'] == [] and check['queries'] == []
    assert 'pid=%s' % holder.pid in check['diff']['before']
    # nothing was signalled: the holder still holds, every waiter still waits, same sessions
    rows = env.activity(all_pids)
    assert rows[holder.pid]['state'] == 'idle in transaction'
    assert all(rows[w.pid]['wait_event_type'] == 'Lock' for w in waiters)

    # apply as a role with exactly the documented grants (pg_monitor, pg_signal_backend)
    applied = env.run('pg_cancel_queries', user=env.ops, **args)
    assert not applied.get('failed'), applied
    assert applied['changed'] is True
    # cancel cannot end an idle transaction: it is terminated after the grace period
    assert applied['sessions'][0]['action'] == 'terminated'
    assert applied['cancelled'] == [holder.pid] and applied['terminated'] == [holder.pid]
    assert [q.split('(')[0] for q in applied['queries']] == ['SELECT pg_cancel_backend', 'SELECT pg_terminate_backend']
    assert all(str(holder.pid) not in q and "'" not in q for q in applied['queries'])
    assert 'pid=%s' % holder.pid not in applied['diff']['after']
    assert holder.pid not in env.activity([holder.pid])
    # the queue drains: every waiter finishes its statement, none was touched
    for waiter in waiters:
        assert waiter.finished(10), 'waiter %s still blocked' % waiter.pid
        assert waiter.error is None, waiter.error
    assert set(env.activity([w.pid for w in waiters])) == set(w.pid for w in waiters)

    again = env.run('pg_cancel_queries', user=env.ops, **args)
    assert again['changed'] is False and again['sessions'] == [] and again['cancelled'] == []


def test_cancel_long_running_guards_cap_and_pids(env, scene):
    target = active_sleeper(env, scene, env.app)
    superuser = active_sleeper(env, scene, 'postgres', app='it-super')
    other_role = active_sleeper(env, scene, env.batch)
    other_db = active_sleeper(env, scene, env.app, db=env.other_db)
    everyone = [target.pid, superuser.pid, other_role.pid, other_db.pid]
    started = env.activity(everyone)
    time.sleep(1.2)
    args = dict(target='long_running', min_duration_seconds=1, users=[env.app], databases=[env.db],
                grace_seconds=1)

    def untouched():
        rows = env.activity(everyone)
        for pid in everyone:
            assert rows[pid]['state'] == 'active', (pid, rows[pid])
            assert rows[pid]['query_start'] == started[pid]['query_start'], 'pid %s was interrupted' % pid

    check = env.run('pg_cancel_queries', check=True, **args)
    assert [s['pid'] for s in check['sessions']] == [target.pid]
    assert check['sessions'][0]['query'] == 'SELECT pg_sleep(?) WHERE ? <> ?'
    skipped = by_pid(check['skipped_sessions'])
    assert 'superuser' in skipped[superuser.pid]['reason']
    assert 'user %s not listed' % env.batch in skipped[other_role.pid]['reason']
    assert 'database %s not listed' % env.other_db in skipped[other_db.pid]['reason']
    untouched()

    # through ansible itself: guarded-out sessions must not make the task look skipped
    via_ansible = run_adhoc('svpms.incident_response.pg_cancel_queries',
                            dict(args, host=HOST, port=PORT, user='postgres', database=env.db), check=True)
    assert 'SKIPPED' not in via_ansible.stdout and via_ansible.rc == 0, via_ansible.stdout
    assert via_ansible['changed'] is True and len(via_ansible['skipped_sessions']) >= 3
    assert SECRET not in via_ansible.stdout
    untouched()

    # pids intersect with the filters
    wide = dict(args, users=[env.app, env.batch])
    only = env.run('pg_cancel_queries', check=True, **dict(wide, pids=[target.pid, other_db.pid]))
    assert [s['pid'] for s in only['sessions']] == [target.pid]
    assert 'pid not listed' in by_pid(only['skipped_sessions'])[other_role.pid]['reason']
    both = env.run('pg_cancel_queries', check=True, **dict(wide, pids=[target.pid, other_role.pid]))
    assert sorted(s['pid'] for s in both['sessions']) == sorted([target.pid, other_role.pid])

    # more matches than max_sessions: failure, nothing touched
    capped = env.run('pg_cancel_queries', **dict(args, users=[env.app, env.batch],
                                                 databases=[env.db, env.other_db], max_sessions=2))
    assert capped.failed and capped['error_kind'] == 'too_many'
    assert '3 sessions match' in capped['msg'] and 'max_sessions' in capped['msg']
    assert capped['cancelled'] == [] and capped['terminated'] == [] and capped['queries'] == []
    untouched()

    applied = env.run('pg_cancel_queries', **args)
    assert not applied.get('failed'), applied
    assert applied['changed'] is True
    assert applied['cancelled'] == [target.pid] and applied['terminated'] == []
    # the cancel ended the statement; the connection stays (it is not terminated)
    assert applied['sessions'][0]['action'] == 'gone_after_cancel'
    assert target.finished(5)
    assert isinstance(target.error, psycopg2.errors.QueryCanceled), target.error
    assert env.activity([target.pid])[target.pid]['state'] == 'idle'
    rest = env.activity(everyone[1:])
    assert all(rest[pid]['state'] == 'active' for pid in everyone[1:]), rest

    again = env.run('pg_cancel_queries', **args)
    assert again['changed'] is False and again['sessions'] == [] and again['cancelled'] == []


def test_cancel_idle_in_transaction_terminates_after_grace(env, scene):
    idle = scene(env.app, app='it-idle')
    idle.execute('BEGIN')
    idle.execute("SELECT 'hunter2-secret'")
    other = scene(env.batch, app='it-idle')
    other.execute('BEGIN')
    other.execute('SELECT 1')
    time.sleep(1.2)
    args = dict(target='idle_in_transaction', min_duration_seconds=1, users=[env.app], databases=[env.db],
                grace_seconds=1)

    check = env.run('pg_cancel_queries', check=True, **args)
    assert [(s['pid'], s['action']) for s in check['sessions']] == [(idle.pid, 'would_cancel')]
    assert check['sessions'][0]['query'] == 'SELECT ?'

    started = time.monotonic()
    applied = env.run('pg_cancel_queries', **args)
    assert applied['sessions'][0]['action'] == 'terminated'
    assert applied['cancelled'] == [idle.pid] and applied['terminated'] == [idle.pid]
    assert time.monotonic() - started >= 1.0   # it did wait out the grace period first
    assert idle.pid not in env.activity([idle.pid])
    assert env.activity([other.pid])[other.pid]['state'] == 'idle in transaction'
    assert 'user %s not listed' % env.batch in by_pid(applied['skipped_sessions'])[other.pid]['reason']


def test_cancel_needs_the_documented_privileges(env, scene):
    sleeper = active_sleeper(env, scene, env.app)
    time.sleep(1.1)
    args = dict(target='long_running', min_duration_seconds=1, users=[env.app], databases=[env.db],
                grace_seconds=0)

    blind = env.run('pg_cancel_queries', user=env.nobody, **args)
    assert blind.failed and blind['error_kind'] == 'permission' and blind['reachable'] is True
    assert 'GRANT pg_monitor' in blind['msg']

    no_signal = env.run('pg_cancel_queries', user=env.mon, **args)
    assert no_signal.failed and no_signal['error_kind'] == 'permission'
    assert 'GRANT pg_signal_backend TO %s' % env.mon in no_signal['msg']
    assert str(sleeper.pid) in no_signal['msg']
    assert no_signal['cancelled'] == [] and no_signal['queries'] == []

    rows = env.activity([sleeper.pid])
    assert rows[sleeper.pid]['state'] == 'active' and sleeper.error is None


@pytest.mark.parametrize('bad,name', [
    (dict(users=[]), 'users'),
    (dict(databases=['']), 'databases'),
    (dict(min_duration_seconds=0), 'min_duration_seconds'),
    (dict(grace_seconds=61), 'grace_seconds'),
    (dict(max_sessions=101), 'max_sessions'),
    (dict(pids=[0]), 'pids'),
    (dict(target='everyone'), 'target'),
])
def test_cancel_bad_input_names_the_parameter(env, bad, name):
    args = dict(target='long_running', min_duration_seconds=1, users=[env.app], databases=[env.db])
    args.update(bad)
    result = env.run('pg_cancel_queries', **args)
    assert result.failed and name in result['msg'], result['msg']
    assert not result.get('cancelled') and not result.get('terminated')


def test_unreachable_is_a_finding_for_info_and_a_clean_failure_for_cancel(env):
    port = free_port()
    password = 'pw-%s' % uuid.uuid4().hex
    for name in ('pg_activity', 'pg_query_stats'):
        result = env.run(name, port=port, password=password)
        assert password not in result.stdout and password not in result.stderr
        assert not result.get('failed'), result
        assert result['reachable'] is False and result['error_kind'] == 'unreachable'
        assert 'host/port' in result['msg']

    cancel = env.run('pg_cancel_queries', port=port, target='blockers', min_duration_seconds=1,
                     users=[env.app], databases=[env.db], password=password)
    assert password not in cancel.stdout and password not in cancel.stderr
    assert cancel.failed and cancel['reachable'] is False and cancel['error_kind'] == 'unreachable'
    assert cancel['cancelled'] == [] and cancel['terminated'] == [] and cancel['sessions'] == []

    role = env.run('pg_activity', user='svpms_it_no_such_role')
    assert role['reachable'] is False and role['error_kind'] == 'auth_failed'
    missing = env.run('pg_query_stats', database='svpms_it_no_such_db')
    assert missing['reachable'] is False and missing['error_kind'] == 'not_found'


# --- pg_query_stats -------------------------------------------------------------


def test_query_stats_without_pg_stat_statements_and_index_candidate(env):
    preload = env.sql('SHOW shared_preload_libraries')[0][0]
    assert 'pg_stat_statements' not in preload, 'this test expects pg_stat_statements not to be preloaded'
    env.sql('CREATE TABLE big (id int, sku int, payload text); '
            "INSERT INTO big SELECT g, g %% 500, 'x' FROM generate_series(1, 20000) g; "
            'GRANT SELECT ON big TO %s' % env.app, db=env.db)   # connection closed: its stats are flushed
    reader = psycopg2.connect(host=HOST, port=PORT, user=env.app, dbname=env.db, connect_timeout=5)
    reader.autocommit = True
    with reader.cursor() as cur:
        for i in range(60):
            cur.execute('SELECT count(*) FROM big WHERE sku = %s', (i,))
    reader.close()   # a backend flushes its table stats when it exits

    deadline = time.monotonic() + 15
    while True:  # fresh connection each time: no cached stats snapshot
        seq = env.sql("SELECT seq_scan, n_live_tup FROM pg_stat_user_tables WHERE relname = 'big'", db=env.db)
        if seq and seq[0][0] >= 60 and seq[0][1] >= 20000:
            break
        assert time.monotonic() < deadline, 'stats for big never arrived: %r' % seq
        time.sleep(0.2)

    result = env.run('pg_query_stats', min_seq_scans=50, min_rows=10000)
    assert not result.get('failed') and result['changed'] is False and result['reachable'] is True
    status = result['pg_stat_statements']
    assert status['available'] is False
    assert 'shared_preload_libraries' in status['reason'] and 'CREATE EXTENSION pg_stat_statements' in status['reason']
    assert result['top_by_mean_time'] == [] and result['top_by_total_time'] == []
    candidates = dict(((c['schema'], c['table']), c) for c in result['index_candidates'])
    big = candidates[('public', 'big')]
    assert big['seq_scan'] >= 60 and big['n_live_tup'] >= 20000
    assert big['avg_rows_per_seq_scan'] >= 10000
    assert 'CREATE INDEX CONCURRENTLY ON public.big (<column>)' in big['advice']
    assert ('public', 't') not in candidates   # one row: never a candidate

    # installed but not loaded: still a clean "unavailable" with the reason
    env.sql('CREATE EXTENSION pg_stat_statements', db=env.db)
    loaded = env.run('pg_query_stats', min_seq_scans=50, min_rows=10000)
    assert loaded['pg_stat_statements']['available'] is False
    assert 'is installed' in loaded['pg_stat_statements']['reason']
    assert 'shared_preload_libraries' in loaded['pg_stat_statements']['reason']
    # advice only: no index was created
    assert env.sql("SELECT count(*) FROM pg_indexes WHERE tablename = 'big'", db=env.db)[0][0] == 0
