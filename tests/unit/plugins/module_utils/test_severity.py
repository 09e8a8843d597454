"""Severity classification: every line of the seed's INCIDENT CLASSIFICATION
that maps to a signal is a test here, with its response deadline.

Seed:
  P0 - Critical (Response: Immediate): complete service outage; data breach or
       security compromise; payment processing failure.
  P1 - High (Response: 30 min): partial service degradation (>5% error rate);
       database connection failures; authentication system down.
  P2 - Medium (Response: 2 hours): background job failures; integration errors
       (ERP, email); performance degradation (<SLO).
  P3 - Low (Response: Next business day): minor bugs, feature requests,
       documentation issues (reported by people: the default).
"""

import copy

import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils import severity

# A healthy service as triage sees it today (probe, CloudWatch, ECS).
HEALTHY = dict(availability_reachable=True, health_error_rate_pct=0.0, error_rate_pct=0.2, p95_ms=120.0,
               running_tasks=3, desired_tasks=3)

NOW = 1770976800  # 2026-02-13T10:00:00Z


def classify(**changes):
    signals = dict(HEALTHY)
    signals.update(changes)
    return severity.classify(signals, now=NOW)


def assert_response(result, sev, response, minutes, page, respond_by):
    assert result['severity'] == sev
    assert result['response'] == response
    assert result['response_minutes'] == minutes
    assert result['page'] == page
    assert result['respond_by'] == respond_by


def assert_p0(result):
    assert_response(result, 'P0', 'immediate', 0, 'pagerduty', '2026-02-13T10:00:00Z')


def assert_p1(result):
    assert_response(result, 'P1', '30 min', 30, 'pagerduty', '2026-02-13T10:30:00Z')


def assert_p2(result):
    assert_response(result, 'P2', '2 hours', 120, 'slack', '2026-02-13T12:00:00Z')


def assert_p3(result):
    assert_response(result, 'P3', 'next business day', None, 'ticket', None)


def top(result):
    return result['matched'][0]['id']


class TestSeedP0:
    def test_complete_outage_availability_probe_unreachable(self):
        result = classify(availability_reachable=False, health_error_rate_pct=100.0)
        assert_p0(result)
        assert top(result) == 'complete_outage'
        assert 'availability_reachable is false' in result['reasons'][0]
        assert 'Entire service (API and web app)' in result['affected_features']

    def test_complete_outage_health_failing(self):
        result = classify(health_error_rate_pct=95.0)
        assert_p0(result)
        assert 'health_error_rate_pct = 95 >= 90' in result['reasons'][0]

    def test_complete_outage_no_running_tasks(self):
        result = classify(running_tasks=0)
        assert_p0(result)
        assert top(result) == 'complete_outage'
        assert 'running_tasks = 0 == 0; desired_tasks = 3 > 0' in result['reasons'][0]

    def test_scaled_to_zero_on_purpose_is_not_an_outage(self):
        assert_p3(classify(running_tasks=0, desired_tasks=0))

    def test_security_compromise(self):
        result = classify(security_compromise=True)
        assert_p0(result)
        assert top(result) == 'security_compromise'
        assert result['affected_features'] == ['Customer data']

    def test_payment_processing_failure(self):
        result = classify(payments_ok=False)
        assert_p0(result)
        assert top(result) == 'payment_processing_failure'
        assert result['affected_features'] == ['Payments (Stripe)']

    def test_payment_provider_unreachable_is_a_payment_failure(self):
        result = classify(payments_reachable='unreachable')
        assert_p0(result)
        assert 'payments_reachable is false (did not answer)' in result['reasons'][0]


