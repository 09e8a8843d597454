#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_cancel_queries
short_description: Cancel, then terminate, the PostgreSQL sessions that hold everyone else up - guarded and capped
version_added: 1.0.0
description:
  - The database mitigation of the runbook. Picks the sessions of one O(target) - the root
    V(blockers) of lock chains, V(long_running) statements or sessions V(idle_in_transaction) - that
    are older than O(min_duration_seconds) and belong to the listed O(users) and O(databases) (and
    O(applications), O(pids) when given), then sends each C(pg_cancel_backend()).
  - After the cancel it waits up to O(grace_seconds) (polling) and sends C(pg_terminate_backend())
    only to the sessions still there with the same pid, the same C(backend_start) and still the same
    statement (V(long_running)) or transaction (V(blockers), V(idle_in_transaction)); a session that
    reconnected, or moved on to other work, is never terminated.
  - C(pg_cancel_backend()) only cancels a running statement. A session idle in a transaction is not
    running one, so a cancel does not end its transaction or release its locks - that is why the
    terminate after the grace period exists. A blocker whose statement is cancelled inside an explicit
    transaction keeps its locks (idle in transaction, aborted) until it is terminated too.
  - Guards - never this module's own session; never superuser sessions, replication (walsender) backends,
    autovacuum workers or other non-client backends unless allowed explicitly; never more than
    O(max_sessions) sessions - when more match, the task fails before touching anything and says how many
    matched. Sessions that matched the target but are excluded by a guard are listed in RV(skipped_sessions) with the reason.
  - Before any signal the module checks that it may signal every selected session (privileges); if not, it
    fails with nothing touched.
  - Check mode lists exactly the sessions that would be cancelled (action V(would_cancel)) and sends no signal.
  - An unreachable server fails the task cleanly (RV(reachable=false), RV(error_kind)) with nothing touched.
