#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_activity
short_description: Snapshot of PostgreSQL sessions, lock chains and replication for triage
version_added: 1.0.0
description:
  - Reads C(pg_stat_activity), C(pg_blocking_pids()) and C(pg_stat_replication) once and reports
    what an on-call engineer looks at first - connection utilisation, sessions by state and by
    application, long-running queries, sessions idle in a transaction, blocked sessions with the
    lock chain followed to its root blockers, and replication lag.
  - Optionally connects to a replica (O(replica_host)) and reports whether it is in recovery and
    how far its replay lags. An unreachable replica is reported inside RV(replica), not as a failure.
  - Read only; never changes anything (C(changed=false)). The module's own session is left out of
    every count and list.
  - An unreachable server (or failed authentication, TLS problem, timeout) is a finding - the task
    succeeds with RV(reachable=false), RV(error_kind) and RV(msg).
author: SVPMS Platform Team (@svpms)
options:
  long_running_seconds:
    description:
      - Active statements running longer than this many seconds are listed in RV(long_running).
    type: float
    default: 30
  idle_in_transaction_seconds:
    description:
      - Sessions idle inside a transaction for longer than this many seconds (since their last
        state change) are listed in RV(idle_in_transaction).
    type: float
    default: 30
  replica_host:
    description:
      - Host of a replica (standby) to check as well. It is reached with the same O(database),
        O(user), O(password), O(sslmode), O(ssl_rootcert) and timeouts as the primary.
    type: str
  replica_port:
    description:
      - Port of the replica. Defaults to O(port).
    type: int
  databases:
    description:
      - Only report sessions of these databases in RV(long_running), RV(idle_in_transaction), RV(blocked) and
        RV(blockers), for example the application's database. Several databases share one server, and the
        lock waits and runaway queries of another one are not this service's incident. Locks never cross
        databases, so a blocking chain stays inside one.
      - RV(connections), RV(utilisation_pct), RV(by_state) and RV(by_application) always cover the whole server,
        because V(max_connections) is the server's; RV(connections_in_scope) counts the listed databases' sessions.
      - Empty (the default) means every database.
    type: list
    elements: str
    default: []
  list_limit:
    description:
      - At most this many entries in each session list (longest first); RV(truncated) says which
        lists were cut. Counts (RV(connections), RV(by_state)) always cover every session.
    type: int
    default: 50
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
    details: Read only; runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - Privileges - the connecting role needs C(pg_monitor) (or at least C(pg_read_all_stats)) to see
    other roles' queries and states, for example C(GRANT pg_monitor TO incident_bot;). Without it,
    other sessions show no state or query; the module then warns and sets RV(limited_visibility).
  - C(replica.replay_lag_seconds) is C(now() - pg_last_xact_replay_timestamp()) on the replica; on a
    primary without writes it grows although the replica is current - compare the LSNs as well.
  - A blocker with pid V(0) is a prepared transaction (see C(pg_prepared_xacts)).
seealso:
  - module: svpms.incident_response.pg_cancel_queries
  - module: svpms.incident_response.pg_query_stats
'''

EXAMPLES = r'''
- name: Snapshot database activity for triage
  svpms.incident_response.pg_activity:
    host: db.prod.internal
    user: incident_bot
    database: svpms
    long_running_seconds: 30
    replica_host: db-replica.prod.internal
  register: pg

- name: Show the sessions holding everyone else up
  ansible.builtin.debug:
    msg: "{{ pg.blockers | map(attribute='pid') | list }} block {{ pg.blocked | length }} sessions"
  when: pg.reachable and pg.blockers | length > 0

- name: Mitigate with the guarded cancel, limited to what pg_activity found
  svpms.incident_response.pg_cancel_queries:
    host: db.prod.internal
    user: incident_bot
    target: blockers
    min_duration_seconds: 60
    users: [svpms_app]
    databases: [svpms]
    pids: "{{ pg.blockers | map(attribute='pid') | list }}"
'''

RETURN = r'''
reachable:
  description: Whether the server could be queried. When V(false), only RV(error_kind) and RV(msg) are set besides it.
  returned: always
  type: bool
  sample: true
error_kind:
  description: Why the server could not be checked - V(unreachable), V(timeout), V(auth_failed), V(tls), V(not_found), V(permission), V(query).
  returned: when reachable is false or a query failed
  type: str
  sample: unreachable
msg:
  description: What went wrong and what to check.
  returned: when reachable is false
  type: str
