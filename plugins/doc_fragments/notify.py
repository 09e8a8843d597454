# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # HTTP options shared by every notifier (module_utils/notify.py).
    DOCUMENTATION = r'''
options:
  timeout:
    description:
      - Seconds to wait for each HTTP request (connecting, each read, and the whole answer), more than 0
        and at most 300.
    type: float
    default: 10
  max_attempts:
    description:
      - Attempts per HTTP request, 1 to 10. Only HTTP 429 (and 420), HTTP 5xx and connection errors are
        retried; any other answer is final.
      - Between attempts the module waits what the service's C(Retry-After) header asks (seconds or an
        HTTP date), or else a full-jitter exponential backoff.
    type: int
    default: 4
  validate_certs:
    description:
      - Verify the service's TLS certificate. Set to V(false) only for a local test receiver.
    type: bool
    default: true
  max_retry_after:
    description:
      - The longest C(Retry-After) wait, in seconds (0 to 3600), the module accepts. When a rate-limited
        service asks for a longer wait, the module fails at once with a message that says so, instead
        of blocking the incident run.
    type: float
    default: 30
notes:
  - Tokens and keys are never returned or logged, and never appear in error messages.
  - "Not configured (no token/key/URL, neither as an option nor in the environment) is not a failure - the
    task returns C(skipped=true) and the message C(skipped: <service> not configured ...), so a runbook
    works before every notifier is set up."
  - A failure names the service, the method and URL (without its query string) and what to check, for
    example the token on HTTP 401/403 or the id/URL on HTTP 404, with C(http_status),
    C(error_kind) (C(auth), C(not_found), C(rate_limited), C(server_error), C(rejected),
    C(unreachable), C(timeout), C(tls), C(api_error)) and C(attempts).
  - The whole task takes at most about O(max_attempts) * O(timeout) seconds plus the waits between
    attempts (each at most O(max_retry_after)).
'''
