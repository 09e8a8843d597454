"""pg_table_check against the real PostgreSQL on 127.0.0.1:5432.

A database and roles of our own (unique names, dropped at the end): an "app" role
granted SELECT on the users table, an "other" role without it (it is also used as the
connecting role that may not read the table), a "noschema" role with SELECT on a table
in a schema it has no USAGE on. The users table holds USERS rows with e-mail addresses
and password hashes that must never show up in the module output. The module runs as
Ansible runs it (tests/helpers/modules.run_module; one run through `ansible` itself).
"""

import json
import uuid

import psycopg2
import pytest

from tests.helpers.modules import assert_no_traceback, run_adhoc, run_module
from tests.helpers.servers import free_port

HOST = '127.0.0.1'
PORT = 5432
USERS = 25
EMAIL = 'alice.secret@example.invalid'
PWHASH = '$2b$12$hunter2hashhunter2hashhunter2hash'
PASSWORD = 'hunter2-login-password'


def admin_conn(db='postgres'):
    conn = psycopg2.connect(host=HOST, port=PORT, user='postgres', dbname=db, connect_timeout=5,
                            application_name='svpms-it-admin')
    conn.autocommit = True
    return conn


def execute(db, statement, args=None):
    conn = admin_conn(db)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
    finally:
        conn.close()


@pytest.fixture(scope='module')
def env():
    s = uuid.uuid4().hex[:8]
    e = dict(db='svpms_it_tc_%s' % s, app='svpms_it_tc_app_%s' % s, other='svpms_it_tc_other_%s' % s,
             noschema='svpms_it_tc_nosch_%s' % s)
    roles = [e['app'], e['other'], e['noschema']]
    admin = admin_conn()
    admin.cursor().execute('CREATE DATABASE %s' % e['db'])
    try:
        for role in roles:
            admin.cursor().execute('CREATE ROLE %s LOGIN' % role)
        execute(e['db'], """
            CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, password_hash text NOT NULL);
            INSERT INTO users (email, password_hash)
                SELECT CASE WHEN i = 1 THEN %s ELSE 'user' || i || '@example.invalid' END, %s
                FROM generate_series(1, {n}) i;
            ANALYZE users;
            CREATE TABLE empty_users (id int, email text);
            CREATE SEQUENCE user_ids;
            CREATE SCHEMA auth;
            CREATE TABLE auth.accounts (id int, email text);
            INSERT INTO auth.accounts VALUES (1, %s);
            REVOKE ALL ON SCHEMA public FROM PUBLIC;
            GRANT USAGE ON SCHEMA public TO {app}, {other};
            GRANT SELECT ON users, empty_users TO {app};
            GRANT SELECT ON auth.accounts TO {noschema};
        """.format(n=USERS, app=e['app'], other=e['other'], noschema=e['noschema']), (EMAIL, PWHASH, EMAIL))
        yield e
    finally:
        admin.cursor().execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                               'WHERE pid <> pg_backend_pid() AND (datname = %s OR usename = ANY(%s))',
                               (e['db'], roles))
        admin.cursor().execute('DROP DATABASE IF EXISTS %s WITH (FORCE)' % e['db'])
        for role in roles:
            admin.cursor().execute('DROP ROLE IF EXISTS %s' % role)
        admin.close()


def check(env, check_mode=False, **args):
    base = dict(host=HOST, port=PORT, user='postgres', database=env['db'], connect_timeout=3)
    base.update(args)
    result = run_module('pg_table_check', base, check=check_mode)
    assert_no_traceback(result)
    for secret in (EMAIL, PWHASH, PASSWORD, 'hunter2'):
        assert secret not in result.stdout + result.stderr
    return result


def test_healthy_table_counts_rows_and_checks_readers(env):
    for check_mode in (False, True):  # read only: check mode reports the same
        r = check(env, check_mode=check_mode, table='users', readers=[env['app'], env['other']])
        assert not r.failed and r['changed'] is False
        assert r['reachable'] is True and 'error_kind' not in r
        assert r['table'] == 'public.users' and r['database'] == env['db'] and r['exists'] is True
        assert r['rows'] == USERS and r['rows_at_least'] == USERS and r['capped'] is False
        assert r['estimated_rows'] == USERS
        app, other = r['readers']
        assert app == dict(role=env['app'], exists=True, can_select=True, has_table_select=True, has_schema_usage=True)
        assert other['role'] == env['other'] and other['exists'] is True and other['can_select'] is False
        assert other['has_table_select'] is False and other['has_schema_usage'] is True
        assert len(r['problems']) == 1
        assert "REVOKE'd grant?" in r['problems'][0]
        assert 'GRANT SELECT ON public.users TO %s;' % env['other'] in r['problems'][0]


def test_empty_table_is_a_min_rows_problem(env):
    r = check(env, table='public.empty_users', readers=[env['app']])
    assert not r.failed and r['exists'] is True and r['rows'] == 0
    assert len(r['problems']) == 1 and 'fewer than min_rows=1' in r['problems'][0]
    assert 'nobody can log in' in r['problems'][0]
    ok = check(env, table='public.empty_users', min_rows=0)
    assert ok['problems'] == []