server_version:
  description: PostgreSQL version string.
  returned: when reachable
  type: str
  sample: "15.20"
in_recovery:
  description: Whether the server is a standby (C(pg_is_in_recovery())).
  returned: when reachable
  type: bool
max_connections:
  description: C(max_connections).
  returned: when reachable
  type: int
  sample: 100
superuser_reserved_connections:
  description: C(superuser_reserved_connections) (plus C(reserved_connections) on PostgreSQL 16+ in RV(reserved_connections)).
  returned: when reachable
  type: int
  sample: 3
reserved_connections:
  description: All slots ordinary roles cannot use (superuser_reserved_connections + reserved_connections).
  returned: when reachable
  type: int
  sample: 3
connections:
  description: Client backends connected, not counting this module's own session.
  returned: when reachable
  type: int
  sample: 42
connections_in_scope:
  description: Client backends of the databases in O(databases) (all of them when it is empty).
  returned: when reachable
  type: int
  sample: 30
utilisation_pct:
  description: RV(connections) / (RV(max_connections) - RV(reserved_connections)) * 100, one decimal.
  returned: when reachable
  type: float
  sample: 43.3
by_state:
  description: Client backends per state (V(active), V(idle), V(idle in transaction), ...; V(unknown) when not visible).
  returned: when reachable
  type: dict
  sample: {"active": 3, "idle": 37, "idle in transaction": 2}
by_application:
  description: Client backends grouped by application, user and database, largest group first.
  returned: when reachable
  type: list
  elements: dict
  sample: [{"application": "svpms-api", "user": "svpms_app", "database": "svpms", "count": 30}]
long_running:
  description:
    - Active statements older than O(long_running_seconds), longest first. Each has pid, user, database,
      application, client_addr, state, backend_type, duration_seconds, wait_event_type, wait_event and the
      redacted query.
  returned: when reachable
  type: list
  elements: dict
idle_in_transaction:
  description:
    - Sessions idle in a transaction for longer than O(idle_in_transaction_seconds) (duration_seconds
      since their last state change), with xact_age_seconds.
  returned: when reachable
  type: list
  elements: dict
blocked:
  description:
    - Sessions waiting for a lock, longest waiting first - waiting_seconds, blocked_by (the pids
      C(pg_blocking_pids()) names) and root_blockers (the chain followed to sessions that wait for nobody).
  returned: when reachable
  type: list
  elements: dict
  sample: [{"pid": 4242, "user": "svpms_app", "waiting_seconds": 12.5, "blocked_by": [4100], "root_blockers": [4100]}]
blockers:
  description:
    - The root blockers, most blocked sessions first - their state, duration_seconds (in the current
      state), xact_age_seconds, query, blocking (pids waiting for them, directly or not) and blocked_count.
  returned: when reachable
  type: list
  elements: dict
replication:
  description:
    - Rows of C(pg_stat_replication) (standbys streaming from this server) - client, application, state,
      sync_state, write_lag_seconds, flush_lag_seconds, replay_lag_seconds, replay_lag_bytes.
  returned: when reachable
  type: list
  elements: dict
replay_lag_seconds:
  description: When this server is itself a standby, C(now() - pg_last_xact_replay_timestamp()).
  returned: when in_recovery
  type: float
replica:
  description:
    - The replica given by O(replica_host) - host, port, reachable, in_recovery, replay_lag_seconds,
      last_replay_at, receive_lsn, replay_lsn, replay_paused; or reachable V(false) with error_kind and msg.
  returned: when replica_host is set
  type: dict
  sample: {"host": "db-replica", "port": 5432, "reachable": true, "in_recovery": true, "replay_lag_seconds": 0.4}
limited_visibility:
  description: V(true) when the connecting role lacks pg_read_all_stats (pg_monitor), so other sessions' state and query are hidden.
  returned: when reachable
  type: bool
truncated:
  description: Names of the lists cut at O(list_limit).
  returned: when reachable
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.checks import finding  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.postgres import (  # noqa: E402
    IDLE_IN_TRANSACTION_STATES,
    PostgresError,
    close_quietly,
    connect,
    ensure_psycopg2,
    fetch_sessions,
    postgres_argument_spec,
    run_query,
    seconds,
    server_info,
    session_view,
    utilisation_pct,
    validate_connection_params,
)

SETTINGS_SQL = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
       COALESCE(current_setting('reserved_connections', true), '0')::int AS reserved_connections
