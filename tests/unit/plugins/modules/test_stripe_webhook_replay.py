"""The pure helpers of stripe_webhook_replay (no HTTP): ordering and the cap, pacing, the state file, errors.

Events use the shape of Stripe's event object (``id``, ``type``, ``created``); the real API lists events newest
first, the sandbox's stand-in (localstripe) oldest first - the module must pick the oldest either way.
"""

import json
import os
import stat

import pytest

from ansible_collections.svpms.incident_response.plugins.modules import stripe_webhook_replay as replay
from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_signature

NOW = 1767225600  # 2026-01-01T00:00:00Z
SECRET = 'whsec_' + 'a1' * 16


def ev(evt_id, created, etype='payment_intent.succeeded'):
    return {'id': evt_id, 'object': 'event', 'type': etype, 'created': created}


def test_order_is_oldest_first_whatever_the_listing_order():
    newest_first = [ev('evt_c', NOW - 10), ev('evt_b', NOW - 20), ev('evt_b2', NOW - 20), ev('evt_a', NOW - 30)]
    assert [e['id'] for e in replay.order_events(newest_first)] == ['evt_a', 'evt_b2', 'evt_b', 'evt_c']
    oldest_first = list(reversed(newest_first))
    assert [e['id'] for e in replay.order_events(oldest_first)] == ['evt_a', 'evt_b2', 'evt_b', 'evt_c']


def test_order_drops_duplicates_and_junk_and_puts_undated_last():
    events = [ev('evt_a', NOW), {'id': 'evt_x', 'type': 't'}, ev('evt_a', NOW), 'junk', {'type': 'no id'},
              ev('evt_0', NOW - 100)]
    assert [e['id'] for e in replay.order_events(events)] == ['evt_0', 'evt_a', 'evt_x']


def test_plan_skips_acknowledged_and_caps():
    events = [ev('evt_%d' % i, NOW - 1000 + i) for i in range(6)]
    selected, skipped, remaining = replay.plan(events, {'evt_0', 'evt_2'}, 3)
    assert [e['id'] for e in selected] == ['evt_1', 'evt_3', 'evt_4']
    assert (skipped, remaining) == (2, 1)
    assert replay.plan(events, set(e['id'] for e in events), 3) == ([], 6, 0)


def test_event_row_hours_left():
    row = replay.event_row(ev('evt_a', NOW - 61 * 3600), NOW)
    assert row == {'id': 'evt_a', 'type': 'payment_intent.succeeded', 'created': '2025-12-29T11:00:00Z',
                   'age_hours': 61.0, 'hours_left': 11.0}
    assert replay.event_row(ev('evt_b', NOW - 100 * 3600), NOW)['hours_left'] == 0.0


def test_pacer_spaces_starts():
    clock = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 6))
        clock[0] += seconds

    pacer = replay.Pacer(4, clock=lambda: clock[0], sleep=sleep)
    pacer.wait()            # the first one goes at once
    clock[0] += 0.05        # sending took 50 ms
    pacer.wait()
    clock[0] += 0.5         # a slow one: no wait needed after it
    pacer.wait()
    assert slept == [0.2]


def test_signature_is_over_the_exact_bytes_sent():
    payload = replay.payload_of(ev('evt_a', NOW, 'customer.created') | {'data': {'object': {'name': 'Zoë'}}})
    headers = replay.delivery_headers(payload, SECRET, NOW)
    assert headers['Content-Type'] == 'application/json; charset=utf-8'
    assert stripe_signature.verify(payload, headers['Stripe-Signature'], SECRET, now=NOW) == NOW
    assert 'Zoë'.encode('utf-8') in payload


@pytest.mark.parametrize('raw,outcome', [
    (dict(kind='http', status=200), 'acknowledged'), (dict(kind='http', status=204), 'acknowledged'),
    (dict(kind='http', status=400), 'rejected'), (dict(kind='http', status=302), 'redirect'),
    (dict(kind='http', status=503), 'server_error'), (dict(kind='http', status=600), 'unexpected'),
    (dict(kind='timeout', status=None), 'timeout'), (dict(kind='unreachable', status=None), 'unreachable'),
])
def test_classify(raw, outcome):
    assert replay.classify(raw) == outcome


