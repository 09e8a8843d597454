"""The pure helpers of stripe_account_info and stripe_webhook_info (no HTTP).

The status page fixtures use the shape of https://status.stripe.com/current,
the JSON the Stripe CLI reads (``largestatus``, ``message``, ``statuses``,
``time``); Stripe documents no status API.
"""

import pytest

from ansible_collections.svpms.incident_response.plugins.modules import stripe_account_info as account
from ansible_collections.svpms.incident_response.plugins.modules import stripe_webhook_info as webhook

HINT = 'sk_test_\u20260000'


def status(**kwargs):
    out = dict(url='https://status.stripe.com/current', reachable=True, largestatus='up',
               message='All services are online.',
               statuses={'api': 'up', 'dashboard': 'up', 'stripejs': 'up', 'checkoutjs': 'up'},
               time='2026-01-01T00:00:00.000Z', error=None)
    out.update(kwargs)
    return out


@pytest.mark.parametrize('key_type,mode,livemode,expect,problem', [
    ('secret', 'test', False, None, None),
    ('secret', 'test', False, False, None),
    ('secret', 'live', True, True, None),
    ('secret', 'test', False, True, 'is a test-mode key but expect_livemode=true'),
    ('restricted', 'live', True, False, 'is a LIVE key but expect_livemode=false'),
    ('publishable', 'test', False, None, 'is a publishable key'),
    ('unknown', None, None, None, 'does not look like a Stripe API key'),
])
def test_mode_problems(key_type, mode, livemode, expect, problem):
    problems, notes = account.mode_problems(key_type, mode, livemode, expect, HINT)
    if problem is None:
        assert problems == []
    else:
        [text] = problems
        assert problem in text and HINT in text
    assert notes == []


def test_mode_unknown_is_a_note():
    problems, notes = account.mode_problems('unknown', None, None, True, HINT)
    assert len(problems) == 1 and 'expect_livemode=true could not be checked' in notes[0]


def test_status_up_is_quiet():
    assert account.status_findings(status()) == ([], [])


def test_status_degraded_is_a_problem():
    problems, notes = account.status_findings(status(largestatus='degraded', message='Elevated API errors',
                                                     statuses={'api': 'degraded', 'dashboard': 'up'}))
    assert notes == []
    [text] = problems
    assert text.startswith("Stripe's status page reports degraded (api degraded) - Elevated API errors")


def test_status_unreadable_is_only_a_note():
    problems, notes = account.status_findings(status(reachable=False, largestatus=None, error='connection refused'))
    assert problems == []
    assert 'could not be read (connection refused)' in notes[0] and 'best effort' in notes[0]
    problems, notes = account.status_findings(status(largestatus=None, error=None))
    assert problems == [] and 'no status in the answer' in notes[0]


def test_webhook_stop_kinds():
    # After these a second call is pointless; a permission error on one list still lets the other run.
    assert 'invalid_key' in webhook.STOP_KINDS and 'unreachable' in webhook.STOP_KINDS
    assert 'permission' not in webhook.STOP_KINDS and 'bad_request' not in webhook.STOP_KINDS


def test_read_failed_events_reads_the_expiring_band_when_truncated():
    from tests.unit.plugins.module_utils.test_stripe_api import NOW, client, page

    c, session, _clock = client(page(['evt_9', 'evt_8'], True), page(['evt_8', 'evt_1'], False))
    events, truncated = webhook.read_failed_events(c, NOW, 72, 2)
    assert truncated is True
    assert [e['id'] for e in events] == ['evt_9', 'evt_8', 'evt_1']        # merged, duplicates dropped
    first, band = [dict(call['params']) for call in session.calls]
    assert first == {'delivery_success': 'false', 'created[gte]': str(NOW - 72 * 3600), 'limit': '2'}
    assert band == {'delivery_success': 'false', 'created[gte]': str(NOW - 72 * 3600),
                    'created[lt]': str(NOW - 60 * 3600), 'limit': '2'}


def test_read_failed_events_no_band_when_complete_or_window_short():
    from tests.unit.plugins.module_utils.test_stripe_api import NOW, client, page

    c, session, _clock = client(page(['evt_1'], False))
    assert webhook.read_failed_events(c, NOW, 72, 5)[1] is False and len(session.calls) == 1
    c, session, _clock = client(page(['evt_1'], True))
    events, truncated = webhook.read_failed_events(c, NOW, 24, 1)   # the window never reaches 60 h
    assert truncated is True and len(session.calls) == 1 and len(events) == 1
