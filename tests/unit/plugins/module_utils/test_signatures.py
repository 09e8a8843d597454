"""Error signatures: traceback frames, message shapes, grouping, samples."""

import json

import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils import signatures as sigs

ERP_TRACEBACK = '''2026-02-13 10:00:01,123 ERROR [req-{req}] Unhandled exception on POST /v1/orders/{order}
Traceback (most recent call last):
  File "/usr/local/lib/python3.11/site-packages/flask/app.py", line 1463, in wsgi_app
    response = self.full_dispatch_request()
  File "/app/svpms/api/orders.py", line {line}, in create_order
    invoice = erp.push(order)
  File "/app/svpms/integrations/erp.py", line 42, in push
    resp = self.session.post(url, json=payload, timeout=5)
  File "/usr/local/lib/python3.11/site-packages/requests/sessions.py", line 637, in post
    return self.request("POST", url, data=data, json=json, **kwargs)
requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='erp.example.com', port=443): \
Max retries exceeded with url: /api/invoices/{order}'''

DB_TRACEBACK = '''ERROR request {req} failed
Traceback (most recent call last):
  File "/app/svpms/api/auth.py", line 20, in login
    user = users.find(email)
  File "/app/svpms/db/pool.py", line {line}, in acquire
    raise OperationalError("pool exhausted after %d ms" % waited)
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
svpms.db.errors.OperationalError: pool exhausted after {ms} ms'''


class TestTracebacks:
    def test_innermost_application_frame_and_type(self):
        sig = sigs.signature_of(ERP_TRACEBACK.format(req='8f1c', order=1234, line=88))
        assert sig['kind'] == 'traceback'
        assert sig['exception_type'] == 'requests.exceptions.ConnectTimeout'
        # site-packages frames are skipped: the innermost *application* frame is erp.push
        assert sig['top_frame'] == '/app/svpms/integrations/erp.py:push'
        assert sig['signature'] == ('requests.exceptions.ConnectTimeout at '
                                    '/app/svpms/integrations/erp.py:push')

    def test_ids_line_numbers_and_message_do_not_split_a_signature(self):
        one = sigs.signature_of(ERP_TRACEBACK.format(req='aaaa', order=1, line=88))
        two = sigs.signature_of(ERP_TRACEBACK.format(req='bbbb', order=999, line=97))
        assert one == two

    def test_caret_lines_are_skipped_for_the_exception_line(self):
        sig = sigs.signature_of(DB_TRACEBACK.format(req='r1', line=77, ms=3000))
        assert sig['exception_type'] == 'svpms.db.errors.OperationalError'
        assert sig['top_frame'] == '/app/svpms/db/pool.py:acquire'

    def test_all_library_frames_falls_back_to_innermost(self):
        text = ('Traceback (most recent call last):\n'
                '  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode\n'
                '    obj, end = self.raw_decode(s, idx=_w(s, 0).end())\n'
                'json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)')
        sig = sigs.signature_of(text)
        assert sig['top_frame'] == '/usr/lib/python3.11/json/decoder.py:decode'
        assert sig['exception_type'] == 'json.decoder.JSONDecodeError'

    def test_chained_exception_uses_the_last_traceback(self):
        text = ('Traceback (most recent call last):\n'
                '  File "/app/a.py", line 1, in first\n'
                '    x()\n'
                'KeyError: \'k\'\n\n'
                'During handling of the above exception, another exception occurred:\n\n'
                'Traceback (most recent call last):\n'
                '  File "/app/b.py", line 9, in second\n'
                '    raise RuntimeError("wrapped")\n'
                'RuntimeError: wrapped')
        sig = sigs.signature_of(text)
        assert sig['signature'] == 'RuntimeError at /app/b.py:second'

    def test_exception_without_message(self):
        text = ('Traceback (most recent call last):\n'
                '  File "/app/worker.py", line 3, in run\n'
                '    raise StopWorker\n'
                'StopWorker')
        assert sigs.signature_of(text)['exception_type'] == 'StopWorker'

    def test_json_log_with_exc_info(self):
        event = json.dumps({'level': 'error', 'message': 'db timeout after 30s',
                            'exc_info': 'Traceback (most recent call last):\n'
                                        '  File "/app/x.py", line 3, in f\n    g()\nKeyError: \'k\''})
        sig = sigs.signature_of(event)
        assert sig['signature'] == 'KeyError at /app/x.py:f'
        assert sigs.is_error(event)

    def test_library_path_detection(self):
        assert sigs.is_library_path('/usr/local/lib/python3.11/site-packages/x.py')
        assert sigs.is_library_path('/usr/lib/python3/dist-packages/y.py')
        assert sigs.is_library_path('/usr/lib/python3.11/json/decoder.py')
        assert sigs.is_library_path('<frozen importlib._bootstrap>')
        assert not sigs.is_library_path('/app/svpms/api/orders.py')


