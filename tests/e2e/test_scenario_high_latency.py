"""Scenario 2 (high latency, p95 > 1000 ms) end to end on the local sandbox.

One sandbox, the tests run in file order; each injects one fault into a
healthy sandbox, lets the runbook find the cause and mitigate it, and reads
the result back from the backends themselves (PostgreSQL's pg_stat_activity,
SSM in moto, ECS in moto, the twin's own latency):

  lock_contention  a batch session idle in transaction holds row locks the
                   API's requests wait on -> approve mode stops, --check
                   lists the blocker and ends nothing, auto ends exactly it
  cache_miss_storm a bad config push sets the cache TTL to 1 s -> triage
                   routes to this runbook, which raises the TTL again
  slow_deploy      a CPU-heavy revision -> the runbook scales out (bounded)
"""
import json
import time
import urllib.request

import psycopg2
import pytest

from tests.e2e.conftest import run_playbook
from tests.helpers.servers import REPO

pytestmark = pytest.mark.e2e

# The sandbox's verification is already short; shorter still here (two
# rounds), the scenario 1 tests cover the watch itself.
FAST_VERIFY = ('-e', 'verify_recovery_watch_seconds=10', '-e', 'verify_recovery_interval_seconds=5',
               '-e', 'incident_mode=auto')
SECRETS = ('sandbox-secret-key',)
HOLDER_APP = 'svpms-nightly-reconcile'