class TestSeedP1:
    def test_partial_degradation_above_5pct(self):
        result = classify(error_rate_pct=7.5)
        assert_p1(result)
        assert top(result) == 'partial_degradation'
        assert 'error_rate_pct = 7.5 > 5' in result['reasons'][0]
        assert result['affected_features'] == ['API']

    def test_exactly_5pct_is_not_above_5pct(self):
        result = classify(error_rate_pct=5.0)
        assert_p2(result)  # still above the 1% SLO
        assert top(result) == 'error_rate_above_slo'

    def test_database_connection_failures(self):
        result = classify(db_connection_errors=12)
        assert_p1(result)
        assert top(result) == 'database_connection_failures'

    def test_database_unreachable_is_evidence(self):
        result = classify(db_reachable='unreachable')
        assert_p1(result)
        assert top(result) == 'database_connection_failures'
        assert 'db_reachable is false (did not answer)' in result['reasons'][0]
        assert result['unreadable'] == []  # evidence, not "could not judge"
        evidence = {e['signal']: e for e in result['evidence']}
        assert evidence['db_reachable']['status'] == 'unreachable'

    def test_database_reachable_false(self):
        assert_p1(classify(db_reachable=False))

    def test_authentication_down(self):
        result = classify(auth_ok=False)
        assert_p1(result)
        assert top(result) == 'authentication_down'
        assert result['affected_features'] == ['Login (password and SSO)']

    def test_authentication_unreachable(self):
        assert_p1(classify(auth_reachable=False))


class TestSeedP2:
    def test_background_job_failures(self):
        result = classify(background_job_failures=4)
        assert_p2(result)
        assert top(result) == 'background_job_failures'

    def test_integration_errors_erp_email(self):
        result = classify(integration_errors=2)
        assert_p2(result)
        assert top(result) == 'integration_errors'
        assert result['affected_features'] == ['Integrations (ERP, email)']

    def test_performance_latency_above_slo(self):
        result = classify(p95_ms=812.0)
        assert_p2(result)
        assert top(result) == 'latency_above_slo'
        assert 'p95_ms = 812 > 500' in result['reasons'][0]

    def test_performance_error_rate_above_slo(self):
        result = classify(error_rate_pct=1.5)
        assert_p2(result)
        assert top(result) == 'error_rate_above_slo'

    def test_at_the_slo_is_fine(self):
        assert_p3(classify(p95_ms=500.0, error_rate_pct=1.0))


class TestSeedP3:
    def test_healthy_is_p3_and_no_incident(self):
        result = classify()
        assert_p3(result)
        assert result['incident'] is False
        assert result['matched'] == []
        assert result['affected_features'] == []
        assert result['reasons'][0].startswith('no rule matched')

    def test_no_signals_at_all_is_p3(self):
        result = severity.classify({}, now=NOW)
        assert_p3(result)
        assert result['incident'] is False
        assert 'error_rate_pct' in result['not_observed']
        assert result['evidence'] == []

    def test_respond_by_needs_a_clock(self):
        assert severity.classify({'error_rate_pct': 9})['respond_by'] is None


class TestOrdering:
    def test_p0_beats_p1(self):
        result = classify(error_rate_pct=30.0, payments_ok=False)
        assert_p0(result)
        assert [m['id'] for m in result['matched']] == [
            'payment_processing_failure', 'partial_degradation', 'error_rate_above_slo']
        assert [r.split(' ')[0] for r in result['reasons']] == ['P0', 'P1', 'P2']
        assert result['affected_features'] == ['Payments (Stripe)', 'API']

    def test_table_order_among_equal_severities(self):
        rules = [
            dict(id='second_p1', severity='P1', description='b', when=dict(signal='x', op='>', value=0)),
            dict(id='only_p2', severity='P2', description='c', when=dict(signal='x', op='>', value=0)),
            dict(id='first_p1', severity='P1', description='a', when=dict(signal='x', op='>', value=0)),
        ]
        result = severity.classify({'x': 1}, rules=rules)
        assert [m['id'] for m in result['matched']] == ['second_p1', 'first_p1', 'only_p2']

    def test_matched_rule_lists_its_description(self):
        result = classify(error_rate_pct=12.0)
        assert result['matched'][0] == dict(id='partial_degradation', severity='P1',
                                            description='Partial service degradation (>5% error rate)')


