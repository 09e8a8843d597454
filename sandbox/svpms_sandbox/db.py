"""The sandbox's PostgreSQL database on the machine's server: create/seed/drop
(items, tenant_quotas, users), pg_stat_activity reads, the users-table grant of
the user_table_denied fault, and the lock holder of the lock_contention fault.

One database (svpms_sandbox_<twin port>) and two LOGIN roles per sandbox
(svpms_sbx_<twin port>_app for the API, ..._batch for batch jobs), both
non-superuser. The admin user (trust auth) creates and drops them; every
connection has a connect timeout.
"""

import json
import os
import secrets
import select
import signal
import sys
import time

import psycopg2
from psycopg2 import sql

from . import auth
from . import constants as C


class DatabaseError(Exception):
    """PostgreSQL is unreachable or refused a sandbox operation (message says which)."""


def settings(twin_port):
    """Where the sandbox database lives and what it is called (from the environment + twin port)."""
    try:
        port = int(os.environ.get(C.PG_PORT_ENV) or C.PG_DEFAULT_PORT)
    except ValueError:
        raise DatabaseError('%s must be a port number, got %r' % (C.PG_PORT_ENV, os.environ.get(C.PG_PORT_ENV)))
    return {
        'host': os.environ.get(C.PG_HOST_ENV) or C.PG_DEFAULT_HOST,
        'port': port,
        'admin_user': os.environ.get(C.PG_ADMIN_ENV) or C.PG_DEFAULT_ADMIN,
        'database': C.DB_NAME_FORMAT % twin_port,
        'app_user': C.APP_ROLE_FORMAT % twin_port,
        'batch_user': C.BATCH_ROLE_FORMAT % twin_port,
    }


def where(cfg):
    return '%s@%s:%s' % (cfg['admin_user'], cfg['host'], cfg['port'])


def connect(cfg, user, dbname, application_name, autocommit=True, **kw):
    conn = psycopg2.connect(host=cfg['host'], port=cfg['port'], user=user, dbname=dbname,
                            connect_timeout=C.PG_CONNECT_TIMEOUT, application_name=application_name, **kw)
    conn.autocommit = autocommit
    return conn


def admin_connect(cfg, dbname='postgres'):
    try:
        return connect(cfg, cfg['admin_user'], dbname, 'svpms-sandbox-admin')
    except psycopg2.Error as exc:
        raise DatabaseError('PostgreSQL at %s (db %s) is not reachable: %s'
                            % (where(cfg), dbname, str(exc).strip().splitlines()[0] if str(exc).strip() else exc))


def _terminate(cur, cfg):
    cur.execute('SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity '
                'WHERE (datname = %s OR usename IN (%s, %s)) AND pid <> pg_backend_pid()',
                (cfg['database'], cfg['app_user'], cfg['batch_user']))
    return cur.fetchone()[0]


def drop(cfg):
    """Terminate the sandbox's backends, drop its database and both roles. -> summary string."""
    conn = admin_connect(cfg)
    try:
        with conn.cursor() as cur:
            terminated = _terminate(cur, cfg)
            cur.execute('SELECT 1 FROM pg_database WHERE datname = %s', (cfg['database'],))
            had_db = cur.fetchone() is not None
            cur.execute('DROP DATABASE IF EXISTS {} WITH (FORCE)'.format(_ident(cur, cfg['database'])))
            cur.execute('SELECT rolname FROM pg_roles WHERE rolname IN (%s, %s)',
                        (cfg['app_user'], cfg['batch_user']))
            roles = sorted(r[0] for r in cur.fetchall())
            for role in roles:
                cur.execute(sql.SQL('DROP ROLE IF EXISTS {}').format(sql.Identifier(role)))
    except psycopg2.Error as exc:
        raise DatabaseError('dropping %s on %s failed: %s' % (cfg['database'], where(cfg), exc))
    finally:
        conn.close()
    if not had_db and not roles:
        return 'not present'
    return 'dropped %s and roles %s (%d backends terminated)' % (
        cfg['database'] if had_db else '(no database)', ', '.join(roles) or '-', terminated)


def _ident(cur, name):
    return sql.Identifier(name).as_string(cur)


