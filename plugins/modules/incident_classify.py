#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: incident_classify
short_description: Classify an incident's severity (P0-P3) from observed signals and a rules table
version_added: 1.0.0
description:
  - Evaluates a rules table against the signals triage observed and returns the severity, the response
    deadline, who to page, the matched rules, human-readable reasons with the observed values, and the
    affected user-facing features.
  - Pure logic - it talks to no backend, makes no network call and reads no file. Gather the signals with
    M(svpms.incident_response.http_probe), M(svpms.incident_response.service_metrics_info),
    M(svpms.incident_response.ecs_service_info) or any other check first
    (the P(svpms.incident_response.triage#role) role does).
  - Every rule is evaluated; the highest severity among the matched rules wins (P0 beats P1), and rules of
    equal severity keep their table order. When no rule matches the severity is V(P3) (next business day)
    and RV(incident) is V(false).
  - A signal that is absent or V(null) was not observed - every condition on it is false.
  - The value V(unreachable) means the backend that would have answered did not. For a reachability signal
    (a name ending in C(_reachable), such as C(db_reachable)) that is itself the evidence and counts as
    V(false), so a database that does not answer matches C(db_reachable is_false) (P1). Any other signal
    with that value cannot be judged - its conditions are false - and RV(reasons) says it could not be read
    (with its O(sources) text), so an unreachable monitoring backend never reads as "all clear".
author: SVPMS Platform Team (@svpms)
options:
  signals:
    description:
      - What triage observed, as a flat mapping of signal name to value (number, boolean, string,
        V(null) for not observed, or V(unreachable)).
      - Signals the built-in table reads - C(availability_reachable), C(health_error_rate_pct),
        C(running_tasks), C(desired_tasks), C(security_compromise), C(payments_ok), C(payments_reachable),
        C(error_rate_pct), C(db_reachable), C(db_connection_errors), C(auth_ok), C(auth_reachable),
        C(background_job_failures), C(integration_errors), C(p95_ms).
    type: dict
    required: true
  rules:
    description:
      - The rules table, a list of C({id, severity, description, when}) and no other keys. C(id) is unique
        (routing uses it); C(severity) is V(P0), V(P1), V(P2) or V(P3); C(description) is a non-empty text.
      - C(when) is a condition - C({signal, op, value}) where C(op) is one of C(>), C(>=), C(<), C(<=) (a
        numeric C(value)), C(==), C(!=) (a number, string or boolean C(value)), C(is_true), C(is_false)
        (no C(value)); or a group - a mapping with the one key C(all) or C(any)
        holding a list of conditions - nested freely. Nothing is
        evaluated as code.
      - A table that does not follow this fails the task with a message naming the rule and the field, for
        example V(rules[3] (id 'db_down'\).when.any[1].op must be one of ...).
      - Omitted - the built-in table, the seed's classification. P0 C(complete_outage) (availability probe
        unreachable, or C(health_error_rate_pct >= 90), or C(running_tasks == 0) while C(desired_tasks > 0));
        P0 C(security_compromise) (C(security_compromise is_true)); P0 C(payment_processing_failure)
        (C(payments_ok) or C(payments_reachable) false); P1 C(partial_degradation) (C(error_rate_pct > 5));
        P1 C(database_connection_failures) (C(db_reachable is_false) or C(db_connection_errors > 0));
        P1 C(authentication_down) (C(auth_ok) or C(auth_reachable) false); P2 C(background_job_failures)
        (C(> 0)); P2 C(integration_errors) (C(> 0), ERP and email); P2 C(latency_above_slo)
        (C(p95_ms > 500)); P2 C(error_rate_above_slo) (C(error_rate_pct > 1)). RV(rules) returns it.
    type: list
    elements: dict
  features:
    description:
      - Signal name to the user-facing features it stands for, for RV(affected_features), for example
        C(error_rate_pct) to V([API]) and C(payments_ok) to V([Payments (Stripe\)]). A signal not listed affects no feature.
      - Omitted - the built-in map (C(error_rate_pct) and C(p95_ms) - API; C(payments_ok) - Payments (Stripe);
        C(db_reachable) - everything that reads or writes data; and so on).
    type: dict
  sources:
    description:
      - Signal name to where its value came from, added to RV(reasons) and RV(evidence), for example
        C(error_rate_pct) to V(CloudWatch ALB metrics over 300 s (12840 requests\)). For a signal whose value is
        V(unreachable), put the error there.
    type: dict
    default: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Pure computation; it runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: N/A
    details: It changes nothing.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: all
notes:
  - Not part of the C(aws) action group - it talks to no AWS API, so C(module_defaults) for that group do not
    apply to it.
  - Response deadlines and paging follow the seed - P0 immediate (PagerDuty), P1 30 min (PagerDuty),
    P2 2 hours (Slack), P3 next business day (ticket).
seealso:
  - module: svpms.incident_response.http_probe
  - module: svpms.incident_response.service_metrics_info
  - module: svpms.incident_response.ecs_service_info
'''

EXAMPLES = r'''
- name: Classify with the built-in (seed) rules
  svpms.incident_response.incident_classify:
    signals:
      availability_reachable: true
      error_rate_pct: 7.4
      p95_ms: 310
      running_tasks: 3
      desired_tasks: 3
      db_reachable: unreachable   # the database did not answer: evidence, P1
    sources:
      error_rate_pct: CloudWatch ALB metrics over 300 s (12840 requests)
  register: triage

- name: Say what it is and by when to respond
  ansible.builtin.debug:
    msg: "{{ triage.severity }} (respond: {{ triage.response }}): {{ triage.reasons | join('; ') }}"

- name: Classify with a team's own table, kept in inventory (group_vars/all/triage.yml)
  svpms.incident_response.incident_classify:
    signals: "{{ observed }}"
    rules:
      - id: api_down
        severity: P0
        description: Complete service outage
        when:
          any:
            - {signal: availability_reachable, op: is_false}
            - all:
                - {signal: running_tasks, op: "==", value: 0}
                - {signal: desired_tasks, op: ">", value: 0}
      - id: errors_above_3pct
        severity: P1
        description: Error rate above 3%
        when: {signal: error_rate_pct, op: ">", value: 3}
    features:
      availability_reachable: [API, Web app]
      error_rate_pct: [API]
'''

RETURN = r'''
severity:
  description: The severity, the highest among RV(matched); V(P3) when no rule matched.
  returned: always
  type: str
  sample: P1
response:
  description: The seed's response time for the severity - V(immediate), V(30 min), V(2 hours) or V(next business day).
  returned: always
  type: str
  sample: 30 min
response_minutes:
  description: The response time in minutes - 0, 30, 120, or V(null) for next business day.
  returned: always
  type: int
  sample: 30
respond_by:
  description: When the response is due, ISO 8601 UTC (now plus RV(response_minutes)); V(null) for P3.
  returned: always
  type: str
  sample: '2026-02-13T10:35:00Z'
page:
  description: Who to notify - V(pagerduty) (P0, P1), V(slack) (P2) or V(ticket) (P3).
  returned: always
  type: str
  sample: pagerduty
incident:
  description: Whether any rule matched. V(false) means nothing observed needs a response (severity P3).
  returned: always
  type: bool
  sample: true
matched:
  description: The matched rules, highest severity first, table order among equals.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Rule id.
      type: str
      sample: partial_degradation
    severity:
      description: Rule severity.
      type: str
      sample: P1
    description:
      description: Rule description.
      type: str
      sample: Partial service degradation (>5% error rate)
  sample:
    - {id: partial_degradation, severity: P1, description: Partial service degradation (>5% error rate)}
    - {id: error_rate_above_slo, severity: P2, description: "Performance degradation (<SLO): error rate above 1%"}
reasons:
  description:
    - One line per matched rule with the observed values that matched it and their O(sources), then one
      line per signal that could not be read (value V(unreachable)).
    - With no match, one line saying so and which signals were observed.
  returned: always
  type: list
  elements: str
  sample:
    - "P1 partial_degradation - Partial service degradation (>5% error rate): error_rate_pct = 31.2 > 5
      (CloudWatch ALB metrics over 60 s, 598 requests)"
    - "running_tasks could not be read, not judged: its backend is unreachable (ECS: Could not connect to the endpoint URL)"
affected_features:
  description: User-facing features behind the matched rules (from O(features)), without duplicates.
  returned: always
  type: list
  elements: str
  sample: [API]
unreadable:
  description: Signals whose value was V(unreachable) and that are not reachability signals - they were not judged.
  returned: always
  type: list
  elements: str
  sample: [running_tasks, desired_tasks]
not_observed:
  description: Signals the rules read that were absent or V(null) (not configured or no data).
  returned: always
  type: list
  elements: str
  sample: [security_compromise, payments_ok, db_reachable]
evidence:
  description: Every signal given (except V(null) ones), judged.
  returned: always
  type: list
  elements: dict
  contains:
    signal:
      description: Signal name.
      type: str
      sample: error_rate_pct
    value:
      description: The value as given.
      type: raw
      sample: 31.2
    status:
      description:
        - V(problem) - behind a matched rule; V(unreachable) - the value is V(unreachable) or a reachability
          signal is false; V(observed) - no rule fired on it (not a verdict that it is fine).
      type: str
      sample: problem
    source:
      description: The O(sources) text, empty when none was given.
      type: str
      sample: CloudWatch ALB metrics over 60 s (598 requests)
rules:
  description: The rules table that was evaluated (the built-in one when O(rules) was omitted).
  returned: always
  type: list
  elements: dict
  sample:
    - id: partial_degradation
      severity: P1
      description: Partial service degradation (>5% error rate)
      when: {signal: error_rate_pct, op: ">", value: 5}
rules_source:
  description: V(built-in) or V(custom).
  returned: always
  type: str
  sample: built-in
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.svpms.incident_response.plugins.module_utils import severity


def main():
    module = AnsibleModule(
        argument_spec=dict(
            signals=dict(type='dict', required=True),
            rules=dict(type='list', elements='dict'),
            features=dict(type='dict'),
            sources=dict(type='dict', default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    rules = params['rules'] if params['rules'] is not None else severity.default_rules()
    try:
        result = severity.classify(params['signals'], rules=rules, features=params['features'],
                                   sources=params['sources'], now=time.time())
    except severity.RulesError as exc:
        module.fail_json(msg='Cannot classify: %s. Fix the table (triage_rules / triage_features in inventory) '
                             'or omit it to use the built-in one.' % exc)
    module.exit_json(changed=False, rules=rules,
                     rules_source='built-in' if params['rules'] is None else 'custom', **result)


if __name__ == '__main__':
    main()