class TestUnreachableAndMissing:
    def test_missing_signal_makes_conditions_false(self):
        result = severity.classify({'error_rate_pct': None, 'p95_ms': 100})
        assert_p3(result)
        assert 'error_rate_pct' in result['not_observed']
        assert not any('error_rate_pct' in r for r in result['reasons'])

    def test_unreadable_signal_is_named_in_reasons_not_treated_as_ok(self):
        signals = dict(HEALTHY, running_tasks='unreachable', desired_tasks='unreachable')
        sources = {'running_tasks': 'ECS: Could not connect to the endpoint URL http://127.0.0.1:1'}
        result = severity.classify(signals, sources=sources, now=NOW)
        assert_p3(result)
        assert result['unreadable'] == ['running_tasks', 'desired_tasks']
        assert ('running_tasks could not be read, not judged: its backend is unreachable '
                '(ECS: Could not connect to the endpoint URL http://127.0.0.1:1)') in result['reasons']
        statuses = {e['signal']: e['status'] for e in result['evidence']}
        assert statuses['running_tasks'] == 'unreachable'
        assert statuses['error_rate_pct'] == 'observed'

    def test_unreadable_evidence_kept_next_to_a_match(self):
        result = classify(error_rate_pct=31.2, running_tasks='unreachable')
        assert_p1(result)
        assert any('running_tasks could not be read' in r for r in result['reasons'])

    def test_sources_are_quoted_in_reasons(self):
        result = severity.classify({'error_rate_pct': 31.2},
                                   sources={'error_rate_pct': 'CloudWatch ALB metrics over 60 s (598 requests)'})
        assert result['reasons'][0] == ('P1 partial_degradation - Partial service degradation (>5% error rate): '
                                        'error_rate_pct = 31.2 > 5 (CloudWatch ALB metrics over 60 s (598 requests))')
        assert result['evidence'][0] == dict(signal='error_rate_pct', value=31.2, status='problem',
                                             source='CloudWatch ALB metrics over 60 s (598 requests)')

    def test_numeric_and_boolean_strings_from_templates(self):
        assert_p1(severity.classify({'error_rate_pct': '7.5'}, now=NOW))
        assert_p0(severity.classify({'payments_ok': 'False'}, now=NOW))

    def test_non_numeric_value_does_not_match(self):
        assert_p3(severity.classify({'error_rate_pct': 'lots'}, now=NOW))


class TestCustomRules:
    # What a team keeps in inventory (group_vars/all/triage.yml: triage_rules).
    INVENTORY_RULES = [
        dict(id='api_down', severity='P0', description='API down',
             when={'any': [dict(signal='availability_reachable', op='is_false'),
                           {'all': [dict(signal='running_tasks', op='==', value=0),
                                    dict(signal='desired_tasks', op='>', value=0)]}]}),
        dict(id='errors_above_3pct', severity='P1', description='Error rate above 3%',
             when=dict(signal='error_rate_pct', op='>', value=3)),
        dict(id='canary_red', severity='P2', description='Canary reports red',
             when=dict(signal='canary', op='==', value='red')),
        dict(id='old_version', severity='P3', description='Running an old version',
             when=dict(signal='version', op='!=', value='1.4.3')),
    ]

    def test_team_threshold(self):
        result = severity.classify(dict(HEALTHY, error_rate_pct=4.0), rules=self.INVENTORY_RULES,
                                   features={'error_rate_pct': ['Public API']}, now=NOW)
        assert_p1(result)
        assert [m['id'] for m in result['matched']] == ['errors_above_3pct']
        assert result['affected_features'] == ['Public API']

    def test_nested_all_any(self):
        result = severity.classify(dict(HEALTHY, running_tasks=0), rules=self.INVENTORY_RULES, now=NOW)
        assert_p0(result)
        assert top(result) == 'api_down'

    def test_string_equality(self):
        result = severity.classify({'canary': 'red'}, rules=self.INVENTORY_RULES, now=NOW)
        assert_p2(result)

    def test_explicit_p3_rule_is_an_incident(self):
        result = severity.classify({'version': '1.4.2'}, rules=self.INVENTORY_RULES, now=NOW)
        assert_p3(result)
        assert result['incident'] is True
        assert top(result) == 'old_version'

    def test_features_as_a_single_string(self):
        result = severity.classify({'error_rate_pct': 9}, features={'error_rate_pct': 'API'})
        assert result['affected_features'] == ['API']

    def test_default_table_is_not_mutated(self):
        before = copy.deepcopy(severity.DEFAULT_RULES)
        rules = severity.default_rules()
        rules[0]['severity'] = 'P3'
        severity.classify({'error_rate_pct': 9}, rules=rules)
        assert severity.DEFAULT_RULES == before


def rule(**overrides):
    base = dict(id='r', severity='P1', description='d', when=dict(signal='x', op='>', value=1))
    base.update(overrides)
    return base


