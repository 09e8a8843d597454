#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_health
short_description: Check a Redis server (session store, cache) during an incident
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Measures how a Redis server is doing right now and says in plain sentences what looks wrong
    (RV(problems)).
  - Round-trip latency from O(ping_count) C(PING)s; keyspace hit rate, evictions and commands per second
    over a short sample (two C(INFO) snapshots O(sample_seconds) apart) as well as over the server's
    lifetime; memory against C(maxmemory); clients; the slowest recent commands from C(SLOWLOG), as the
    command name and argument count only, never argument values (they may hold session tokens).
  - With O(canary=true), checks that the session store accepts and serves a write end to end (see O(canary)).
  - An unreachable server, a wrong password or a timeout is a finding, not a failure - the task succeeds
    with RV(reachable=false), RV(error_kind) and RV(msg).
  - Always reports C(changed=false).
options:
  ping_count:
    description:
      - Number of C(PING) round trips to time, 1 to 100.
    type: int
    default: 5
  sample_seconds:
    description:
      - Seconds between the two C(INFO) snapshots whose difference gives RV(hit_rate_pct),
        RV(evictions_in_sample) and RV(ops_per_sec), 0 to 60.
      - V(0) takes one snapshot only; the sample values are then V(null) and only lifetime values are returned.
    type: float
    default: 2
  slowlog_count:
    description:
      - How many of the slowest entries of the server's C(SLOWLOG) to return, 0 to 128. The newest
        128 entries are read and the slowest of them returned. V(0) skips the slowlog.
    type: int
    default: 5
  canary:
    description:
      - Write, read back and delete a unique key - the session store check. The key is O(canary_prefix)
        followed by a random UUID; it is written with C(SET NX EX) O(canary_ttl_seconds), read with C(GET)
        and removed with C(DEL).
      - This is a write, but it leaves nothing behind (deleted, and bound by its TTL if the delete fails),
        so the task still reports C(changed=false).
      - Never runs in check mode, because check mode never writes; RV(canary) then says it was skipped.
      - A canary that fails (C(READONLY) replica, C(OOM) at maxmemory, C(NOPERM)) is reported in RV(canary)
        and RV(problems); the task does not fail.
    type: bool
    default: false
  canary_prefix:
    description:
      - Key prefix of the canary key. Give the ACL user of the check C(SET), C(GET) and C(DEL) on this prefix only.
    type: str
    default: 'svpms:incident-canary:'
  canary_ttl_seconds:
    description:
      - Expiry of the canary key in seconds, 1 to 3600; the longest it can survive a failed delete.
    type: int
    default: 30
  min_hit_rate_pct:
    description:
      - Report a problem when the hit rate (over the sample, or over the lifetime when
        O(sample_seconds=0)) is below this percentage, 0 to 100. No hit-rate check when not set.
    type: float
  max_memory_pct:
    description:
      - Report a problem when C(used_memory) reaches this percentage of C(maxmemory), 0 to 100.
        Never applies to a server without C(maxmemory) (unlimited). V(null) switches the check off.
    type: float
    default: 90
  max_blocked_clients:
    description:
      - Report a problem when more clients than this are blocked (C(BLPOP), C(WAIT), ...), 0 or more.
        Raise it for servers that serve blocking queues.
    type: int
    default: 0
extends_documentation_fragment:
  - svpms.incident_response.redis
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Everything except the canary runs, as it only reads; the canary is skipped because it writes a key.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
  action_group:
    description: Use C(group/svpms.incident_response.redis) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - svpms.incident_response.redis
notes:
  - Commands used - C(PING), C(INFO), C(SLOWLOG GET) and, with O(canary=true), C(SET), C(GET), C(DEL) on
    O(canary_prefix) keys. A least-privilege ACL user for the check is
    C(ACL SETUSER incident on >... +ping +info +slowlog|get +set +get +del ~svpms:incident-canary:*).
  - The sample's hit rate and evictions are the whole server's, not only one application's.
  - RV(memory_pct) is V(null) when C(maxmemory) is 0, which means no limit; Redis then grows until the host
    runs out of memory, and RV(notes) says so.
  - A slowlog unavailable to the user (C(NOPERM), a renamed command) gives RV(slowlog=null) and a note,
    not a failure.
