# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared Redis plumbing for the redis_* modules of svpms.incident_response.

One place for: the connection options (REDIS_HOST/REDIS_PORT/REDISCLI_AUTH
environment fallbacks, password with ``no_log``, TLS, connect and socket
timeouts), ``connect`` (redis-py with its own retries switched off: a health
check decides itself what to retry, and a retry would hide the very latency it
measures), typed errors whose messages say what to check, the "redis missing"
failure, and the pure arithmetic the checks share (hit rate, INFO deltas,
memory percentage, ping statistics, slowlog entries without argument values).

Usage in a module::

    from ansible_collections.svpms.incident_response.plugins.module_utils.redis_client import (
        RedisCheckError, connect, ensure_redis, finding, redis_argument_spec, validate_connection_params)

    module = AnsibleModule(argument_spec=redis_argument_spec(), supports_check_mode=True)
    ensure_redis(module)
    validate_connection_params(module)
    try:
        client = connect(module)
    except RedisCheckError as err:
        module.exit_json(changed=False, **finding(err))
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible_collections.svpms.incident_response.plugins.module_utils.checks import CheckError

try:
    import redis
    import redis.exceptions as rexc
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    HAS_REDIS = True
    REDIS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by sanity only
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = exc

DEFAULT_PORT = 6379
DEFAULT_TIMEOUT = 3.0
MAX_TIMEOUT = 60.0

# Redis keeps at most 32 arguments of a slowlog entry; with more it keeps 31 and
# replaces the rest by this marker (slowlog.c, SLOWLOG_ENTRY_MAX_ARGC).
_SLOWLOG_MORE = re.compile(r'^\.\.\. \((\d+) more arguments?\)$')
_COMMAND_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_|.-]{0,39}$')


def redis_argument_spec():
    """The connection options every redis_* module accepts (a fresh dict)."""
    return dict(
        host=dict(type='str', default='127.0.0.1', fallback=(env_fallback, ['REDIS_HOST'])),
        port=dict(type='int', default=DEFAULT_PORT, fallback=(env_fallback, ['REDIS_PORT'])),
        db=dict(type='int', default=0),
        username=dict(type='str'),
        password=dict(type='str', no_log=True, fallback=(env_fallback, ['REDISCLI_AUTH'])),
        tls=dict(type='bool', default=False),
        tls_ca_cert=dict(type='path'),
        tls_verify=dict(type='bool', default=True),
        connect_timeout=dict(type='float', default=DEFAULT_TIMEOUT),
        socket_timeout=dict(type='float', default=DEFAULT_TIMEOUT),
    )


def check_connection_params(params):
    """Messages for invalid connection options (empty list when all are fine)."""
    errors = []
    if not (params.get('host') or '').strip():
        errors.append('host must not be empty')
    port = params.get('port')
    if port is None or not 1 <= port <= 65535:
        errors.append('port must be between 1 and 65535, got %s' % port)
    db = params.get('db')
    if db is None or db < 0:
        errors.append('db must be 0 or more, got %s' % db)
    for option in ('connect_timeout', 'socket_timeout'):
        value = params.get(option)
        if value is None or not 0 < value <= MAX_TIMEOUT:
            errors.append('%s must be more than 0 and at most %d seconds, got %s' % (option, MAX_TIMEOUT, value))
    if params.get('tls_ca_cert') and not params.get('tls'):
        errors.append('tls_ca_cert is only used with tls=true; set tls=true or remove tls_ca_cert')
    if params.get('username') is not None and not params.get('username').strip():
        errors.append('username must not be empty when given (leave it out for the default user)')
    return errors


def ensure_redis(module):
    """Fail the module with Ansible's standard message when redis-py is missing."""
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib('redis'), exception=str(REDIS_IMPORT_ERROR))


def validate_connection_params(module):
    errors = check_connection_params(module.params)
    if errors:
        module.fail_json(msg='; '.join(errors))


# --- typed errors ------------------------------------------------------------