def twin_window(box, seconds=10):
    url = box.twin_url + '/twin/state?window=%d' % seconds
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def wait_until(what, predicate, timeout=60, interval=1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = predicate()
        if ok:
            return last
        time.sleep(interval)
    raise AssertionError('gave up after %d s waiting for %s; last seen: %r' % (timeout, what, last))


def wait_for_latency(box, above=True, threshold=1000.0):
    def check():
        state = twin_window(box)
        p95 = state['window']['p95_ms'] or 0.0
        return (p95 > threshold) if above else (0 < p95 < threshold), state['window']
    return wait_until('the twin p95 to go %s %d ms' % ('above' if above else 'below', threshold), check, timeout=60)


def connection(box):
    with open(box.connection_file) as fh:
        return json.loads(''.join(line for line in fh if not line.startswith('#')))


def db_sessions(box, application):
    conn = connection(box)
    db = psycopg2.connect(host=conn['svpms_db_host'], port=conn['svpms_db_port'], dbname=conn['svpms_db_name'],
                          user='postgres', connect_timeout=5, application_name='e2e-observer')
    try:
        db.autocommit = True
        with db.cursor() as cur:
            cur.execute('SELECT pid, state FROM pg_stat_activity WHERE datname = %s AND application_name = %s',
                        (conn['svpms_db_name'], application))
            return cur.fetchall()
    finally:
        db.close()


def heal(box):
    box.heal()
    wait_for_latency(box, above=False, threshold=500.0)


def assert_clean_output(run):
    assert 'Traceback' not in run.output
    texts = [run.output] + [open('%s/%s' % (run.incident_dir, name)).read()
                            for name in ('report.md', 'summary.json', 'timeline.jsonl')]
    for secret in SECRETS:
        for text in texts:
            assert secret not in text


def playbook():
    return '%s/playbooks/scenario_high_latency.yml' % REPO


def test_healthy_sandbox_has_no_latency_symptom(sandbox, tmp_path):
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-healthy', playbook=playbook())
    assert run.rc == 0, run.output
    assert 'Symptom absent' in run.output
    assert run.summary()['outcome'] == 'no_incident'
    assert_clean_output(run)


def test_lock_contention_is_found_and_gated(sandbox, tmp_path):
    """approve mode and --check name the blocking session and end nothing."""
    sandbox.inject('lock_contention')
    wait_for_latency(sandbox)
    holder = db_sessions(sandbox, HOLDER_APP)
    assert len(holder) == 1 and holder[0][1] == 'idle in transaction', holder
    pid = holder[0][0]

    run = run_playbook(sandbox, tmp_path, 'e2e-lat-approve', '-e', 'incident_mode=approve', playbook=playbook())
    assert run.rc != 0
    summary = run.summary()
    assert summary['outcome'] == 'approval_required', summary
    assert summary['decision']['action'] == 'pg_cancel_queries'
    assert str(pid) in summary['decision']['target']
    findings = {f['check']: f for f in summary['findings']}
    assert findings['database locks and long-running queries']['status'] == 'problem'
    assert str(pid) in findings['database locks and long-running queries']['summary']
    assert 'incident_approve=pg_cancel_queries:svpms-api:' in run.output
    assert db_sessions(sandbox, HOLDER_APP) == holder, 'approve mode must not end the session'

    run = run_playbook(sandbox, tmp_path, 'e2e-lat-check', '--check', playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'would_mitigate'
    assert summary['mitigation']['status'] == 'would_apply'
    assert str(pid) in summary['mitigation']['after']['sessions']
    assert 'would_cancel' in summary['mitigation']['after']['sessions']
    assert db_sessions(sandbox, HOLDER_APP) == holder, '--check must not end the session'
    assert_clean_output(run)


def test_lock_contention_auto_ends_exactly_the_blocker(sandbox, tmp_path):
    holder = db_sessions(sandbox, HOLDER_APP)
    assert holder, 'the lock holder of the previous test is still there'
    pid = holder[0][0]
    api_before = {p for p, _s in db_sessions(sandbox, 'svpms-api')}
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-auto', *FAST_VERIFY, playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'recovered', summary
    mitigation = summary['mitigation']
    assert mitigation['status'] == 'applied'
    # cancel cannot end an idle-in-transaction session: it was terminated after the grace period
    assert '%d terminated' % pid in mitigation['after']['sessions'], mitigation
    assert db_sessions(sandbox, HOLDER_APP) == []
    # the API's own sessions (the waiters) were not touched
    api_after = {p for p, _s in db_sessions(sandbox, 'svpms-api')}
    assert api_before & api_after, (api_before, api_after)
    assert summary['verification']['status'] == 'passed'
    assert_clean_output(run)
    heal(sandbox)


def test_cache_miss_storm_routed_by_triage_raises_the_ttl(sandbox, tmp_path):
    conn = connection(sandbox)
    ssm = sandbox.boto('ssm')
    parameter = conn['svpms_cache_ttl_parameter']
    sandbox.inject('cache_miss_storm')
    assert ssm.get_parameter(Name=parameter)['Parameter']['Value'] == '1'
    wait_for_latency(sandbox)
    # a cache refills as requests come in: give it the settle time a real one needs
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-triage', '-e', 'triage_route=true', *FAST_VERIFY,
                       '-e', 'verify_recovery_settle_seconds=15', playbook='%s/playbooks/triage.yml' % REPO)
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['scenario'] == 'high_latency', summary
    assert summary['outcome'] == 'recovered', summary
    assert summary['decision']['action'] == 'ssm_flag'
    findings = {f['check']: f for f in summary['findings']}
    assert findings['cache hit rate']['status'] == 'problem'
    assert ssm.get_parameter(Name=parameter)['Parameter']['Value'] == str(conn['svpms_cache_ttl_seconds'])
    # the routed run released the service's mitigation lock (the next incident can act)
    lock = sandbox.boto('dynamodb').get_item(TableName=conn['svpms_lock_table'], Key={'lock_key': {'S': 'svpms-api'}})
    assert 'Item' not in lock, lock
    # P2 (performance under the SLO): a Slack post in #incidents, no page
    paths = [n['path'] for n in sandbox.notifications()]
    assert any(p.endswith('/chat.postMessage') for p in paths), paths
    assert not any(p.endswith('/v2/enqueue') for p in paths), paths
    assert_clean_output(run)
    heal(sandbox)


def test_a_mitigation_that_does_not_help_is_escalated(sandbox, tmp_path):
    """A team's TTL setting too low to help: the runbook applies it, the
    verification fails, the thread says so and escalates, the run fails."""
    conn = connection(sandbox)
    ssm = sandbox.boto('ssm')
    sandbox.inject('cache_miss_storm')
    wait_for_latency(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-escalate', '-e', 'triage_route=true', *FAST_VERIFY,
                       '-e', 'high_latency_cache_ttl_seconds=2', playbook='%s/playbooks/triage.yml' % REPO)
    assert run.rc != 0
    assert 'Not recovered:' in run.output
    summary = run.summary()
    assert summary['outcome'] == 'not_recovered', summary
    assert summary['mitigation']['status'] == 'applied'
    assert summary['verification']['status'] == 'failed'
    assert ssm.get_parameter(Name=conn['svpms_cache_ttl_parameter'])['Parameter']['Value'] == '2'
    posts = [n for n in sandbox.notifications() if n['path'].endswith('/chat.postMessage')
             and 'e2e-lat-escalate' in (n.get('json') or {}).get('text', '')]
    assert posts and 'Escalating.' in posts[-1]['json']['text'], posts
    assert_clean_output(run)
    heal(sandbox)


def test_slow_deploy_scales_out_within_the_cap(sandbox, tmp_path):
    ecs = sandbox.boto('ecs')

    def desired():
        return ecs.describe_services(cluster=conn['svpms_ecs_cluster'],
                                     services=[conn['svpms_ecs_service']])['services'][0]['desiredCount']
    conn = connection(sandbox)
    before = desired()
    sandbox.inject('slow_deploy')
    wait_for_latency(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-scale', *FAST_VERIFY, '-e', 'high_latency_scale_max_count=6',
                       playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['decision']['action'] == 'ecs_scale', summary['decision']
    assert summary['outcome'] == 'recovered', summary
    assert desired() == min(before + 3, 6)
    findings = {f['check']: f for f in summary['findings']}
    assert findings['CPU and memory']['status'] == 'problem'
    assert findings['recent deployments']['status'] == 'problem'  # reported, rolling back is a human's call
    assert_clean_output(run)
    heal(sandbox)
