"""Pure logic of module_utils/redis_client.py: hit rate, INFO deltas, memory
percentage, ping statistics, slowlog entries without argument values, option
checks and the classification of redis-py's own exception types (constructed
here as redis-py raises them; no server involved)."""

import pytest
import redis.exceptions as rexc

from ansible_collections.svpms.incident_response.plugins.module_utils import checks
from ansible_collections.svpms.incident_response.plugins.module_utils import redis_client as rc

PARAMS = dict(host='10.0.3.12', port=6379, db=0, username=None, password='s3cr3t-pw', tls=False,
              tls_ca_cert=None, tls_verify=True, connect_timeout=3.0, socket_timeout=3.0)


@pytest.mark.parametrize('hits, misses, expected', [
    (30, 70, 30.0),
    (1, 2, 33.3),
    (2, 1, 66.7),
    (100, 0, 100.0),
    (0, 100, 0.0),
    (0, 0, None),
    ('30', '70', 30.0),
    (None, None, None),
])
def test_hit_rate(hits, misses, expected):
    assert rc.hit_rate(hits, misses) == expected


@pytest.mark.parametrize('used, maxmemory, expected', [
    (1048576, 2097152, 50.0),
    (2000000, 2097152, 95.4),
    (5000, 0, None),          # maxmemory 0 = no limit
    (5000, None, None),
    (None, 100, None),
])
def test_memory_pct(used, maxmemory, expected):
    assert rc.memory_pct(used, maxmemory) == expected


def snapshot(**values):
    base = dict(keyspace_hits=1000, keyspace_misses=500, evicted_keys=10, expired_keys=3, rejected_connections=0,
                total_commands_processed=5000, total_connections_received=40, run_id='a' * 40)
    base.update(values)
    return base


def test_info_delta_counts_the_difference():
    before = snapshot()
    after = snapshot(keyspace_hits=1030, keyspace_misses=570, evicted_keys=130, total_commands_processed=5101)
    delta, reset = rc.info_delta(before, after)
    assert not reset
    assert delta['keyspace_hits'] == 30
    assert delta['keyspace_misses'] == 70
    assert delta['evicted_keys'] == 120
    assert delta['expired_keys'] == 0
    assert delta['total_commands_processed'] == 101


def test_info_delta_counter_going_down_is_a_reset_not_a_negative():
    delta, reset = rc.info_delta(snapshot(), snapshot(keyspace_hits=5))
    assert reset
    assert set(delta.values()) == {None}


def test_info_delta_restart_is_a_reset():
    delta, reset = rc.info_delta(snapshot(), snapshot(run_id='b' * 40, keyspace_hits=2000))
    assert reset
    assert delta['keyspace_hits'] is None


def test_info_delta_missing_key_is_none():
    after = snapshot()
    del after['rejected_connections']
    delta, reset = rc.info_delta(snapshot(), after)
    assert not reset
    assert delta['rejected_connections'] is None
    assert delta['keyspace_hits'] == 0


def test_sample_stats():
    before = snapshot()
    after = snapshot(keyspace_hits=1030, keyspace_misses=570, evicted_keys=130, total_commands_processed=5101)
    out = rc.sample_stats(before, after, 2.0)
    assert out['hit_rate_pct'] == 30.0
    assert out['evictions'] == 120
    assert out['hits'] == 30 and out['misses'] == 70
    # 101 commands counted, one of them our own first INFO
    assert out['ops_per_sec'] == 50.0
    assert out['reset'] is False


def test_sample_stats_without_lookups_has_no_hit_rate():
    out = rc.sample_stats(snapshot(), snapshot(total_commands_processed=5001), 1.0)
    assert out['hit_rate_pct'] is None
    assert out['ops_per_sec'] == 0.0


def test_sample_stats_reset():
    out = rc.sample_stats(snapshot(), snapshot(keyspace_hits=1), 2.0)
    assert out['reset'] is True
    assert out['hit_rate_pct'] is None and out['evictions'] is None and out['ops_per_sec'] is None


def test_ping_stats():
    assert rc.ping_stats([0.2, 0.4, 0.3]) == dict(count=3, min_ms=0.2, avg_ms=0.3, max_ms=0.4)
    assert rc.ping_stats([]) == dict(count=0, min_ms=None, avg_ms=None, max_ms=None)


@pytest.mark.parametrize('args, expected', [
    (['SET', 'session:7f3a', 'token-value'], 'SET (2 args)'),
    (['get', 'session:7f3a'], 'GET (1 arg)'),
    (['PING'], 'PING (0 args)'),
    ([b'HSET', b'k', b'f', b'v'], 'HSET (3 args)'),
    (['client|list'], 'CLIENT|LIST (0 args)'),
    # Redis keeps 31 arguments and a marker for the rest: 41 in all, 40 after the name.
    (['MSET'] + ['a', 'b'] * 15 + ['... (10 more arguments)'], 'MSET (40 args)'),
    (['token with spaces', 'x'], '? (1 arg)'),
    ([], '? (0 args)'),
])
def test_command_summary_never_shows_values(args, expected):
    assert rc.command_summary(args) == expected


