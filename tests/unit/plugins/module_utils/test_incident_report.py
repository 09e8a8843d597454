"""Post-incident report rendering on a synthetic incident directory.

The directory is shaped like the one a real run of
playbooks/scenario_high_error_rate.yml leaves (summary.json written by the
incident role, timeline.jsonl written by the incident_timeline callback): the
same keys, the same timestamp formats, the same event fields.
"""

import base64
import json
import os
import re
import sys

import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils import incident_report as ir
from tests.helpers.modules import run_module

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'

# The story, in UTC.
FIRST_ERROR = '2026-11-27T04:07:45.283Z'      # earliest first_seen of the error signatures
RUN_STARTED = '2026-11-27T04:07:50Z'          # summary started_at
SYMPTOM_DECIDED = '2026-11-27T04:07:53.388Z'  # timeline: "Decide whether the symptom is present"
MITIGATION_STARTED = '2026-11-27T04:07:55Z'
MITIGATION_FINISHED = '2026-11-27T04:07:56Z'
VERIFIED = '2026-11-27T04:08:17Z'
RECORDED = '2026-11-27T04:08:18Z'

TD = 'arn:aws:ecs:us-east-1:123456789012:task-definition/svpms-api:%d'


def epoch(text):
    return ir.parse_ts(text)


def make_summary(**changes):
    summary = {
        'check_mode': False,
        'decision': {'action': 'ecs_rollback', 'automated': True, 'target': 'svpms-api:3',
                     'reason': 'a deployment 9 s ago preceded the errors; roll back svpms-api:4 to the previous revision'},
        'failure': '',
        'findings': [
            {'check': 'recent deployments', 'status': 'problem',
             'summary': 'deployment of svpms-api:4 9 s ago; rollback candidate: svpms-api:3'},
            {'check': 'database connections', 'status': 'ok',
             'summary': 'max 36.0 connections on svpms-sandbox-db (limit 90)'},
            {'check': 'logs', 'status': 'problem',
             'summary': '2 error signatures in 25 events; top: KeyError at /app/svpms/api/items.py:list_items x23'},
        ],
        'incident_id': 'ut-incident',
        'mitigation': {
            'action': 'ecs_rollback', 'status': 'applied', 'summary': 'ecs_rollback svpms-api:3',
            'before': {'desired_count': 3, 'task_definition': TD % 4},
            'after': {'desired_count': 3, 'task_definition': TD % 3},
            'started_at': MITIGATION_STARTED, 'finished_at': MITIGATION_FINISHED, 'finished_epoch': 1795752476,
            'gate': 'auto', 'target': 'svpms-api:3', 'token': 'ecs_rollback:svpms-api:svpms-api:3',
            'waited_for': '1 deployment on task definition svpms-api:3, running=desired',
        },
        'mode': 'auto',
        'outcome': 'recovered',
        'recorded_at': RECORDED,
        'scenario': 'high_error_rate',
        'service': 'svpms-api',
        'signatures': [
            {'count': 23, 'exception_type': 'KeyError', 'first_seen': FIRST_ERROR,
             'last_seen': '2026-11-27T04:07:52.894Z', 'signature': 'KeyError at /app/svpms/api/items.py:list_items',
             'top_frame': '/app/svpms/api/items.py:list_items',
             'sample': ('2026-11-27T04:07:52.894Z ERROR svpms.api request_id=e602 status=500 Unhandled exception\n'
                        'Traceback (most recent call last):\n  File "/app/svpms/api/items.py", line 42, in list_items\n'
                        '    tenant = request.state.tenant["id"]\nKeyError: \'id\'')},
            {'count': 2, 'exception_type': 'psycopg2.OperationalError', 'first_seen': '2026-11-27T04:07:45.309Z',
             'last_seen': '2026-11-27T04:07:51.313Z', 'signature': 'psycopg2.OperationalError at /app/svpms/db/pool.py:acquire',
             'top_frame': '/app/svpms/db/pool.py:acquire', 'sample': 'psycopg2.OperationalError: could not connect'},
        ],
        'started_at': RUN_STARTED,
        'symptom': {'observed_pct': 13.73, 'present': True, 'subsiding': False, 'threshold_pct': 2.0,
                    'source': 'CloudWatch ALB metrics over 60 s (51 requests, 7 5xx)',
                    'summary': '5xx error rate 13.73% from CloudWatch ALB metrics over 60 s (above the 2.0% threshold)'},
        'verification': {
            'rounds': [
                {'at': '2026-11-27T04:08:06Z', 'error_rate_pct': 0.0, 'health_ok': True, 'ok': True, 'p95_ms': 37.4,
                 'problem': 'round 1: ', 'requests': 34, 'round': 1},
                {'at': '2026-11-27T04:08:17Z', 'error_rate_pct': 0.0, 'health_ok': True, 'ok': True, 'p95_ms': 41.1,
                 'problem': 'round 2: ', 'requests': 159, 'round': 2},
            ],
            'status': 'passed',
            'summary': 'health ok, error rate 0.0% < 1.0%, p95 41.1 ms < 500 ms for 2 rounds',
            'thresholds': {'max_error_rate_pct': 1.0, 'max_p95_ms': 500},
            'verified_at': VERIFIED,
        },
    }
    summary.update(changes)
    return summary


