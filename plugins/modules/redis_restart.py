#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_restart
short_description: Restart Redis (ElastiCache nodes or a self-hosted server) and wait until it serves again
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Restarts Redis in one of two ways, and waits - bounded - until it serves again.
  - B(ElastiCache) (O(cache_cluster_id)) - calls C(RebootCacheCluster) for O(node_ids) (default every node of the
    cluster), then polls C(DescribeCacheClusters) every O(wait_interval) seconds until the cluster and the rebooted
    nodes are C(available) again, for at most O(wait_timeout) seconds. The cluster must be C(available) to start.
  - B(Self-hosted) (O(restart_command)) - runs O(restart_command) (an argument vector, never through a shell),
    then tries C(PING) on O(host)/O(port) until Redis answers again, for at most O(wait_timeout) seconds. When
    the server answered before the restart, the module also waits for a new C(run_id) (C(INFO server)), so the
    old process answering before it stops is not taken for the restarted one.
  - Exactly one of O(cache_cluster_id) and O(restart_command) must be given.
  - A failed reboot call, a failed command, or a Redis that does not come back in time fails the task with what was
    seen (last status, exit code, output tail). Nothing is retried that could restart Redis twice.
  - Always reports C(changed=true) when it restarts (or, in check mode, would restart).
options:
  cache_cluster_id:
    description:
      - ElastiCache cache cluster to reboot, for example V(svpms-prod-sessions-001). For a replication group, the
        member cluster (one node each).
    type: str
  node_ids:
    description:
      - Cache node ids of O(cache_cluster_id) to reboot, for example V(["0001"]). Default - every node of the
        cluster. Each must exist in the cluster.
    type: list
    elements: str
  restart_command:
    description:
      - Command that restarts a self-hosted Redis, as a list of arguments run without a shell, for example
        V(["systemctl", "restart", "redis-server"]). It must exit 0.
      - Runs for at most O(command_timeout) seconds; on timeout it is killed (C(SIGKILL)). Arguments are passed
        as they are, without C(~) or variable expansion.
    type: list
    elements: str
  command_timeout:
    description:
      - Seconds O(restart_command) may run, 1 to 3600.
    type: int
    default: 60
  wait_timeout:
    description:
      - Seconds to wait for Redis to serve again after the reboot call or the command, 1 to 3600.
    type: int
    default: 600
  wait_interval:
    description:
      - Seconds between two checks while waiting, more than 0 and at most O(wait_timeout).
      - Default V(10) for ElastiCache and V(0.5) for a self-hosted server.
    type: float
  connect_timeout:
    description:
      - Seconds to wait for a TCP connection - to the AWS endpoint (ElastiCache) or to Redis (each C(PING) check),
        more than 0 and at most 60.
    type: float
    default: 5
extends_documentation_fragment:
  - svpms.incident_response.aws
  - svpms.incident_response.redis
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - ElastiCache - the cluster is described (to name the nodes) but C(RebootCacheCluster) is never called.
      - Self-hosted - the command is not run and Redis is not contacted; the plan is returned.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing) in diff mode.
    support: none
notes:
  - IAM actions used (ElastiCache) - C(elasticache:DescribeCacheClusters) and, outside check mode,
    C(elasticache:RebootCacheCluster).
  - The Redis connection options (O(host), O(port), O(password), O(tls), ...) only apply to the C(PING) check of a
    self-hosted restart. The AWS options only apply to ElastiCache.
  - The password never appears in the output, also not in the command's output tails.
'''

EXAMPLES = r'''
- name: Reboot every node of the session store cluster and wait until it is available
  svpms.incident_response.redis_restart:
    cache_cluster_id: svpms-prod-sessions-001
    region: eu-west-1
  register: restart

- name: Reboot one node only, waiting at most 15 minutes
  svpms.incident_response.redis_restart:
    cache_cluster_id: svpms-prod-cache
    node_ids: ["0002"]
    wait_timeout: 900

- name: Restart the self-hosted Redis and wait until it answers PING
  svpms.incident_response.redis_restart:
    restart_command: [systemctl, restart, redis-server]
    host: 10.0.3.17
    port: 6379
    password: "{{ vault_redis_password }}"
    wait_timeout: 60
  become: true
