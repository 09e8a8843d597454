#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_table_check
short_description: Check that a PostgreSQL table (such as the users table) exists, has rows and is readable
version_added: 1.0.0
description:
  - Answers the authentication-failure question "can the application still read its users table?" -
    does O(table) exist in O(database), does it hold at least O(min_rows) rows, and can each role in
    O(readers) C(SELECT) it (table C(SELECT) privilege and C(USAGE) on its schema).
  - The row count is bounded - it counts the rows of a subquery with C(LIMIT) O(max_count) + 1 - so a huge
    table is never scanned in full; above O(max_count) rows RV(rows) is null, RV(capped) is true and
    RV(rows_at_least) says how many rows there are at least. RV(estimated_rows) is the planner's estimate
    (C(pg_class.reltuples)), free to read.
  - Every problem found is a sentence in RV(problems) with what to do (for example the C(GRANT) to run);
    the task itself succeeds (C(changed=false)).
  - Row contents are never read or returned, only counted.
  - An unreachable server (or failed authentication, TLS problem, timeout) is a finding - the task
    succeeds with RV(reachable=false), RV(error_kind) and RV(msg). So is a connecting role that may not
    read the table (RV(error_kind=permission), with the C(GRANT) it needs).
author: SVPMS Platform Team (@svpms)
options:
  table:
    description:
      - The table to check, V(schema.table) or V(table) (meaning V(public.table)).
      - Each part must be a plain identifier - letters, digits, C(_) and C($), not starting with a digit or
        C($), at most 63 characters. Names are matched exactly as stored in the catalog (case-sensitive),
        so V(users) is the table created as C(CREATE TABLE users).
    type: str
    required: true
  readers:
    description:
      - Roles that must be able to C(SELECT) the table, for example the application's role.
      - A role that does not exist, or lacks C(SELECT) on the table or C(USAGE) on its schema, is reported in
        RV(problems) with the C(GRANT) that fixes it. V(public) means the C(PUBLIC) pseudo-role.
    type: list
    elements: str
    default: []
  min_rows:
    description:
      - The table should hold at least this many rows (0 or more, at most O(max_count)). An emptied users
        table means nobody can log in.
    type: int
    default: 1
  max_count:
    description:
      - Count at most this many rows plus one (1 to 100000000), so that the count stays cheap on a huge table.
    type: int
    default: 100000
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
  - Privileges - the connecting role needs C(USAGE) on the table's schema and C(SELECT) on the table to count
    its rows, for example C(GRANT USAGE ON SCHEMA public TO incident_bot; GRANT SELECT ON public.users TO
    incident_bot;). Whether the O(readers) can read it comes from the catalog (C(has_table_privilege),
    C(has_schema_privilege)) and needs no extra privilege.
  - A reader with C(SELECT) on some columns only (column-level grants) is reported as unable to C(SELECT)
    the table.
  - With row level security on the table, the count is what the connecting role may see.
  - The count runs under the session's C(statement_timeout) (O(statement_timeout_ms)) and C(lock_timeout);
    a table locked C(ACCESS EXCLUSIVE) (a migration in progress) shows as RV(error_kind=timeout).
seealso:
  - module: svpms.incident_response.pg_activity
  - module: svpms.incident_response.pg_query_stats
'''

EXAMPLES = r'''
- name: Check that the application can still read its users
  svpms.incident_response.pg_table_check:
    host: db.prod.internal
    user: incident_bot
    database: svpms
    table: public.users
    readers: [svpms_app]
  register: users_table

- name: Stop when the users table is gone, empty or unreadable for the app
  ansible.builtin.assert:
    that:
      - users_table.reachable
      - users_table.problems | length == 0
    fail_msg: "{{ users_table.problems | join(' ') }}"
'''

RETURN = r'''
reachable:
  description: Whether the server could be queried.
  returned: always
  type: bool
error_kind:
  description:
    - Why the check is incomplete - V(unreachable), V(timeout), V(auth_failed), V(tls), V(not_found), V(permission)
      (the connecting role may not read the table), V(query).
  returned: when the server could not be reached or the table could not be counted
  type: str