def event(ts, phase, task, action, status='ok', result=None, duration=0.02, role='svpms.incident_response.high_error_rate'):
    return {'action': action, 'check_mode': False, 'duration_s': duration, 'host': 'svpms-api', 'phase': phase,
            'play': 'Respond to a high 5xx error rate', 'result': result if result is not None else {'changed': False},
            'role': role, 'status': status, 'task': ('%s : %s' % (role, task)) if role else task, 'ts': ts}


def metrics_result(rate, requests, latency_avg=None):
    return {'changed': False, 'error_rate_pct': rate, 'requests': requests, 'errors_5xx': int(requests * rate / 100),
            'no_traffic': requests == 0, 'latency_avg_ms': latency_avg, 'latency_p95_ms': None,
            'invocation': {'module_args': {'access_key': '********', 'secret_key': '********'}}}


def probe_result(url, rate, p95):
    return {'changed': False, 'url': url, 'error_rate_pct': rate, 'requests': 20, 'latency_p95_ms': p95,
            'reachable': True}


def make_timeline():
    sm = 'svpms.incident_response.service_metrics_info'
    probe = 'svpms.incident_response.http_probe'
    api = 'http://127.0.0.1:8785/api/v1/items'
    health = 'http://127.0.0.1:8785/health'
    return [
        event('2026-11-27T04:07:50.562Z', 'other', 'Open the incident record', 'ansible.builtin.include_role', role=None),
        event('2026-11-27T04:07:50.612Z', 'detect', 'Validating arguments against arg spec', 'ansible.builtin.validate_argument_spec',
              role='svpms.incident_response.incident'),
        event('2026-11-27T04:07:50.690Z', 'detect', 'Name the incident and its record directory', 'ansible.builtin.set_fact',
              result={'ansible_facts': {'incident_dir': '/tmp/x/ut-incident'}, 'changed': False},
              role='svpms.incident_response.incident'),
        event('2026-11-27T04:07:52.048Z', 'detect', 'Read ALB, ECS and RDS metrics over the detection window (seconds) 60',
              sm, result=metrics_result(13.7255, 51, 30.451), duration=0.734),
        event('2026-11-27T04:07:52.818Z', 'detect', 'Probe the API as a user would', probe,
              result=probe_result(api, 35.0, 59.275), duration=0.766),
        event(SYMPTOM_DECIDED, 'detect', 'Decide whether the symptom is present', 'ansible.builtin.set_fact',
              result={'ansible_facts': {'high_error_rate_symptom': {'present': True, 'observed_pct': 13.73}},
                      'changed': False}),
        event('2026-11-27T04:07:56.532Z', 'mitigate', 'Roll back the service to the previous task definition, svpms-api:3',
              'svpms.incident_response.ecs_rollback', status='changed', duration=0.758,
              result={'changed': True, 'before': {'desired_count': 3, 'task_definition': TD % 4},
                      'after': {'desired_count': 3, 'task_definition': TD % 3},
                      'msg': 'rolled back service svpms-api from svpms-api:4 to svpms-api:3'}),
        event('2026-11-27T04:07:56.554Z', 'mitigate', 'Scale out svpms-api', 'svpms.incident_response.ecs_scale',
              status='skipped', result={'changed': False, 'skip_reason': 'Conditional result was False'}),
        event('2026-11-27T04:08:02.554Z', 'verify', 'Wait for /health to answer 200 again', probe,
              result=probe_result(health, 0.0, 5.6), duration=5.831, role='svpms.incident_response.verify_recovery'),
        event('2026-11-27T04:08:05.682Z', 'verify', 'Probe the API for latency (round 1)', probe,
              result=probe_result(api, 0.0, 37.434), role='svpms.incident_response.verify_recovery'),
        event('2026-11-27T04:08:06.306Z', 'verify', 'Read the error rate since the mitigation (round 1)', sm,
              result=metrics_result(0.0, 34), role='svpms.incident_response.verify_recovery'),
        event('2026-11-27T04:08:17.842Z', 'verify', 'Read the error rate since the mitigation (round 2)', sm,
              result=metrics_result(0.0, 159), role='svpms.incident_response.verify_recovery'),
        {'action': None, 'host': 'svpms-api', 'phase': 'record', 'play': 'Respond to a high 5xx error rate',
         'result': {'stats': {'changed': 1, 'failures': 0, 'ignored': 0, 'ok': 57, 'rescued': 0, 'skipped': 9,
                              'unreachable': 0}},
         'status': 'ok', 'task': 'run finished', 'ts': '2026-11-27T04:08:19.563Z'},
    ]


