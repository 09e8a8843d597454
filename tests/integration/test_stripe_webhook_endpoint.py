"""stripe_webhook_endpoint as a real module file, against the sandbox's Stripe stand-in.

The stand-in (tests/helpers/stripe.py) serves the webhook endpoints API as a
sandbox extension with the real shapes (``GET/POST
/v1/webhook_endpoints[/{id}]``, ``disabled=true|false`` -> ``status``). The
stand-in is shared by the tests of this file, so each test uses URLs of its
own. What the module did is always checked at the stand-in itself, not only
in the module's result. A scripted loopback receiver stands in for a Stripe
that echoes the key back in an error.
"""

import json
import uuid

import pytest

from tests.helpers.modules import assert_no_traceback, run_module
from tests.helpers.receiver import Receiver
from tests.helpers.servers import free_port
from tests.helpers.stripe import API_KEY, start_stripe

OTHER_KEY = 'sk_test_51OtherKeyQwErTyUiOpAsDfGhJkLzXcVbNm55555other777'
KEYS = (API_KEY, OTHER_KEY)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv('STRIPE_API_KEY', raising=False)


@pytest.fixture(scope='module')
def srv(tmp_path_factory):
    server = start_stripe(str(tmp_path_factory.mktemp('stripe')))
    try:
        yield server
    finally:
        server.stop()


def assert_clean(result):
    assert_no_traceback(result)
    text = result.stdout + result.stderr + json.dumps(dict(result), ensure_ascii=False)
    for key in KEYS:
        assert key not in text, key[:8]
        assert key[8:-4] not in text, key[:8]
    assert '********' not in text


def our_url(tag=None):
    return 'https://api.svpms-%s.example.com/webhooks/stripe' % (tag or uuid.uuid4().hex[:8])


def fix(api_url, check=False, key=API_KEY, **kwargs):
    args = dict(api_key=key, api_url=api_url, timeout=5)
    args.update(kwargs)
    result = run_module('stripe_webhook_endpoint', args, check=check)
    assert_clean(result)
    return result


def view(ep):
    return dict(id=ep['id'], url=ep['url'], status=ep['status'], enabled_events=ep['enabled_events'])


# --------------------------------------------------------------------------- changes


def test_disabled_endpoint_is_enabled_then_left_alone(srv):
    url = our_url()
    we = srv.register_endpoint(url, events=['payment_intent.succeeded', 'charge.refunded'])
    srv.set_endpoint_disabled(we, True)
    result = fix(srv.url, endpoint_id=we, enabled=True)
    assert result.rc == 0 and not result.failed and result['changed'] is True, result.get('msg')
    assert result['endpoint_id'] == we and result['sent'] == {'disabled': False}
    assert result['before'] == dict(id=we, url=url, status='disabled',
                                    enabled_events=['payment_intent.succeeded', 'charge.refunded'])
    assert result['after'] == dict(result['before'], status='enabled')
    assert result['diff']['before'] == 'url: %s\nstatus: disabled\n' % url
    assert result['diff']['after'] == 'url: %s\nstatus: enabled\n' % url
    assert result['replay_needed'] is True
    [note] = result['notes']
    assert 'never delivers the events created while it was disabled' in note and 'stripe_webhook_replay' in note
    assert result['key_hint'] == 'sk_test_\u20260000'
    assert view(srv.endpoint(we)) == result['after']          # the stand-in says so too

    again = fix(srv.url, endpoint_id=we, enabled=True)
    assert again['changed'] is False and again['sent'] == {} and again['replay_needed'] is False
    assert again['before'] == again['after'] == result['after'] and 'diff' not in again
    assert again['notes'] == []


def test_url_corrected_by_match_url_then_idempotent(srv):
    wrong, right = our_url('wrong-host'), our_url()
    we = srv.register_endpoint(wrong)
    result = fix(srv.url, match_url=wrong, url=right, enabled=True)
    assert result['changed'] is True and result['sent'] == {'url': right}
    assert (result['before']['url'], result['after']['url']) == (wrong, right)
    assert result['after']['status'] == 'enabled' and result['replay_needed'] is True
    assert any('pointed at %s' % wrong in n for n in result['notes'])
    assert srv.endpoint(we)['url'] == right

    # Run again with the same arguments: nothing points at the wrong URL any more, the right one is found.
    again = fix(srv.url, match_url=wrong, url=right, enabled=True)
    assert again['changed'] is False and again['endpoint_id'] == we and again['sent'] == {}


def test_url_and_status_in_one_update_and_disable(srv):
    wrong, right = our_url(), our_url()
    we = srv.register_endpoint(wrong)
    srv.set_endpoint_disabled(we, True)
    result = fix(srv.url, endpoint_id=we, url=right, enabled=True)
    assert result['sent'] == {'url': right, 'disabled': False}
    assert view(srv.endpoint(we)) == dict(result['before'], url=right, status='enabled')
    assert len(result['notes']) == 2

    off = fix(srv.url, match_url=right, enabled=False)
    assert off['changed'] is True and off['sent'] == {'disabled': True} and off['replay_needed'] is False
    assert srv.endpoint(we)['status'] == 'disabled'
    assert 'is now disabled' in off['notes'][0]


def test_no_op_when_fine(srv):
    url = our_url()
    we = srv.register_endpoint(url)
    before = srv.endpoint(we)
    result = fix(srv.url, match_url=url.upper().replace('HTTPS://', 'https://') + '/', url=url, enabled=True)
    assert result['changed'] is False and result['endpoint_id'] == we and result['sent'] == {}
    assert srv.endpoint(we) == before