"""

REPLICATION_SQL = """
SELECT pid, usename AS user, application_name AS application, host(client_addr) AS client,
       client_hostname, state, sync_state,
       EXTRACT(EPOCH FROM write_lag)::float8 AS write_lag_seconds,
       EXTRACT(EPOCH FROM flush_lag)::float8 AS flush_lag_seconds,
       EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_seconds,
       pg_wal_lsn_diff(sent_lsn, replay_lsn)::float8 AS replay_lag_bytes,
       sent_lsn::text AS sent_lsn, replay_lsn::text AS replay_lsn
FROM pg_stat_replication ORDER BY application_name, pid
"""

STANDBY_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery()
            THEN EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))::float8 END AS replay_lag_seconds,
       CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp()::text END AS last_replay_at,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()::text END AS receive_lsn,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text END AS replay_lsn,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS replay_paused,
       current_setting('server_version') AS server_version
"""

SESSION_FIELDS = ('backend_type', 'wait_event_type', 'wait_event')


def is_client(row):
    return (row.get('backend_type') or 'client backend') == 'client backend'


def limited(items, key, limit, name, truncated):
    items = sorted(items, key=key)
    if len(items) > limit:
        truncated.append(name)
        return items[:limit]
    return items


def snapshot(conn, params, own_pid):
    rows, roots, waiting_for = fetch_sessions(conn)
    others = [r for r in rows if r['pid'] != own_pid]
    clients = [r for r in others if is_client(r)]
    scope = set(params['databases'] or [])

    def in_scope(row):
        return not scope or row.get('database') in scope
    qlen = params['query_max_len']
    limit = params['list_limit']
    truncated = []

    by_state = {}
    groups = {}
    for row in clients:
        state = row.get('state') or 'unknown'
        by_state[state] = by_state.get(state, 0) + 1
        key = (row.get('application') or '', row.get('user'), row.get('database'))
        groups[key] = groups.get(key, 0) + 1
    by_application = [dict(application=k[0], user=k[1], database=k[2], count=v)
                      for k, v in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0][0], str(kv[0][1]), str(kv[0][2])))]

    long_running = []
    for row in others:
        if not in_scope(row) or row.get('state') != 'active' or row.get('query_seconds') is None:
            continue
        if row.get('backend_type') not in ('client backend', 'autovacuum worker'):
            continue
        if row['query_seconds'] > params['long_running_seconds']:
            item = session_view(row, SESSION_FIELDS, qlen)
            item['duration_seconds'] = seconds(row['query_seconds'])
            long_running.append(item)

    idle_tx = []
    for row in clients:
        if in_scope(row) and row.get('state') in IDLE_IN_TRANSACTION_STATES and row.get('state_seconds') is not None \
                and row['state_seconds'] > params['idle_in_transaction_seconds']:
            item = session_view(row, SESSION_FIELDS, qlen)
            item['duration_seconds'] = seconds(row['state_seconds'])
            item['xact_age_seconds'] = seconds(row.get('xact_seconds'))
            idle_tx.append(item)

    by_pid = dict((r['pid'], r) for r in rows)
    blocked = []
    for row in others:
        if not row['blocked_by'] or not in_scope(row):
            continue
        item = session_view(row, SESSION_FIELDS, qlen)
        item['waiting_seconds'] = seconds(row.get('query_seconds') if row.get('state') == 'active'
                                          else row.get('state_seconds'))
        item['blocked_by'] = row['blocked_by']
        item['root_blockers'] = row['root_blockers']
        blocked.append(item)

    blockers = []
    for pid, waiting in waiting_for.items():
        if pid == own_pid:
            continue
        # a blocker is in scope when one of the sessions it blocks is (locks never cross databases)
        if scope and not any(in_scope(by_pid.get(w) or {}) for w in waiting):
            continue
        row = by_pid.get(pid)
        if row is None:
            item = dict(pid=pid, user=None, database=None, application=None, client_addr=None,
                        state='prepared transaction' if pid == 0 else 'gone', query=None,
                        note='a prepared transaction holds the lock: see pg_prepared_xacts'
                        if pid == 0 else 'session ended while the snapshot was taken')
        else:
            item = session_view(row, SESSION_FIELDS, qlen)
            item['duration_seconds'] = seconds(row.get('state_seconds'))
            item['xact_age_seconds'] = seconds(row.get('xact_seconds'))
        item['blocking'] = waiting
        item['blocked_count'] = len(waiting)
        blockers.append(item)

    return dict(
        connections=len(clients),
        connections_in_scope=len([r for r in clients if in_scope(r)]),
        by_state=by_state,
        by_application=limited(by_application, lambda x: 0, limit, 'by_application', truncated),
        long_running=limited(long_running, lambda x: -(x['duration_seconds'] or 0), limit, 'long_running', truncated),
        idle_in_transaction=limited(idle_tx, lambda x: -(x['duration_seconds'] or 0), limit,
                                    'idle_in_transaction', truncated),
        blocked=limited(blocked, lambda x: -(x['waiting_seconds'] or 0), limit, 'blocked', truncated),
        blockers=limited(blockers, lambda x: (-x['blocked_count'], x['pid']), limit, 'blockers', truncated),
        truncated=truncated,
        limited_visibility=False,
    )