msg:
  description: What went wrong and what to check (for V(permission), the C(GRANT) to run).
  returned: when error_kind is returned
  type: str
table:
  description: The table checked, qualified with its schema.
  returned: always
  type: str
  sample: public.users
database:
  description: The database inspected.
  returned: when reachable
  type: str
exists:
  description: Whether the table (or view) exists. Null when the server could not be reached.
  returned: always
  type: bool
rows:
  description: Number of rows, or null when there are more than O(max_count) (see RV(rows_at_least)) or they could not be counted.
  returned: always
  type: int
  sample: 1520
capped:
  description: Whether the count stopped at O(max_count) + 1.
  returned: always
  type: bool
rows_at_least:
  description:
    - Lower bound of the row count - RV(rows) when counted exactly, O(max_count) + 1 when capped, null when not counted.
  returned: always
  type: int
  sample: 100001
estimated_rows:
  description: The planner's estimate (C(pg_class.reltuples)); null when the table was never analyzed or does not exist.
  returned: always
  type: int
  sample: 1500
readers:
  description:
    - One entry per role in O(readers) - role, exists, can_select (true only with both privileges), has_table_select
      (C(SELECT) on the table), has_schema_usage (C(USAGE) on its schema). The privileges are null when the role or
      the table does not exist.
  returned: always
  type: list
  elements: dict
  sample: [{"role": "svpms_app", "exists": true, "can_select": false, "has_table_select": false, "has_schema_usage": true}]
problems:
  description:
    - One sentence per problem found, with what to do - table missing, fewer rows than O(min_rows), a reader that
      cannot read it, a reader role that does not exist, the check itself incomplete. Empty when all is well.
  returned: always
  type: list
  elements: str
  sample: ["Role svpms_app cannot SELECT public.users (REVOKE'd grant?): GRANT SELECT ON public.users TO svpms_app;"]