class TestMessageShapes:
    @pytest.mark.parametrize('message,shape', [
        ('ERROR payment 7d9c2c9e-1b2a-4c3d-9e8f-0a1b2c3d4e5f failed',
         'ERROR payment <uuid> failed'),
        ('ERROR mail to bob.smith+x@example.co.uk bounced', 'ERROR mail to <email> bounced'),
        ('ERROR cannot reach 10.0.3.17:5432', 'ERROR cannot reach <ip>'),
        ('ERROR object 0xdeadbeef hash 9f86d081884c7d65', 'ERROR object <hex> hash <hex>'),
        ("ERROR unknown tenant 'acme' or \"globex\"", 'ERROR unknown tenant <str> or <str>'),
        ('ERROR order_123 failed after 2.5s (attempt 3/5)',
         'ERROR order_<num> failed after <num>s (attempt <num>/<num>)'),
        ('2026-02-13T10:00:01.123Z ERROR boom', '<ts> ERROR boom'),
        ('ERROR api-v2 on md5 check', 'ERROR api-v2 on md5 check'),
        ('ERROR   spaced\tout  ', 'ERROR spaced out'),
    ])
    def test_shapes(self, message, shape):
        assert sigs.signature_of(message)['signature'] == shape

    def test_variants_collapse_to_one_signature(self):
        a = sigs.signature_of('ERROR invoice 1001 for acme@example.com: ERP 503 after 5000 ms')
        b = sigs.signature_of('ERROR invoice 77 for zed@example.org: ERP 503 after 4870 ms')
        assert a == b
        assert a['kind'] == 'message' and a['top_frame'] is None

    def test_first_non_empty_line_only(self):
        assert sigs.message_shape('\n\nERROR first 1\nsecond line 2') == 'ERROR first <num>'

    def test_bare_exception_line_gives_type(self):
        sig = sigs.signature_of('ValueError: bad amount 42')
        assert sig['exception_type'] == 'ValueError'
        assert sig['signature'] == 'ValueError: bad amount <num>'

    def test_secrets_never_in_signature(self):
        sig = sigs.signature_of('ERROR upstream refused Authorization: Bearer eyJhbGciOi.abc.def')
        assert 'eyJhbGciOi' not in sig['signature']


class TestIsError:
    @pytest.mark.parametrize('message', [
        'ERROR something broke',
        '2026-02-13 CRITICAL disk full',
        'Traceback (most recent call last):\n  File "/app/a.py", line 1, in f\nKeyError: 1',
        'botocore.exceptions.ClientError: An error occurred (AccessDenied)',
        json.dumps({'level': 'error', 'msg': 'x'}),
        json.dumps({'severity': 'CRITICAL', 'message': 'x'}),
    ])
    def test_errors(self, message):
        assert sigs.is_error(message)

    @pytest.mark.parametrize('message', [
        'INFO GET /health 200 3ms',
        'INFO 0 errors in the last batch',
        'INFO retrying after ConnectionError',
        'WARNING slow query 1200ms',
        json.dumps({'level': 'info', 'message': 'ERROR budget at 40%'}),
        '',
        None,
    ])
    def test_not_errors(self, message):
        assert not sigs.is_error(message)