def make_series():
    """service_metrics_info `series` over the window (10 s periods)."""
    stamps = ['2026-11-27T04:07:40Z', '2026-11-27T04:07:50Z', '2026-11-27T04:08:00Z', '2026-11-27T04:08:10Z']
    requests = [72.0, 122.0, 129.0, 0.0]
    errors = [13.0, 23.0, 0.0, 0.0]
    latency = [28.9, 30.6, 23.4, 22.1]
    return {
        'requests': [{'timestamp': t, 'value': v} for t, v in zip(stamps, requests)],
        'errors_5xx': [{'timestamp': t, 'value': v} for t, v in zip(stamps, errors)],
        'latency_avg_ms': [{'timestamp': t, 'value': v} for t, v in zip(stamps, latency)],
    }


def write_incident(path, summary=None, timeline=None, state=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / 'summary.json').write_text(json.dumps(summary or make_summary(), indent=4, sort_keys=True) + '\n')
    if timeline is not False:
        with open(str(path / 'timeline.jsonl'), 'w') as handle:
            for item in (timeline if timeline is not None else make_timeline()):
                handle.write(json.dumps(item, sort_keys=True) + '\n')
    if state is not None:
        (path / 'state.json').write_text(json.dumps(state))
    return str(path)


@pytest.fixture
def incident(tmp_path):
    return write_incident(tmp_path / 'ut-incident')


def render(incident_dir, **kwargs):
    built = ir.build_report(incident_dir, **kwargs)
    changed = ir.write_files(incident_dir, built['files'])
    return built, changed


def read(incident_dir, name):
    with open(os.path.join(incident_dir, name)) as handle:
        return handle.read()


def outside_code_fences(markdown):
    return re.sub(r'(?ms)^(`{3,})\n.*?^\1$', '', markdown)


# --------------------------------------------------------------------------- times
class TestTimes:
    def test_times_from_summary_timeline_and_signatures(self, incident):
        built, _changed = render(incident)
        summary = built['summary']
        assert summary['impact_started_at'] == FIRST_ERROR
        assert summary['detected_at'] == SYMPTOM_DECIDED
        assert summary['mitigation_started_at'] == MITIGATION_STARTED
        assert summary['verified_at'] == VERIFIED
        assert summary['resolved_at'] == VERIFIED
        assert summary['time_to_detect_seconds'] == pytest.approx(epoch(SYMPTOM_DECIDED) - epoch(FIRST_ERROR))
        assert summary['time_to_detect_seconds'] == pytest.approx(8.105)
        assert summary['time_to_mitigate_seconds'] == pytest.approx(1.612)
        assert summary['time_to_verify_seconds'] == pytest.approx(22.0)
        assert summary['duration_seconds'] == pytest.approx(31.717)
        # The three spans add up to the duration when every moment is known.
        assert (summary['time_to_detect_seconds'] + summary['time_to_mitigate_seconds']
                + summary['time_to_verify_seconds']) == pytest.approx(summary['duration_seconds'])
        assert summary['outcome'] == 'recovered'
        assert summary['severity'] is None

    def test_state_json_wins(self, tmp_path):
        path = write_incident(tmp_path / 'i', state={'severity': 'p1', 'detected_at': '2026-11-27T04:07:48Z',
                                                     'resolved_at': '2026-11-27T04:20:00Z',
                                                     'impact_started_at': '2026-11-27T04:07:44+00:00'})
        summary = ir.build_report(path)['summary']
        assert summary['severity'] == 'P1'
        assert summary['time_to_detect_seconds'] == pytest.approx(4.0)
        assert summary['time_to_mitigate_seconds'] == pytest.approx(7.0)
        assert summary['duration_seconds'] == pytest.approx(epoch('2026-11-27T04:20:00Z') - epoch('2026-11-27T04:07:44Z'))

    def test_missing_inputs_give_none_not_a_guess(self, tmp_path):
        summary = make_summary(signatures=[], verification={}, mitigation={})
        path = write_incident(tmp_path / 'i', summary=summary, timeline=False, state={'severity': 'urgent'})
        built = ir.build_report(path)
        times = built['summary']
        # No timeline: detection falls back to the start of the run that saw the symptom.
        assert times['detected_at'] == RUN_STARTED
        assert times['impact_started_at'] is None
        assert times['time_to_detect_seconds'] is None
        assert times['time_to_mitigate_seconds'] is None
        assert times['time_to_verify_seconds'] is None
        assert times['resolved_at'] is None and times['duration_seconds'] is None
        assert times['severity'] is None
        html = built['files'][ir.REPORT_HTML].decode()
        assert 'not classified (state.json severity &quot;urgent&quot; is not P0-P3)' in html
        assert 'no timeline.jsonl' in html

    def test_failed_verification_is_not_a_resolution(self, tmp_path):
        verification = dict(make_summary()['verification'], status='failed')
        path = write_incident(tmp_path / 'i', summary=make_summary(verification=verification, outcome='not_recovered'))
        built = ir.build_report(path)
        assert built['summary']['resolved_at'] is None
        assert built['summary']['duration_seconds'] is None
        assert built['summary']['time_to_verify_seconds'] == pytest.approx(22.0)
        # Due dates then count from the last record.
        assert built['action_items'][0]['due'] == '2026-11-28T04:08:18Z'
        assert b'last record (not resolved)' in built['files'][ir.REPORT_MD]

    def test_first_detection_across_runs(self):
        first = event('2026-11-27T03:00:00.000Z', 'detect', 'Decide whether the symptom is present', 'ansible.builtin.set_fact',
                      result={'ansible_facts': {'high_error_rate_symptom': {'present': 'True'}}})
        absent = event('2026-11-27T02:00:00.000Z', 'detect', 'Decide whether the symptom is present', 'ansible.builtin.set_fact',
                       result={'ansible_facts': {'high_error_rate_symptom': {'present': False}}})
        times = ir.compute_times(make_summary(), [absent, first] + make_timeline(), {})
        assert times['detected_at'] == epoch('2026-11-27T03:00:00Z')

    @pytest.mark.parametrize('text,expected', [
        ('2026-11-27T04:07:50Z', 1795752470.0),
        ('2026-11-27T04:07:50.500Z', 1795752470.5),
        ('2026-11-27T05:07:50+01:00', 1795752470.0),
        ('2026-11-27 04:07:50', 1795752470.0),
        ('1795752470', 1795752470.0),
        (1795752470, 1795752470.0),
        ('yesterday', None),
        (None, None),
        ('', None),
    ])
    def test_parse_ts(self, text, expected):
        assert ir.parse_ts(text) == expected

    def test_human_duration(self):
        assert ir.human_duration(31.7) == '32 s'
        assert ir.human_duration(185) == '3 min 05 s'
        assert ir.human_duration(7620) == '2 h 07 min'
        assert ir.human_duration(3 * 86400 + 4 * 3600) == '3 d 4 h'
        assert ir.human_duration(None) == 'unknown'


