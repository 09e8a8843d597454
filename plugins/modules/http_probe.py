#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: http_probe
short_description: Measure an HTTP endpoint's error rate and latency with a burst of requests
version_added: 1.0.0
description:
  - Sends O(count) GET or HEAD requests to O(url), at most O(concurrency) at a time, each with its
    own O(timeout), and reports the error rate, nearest-rank latency percentiles, a count per HTTP
    status and whether the endpoint answered at all.
  - An unhealthy service is data, not a failure - HTTP 5xx, timeouts and refused connections are
    counted and the task succeeds (RV(reachable=false) when nothing answered). The task fails only
    on bad input.
  - Redirects are not followed; a 3xx is reported as its status.
author: SVPMS Platform Team (@svpms)
options:
  url:
    description:
      - Absolute V(http://) or V(https://) URL, for example V(https://api.svpms.example.com/health).
      - Must not embed credentials (C(user:password@)); pass them in O(headers).
    type: str
    required: true
  count:
    description:
      - Number of requests to send, 1 to 1000.
    type: int
    default: 20
  concurrency:
    description:
      - Maximum requests in flight at once, 1 to 32.
    type: int
    default: 4
  timeout:
    description:
      - Per-request timeout in seconds (greater than 0, at most 300). It applies to connecting, to
        each read, and to the whole request including the body; a request over it counts as
        C(timeout).
    type: float
    default: 5
  method:
    description:
      - HTTP method. Only read-only methods are allowed.
    type: str
    choices: [GET, HEAD]
    default: GET
  headers:
    description:
      - Request headers, for example C(Authorization). Values are sent but never returned or logged;
        only the names appear in RV(header_names).
    type: dict
    default: {}
  expected_status:
    description:
      - HTTP statuses that count as success. Anything else is an error.
    type: list
    elements: int
    default: [200]
  validate_certs:
    description:
      - Verify the server's TLS certificate. A failed verification counts as a C(connection_error).
    type: bool
    default: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The probes are read-only GET/HEAD requests, so they are sent in check mode too and the
        results are the same.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - Latency is measured from sending the request to the end of the body (at most 1 MiB is read and
    discarded), for every request that got an HTTP answer, whatever its status.
  - The query string of O(url) is left out of RV(url), as it may carry tokens.
  - The probe takes at most about ceil(O(count) / O(concurrency)) * O(timeout) seconds (each request
    is bounded by O(timeout); connecting and reading the headers can each use up to O(timeout)).
'''

EXAMPLES = r'''
- name: Is the API answering, and how fast?
  svpms.incident_response.http_probe:
    url: https://api.svpms.example.com/health
  register: health

- name: Verify the resolution - error rate under 1 %, p95 under 500 ms
  ansible.builtin.assert:
    that:
      - health.reachable
      - health.error_rate_pct < 1
      - health.latency_p95_ms < 500

- name: Probe an authenticated endpoint harder
  svpms.incident_response.http_probe:
    url: https://api.svpms.example.com/v1/ping
    count: 200
    concurrency: 16
    timeout: 2
    headers:
      Authorization: "Bearer {{ probe_token }}"
    expected_status: [200, 204]
'''

RETURN = r'''
url:
  description: The probed URL without its query string.
  returned: always
  type: str
  sample: https://api.svpms.example.com/health
method:
  description: HTTP method used.
  returned: always
  type: str
  sample: GET
header_names:
  description: Names of the headers sent (values are never returned).
  returned: always
  type: list
  elements: str
  sample: [Authorization]
requests:
  description: Requests sent (O(count)).
  returned: always
  type: int
  sample: 20
completed:
  description: Requests that got an HTTP answer, whatever the status.
  returned: always
  type: int
  sample: 19
errors:
  description: Requests whose status is not in O(expected_status), plus timeouts and connection errors.
  returned: always
  type: int
  sample: 3
error_rate_pct:
  description: 100 * errors / requests, rounded to 4 decimals.
  returned: always
  type: float
  sample: 15.0
latency_p50_ms:
  description: Median latency (nearest rank) of the completed requests; V(null) when none completed.
  returned: always
  type: float
  sample: 41.2
latency_p95_ms:
  description: p95 latency (nearest rank) of the completed requests; V(null) when none completed.
  returned: always
  type: float
  sample: 180.7
latency_p99_ms:
  description: p99 latency (nearest rank) of the completed requests; V(null) when none completed.
  returned: always
  type: float
  sample: 242.9
status_counts:
  description: Requests per outcome - the HTTP status as a string, C(timeout) or C(connection_error).
  returned: always
  type: dict
  sample: {"200": 17, "503": 2, "timeout": 1}
reachable:
  description: V(false) when no request got any HTTP answer (all timed out or were refused).
  returned: always
  type: bool
  sample: true
sample_errors:
  description: Up to 5 distinct short error descriptions.
  returned: always
  type: list
  elements: str
  sample: ["HTTP 503 Service Unavailable (not in expected_status)", "timeout: no answer within 5s"]
duration_ms:
  description: Wall time of the whole probe in milliseconds.
  returned: always
  type: float
  sample: 1203.4
'''

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.svpms.incident_response.plugins.module_utils import http_probe  # noqa: E402

# Header values shorter than this are dropped from AnsibleModule's no_log list
# (which masks them as substrings anywhere in the output, mangling numbers such
# as a count of 1 when a header value is "1"). Values never reach the output
# anyway: the invocation is rebuilt below with every header value masked.
MIN_SCRUB_LENGTH = 6
MASK = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            count=dict(type='int', default=20),
            concurrency=dict(type='int', default=4),
            timeout=dict(type='float', default=5),
            method=dict(type='str', default='GET', choices=['GET', 'HEAD']),
            headers=dict(type='dict', default={}, no_log=True),
            expected_status=dict(type='list', elements='int', default=[200]),
            validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    headers = dict((str(k), '' if v is None else str(v)) for k, v in (params['headers'] or {}).items())
    module.no_log_values.difference_update(
        [v for v in list(module.no_log_values) if v in headers.values() and len(v) < MIN_SCRUB_LENGTH])
    masked = dict(params, url=http_probe.redact_url(params['url']),
                  headers=dict((k, MASK) for k in headers))
    invocation = dict(module_args=masked)

    def fail(msg):
        module.fail_json(msg=msg, invocation=invocation)

    error = http_probe.validate_url(params['url'])
    if error:
        fail(error)
    if not 1 <= params['count'] <= 1000:
        fail('count must be between 1 and 1000, got %d' % params['count'])
    if not 1 <= params['concurrency'] <= 32:
        fail('concurrency must be between 1 and 32, got %d' % params['concurrency'])
    if not 0 < params['timeout'] <= 300:
        fail('timeout must be more than 0 and at most 300 seconds, got %s' % params['timeout'])
    if not params['expected_status']:
        fail('expected_status must list at least one HTTP status')
    bad = [s for s in params['expected_status'] if not 100 <= s <= 599]
    if bad:
        fail('expected_status must hold HTTP statuses (100-599), got %s' % bad)
    for name in headers:
        if not name or any(ch in name for ch in ':\r\n ') or any(ch in headers[name] for ch in '\r\n'):
            fail('headers must map header names to single-line values; invalid header name %r' % name)

    summary = http_probe.run_probes(
        params['url'], count=params['count'], concurrency=params['concurrency'],
        timeout=params['timeout'], method=params['method'], headers=headers,
        validate_certs=params['validate_certs'], expected_status=params['expected_status'])
    module.exit_json(
        changed=False,
        url=http_probe.safe_url(params['url']),
        method=params['method'],
        header_names=sorted(headers),
        invocation=invocation,
        **summary
    )


if __name__ == '__main__':
    main()
