"""The timeline callback's redaction and phase attribution (pure functions)."""
from ansible_collections.svpms.incident_response.plugins.callback import incident_timeline as cb


def test_secret_keys_are_masked_at_any_depth():
    result = {
        'invocation': {'module_args': {'access_key': 'AKIAEXAMPLE', 'secret_key': 'shh',
                                       'cluster': 'svpms-prod-cluster'}},
        'headers': [{'Authorization': 'Bearer abc'}],
        'db': {'password': 'hunter2', 'port': 5432},
        'stripe_api_key': 'sk_live_x',
        'session_token': 'FwoGZXIvY-session',
        'changed': True,
    }
    out = cb.redact(result)
    text = repr(out)
    for secret in ('AKIAEXAMPLE', 'shh', 'Bearer abc', 'hunter2', 'sk_live_x', 'FwoGZXIvY-session'):
        assert secret not in text
    assert out['invocation']['module_args']['cluster'] == 'svpms-prod-cluster'
    assert out['db']['port'] == 5432
    assert out['changed'] is True


def test_booleans_under_secret_looking_keys_are_kept():
    # "no_log_values_present"-style flags and counts are not secrets.
    out = cb.redact({'token_valid': True, 'secret_count': 3})
    assert out == {'token_valid': True, 'secret_count': 3}


def test_sizes_are_bounded():
    out = cb.redact({'log': 'x' * 10000, 'items': list(range(200))})
    assert len(out['log']) < 4100 and out['log'].endswith('chars truncated>')
    assert len(out['items']) == cb.MAX_LIST + 1 and 'truncated' in out['items'][-1]


def test_internal_keys_are_dropped():
    out = cb.redact({'_ansible_no_log': False, 'stdout_lines': ['a'], 'msg': 'ok'})
    assert out == {'msg': 'ok'}


class FakeRole:
    def __init__(self, name):
        self._name = name

    def get_name(self):
        return self._name


class FakeTask:
    """Only the two accessors task_phase reads; the real Task needs a play."""

    def __init__(self, path, role=None):
        self._path = path
        self._role = FakeRole(role) if role else None

    def get_path(self):
        return self._path


def test_phase_from_tasks_file_then_role():
    assert cb.task_phase(FakeTask('/r/roles/high_error_rate/tasks/investigate.yml:12')) == 'investigate'
    assert cb.task_phase(FakeTask('/r/roles/high_error_rate/tasks/mitigate.yml:3')) == 'mitigate'
    assert cb.task_phase(FakeTask('/r/roles/verify_recovery/tasks/watch_round.yml:3',
                                  'svpms.incident_response.verify_recovery')) == 'verify'
    assert cb.task_phase(FakeTask('/r/roles/incident/tasks/record.yml:3', 'incident')) == 'record'
    assert cb.task_phase(FakeTask('/r/roles/incident/tasks/main.yml:3', 'incident')) == 'detect'
    assert cb.task_phase(FakeTask('/r/playbooks/x.yml:3')) == 'other'