seealso:
  - name: INFO command
    description: Meaning of the INFO fields this module reports.
    link: https://redis.io/docs/latest/commands/info/
  - name: SLOWLOG command
    description: What the slow log records.
    link: https://redis.io/docs/latest/commands/slowlog/
'''

EXAMPLES = r'''
- name: Check the session store, including a write
  svpms.incident_response.redis_health:
    host: "{{ svpms_redis_host }}"
    tls: true
    username: incident
    password: "{{ vault_redis_incident_password }}"
    canary: true
    min_hit_rate_pct: 80
  register: redis_check

- name: Say what looks wrong
  ansible.builtin.debug:
    msg: "{{ redis_check.problems }}"
  when: redis_check.problems | length > 0

- name: Stop when the session store cannot be reached
  ansible.builtin.fail:
    msg: "Redis: {{ redis_check.error_kind }}: {{ redis_check.msg }}"
  when: not redis_check.reachable

- name: Quick look without a sample (lifetime counters only)
  svpms.incident_response.redis_health:
    sample_seconds: 0
    slowlog_count: 10
'''

RETURN = r'''
reachable:
  description: Whether the server answered. V(false) with RV(error_kind) and RV(msg) otherwise.
  returned: always
  type: bool
  sample: true
error_kind:
  description:
    - Why the check could not be made, V(null) when it was. V(unreachable), V(timeout), V(auth_failed),
      V(tls), V(protocol) (something that is not Redis answered), V(permission) (C(NOPERM) on
      C(INFO)), V(command).
  returned: always
  type: str
  sample: null
msg:
  description: One-line summary, or what went wrong and what to check.
  returned: always
  type: str
  sample: "Redis 7.0.15 (master) at 10.0.3.12:6379: 1 problem: hit rate 12.3% over 2 s is below 80%"
problems:
  description: Short sentences for what looks wrong, empty when nothing does.
  returned: always
  type: list
  elements: str
  sample: ["hit rate 12.3% over 2 s is below 80%", "evicted 120 keys in 2 s", "memory 95% of maxmemory"]
notes:
  description: Context that is not a problem, such as no C(maxmemory) limit or no lookups during the sample.
  returned: always
  type: list
  elements: str
  sample: ["maxmemory is 0 (no limit): memory_pct is null"]
ping:
  description: C(PING) round-trip times in milliseconds; V(null) when not connected.
  returned: always
  type: dict
  contains:
    count:
      description: Number of pings timed.
      type: int
      returned: success
      sample: 5
    min_ms:
      description: Fastest round trip.
      type: float
      returned: success
      sample: 0.21
    avg_ms:
      description: Mean round trip.
      type: float
      returned: success
      sample: 0.3
    max_ms:
      description: Slowest round trip.
      type: float
      returned: success
      sample: 0.52
sample_seconds:
  description: Measured seconds between the two C(INFO) snapshots; V(null) without a sample.
  returned: always
  type: float
  sample: 2.001
hit_rate_pct:
  description: Keyspace hit rate over the sample in percent; V(null) without a sample or without lookups in it.
  returned: always
  type: float
  sample: 97.4
evictions_in_sample:
  description: Keys evicted by C(maxmemory) during the sample; V(null) without a sample.
  returned: always
  type: int
  sample: 0
ops_per_sec:
  description: Commands per second during the sample, without the module's own; V(null) without a sample.
  returned: always
  type: float
  sample: 1520.5
sample:
  description: All the sample's differences; V(null) without a sample.
  returned: always
  type: dict
  sample: {seconds: 2.001, hits: 30, misses: 70, hit_rate_pct: 30.0, evictions: 0, expired: 0,
           rejected_connections: 0, ops_per_sec: 50.0, reset: false}
hit_rate_pct_lifetime:
  description: Keyspace hit rate since the server started (or C(CONFIG RESETSTAT)); V(null) without lookups.
  returned: always
  type: float
  sample: 93.1
keyspace_hits:
  description: C(keyspace_hits) from C(INFO) (lifetime).
  returned: always
  type: int
  sample: 1034211
