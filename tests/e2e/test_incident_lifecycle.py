"""The incident lifecycle end to end on the sandbox, communication included.

triage (P1) -> page on-call, open the status page incident and the incidents
thread -> route to scenario 1 -> rolled back and verified -> the outcome
posted in the thread -> triage again (no second page) -> --check (nothing
sent) -> resolve (page and status page resolved) -> post-incident report.
Every notification is read back from the sandbox's receiver, which records
the exact HTTP requests the modules sent.
"""
import json
import os

import pytest

from tests.e2e.conftest import run_playbook, wait_for_symptom
from tests.helpers.servers import REPO, free_port

pytestmark = pytest.mark.e2e

INCIDENT = 'e2e-lifecycle'
DEDUP = 'svpms/svpms-api/%s' % INCIDENT


@pytest.fixture(scope='module')
def box(tmp_path_factory):
    import sys
    sys.path.insert(0, os.path.join(REPO, 'sandbox'))
    from svpms_sandbox import Sandbox
    state = tmp_path_factory.mktemp('lifecycle-sandbox')
    sandbox = Sandbox(str(state), moto_port=free_port(), twin_port=free_port(), receiver_port=free_port(),
                      payments=False)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return tmp_path_factory.mktemp('lifecycle')


def sent(box):
    path = os.path.join(box.state_dir, 'notifications.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def pd_events(box, action):
    return [n for n in sent(box) if n['path'].endswith('/v2/enqueue') and n['json']['event_action'] == action]


def slack_posts(box):
    return [n for n in sent(box) if n['path'].endswith('/chat.postMessage')]


def state(root):
    with open(os.path.join(str(root), 'incidents', INCIDENT, 'state.json')) as fh:
        return json.load(fh)


def record(root, name='summary.json'):
    with open(os.path.join(str(root), 'incidents', INCIDENT, name)) as fh:
        return json.load(fh)


def triage(box, root, *extra):
    return run_playbook(box, root, INCIDENT, *extra, playbook=os.path.join(REPO, 'playbooks', 'triage.yml'))


def test_triage_pages_once_opens_status_page_and_thread_then_routes(box, root):
    box.inject('high_error_rate')
    wait_for_symptom(box)
    run = triage(box, root, '-e', 'triage_route=true')
    assert run.rc == 0, run.output[-4000:]
    [page] = pd_events(box, 'trigger')
    assert page['json']['dedup_key'] == DEDUP
    assert page['json']['payload']['severity'] == 'error'  # P1
    assert page['json']['routing_key'] == '<redacted>'  # present; the receiver redacts its value
    creates = [n for n in sent(box) if n['method'] == 'POST' and n['path'].endswith('/incidents')
               and '/statuspage/' in n['path']]
    assert len(creates) == 1 and creates[0]['json']['incident']['deliver_notifications'] is True
    assert creates[0]['headers']['authorization'].startswith('OAuth ')
    posts = slack_posts(box)
    assert posts[0]['headers']['authorization'].startswith('Bearer ')
    assert 'thread_ts' not in posts[0]['json']  # the first message opens the thread
    st = state(root)
    assert st['severity'] == 'P1' and st['paged'] is True
    assert st['slack_thread_ts'] and st['statuspage_incident_id']
    # the outcome of the routed runbook is a reply in the same thread
    replies = [p for p in posts[1:] if p['json'].get('thread_ts') == st['slack_thread_ts']]
    assert any('Mitigated (ecs_rollback' in p['json']['text'] for p in replies), [p['json'] for p in posts]
    assert run.summary()['outcome'] == 'recovered'


def test_a_rerun_does_not_page_twice(box, root):
    before = len(pd_events(box, 'trigger'))
    recovered = record(root)
    run = triage(box, root)
    assert run.rc == 0, run.output[-4000:]
    assert len(pd_events(box, 'trigger')) == before == 1
    # a re-triage that runs no runbook keeps the incident's record (the rollback) and, when it still sees an
    # incident (the metrics window lags the recovery), writes its own account beside it (last_run.json)
    assert record(root) == recovered and recovered['outcome'] == 'recovered'
    assert state(root)['severity'] == 'P1'  # the peak; a lower re-triage is last_triage_severity


def test_check_mode_sends_nothing(box, root):
    before = len(sent(box))
    recovered, triaged, severity = record(root), record(root, 'triage.json'), state(root)['severity']
    run = triage(box, root, '--check', '-e', 'triage_route=true')
    assert run.rc == 0, run.output[-4000:]
    assert len(sent(box)) == before
    # nor does it rewrite the incident's record: its account is last_run.json / last_run_triage.json
    assert record(root) == recovered and record(root, 'triage.json') == triaged
    assert state(root)['severity'] == severity == 'P1'


def test_resolve_closes_page_status_page_and_posts(box, root):
    st = state(root)
    run = run_playbook(box, root, INCIDENT, '-e', json.dumps({'resolve_note': 'Rolled back; verified'}),
                       playbook=os.path.join(REPO, 'playbooks', 'resolve.yml'))
    assert run.rc == 0, run.output[-4000:]
    [resolve] = pd_events(box, 'resolve')
    assert resolve['json']['dedup_key'] == DEDUP
    patches = [n for n in sent(box) if n['method'] == 'PATCH' and st['statuspage_incident_id'] in n['path']]
    assert patches[-1]['json']['incident']['status'] == 'resolved'
    last = slack_posts(box)[-1]['json']
    assert last['thread_ts'] == st['slack_thread_ts'] and 'Resolved. Rolled back; verified' in last['text']
    st = state(root)
    assert st['phase'] == 'resolved' and st['resolved_at']


def test_resolve_refuses_an_unknown_incident_and_creates_nothing(box, root):
    run = run_playbook(box, root, 'e2e-no-such-incident', playbook=os.path.join(REPO, 'playbooks', 'resolve.yml'))
    assert run.rc != 0
    assert 'No incident e2e-no-such-incident' in run.output
    assert not os.path.exists(os.path.join(str(root), 'incidents', 'e2e-no-such-incident'))


def test_post_incident_report_has_charts(box, root):
    posts = len(slack_posts(box))
    run = run_playbook(box, root, INCIDENT, '-e', 'post_incident_notify=true',
                       playbook=os.path.join(REPO, 'playbooks', 'post_incident.yml'))
    assert run.rc == 0, run.output[-4000:]
    html = open(os.path.join(str(root), 'incidents', INCIDENT, 'report.html')).read()
    assert html.count('src="data:image/png;base64,') == 2
    assert 'sandbox-slack-bot-token' not in html and 'sandbox-routing-key' not in html
    # the summary is posted in the incident's thread and the P1 post-mortem scheduled
    [summary] = slack_posts(box)[posts:]
    assert summary['json']['thread_ts'] == state(root)['slack_thread_ts']
    assert 'Incident summary %s: P1' % INCIDENT in summary['json']['text']
    assert 'Post-mortem scheduled, due' in summary['json']['text']
    note = open(os.path.join(str(root), 'incidents', INCIDENT, 'postmortem.md')).read()
    assert note.startswith('# Post-mortem: incident %s (P1)' % INCIDENT) and 'Due: ' in note
