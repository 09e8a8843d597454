"""Helpers of the scenario 2 (high latency, p95 > 1000 ms) end-to-end tests:
watch the twin's latency, read the sandbox's PostgreSQL sessions, heal.
"""
import json
import time
import urllib.request

import psycopg2

from tests.helpers.servers import REPO

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


def assert_clean_output(run, secrets=SECRETS):
    """No traceback, and none of `secrets` in the output or the incident record."""
    assert 'Traceback' not in run.output
    texts = [run.output] + [open('%s/%s' % (run.incident_dir, name)).read()
                            for name in ('report.md', 'summary.json', 'timeline.jsonl')]
    for secret in secrets:
        for text in texts:
            assert secret not in text


def playbook():
    return '%s/playbooks/scenario_high_latency.yml' % REPO