'''

RETURN = r'''
method:
  description: How Redis was (or would be) restarted, V(elasticache) or V(command).
  returned: always
  type: str
  sample: elasticache
cache_cluster_id:
  description: The ElastiCache cluster.
  returned: when O(cache_cluster_id) is given
  type: str
  sample: svpms-prod-sessions-001
rebooted_nodes:
  description: Cache node ids rebooted (in check mode, that would be rebooted).
  returned: when O(cache_cluster_id) is given
  type: list
  elements: str
  sample: ["0001"]
cluster_status:
  description: Last C(CacheClusterStatus) seen.
  returned: when O(cache_cluster_id) is given
  type: str
  sample: available
statuses_seen:
  description: The distinct cluster statuses seen while waiting, in order (evidence that the reboot happened).
  returned: when O(cache_cluster_id) is given
  type: list
  elements: str
  sample: ["rebooting cluster nodes", "available"]
command:
  description: The restart command and how it ended (in check mode only C(argv); the rest V(null)).
  returned: when O(restart_command) is given
  type: dict
  contains:
    argv:
      description: The argument vector.
      type: list
      elements: str
      sample: [systemctl, restart, redis-server]
    rc:
      description: Exit code; V(null) when it did not run or was killed at O(command_timeout).
      type: int
      sample: 0
    stdout_tail:
      description: The last 2000 characters of its standard output.
      type: str
      sample: ""
    stderr_tail:
      description: The last 2000 characters of its standard error.
      type: str
      sample: ""
run_id_before:
  description: C(run_id) of the self-hosted server before the restart; V(null) when it did not answer (or in check mode).
  returned: when O(restart_command) is given
  type: str
  sample: 5d2e1f9c0b7a4e3d8c6b5a4f3e2d1c0b9a8f7e6d
run_id_after:
  description: C(run_id) of the server that answered after the restart; V(null) when C(INFO) is not allowed.
  returned: when O(restart_command) is given
  type: str
  sample: 0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b
waited_for:
  description: What the module waited for (in check mode, what it would wait for).
  returned: always
  type: str
  sample: "Redis 127.0.0.1:6379 to answer PING with a new run_id"
ping_ms:
  description: Round trip of a C(PING) once the server answered again; V(null) for ElastiCache and in check mode.
  returned: always
  type: float
  sample: 0.412
elapsed_seconds:
  description: Seconds from the reboot call or the start of the command until Redis served again.
  returned: always
  type: float
  sample: 3.27
error_kind:
  description: On failure - V(not_found), V(invalid_state), V(timeout), V(command_failed), V(auth_failed), V(tls),
    V(permission), V(unreachable), V(access_denied) or another AWS error kind.
  returned: on failure
  type: str
  sample: timeout