author: SVPMS Platform Team (@svpms)
options:
  target:
    description:
      - Which sessions to act on.
      - V(blockers) - the root blockers of lock chains (sessions that others wait for and that wait for
        nobody), whose transaction (or, without one, current state) is older than O(min_duration_seconds).
      - V(long_running) - active statements running longer than O(min_duration_seconds).
      - V(idle_in_transaction) - sessions idle in a transaction for longer than O(min_duration_seconds).
    type: str
    required: true
    choices: [blockers, long_running, idle_in_transaction]
  min_duration_seconds:
    description:
      - Minimum age in seconds, more than 0. For V(blockers) the age of their transaction; for
        V(long_running) the statement's run time; for V(idle_in_transaction) the time since the session
        went idle.
    type: float
    required: true
  users:
    description:
      - Roles whose sessions may be touched. Required and not empty - there is no "everyone".
    type: list
    elements: str
    required: true
  databases:
    description:
      - Databases whose sessions may be touched. Required and not empty.
    type: list
    elements: str
    required: true
  applications:
    description:
      - When given, only sessions with one of these C(application_name) values are touched.
    type: list
    elements: str
  pids:
    description:
      - When given, only these pids are touched (intersected with every other filter), for example the
        RV(svpms.incident_response.pg_activity#module:blockers) pids a runbook just reported.
    type: list
    elements: int
  max_sessions:
    description:
      - Most sessions one run may touch (1 to 100). When more match, the task fails with nothing touched
        and says how many matched; narrow with O(pids), O(applications), O(users) or a larger
        O(min_duration_seconds).
    type: int
    default: 5
  grace_seconds:
    description:
      - Seconds (0 to 60) to wait after the cancel, polling, for the sessions to let go before terminating them.
    type: float
    default: 5
  terminate:
    description:
      - Terminate the sessions still there after O(grace_seconds). With V(false) only cancels are sent.
    type: bool
    default: true
  allow_superusers:
    description:
      - Also touch sessions of superuser roles (C(rolsuper)). Needs a superuser connection.
    type: bool
    default: false
  allow_replication:
    description:
      - Also touch replication backends (walsender, logical replication workers).
    type: bool
    default: false
  allow_autovacuum:
    description:
      - Also touch autovacuum workers (for example one blocking a DDL lock).
    type: bool
    default: false
  query_max_len:
    description:
      - Query texts are redacted (literals replaced with C(?)) and cut to this many characters.
    type: int
    default: 200
extends_documentation_fragment:
  - svpms.incident_response.postgres
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode only C(pg_stat_activity) is read; no C(pg_cancel_backend) or C(pg_terminate_backend) is sent.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
notes:
  - Privileges - C(GRANT pg_monitor, pg_signal_backend TO incident_bot;). C(pg_monitor) lets the role see other
    sessions' state and query; C(pg_signal_backend) lets it cancel/terminate sessions of non-superuser roles.
    Superuser sessions can only be signalled by a superuser.
  - Terminating a session rolls back its open transaction; the client sees its connection closed.
seealso:
  - module: svpms.incident_response.pg_activity
'''

EXAMPLES = r'''
- name: See who would be cancelled (check mode sends nothing)
  svpms.incident_response.pg_cancel_queries:
    host: db.prod.internal
    user: incident_bot
    target: blockers
    min_duration_seconds: 60
    users: [svpms_app, svpms_batch]
    databases: [svpms]
  check_mode: true
  register: would

- name: Cancel, then terminate, the lock holders pg_activity reported
  svpms.incident_response.pg_cancel_queries:
    host: db.prod.internal
    user: incident_bot
    target: blockers
    min_duration_seconds: 60
    users: [svpms_app, svpms_batch]
    databases: [svpms]
    pids: "{{ pg.blockers | map(attribute='pid') | list }}"
    max_sessions: 3
    grace_seconds: 5

- name: Cancel reporting queries running for more than 5 minutes, never terminate
  svpms.incident_response.pg_cancel_queries:
    target: long_running
    min_duration_seconds: 300
    users: [svpms_reporting]
    databases: [svpms]
    applications: [metabase]
    terminate: false
'''

RETURN = r'''
reachable:
  description: Whether the server could be queried.
  returned: always
  type: bool
error_kind:
  description: Why the task failed - V(unreachable), V(timeout), V(auth_failed), V(tls), V(not_found), V(permission), V(query), V(too_many).
  returned: on failure
  type: str
sessions:
  description:
    - The selected sessions - pid, user, database, application, client_addr, state, backend_type, duration_seconds,
      blocking (pids waiting for it, for V(blockers)), query (redacted), and action - V(would_cancel) (check mode),
      V(cancelled) (cancel sent, still there and O(terminate=false)), V(gone_after_cancel) (the statement or
      transaction ended within the grace period), V(terminated), V(cancel_failed) (the server refused or the
      session was not found), V(already_gone) (it ended or moved on before the cancel, nothing sent).
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4100, "user": "svpms_batch", "database": "svpms", "state": "idle in transaction",
            "duration_seconds": 312.4, "blocking": [4242, 4243], "query": "UPDATE items SET qty = ? WHERE id = $1",
            "action": "terminated"}]
cancelled:
  description: Pids a cancel was sent to.
  returned: always
  type: list
  elements: int
terminated:
  description: Pids that were terminated after the grace period.
  returned: always
  type: list
  elements: int
skipped_sessions:
  description:
    - Sessions that matched the target but were excluded by a guard - pid, user, database, reason.
    - Not called C(skipped) because Ansible reads a true C(skipped) in a result as "the task was skipped".
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4300, "user": "postgres", "database": "svpms", "reason": "superuser session (role postgres); set allow_superusers to include it"}]
matched_count:
  description: Number of sessions selected (after the guards); when above O(max_sessions) the task failed with nothing touched.
  returned: always
  type: int
queries:
  description: The signalling statements that were executed, literals replaced with C(?). Empty in check mode.
  returned: always
  type: list
  elements: str
  sample: ["SELECT pg_cancel_backend(a.pid) FROM pg_stat_activity a WHERE a.pid = ? AND a.backend_start = ?::timestamptz AND a.xact_start = ?::timestamptz"]