def create(cfg):
    """(Re)create the sandbox database and roles and seed items + tenant_quotas. -> row counts."""
    drop(cfg)  # a stale one left by a sandbox that died on the same twin port
    conn = admin_connect(cfg)
    try:
        with conn.cursor() as cur:
            for role in (cfg['app_user'], cfg['batch_user']):
                cur.execute(sql.SQL('CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE').format(
                    sql.Identifier(role)))
            cur.execute(sql.SQL('CREATE DATABASE {} OWNER {}').format(
                sql.Identifier(cfg['database']), sql.Identifier(cfg['app_user'])))
    except psycopg2.Error as exc:
        raise DatabaseError('creating %s on %s failed: %s' % (cfg['database'], where(cfg), exc))
    finally:
        conn.close()
    conn = admin_connect(cfg, cfg['database'])
    try:
        with conn.cursor() as cur:
            # the tables belong to the API's role
            cur.execute(sql.SQL('SET ROLE {}').format(sql.Identifier(cfg['app_user'])))
            cur.execute('CREATE TABLE items (id serial PRIMARY KEY, tenant_id text NOT NULL, sku text NOT NULL, '
                        'name text NOT NULL, quantity int NOT NULL)')
            # no index on tenant_id: a cache miss is a real sequential scan
            cur.execute("INSERT INTO items (tenant_id, sku, name, quantity) "
                        "SELECT (%s::text[])[1 + g %% %s], 'SKU-' || lpad(((g * 7919) %% 100000)::text, 5, '0'), "
                        "(ARRAY['pallet','crate','tote','drum','bin'])[1 + g %% 5], (g * 31) %% 500 "
                        "FROM generate_series(1, %s) g", (list(C.TENANTS), len(C.TENANTS), C.ITEMS_ROWS))
            cur.execute('CREATE TABLE tenant_quotas (tenant_id text PRIMARY KEY, '
                        'requests_today bigint NOT NULL DEFAULT 0)')
            cur.execute('INSERT INTO tenant_quotas (tenant_id, requests_today) SELECT unnest(%s::text[]), 0',
                        (list(C.TENANTS),))
            cur.execute(sql.SQL('GRANT SELECT ON items TO {0}; GRANT SELECT, UPDATE ON tenant_quotas TO {0}').format(
                sql.Identifier(cfg['batch_user'])))
            # the API's users (logins); like the other tables it belongs to the API's role
            cur.execute('CREATE TABLE public.users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, '
                        'password_hash text NOT NULL, active boolean NOT NULL DEFAULT true, '
                        'created_at timestamptz DEFAULT now())')
            cur.execute(sql.SQL('GRANT SELECT ON public.users TO {}').format(sql.Identifier(cfg['app_user'])))
            cur.executemany('INSERT INTO public.users (email, password_hash, active) VALUES (%s, %s, %s)',
                            seed_users())
            cur.execute('RESET ROLE')
            cur.execute('ANALYZE items; ANALYZE tenant_quotas; ANALYZE public.users')
            cur.execute('SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM tenant_quotas), '
                        '(SELECT count(*) FROM public.users)')
            items, quotas, users = cur.fetchone()
    except psycopg2.Error as exc:
        raise DatabaseError('seeding %s on %s failed: %s' % (cfg['database'], where(cfg), exc))
    finally:
        conn.close()
    return {'items': items, 'tenant_quotas': quotas, 'users': users}


def seed_users():
    """(email, password_hash, active) rows: USER_COUNT users with random passwords nobody knows (every
    10th inactive), then the synthetic probe user with the sandbox's placeholder password."""
    rows = [('user%03d@svpms.example.com' % i, auth.hash_password(secrets.token_urlsafe(18)), i % 10 != 0)
            for i in range(1, C.USER_COUNT + 1)]
    rows.append((C.PROBE_USER, auth.hash_password(C.PROBE_PASSWORD), True))
    return rows


def users_privilege(cfg):
    """Whether the API's role may SELECT from public.users (has_table_privilege)."""
    conn = admin_connect(cfg, cfg['database'])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT has_table_privilege(%s, 'public.users', 'SELECT')", (cfg['app_user'],))
            return cur.fetchone()[0]
    except psycopg2.Error as exc:
        raise DatabaseError('reading the privileges on public.users in %s failed: %s' % (cfg['database'], exc))
    finally:
        conn.close()