'''

import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.checks import finding  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.postgres import (  # noqa: E402
    PostgresError,
    PostgresPermissionError,
    close_quietly,
    connect,
    ensure_psycopg2,
    postgres_argument_spec,
    run_query,
    validate_connection_params,
)

try:
    from psycopg2 import sql
except ImportError:  # pragma: no cover - ensure_psycopg2 fails the module first
    sql = None

IDENTIFIER = re.compile(r'^[A-Za-z_][A-Za-z0-9_$]{0,62}$')
MAX_COUNT_LIMIT = 100000000
READABLE_KINDS = dict(r='table', p='partitioned table', v='view', m='materialized view', f='foreign table')
OTHER_KINDS = dict(i='index', I='partitioned index', S='sequence', t='TOAST table', c='composite type')

TABLE_SQL = """
SELECT current_database() AS database, current_user AS me, n.oid AS nspoid, c.oid AS reloid,
       c.relkind::text AS relkind, c.reltuples::float8 AS reltuples
FROM (SELECT 1) one
LEFT JOIN pg_namespace n ON n.nspname = %(schema)s
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = %(table)s
"""

ROLE_SQL = """
SELECT (%(role)s = 'public' OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s)) AS exists
"""

PRIVILEGE_SQL = """
SELECT has_table_privilege(%(role)s, %(reloid)s::oid, 'SELECT') AS table_select,
       has_schema_privilege(%(role)s, %(nspoid)s::oid, 'USAGE') AS schema_usage
"""

COUNT_SQL = 'SELECT count(*) AS n FROM (SELECT 1 FROM {}.{} LIMIT %s) AS bounded'


def parse_table(value):
    """(schema, table) from 'schema.table' or 'table'; raises ValueError with what is allowed."""
    text = (value or '').strip()
    if not text:
        raise ValueError('table must not be empty: give schema.table or table (meaning public.table)')
    parts = text.split('.')
    if len(parts) > 2:
        raise ValueError('table must be schema.table or table (meaning public.table), got %r' % value)
    if len(parts) == 1:
        parts.insert(0, 'public')
    for part in parts:
        if not IDENTIFIER.match(part):
            raise ValueError('table %r is not schema.table or table made of plain identifiers (letters, digits, _ '
                             'and $, not starting with a digit or $, at most 63 characters)' % value)
    return parts[0], parts[1]


def check_params(p):
    errors = []
    try:
        parse_table(p['table'])
    except ValueError as exc:
        errors.append(str(exc))
    for role in p['readers'] or []:
        if not role or not role.strip() or len(role.encode('utf-8')) > 63 or any(ord(ch) < 32 for ch in role):
            errors.append('readers must be role names (1 to 63 bytes, no control characters), got %r' % role)
    if not 1 <= p['max_count'] <= MAX_COUNT_LIMIT:
        errors.append('max_count must be between 1 and %d, got %s' % (MAX_COUNT_LIMIT, p['max_count']))
    if p['min_rows'] < 0:
        errors.append('min_rows must be 0 or more, got %s' % p['min_rows'])
    elif p['min_rows'] > p['max_count']:
        errors.append('min_rows (%s) must not be larger than max_count (%s)' % (p['min_rows'], p['max_count']))
    return errors


class TableCheck(object):
    def __init__(self, conn, schema, table, params):
        self.conn = conn
        self.schema = schema
        self.table = table
        self.params = params
        self.qualified = '%s.%s' % (schema, table)
        self._idents = {}
        self.quoted = '%s.%s' % (self.ident(schema), self.ident(table))
        self.problems = []

    def ident(self, name):
        """The name as PostgreSQL itself would write it in a statement (quoted only when needed)."""
        if name not in self._idents:
            self._idents[name] = run_query(self.conn, 'SELECT quote_ident(%s) AS q', (name,),
                                           what='quoting an identifier')[0]['q']
        return self._idents[name]

    def grants(self, role, schema_usage, table_select):
        out = []
        who = 'PUBLIC' if role == 'public' else self.ident(role)
        if not schema_usage:
            out.append('GRANT USAGE ON SCHEMA %s TO %s;' % (self.ident(self.schema), who))
        if not table_select:
            out.append('GRANT SELECT ON %s TO %s;' % (self.quoted, who))
        return ' '.join(out)

    def reader(self, role, found):
        entry = dict(role=role, exists=None, can_select=None, has_table_select=None, has_schema_usage=None)
        entry['exists'] = bool(run_query(self.conn, ROLE_SQL, dict(role=role), what='looking up role %s' % role)[0]['exists'])
        if not entry['exists']:
            self.problems.append('Role %s (in readers) does not exist on this server: a dropped or renamed role means '
                                 'its logins fail; create it or fix the readers option.' % role)
            return entry
        if found is None:
            return entry
        priv = run_query(self.conn, PRIVILEGE_SQL, dict(role=role, reloid=found['reloid'], nspoid=found['nspoid']),
                         what='reading the privileges of role %s on %s' % (role, self.qualified))[0]
        entry['has_table_select'] = bool(priv['table_select'])
        entry['has_schema_usage'] = bool(priv['schema_usage'])
        entry['can_select'] = entry['has_table_select'] and entry['has_schema_usage']
        if not entry['can_select']:
            missing = []
            if not entry['has_table_select']:
                missing.append('SELECT on %s' % self.qualified)
            if not entry['has_schema_usage']:
                missing.append('USAGE on schema %s' % self.schema)
            self.problems.append("Role %s cannot SELECT %s (REVOKE'd grant? it lacks %s): %s"
                                 % (role, self.qualified, ' and '.join(missing),
                                    self.grants(role, entry['has_schema_usage'], entry['has_table_select'])))
        return entry

    def count(self, found):
        """Bounded row count as (rows or None, capped); raises PostgresError."""
        me = found['me']
        usage = run_query(self.conn, PRIVILEGE_SQL, dict(role=me, reloid=found['reloid'], nspoid=found['nspoid']),
                          what='reading our own privileges on %s' % self.qualified)[0]
        if not (usage['table_select'] and usage['schema_usage']):
            raise PostgresPermissionError(
                'the connecting role %s may not read %s, so its rows cannot be counted' % (me, self.qualified),
                hint='Run %s (or connect as a role that may read it)'
                     % self.grants(me, usage['schema_usage'], usage['table_select']),
                where='PostgreSQL database %s' % found['database'])
        query = sql.SQL(COUNT_SQL).format(sql.Identifier(self.schema), sql.Identifier(self.table))
        limit = self.params['max_count'] + 1
        try:
            n = run_query(self.conn, query, (limit,), what='counting the rows of %s' % self.qualified)[0]['n']
        except PostgresError as err:
            if err.sqlstate == '42501':  # e.g. a view whose owner lost access to its base table
                raise PostgresPermissionError(
                    err.message, where=err.where, sqlstate=err.sqlstate,
                    hint='The connecting role %s (or the owner of the view) lacks a privilege: %s'
                         % (me, self.grants(me, False, False)))
            raise
        return (None, True) if n > self.params['max_count'] else (n, False)

    def run(self):
        result = dict(reachable=True, table=self.qualified, exists=False, rows=None, capped=False,
                      rows_at_least=None, estimated_rows=None, readers=[], problems=self.problems)
        found = run_query(self.conn, TABLE_SQL, dict(schema=self.schema, table=self.table),
                          what='looking up table %s' % self.qualified)[0]
        result['database'] = found['database']
        kind = found['relkind']
        if found['nspoid'] is None:
            self.problems.append('Schema %s does not exist in database %s, so table %s does not either: check the '
                                 'database and table options, or whether a migration dropped or renamed it.'
                                 % (self.schema, found['database'], self.qualified))
        elif kind is None:
            self.problems.append('Table %s does not exist in database %s: check the database and table options, or '
                                 'whether a migration dropped or renamed it (the application cannot read its data).'
                                 % (self.qualified, found['database']))
        elif kind not in READABLE_KINDS:
            self.problems.append('%s in database %s is a %s, not a table: check the table option.'
                                 % (self.qualified, found['database'], OTHER_KINDS.get(kind, 'relation of kind %s' % kind)))
        result['exists'] = kind in READABLE_KINDS
        if not result['exists']:
            found = None
        elif found['reltuples'] is not None and found['reltuples'] >= 0 and kind != 'v':
            result['estimated_rows'] = int(found['reltuples'])

        result['readers'] = [self.reader(role, found) for role in self.params['readers']]
        if found is None:
            return result
        try:
            rows, capped = self.count(found)
        except PostgresError as err:
            result.update(finding(err))
            result['reachable'] = True if err.kind in ('permission', 'timeout', 'query') else err.reachable
            self.problems.append('Could not count the rows of %s: %s' % (self.qualified, err.describe()))
            return result
        result['rows'] = rows
        result['capped'] = capped
        result['rows_at_least'] = self.params['max_count'] + 1 if capped else rows
        if rows is not None and rows < self.params['min_rows']:
            self.problems.append('%s has %d rows, fewer than min_rows=%d: if this is the users table, nobody can log in '
                                 '(look for a bad migration, TRUNCATE or DELETE; restore from backup).'
                                 % (self.qualified, rows, self.params['min_rows']))
        return result


def main():
    spec = postgres_argument_spec()
    spec.update(
        table=dict(type='str', required=True),
        readers=dict(type='list', elements='str', default=[]),
        min_rows=dict(type='int', default=1),
        max_count=dict(type='int', default=100000),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    validate_connection_params(module)
    errors = check_params(p)
    if errors:
        module.fail_json(msg='; '.join(errors))
    ensure_psycopg2(module)
    schema, table = parse_table(p['table'])
    qualified = '%s.%s' % (schema, table)

    conn = None
    try:
        conn = connect(module)
        result = TableCheck(conn, schema, table, p).run()
    except PostgresError as err:
        close_quietly(conn)
        result = dict(table=qualified, exists=None, rows=None, capped=False, rows_at_least=None, estimated_rows=None,
                      readers=[dict(role=r, exists=None, can_select=None, has_table_select=None, has_schema_usage=None)
                               for r in p['readers']],
                      problems=['Could not check %s: %s' % (qualified, err.describe())])
        result.update(finding(err))
        module.exit_json(changed=False, **result)
    close_quietly(conn)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
