# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared PostgreSQL plumbing for the pg_* modules of svpms.incident_response.

One place for: the connection options (PG* environment fallbacks, password with
``no_log``), ``connect`` (connect timeout, TCP keepalives, autocommit, our own
session bounded by ``statement_timeout``/``lock_timeout``, read-only by
default, recognisable ``application_name``), typed errors whose messages say
what to check, the "psycopg2 missing" failure, and the pure logic the modules
share (SQL literal redaction, lock-chain roots, session guards).

Usage in a module::

    from ansible_collections.svpms.incident_response.plugins.module_utils.postgres import (
        PostgresError, connect, ensure_psycopg2, finding, postgres_argument_spec)

    module = AnsibleModule(argument_spec=postgres_argument_spec(), supports_check_mode=True)
    ensure_psycopg2(module)
    try:
        conn = connect(module)
    except PostgresError as err:
        module.exit_json(changed=False, **finding(err))
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible_collections.svpms.incident_response.plugins.module_utils.checks import CheckError

try:
    import psycopg2
    import psycopg2.extensions
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by sanity only
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = exc

SSLMODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']
DEFAULT_APPLICATION_NAME = 'svpms-incident-response'
DEFAULT_CONNECT_TIMEOUT = 5
DEFAULT_STATEMENT_TIMEOUT_MS = 5000
QUERY_TEXT_MAX_LEN = 200


def postgres_argument_spec():
    """The connection options every pg_* module accepts (a fresh dict)."""
    return dict(
        host=dict(type='str', default='127.0.0.1', aliases=['login_host'],
                  fallback=(env_fallback, ['PGHOST'])),
        port=dict(type='int', default=5432, aliases=['login_port'],
                  fallback=(env_fallback, ['PGPORT'])),
        database=dict(type='str', default='postgres', aliases=['db', 'login_db'],
                      fallback=(env_fallback, ['PGDATABASE'])),
        user=dict(type='str', default='postgres', aliases=['login_user'],
                  fallback=(env_fallback, ['PGUSER'])),
        password=dict(type='str', no_log=True, aliases=['login_password'],
                      fallback=(env_fallback, ['PGPASSWORD'])),
        sslmode=dict(type='str', default='prefer', choices=SSLMODES),
        ssl_rootcert=dict(type='path'),
        connect_timeout=dict(type='int', default=DEFAULT_CONNECT_TIMEOUT),
        statement_timeout_ms=dict(type='int', default=DEFAULT_STATEMENT_TIMEOUT_MS),
        application_name=dict(type='str', default=DEFAULT_APPLICATION_NAME),
    )


def check_connection_params(params):
    """Messages for invalid connection options (empty list when all are fine)."""
    errors = []
    timeout = params.get('connect_timeout')
    if timeout is None or not 1 <= timeout <= 60:
        errors.append('connect_timeout must be between 1 and 60 seconds, got %s' % timeout)
    stmt = params.get('statement_timeout_ms')
    if stmt is None or not 100 <= stmt <= 600000:
        errors.append('statement_timeout_ms must be between 100 and 600000 milliseconds, got %s' % stmt)
    port = params.get('port')
    if port is None or not 1 <= port <= 65535:
        errors.append('port must be between 1 and 65535, got %s' % port)
    if not (params.get('host') or '').strip():
        errors.append('host must not be empty')
    return errors


def ensure_psycopg2(module):
    """Fail the module with Ansible's standard message when psycopg2 is missing."""
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=str(PSYCOPG2_IMPORT_ERROR))


def validate_connection_params(module):
    errors = check_connection_params(module.params)
    if errors:
        module.fail_json(msg='; '.join(errors))


# --- typed errors ------------------------------------------------------------

class PostgresError(CheckError):
    """A failed PostgreSQL connect or query, with what an operator should check."""

    kind = 'query'

    def __init__(self, message, hint=None, where=None, sqlstate=None, reachable=None):
        self.sqlstate = sqlstate
        super(PostgresError, self).__init__(message, hint=hint, where=where, reachable=reachable)


class PostgresUnreachableError(PostgresError):
    kind = 'unreachable'
    reachable = False


class PostgresTimeoutError(PostgresError):
    kind = 'timeout'
    reachable = False


class PostgresAuthError(PostgresError):
    kind = 'auth_failed'
    reachable = False


class PostgresTLSError(PostgresError):
    kind = 'tls'
    reachable = False


class PostgresNotFoundError(PostgresError):
    kind = 'not_found'
    reachable = False