keyspace_misses:
  description: C(keyspace_misses) from C(INFO) (lifetime).
  returned: always
  type: int
  sample: 76550
evicted_keys:
  description: C(evicted_keys) from C(INFO) (lifetime).
  returned: always
  type: int
  sample: 0
expired_keys:
  description: C(expired_keys) from C(INFO) (lifetime).
  returned: always
  type: int
  sample: 5230
used_memory_bytes:
  description: C(used_memory) from C(INFO).
  returned: always
  type: int
  sample: 1048576000
maxmemory_bytes:
  description: C(maxmemory) from C(INFO); V(0) means no limit.
  returned: always
  type: int
  sample: 1610612736
memory_pct:
  description: RV(used_memory_bytes) as a percentage of RV(maxmemory_bytes); V(null) when C(maxmemory) is 0 (no limit).
  returned: always
  type: float
  sample: 65.1
maxmemory_policy:
  description: What Redis does at C(maxmemory), for example V(allkeys-lru) or V(noeviction) (writes fail with C(OOM)).
  returned: always
  type: str
  sample: volatile-lru
connected_clients:
  description: C(connected_clients) from C(INFO).
  returned: always
  type: int
  sample: 42
blocked_clients:
  description: C(blocked_clients) from C(INFO).
  returned: always
  type: int
  sample: 0
rejected_connections:
  description: C(rejected_connections) from C(INFO) (lifetime; C(maxclients) reached).
  returned: always
  type: int
  sample: 0
redis_version:
  description: Server version.
  returned: always
  type: str
  sample: 7.0.15
role:
  description: V(master) or V(slave) (a replica).
  returned: always
  type: str
  sample: master
uptime_seconds:
  description: Seconds since the server started.
  returned: always
  type: int
  sample: 864000
slowlog:
  description:
    - The slowest recent commands, slowest first; V(null) when O(slowlog_count=0) or the slowlog could
      not be read (see RV(notes)).
    - RV(slowlog[].command) is the command name and the number of its arguments, never their values.
  returned: always
  type: list
  elements: dict
  sample: [{id: 812, started_at: '2026-03-01T09:00:02Z', duration_ms: 153.2, command: KEYS (1 arg)}]
  contains:
    id:
      description: Slowlog entry id.
      type: int
      returned: success
    started_at:
      description: When the command started, ISO 8601 UTC.
      type: str
      returned: success
    duration_ms:
      description: Execution time in milliseconds (not counting network or queueing).
      type: float
      returned: success
    command:
      description: Command name and argument count, for example V(SET (2 args)).
      type: str
      returned: success
canary:
  description:
    - Result of the session-store check; V(null) when O(canary=false).
    - In check mode C({skipped - 'check mode - the canary writes a key'}) (the text has colons).
  returned: always
  type: dict
  contains:
    ok:
      description: The key was written, read back with the same value and deleted.
      type: bool
      returned: when the canary ran
      sample: true
    write_ms:
      description: Duration of the C(SET), milliseconds; V(null) when it failed.
      type: float
      returned: when the canary ran
      sample: 0.4
    read_ms:
      description: Duration of the C(GET), milliseconds; V(null) when it did not run.
      type: float
      returned: when the canary ran
      sample: 0.3
    key_ttl_seconds:
      description: TTL given to the canary key (O(canary_ttl_seconds)).
      type: int
      returned: when the canary ran
      sample: 30
    key:
      description: The canary key (prefix and a random UUID; no secret).
      type: str
      returned: when the canary ran
      sample: svpms:incident-canary:4c1f0c6e9d2b4f4e8a8f0d9e6c1b2a3f
    cleanup:
      description: V(deleted), V(nothing written), or why the key may remain until its TTL.
      type: str
      returned: when the canary ran
      sample: deleted
    error:
      description: Why the canary failed, V(null) when it succeeded.
      type: str
      returned: when the canary ran
      sample: "READONLY: You can't write against a read only replica. (this is a replica: run the canary against the primary endpoint)"
    skipped:
      description: Why the canary did not run (check mode).
      type: str
      returned: in check mode with O(canary=true)