def test_check_mode_sends_nothing(srv):
    wrong, right = our_url(), our_url()
    we = srv.register_endpoint(wrong)
    srv.set_endpoint_disabled(we, True)
    before = srv.endpoint(we)
    result = fix(srv.url, check=True, endpoint_id=we, url=right, enabled=True)
    assert result.rc == 0 and result['changed'] is True
    assert result['sent'] == {'url': right, 'disabled': False}
    assert result['after'] == dict(view(before), url=right, status='enabled')
    assert result['diff']['after'] == 'url: %s\nstatus: enabled\n' % right
    assert result['replay_needed'] is True
    assert srv.endpoint(we) == before                         # unchanged at the stand-in


# --------------------------------------------------------------------------- selection failures


def test_ambiguous_match_lists_the_ids(srv):
    url = our_url()
    ids = sorted([srv.register_endpoint(url), srv.register_endpoint(url + '/')])
    result = fix(srv.url, match_url=url, enabled=True)
    assert result.failed and result['error_kind'] == 'ambiguous'
    assert '2 webhook endpoints point at match_url %s' % url in result['msg']
    for we in ids:
        assert we in result['msg']
    assert any(c['id'] == ids[0] for c in result['candidates'])
    for we in ids:
        assert srv.endpoint(we)['status'] == 'enabled'


def test_missing_match_and_missing_id(srv):
    url = our_url('nowhere')
    result = fix(srv.url, match_url=url, url=our_url('also-nowhere'), enabled=True)
    assert result.failed and result['error_kind'] == 'no_match'
    assert result['msg'].startswith('No webhook endpoint points at match_url %s or at url' % url)
    assert 'Endpoints in the account' in result['msg']

    result = fix(srv.url, endpoint_id='we_doesnotexist000', enabled=True)
    assert result.failed and result['error_kind'] == 'not_found' and result['http_status'] == 404
    assert 'No webhook endpoint we_doesnotexist000' in result['msg']


# --------------------------------------------------------------------------- options and failures


@pytest.mark.parametrize('args,words', [
    (dict(endpoint_id='we_1', match_url='https://a.example.com/h', enabled=True), 'mutually exclusive'),
    (dict(enabled=True), 'one of the following is required'),
    (dict(endpoint_id='we_1'), 'nothing to do'),
    (dict(endpoint_id='we_1', url='http://api.example.com/webhooks/stripe'), 'url must use https://'),
    (dict(endpoint_id='we_1', url='ftp://x.example.com/h'), 'url must use http:// or https://'),
    (dict(endpoint_id='../v1/charges', enabled=True), 'endpoint_id must be a webhook endpoint id'),
    (dict(match_url='not a url', enabled=True), 'match_url'),
])
def test_bad_options(srv, args, words):
    result = fix(srv.url, **args)
    assert result.failed and words in result['msg'], result['msg']


def test_loopback_http_url_is_accepted(srv):
    we = srv.register_endpoint(our_url())
    target = 'http://127.0.0.1:%d/webhooks/stripe' % free_port()
    result = fix(srv.url, endpoint_id=we, url=target, check=True)
    assert result['changed'] is True and result['sent'] == {'url': target}


def test_revoked_api_key(srv):
    we = srv.register_endpoint(our_url())
    srv.set_endpoint_disabled(we, True)
    srv.revoke_key(API_KEY)
    try:
        result = fix(srv.url, endpoint_id=we, enabled=True)
    finally:
        srv.unrevoke_key(API_KEY)
    assert result.failed and result['error_kind'] == 'invalid_key' and result['http_status'] == 401
    assert 'expired or revoked' in result['msg'] and 'sk_test_\u20260000' in result['msg']
    assert srv.endpoint(we)['status'] == 'disabled'


def test_stripe_unreachable():
    result = fix('http://127.0.0.1:%d' % free_port(), endpoint_id='we_123', enabled=True, timeout=1)
    assert result.failed and result['reachable'] is False and result['error_kind'] == 'unreachable'
    assert 'Could not reach the Stripe API' in result['msg']


def test_error_echoing_the_key_does_not_leak_it():
    with Receiver() as rx:
        rx.script('GET', '/v1/webhook_endpoints/we_123', dict(status=401, body={'error': {
            'type': 'invalid_request_error', 'message': 'Invalid API Key provided: %s' % OTHER_KEY}}))
        rx.script('POST', '/v1/webhook_endpoints/we_456', dict(status=400, body={'error': {
            'type': 'invalid_request_error', 'param': 'url', 'message': 'Bad url for key %s' % OTHER_KEY}}))
        rx.script('GET', '/v1/webhook_endpoints/we_456', dict(status=200, body={
            'id': 'we_456', 'object': 'webhook_endpoint', 'url': 'https://old.example.com/h', 'status': 'disabled',
            'enabled_events': ['*']}))
        refused = fix(rx.url, key=OTHER_KEY, endpoint_id='we_123', enabled=True)
        rejected = fix(rx.url, key=OTHER_KEY, endpoint_id='we_456', enabled=True,
                       url='https://api.svpms.example.com/webhooks/stripe')
        posts = [r for r in rx.requests if r.method == 'POST']
    assert refused.failed and refused['error_kind'] == 'invalid_key'
    assert 'sk_test_\u2026r777' in refused['msg']
    assert rejected.failed and rejected['error_kind'] == 'bad_request' and rejected['changed'] is False
    assert 'Bad url for key sk_test_\u2026r777' in rejected['msg']      # the echo is there, as a hint
    assert rejected['after'] == rejected['before']
    [post] = posts
    assert post.header('idempotency-key').startswith('svpms-we-')
    assert 'disabled=false' in post.body and 'url=' in post.body