class TestInvalidRules:
    @pytest.mark.parametrize('rules,message', [
        ([], 'rules must be a non-empty list'),
        ('P1', 'rules must be a non-empty list'),
        (['x'], 'rules[0] must be a dict'),
        ([rule(id='')], 'rules[0].id must be a non-empty string'),
        ([rule(), rule()], "rules[1] (id 'r'): id is already used by rules[0]"),
        ([rule(severity='P5')], "rules[0] (id 'r').severity must be one of P0, P1, P2, P3, got 'P5'"),
        ([rule(severity='critical')], "rules[0] (id 'r').severity must be one of"),
        ([rule(description='')], "rules[0] (id 'r').description must be a non-empty string"),
        ([rule(sevrity='P1')], "rules[0] (id 'r') has unknown key(s) sevrity"),
        ([{'id': 'r', 'severity': 'P1', 'description': 'd'}], "rules[0] (id 'r').when is required"),
        ([rule(when='error_rate_pct > 5')], "rules[0] (id 'r').when must be a condition"),
        ([rule(when=dict(signal='x', op='=>', value=1))], "rules[0] (id 'r').when.op must be one of"),
        ([rule(when=dict(signal='', op='>', value=1))], "rules[0] (id 'r').when.signal must be a non-empty"),
        ([rule(when=dict(signal='x', op='>'))], "rules[0] (id 'r').when.value is required with op >"),
        ([rule(when=dict(signal='x', op='>', value='5'))], "rules[0] (id 'r').when.value must be a number"),
        ([rule(when=dict(signal='x', op='is_true', value=True))], "when.value must not be set with op is_true"),
        ([rule(when=dict(signal='x', op='>', value=1, unit='%'))], "when has unknown key(s) unit"),
        ([rule(when={'any': []})], "rules[0] (id 'r').when.any must be a non-empty list"),
        ([rule(when={'all': [dict(signal='x', op='>', value=1)], 'signal': 'y'})],
         'must have exactly one key (all or any)'),
        ([rule(), rule(id='db_down', when={'any': [
            dict(signal='db_reachable', op='is_false'),
            dict(signal='db_errors', op='=>', value=0)]})],
         "rules[1] (id 'db_down').when.any[1].op must be one of > >= < <= == != is_true is_false, got '=>'"),
    ])
    def test_names_the_rule_and_field(self, rules, message):
        with pytest.raises(severity.RulesError) as err:
            severity.classify({'x': 2}, rules=rules)
        assert message in str(err.value)

    def test_the_default_table_is_valid(self):
        assert severity.validate_rules(severity.default_rules())
        ids = [r['id'] for r in severity.DEFAULT_RULES]
        assert len(ids) == len(set(ids))

    def test_bad_features(self):
        with pytest.raises(severity.RulesError, match=r"features\['x'\] must be a list"):
            severity.classify({'x': 1}, features={'x': 3})

    def test_signals_must_be_a_dict(self):
        with pytest.raises(severity.RulesError, match='signals must be a dict'):
            severity.classify(['error_rate_pct'])


class TestModuleBoundary:
    """incident_classify runs the same logic; bad rules fail the task with the field named."""

    def test_module_classifies_with_the_builtin_table(self):
        from tests.helpers.modules import assert_no_traceback, run_module
        result = run_module('incident_classify', dict(signals=dict(HEALTHY, error_rate_pct=31.2),
                                                      sources={'error_rate_pct': 'CloudWatch'}))
        assert_no_traceback(result)
        assert result.rc == 0 and not result.failed
        assert result['changed'] is False
        assert result['severity'] == 'P1' and result['response'] == '30 min'
        assert result['affected_features'] == ['API']
        assert result['rules_source'] == 'built-in'
        assert [r['id'] for r in result['rules']] == [r['id'] for r in severity.DEFAULT_RULES]

    def test_module_fails_clearly_on_a_bad_rule(self):
        from tests.helpers.modules import assert_no_traceback, run_module
        result = run_module('incident_classify', dict(signals={}, rules=[rule(severity='P9')]), check=True)
        assert_no_traceback(result)
        assert result.failed
        assert "rules[0] (id 'r').severity must be one of P0, P1, P2, P3, got 'P9'" in result['msg']
        assert 'triage_rules' in result['msg']
