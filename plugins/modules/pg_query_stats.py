#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_query_stats
short_description: Slowest PostgreSQL statements (pg_stat_statements) and tables that want an index
version_added: 1.0.0
description:
  - When the C(pg_stat_statements) extension is installed in O(database) and loaded by the server, returns
    the statements of that database with the highest mean and total execution time.
  - When it is not, says so in RV(pg_stat_statements) with how to enable it, and still succeeds.
  - Lists RV(index_candidates) - tables of O(database) read by many large sequential scans
    (C(pg_stat_user_tables)) - each with advice such as
    C(CREATE INDEX CONCURRENTLY ON public.items (sku)), the column taken from C(WHERE <col> = $n) in the
    statements that read the table when pg_stat_statements knows them.
  - Index creation is advice only; this module never executes it (or anything else that writes).
  - An unreachable server (or failed authentication, TLS problem, timeout) is a finding - the task
    succeeds with RV(reachable=false), RV(error_kind) and RV(msg).
author: SVPMS Platform Team (@svpms)
options:
  limit:
    description:
      - How many statements in each top list (1 to 100), and at most how many index candidates.
    type: int
    default: 10
  min_calls:
    description:
      - Leave out statements called fewer times than this.
    type: int
    default: 5
  min_seq_scans:
    description:
      - A table is an index candidate only after at least this many sequential scans (1 or more).
    type: int
    default: 50
  min_rows:
    description:
      - A table is an index candidate only with at least this many live rows.
    type: int
    default: 10000
  min_rows_per_seq_scan:
    description:
      - A table is an index candidate only when its sequential scans read at least this many rows on
        average (C(seq_tup_read / seq_scan)).
    type: int
    default: 1000
  query_max_len:
    description:
      - Statement texts are redacted (literals replaced with C(?)) and cut to this many characters.
    type: int
    default: 200
extends_documentation_fragment:
  - svpms.incident_response.postgres
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Read only; runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - Privileges - C(GRANT pg_monitor TO incident_bot;) lets the role read the text of every role's statements
    (otherwise they show as C(<insufficient privilege>)).
  - To enable pg_stat_statements - add it to C(shared_preload_libraries) in C(postgresql.conf), restart
    PostgreSQL, then C(CREATE EXTENSION pg_stat_statements;) in the database.
  - The counters in C(pg_stat_user_tables) and pg_stat_statements are cumulative since the last reset, so a
    table read sequentially long ago can still show up; compare two runs.
  - Handles both column sets of pg_stat_statements (C(total_exec_time)/C(mean_exec_time) from PostgreSQL 13,
    C(total_time)/C(mean_time) before).
seealso:
  - module: svpms.incident_response.pg_activity
'''

EXAMPLES = r'''
- name: Find the slow statements and the tables that want an index
  svpms.incident_response.pg_query_stats:
    host: db.prod.internal
    user: incident_bot
    database: svpms
    limit: 5
  register: qs

- name: Print the index advice (nothing is created)
  ansible.builtin.debug:
    msg: "{{ qs.index_candidates | map(attribute='advice') | list }}"
  when: qs.reachable
'''

RETURN = r'''
reachable:
  description: Whether the server could be queried.
  returned: always
  type: bool
error_kind:
  description: Why not - V(unreachable), V(timeout), V(auth_failed), V(tls), V(not_found), V(permission), V(query).
  returned: when reachable is false
  type: str
msg:
  description: What went wrong and what to check.
  returned: when reachable is false
  type: str
database:
  description: The database inspected.
  returned: when reachable
  type: str
pg_stat_statements:
  description:
    - available, and either version and schema of the extension, or reason (why not and how to enable it).
  returned: when reachable
  type: dict
  sample: {"available": false, "reason": "pg_stat_statements is not installed in database svpms ..."}
top_by_mean_time:
  description:
    - Statements of this database called at least O(min_calls) times, highest mean time first - queryid, calls,
      mean_ms, total_ms, rows, query (redacted).
  returned: when reachable (empty when pg_stat_statements is not available)
  type: list
  elements: dict
  sample: [{"queryid": 4242424242, "calls": 120, "mean_ms": 812.5, "total_ms": 97500.0, "rows": 120,
            "query": "SELECT * FROM items WHERE sku = $1"}]