# --------------------------------------------------------------------------- action items
class TestActionItems:
    RESOLVED = epoch(VERIFIED)

    def test_due_dates_from_resolution(self):
        items, basis = ir.action_items(self.RESOLVED, 'P1')
        assert basis == 'resolution'
        due = dict((item['phase'], item['due']) for item in items)
        assert due == {'24h': '2026-11-28T04:08:17Z', '1w': '2026-12-04T04:08:17Z', '1m': '2026-12-27T04:08:17Z'}
        assert [item['item'] for item in items if item['phase'] == '24h'] == [
            'Update incident ticket with full timeline', 'Share incident summary in #incidents', 'Identify action items']
        assert [item['item'] for item in items if item['phase'] == '1m'] == [
            'Implement preventive measures', 'Update monitoring/alerts', 'Update documentation', 'Train team on findings']
        assert len(items) == 11

    @pytest.mark.parametrize('severity', ['P0', 'P1'])
    def test_post_mortem_for_p0_p1(self, severity):
        items, _basis = ir.action_items(self.RESOLVED, severity)
        week = [item['item'] for item in items if item['phase'] == '1w']
        assert week == ['Conduct post-mortem (%s)' % severity, 'Document lessons learned', 'Create preventive tasks',
                        'Update runbooks']

    @pytest.mark.parametrize('severity', ['P2', 'P3'])
    def test_no_post_mortem_for_p2_p3(self, severity):
        items, _basis = ir.action_items(self.RESOLVED, severity)
        assert not [item for item in items if 'post-mortem' in item['item']]
        assert len(items) == 10

    def test_unknown_severity_keeps_the_post_mortem_with_a_note(self):
        items, _basis = ir.action_items(self.RESOLVED, None)
        assert [item['item'] for item in items if 'post-mortem' in item['item']] == [
            'Conduct post-mortem (P0/P1 only; severity not recorded: classify first)']

    def test_report_lists_checklist_with_severity_from_state(self, tmp_path):
        path = write_incident(tmp_path / 'p2', state={'severity': 'P2'})
        built, _changed = render(path)
        md = read(path, ir.REPORT_MD)
        assert '### Within 24 hours (due 2026-11-28 04:08:17 UTC)' in md
        assert '- [ ] Update runbooks' in md
        assert 'post-mortem' not in md
        assert built['summary']['severity'] == 'P2'
        path = write_incident(tmp_path / 'p0', state={'severity': 'P0'})
        render(path)
        assert '- [ ] Conduct post-mortem (P0)' in read(path, ir.REPORT_MD)
        assert 'Conduct post-mortem (P0)' in read(path, ir.REPORT_HTML)