class PostgresPermissionError(PostgresError):
    kind = 'permission'


class PostgresQueryError(PostgresError):
    kind = 'query'


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return ' '.join(text.split())


def classify_connect_error(exc, params):
    """Turn a psycopg2 error raised by connect() into a typed PostgresError."""
    where = 'PostgreSQL %s:%s (database %s, user %s)' % (
        params.get('host'), params.get('port'), params.get('database'), params.get('user'))
    text = _first_line(exc)
    low = text.lower()
    if 'timeout expired' in low or 'timed out' in low:
        return PostgresTimeoutError(
            'no answer within connect_timeout=%ss (%s)' % (params.get('connect_timeout'), text),
            hint='Check that host/port are right and that a firewall or security group is not '
                 'dropping packets to the port; raise connect_timeout only if the server is just slow',
            where=where)
    if 'pg_hba.conf' in low or 'authentication failed' in low or 'no password supplied' in low:
        return PostgresAuthError(
            text, where=where,
            hint='Check user/password (or PGPASSWORD/.pgpass) and that pg_hba.conf allows this user, '
                 'database and client address with the method you use')
    if re.search(r'role "[^"]*" does not exist', low):
        return PostgresAuthError(text, hint='The role does not exist on this server: check user', where=where)
    if re.search(r'database "[^"]*" does not exist', low):
        return PostgresNotFoundError(text, hint='Check the database option (or PGDATABASE)', where=where)
    if any(s in low for s in ('ssl', 'certificate', 'tls')):
        return PostgresTLSError(
            text, hint='Check sslmode (%s) and ssl_rootcert against what the server offers '
                       '(ssl=on, certificate chain, host name for verify-full)' % params.get('sslmode'),
            where=where)
    if any(s in low for s in ('too many clients', 'too many connections', 'remaining connection slots',
                              'the database system is')):
        return PostgresUnreachableError(
            text, hint='The server refuses new connections (full or starting/shutting down); check '
                       'max_connections and the server state', where=where)
    return PostgresUnreachableError(
        text, hint='Check host/port, that PostgreSQL is running and listening on that address '
                   '(listen_addresses) and that no firewall blocks the port', where=where)


def classify_query_error(exc, what):
    """Turn a psycopg2 error raised by a statement into a typed PostgresError."""
    code = getattr(exc, 'pgcode', None)
    text = _first_line(getattr(exc, 'pgerror', None) or exc)
    if code == '42501':  # insufficient_privilege
        return PostgresPermissionError(
            text, where=what, sqlstate=code,
            hint='Grant the connecting role pg_monitor (to read other sessions) and '
                 'pg_signal_backend (to cancel/terminate them); sessions of superusers can only be '
                 'signalled by a superuser')
    if code in ('57014', '55P03'):  # query_canceled (statement_timeout), lock_not_available
        return PostgresTimeoutError(
            text, where=what, sqlstate=code, reachable=True,
            hint='Our own statement hit statement_timeout_ms/lock_timeout; the server is overloaded '
                 'or a lock is held: raise statement_timeout_ms only if that is expected')
    if code and code.startswith('08') or code in ('57P01', '57P02', '57P03') or \
            (code is None and isinstance(exc, psycopg2.OperationalError)):
        return PostgresUnreachableError(
            text, where=what, sqlstate=code,
            hint='The connection was lost while running the statement; check the server and the network')
    return PostgresQueryError(text, where=what, sqlstate=code)


def connect(module, params=None, read_only=True):
    """Open an autocommit connection whose statements are bounded in time.

    ``params`` defaults to ``module.params`` (a dict with the connection
    options), so a second server (a replica) can reuse the same code.
    Raises a typed PostgresError.
    """
    params = params if params is not None else module.params
    kwargs = dict(
        host=params['host'], port=params['port'], dbname=params['database'], user=params['user'],
        sslmode=params['sslmode'], connect_timeout=params['connect_timeout'],
        application_name=params.get('application_name') or DEFAULT_APPLICATION_NAME,
        # Detect a dead peer on an established connection instead of waiting forever.
        keepalives=1, keepalives_idle=10, keepalives_interval=3, keepalives_count=3,
    )
    if params.get('password'):
        kwargs['password'] = params['password']
    if params.get('ssl_rootcert'):
        kwargs['sslrootcert'] = params['ssl_rootcert']
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.Error as exc:
        raise classify_connect_error(exc, params)
    try:
        conn.autocommit = True
        stmt_ms = int(params.get('statement_timeout_ms') or DEFAULT_STATEMENT_TIMEOUT_MS)
        with conn.cursor() as cur:
            cur.execute('SET statement_timeout = %s', (stmt_ms,))
            cur.execute('SET lock_timeout = %s', (min(stmt_ms, 2000),))
            cur.execute('SET idle_in_transaction_session_timeout = %s', (max(stmt_ms * 2, 10000),))
            if read_only:
                cur.execute('SET default_transaction_read_only = on')
    except psycopg2.Error as exc:
        conn.close()
        raise classify_query_error(exc, 'setting up our session')
    return conn