def test_missing_table_and_schema(env):
    r = check(env, table='userz', readers=[env['app']])
    assert not r.failed and r['changed'] is False and r['reachable'] is True
    assert r['exists'] is False and r['rows'] is None and r['estimated_rows'] is None
    assert r['readers'] == [dict(role=env['app'], exists=True, can_select=None, has_table_select=None,
                                 has_schema_usage=None)]
    assert len(r['problems']) == 1 and 'public.userz does not exist in database %s' % env['db'] in r['problems'][0]
    nsp = check(env, table='nosuch.users')
    assert nsp['exists'] is False and 'Schema nosuch does not exist' in nsp['problems'][0]
    seq = check(env, table='user_ids')
    assert seq['exists'] is False and 'is a sequence, not a table' in seq['problems'][0]


def test_count_is_capped_at_max_count(env):
    r = check(env, table='users', max_count=10, min_rows=5)
    assert not r.failed and r['exists'] is True
    assert r['rows'] is None and r['capped'] is True and r['rows_at_least'] == 11
    assert r['estimated_rows'] == USERS and r['problems'] == []
    exact = check(env, table='users', max_count=USERS)
    assert exact['rows'] == USERS and exact['capped'] is False


@pytest.mark.parametrize('table', ['a;drop', 'x.y.z', '', ' ', 'users; DROP TABLE users', '1users', 'public.',
                                   '"users"', 'a' * 64])
def test_bad_table_name_is_a_clear_error(env, table):
    r = check(env, table=table)
    assert r.failed and 'table' in r['msg']
    assert 'schema.table' in r['msg'] or 'must not be empty' in r['msg']
    assert 'reachable' not in r


@pytest.mark.parametrize('args, word', [
    (dict(max_count=0), 'max_count must be between'),
    (dict(min_rows=-1), 'min_rows must be 0 or more'),
    (dict(min_rows=20, max_count=10), 'min_rows (20) must not be larger than max_count (10)'),
    (dict(readers=['']), 'readers must be role names'),
])
def test_bad_numbers_and_readers_are_clear_errors(env, args, word):
    r = check(env, table='users', **args)
    assert r.failed and word in r['msg']


def test_nonexistent_reader_role_is_a_problem(env):
    r = check(env, table='users', readers=[env['app'], 'svpms_it_tc_ghost'])
    assert not r.failed and r['rows'] == USERS
    assert r['readers'][1] == dict(role='svpms_it_tc_ghost', exists=False, can_select=None, has_table_select=None,
                                   has_schema_usage=None)
    assert len(r['problems']) == 1 and 'Role svpms_it_tc_ghost (in readers) does not exist' in r['problems'][0]


def test_reader_without_schema_usage_gets_the_usage_grant(env):
    r = check(env, table='auth.accounts', readers=[env['noschema']])
    reader = r['readers'][0]
    assert reader['has_table_select'] is True and reader['has_schema_usage'] is False and reader['can_select'] is False
    assert 'GRANT USAGE ON SCHEMA auth TO %s;' % env['noschema'] in r['problems'][0]
    assert 'GRANT SELECT' not in r['problems'][0]


def test_connecting_role_that_cannot_read_is_a_permission_finding(env):
    r = check(env, table='users', user=env['other'], readers=[env['app']])
    assert not r.failed and r['changed'] is False
    assert r['reachable'] is True and r['error_kind'] == 'permission'
    assert 'GRANT SELECT ON public.users TO %s;' % env['other'] in r['msg']
    assert r['exists'] is True and r['rows'] is None and r['rows_at_least'] is None
    assert r['estimated_rows'] == USERS
    assert r['readers'][0]['can_select'] is True  # the readers are still checked from the catalog
    assert any('Could not count the rows of public.users' in p for p in r['problems'])


def test_unreachable_server_is_a_finding(env):
    r = check(env, table='users', port=free_port(), readers=[env['app']], password=PASSWORD)
    assert not r.failed and r['changed'] is False
    assert r['reachable'] is False and r['error_kind'] == 'unreachable' and r['msg']
    assert r['exists'] is None and r['rows'] is None and r['table'] == 'public.users'
    assert r['problems'] and r['problems'][0].startswith('Could not check public.users')
    missing_db = check(env, table='users', database=env['db'] + '_gone')
    assert not missing_db.failed and missing_db['error_kind'] == 'not_found'


def test_through_ansible_without_secrets(env):
    r = run_adhoc('svpms.incident_response.pg_table_check',
                  dict(host=HOST, port=PORT, user='postgres', password=PASSWORD, database=env['db'],
                       table='public.users', readers=[env['app']]), check=True)
    assert r.rc == 0, r.stdout + r.stderr
    assert r['reachable'] is True and r['rows'] == USERS and r['problems'] == []
    text = r.stdout + r.stderr + json.dumps(r)
    assert 'Traceback' not in text
    for secret in (EMAIL, PWHASH, PASSWORD):
        assert secret not in text