@pytest.mark.parametrize('body,code', [
    (b'{"error": "invalid_signature"}', 'invalid_signature'),
    (b'{"error": {"code": "bad_event", "message": "..."}}', 'bad_event'),
    (b'{"error": "has spaces in it"}', None),
    (('{"error": "%s"}' % SECRET).encode(), None),
    (('{"error": "%s"}' % SECRET[:20]).encode(), None),
    (b'<html>500</html>', None),
    (b'', None),
])
def test_error_code_only_a_short_token_never_a_secret(body, code):
    assert replay.error_code(body, [SECRET]) == code


def test_state_round_trip_mode_and_pruning(tmp_path):
    path = str(tmp_path / 'state.json')
    doc = replay.load_state(path)
    assert doc == {'format': replay.STATE_FORMAT, 'endpoints': {}}
    doc['endpoints']['https://h/webhooks/stripe'] = {
        'evt_new': dict(type='t', created=NOW - 3600, acknowledged_at='x', status=200),
        'evt_old': dict(type='t', created=NOW - 40 * 86400, acknowledged_at='x', status=200),
    }
    doc['endpoints']['https://gone/'] = {'evt_older': dict(type='t', created=NOW - 50 * 86400)}
    replay.save_state(path, doc, NOW)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    again = replay.load_state(path)
    assert list(again['endpoints']) == ['https://h/webhooks/stripe']
    assert list(again['endpoints']['https://h/webhooks/stripe']) == ['evt_new']
    assert again['updated_at'] == '2026-01-01T00:00:00Z'
    assert os.listdir(str(tmp_path)) == ['state.json']


@pytest.mark.parametrize('content,kind', [
    ('not json', 'invalid_state'),
    ('[]', 'invalid_state'),
    (json.dumps({'format': 'other', 'endpoints': {}}), 'invalid_state'),
    (json.dumps({'format': replay.STATE_FORMAT, 'endpoints': {'u': []}}), 'invalid_state'),
])
def test_state_refuses_other_files(tmp_path, content, kind):
    path = tmp_path / 'state.json'
    path.write_text(content)
    with pytest.raises(replay.StateError) as info:
        replay.load_state(str(path))
    assert info.value.kind == kind and str(path) in info.value.message


def test_state_write_failure_is_typed(tmp_path):
    folder = tmp_path / 'ro'
    folder.mkdir()
    os.chmod(str(folder), 0o500)
    try:
        if os.access(str(folder), os.W_OK):
            pytest.skip('running as a user that ignores permissions')
        with pytest.raises(replay.StateError) as info:
            replay.save_state(str(folder / 'state.json'), {'format': replay.STATE_FORMAT, 'endpoints': {}}, NOW)
        assert info.value.kind == 'io_error'
    finally:
        os.chmod(str(folder), 0o700)


def base_params(**kwargs):
    params = dict(api_key='sk_test_' + '0' * 30, api_url='https://api.stripe.com', timeout=10.0,
                  validate_certs=True, url='https://api.example.com/webhooks/stripe', secret_id='s',
                  window_hours=72, event_ids=None, max_events=100, rate_per_second=5.0, state_file='/tmp/x.json',
                  delivery_timeout=10.0)
    params.update(kwargs)
    return params


def test_validate_accepts_the_defaults():
    assert replay.validate(base_params()) == []


@pytest.mark.parametrize('override,needle', [
    (dict(rate_per_second=float('nan')), 'rate_per_second'),
    (dict(event_ids=['evt_ok'] * 1001), 'event_ids may list at most 1000'),
    (dict(event_ids=['evt_bad id']), 'event_ids'),
    (dict(state_file='/'), 'state_file'),
    (dict(window_hours=0), 'window_hours'),
])
def test_validate_names_the_option(override, needle):
    errors = replay.validate(base_params(**override))
    assert errors and needle in errors[0]


def test_outcome_problems_group_failures():
    rows = [dict(id='evt_%d' % i, status=400, outcome='rejected', error='invalid_signature') for i in range(7)]
    rows.append(dict(id='evt_u', status=None, outcome='unreachable', error=None))
    rows.append(dict(id='evt_ok', status=200, outcome='acknowledged', error=None))
    problems = replay.outcome_problems(rows, 'https://h/webhooks/stripe', 'svpms/prod/x')
    assert len(problems) == 2
    assert problems[0].startswith('7 events rejected') and 'and 2 more' in problems[0] and 'svpms/prod/x' in problems[0]
    assert 'evt_u' in problems[1] and 'evt_ok' not in ' '.join(problems)
