"""playbooks/post_incident.yml end to end on a private sandbox.

A real incident first (high_error_rate injected, the scenario playbook rolls
back and verifies), then the post-incident report of it: report.html
self-contained with both charts embedded, report.md with the rollback's
before/after and the checklist, charts from CloudWatch (moto) or, when it
cannot be read, from the timeline. The tests share the sandbox and the
incident and run in file order.
"""
import base64
import calendar
import json
import math
import os
import re
import time

import pytest

from tests.e2e.conftest import run_playbook, wait_for_symptom
from tests.helpers.servers import REPO, free_port

from svpms_sandbox import Sandbox  # noqa: E402  (tests.e2e.conftest puts sandbox/ on sys.path)

pytestmark = pytest.mark.e2e

PLAYBOOK = os.path.join(REPO, 'playbooks', 'post_incident.yml')
INCIDENT = 'e2e-post-incident'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
SECRETS = ('sandbox-secret-key',)
REPORT_FILES = ('report.md', 'report.html', 'chart_error_rate.png', 'chart_latency_p95.png')


@pytest.fixture(scope='module')
def box(tmp_path_factory):
    """This module's own sandbox (moto_server + twin) on free loopback ports."""
    state = tmp_path_factory.mktemp('post-incident-sandbox')
    sandbox = Sandbox(str(state), moto_port=free_port(), twin_port=free_port(), receiver_port=free_port(),
                      payments=False)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope='module')
def incident(box, tmp_path_factory):
    """A real incident: the bad deployment is rolled back and the recovery verified."""
    base = tmp_path_factory.mktemp('post-incident')
    box.inject('high_error_rate')
    wait_for_symptom(box)
    run = run_playbook(box, base, INCIDENT)
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['outcome'] == 'recovered', run.output
    return base, run


def post_incident(box, base, *extra, incident_id=INCIDENT):
    return run_playbook(box, base, incident_id, *extra, playbook=PLAYBOOK)


def read(run, name):
    with open(os.path.join(run.incident_dir, name), encoding='utf-8') as handle:
        return handle.read()


def recap_changed(run):
    match = re.search(r'svpms-api\s+: ok=\d+\s+changed=(\d+)', run.output)
    assert match, run.output
    return int(match.group(1))


def assert_self_contained(html):
    assert html.startswith('<!DOCTYPE html>')
    assert '<script' not in html.lower()
    assert '<link' not in html.lower()
    for value in re.findall(r'\b(?:src|href|action)\s*=\s*"([^"]*)"', html, re.IGNORECASE):
        assert value.startswith('data:image/png;base64,'), value[:80]
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2, 'expected the error rate and the latency chart embedded'
    for data in images:
        assert base64.b64decode(data).startswith(PNG_MAGIC)


def assert_no_secrets(run):
    texts = [run.output] + [read(run, name) for name in ('report.md', 'report.html')]
    for secret in SECRETS:
        for text in texts:
            assert secret not in text


def test_report_of_the_rollback(box, incident):
    base, scenario = incident
    summary = scenario.summary()
    with open(os.path.join(scenario.incident_dir, 'timeline.jsonl')) as handle:
        timeline_before = handle.read()

    run = post_incident(box, base)
    assert run.rc == 0, run.output
    assert 'Traceback' not in run.output
    html_path = os.path.join(run.incident_dir, 'report.html')
    assert 'Post-incident report: %s' % html_path in run.output
    for name in REPORT_FILES:
        assert os.path.isfile(os.path.join(run.incident_dir, name)), name
    for name in ('chart_error_rate.png', 'chart_latency_p95.png'):
        with open(os.path.join(run.incident_dir, name), 'rb') as handle:
            assert handle.read(8) == PNG_MAGIC

    html = read(run, 'report.html')
    assert_self_contained(html)
    assert 'Time to mitigate' in html and 'Action items' in html

    md = read(run, 'report.md')
    # The charts are CloudWatch's (moto, fed by the twin) over the window.
    assert 'Source: CloudWatch metrics over the incident window' in md
    assert '![5xx error rate over the incident window](chart_error_rate.png)' in md
    # The rollback, with its before and after, in the timeline and in the response.
    before = summary['mitigation']['before']['task_definition']
    after = summary['mitigation']['after']['task_definition']
    assert before != after
    rollback = [line for line in md.splitlines() if 'Roll back the service' in line]
    assert len(rollback) == 1, md
    assert '**changed**' in rollback[0]
    assert 'task_definition: %s \u2192 %s' % (before, after) in rollback[0]
    assert '| task_definition | %s | %s |' % (before, after) in md
    # The seed's checklist, due from the verification that resolved it.
    resolved = summary['verification']['verified_at'].replace('T', ' ').replace('Z', ' UTC')
    assert 'Due dates count from the resolution (%s)' % resolved in md
    for item in ('Update incident ticket with full timeline', 'Share incident summary in #incidents',
                 'Identify action items', 'Document lessons learned', 'Create preventive tasks', 'Update runbooks',
                 'Implement preventive measures', 'Update monitoring/alerts', 'Update documentation',
                 'Train team on findings'):
        assert '- [ ] %s' % item in md
    # No severity recorded yet (no state.json): the post-mortem stays, with a note.
    assert '- [ ] Conduct post-mortem (P0/P1 only; severity not recorded: classify first)' in md
    assert 'KeyError at /app/svpms/api/items.py:list_items' in md
    assert_no_secrets(run)
    # The post-incident run is not part of the incident's timeline.
    with open(os.path.join(run.incident_dir, 'timeline.jsonl')) as handle:
        assert handle.read() == timeline_before