# --------------------------------------------------------------------------- charts
class TestChartData:
    def test_markers_carry_the_three_moments(self, incident):
        loaded = ir.load_incident(incident)
        times = ir.compute_times(loaded['summary'], loaded['timeline'], loaded['state'])
        data = ir.build_chart_data(loaded['summary'], times, loaded['timeline'], make_series(), None, None, 'ut')
        markers = dict((m['key'], m) for m in data['markers'])
        assert markers['detected']['at'] == epoch(SYMPTOM_DECIDED)
        assert markers['mitigation']['at'] == epoch(MITIGATION_STARTED)
        assert markers['verified']['at'] == epoch(VERIFIED)
        assert markers['verified']['label'] == 'verified 04:08:17'
        assert data['source'] == 'metrics'

    def test_error_rate_and_latency_from_series(self, incident):
        loaded = ir.load_incident(incident)
        times = ir.compute_times(loaded['summary'], loaded['timeline'], loaded['state'])
        data = ir.build_chart_data(loaded['summary'], times, loaded['timeline'], make_series(),
                                   {'max_error_rate_pct': 1.0, 'max_p95_ms': 500, 'symptom_error_rate_pct': 2.0})
        line = data['error_rate']['lines'][0]
        assert line['style'] == 'line'
        # 100 * errors / requests per period; the no-traffic period is left out.
        assert line['points'] == [[epoch('2026-11-27T04:07:40Z'), round(1300.0 / 72, 4)],
                                  [epoch('2026-11-27T04:07:50Z'), round(2300.0 / 122, 4)],
                                  [epoch('2026-11-27T04:08:00Z'), 0.0]]
        assert [t['value'] for t in data['error_rate']['thresholds']] == [1.0, 2.0]
        assert [t['value'] for t in data['latency']['thresholds']] == [500]
        latency = data['latency']['lines'][0]
        assert 'average' in latency['label'] and latency['points'][0] == [epoch('2026-11-27T04:07:40Z'), 28.9]
        # The runbook's own observations are overlaid as dots.
        dots = [line for line in data['error_rate']['lines'] if line['style'] == 'points']
        assert [epoch('2026-11-27T04:07:52.048Z'), 13.7255] in dots[0]['points']
        assert 'CloudWatch metrics over the incident window' in data['source_note']

    def test_a_latency_symptom_is_drawn_and_named_instead_of_the_error_rate(self, incident):
        loaded = ir.load_incident(incident)
        times = ir.compute_times(loaded['summary'], loaded['timeline'], loaded['state'])
        limits = {'max_error_rate_pct': 1.0, 'max_p95_ms': 500, 'symptom_error_rate_pct': 2.0, 'symptom_p95_ms': 1000}
        data = ir.build_chart_data(loaded['summary'], times, loaded['timeline'], make_series(), limits)
        assert [t['value'] for t in data['error_rate']['thresholds']] == [1.0]
        assert [(t['label'], t['value']) for t in data['latency']['thresholds']] == [
            ('SLO: p95 < 500 ms', 500), ('symptom: p95 > 1000 ms', 1000)]
        assert ir.thresholds_text(data) == 'SLO: error rate < 1 %, p95 < 500 ms; symptom: p95 > 1000 ms'
        scenario_1 = ir.build_chart_data(loaded['summary'], times, loaded['timeline'], make_series(),
                                         {'max_error_rate_pct': 1.0, 'max_p95_ms': 500, 'symptom_error_rate_pct': 2.0})
        assert ir.thresholds_text(scenario_1) == 'SLO: error rate < 1 %, p95 < 500 ms; symptom: error rate > 2 %'

    def test_a_symptom_in_words_is_named_and_drawn_on_no_chart(self, incident):
        """Scenario 3's symptom (failing logins) is neither an error rate nor a latency."""
        loaded = ir.load_incident(incident)
        times = ir.compute_times(loaded['summary'], loaded['timeline'], loaded['state'])
        limits = {'max_error_rate_pct': 1.0, 'max_p95_ms': 500, 'symptom_error_rate_pct': 5.0,
                  'symptom_text': 'logins failing >= 5 % (synthetic login and SSO start)'}
        data = ir.build_chart_data(loaded['summary'], times, loaded['timeline'], make_series(), limits)
        assert [t['label'] for t in data['error_rate']['thresholds']] == ['SLO: error rate < 1 %']
        assert [t['label'] for t in data['latency']['thresholds']] == ['SLO: p95 < 500 ms']
        assert ir.thresholds_text(data) == ('SLO: error rate < 1 %, p95 < 500 ms; '
                                            'symptom: logins failing >= 5 % (synthetic login and SSO start)')

    def test_verification_rounds_that_signed_in_get_a_login_column(self):
        rounds = [{'round': 1, 'at': 't1', 'health_ok': True, 'error_rate_pct': 0.0, 'requests': 3, 'p95_ms': 41.2,
                   'login_failure_rate_pct': 0.0},
                  {'round': 2, 'at': 't2', 'health_ok': False, 'error_rate_pct': 2.0, 'requests': 9, 'p95_ms': 40.0,
                   'login_failure_rate_pct': 40.0}]
        header, rows = ir.verification_table(rounds)
        assert header[-1] == 'logins failed %'
        assert rows == [[1, 't1', 'ok', 0.0, 3, 41.2, 0.0], [2, 't2', 'FAILING', 2.0, 9, 40.0, 40.0]]
        header, rows = ir.verification_table([dict(r, login_failure_rate_pct=None) for r in rounds])
        assert header == ['round', 'at', 'health', 'error rate %', 'requests', 'p95 ms'] and len(rows[0]) == 6

    def test_elb_errors_count_on_both_sides(self):
        series = {'requests': [{'timestamp': '2026-11-27T04:00:00Z', 'value': 90.0}],
                  'errors_5xx': [{'timestamp': '2026-11-27T04:00:00Z', 'value': 5.0}],
                  'errors_elb_5xx': [{'timestamp': '2026-11-27T04:00:00Z', 'value': 10.0}]}
        assert ir.series_error_rate(series) == [(epoch('2026-11-27T04:00:00Z'), 15.0)]

    def test_without_series_the_timeline_is_the_source(self, incident):
        loaded = ir.load_incident(incident)
        times = ir.compute_times(loaded['summary'], loaded['timeline'], loaded['state'])
        data = ir.build_chart_data(loaded['summary'], times, loaded['timeline'])
        assert data['source'] == 'timeline'
        assert 'no metrics series was given' in data['source_note']
        rate_points = dict((line['label'], line['points']) for line in data['error_rate']['lines'])
        assert rate_points['CloudWatch read by the runbook (5xx %)'] == [
            [epoch('2026-11-27T04:07:52.048Z'), 13.7255], [epoch('2026-11-27T04:08:06.306Z'), 0.0],
            [epoch('2026-11-27T04:08:17.842Z'), 0.0]]
        # The /health probe is not user traffic; the API probe is.
        assert rate_points['synthetic probe (5xx %)'] == [
            [epoch('2026-11-27T04:07:52.818Z'), 35.0], [epoch('2026-11-27T04:08:05.682Z'), 0.0]]
        latency = dict((line['label'], line['points']) for line in data['latency']['lines'])
        assert latency['synthetic probe (p95)'] == [[epoch('2026-11-27T04:07:52.818Z'), 59.275],
                                                    [epoch('2026-11-27T04:08:05.682Z'), 37.434]]
        assert len(data['markers']) == 3

    def test_metrics_error_is_said(self, incident):
        built = ir.build_report(incident, metrics_error='cloudwatch:GetMetricData failed (Unreachable)')
        assert built['chart_source'] == 'timeline'
        assert 'the metrics could not be read (cloudwatch:GetMetricData failed (Unreachable))' in built['chart_note']
        assert b'the metrics could not be read' in built['files'][ir.REPORT_MD]

    def test_empty_timeline_falls_back_to_summary(self, tmp_path):
        path = write_incident(tmp_path / 'i', timeline=[])
        built = ir.build_report(path)
        data = built['context']['charts']
        assert data['source'] == 'timeline'
        assert 'summary.json' in data['source_note']
        points = data['error_rate']['lines'][0]['points']
        assert points[0][1] == 13.73

    def test_pngs_are_png_files(self, incident, monkeypatch):
        pytest.importorskip('matplotlib')
        passed = []
        real = ir.render_charts

        def spy(chart_data):
            passed.append(chart_data)
            return real(chart_data)

        monkeypatch.setattr(ir, 'render_charts', spy)
        built, changed = render(incident, series=make_series())
        # What matplotlib was given holds the three moments.
        assert sorted(m['at'] for m in passed[0]['markers']) == [
            epoch(SYMPTOM_DECIDED), epoch(MITIGATION_STARTED), epoch(VERIFIED)]
        assert sorted(built['charts']) == [ir.CHART_ERROR_RATE, ir.CHART_LATENCY]
        for name in built['charts']:
            assert name in changed
            with open(os.path.join(incident, name), 'rb') as handle:
                data = handle.read()
            assert data.startswith(PNG_MAGIC)
            assert len(data) > 10000


