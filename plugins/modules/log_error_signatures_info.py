#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: log_error_signatures_info
short_description: Group the errors of a CloudWatch Logs group into signatures
version_added: 1.0.0
description:
  - Reads error events from a CloudWatch Logs group over a time window with C(FilterLogEvents)
    (following C(nextToken)), and groups them into signatures, most frequent first, so that
    thousands of log lines read as "3 distinct errors".
  - A Python traceback's signature is its exception type and its innermost application frame
    C(file:function) (library and standard-library frames skipped; line numbers and the exception
    message left out). Any other message's signature is its shape - UUIDs, emails, IP addresses,
    hex ids, quoted values, timestamps and numbers replaced by placeholders.
  - Every event is also classified client-side - the server-side O(filter_pattern) is not trusted
    to exclude the rest. Events without an error marker (a traceback, an exception line such as
    C(ValueError) followed by a message, an upper-case C(ERROR)/C(CRITICAL)/C(FATAL)/C(SEVERE) level, or a JSON
    C(level) of error/critical/fatal) are dropped.
  - Reading stops at O(max_events) events or O(max_pages) pages, whichever comes first; then
    RV(truncated=true).
author: SVPMS Platform Team (@svpms)
options:
  log_group:
    description:
      - Name of the log group, for example V(/ecs/svpms-api).
    type: str
    required: true
  log_stream_prefix:
    description:
      - Only read streams whose name starts with this prefix (C(logStreamNamePrefix)), for example
        V(api/) for one container. Also enforced client-side.
    type: str
  filter_pattern:
    description:
      - CloudWatch Logs filter pattern sent with the request.
      - The default bare word V(ERROR) (case-sensitive) selects events containing it. Real CloudWatch
        supports the full pattern syntax, for example V(?ERROR ?Traceback ?Exception) to also catch
        tracebacks logged without the word ERROR. The moto stand-in honours only bare words and
        quoted phrases and matches everything for other patterns; the client-side check still drops
        non-errors.
      - An empty string sends no pattern (every event is read, then classified client-side).
    type: str
    default: ERROR
  window_seconds:
    description:
      - Length of the window in seconds, ending at O(end_time) (default now). Ignored when
        O(start_time) is set.
    type: int
    default: 900
  start_time:
    description:
      - Start of the window, ISO 8601 (no offset means UTC) or epoch seconds.
    type: str
  end_time:
    description:
      - End of the window, ISO 8601 or epoch seconds. Defaults to now.
    type: str
  max_events:
    description:
      - Stop after reading this many events (1 to 100000).
    type: int
    default: 5000
  max_pages:
    description:
      - Stop after this many C(FilterLogEvents) pages (1 to 1000). CloudWatch may return empty pages
        while it searches; this bounds the time spent.
    type: int
    default: 50
  sample_chars:
    description:
      - Truncate each sample to this many characters (head and tail kept, so the exception line at
        the end of a long traceback survives). 100 to 100000.
    type: int
    default: 2000
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - IAM action used - C(logs:FilterLogEvents).
  - A traceback is grouped correctly only when it is logged as one event (multi-line logging
    configured in the log driver, or JSON logs with the traceback in a field such as C(exc_info)).
  - Obvious credentials in samples (Bearer/Basic values, C(password=), C(token=), C(api_key=) and
    similar) are replaced by C(<redacted>).
'''

EXAMPLES = r'''
- name: What is the API failing with, over the last 15 minutes?
  svpms.incident_response.log_error_signatures_info:
    log_group: /ecs/svpms-api
    region: eu-west-1
  register: errors

- name: Show the top three
  ansible.builtin.debug:
    msg: "{{ item.count }} x {{ item.signature }}"
  loop: "{{ errors.signatures[:3] }}"

- name: Since the deploy, with the full CloudWatch pattern syntax
  svpms.incident_response.log_error_signatures_info:
    log_group: /ecs/svpms-api
    log_stream_prefix: api/
    filter_pattern: '?ERROR ?Traceback ?Exception'
    start_time: '2026-02-13T10:04:00Z'
    max_events: 20000