def test_rerun_changes_nothing(box, incident):
    """Once the window is in the past the report is stable: a second run changes nothing.

    The default window ends 5 min after the verification (capped at now), so
    right after an incident it still grows; this test ends it at the
    verification and waits until CloudWatch holds that last period.
    """
    base, scenario = incident
    verified = scenario.summary()['verification']['verified_at']
    period = 10  # high_error_rate_period_seconds of the sandbox inventory
    end = math.ceil(calendar.timegm(time.strptime(verified, '%Y-%m-%dT%H:%M:%SZ')) / period) * period
    delay = end + 5 - time.time()
    if delay > 0:
        time.sleep(delay)
    first = post_incident(box, base, '-e', 'post_incident_after_seconds=0')
    assert first.rc == 0, first.output
    again = post_incident(box, base, '-e', 'post_incident_after_seconds=0')
    assert again.rc == 0, again.output
    assert recap_changed(again) == 0, again.output
    check = post_incident(box, base, '-e', 'post_incident_after_seconds=0', '--check')
    assert check.rc == 0 and recap_changed(check) == 0, check.output


def test_severity_from_state_lists_the_post_mortem(box, incident):
    base, scenario = incident
    # state.json is the incident's state; triage records the severity in it. Set it here as
    # triage would, keeping whatever else the runbook recorded, and put the file back after.
    path = os.path.join(scenario.incident_dir, 'state.json')
    original = None
    state = {}
    if os.path.exists(path):
        with open(path) as handle:
            original = handle.read()
        state = json.loads(original)
    state['severity'] = 'P1'
    with open(path, 'w') as handle:
        json.dump(state, handle)
    try:
        run = post_incident(box, base, '-e', 'post_incident_after_seconds=0')
        assert run.rc == 0, run.output
        assert recap_changed(run) == 1
        md = read(run, 'report.md')
        assert '| Severity | P1 |' in md
        assert '- [ ] Conduct post-mortem (P1)' in md
        assert 'Severity P1' in run.output
    finally:
        if original is None:
            os.remove(path)
        else:
            with open(path, 'w') as handle:
                handle.write(original)


def test_metrics_unreachable_charts_from_the_timeline(box, incident):
    base, _scenario = incident
    closed = 'http://127.0.0.1:%d' % free_port()
    run = post_incident(box, base, '-e', 'svpms_aws_endpoint_url=%s' % closed)
    assert run.rc == 0, run.output
    assert 'CloudWatch could not be read' in run.output
    assert 'Traceback' not in run.output
    md = read(run, 'report.md')
    assert 'Source: From the timeline: the error rates and latencies the runbook observed' in md
    assert 'the metrics could not be read' in md
    assert_self_contained(read(run, 'report.html'))
    assert_no_secrets(run)


def test_clear_errors_without_an_incident(box, incident):
    base, _scenario = incident
    run = post_incident(box, base, incident_id='')
    assert run.rc != 0
    assert 'name the incident with -e incident_id=<id>' in run.output
    run = post_incident(box, base, incident_id='no-such-incident')
    assert run.rc != 0
    assert 'there is no %s' % os.path.join(str(base), 'incidents', 'no-such-incident', 'summary.json') in run.output