class TestTruncateAndRedact:
    def test_truncate_keeps_head_and_tail_within_limit(self):
        text = 'HEAD' + 'x' * 5000 + 'ValueError: the end'
        out = sigs.truncate(text, 200)
        assert len(out) == 200
        assert out.startswith('HEAD') and out.endswith('ValueError: the end')
        assert sigs.TRUNCATION_MARKER in out

    def test_short_text_untouched(self):
        assert sigs.truncate('abc', 10) == 'abc'

    def test_tiny_limit(self):
        assert sigs.truncate('abcdefghijklmnopqrstuvwxyz', 5) == 'abcde'

    def test_redact(self):
        text = ('Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def password=hunter2 '
                '"api_key": "XYZ123456" csrf_token=t0k3n')
        out = sigs.redact(text)
        for secret in ('eyJhbGciOiJIUzI1NiJ9', 'hunter2', 'XYZ123456', 't0k3n'):
            assert secret not in out
        assert out.count('<redacted>') >= 4


class TestGrouping:
    def _events(self):
        events = []
        for i in range(5):
            events.append(dict(timestamp=1_770_976_800_000 + i * 1000,
                               message=ERP_TRACEBACK.format(req='r%d' % i, order=100 + i, line=88)))
        for i in range(3):
            events.append(dict(timestamp=1_770_976_900_000 + i * 1000,
                               message=DB_TRACEBACK.format(req='q%d' % i, line=77, ms=3000 + i)))
        events.append(dict(timestamp=1_770_976_950_000, message='INFO GET /health 200'))
        return events

    def test_counts_sorted_desc_with_first_last_seen(self):
        groups, counted = sigs.group_events(self._events())
        assert counted == 8
        assert [(g['exception_type'], g['count']) for g in groups] == [
            ('requests.exceptions.ConnectTimeout', 5), ('svpms.db.errors.OperationalError', 3)]
        erp = groups[0]
        assert erp['first_seen'] == '2026-02-13T10:00:00.000Z'
        assert erp['last_seen'] == '2026-02-13T10:00:04.000Z'
        assert set(erp) == {'signature', 'exception_type', 'top_frame', 'count', 'sample',
                            'first_seen', 'last_seen'}

    def test_sample_is_most_recent_and_truncated(self):
        groups, _counted = sigs.group_events(self._events(), sample_chars=150)
        erp = groups[0]
        assert len(erp['sample']) <= 150
        assert 'req-r4' in erp['sample']  # most recent occurrence
        assert erp['sample'].rstrip().endswith('/api/invoices/104')

    def test_non_errors_are_dropped_unless_asked(self):
        events = [dict(timestamp=1, message='INFO ok'), dict(timestamp=2, message='ERROR x 1')]
        groups, counted = sigs.group_events(events)
        assert counted == 1 and len(groups) == 1
        groups, counted = sigs.group_events(events, errors_only=False)
        assert counted == 2

    def test_ties_break_on_first_seen(self):
        events = [dict(timestamp=20, message='ERROR later 1'), dict(timestamp=10, message='ValueError: x')]
        groups, _counted = sigs.group_events(events)
        assert [g['signature'] for g in groups] == ['ValueError: x', 'ERROR later <num>']

    def test_sample_redacted(self):
        groups, _counted = sigs.group_events([dict(timestamp=1, message='ERROR login failed password=hunter2')])
        assert 'hunter2' not in groups[0]['sample']

    def test_iso_ms(self):
        assert sigs.iso_ms(0) == '1970-01-01T00:00:00.000Z'
        assert sigs.iso_ms(1_770_976_800_123) == '2026-02-13T10:00:00.123Z'
        assert sigs.iso_ms(None) is None