'''

import os  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import aws  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.redis_client import (  # noqa: E402
    RedisAuthError,
    RedisCheckError,
    RedisPermissionError,
    RedisTLSError,
    close_quietly,
    connect,
    ensure_redis,
    redis_argument_spec,
    run,
    validate_connection_params,
    where_of,
)

AVAILABLE = 'available'
# Cluster statuses from which no reboot completes: stop waiting at once.
DEAD_STATUSES = frozenset(['deleted', 'deleting', 'incompatible-network', 'restore-failed', 'create-failed'])
CLUSTER_NOT_FOUND = 'CacheClusterNotFound'
INVALID_STATE = 'InvalidCacheClusterState'
TAIL_CHARS = 2000
MAX_WAIT = 3600
MAX_COMMAND_TIMEOUT = 3600


class RestartError(Exception):
    """A restart that did not complete; ``details`` says what was seen."""

    def __init__(self, kind, message, **details):
        self.kind = kind
        self.message = message
        self.details = details
        super(RestartError, self).__init__(message)


# --------------------------------------------------------------------------- ElastiCache

def describe_cluster(ec, cluster_id):
    """The CacheCluster dict (with CacheNodes). Raises RestartError (not_found) or aws.AWSError."""
    try:
        resp = ec.call('describe_cache_clusters', CacheClusterId=cluster_id, ShowCacheNodeInfo=True)
    except aws.AWSError as err:
        if err.code == CLUSTER_NOT_FOUND:
            raise RestartError('not_found', 'ElastiCache cache cluster %s does not exist: check cache_cluster_id '
                               '(for a replication group, the member cluster id, e.g. NAME-001) and the '
                               'region/account' % cluster_id, rebooted_nodes=[])
        raise
    clusters = resp.get('CacheClusters') or []
    if not clusters:
        raise RestartError('not_found', 'ElastiCache answered no cache cluster %s' % cluster_id, rebooted_nodes=[])
    return clusters[0]


def _node_statuses(cluster):
    return dict((n.get('CacheNodeId'), n.get('CacheNodeStatus')) for n in cluster.get('CacheNodes') or [])


def plan_reboot(ec, cluster_id, node_ids=None):
    """(cluster, target node ids) after checking the cluster can be rebooted now. Raises RestartError."""
    cluster = describe_cluster(ec, cluster_id)
    status = cluster.get('CacheClusterStatus')
    nodes = _node_statuses(cluster)
    if status != AVAILABLE:
        raise RestartError('invalid_state', 'ElastiCache cache cluster %s is %r, not available: it can only be '
                           'rebooted when available; nothing was rebooted' % (cluster_id, status),
                           rebooted_nodes=[], cluster_status=status)
    if not nodes:
        raise RestartError('not_found', 'ElastiCache cache cluster %s lists no cache nodes; nothing was rebooted'
                           % cluster_id, rebooted_nodes=[], cluster_status=status)
    if node_ids:
        unknown = [n for n in node_ids if n not in nodes]
        if unknown:
            raise RestartError('not_found', 'node_ids %s are not nodes of cache cluster %s (its nodes: %s); nothing '
                               'was rebooted' % (', '.join(unknown), cluster_id, ', '.join(sorted(nodes))),
                               rebooted_nodes=[], cluster_status=status)
        targets = list(dict.fromkeys(node_ids))
    else:
        targets = sorted(nodes)
    return cluster, targets


def reboot_and_wait(ec, cluster_id, node_ids=None, check_mode=False, wait_timeout=600, wait_interval=10,
                    clock=time.monotonic, sleep=time.sleep):
    """Reboot ``node_ids`` (default all) of an ElastiCache cluster and wait until it is available again.

    ``ec`` is an aws.AWSClient for elasticache. Returns the result dict; raises
    RestartError (with what was seen) or aws.AWSError. In check mode only
    DescribeCacheClusters is called.
    """
    cluster, targets = plan_reboot(ec, cluster_id, node_ids)
    waited_for = ('ElastiCache cache cluster %s status available and node(s) %s available'
                  % (cluster_id, ', '.join(targets)))
    result = dict(changed=True, method='elasticache', cache_cluster_id=cluster_id, rebooted_nodes=targets,
                  cluster_status=cluster.get('CacheClusterStatus'), statuses_seen=[], waited_for=waited_for,
                  ping_ms=None, elapsed_seconds=0.0)
    if check_mode:
        return result

    started = clock()
    try:
        resp = ec.call('reboot_cache_cluster', CacheClusterId=cluster_id, CacheNodeIdsToReboot=targets)
    except aws.AWSError as err:
        if err.code == INVALID_STATE:
            raise RestartError('invalid_state', 'ElastiCache refused to reboot cache cluster %s (%s); nothing was '
                               'rebooted' % (cluster_id, err.message), rebooted_nodes=[])
        if err.code == CLUSTER_NOT_FOUND:
            raise RestartError('not_found', 'ElastiCache cache cluster %s disappeared before the reboot; nothing '
                               'was rebooted' % cluster_id, rebooted_nodes=[])
        raise
    seen = []

    def note(status):
        if status and (not seen or seen[-1] != status):
            seen.append(status)

    note((resp.get('CacheCluster') or {}).get('CacheClusterStatus'))
    deadline = started + wait_timeout
    last_nodes = {}
    status = None
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(wait_interval, remaining))
        try:
            cluster = describe_cluster(ec, cluster_id)
        except RestartError as err:
            err.message = 'reboot of %s requested, then: %s' % (cluster_id, err.message)
            err.details.update(rebooted_nodes=targets, statuses_seen=seen)
            raise
        except aws.AWSError as err:
            raise RestartError(err.kind, 'reboot of node(s) %s of %s requested, but its status could not be read '
                               'while waiting: %s' % (', '.join(targets), cluster_id, err.describe()),
                               rebooted_nodes=targets, statuses_seen=seen)
        status = cluster.get('CacheClusterStatus')
        note(status)
        last_nodes = _node_statuses(cluster)
        if status in DEAD_STATUSES:
            raise RestartError('invalid_state', 'reboot of %s requested, then the cluster became %r; stopped waiting'
                               % (cluster_id, status), rebooted_nodes=targets, cluster_status=status,
                               statuses_seen=seen)
        if status == AVAILABLE and all(last_nodes.get(n) == AVAILABLE for n in targets):
            result.update(cluster_status=status, statuses_seen=seen,
                          elapsed_seconds=round(clock() - started, 3))
            return result
    nodes_text = ', '.join('%s=%s' % (n, last_nodes.get(n)) for n in targets) if last_nodes else 'not read'
    raise RestartError('timeout', 'reboot of node(s) %s of ElastiCache cache cluster %s requested, but after %ss the '
                       'cluster is %r (nodes: %s); waited for %s. Check the cluster\'s events in the console'
                       % (', '.join(targets), cluster_id, wait_timeout, status or (seen[-1] if seen else None),
                          nodes_text, waited_for),
                       rebooted_nodes=targets, cluster_status=status, statuses_seen=seen, waited_for=waited_for,
                       elapsed_seconds=round(clock() - started, 3))


# --------------------------------------------------------------------------- self-hosted

def redact(text, secrets):
    for secret in secrets:
        if secret:
            text = text.replace(secret, '********')
    return text


def _tail(text, secrets):
    return redact((text or '')[-TAIL_CHARS:], secrets)


def run_restart_command(module, argv, timeout, secrets=()):
    """Run ``argv`` without a shell through module.run_command; return {argv, rc, stdout_tail, stderr_tail, timed_out}.

    A watchdog kills the command (SIGKILL) when it runs longer than ``timeout``
    seconds. Arguments are passed as they are (no ``~`` or variable expansion).
    """
    state = dict(timer=None, timed_out=False)

    def arm(proc):
        def fire():
            if proc.poll() is None:
                state['timed_out'] = True
                proc.kill()
        state['timer'] = threading.Timer(timeout, fire)
        state['timer'].daemon = True
        state['timer'].start()

    try:
        rc, out, err = module.run_command(list(argv), expand_user_and_vars=False, before_communicate_callback=arm,
                                          errors='surrogate_or_replace')
    finally:
        if state['timer'] is not None:
            state['timer'].cancel()
    return dict(argv=[redact(a, secrets) for a in argv], rc=None if state['timed_out'] else rc,
                stdout_tail=_tail(out, secrets), stderr_tail=_tail(err, secrets), timed_out=state['timed_out'])


def find_program(program):
    """The executable ``program`` resolves to (a path, or a name looked up in PATH); None if there is none."""
    if os.sep in program:
        return program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    return shutil.which(program)


def _bounded(params, remaining):
    """Connection params whose timeouts do not overrun the wait's deadline."""
    bounded = dict(params)
    limit = max(0.2, remaining)
    bounded['connect_timeout'] = min(params['connect_timeout'], limit)
    bounded['socket_timeout'] = min(params['socket_timeout'], limit)
    return bounded


def server_run_id(module, params):
    """(run_id or None, error or None) of the server now, one attempt."""
    client = None
    try:
        client = connect(module, params)
        info = run(client, params, 'INFO server', client.info, 'server')
        return info.get('run_id'), None
    except RedisCheckError as err:
        return None, err
    finally:
        close_quietly(client)


def wait_for_redis(module, params, run_id_before, wait_timeout, wait_interval, clock=time.monotonic,
                   sleep=time.sleep):
    """Wait until Redis answers PING (with a run_id other than ``run_id_before``, when known).

    Returns (ping_ms, run_id_after). Raises RestartError on timeout, or at once
    on an authentication, TLS or permission error (waiting would not help).
    """
    deadline = clock() + wait_timeout
    last = None
    while True:
        remaining = deadline - clock()
        bounded = _bounded(params, remaining)
        client = None
        try:
            client = connect(module, bounded)
            started = clock()
            run(client, bounded, 'PING', client.ping)
            ping_ms = round((clock() - started) * 1000.0, 3)
            try:
                run_id = run(client, bounded, 'INFO server', client.info, 'server').get('run_id')
            except RedisPermissionError:
                run_id = None  # INFO not allowed for this user: PING is the evidence we have
            if run_id_before is None or run_id is None or run_id != run_id_before:
                return ping_ms, run_id
            last = 'Redis still answers with the run_id it had before the restart (%s): not restarted yet' % run_id
        except (RedisAuthError, RedisTLSError, RedisPermissionError) as err:
            raise RestartError(err.kind, 'Redis came back but the check cannot use it: %s' % err.describe())
        except RedisCheckError as err:
            last = err.describe()
        finally:
            close_quietly(client)
        if deadline - clock() <= 0:
            raise RestartError('timeout', 'no answer after %ss; last seen: %s' % (wait_timeout, last))
        sleep(min(wait_interval, max(0.0, deadline - clock())))


def _unchanged(result):
    details = dict(result)
    details['changed'] = False
    return details


def restart_command(module, params, argv, command_timeout, wait_timeout, wait_interval):
    where = where_of(params)
    secrets = [params.get('password')] if params.get('password') else []
    waited_for = '%s to answer PING' % where
    result = dict(changed=True, method='command', command=dict(argv=[redact(a, secrets) for a in argv], rc=None,
                                                               stdout_tail=None, stderr_tail=None),
                  run_id_before=None, run_id_after=None, waited_for=waited_for + ' (with a new run_id if it '
                  'answered before)', ping_ms=None, elapsed_seconds=0.0)
    if module.check_mode:
        return result
    run_id_before, before_err = server_run_id(module, _bounded(params, params['connect_timeout']))
    if isinstance(before_err, (RedisAuthError, RedisTLSError)):
        # A down server is why one restarts; a check that cannot log in would never confirm the restart.
        raise RestartError(before_err.kind, 'the PING check that must confirm the restart cannot work: %s; '
                           'nothing was run' % before_err.describe(), **_unchanged(result))
    if run_id_before:
        waited_for += ' with a new run_id (it had %s before)' % run_id_before
    result.update(run_id_before=run_id_before, waited_for=waited_for)
    if find_program(argv[0]) is None:
        raise RestartError('command_failed', 'restart_command could not be started: %s is not an executable file '
                           '(nor found in PATH); nothing was run' % redact(argv[0], secrets),
                           **_unchanged(result))
    started = time.monotonic()
    outcome = run_restart_command(module, argv, command_timeout, secrets)
    timed_out = outcome.pop('timed_out')
    result['command'] = outcome
    result['elapsed_seconds'] = round(time.monotonic() - started, 3)
    if timed_out:
        raise RestartError('command_failed', 'restart_command did not finish within command_timeout=%ss and was '
                           'killed; Redis was not waited for' % command_timeout, **result)
    if outcome['rc'] != 0:
        tail = (outcome['stderr_tail'] or outcome['stdout_tail'] or '').strip()[-300:]
        raise RestartError('command_failed', 'restart_command exited with rc=%s%s; Redis was not waited for'
                           % (outcome['rc'], ': %s' % ' '.join(tail.split()) if tail else ''), **result)
    try:
        ping_ms, run_id_after = wait_for_redis(module, params, run_id_before, wait_timeout, wait_interval)
    except RestartError as err:
        result['elapsed_seconds'] = round(time.monotonic() - started, 3)
        err.message = 'restart_command exited 0, but %s: %s (waited for %s)' % (where, err.message, waited_for)
        err.details.update(result)
        raise
    result.update(ping_ms=ping_ms, run_id_after=run_id_after, elapsed_seconds=round(time.monotonic() - started, 3))
    return result


# --------------------------------------------------------------------------- module

def check_options(module):
    p = module.params
    errors = []
    if p['cache_cluster_id'] is not None and not p['cache_cluster_id'].strip():
        errors.append('cache_cluster_id must not be empty')
    if p['node_ids'] is not None:
        if not p['node_ids']:
            errors.append('node_ids must not be an empty list (leave it out to reboot every node)')
        elif any(not n or not n.strip() for n in p['node_ids']):
            errors.append('node_ids must not contain empty ids')
    if p['restart_command'] is not None:
        if not p['restart_command'] or not (p['restart_command'][0] or '').strip():
            errors.append('restart_command must be a non-empty list of arguments whose first item is the program')
    if not 1 <= p['command_timeout'] <= MAX_COMMAND_TIMEOUT:
        errors.append('command_timeout must be between 1 and %d seconds, got %s' % (MAX_COMMAND_TIMEOUT, p['command_timeout']))
    if not 1 <= p['wait_timeout'] <= MAX_WAIT:
        errors.append('wait_timeout must be between 1 and %d seconds, got %s' % (MAX_WAIT, p['wait_timeout']))
    if p['wait_interval'] is not None and not 0 < p['wait_interval'] <= p['wait_timeout']:
        errors.append('wait_interval must be more than 0 and at most wait_timeout (%s), got %s'
                      % (p['wait_timeout'], p['wait_interval']))
    if not 0 < p['connect_timeout'] <= 60:
        errors.append('connect_timeout must be more than 0 and at most 60 seconds, got %s' % p['connect_timeout'])
    if p['read_timeout'] <= 0:
        errors.append('read_timeout must be a positive number of seconds, got %s' % p['read_timeout'])
    if p['max_attempts'] < 1:
        errors.append('max_attempts must be 1 or more, got %s' % p['max_attempts'])
    if errors:
        module.fail_json(msg='; '.join(errors))


def main():
    argument_spec = aws.aws_argument_spec()
    argument_spec.update(redis_argument_spec())
    argument_spec.update(
        cache_cluster_id=dict(type='str'),
        node_ids=dict(type='list', elements='str'),
        restart_command=dict(type='list', elements='str'),
        command_timeout=dict(type='int', default=60),
        wait_timeout=dict(type='int', default=600),
        wait_interval=dict(type='float'),
        connect_timeout=dict(type='float', default=5.0),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('cache_cluster_id', 'restart_command')],
        required_one_of=[('cache_cluster_id', 'restart_command')],
        required_by=dict(node_ids='cache_cluster_id'),
        supports_check_mode=True,
    )
    check_options(module)
    p = module.params
    try:
        if p['cache_cluster_id'] is not None:
            if not aws.HAS_BOTO3:
                module.fail_json(msg=missing_required_lib('boto3 and botocore'), exception=str(aws.BOTO3_IMPORT_ERROR))
            cluster_id = p['cache_cluster_id'].strip()
            try:
                ec = aws.build_client(p, 'elasticache')
            except Exception as exc:  # botocore configuration errors: a finding, not a traceback
                err = aws.classify(exc, 'elasticache', 'create_client', p.get('endpoint_url'), 1)
                module.fail_json(msg=err.describe(), method='elasticache', cache_cluster_id=cluster_id,
                                 rebooted_nodes=[], changed=False, **err.to_result())
            try:
                result = reboot_and_wait(ec, cluster_id, p['node_ids'], module.check_mode, p['wait_timeout'],
                                         p['wait_interval'] or 10)
            except aws.AWSError as err:
                module.fail_json(msg=err.describe(), method='elasticache', cache_cluster_id=cluster_id,
                                 rebooted_nodes=[], changed=False, **err.to_result())
            module.exit_json(**result)

        ensure_redis(module)
        validate_connection_params(module)
        result = restart_command(module, p, p['restart_command'], p['command_timeout'], p['wait_timeout'],
                                 p['wait_interval'] or 0.5)
        module.exit_json(**result)
    except RestartError as err:
        details = dict(err.details)
        if p['cache_cluster_id'] is not None:
            details.setdefault('method', 'elasticache')
            details.setdefault('cache_cluster_id', p['cache_cluster_id'].strip())
        else:
            details.setdefault('method', 'command')
        details.pop('changed', None)
        details.pop('msg', None)
        # A reboot request or a command that ran changed something even though the task failed.
        ran = bool(details.get('rebooted_nodes')) or (details.get('command') or {}).get('stdout_tail') is not None
        module.fail_json(msg=err.message, error_kind=err.kind, changed=ran, **details)


if __name__ == '__main__':
    main()