class RedisCheckError(CheckError):
    """A failed Redis connect or command, with what an operator should check."""

    kind = 'command'


class RedisUnreachableError(RedisCheckError):
    kind = 'unreachable'
    reachable = False


class RedisTimeoutError(RedisCheckError):
    kind = 'timeout'
    reachable = False


class RedisAuthError(RedisCheckError):
    kind = 'auth_failed'
    reachable = False


class RedisTLSError(RedisCheckError):
    kind = 'tls'
    reachable = False


class RedisProtocolError(RedisCheckError):
    kind = 'protocol'
    reachable = False


class RedisPermissionError(RedisCheckError):
    kind = 'permission'


class RedisCommandError(RedisCheckError):
    kind = 'command'


def _one_line(exc, limit=300):
    text = ' '.join((str(exc) or type(exc).__name__).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def where_of(params):
    return 'Redis %s:%s%s' % (params.get('host'), params.get('port'), ' (TLS)' if params.get('tls') else '')


def classify_error(exc, params, what=None):
    """Turn a redis-py exception into a typed RedisCheckError.

    ``what`` names the step (e.g. 'INFO'); None means while connecting. The
    password is never part of a redis-py message, and never of ours.
    """
    where = where_of(params) + (' (%s)' % what if what else '')
    text = _one_line(exc)
    low = text.lower()
    tls = bool(params.get('tls'))
    reply = isinstance(exc, rexc.ResponseError)  # the server answered: its text is not a transport symptom
    if isinstance(exc, rexc.NoPermissionError) or low.startswith('noperm') or 'no permissions to' in low:
        return RedisPermissionError(
            text, where=where,
            hint='The ACL user%s may not run this command or touch these keys: check its ACL rules '
                 '(ACL GETUSER) for the commands and key patterns this check needs'
                 % (' %s' % params['username'] if params.get('username') else ''))
    if isinstance(exc, rexc.AuthenticationError) or 'wrongpass' in low or low.startswith('noauth') or \
            'authentication required' in low or 'invalid username-password' in low or \
            'invalid password' in low or 'must be called with the client already authenticated' in low:
        if params.get('password'):
            hint = ('Check username/password (or REDISCLI_AUTH) against the server\'s requirepass or ACL '
                    'user, and that the user is enabled')
            text = 'authentication failed (WRONGPASS: invalid username-password pair or user is disabled)'
        else:
            hint = 'The server requires a password: set password (or REDISCLI_AUTH) and, for an ACL user, username'
            text = 'authentication required (NOAUTH) and no password was given'
        return RedisAuthError(text, hint=hint, where=where)
    if isinstance(exc, (rexc.TimeoutError, TimeoutError)) or (not reply and ('timed out' in low or 'timeout' in low)):
        hint = ('Nothing answered within connect_timeout=%ss/socket_timeout=%ss: check host/port, that no firewall '
                'or security group drops packets, and whether the server is blocked (a long command, a '
                'fork for a snapshot, swapping)' % (params.get('connect_timeout'), params.get('socket_timeout')))
        if tls:
            hint += '; with tls=true, also check that this port speaks TLS (a plain port never answers a handshake)'
        return RedisTimeoutError(text, hint=hint, where=where)
    if not reply and any(s in low for s in ('ssl', 'certificate', 'tls', 'handshake', 'wrong version number')):
        return RedisTLSError(
            text, where=where,
            hint='Check tls, tls_ca_cert and tls_verify against what the server offers (tls-port, certificate '
                 'chain, host name in the certificate)')
    if isinstance(exc, rexc.InvalidResponse) or 'protocol error' in low:
        hint = 'Something answered that is not Redis: check host/port (a proxy, an HTTP port or a TLS port?)'
        if not tls:
            hint += '; if the server only accepts TLS, set tls=true'
        return RedisProtocolError(text, hint=hint, where=where)
    if isinstance(exc, rexc.BusyLoadingError) or low.startswith('loading'):
        return RedisUnreachableError(
            text, where=where, hint='The server is loading its dataset into memory and serves nothing yet; retry later')
    if isinstance(exc, rexc.ConnectionError) or isinstance(exc, (OSError, EOFError)):
        hint = ('Check host/port, that redis-server is running and listening on that address (bind, protected-mode) '
                'and that no firewall blocks the port')
        if not tls and 'closed' in low:
            hint += '; a server that closes at once may require TLS (set tls=true) or have reached maxclients'
        return RedisUnreachableError(text, where=where, hint=hint)
    if isinstance(exc, rexc.ResponseError):
        return RedisCommandError(text, where=where)
    return RedisCommandError('%s: %s' % (type(exc).__name__, text), where=where)


def client_kwargs(params):
    """Keyword arguments for redis.Redis from the connection options (pure)."""
    kwargs = dict(
        host=params['host'].strip(), port=params['port'], db=params.get('db') or 0,
        socket_connect_timeout=params['connect_timeout'], socket_timeout=params['socket_timeout'],
        # RESP2 works with every server version (ElastiCache included) without HELLO.
        protocol=2,
        decode_responses=True, encoding_errors='replace',
        single_connection_client=True,
        health_check_interval=0,
    )
    if params.get('password'):
        kwargs['password'] = params['password']
        if params.get('username'):
            kwargs['username'] = params['username']
    elif params.get('username'):
        kwargs['username'] = params['username']
    if params.get('tls'):
        kwargs['ssl'] = True
        kwargs['ssl_cert_reqs'] = 'required' if params.get('tls_verify', True) else 'none'
        kwargs['ssl_check_hostname'] = bool(params.get('tls_verify', True))
        if params.get('tls_ca_cert'):
            kwargs['ssl_ca_certs'] = params['tls_ca_cert']
    return kwargs


def connect(module, params=None):
    """A connected redis-py client (PING answered), retries off; raises a typed RedisCheckError."""
    params = params if params is not None else module.params
    kwargs = client_kwargs(params)
    # We decide what to retry: a retried PING would hide the latency we measure.
    kwargs['retry'] = Retry(NoBackoff(), 0)
    try:
        client = redis.Redis(**kwargs)
        client.ping()
    except (rexc.RedisError, OSError, EOFError, ValueError) as exc:
        raise classify_error(exc, params)
    return client


def run(client, params, what, func, *args, **kwargs):
    """Call ``func`` and turn a redis-py error into a typed RedisCheckError naming ``what``."""
    try:
        return func(*args, **kwargs)
    except (rexc.RedisError, OSError, EOFError) as exc:
        raise classify_error(exc, params, what)


def close_quietly(client):
    if client is not None:
        try:
            client.close()
        except Exception:  # pylint: disable=broad-except
            pass


# --- pure arithmetic -----------------------------------------------------------

def _num(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None


def hit_rate(hits, misses):
    """Keyspace hit rate in percent, one decimal; None when there was no lookup."""
    hits = _num(hits) or 0
    misses = _num(misses) or 0
    total = hits + misses
    if total <= 0:
        return None
    return round(100.0 * hits / total, 1)


def memory_pct(used, maxmemory):
    """used_memory as a percentage of maxmemory, one decimal; None when maxmemory is 0 (no limit)."""
    used = _num(used)
    maxmemory = _num(maxmemory)
    if used is None or not maxmemory:
        return None
    return round(100.0 * used / maxmemory, 1)


COUNTERS = ('keyspace_hits', 'keyspace_misses', 'evicted_keys', 'expired_keys', 'rejected_connections',
            'total_commands_processed', 'total_connections_received')


def info_delta(before, after, keys=COUNTERS):
    """Counter differences between two INFO snapshots.

    Returns (delta, reset): delta maps each key to after - before (None when a
    snapshot lacks it); reset is True when any counter went down, which means
    CONFIG RESETSTAT or a restart happened between the snapshots (the deltas
    are then None, not negative).
    """
    delta = {}
    reset = False
    for key in keys:
        a = _num((before or {}).get(key))
        b = _num((after or {}).get(key))
        if a is None or b is None:
            delta[key] = None
            continue
        if b < a:
            reset = True
        delta[key] = b - a
    if reset:
        delta = dict((key, None) for key in keys)
    if not reset and (before or {}).get('run_id') and (after or {}).get('run_id') and \
            before.get('run_id') != after.get('run_id'):
        reset = True
        delta = dict((key, None) for key in keys)
    return delta, reset


def sample_stats(before, after, seconds, own_commands=1):
    """What happened between two INFO snapshots taken ``seconds`` apart.

    ``own_commands`` is how many commands of ours the server counted in between
    (the first INFO itself), left out of ops_per_sec. Returns a dict with
    hits, misses, hit_rate_pct, evictions, expired, rejected_connections,
    ops_per_sec and reset (counters went backwards: everything None).
    """
    delta, reset = info_delta(before, after)
    out = dict(seconds=round(seconds, 3), reset=reset, hits=delta['keyspace_hits'],
               misses=delta['keyspace_misses'], evictions=delta['evicted_keys'],
               expired=delta['expired_keys'], rejected_connections=delta['rejected_connections'],
               hit_rate_pct=None, ops_per_sec=None)
    if reset:
        return out
    if out['hits'] is not None and out['misses'] is not None:
        out['hit_rate_pct'] = hit_rate(out['hits'], out['misses'])
    commands = delta['total_commands_processed']
    if commands is not None and seconds > 0:
        out['ops_per_sec'] = round(max(0, commands - own_commands) / seconds, 1)
    return out


def ping_stats(durations_ms):
    """{count, min_ms, avg_ms, max_ms} of round-trip times in milliseconds (3 decimals)."""
    values = [float(v) for v in durations_ms or []]
    if not values:
        return dict(count=0, min_ms=None, avg_ms=None, max_ms=None)
    return dict(count=len(values), min_ms=round(min(values), 3),
                avg_ms=round(sum(values) / len(values), 3), max_ms=round(max(values), 3))


def command_summary(args):
    """'NAME (N args)' for a slowlog argument vector: the command word and how many
    arguments followed it, never their values (they may hold session tokens or passwords)."""
    args = list(args or [])
    if not args:
        return '? (0 args)'
    first = args[0]
    if isinstance(first, bytes):
        first = first.decode('utf-8', 'replace')
    first = str(first)
    name = first.upper() if _COMMAND_NAME.match(first) else '?'
    count = len(args) - 1
    last = args[-1]
    if isinstance(last, bytes):
        last = last.decode('utf-8', 'replace')
    more = _SLOWLOG_MORE.match(str(last)) if len(args) > 1 else None
    if more:
        count = len(args) - 2 + int(more.group(1))
    return '%s (%d arg%s)' % (name, count, '' if count == 1 else 's')


def iso_from_unix(seconds):
    try:
        stamp = datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return stamp.isoformat().replace('+00:00', 'Z')


def slowlog_entry(raw):
    """One raw SLOWLOG GET entry [id, unix time, microseconds, [args], addr?, name?] as
    {id, started_at, duration_ms, command}, with no argument values."""
    raw = list(raw or [])
    raw += [None] * (4 - len(raw))
    duration_us = _num(raw[2])
    return dict(id=_num(raw[0]), started_at=iso_from_unix(raw[1]),
                duration_ms=None if duration_us is None else round(duration_us / 1000.0, 3),
                command=command_summary(raw[3]))


def top_slowlog(raw_entries, count):
    """The ``count`` slowest entries, slowest first (ties: newest first)."""
    entries = [slowlog_entry(raw) for raw in raw_entries or []]
    entries.sort(key=lambda e: (-(e['duration_ms'] or 0), -(e['id'] or 0)))
    return entries[:max(0, int(count))]


def fmt_pct(value):
    """12.3 -> '12.3', 80.0 -> '80'."""
    text = ('%.1f' % value).rstrip('0').rstrip('.')
    return text


def fmt_seconds(value):
    return ('%.1f' % value).rstrip('0').rstrip('.')