top_by_total_time:
  description: The same, highest total time first.
  returned: when reachable (empty when pg_stat_statements is not available)
  type: list
  elements: dict
index_candidates:
  description:
    - Tables with many large sequential scans, most rows read sequentially first - schema, table, seq_scan,
      seq_tup_read, idx_scan, n_live_tup, avg_rows_per_seq_scan, column (suggested, or null), queryids (statements
      that read the table), advice (text only, never executed).
  returned: when reachable
  type: list
  elements: dict
  sample: [{"schema": "public", "table": "items", "seq_scan": 812, "seq_tup_read": 16240000, "idx_scan": 0,
            "n_live_tup": 20000, "avg_rows_per_seq_scan": 20000.0, "column": "sku",
            "advice": "CREATE INDEX CONCURRENTLY ON public.items (sku) -- advice only ..."}]
'''

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.checks import finding  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.postgres import (  # noqa: E402
    PostgresError,
    close_quietly,
    connect,
    ensure_psycopg2,
    index_advice,
    postgres_argument_spec,
    quote_ident,
    redact_query,
    run_query,
    validate_connection_params,
)

EXTENSION_SQL = """
SELECT e.extversion AS version, n.nspname AS schema, current_database() AS database,
       current_setting('shared_preload_libraries') AS preload
FROM (SELECT 1) one
LEFT JOIN pg_extension e ON e.extname = 'pg_stat_statements'
LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
"""

COLUMNS_SQL = """
SELECT attname FROM pg_attribute
WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped
"""

TOP_SQL = """
SELECT queryid, calls, {mean}::float8 AS mean_ms, {total}::float8 AS total_ms, rows, query
FROM {view}
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls >= %s
ORDER BY {order} DESC NULLS LAST
LIMIT %s
"""

TABLE_STATEMENTS_SQL = """
SELECT queryid, calls, query FROM {view}
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query ILIKE %s
ORDER BY calls DESC
LIMIT 50
"""

CANDIDATES_SQL = """
SELECT schemaname AS schema, relname AS table, seq_scan, seq_tup_read, idx_scan, n_live_tup
FROM pg_stat_user_tables
WHERE seq_scan >= %s AND n_live_tup >= %s AND seq_tup_read / seq_scan >= %s
ORDER BY seq_tup_read DESC, schemaname, relname
LIMIT %s
"""


def enable_reason(database, preload, installed_version=None, error=None):
    loaded = 'pg_stat_statements' in [p.strip().strip('"') for p in (preload or '').split(',')]
    if installed_version:
        text = ('pg_stat_statements %s is installed in database %s but the server has not loaded it '
                '(shared_preload_libraries = %r): add pg_stat_statements to shared_preload_libraries in '
                'postgresql.conf and restart PostgreSQL' % (installed_version, database, preload or ''))
        if error:
            text += ' (%s)' % error
        return text
    if loaded:
        return ('pg_stat_statements is loaded by the server but not installed in database %s: run '
                'CREATE EXTENSION pg_stat_statements; in %s' % (database, database))
    return ('pg_stat_statements is not installed in database %s and not in shared_preload_libraries (%r): add '
            'pg_stat_statements to shared_preload_libraries in postgresql.conf, restart PostgreSQL, then run '
            'CREATE EXTENSION pg_stat_statements; in %s' % (database, preload or '', database))


def statement_view(row, qlen):
    return dict(queryid=row['queryid'], calls=row['calls'],
                mean_ms=None if row['mean_ms'] is None else round(row['mean_ms'], 3),
                total_ms=None if row['total_ms'] is None else round(row['total_ms'], 3),
                rows=row['rows'], query=redact_query(row['query'], qlen))


def read_statements(conn, ext, params):
    """(status dict, top_by_mean, top_by_total, view name or None)."""
    database = ext['database']
    if not ext['version']:
        return dict(available=False, reason=enable_reason(database, ext['preload'])), [], [], None
    view = '%s.pg_stat_statements' % quote_ident(ext['schema'], conn)
    cols = set(r['attname'] for r in run_query(conn, COLUMNS_SQL, (view,), what='reading pg_stat_statements columns'))
    if 'mean_exec_time' in cols:
        mean, total = 'mean_exec_time', 'total_exec_time'
    elif 'mean_time' in cols:
        mean, total = 'mean_time', 'total_time'
    else:
        return dict(available=False, version=ext['version'],
                    reason='pg_stat_statements %s in schema %s has neither mean_exec_time nor mean_time: '
                           'ALTER EXTENSION pg_stat_statements UPDATE' % (ext['version'], ext['schema'])), [], [], None
    tops = {}
    for order in ('mean', 'total'):
        sql = TOP_SQL.format(mean=mean, total=total, view=view, order=mean if order == 'mean' else total)
        try:
            rows = run_query(conn, sql, (params['min_calls'], params['limit']), what='reading pg_stat_statements')
        except PostgresError as err:
            if err.sqlstate == '55000':  # object_not_in_prerequisite_state: not preloaded
                return dict(available=False, version=ext['version'],
                            reason=enable_reason(database, ext['preload'], ext['version'], err.message)), [], [], None
            raise
        tops[order] = [statement_view(r, params['query_max_len']) for r in rows]
    status = dict(available=True, version=ext['version'], schema=ext['schema'])
    return status, tops['mean'], tops['total'], view


def index_candidates(conn, params, view):
    rows = run_query(conn, CANDIDATES_SQL, (params['min_seq_scans'], params['min_rows'],
                                            params['min_rows_per_seq_scan'], params['limit']),
                     what='reading pg_stat_user_tables')
    out = []
    for row in rows:
        statements = []
        if view:
            pattern = '%' + row['table'].replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_') + '%'
            statements = run_query(conn, TABLE_STATEMENTS_SQL.format(view=view), (pattern,),
                                   what='reading pg_stat_statements for %s.%s' % (row['schema'], row['table']))
        advice, column, queryids = index_advice(row['schema'], row['table'], statements)
        item = dict(row)
        item['avg_rows_per_seq_scan'] = round(float(row['seq_tup_read']) / row['seq_scan'], 1)
        item.update(column=column, queryids=queryids[:10], advice=advice)
        out.append(item)
    return out


def main():
    spec = postgres_argument_spec()
    spec.update(
        limit=dict(type='int', default=10),
        min_calls=dict(type='int', default=5),
        min_seq_scans=dict(type='int', default=50),
        min_rows=dict(type='int', default=10000),
        min_rows_per_seq_scan=dict(type='int', default=1000),
        query_max_len=dict(type='int', default=200),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    validate_connection_params(module)
    errors = []
    if not 1 <= p['limit'] <= 100:
        errors.append('limit must be between 1 and 100, got %s' % p['limit'])
    if p['min_seq_scans'] < 1:
        errors.append('min_seq_scans must be 1 or more, got %s' % p['min_seq_scans'])
    for name in ('min_calls', 'min_rows', 'min_rows_per_seq_scan'):
        if p[name] < 0:
            errors.append('%s must be 0 or more, got %s' % (name, p[name]))
    if not 20 <= p['query_max_len'] <= 10000:
        errors.append('query_max_len must be between 20 and 10000, got %s' % p['query_max_len'])
    if errors:
        module.fail_json(msg='; '.join(errors))
    ensure_psycopg2(module)

    conn = None
    try:
        conn = connect(module)
        ext = run_query(conn, EXTENSION_SQL, what='looking for the pg_stat_statements extension')[0]
        status, by_mean, by_total, view = read_statements(conn, ext, p)
        candidates = index_candidates(conn, p, view)
    except PostgresError as err:
        close_quietly(conn)
        module.exit_json(changed=False, **finding(err))
    close_quietly(conn)
    module.exit_json(changed=False, reachable=True, database=ext['database'], pg_stat_statements=status,
                     top_by_mean_time=by_mean, top_by_total_time=by_total, index_candidates=candidates)


if __name__ == '__main__':
    main()
