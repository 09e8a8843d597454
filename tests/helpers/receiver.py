"""An in-process loopback HTTP receiver for the notifier modules' tests.

A test server of ours, not a mock of our code: a real ThreadingHTTPServer on
127.0.0.1:<free port> that the modules reach over TCP. By default it answers
like the real services (the sandbox's stateful ``NotificationAPIs``:
PagerDuty Events v2 and REST, Slack Web API, Statuspage v1, a ticket webhook),
so a trigger really opens an incident that a later escalation finds.

On top of that a test can script answers per (method, path prefix), consumed
in order before the default takes over again::

    with Receiver() as rx:
        rx.script('POST', '/v2/enqueue', dict(status=429, body={...}, headers={'Retry-After': '1'}))
        ... run the module against rx.url ...
        assert [r.method for r in rx.requests] == ['POST', 'POST']

Every request is recorded in memory, unredacted (``rx.requests``: method,
path, query, headers with lower-case names, json/text body, time received).
"""

import os
import sys
import threading
import time

from .servers import REPO

sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox.receiver import NotificationAPIs, Receiver as _BaseReceiver  # noqa: E402

TS_BASE = 1700000000  # Slack ts of the first message: 1700000000.000100


class Recorded:
    """One request the receiver got."""

    def __init__(self, entry, received):
        self.method = entry['method']
        self.path = entry['path']
        self.query = entry['query']
        self.headers = entry['headers']
        self.json = entry['json']
        self.body = entry['body']
        self.service = entry['service']
        self.status = entry['status']
        self.received = received  # time.monotonic()

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return '<%s %s -> %s>' % (self.method, self.path, self.status)


class Receiver(_BaseReceiver):
    """The loopback receiver: start()/stop() or a context manager; ``url`` is its base URL."""

    def __init__(self, ts_base=TS_BASE):
        super().__init__('127.0.0.1', 0, NotificationAPIs(ts_base=ts_base))
        self._lock = threading.Lock()
        self._scripts = []     # [method, path prefix, [responses]]
        self._requests = []

    # ----------------------------------------------------------- scripting
    def script(self, method, path_prefix, *responses):
        """Answer the next len(responses) ``method`` requests whose path starts with ``path_prefix``.

        Each response is a dict: ``status`` (default 200), ``body`` (a JSON
        object, default none), ``headers`` (dict), ``delay`` (seconds to
        wait before answering, for timeout tests).
        """
        with self._lock:
            self._scripts.append([method.upper(), path_prefix, list(responses)])
        return self

    def respond(self, req):
        with self._lock:
            for method, prefix, queue in self._scripts:
                if queue and method == req.method and req.path.startswith(prefix):
                    answer = queue.pop(0)
                    return (self.apis.service_of(req.method, req.path), answer.get('status', 200),
                            answer.get('body'), answer.get('headers') or {}, answer.get('delay', 0))
        return super().respond(req)

    def record(self, entry):
        with self._lock:
            self._requests.append(Recorded(entry, time.monotonic()))

    # ------------------------------------------------------------ reading
    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def clear(self):
        """Forget the recorded requests and unused scripts (the services' state stays)."""
        with self._lock:
            self._requests = []
            self._scripts = []

    @property
    def state(self):
        """The services' state: PagerDuty incidents, Slack messages, Statuspage incidents, tickets."""
        return self.apis.snapshot()
