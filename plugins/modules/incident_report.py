#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: incident_report
short_description: Write the post-incident report (Markdown, self-contained HTML, PNG charts) of an incident
version_added: 1.0.0
description:
  - Reads an incident directory - C(summary.json) (required), C(timeline.jsonl) and, when present,
    C(state.json) (C(severity) P0-P3, C(detected_at), C(resolved_at), C(impact_started_at)) - and writes
    the post-incident report next to them, C(report.md) (it replaces the short report the runbook wrote),
    C(report.html) and the charts C(chart_error_rate.png) and C(chart_latency_p95.png).
  - The report holds a summary (severity, outcome, duration, time to detect, time to mitigate, time to
    verify), the error rate and p95 latency over the incident window with the detection, mitigation and
    verification moments marked and the SLO thresholds drawn, what the runbook did (symptom, decision,
    mitigation with before/after, verification rounds), the timeline as a table (time, phase, task,
    status, duration, before and after of each change), the evidence gathered (findings, the
    measurements the runbook took, error signatures with a sample) and the post-incident checklist of
    the incident response playbook as action items with due dates.
  - "Times, all UTC. B(Impact began) - C(state.json) C(impact_started_at), else the first error logged
    (earliest C(first_seen) of the error signatures, a lower bound since the log search has a window).
    B(Detected) - C(state.json) C(detected_at), else the first time a runbook decided that the symptom
    was present (timeline), else the summary's C(started_at). B(Mitigation started) - the summary's
    C(mitigation.started_at). B(Verified) - C(verification.verified_at). B(Resolved) - C(state.json)
    C(resolved_at), else the verification time when it passed."
  - "Time to detect = detected - impact began; time to mitigate = mitigation started - detected; time to
    verify = verified - mitigation started; duration = resolved - impact began (or - detected when the
    impact start is unknown). Unknown inputs give V(null), never a guess."
  - The charts come from O(metrics_series) when given (the C(series) return of
    M(svpms.incident_response.service_metrics_info) over the incident window). Without it they are built
    from the timeline - the error rates and latencies the runbook observed during detection and
    verification - and the report says which source was used and why.
  - Action items due dates count from the resolution (24 hours, 1 week, 1 month = 30 days); for an
    unresolved incident from the last record. The post-mortem item is listed for P0 and P1 only; when no
    severity is recorded it is listed with a note to classify the incident first.
  - A B(local record writer) - it reads and writes files in O(incident_dir) on the host it runs on and
    calls no API. Files are only rewritten when their content changes (unchanged files keep their
    modification time), so a second run reports V(changed=false).
  - Secrets never reach the report. The inputs are already redacted by the runbook, and every value is
    redacted again (keys such as password, secret, token, key, authorization; C(key=value) pairs,
    C(Authorization) headers, bearer tokens, URL passwords and AWS access key ids inside free text) and
    then escaped for Markdown and HTML.
  - C(report.html) is self-contained - inline CSS, charts embedded as C(data:) URIs, no script, no
    external resource (a Content-Security-Policy forbids loading any) - so it can be attached to a
    ticket or mailed.