# --------------------------------------------------------------------------- HTML / Markdown
class TestRendering:
    def test_html_is_self_contained(self, incident):
        pytest.importorskip('matplotlib')
        render(incident, series=make_series())
        html = read(incident, ir.REPORT_HTML)
        assert html.startswith('<!DOCTYPE html>')
        assert '<script' not in html.lower()
        assert '<link' not in html.lower()
        assert '@import' not in html and 'url(' not in html
        for attribute in re.findall(r'\b(?:src|href|action)\s*=\s*"([^"]*)"', html, re.IGNORECASE):
            assert attribute.startswith('data:image/png;base64,'), attribute[:80]
        images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
        assert len(images) == 2
        for data in images:
            assert base64.b64decode(data).startswith(PNG_MAGIC)
        assert "default-src 'none'; img-src data:" in html

    def test_sections_and_rollback_before_after(self, incident):
        render(incident)
        md = read(incident, ir.REPORT_MD)
        for heading in ('## Summary', '## Error rate and latency', '## Response', '## Timeline',
                        '## Evidence gathered', '### Findings', '### Error signatures', '## Action items'):
            assert heading in md
        assert '| Time to detect | 8 s |' in md
        assert '| Time to mitigate | 2 s |' in md
        assert '| Time to verify | 22 s |' in md
        assert '| Duration | 32 s |' in md
        rollback = [line for line in md.splitlines() if 'Roll back the service' in line][0]
        assert '**changed**' in rollback
        assert 'task_definition: %s \u2192 %s' % (TD % 4, TD % 3) in rollback
        assert 'desired_count' not in rollback  # unchanged fields are not listed
        assert '| task_definition | %s | %s |' % (TD % 4, TD % 3) in md
        # Plumbing is left out of the timeline table and counted.
        assert 'Open the incident record' not in md
        assert '2 include/argument-check events omitted' in md
        assert 'run finished: ok=57, changed=1, failures=0, unreachable=0, skipped=9' in md
        html = read(incident, ir.REPORT_HTML)
        assert '<tr class="changed">' in html
        assert 'KeyError at /app/svpms/api/items.py:list_items' in html

    def test_secrets_are_redacted(self, tmp_path):
        summary = make_summary()
        summary['findings'].append({'check': 'config', 'status': 'problem',
                                    'summary': 'DATABASE_URL=postgresql://svpms:hunter2pw@db:5432/svpms password=hunter2pw'})
        summary['signatures'][0]['sample'] += '\nheaders: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.sekrit api_key=AKIAABCDEFGHIJKLMNOP'
        summary['decision']['reason'] = 'rotate; the token: tok-s3cr3t-value was leaked'
        timeline = make_timeline()
        timeline.append(event('2026-11-27T04:08:18Z', 'mitigate', 'Rotate the DB password', 'ansible.builtin.set_fact',
                              status='changed', result={'changed': True, 'before': {'db_password': 'hunter2pw', 'user': 'a'},
                                                        'after': {'db_password': 'n3wpass', 'user': 'b'}}))
        path = write_incident(tmp_path / 'i', summary=summary, timeline=timeline)
        built, _changed = render(path)
        for name in (ir.REPORT_MD, ir.REPORT_HTML):
            text = read(path, name)
            for secret in ('hunter2pw', 'n3wpass', 'eyJhbGciOiJIUzI1NiJ9', 'sekrit', 'AKIAABCDEFGHIJKLMNOP', 's3cr3t'):
                assert secret not in text, (name, secret)
            assert ir.REDACTED in text
        # The rest of the change is still shown.
        assert 'user: a \u2192 b' in read(path, ir.REPORT_MD)
        assert '<code>user</code>: a &rarr; b' in read(path, ir.REPORT_HTML)
        assert 'hunter2pw' not in json.dumps(built['summary']) + json.dumps(built['action_items'])
        # The stack trace itself survives: a KeyError is not a key.
        assert "KeyError: &#x27;id&#x27;" in read(path, ir.REPORT_HTML)

    @pytest.mark.parametrize('text,masked', [
        ('password=abc123', 'password=' + ir.REDACTED),
        ('"secret_key": "abc 123"', '"secret_key": "%s"' % ir.REDACTED),
        ('Authorization: Basic dXNlcjpwYXNz', 'Authorization: Basic ' + ir.REDACTED),
        ('https://user:pa55@example.com/x', 'https://user:%s@example.com/x' % ir.REDACTED),
        ('KeyError: \'id\'', 'KeyError: \'id\''),
        ('tenant=tnt_1 status=500', 'tenant=tnt_1 status=500'),
    ])
    def test_redact_text(self, text, masked):
        assert ir.redact_text(text) == masked

    def test_planted_script_is_escaped(self, tmp_path):
        script = '<script>alert(1)</script>'
        summary = make_summary()
        summary['findings'][0]['summary'] = 'boom %s [x](javascript:alert(1)) | cell' % script
        summary['signatures'][0]['signature'] = 'Err %s' % script
        summary['signatures'][0]['sample'] = 'line %s\n```\nafter a fence' % script
        timeline = make_timeline()
        timeline[3]['task'] = 'svpms.incident_response.high_error_rate : Read %s' % script
        path = write_incident(tmp_path / 'i', summary=summary, timeline=timeline)
        render(path, title='Title %s' % script)
        html = read(path, ir.REPORT_HTML)
        assert '<script' not in html.lower()
        assert '&lt;script&gt;alert(1)&lt;/script&gt;' in html
        md = read(path, ir.REPORT_MD)
        prose = outside_code_fences(md)
        assert '<script' not in prose.lower()
        assert '&lt;script&gt;' in prose
        assert not re.search(r'(?<!\\)\]\(javascript:', prose)  # no live link
        assert 'boom &lt;script&gt;alert(1)&lt;/script&gt; \\[x\\](javascript:alert(1)) \\| cell' in prose
        # The sample is code: its fence is longer than any backtick run inside it.
        assert '````\nline <script>alert(1)</script>\n```\nafter a fence\n````' in md

    def test_idempotent_and_mtime_kept(self, incident):
        _built, changed = render(incident, series=make_series())
        assert set(changed) >= {ir.REPORT_MD, ir.REPORT_HTML}
        stamps = dict((name, os.stat(os.path.join(incident, name)).st_mtime_ns) for name in changed)
        _built, again = render(incident, series=make_series())
        assert again == []
        for name, stamp in stamps.items():
            assert os.stat(os.path.join(incident, name)).st_mtime_ns == stamp
        assert oct(os.stat(os.path.join(incident, ir.REPORT_MD)).st_mode & 0o777) == oct(0o640)

    def test_check_mode_writes_nothing(self, incident):
        built = ir.build_report(incident)
        assert ir.write_files(incident, built['files'], check_mode=True) == sorted(built['files'])
        assert not os.path.exists(os.path.join(incident, ir.REPORT_HTML))

    def test_without_matplotlib_md_and_html_still_written(self, incident, monkeypatch):
        for name in [n for n in sys.modules if n == 'matplotlib' or n.startswith('matplotlib.')] + ['matplotlib']:
            monkeypatch.setitem(sys.modules, name, None)
        built, changed = render(incident)
        assert built['charts'] == []
        assert sorted(changed) == [ir.REPORT_HTML, ir.REPORT_MD]
        assert any('install matplotlib for charts' in warning for warning in built['warnings'])
        assert 'install matplotlib for charts' in read(incident, ir.REPORT_MD)
        html = read(incident, ir.REPORT_HTML)
        assert 'install matplotlib for charts' in html and '<img' not in html

    def test_formats(self, incident):
        built = ir.build_report(incident, formats=['md'])
        assert list(built['files']) == [ir.REPORT_MD]
        assert built['charts'] == []

    def test_missing_directory_or_summary(self, tmp_path):
        with pytest.raises(ir.IncidentError, match='does not exist'):
            ir.build_report(str(tmp_path / 'nope'))
        (tmp_path / 'empty').mkdir()
        with pytest.raises(ir.IncidentError, match='has no summary.json'):
            ir.build_report(str(tmp_path / 'empty'))


# --------------------------------------------------------------------------- the module
class TestModule:
    def test_module_check_mode_apply_and_again(self, incident):
        args = dict(incident_dir=incident, metrics_series=make_series(), thresholds=dict(max_p95_ms=400))
        check = run_module('incident_report', args, check=True)
        assert not check.failed, check
        assert check['changed'] is True
        assert not os.path.exists(os.path.join(incident, 'report.md'))
        applied = run_module('incident_report', args)
        assert applied['changed'] is True, applied
        assert applied['report_html'] == os.path.join(incident, 'report.html')
        assert applied['summary']['time_to_verify_seconds'] == 22.0
        assert [item['phase'] for item in applied['action_items']][:3] == ['24h'] * 3
        assert 'p95 &lt; 400 ms' in read(incident, 'report.html')
        again = run_module('incident_report', args)
        assert again['changed'] is False
        assert again['files_changed'] == []
        assert run_module('incident_report', args, check=True)['changed'] is False

    def test_module_fails_clearly_without_summary(self, tmp_path):
        result = run_module('incident_report', dict(incident_dir=str(tmp_path)))
        assert result.failed
        assert 'has no summary.json' in result['msg']
