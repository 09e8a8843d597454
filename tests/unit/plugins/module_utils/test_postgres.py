"""Pure logic of module_utils/postgres.py: literal redaction, lock-chain roots, guards, index advice."""

import psycopg2
import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils import checks
from ansible_collections.svpms.incident_response.plugins.module_utils import postgres as pg


class TestRedactQuery:
    @pytest.mark.parametrize('sql,expected', [
        ("SELECT * FROM users WHERE password = 'hunter2'", 'SELECT * FROM users WHERE password = ?'),
        ("SELECT 'it''s secret'", 'SELECT ?'),
        ("SELECT E'it\\'s \\\\ secret' AS x", 'SELECT ? AS x'),
        ("SELECT e'a\\'b', 'c'", 'SELECT ?, ?'),
        ("SELECT $$ body 'with' quotes $$", 'SELECT ?'),
        ("SELECT $tag$ has $$ inside $tag$ || 'x'", 'SELECT ? || ?'),
        ("SELECT B'1010', X'ff', N'nat', U&'d\\0061t'", 'SELECT ?, ?, ?, ?'),
        ('SELECT 42, 3.14, .5, 1e10, 2.5E-3, 0x1F', 'SELECT ?, ?, ?, ?, ?, ?'),
        ('SELECT * FROM t1 WHERE col2 = $1 AND c = -7', 'SELECT * FROM t1 WHERE col2 = $1 AND c = -?'),
        ('SELECT "weird""col" FROM "T 1"', 'SELECT "weird""col" FROM "T 1"'),
        ('SELECT a$1 FROM b', 'SELECT a$1 FROM b'),
    ])
    def test_literals_become_question_marks(self, sql, expected):
        assert pg.redact_query(sql) == expected

    def test_secret_from_the_runbook_never_survives(self):
        out = pg.redact_query("SELECT pg_sleep(60) WHERE 'hunter2-secret' <> ''")
        assert 'hunter2' not in out
        assert out == 'SELECT pg_sleep(?) WHERE ? <> ?'

    def test_role_passwords_are_redacted(self):
        out = pg.redact_query("ALTER ROLE app PASSWORD 'S3cr3t!' VALID UNTIL '2030-01-01'")
        assert out == 'ALTER ROLE app PASSWORD ? VALID UNTIL ?'

    def test_comments_are_dropped(self):
        out = pg.redact_query("SELECT 1 -- token=abc\n/* outer /* nested key */ still */ FROM t")
        assert out == 'SELECT ? FROM t'
        assert 'token' not in out and 'key' not in out

    def test_unterminated_literal_redacts_the_rest(self):
        assert pg.redact_query("SELECT 'secret never closed FROM t") == 'SELECT ?'
        assert pg.redact_query('SELECT $q$ secret never closed') == 'SELECT ?'

    def test_whitespace_collapsed(self):
        assert pg.redact_query('SELECT\n   a,\t b\r\n FROM   t  ') == 'SELECT a, b FROM t'

    def test_truncated_with_ellipsis(self):
        out = pg.redact_query('SELECT ' + ', '.join('col%d' % i for i in range(100)), max_len=30)
        assert len(out) == 30 and out.endswith('...')
        assert pg.redact_query('SELECT a', max_len=30) == 'SELECT a'

    def test_truncation_happens_after_redaction(self):
        # a literal cut in half must not leak its first part
        out = pg.redact_query("SELECT '" + 'x' * 500 + "'", max_len=20)
        assert 'x' not in out

    def test_none_and_placeholder_texts(self):
        assert pg.redact_query(None) is None
        assert pg.redact_query('<insufficient privilege>') == '<insufficient privilege>'