def run_query(conn, sql, args=None, what=None):
    """Execute sql and return all rows as dicts; raise a typed PostgresError."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            if cur.description is None:
                return []
            names = [col.name for col in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
    except psycopg2.Error as exc:
        raise classify_query_error(exc, what or 'query')


def close_quietly(conn):
    if conn is not None:
        try:
            conn.close()
        except Exception:  # pylint: disable=broad-except
            pass


# --- pure logic ----------------------------------------------------------------

_IDENT_CHARS = re.compile(r'[A-Za-z0-9_$\x80-\U0010ffff]')
_NUMBER = re.compile(r'(?:0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+|'
                     r'(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)')
_DOLLAR_TAG = re.compile(r'\$([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$')


def _is_ident_char(ch):
    return bool(ch) and bool(_IDENT_CHARS.match(ch))


def redact_query(text, max_len=QUERY_TEXT_MAX_LEN):
    """SQL text safe to show: literals replaced with ?, comments dropped, whitespace collapsed.

    Replaced: '...' strings (with '' and, for E'...', backslash escapes), the
    prefixed forms E'', B'', X'', N'', U&'', dollar-quoted bodies ($$...$$,
    $tag$...$tag$) and numeric literals. Comments (-- and nested /* */) are
    dropped because people put secrets there too. Identifiers ("quoted" too)
    and parameters ($1) are kept. An unterminated literal redacts the rest.
    Truncated to max_len characters with '...' at the end.
    """
    if text is None:
        return None
    out = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        prev = text[i - 1] if i > 0 else ''
        # comments
        if text.startswith('--', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
            out.append(' ')
            continue
        if text.startswith('/*', i):
            depth = 0
            j = i
            while j < n:
                if text.startswith('/*', j):
                    depth += 1
                    j += 2
                elif text.startswith('*/', j):
                    depth -= 1
                    j += 2
                    if depth == 0:
                        break
                else:
                    j += 1
            i = j
            out.append(' ')
            continue
        # prefixed string literals: E'..', B'..', X'..', N'..', U&'..'
        if not _is_ident_char(prev):
            m = re.match(r"(?:[EeBbXxNn]|[Uu]&)'", text[i:i + 3])
            if m:
                escapes = ch in 'Ee'
                i = _skip_quoted(text, i + len(m.group(0)), escapes)
                out.append('?')
                continue
        if ch == "'":
            i = _skip_quoted(text, i + 1, False)
            out.append('?')
            continue
        if ch == '"':
            j = i + 1
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if ch == '$' and not _is_ident_char(prev):
            m = _DOLLAR_TAG.match(text, i)
            if m:
                tag = m.group(0)
                end = text.find(tag, m.end())
                i = n if end < 0 else end + len(tag)
                out.append('?')
                continue
            m = re.match(r'\$[0-9]+', text[i:])
            if m:  # positional parameter: keep
                out.append(m.group(0))
                i += len(m.group(0))
                continue
        if (ch.isdigit() or (ch == '.' and i + 1 < n and text[i + 1].isdigit())) and not _is_ident_char(prev):
            m = _NUMBER.match(text, i)
            if m and m.group(0):
                out.append('?')
                i = m.end()
                continue
        if _is_ident_char(ch):
            j = i
            while j < n and _is_ident_char(text[j]):
                j += 1
            out.append(text[i:j])
            i = j
            continue
        out.append(ch)
        i += 1
    result = ' '.join(''.join(out).split())
    return truncate(result, max_len)


def _skip_quoted(text, i, backslash_escapes):
    """Index just past the closing quote of a '...' literal whose body starts at i."""
    n = len(text)
    while i < n:
        ch = text[i]
        if backslash_escapes and ch == '\\':
            i += 2
            continue
        if ch == "'":
            if i + 1 < n and text[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return n


def truncate(text, max_len):
    if text is None or max_len is None or len(text) <= max_len:
        return text
    if max_len <= 3:
        return text[:max_len]
    return text[:max_len - 3] + '...'


def blocking_roots(blocked_by):
    """Root blockers of every blocked session.

    ``blocked_by`` maps pid -> iterable of pids it waits for (pg_blocking_pids).
    The chain is followed until sessions that wait for nobody; those are the
    roots. Pid 0 (a prepared transaction) is a root. In a cycle with no way out
    (a deadlock the detector has not broken yet) the cycle members are the
    roots. Returns pid -> sorted list of root pids, for pids with a non-empty
    wait list.
    """
    graph = dict((pid, sorted(set(p for p in (waits or []) if p is not None)))
                 for pid, waits in blocked_by.items())
    roots = {}
    for pid, waits in graph.items():
        if not waits:
            continue
        seen = set([pid])
        stack = list(waits)
        found = set()
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            nxt = graph.get(cur) or []
            if not nxt:
                found.add(cur)
            else:
                stack.extend(nxt)
        if not found:  # only cycles reachable
            found = seen - set([pid]) or set([pid])
        roots[pid] = sorted(found)
    return roots


def blocked_counts(roots):
    """Root pid -> number of sessions (directly or transitively) waiting for it."""
    counts = {}
    for pid, root_pids in roots.items():
        for root in root_pids:
            counts.setdefault(root, []).append(pid)
    return dict((root, sorted(pids)) for root, pids in counts.items())


def utilisation_pct(connections, max_connections, reserved):
    """Client connections as % of the slots ordinary roles may use (one decimal)."""
    usable = (max_connections or 0) - (reserved or 0)
    if usable <= 0:
        return None
    return round(float(connections) / usable * 100.0, 1)


REPLICATION_BACKENDS = ('walsender', 'logical replication launcher', 'logical replication worker',
                        'parallel apply worker', 'walreceiver')
AUTOVACUUM_BACKENDS = ('autovacuum worker', 'autovacuum launcher')


def guard_reason(session, own_pid, users, databases, applications=None, pids=None,
                 allow_superusers=False, allow_replication=False, allow_autovacuum=False):
    """Why a session that matched the target must not be touched (None: may be touched).

    ``session`` has pid, user, database, application, backend_type, superuser.
    """
    backend_type = session.get('backend_type') or 'client backend'
    if session.get('pid') == own_pid:
        return 'own session (this module)'
    if backend_type in REPLICATION_BACKENDS:
        if not allow_replication:
            return 'replication backend (%s); set allow_replication to include it' % backend_type
    elif backend_type in AUTOVACUUM_BACKENDS:
        if not allow_autovacuum or backend_type != 'autovacuum worker':
            return 'autovacuum (%s); set allow_autovacuum to include it' % backend_type
    elif backend_type != 'client backend':
        return 'not a client backend (%s)' % backend_type
    if session.get('superuser') and not allow_superusers:
        return 'superuser session (role %s); set allow_superusers to include it' % session.get('user')
    if backend_type == 'client backend':
        if session.get('user') not in users:
            return 'user %s not listed in users' % session.get('user')
        if session.get('database') not in databases:
            return 'database %s not listed in databases' % session.get('database')
        if applications and session.get('application') not in applications:
            return 'application %r not listed in applications' % session.get('application')
    if pids and session.get('pid') not in pids:
        return 'pid not listed in pids'
    return None


def select_sessions(candidates, own_pid, **guards):
    """Split target candidates into (allowed, skipped) by the guards."""
    allowed = []
    skipped = []
    for session in candidates:
        reason = guard_reason(session, own_pid, **guards)
        if reason:
            skipped.append(dict(pid=session.get('pid'), user=session.get('user'),
                                database=session.get('database'), reason=reason))
        else:
            allowed.append(session)
    return allowed, skipped


_WHERE_EQ = re.compile(
    r'\b(?:WHERE|AND|OR|ON)\s+\(?\s*(?:"?[A-Za-z_][\w$]*"?\s*\.\s*)?"?([A-Za-z_][\w$]*)"?\s*=\s*\$\d+',
    re.IGNORECASE)


def mentions_table(query, schema, table):
    """True when query reads FROM/JOIN/UPDATE/DELETE FROM schema.table (or bare table)."""
    if not query:
        return False
    pattern = r'\b(?:FROM|JOIN|UPDATE|INTO)\s+(?:ONLY\s+)?(?:"?%s"?\s*\.\s*)?"?%s"?(?![\w$])' % (
        re.escape(schema), re.escape(table))
    return re.search(pattern, query, re.IGNORECASE) is not None


def equality_columns(query):
    """Columns compared with a parameter (`col = $n`) in a normalised statement, in order."""
    if not query:
        return []
    cols = []
    for match in _WHERE_EQ.finditer(query):
        col = match.group(1).lower()
        if col not in cols:
            cols.append(col)
    return cols


def index_advice(schema, table, statements):
    """Advice text and the column for a table scanned sequentially.

    ``statements`` are pg_stat_statements rows ({queryid, calls, query}) of
    this database. Returns (advice, column, queryids). Advice only: nothing
    is ever executed.
    """
    qualified = '%s.%s' % (schema, table)
    votes = {}
    evidence = []
    for stmt in statements or []:
        if not mentions_table(stmt.get('query'), schema, table):
            continue
        evidence.append(stmt.get('queryid'))
        for col in equality_columns(stmt.get('query')):
            votes[col] = votes.get(col, 0) + (stmt.get('calls') or 0)
    if votes:
        column = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        ids = ', '.join(str(q) for q in evidence[:3])
        advice = ('CREATE INDEX CONCURRENTLY ON %s (%s) -- advice only: check the plan with EXPLAIN first '
                  '(column from WHERE %s = $n in queryid %s)' % (qualified, column, column, ids))
        return advice, column, evidence
    if evidence:
        return ('Review queryid %s (they read %s without an equality filter on a parameter) and index '
                'the columns of their WHERE/JOIN clauses: CREATE INDEX CONCURRENTLY ON %s (<column>)'
                % (', '.join(str(q) for q in evidence[:5]), qualified, qualified), None, evidence)
    return ('Review the queries that scan %s sequentially (pg_stat_statements shows none; enable it to see '
            'them) and index the columns of their WHERE clauses: CREATE INDEX CONCURRENTLY ON %s (<column>)'
            % (qualified, qualified), None, [])


# --- shared reads ----------------------------------------------------------------

SERVER_SQL = """
SELECT current_user AS user,
       COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) AS superuser,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS signal_backend,
       pg_backend_pid() AS own_pid,
       current_setting('server_version') AS server_version,
       current_setting('server_version_num')::int AS server_version_num,
       pg_is_in_recovery() AS in_recovery,
       current_database() AS database