'''

RETURN = r'''
signatures:
  description: Distinct error signatures, sorted by count (descending), then first seen.
  returned: always
  type: list
  elements: dict
  contains:
    signature:
      description: C(<ExceptionType> at <file>:<function>) for tracebacks, otherwise the message shape.
      type: str
      sample: OperationalError at /app/svpms/db/pool.py:acquire
    exception_type:
      description: Exception type, V(null) for a message without one.
      type: str
      sample: OperationalError
    top_frame:
      description: Innermost application frame C(file:function), V(null) for a message without a traceback.
      type: str
      sample: /app/svpms/db/pool.py:acquire
    count:
      description: Number of error events with this signature.
      type: int
      sample: 812
    sample:
      description: The most recent event's message, truncated to O(sample_chars), credentials redacted.
      type: str
      sample: "ERROR request failed\nTraceback (most recent call last):\n..."
    first_seen:
      description: Timestamp of the first event, ISO 8601 UTC.
      type: str
      sample: '2026-02-13T10:01:12.345Z'
    last_seen:
      description: Timestamp of the last event, ISO 8601 UTC.
      type: str
      sample: '2026-02-13T10:14:59.001Z'
events_scanned:
  description: Events read from CloudWatch Logs (before the client-side error check).
  returned: always
  type: int
  sample: 1024
error_events:
  description: Events counted as errors (the sum of the signature counts).
  returned: always
  type: int
  sample: 1019
truncated:
  description: V(true) when O(max_events) or O(max_pages) stopped the reading before the end of the window.
  returned: always
  type: bool
  sample: false
pages:
  description: FilterLogEvents requests made.
  returned: always
  type: int
  sample: 2
window:
  description: The time range read.
  returned: always
  type: dict
  contains:
    start:
      description: Start, ISO 8601 UTC.
      type: str
      sample: '2026-02-13T10:00:00Z'
    end:
      description: End, ISO 8601 UTC.
      type: str
      sample: '2026-02-13T10:15:00Z'
    duration_seconds:
      description: Length in seconds.
      type: int
      sample: 900
'''

from ansible_collections.svpms.incident_response.plugins.module_utils import cloudwatch as cw  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils import signatures as sigs  # noqa: E402
from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (  # noqa: E402
    AWSError,
    AWSModule,
)

MAX_PAGE_LIMIT = 10000  # FilterLogEvents' own cap per page


def read_events(client, params, start_ms, end_ms):
    """Page through FilterLogEvents; returns (events, pages, truncated)."""
    request = dict(logGroupName=params['log_group'], startTime=start_ms, endTime=end_ms)
    if params['filter_pattern']:
        request['filterPattern'] = params['filter_pattern']
    if params['log_stream_prefix']:
        request['logStreamNamePrefix'] = params['log_stream_prefix']
    max_events = params['max_events']
    events = []
    pages = 0
    while True:
        request['limit'] = min(MAX_PAGE_LIMIT, max_events - len(events))
        page = client.call('filter_log_events', **request)
        pages += 1
        events.extend(page.get('events', []))
        token = page.get('nextToken')
        if len(events) > max_events:
            return events[:max_events], pages, True
        if not token:
            return events, pages, False
        if len(events) >= max_events or pages >= params['max_pages']:
            return events, pages, True
        request['nextToken'] = token


def main():
    module = AWSModule(
        argument_spec=dict(
            log_group=dict(type='str', required=True),
            log_stream_prefix=dict(type='str'),
            filter_pattern=dict(type='str', default='ERROR'),
            window_seconds=dict(type='int', default=900),
            start_time=dict(type='str'),
            end_time=dict(type='str'),
            max_events=dict(type='int', default=5000),
            max_pages=dict(type='int', default=50),
            sample_chars=dict(type='int', default=2000),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for option, low, high in (('max_events', 1, 100000), ('max_pages', 1, 1000),
                              ('sample_chars', 100, 100000)):
        if not low <= params[option] <= high:
            module.fail_json(msg='%s must be between %d and %d, got %d'
                             % (option, low, high, params[option]))
    if not params['log_group'].strip():
        module.fail_json(msg='log_group must not be empty')
    try:
        start, end = cw.resolve_window(params['window_seconds'], params['start_time'],
                                       params['end_time'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    client = module.client('logs')
    try:
        events, pages, truncated = read_events(client, params, int(start * 1000), int(end * 1000))
    except AWSError as err:
        module.fail_aws(err, log_group=params['log_group'])

    prefix = params['log_stream_prefix']
    if prefix:  # do not rely on the backend honouring logStreamNamePrefix
        events = [e for e in events if (e.get('logStreamName') or '').startswith(prefix)]
    signatures, error_events = sigs.group_events(events, sample_chars=params['sample_chars'])
    module.exit_json(
        changed=False,
        signatures=signatures,
        events_scanned=len(events),
        error_events=error_events,
        truncated=truncated,
        pages=pages,
        window=dict(start=cw.iso(start), end=cw.iso(end), duration_seconds=int(round(end - start))),
    )


if __name__ == '__main__':
    main()