'''

import time  # noqa: E402
import uuid  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils.checks import finding  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.redis_client import (  # noqa: E402
    RedisCheckError,
    close_quietly,
    connect,
    ensure_redis,
    fmt_pct,
    fmt_seconds,
    hit_rate,
    memory_pct,
    ping_stats,
    redis_argument_spec,
    run,
    sample_stats,
    top_slowlog,
    validate_connection_params,
)

try:
    import redis.exceptions as rexc
except ImportError:  # pragma: no cover - ensure_redis fails the module first
    rexc = None

SLOWLOG_READ = 128
CHECK_MODE_SKIP = 'check mode: the canary writes a key'

INFO_KEYS = dict(
    keyspace_hits='keyspace_hits', keyspace_misses='keyspace_misses', evicted_keys='evicted_keys',
    expired_keys='expired_keys', used_memory_bytes='used_memory', maxmemory_bytes='maxmemory',
    maxmemory_policy='maxmemory_policy', connected_clients='connected_clients',
    blocked_clients='blocked_clients', rejected_connections='rejected_connections',
    redis_version='redis_version', role='role', uptime_seconds='uptime_in_seconds',
)


def check_options(module):
    p = module.params
    errors = []
    if not 1 <= p['ping_count'] <= 100:
        errors.append('ping_count must be between 1 and 100, got %s' % p['ping_count'])
    if not 0 <= p['sample_seconds'] <= 60:
        errors.append('sample_seconds must be between 0 and 60, got %s' % p['sample_seconds'])
    if not 0 <= p['slowlog_count'] <= SLOWLOG_READ:
        errors.append('slowlog_count must be between 0 and %d, got %s' % (SLOWLOG_READ, p['slowlog_count']))
    if not 1 <= p['canary_ttl_seconds'] <= 3600:
        errors.append('canary_ttl_seconds must be between 1 and 3600, got %s' % p['canary_ttl_seconds'])
    prefix = p['canary_prefix']
    if not prefix or any(ch.isspace() for ch in prefix) or any(ch in prefix for ch in '*?[]'):
        errors.append('canary_prefix must be a non-empty key prefix without spaces or glob characters (*?[]), '
                      'got %r' % prefix)
    for option in ('min_hit_rate_pct', 'max_memory_pct'):
        value = p[option]
        if value is not None and not 0 <= value <= 100:
            errors.append('%s must be between 0 and 100 (a percentage), got %s' % (option, value))
    if p['max_blocked_clients'] < 0:
        errors.append('max_blocked_clients must be 0 or more, got %s' % p['max_blocked_clients'])
    if errors:
        module.fail_json(msg='; '.join(errors))


def empty_result():
    result = dict(changed=False, reachable=False, error_kind=None, msg=None, problems=[], notes=[],
                  ping=None, sample_seconds=None, hit_rate_pct=None, evictions_in_sample=None,
                  ops_per_sec=None, sample=None, hit_rate_pct_lifetime=None, slowlog=None, canary=None,
                  memory_pct=None)
    for key in INFO_KEYS:
        result[key] = None
    return result


def ms_since(start):
    return round((time.perf_counter() - start) * 1000.0, 3)


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def canary_error(exc, params):
    """A short, secret-free text for a failed canary command."""
    text = ' '.join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, rexc.ReadOnlyError):
        return 'READONLY: %s (this is a replica: run the canary against the primary endpoint)' % text
    if isinstance(exc, rexc.OutOfMemoryError):
        return ('OOM: %s (used memory is at maxmemory with policy noeviction: the session store refuses '
                'new sessions)' % text)
    if isinstance(exc, rexc.NoPermissionError):
        return 'NOPERM: %s (allow +set +get +del on ~%s* for this user)' % (text, params['canary_prefix'])
    if isinstance(exc, (rexc.TimeoutError, TimeoutError)):
        return 'timeout: no answer within socket_timeout=%ss (%s)' % (params['socket_timeout'], text)
    if isinstance(exc, (rexc.ConnectionError, OSError)):
        return 'connection lost: %s' % text
    return text


def run_canary(client, params):
    """SET NX EX / GET / DEL a unique key; never raises for a Redis error."""
    key = params['canary_prefix'] + uuid.uuid4().hex
    value = uuid.uuid4().hex
    ttl = params['canary_ttl_seconds']
    out = dict(ok=False, key=key, write_ms=None, read_ms=None, key_ttl_seconds=ttl,
               cleanup='nothing written', error=None)
    maybe_written = False
    try:
        start = time.perf_counter()
        maybe_written = True
        stored = client.set(key, value, ex=ttl, nx=True)
        out['write_ms'] = ms_since(start)
        if not stored:
            maybe_written = False
            out['error'] = 'SET NX refused: the key %s already existed' % key
            return out
        start = time.perf_counter()
        got = client.get(key)
        out['read_ms'] = ms_since(start)
        if got != value:
            out['error'] = ('read back %s instead of the value written'
                            % ('nothing (the key vanished at once)' if got is None else 'a different value'))
        else:
            out['ok'] = True
    except (rexc.RedisError, OSError) as exc:
        out['error'] = canary_error(exc, params)
        if isinstance(exc, rexc.ResponseError) and out['write_ms'] is None:
            maybe_written = False  # the server refused the SET: nothing was written
    finally:
        if maybe_written:
            try:
                client.delete(key)
                out['cleanup'] = 'deleted'
            except (rexc.RedisError, OSError) as exc:
                out['ok'] = False
                out['cleanup'] = 'delete failed (%s); the key expires within %d s' % (canary_error(exc, params), ttl)
                if not out['error']:
                    out['error'] = 'DEL failed: %s' % canary_error(exc, params)
    return out


def read_slowlog(client, params, count, result):
    client.set_response_callback('SLOWLOG GET', lambda response, **kwargs: response)
    try:
        raw = run(client, params, 'SLOWLOG GET', client.execute_command, 'SLOWLOG GET', SLOWLOG_READ)
    except RedisCheckError as err:
        if not err.reachable:
            raise
        result['notes'].append('slowlog not read: %s' % err.message)
        return None
    return top_slowlog(raw, count)


def problems_of(result, params):
    problems = []
    sample = result['sample']
    seconds = fmt_seconds(result['sample_seconds']) if result['sample_seconds'] is not None else None
    threshold = params['min_hit_rate_pct']
    if threshold is not None:
        if sample is not None:
            rate = result['hit_rate_pct']
            if rate is not None and rate < threshold:
                problems.append('hit rate %s%% over %s s is below %s%%' % (fmt_pct(rate), seconds, fmt_pct(threshold)))
        else:
            rate = result['hit_rate_pct_lifetime']
            if rate is not None and rate < threshold:
                problems.append('lifetime hit rate %s%% is below %s%%' % (fmt_pct(rate), fmt_pct(threshold)))
    if sample is not None and sample['evictions']:
        problems.append('evicted %d keys in %s s' % (sample['evictions'], seconds))
    if sample is not None and sample['rejected_connections']:
        problems.append('rejected %d connections in %s s (maxclients reached)' % (sample['rejected_connections'], seconds))
    limit = params['max_memory_pct']
    if limit is not None and result['memory_pct'] is not None and result['memory_pct'] >= limit:
        text = 'memory %s%% of maxmemory' % fmt_pct(result['memory_pct'])
        if result['maxmemory_policy'] == 'noeviction':
            text += ' (policy noeviction: writes fail with OOM when it is full)'
        problems.append(text)
    blocked = result['blocked_clients']
    if blocked is not None and blocked > params['max_blocked_clients']:
        problems.append('%d blocked client%s' % (blocked, '' if blocked == 1 else 's'))
    info = result.pop('_info', {})
    if result['role'] == 'slave' and info.get('master_link_status') not in (None, 'up'):
        problems.append('replica link to master %s:%s is %s'
                        % (info.get('master_host'), info.get('master_port'), info.get('master_link_status')))
    canary = result['canary']
    if canary and canary.get('ok') is False:
        problems.append('canary failed: %s' % canary.get('error'))
    return problems


def summary(result, params):
    where = '%s:%s' % (params['host'], params['port'])
    head = 'Redis %s (%s) at %s' % (result['redis_version'], result['role'], where)
    if not result['problems']:
        return '%s: no problems found' % head
    n = len(result['problems'])
    return '%s: %d problem%s: %s' % (head, n, '' if n == 1 else 's', '; '.join(result['problems']))


def check(module, client, result):
    params = module.params
    durations = []
    for _i in range(params['ping_count']):
        start = time.perf_counter()
        run(client, params, 'PING', client.ping)
        durations.append((time.perf_counter() - start) * 1000.0)
    result['ping'] = ping_stats(durations)

    first = run(client, params, 'INFO', client.info)
    first_at = time.monotonic()
    info = first
    if params['sample_seconds'] > 0:
        time.sleep(params['sample_seconds'])
        info = run(client, params, 'INFO', client.info)
        seconds = time.monotonic() - first_at
        sample = sample_stats(first, info, seconds)
        result.update(sample=sample, sample_seconds=sample['seconds'], hit_rate_pct=sample['hit_rate_pct'],
                      evictions_in_sample=sample['evictions'], ops_per_sec=sample['ops_per_sec'])
        if sample['reset']:
            result['notes'].append('counters went backwards during the sample (CONFIG RESETSTAT or a restart): '
                                   'no sample values')
        elif not sample['hits'] and not sample['misses']:
            result['notes'].append('no key lookups during the %s s sample: hit_rate_pct is null'
                                   % fmt_seconds(sample['seconds']))
    for key, name in INFO_KEYS.items():
        value = info.get(name)
        result[key] = value if key in ('maxmemory_policy', 'redis_version', 'role') or value is None else as_int(value)
    if result['redis_version'] is not None:
        result['redis_version'] = str(result['redis_version'])
    result['hit_rate_pct_lifetime'] = hit_rate(result['keyspace_hits'], result['keyspace_misses'])
    result['memory_pct'] = memory_pct(result['used_memory_bytes'], result['maxmemory_bytes'])
    if not result['maxmemory_bytes']:
        result['notes'].append('maxmemory is 0 (no limit): memory_pct is null; Redis grows until the host runs '
                               'out of memory')
    if params['sample_seconds'] == 0 and result['evicted_keys']:
        result['notes'].append('%d keys evicted since the server started (no sample taken to tell whether it is '
                               'happening now)' % result['evicted_keys'])
    result['_info'] = info

    if params['slowlog_count'] > 0:
        result['slowlog'] = read_slowlog(client, params, params['slowlog_count'], result)

    if params['canary']:
        if module.check_mode:
            result['canary'] = dict(skipped=CHECK_MODE_SKIP)
        else:
            result['canary'] = run_canary(client, params)


def main():
    argument_spec = redis_argument_spec()
    argument_spec.update(
        ping_count=dict(type='int', default=5),
        sample_seconds=dict(type='float', default=2.0),
        slowlog_count=dict(type='int', default=5),
        canary=dict(type='bool', default=False),
        canary_prefix=dict(type='str', default='svpms:incident-canary:'),
        canary_ttl_seconds=dict(type='int', default=30),
        min_hit_rate_pct=dict(type='float'),
        max_memory_pct=dict(type='float', default=90.0),
        max_blocked_clients=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_redis(module)
    validate_connection_params(module)
    check_options(module)
    params = module.params

    result = empty_result()
    client = None
    try:
        client = connect(module)
        result['reachable'] = True
        check(module, client, result)
    except RedisCheckError as err:
        result.pop('_info', None)
        result.update(finding(err))
        result['problems'] = ['%s: %s' % (err.kind, err.message)]
        if params['canary'] and result['canary'] is None:
            result['canary'] = (dict(skipped=CHECK_MODE_SKIP) if module.check_mode else
                                dict(ok=False, key=None, write_ms=None, read_ms=None,
                                     key_ttl_seconds=params['canary_ttl_seconds'], cleanup='nothing written',
                                     error='not run: %s' % err.kind))
        module.exit_json(**result)
    finally:
        close_quietly(client)

    result['problems'] = problems_of(result, params)
    result['msg'] = summary(result, params)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