"""

SESSIONS_SQL = """
SELECT a.pid, a.usename AS user, a.datname AS database, a.application_name AS application,
       host(a.client_addr) AS client_addr, a.state, a.backend_type,
       a.backend_start::text AS backend_start, a.xact_start::text AS xact_start,
       a.query_start::text AS query_start,
       EXTRACT(EPOCH FROM (clock_timestamp() - a.query_start))::float8 AS query_seconds,
       EXTRACT(EPOCH FROM (clock_timestamp() - a.state_change))::float8 AS state_seconds,
       EXTRACT(EPOCH FROM (clock_timestamp() - a.xact_start))::float8 AS xact_seconds,
       a.wait_event_type, a.wait_event, a.query,
       COALESCE(r.rolsuper, false) AS superuser,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END AS blocked_by
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
ORDER BY a.pid
"""

IDLE_IN_TRANSACTION_STATES = ('idle in transaction', 'idle in transaction (aborted)')


def server_info(conn):
    return run_query(conn, SERVER_SQL, what='reading server facts (version, recovery, our privileges)')[0]


def seconds(value):
    return None if value is None else round(float(value), 1)


def fetch_sessions(conn):
    """Every backend in pg_stat_activity, with lock-wait roots computed."""
    rows = run_query(conn, SESSIONS_SQL, what='reading pg_stat_activity')
    roots = blocking_roots(dict((r['pid'], r['blocked_by'] or []) for r in rows))
    waiting_for = blocked_counts(roots)
    for row in rows:
        row['blocked_by'] = sorted(row['blocked_by'] or [])
        row['root_blockers'] = roots.get(row['pid'], [])
        row['blocking'] = waiting_for.get(row['pid'], [])
    return rows, roots, waiting_for


def session_view(row, fields, query_max_len=QUERY_TEXT_MAX_LEN):
    """The operator-facing dict of one session: chosen fields plus the redacted query."""
    out = dict((name, row.get(name)) for name in ('pid', 'user', 'database', 'application', 'client_addr', 'state'))
    for name in fields:
        out[name] = row.get(name)
    out['query'] = redact_query(row.get('query'), query_max_len)
    return out


def quote_ident(name, conn):
    """A safely quoted SQL identifier (schema names come from the catalog, still quoted)."""
    return psycopg2.extensions.quote_ident(name, conn)