def test_slowlog_entry_and_top():
    raw = [
        [12, 1772355600, 1500, ['SET', 'session:abc', 'secret-token'], '10.0.0.5:4242', ''],
        [11, 1772355599, 153200, ['KEYS', '*'], '10.0.0.6:4242', 'worker'],
        [10, 1772355598, 800, ['GET', 'session:abc'], '10.0.0.5:4242', ''],
    ]
    entry = rc.slowlog_entry(raw[0])
    assert entry == dict(id=12, started_at='2026-03-01T09:00:00Z', duration_ms=1.5, command='SET (2 args)')
    top = rc.top_slowlog(raw, 2)
    assert [e['id'] for e in top] == [11, 12]
    assert top[0]['duration_ms'] == 153.2
    assert 'secret-token' not in repr(rc.top_slowlog(raw, 5))
    assert 'session:abc' not in repr(rc.top_slowlog(raw, 5))
    assert rc.top_slowlog(raw, 0) == []


def test_fmt():
    assert rc.fmt_pct(80.0) == '80'
    assert rc.fmt_pct(12.34) == '12.3'
    assert rc.fmt_seconds(2.0004) == '2'
    assert rc.fmt_seconds(0.5) == '0.5'


def test_check_connection_params():
    assert rc.check_connection_params(PARAMS) == []
    bad = dict(PARAMS, host=' ', port=0, db=-1, connect_timeout=0, socket_timeout=120.0, tls_ca_cert='/ca.pem')
    errors = ' | '.join(rc.check_connection_params(bad))
    for text in ('host must not be empty', 'port must be between 1 and 65535', 'db must be 0 or more',
                 'connect_timeout must be more than 0', 'socket_timeout must be more than 0',
                 'tls_ca_cert is only used with tls=true'):
        assert text in errors


def test_client_kwargs_tls_and_auth():
    kwargs = rc.client_kwargs(dict(PARAMS, tls=True, tls_ca_cert='/etc/ca.pem', username='incident'))
    assert kwargs['ssl'] is True and kwargs['ssl_ca_certs'] == '/etc/ca.pem'
    assert kwargs['ssl_cert_reqs'] == 'required' and kwargs['ssl_check_hostname'] is True
    assert kwargs['username'] == 'incident' and kwargs['password'] == 's3cr3t-pw'
    assert kwargs['socket_timeout'] == 3.0 and kwargs['socket_connect_timeout'] == 3.0
    plain = rc.client_kwargs(dict(PARAMS, password=None))
    assert 'ssl' not in plain and 'password' not in plain
    unverified = rc.client_kwargs(dict(PARAMS, tls=True, tls_verify=False))
    assert unverified['ssl_cert_reqs'] == 'none' and unverified['ssl_check_hostname'] is False


@pytest.mark.parametrize('exc, kind, reachable, words', [
    (rexc.ConnectionError('Error 111 connecting to 10.0.3.12:6379. Connection refused.'),
     'unreachable', False, 'redis-server is running'),
    (rexc.TimeoutError('Timeout reading from socket'), 'timeout', False, 'socket_timeout=3.0s'),
    (rexc.AuthenticationError('invalid username-password pair or user is disabled.'), 'auth_failed', False,
     'WRONGPASS'),
    (rexc.NoPermissionError("this user has no permissions to run the 'info' command"), 'permission', True,
     'ACL'),
    (rexc.InvalidResponse("Protocol Error: b'HTTP/1.1 400 Bad Request'"), 'protocol', False, 'not Redis'),
    (rexc.ConnectionError('Error 1 connecting to 10.0.3.12:6379. [SSL: CERTIFICATE_VERIFY_FAILED] certificate '
                          'verify failed'), 'tls', False, 'tls_ca_cert'),
    (rexc.BusyLoadingError('Redis is loading the dataset in memory'), 'unreachable', False, 'loading'),
    (rexc.ResponseError('ERR unknown command'), 'command', True, 'unknown command'),
])
def test_classify_error(exc, kind, reachable, words):
    err = rc.classify_error(exc, PARAMS)
    assert err.kind == kind
    assert err.reachable is reachable
    found = checks.finding(err)
    assert found['error_kind'] == kind and found['reachable'] is reachable
    assert words in found['msg']
    assert '10.0.3.12:6379' in found['msg']
    assert PARAMS['password'] not in found['msg']


def test_classify_noauth_without_password_says_set_one():
    err = rc.classify_error(rexc.AuthenticationError('Authentication required.'), dict(PARAMS, password=None))
    assert err.kind == 'auth_failed'
    assert 'NOAUTH' in err.describe() and 'REDISCLI_AUTH' in err.describe()


def test_classify_timeout_with_tls_mentions_a_plain_port():
    err = rc.classify_error(rexc.TimeoutError('Timeout connecting to server'), dict(PARAMS, tls=True))
    assert err.kind == 'timeout'
    assert 'speaks TLS' in err.describe()