author: SVPMS Platform Team (@svpms)
options:
  incident_dir:
    description:
      - The incident's record directory, C(<incident_root>/<incident_id>). It must exist and hold
        C(summary.json).
    type: path
    required: true
  metrics_series:
    description:
      - The C(series) return of M(svpms.incident_response.service_metrics_info) over the incident window
        (keys such as V(requests), V(errors_5xx), V(latency_p95_ms) or V(latency_avg_ms); each a list of
        C({timestamp, value})).
      - The error rate is computed per period as 100 * C(errors_5xx) / C(requests) (C(errors_elb_5xx) added
        to both when present). Latency uses V(latency_p95_ms), else V(latency_avg_ms), labelled as such.
      - Omit it, or leave it empty, to chart what the timeline holds.
    type: dict
  metrics_error:
    description:
      - Why O(metrics_series) is missing, for example the message of a failed
        M(svpms.incident_response.service_metrics_info) call. Shown in the report next to the chart source.
    type: str
  thresholds:
    description:
      - The SLO and symptom thresholds drawn on the charts.
    type: dict
    default: {}
    suboptions:
      max_error_rate_pct:
        description: Resolved when the 5xx error rate is below this (seed - 1%).
        type: float
        default: 1.0
      max_p95_ms:
        description: Resolved when the p95 latency is below this, in milliseconds (seed - 500 ms).
        type: float
        default: 500.0
      symptom_error_rate_pct:
        description: The symptom of scenario 1 - error rate above this (seed - 2%).
        type: float
        default: 2.0
      symptom_p95_ms:
        description:
          - The symptom of a latency scenario - p95 above this, in milliseconds (seed scenario 2 - 1000 ms).
          - When set, the latency chart draws it and the report names it as the symptom instead of the error rate.
        type: float
      symptom_text:
        description:
          - The symptom of a scenario that is neither an error rate nor a latency, in words, for example
            V(logins failing >= 5 % (synthetic login)) for scenario 3.
          - When set, the report names it as the symptom and the charts draw no symptom line.
        type: str
  formats:
    description:
      - Which files to write. V(png) writes the two charts; V(html) embeds the charts in the page even
        without V(png).
      - Without the Python library matplotlib no chart is drawn; the Markdown and HTML are written and say
        "install matplotlib for charts", and the module warns.
    type: list
    elements: str
    choices: [md, html, png]
    default: [md, html, png]
  title:
    description:
      - "Title of the report. Defaults to C(Incident <id>: <scenario> on <service>)."
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Renders everything in memory and writes nothing; C(changed) says whether any file would change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
requirements:
  - matplotlib (for the charts only; the report is written without it)
notes:
  - Runs where the incident records are, usually the controller (C(connection=local)). It never calls a network service.
  - Writes files with mode C(0640) (an existing file keeps its mode), atomically (temporary file and rename).
seealso:
  - module: svpms.incident_response.service_metrics_info
    description: Reads the metric series over the incident window.
'''

EXAMPLES = r'''
- name: Read the error rate and latency over the incident window
  svpms.incident_response.service_metrics_info:
    load_balancer: app/svpms-prod-alb/50dc6c495c0c9188
    target_group: targetgroup/svpms-api/73e2d6bc24d8a067
    start_time: '2026-02-13T09:54:00Z'
    end_time: '2026-02-13T10:40:00Z'
  register: window_metrics
  ignore_errors: true

- name: Write the post-incident report
  svpms.incident_response.incident_report:
    incident_dir: /srv/incidents/20260213T100400Z-high-error-rate-svpms-api
    metrics_series: "{{ window_metrics.series if window_metrics is succeeded else omit }}"
    metrics_error: "{{ window_metrics.msg if window_metrics is failed else omit }}"
    thresholds:
      max_error_rate_pct: 1.0
      max_p95_ms: 500
      symptom_error_rate_pct: 2.0
  register: post_incident

- name: Say where the report is
  ansible.builtin.debug:
    msg: "Report: {{ post_incident.report_html }}; time to mitigate {{ post_incident.summary.time_to_mitigate_seconds }} s"

- name: Only the Markdown, charts from the timeline
  svpms.incident_response.incident_report:
    incident_dir: incidents/demo-20261127T035301Z-high-error-rate
    formats: [md]
'''

RETURN = r'''
report_md:
  description: Path of C(report.md); V(null) unless V(md) is in O(formats).
  returned: always
  type: str
  sample: /srv/incidents/20260213T100400Z-high-error-rate-svpms-api/report.md
report_html:
  description: Path of the self-contained C(report.html); V(null) unless V(html) is in O(formats).
  returned: always
  type: str
  sample: /srv/incidents/20260213T100400Z-high-error-rate-svpms-api/report.html
charts:
  description: Paths of the PNG charts written (or that would be written in check mode); empty without
    V(png) in O(formats) or without matplotlib.
  returned: always
  type: list
  elements: str
  sample:
    - /srv/incidents/20260213T100400Z-high-error-rate-svpms-api/chart_error_rate.png
    - /srv/incidents/20260213T100400Z-high-error-rate-svpms-api/chart_latency_p95.png
files_changed:
  description: Names of the files that were (in check mode, would be) rewritten.
  returned: always
  type: list
  elements: str
  sample: [report.html, report.md]
chart_source:
  description: Where the chart data came from - V(metrics) (O(metrics_series)), V(timeline) (what the runbook
    observed) or V(none).
  returned: always
  type: str
  sample: metrics