def set_users_privilege(cfg, allowed):
    """GRANT (allowed) or REVOKE SELECT ON public.users to/from the API's role, as the admin user."""
    conn = admin_connect(cfg, cfg['database'])
    stmt = 'GRANT SELECT ON public.users TO {}' if allowed else 'REVOKE SELECT ON public.users FROM {}'
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL(stmt).format(sql.Identifier(cfg['app_user'])))
    except psycopg2.Error as exc:
        raise DatabaseError('%s on public.users in %s failed: %s' % (stmt.split()[0], cfg['database'], exc))
    finally:
        conn.close()


def lock_holder_sessions(cfg):
    """-> (holder sessions [{pid, state, ...}], blocked sessions [{pid, usename, blocking_pids}])."""
    conn = admin_connect(cfg)
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT pid, state, usename, xact_start FROM pg_stat_activity '
                        'WHERE datname = %s AND application_name = %s AND usename = %s',
                        (cfg['database'], C.BATCH_APP_NAME, cfg['batch_user']))
            holders = [dict(zip(('pid', 'state', 'usename', 'xact_start'), r)) for r in cur.fetchall()]
            cur.execute('SELECT pid, usename, application_name, pg_blocking_pids(pid) FROM pg_stat_activity '
                        'WHERE datname = %s AND cardinality(pg_blocking_pids(pid)) > 0', (cfg['database'],))
            blocked = [dict(zip(('pid', 'usename', 'application_name', 'blocking_pids'), r)) for r in cur.fetchall()]
    finally:
        conn.close()
    return holders, blocked


# ---------------------------------------------------------------- lock holder
def hold_locks(cfg, max_seconds=C.LOCK_HOLDER_MAX_SECONDS, out=sys.stdout):
    """`python -m svpms_sandbox lock-holder`: the nightly reconcile job that forgot to commit.

    Connects as the batch role, takes a row lock on every tenant_quotas row in an
    open transaction, then stays idle in transaction (no further statement: that
    would reset state_change). Exits when its backend is terminated, on SIGTERM
    (rollback), or after max_seconds.
    """
    def say(msg):
        out.write('%s lock-holder: %s\n' % (time.strftime('%Y-%m-%dT%H:%M:%S'), msg))
        out.flush()

    stop = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: stop.append(signum))
    try:
        conn = connect(cfg, cfg['batch_user'], cfg['database'], C.BATCH_APP_NAME, autocommit=False)
        cur = conn.cursor()
        # psycopg2 sends BEGIN first: BEGIN; UPDATE ...; and then nothing
        cur.execute('UPDATE tenant_quotas SET requests_today = requests_today WHERE true')
        rows = cur.rowcount
    except psycopg2.Error as exc:
        say('cannot take the locks: %s' % str(exc).strip())
        return 1
    say('holding row locks on %d tenant_quotas rows in an open transaction (backend pid %d, user %s, db %s); '
        'idle in transaction until terminated, SIGTERM or %d s'
        % (rows, conn.get_backend_pid(), cfg['batch_user'], cfg['database'], max_seconds))
    deadline = time.monotonic() + max_seconds
    while True:
        if stop:
            say('signal %d: rolling back and exiting' % stop[0])
            try:
                conn.rollback()
                conn.close()
            except psycopg2.Error:
                pass
            return 0
        if time.monotonic() > deadline:
            say('hard cap of %d s reached: rolling back and exiting' % max_seconds)
            try:
                conn.rollback()
                conn.close()
            except psycopg2.Error:
                pass
            return 0
        try:
            readable = select.select([conn.fileno()], [], [], 1.0)[0]
        except (OSError, ValueError, psycopg2.Error):
            readable = [True]
        if readable:
            try:
                conn.poll()  # reads what the server sent; raises when it closed the session
            except psycopg2.Error as exc:
                say('backend terminated (%s): exiting' % ' '.join(str(exc).split()))
                return 0
            if conn.closed:
                say('connection closed by the server: exiting')
                return 0


def read_db_file(state_dir):
    try:
        with open(os.path.join(state_dir, C.DB_FILE)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