'''

import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.postgres import (  # noqa: E402
    IDLE_IN_TRANSACTION_STATES,
    PostgresError,
    PostgresPermissionError,
    close_quietly,
    connect,
    ensure_psycopg2,
    fetch_sessions,
    postgres_argument_spec,
    redact_query,
    run_query,
    seconds,
    select_sessions,
    server_info,
    session_view,
    validate_connection_params,
)

# target -> the column that identifies "the same problem" (statement or transaction)
IDENTITY = dict(blockers='xact_start', long_running='query_start', idle_in_transaction='xact_start')

SIGNAL_SQL = ('SELECT {func}(a.pid) AS signalled FROM pg_stat_activity a '
              'WHERE a.pid = %s AND a.backend_start = %s::timestamptz AND a.{ident} = %s::timestamptz')

STILL_SQL = {
    'blockers': "SELECT a.pid FROM pg_stat_activity a WHERE a.pid = %s AND a.backend_start = %s::timestamptz "
                "AND a.xact_start = %s::timestamptz",
    'long_running': "SELECT a.pid FROM pg_stat_activity a WHERE a.pid = %s AND a.backend_start = %s::timestamptz "
                    "AND a.query_start = %s::timestamptz AND a.state = 'active'",
    'idle_in_transaction': "SELECT a.pid FROM pg_stat_activity a WHERE a.pid = %s AND a.backend_start = %s::timestamptz "
                           "AND a.xact_start = %s::timestamptz AND a.state IN ('idle in transaction', "
                           "'idle in transaction (aborted)')",
}

ALIVE_SQL = 'SELECT a.pid FROM pg_stat_activity a WHERE a.pid = %s AND a.backend_start = %s::timestamptz'

POLL_INTERVAL = 0.2
TERMINATE_WAIT = 5.0


def candidates_for(target, rows, waiting_for, min_duration):
    out = []
    for row in rows:
        if target == 'blockers':
            if row['pid'] == 0 or row['pid'] not in waiting_for:
                continue
            age = row.get('xact_seconds') if row.get('xact_seconds') is not None else row.get('state_seconds')
        elif target == 'long_running':
            if row.get('state') != 'active':
                continue
            age = row.get('query_seconds')
        else:
            if row.get('state') not in IDLE_IN_TRANSACTION_STATES:
                continue
            age = row.get('state_seconds')
        if age is None or age < min_duration or row.get(IDENTITY[target]) is None:
            continue
        row = dict(row)
        row['duration_seconds'] = seconds(age)
        out.append(row)
    return out


def validate(module):
    p = module.params
    errors = []
    if p['min_duration_seconds'] <= 0:
        errors.append('min_duration_seconds must be more than 0 seconds, got %s' % p['min_duration_seconds'])
    for name in ('users', 'databases'):
        values = [v for v in (p[name] or []) if v is not None and str(v).strip()]
        if not values or len(values) != len(p[name] or []):
            errors.append('%s must be a non-empty list of names (no empty entries), got %r' % (name, p[name]))
    if p['applications'] is not None and not p['applications']:
        errors.append('applications, when given, must not be empty (leave it out to allow every application)')
    if p['pids'] is not None:
        if not p['pids']:
            errors.append('pids, when given, must not be empty (leave it out to allow every pid)')
        elif any(pid <= 0 for pid in p['pids']):
            errors.append('pids must be positive process ids, got %r' % p['pids'])
    if not 1 <= p['max_sessions'] <= 100:
        errors.append('max_sessions must be between 1 and 100, got %s' % p['max_sessions'])
    if not 0 <= p['grace_seconds'] <= 60:
        errors.append('grace_seconds must be between 0 and 60 seconds, got %s' % p['grace_seconds'])
    if not 20 <= p['query_max_len'] <= 10000:
        errors.append('query_max_len must be between 20 and 10000, got %s' % p['query_max_len'])
    if errors:
        module.fail_json(msg='; '.join(errors), changed=False, sessions=[], cancelled=[], terminated=[],
                         skipped_sessions=[], queries=[], matched_count=0)


def describe(session):
    return 'pid=%s user=%s db=%s app=%s state=%s age=%ss query=%s' % (
        session['pid'], session.get('user'), session.get('database'), session.get('application') or '',
        session.get('state'), session.get('duration_seconds'), session.get('query'))


def diff_text(sessions):
    return ''.join(describe(s) + '\n' for s in sessions)


class Runner(object):
    def __init__(self, module, conn, target):
        self.module = module
        self.conn = conn
        self.target = target
        self.queries = []

    def execute(self, sql, args, what):
        with self.conn.cursor() as cur:
            text = cur.mogrify(sql, args).decode('utf-8', 'replace')
        self.queries.append(redact_query(text, max_len=1000))
        return run_query(self.conn, sql, args, what=what)

    def signal(self, func, row):
        sql = SIGNAL_SQL.format(func=func, ident=IDENTITY[self.target])
        rows = self.execute(sql, (row['pid'], row['backend_start'], row[IDENTITY[self.target]]),
                            what='%s(%s)' % (func, row['pid']))
        if not rows:
            return None  # session ended or moved on: nothing was sent
        return bool(rows[0]['signalled'])

    def still_there(self, rows):
        left = []
        for row in rows:
            found = run_query(self.conn, STILL_SQL[self.target],
                              (row['pid'], row['backend_start'], row[IDENTITY[self.target]]),
                              what='checking whether pid %s is still there' % row['pid'])
            if found:
                left.append(row)
        return left

    def wait_still_there(self, rows, timeout):
        """Poll until none of rows is still there, at most timeout seconds; return those left."""
        deadline = time.monotonic() + timeout
        left = self.still_there(rows)
        while left and time.monotonic() < deadline:
            time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
            left = self.still_there(left)
        return left

    def wait_gone(self, rows, timeout):
        """Poll until the terminated backends have exited, at most timeout seconds."""
        deadline = time.monotonic() + timeout
        left = list(rows)
        while left:
            left = [r for r in left if run_query(self.conn, ALIVE_SQL, (r['pid'], r['backend_start']),
                                                 what='waiting for pid %s to exit' % r['pid'])]
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL)
        return left


def can_signal(conn, info, sessions):
    """Pids of sessions our role may not signal, with why."""
    if info['superuser']:
        return []
    denied = []
    member = {}
    users = sorted(set(s['user'] for s in sessions if s.get('user')))
    if users and not info['signal_backend']:
        rows = run_query(conn, "SELECT rolname, pg_has_role(current_user, oid, 'USAGE') AS member "
                               "FROM pg_roles WHERE rolname = ANY(%s)", (users,),
                         what='checking our role memberships')
        member = dict((r['rolname'], r['member']) for r in rows)
    for s in sessions:
        if s.get('superuser'):
            denied.append('%s (superuser %s: only a superuser may signal it)' % (s['pid'], s['user']))
        elif not info['signal_backend'] and not member.get(s.get('user')):
            denied.append('%s (role %s)' % (s['pid'], s['user']))
    return denied


def main():
    spec = postgres_argument_spec()
    spec.update(
        target=dict(type='str', required=True, choices=['blockers', 'long_running', 'idle_in_transaction']),
        min_duration_seconds=dict(type='float', required=True),
        users=dict(type='list', elements='str', required=True),
        databases=dict(type='list', elements='str', required=True),
        applications=dict(type='list', elements='str'),
        pids=dict(type='list', elements='int'),
        max_sessions=dict(type='int', default=5),
        grace_seconds=dict(type='float', default=5),
        terminate=dict(type='bool', default=True),
        allow_superusers=dict(type='bool', default=False),
        allow_replication=dict(type='bool', default=False),
        allow_autovacuum=dict(type='bool', default=False),
        query_max_len=dict(type='int', default=200),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    validate_connection_params(module)
    validate(module)
    ensure_psycopg2(module)
    p = module.params
    target = p['target']
    result = dict(changed=False, reachable=False, sessions=[], cancelled=[], terminated=[], skipped_sessions=[],
                  queries=[], matched_count=0)

    conn = None
    try:
        conn = connect(module)
        info = server_info(conn)
        result['reachable'] = True
        if not (info['superuser'] or info['read_all_stats']):
            raise PostgresPermissionError(
                'role %s cannot see the state and query of other roles\' sessions, so it cannot tell which '
                'to cancel' % info['user'], hint='GRANT pg_monitor, pg_signal_backend TO %s' % info['user'])
        rows, roots, waiting_for = fetch_sessions(conn)
        candidates = candidates_for(target, rows, waiting_for, p['min_duration_seconds'])
        selected, skipped = select_sessions(
            candidates, info['own_pid'], users=set(p['users']), databases=set(p['databases']),
            applications=set(p['applications'] or []), pids=set(p['pids'] or []),
            allow_superusers=p['allow_superusers'], allow_replication=p['allow_replication'],
            allow_autovacuum=p['allow_autovacuum'])
        result['skipped_sessions'] = skipped
        result['matched_count'] = len(selected)
        views = []
        for row in selected:
            view = session_view(row, ('backend_type', 'duration_seconds'), p['query_max_len'])
            if target == 'blockers':
                view['blocking'] = waiting_for.get(row['pid'], [])
            views.append(view)
        if len(selected) > p['max_sessions']:
            result['matched'] = views
            module.fail_json(
                msg='%d sessions match target=%s (pids %s) but max_sessions=%d; nothing was touched. Narrow the '
                    'selection with pids, applications, users or databases, or a larger min_duration_seconds, '
                    'or raise max_sessions (up to 100) on purpose'
                    % (len(selected), target, ', '.join(str(s['pid']) for s in selected), p['max_sessions']),
                error_kind='too_many', **result)
        denied = can_signal(conn, info, selected)
        if denied:
            raise PostgresPermissionError(
                'role %s may not signal %s; nothing was touched' % (info['user'], ', '.join(denied)),
                hint='GRANT pg_signal_backend TO %s (superuser sessions need a superuser connection)' % info['user'])
    except PostgresError as err:
        close_quietly(conn)
        result.update(err.to_result())
        module.fail_json(msg=err.describe(), **result)

    before = diff_text(views)
    if not selected or module.check_mode:
        close_quietly(conn)
        for view in views:
            view['action'] = 'would_cancel'
        result.update(sessions=views, changed=bool(views),
                      diff=dict(before=before, after='', before_header='pg sessions (%s)' % target,
                                after_header='pg sessions (%s) after cancel/terminate' % target))
        module.exit_json(**result)

    runner = Runner(module, conn, target)
    by_pid = dict((v['pid'], v) for v in views)
    signalled = []
    try:
        for row in selected:
            ok = runner.signal('pg_cancel_backend', row)
            view = by_pid[row['pid']]
            if ok is None:
                view['action'] = 'already_gone'
            elif not ok:
                view['action'] = 'cancel_failed'
            else:
                result['cancelled'].append(row['pid'])
                signalled.append(row)
        left = runner.wait_still_there(signalled, p['grace_seconds']) if signalled else []
        left_pids = set(r['pid'] for r in left)
        for row in signalled:
            by_pid[row['pid']]['action'] = 'cancelled' if row['pid'] in left_pids else 'gone_after_cancel'
        if p['terminate']:
            ended = []
            for row in left:
                ok = runner.signal('pg_terminate_backend', row)
                view = by_pid[row['pid']]
                if ok is None:
                    view['action'] = 'gone_after_cancel'
                elif ok:
                    view['action'] = 'terminated'
                    result['terminated'].append(row['pid'])
                    ended.append(row)
            for row in runner.wait_gone(ended, TERMINATE_WAIT):
                by_pid[row['pid']]['still_present_after_terminate'] = True
        remaining = set(r['pid'] for r in runner.still_there(selected))
    except PostgresError as err:
        close_quietly(conn)
        result.update(err.to_result())
        result.update(sessions=views, queries=runner.queries,
                      changed=bool(result['cancelled'] or result['terminated']))
        module.fail_json(msg='%s (stopped after cancelling %s and terminating %s)'
                         % (err.describe(), result['cancelled'], result['terminated']), **result)
    close_quietly(conn)
    result.update(
        sessions=views, queries=runner.queries, changed=bool(result['cancelled'] or result['terminated']),
        diff=dict(before=before, after=diff_text([v for v in views if v['pid'] in remaining]),
                  before_header='pg sessions (%s)' % target,
                  after_header='pg sessions (%s) after cancel/terminate' % target))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