class TestBlockingRoots:
    def test_direct_and_chained_waits_resolve_to_the_holder(self):
        # 10 holds the lock; 11 and 12 wait for it; 13 waits behind 10, 11 and 12 in the queue
        roots = pg.blocking_roots({10: [], 11: [10], 12: [10], 13: [10, 11, 12], 20: []})
        assert roots == {11: [10], 12: [10], 13: [10]}

    def test_long_chain(self):
        assert pg.blocking_roots({1: [2], 2: [3], 3: [4], 4: []})[1] == [4]

    def test_two_independent_roots(self):
        assert pg.blocking_roots({5: [1, 2], 1: [], 2: [3]})[5] == [1, 3]

    def test_prepared_transaction_pid_zero_is_a_root(self):
        assert pg.blocking_roots({7: [0]}) == {7: [0]}

    def test_cycle_without_exit_names_the_cycle_members(self):
        roots = pg.blocking_roots({1: [2], 2: [1]})
        assert roots == {1: [2], 2: [1]}

    def test_cycle_with_an_exit_finds_the_exit(self):
        assert pg.blocking_roots({1: [2], 2: [1, 3], 3: []})[1] == [3]

    def test_blocked_counts_groups_by_root(self):
        roots = pg.blocking_roots({11: [10], 12: [10], 13: [11], 30: [31]})
        assert pg.blocked_counts(roots) == {10: [11, 12, 13], 31: [30]}


class TestUtilisation:
    def test_percent_of_usable_slots(self):
        assert pg.utilisation_pct(50, 103, 3) == 50.0
        assert pg.utilisation_pct(1, 3, 0) == 33.3

    def test_no_usable_slots_is_none_not_division_error(self):
        assert pg.utilisation_pct(1, 3, 3) is None


def _session(**kw):
    base = dict(pid=100, user='app', database='svpms', application='api', backend_type='client backend',
                superuser=False)
    base.update(kw)
    return base


GUARDS = dict(users={'app'}, databases={'svpms'})


class TestGuards:
    def test_listed_client_session_may_be_touched(self):
        assert pg.guard_reason(_session(), 1, **GUARDS) is None

    @pytest.mark.parametrize('session,reason', [
        (_session(pid=1), 'own session'),
        (_session(superuser=True, user='app'), 'superuser session'),
        (_session(user='batch'), 'user batch not listed'),
        (_session(database='other'), 'database other not listed'),
        (_session(backend_type='walsender', user='repl'), 'replication backend'),
        (_session(backend_type='autovacuum worker', user=None, database='svpms'), 'autovacuum'),
        (_session(backend_type='checkpointer', user=None, database=None), 'not a client backend'),
    ])
    def test_guard_reasons(self, session, reason):
        assert reason in pg.guard_reason(session, 1, **GUARDS)

    def test_own_session_wins_over_everything(self):
        assert 'own session' in pg.guard_reason(_session(pid=1, superuser=True), 1, allow_superusers=True, **GUARDS)

    def test_explicit_allows(self):
        assert pg.guard_reason(_session(superuser=True), 1, allow_superusers=True, **GUARDS) is None
        assert pg.guard_reason(_session(backend_type='walsender'), 1, allow_replication=True, **GUARDS) is None
        assert pg.guard_reason(_session(backend_type='autovacuum worker'), 1, allow_autovacuum=True, **GUARDS) is None
        # the launcher is never a target, even with allow_autovacuum
        assert pg.guard_reason(_session(backend_type='autovacuum launcher'), 1, allow_autovacuum=True, **GUARDS)

    def test_applications_and_pids_restrict_further(self):
        assert 'application' in pg.guard_reason(_session(), 1, applications={'worker'}, **GUARDS)
        assert pg.guard_reason(_session(), 1, applications={'api'}, **GUARDS) is None
        assert 'pid not listed' in pg.guard_reason(_session(), 1, pids={5}, **GUARDS)
        assert pg.guard_reason(_session(), 1, pids={100}, **GUARDS) is None

    def test_select_sessions_splits_and_explains(self):
        allowed, skipped = pg.select_sessions([_session(pid=2), _session(pid=3, user='batch')], 1, **GUARDS)
        assert [s['pid'] for s in allowed] == [2]
        assert skipped == [dict(pid=3, user='batch', database='svpms', reason='user batch not listed in users')]