def replication_rows(conn):
    rows = run_query(conn, REPLICATION_SQL, what='reading pg_stat_replication')
    for row in rows:
        for key in ('write_lag_seconds', 'flush_lag_seconds', 'replay_lag_seconds'):
            row[key] = None if row[key] is None else round(row[key], 3)
    return rows


def check_replica(module, params):
    rparams = dict(params)
    rparams['host'] = params['replica_host']
    rparams['port'] = params['replica_port'] or params['port']
    out = dict(host=rparams['host'], port=rparams['port'])
    conn = None
    try:
        conn = connect(module, rparams)
        row = run_query(conn, STANDBY_SQL, what='reading replica recovery state')[0]
    except PostgresError as err:
        out.update(finding(err))
        return out
    finally:
        close_quietly(conn)
    out['reachable'] = True
    out.update(row)
    if row['replay_lag_seconds'] is not None:
        out['replay_lag_seconds'] = round(row['replay_lag_seconds'], 3)
    if not row['in_recovery']:
        out['msg'] = 'the replica is not in recovery: it was promoted or is not a standby'
    return out


def main():
    spec = postgres_argument_spec()
    spec.update(
        long_running_seconds=dict(type='float', default=30),
        idle_in_transaction_seconds=dict(type='float', default=30),
        replica_host=dict(type='str'),
        replica_port=dict(type='int'),
        databases=dict(type='list', elements='str', default=[]),
        list_limit=dict(type='int', default=50),
        query_max_len=dict(type='int', default=200),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    validate_connection_params(module)
    errors = []
    for name in ('long_running_seconds', 'idle_in_transaction_seconds'):
        if params[name] < 0:
            errors.append('%s must be 0 or more seconds, got %s' % (name, params[name]))
    if not 1 <= params['list_limit'] <= 1000:
        errors.append('list_limit must be between 1 and 1000, got %s' % params['list_limit'])
    if not 20 <= params['query_max_len'] <= 10000:
        errors.append('query_max_len must be between 20 and 10000, got %s' % params['query_max_len'])
    if params['replica_port'] is not None and not 1 <= params['replica_port'] <= 65535:
        errors.append('replica_port must be between 1 and 65535, got %s' % params['replica_port'])
    if params['replica_port'] is not None and not params['replica_host']:
        errors.append('replica_port needs replica_host')
    if errors:
        module.fail_json(msg='; '.join(errors))
    ensure_psycopg2(module)

    conn = None
    try:
        conn = connect(module)
        info = server_info(conn)
        settings = run_query(conn, SETTINGS_SQL, what='reading connection settings')[0]
        result = snapshot(conn, params, info['own_pid'])
        result['replication'] = replication_rows(conn)
        if info['in_recovery']:
            standby = run_query(conn, STANDBY_SQL, what='reading recovery state')[0]
            lag = standby['replay_lag_seconds']
            result['replay_lag_seconds'] = None if lag is None else round(lag, 3)
    except PostgresError as err:
        close_quietly(conn)
        module.exit_json(changed=False, **finding(err))
    close_quietly(conn)

    reserved = settings['superuser_reserved_connections'] + settings['reserved_connections']
    result.update(
        changed=False, reachable=True,
        server_version=info['server_version'], in_recovery=info['in_recovery'],
        max_connections=settings['max_connections'],
        superuser_reserved_connections=settings['superuser_reserved_connections'],
        reserved_connections=reserved,
        utilisation_pct=utilisation_pct(result['connections'], settings['max_connections'], reserved),
    )
    if not (info['superuser'] or info['read_all_stats']):
        result['limited_visibility'] = True
        module.warn('role %s cannot see the state and query of other roles\' sessions: GRANT pg_monitor TO %s'
                    % (info['user'], info['user']))
    if params['replica_host']:
        result['replica'] = check_replica(module, params)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