chart_note:
  description: The sentence the report prints about the chart source.
  returned: always
  type: str
  sample: "From the timeline: the error rates and latencies the runbook observed during detection and verification
    (timeline), because no metrics series was given."
summary:
  description: The incident's numbers. Times in seconds, V(null) when an input is missing.
  returned: always
  type: dict
  contains:
    severity:
      description: V(P0) to V(P3) from C(state.json); V(null) when not recorded.
      type: str
      sample: P1
    outcome:
      description: The outcome the runbook recorded (for example V(recovered), V(not_recovered)).
      type: str
      sample: recovered
    duration_seconds:
      description: Resolved - impact began (or - detected when the impact start is unknown); V(null) while unresolved.
      type: float
      sample: 31.7
    time_to_detect_seconds:
      description: Detected - impact began.
      type: float
      sample: 8.1
    time_to_mitigate_seconds:
      description: Mitigation started - detected.
      type: float
      sample: 1.6
    time_to_verify_seconds:
      description: Verified - mitigation started.
      type: float
      sample: 22.0
    impact_started_at:
      description: Impact began, ISO 8601 UTC.
      type: str
      sample: '2026-11-27T04:07:45.283Z'
    detected_at:
      description: Detected, ISO 8601 UTC.
      type: str
      sample: '2026-11-27T04:07:53.388Z'
    mitigation_started_at:
      description: Mitigation started, ISO 8601 UTC.
      type: str
      sample: '2026-11-27T04:07:55Z'
    verified_at:
      description: Verification ended, ISO 8601 UTC.
      type: str
      sample: '2026-11-27T04:08:17Z'
    resolved_at:
      description: Resolved, ISO 8601 UTC; V(null) while unresolved.
      type: str
      sample: '2026-11-27T04:08:17Z'
action_items:
  description: The post-incident checklist with due dates, in order.
  returned: always
  type: list
  elements: dict
  contains:
    phase:
      description: V(24h), V(1w) or V(1m).
      type: str
      sample: 1w
    item:
      description: What to do.
      type: str
      sample: Conduct post-mortem (P1)
    due:
      description: Due date, ISO 8601 UTC.
      type: str
      sample: '2026-12-04T04:08:17Z'
'''

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import incident_report as report  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec=dict(
            incident_dir=dict(type='path', required=True),
            metrics_series=dict(type='dict'),
            metrics_error=dict(type='str'),
            thresholds=dict(type='dict', default={}, options=dict(
                max_error_rate_pct=dict(type='float', default=1.0),
                max_p95_ms=dict(type='float', default=500.0),
                symptom_error_rate_pct=dict(type='float', default=2.0),
                symptom_p95_ms=dict(type='float'),
                symptom_text=dict(type='str'),
            )),
            formats=dict(type='list', elements='str', choices=list(report.FORMATS),
                         default=list(report.FORMATS)),
            title=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    incident_dir = module.params['incident_dir']
    formats = module.params['formats']
    if not formats:
        module.fail_json(msg='formats must name at least one of md, html, png')
    try:
        built = report.build_report(incident_dir, series=module.params['metrics_series'] or None,
                                    thresholds=module.params['thresholds'], formats=formats,
                                    title=module.params['title'], metrics_error=module.params['metrics_error'])
    except report.IncidentError as exc:
        module.fail_json(msg=str(exc), incident_dir=incident_dir)
    try:
        changed_files = report.write_files(incident_dir, built['files'], check_mode=module.check_mode)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot write the report in %s: %s (check the directory permissions)'
                         % (incident_dir, exc), incident_dir=incident_dir)
    for warning in built['warnings']:
        module.warn(warning)

    def path_of(name):
        return os.path.join(incident_dir, name) if name in built['files'] else None

    module.exit_json(
        changed=bool(changed_files),
        report_md=path_of(report.REPORT_MD),
        report_html=path_of(report.REPORT_HTML),
        charts=[os.path.join(incident_dir, name) for name in built['charts']],
        files_changed=changed_files,
        chart_source=built['chart_source'],
        chart_note=built['chart_note'],
        summary=built['summary'],
        action_items=built['action_items'],
    )


if __name__ == '__main__':
    main()