class TestIndexAdvice:
    def test_equality_columns_from_normalised_statements(self):
        assert pg.equality_columns('SELECT * FROM items WHERE sku = $1') == ['sku']
        assert pg.equality_columns('SELECT * FROM items i WHERE i.sku = $1 AND "Status" = $2') == ['sku', 'status']
        assert pg.equality_columns('SELECT * FROM items WHERE qty > $1') == []

    def test_mentions_table(self):
        assert pg.mentions_table('SELECT * FROM public.items WHERE sku = $1', 'public', 'items')
        assert pg.mentions_table('select 1 from items join x on true', 'public', 'items')
        assert not pg.mentions_table('SELECT * FROM items_archive', 'public', 'items')
        assert not pg.mentions_table('SELECT items FROM t', 'public', 'items')

    def test_advice_uses_the_most_called_equality_column(self):
        statements = [dict(queryid=1, calls=5, query='SELECT * FROM items WHERE status = $1'),
                      dict(queryid=2, calls=900, query='SELECT * FROM items WHERE sku = $1'),
                      dict(queryid=3, calls=1000, query='SELECT * FROM orders WHERE id = $1')]
        advice, column, queryids = pg.index_advice('public', 'items', statements)
        assert column == 'sku'
        assert advice.startswith('CREATE INDEX CONCURRENTLY ON public.items (sku)')
        assert queryids == [1, 2]

    def test_advice_without_equality_names_queries_to_review(self):
        advice, column, queryids = pg.index_advice(
            'public', 'items', [dict(queryid=9, calls=3, query='SELECT count(*) FROM items WHERE qty > $1')])
        assert column is None and queryids == [9]
        assert 'Review queryid 9' in advice and 'CREATE INDEX CONCURRENTLY ON public.items (<column>)' in advice

    def test_advice_without_statements(self):
        advice, column, queryids = pg.index_advice('public', 'items', [])
        assert column is None and queryids == []
        assert 'pg_stat_statements' in advice and '(<column>)' in advice


PARAMS = dict(host='db', port=5432, database='svpms', user='bot', connect_timeout=5, sslmode='prefer')


class TestClassifyConnectError:
    @pytest.mark.parametrize('text,kind,hint', [
        ('connection to server at "db", port 5432 failed: Connection refused', 'unreachable', 'firewall'),
        ('connection to server at "db", port 5432 failed: timeout expired', 'timeout', 'connect_timeout'),
        ('FATAL:  password authentication failed for user "bot"', 'auth_failed', 'pg_hba'),
        ('FATAL:  no pg_hba.conf entry for host "1.2.3.4", user "bot", database "svpms", SSL off',
         'auth_failed', 'pg_hba'),
        ('FATAL:  role "bot" does not exist', 'auth_failed', 'check user'),
        ('FATAL:  database "svpms" does not exist', 'not_found', 'database option'),
        ('server does not support SSL, but SSL was required', 'tls', 'sslmode'),
        ('FATAL:  sorry, too many clients already', 'unreachable', 'max_connections'),
    ])
    def test_kinds_and_what_to_check(self, text, kind, hint):
        err = pg.classify_connect_error(psycopg2.OperationalError(text), PARAMS)
        assert err.kind == kind
        assert hint in err.describe()
        assert checks.finding(err) == dict(reachable=False, error_kind=kind, msg=err.describe())


class TestConnectionParams:
    def test_defaults_are_valid(self):
        assert pg.check_connection_params(dict(host='h', port=5432, connect_timeout=5, statement_timeout_ms=5000)) == []

    def test_bounds_name_the_parameter(self):
        errors = pg.check_connection_params(dict(host='', port=0, connect_timeout=61, statement_timeout_ms=1))
        assert len(errors) == 4
        for name in ('connect_timeout', 'statement_timeout_ms', 'port', 'host'):
            assert any(e.startswith(name) for e in errors)

    def test_password_is_no_log_with_env_fallback(self):
        spec = pg.postgres_argument_spec()
        assert spec['password']['no_log'] is True
        assert spec['password']['fallback'][1] == ['PGPASSWORD']
        assert spec['application_name']['default'] == 'svpms-incident-response'
