"""The notification receiver: PagerDuty Events v2 + REST, Slack Web API and Statuspage on one loopback port.

The sandbox's third process. It answers the requests of the collection's
notifier modules the way the real services do (status codes, JSON shapes,
auth schemes, errors), and is stateful enough for an incident's life cycle:

- PagerDuty Events API v2 (``POST .../v2/enqueue``): a trigger opens an
  incident (escalation level 1) or folds into the open one with the same
  dedup_key; acknowledge and resolve change its status. Answers 202.
- PagerDuty REST API (``GET .../incidents``, ``GET/PUT .../incidents/<id>``,
  ``GET .../oncalls``): ``Authorization: Token token=...``; PUT needs a
  ``From`` header and moves the escalation level (1-4, the seed's ladder).
- Slack Web API (``POST .../chat.postMessage``): ``Authorization: Bearer ...``;
  HTTP 200 with ``ok: false`` on errors like Slack; ``ts`` increments.
- Statuspage v1 (``.../pages/<page>/incidents[/<id>|/unresolved]``):
  ``Authorization: OAuth ...``; incidents are stored and updatable.
- A generic ticket webhook (``POST .../tickets``): 201 with a ticket id.

Routes match on the end of the path, so each service can have its own base
URL prefix (``/pagerduty-events``, ``/pagerduty``, ``/slack/api``,
``/statuspage/v1``) or none. ``GET /receiver/state`` shows the state.

``Receiver`` is the HTTP server; ``respond`` and ``record`` are the hooks a
subclass overrides (the sandbox process appends every request, auth values
redacted, to ``<state-dir>/notifications.jsonl``; the tests' receiver keeps
them in memory and can script responses). Stdlib only.
"""

import datetime
import json
import logging
import re
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import constants as C

log = logging.getLogger('svpms_sandbox.receiver')

MAX_BODY = 1024 * 1024
REDACTED = '<redacted>'
LADDER = {1: 'on-call engineer', 2: 'platform lead', 3: 'engineering manager', 4: 'CTO'}
POLICY = {'id': 'PSVPMS1', 'type': 'escalation_policy_reference', 'summary': 'SVPMS production',
          'self': 'https://api.pagerduty.com/escalation_policies/PSVPMS1'}
PD_SERVICE = {'id': 'PSVCAPI', 'type': 'service_reference', 'summary': 'svpms-api',
              'self': 'https://api.pagerduty.com/services/PSVCAPI'}
PD_SEVERITIES = ('critical', 'error', 'warning', 'info')
SP_STATUSES = ('investigating', 'identified', 'monitoring', 'resolved')
SP_COMPONENT_STATUSES = ('operational', 'degraded_performance', 'partial_outage', 'major_outage',
                         'under_maintenance')
SECRET_KEYS = re.compile(r'(token|secret|password|api_?key|routing_key|authorization|cookie)', re.I)


def utc_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def ladder_user(level):
    return {'id': 'PUSER%02d' % level, 'type': 'user_reference', 'summary': LADDER.get(level, 'level %d' % level),
            'self': 'https://api.pagerduty.com/users/PUSER%02d' % level}


class Request:
    """One received request, as recorded."""

    def __init__(self, method, path, query, headers, raw):
        self.method = method
        self.path = path
        self.query = query            # {name: [values]}
        self.headers = headers        # {lower-case name: value}
        self.raw = raw
        self.text = raw.decode('utf-8', 'replace')
        try:
            self.json = json.loads(self.text) if self.text.strip() else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower())

    def as_dict(self):
        return {'method': self.method, 'path': self.path, 'query': self.query, 'headers': dict(self.headers),
                'json': self.json, 'body': self.text if self.json is None else None}


class NotificationAPIs:
    """The four services' behaviour and state (thread-safe)."""

    def __init__(self, ts_base=None, max_level=len(LADDER)):
        self.lock = threading.Lock()
        self.ts_base = int(ts_base if ts_base is not None else time.time())
        self.max_level = max_level
        self.pd_incidents = {}      # id -> incident
        self.slack_messages = []
        self.slack_channels = {}    # name -> id
        self.statuspage = {}        # id -> incident
        self.tickets = []
        self._n = 0
        self.routes = [
            ('POST', r'(?:^|/)v2/enqueue$', 'pagerduty_events', self.pd_enqueue),
            ('GET', r'/pages/([^/]+)/incidents/unresolved$', 'statuspage', self.sp_unresolved),
            ('GET', r'/pages/([^/]+)/incidents$', 'statuspage', self.sp_list),
            ('POST', r'/pages/([^/]+)/incidents$', 'statuspage', self.sp_create),
            ('GET', r'/pages/([^/]+)/incidents/([^/]+)$', 'statuspage', self.sp_get),
            ('PATCH', r'/pages/([^/]+)/incidents/([^/]+)$', 'statuspage', self.sp_update),
            ('PUT', r'/pages/([^/]+)/incidents/([^/]+)$', 'statuspage', self.sp_update),
            ('GET', r'(?:^|/)incidents$', 'pagerduty_rest', self.pd_list),
            ('GET', r'(?:^|/)incidents/([^/]+)$', 'pagerduty_rest', self.pd_get),
            ('PUT', r'(?:^|/)incidents/([^/]+)$', 'pagerduty_rest', self.pd_put),
            ('GET', r'(?:^|/)oncalls$', 'pagerduty_rest', self.pd_oncalls),
            ('POST', r'(?:^|/)chat\.postMessage$', 'slack', self.slack_post),
            ('POST', r'(?:^|/)tickets?$', 'ticket', self.ticket),
        ]

    def _next(self):
        self._n += 1
        return self._n

    # ------------------------------------------------------------- dispatch
    def service_of(self, method, path):
        for m, pattern, service, _fn in self.routes:
            if re.search(pattern, path):
                return service
        return 'unknown'

    def handle(self, req):
        """-> (service, status, body object, extra headers)."""
        for method, pattern, service, fn in self.routes:
            match = re.search(pattern, req.path)
            if match and method == req.method:
                with self.lock:
                    status, body = fn(req, *match.groups())
                return service, status, body, {}
        service = self.service_of(req.method, req.path)
        if service != 'unknown':
            return service, 405, {'error': 'method %s not allowed on %s' % (req.method, req.path)}, {}
        return service, 404, {'error': 'no such route in the notification receiver: %s %s'
                              % (req.method, req.path)}, {}

    def snapshot(self):
        with self.lock:
            return {'pagerduty_incidents': [dict(i) for i in self.pd_incidents.values()],
                    'slack_messages': list(self.slack_messages),
                    'statuspage_incidents': [dict(i) for i in self.statuspage.values()],
                    'tickets': list(self.tickets)}

    # ------------------------------------------------------- PagerDuty Events
    @staticmethod
    def _pd_invalid(*errors):
        return 400, {'status': 'invalid event', 'message': 'Event object is invalid', 'errors': list(errors)}

    def _pd_open(self, key):
        for incident in self.pd_incidents.values():
            if incident['incident_key'] == key and incident['status'] != 'resolved':
                return incident
        return None

    def pd_enqueue(self, req):
        event = req.json
        if not isinstance(event, dict):
            return self._pd_invalid('Invalid JSON')
        if not event.get('routing_key'):
            return self._pd_invalid("'routing_key' is missing or blank")
        action = event.get('event_action')
        if action not in ('trigger', 'acknowledge', 'resolve'):
            return self._pd_invalid("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
        key = event.get('dedup_key')
        if action == 'trigger':
            payload = event.get('payload') if isinstance(event.get('payload'), dict) else {}
            errors = ["'payload.%s' is missing or blank" % f for f in ('summary', 'source', 'severity')
                      if not payload.get(f)]
            if payload.get('severity') and payload['severity'] not in PD_SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of %s)" % ', '.join(PD_SEVERITIES))
            if len(str(payload.get('summary') or '')) > 1024:
                errors.append("'payload.summary' is too long (max 1024 characters)")
            if errors:
                return self._pd_invalid(*errors)
            key = key or uuid.uuid4().hex
            incident = self._pd_open(key)
            if incident is None:
                n = self._next()
                incident_id = 'P%06d' % n
                incident = {
                    'id': incident_id, 'type': 'incident', 'incident_number': n,
                    'summary': '[#%d] %s' % (n, payload['summary']), 'title': payload['summary'],
                    'self': 'https://api.pagerduty.com/incidents/%s' % incident_id,
                    'html_url': 'https://svpms-sandbox.pagerduty.com/incidents/%s' % incident_id,
                    'incident_key': key, 'status': 'triggered',
                    'urgency': 'high' if payload['severity'] in ('critical', 'error') else 'low',
                    'created_at': utc_iso(), 'last_status_change_at': utc_iso(),
                    'service': dict(PD_SERVICE), 'escalation_policy': dict(POLICY),
                    'escalation_level': 1, 'assignments': [{'at': utc_iso(), 'assignee': ladder_user(1)}],
                    'alert_counts': {'all': 1, 'triggered': 1, 'resolved': 0},
                    'severity': payload['severity'],
                }
                self.pd_incidents[incident_id] = incident
            else:
                incident['alert_counts']['all'] += 1
                incident['alert_counts']['triggered'] += 1
        else:
            if not key:
                return self._pd_invalid("'dedup_key' is missing or blank")
            incident = self._pd_open(key)
            if incident is not None:
                incident['status'] = 'acknowledged' if action == 'acknowledge' else 'resolved'
                incident['last_status_change_at'] = utc_iso()
                if action == 'resolve':
                    incident['assignments'] = []
        return 202, {'status': 'success', 'message': 'Event processed', 'dedup_key': key}

    # --------------------------------------------------------- PagerDuty REST
    @staticmethod
    def _pd_auth(req):
        auth = req.header('authorization') or ''
        if not auth.startswith('Token token=') or len(auth) <= len('Token token='):
            return 401, {'error': {'message': 'Unauthorized', 'code': 2006}}
        return None

    @staticmethod
    def _pd_error(status, message, code, *errors):
        body = {'error': {'message': message, 'code': code}}
        if errors:
            body['error']['errors'] = list(errors)
        return status, body

    def pd_list(self, req):
        denied = self._pd_auth(req)
        if denied:
            return denied
        key = (req.query.get('incident_key') or [None])[0]
        statuses = req.query.get('statuses[]') or []
        found = [i for i in self.pd_incidents.values()
                 if (key is None or i['incident_key'] == key) and (not statuses or i['status'] in statuses)]
        return 200, {'incidents': [dict(i) for i in found], 'limit': 25, 'offset': 0, 'total': None,
                     'more': False}

    def pd_get(self, req, incident_id):
        denied = self._pd_auth(req)
        if denied:
            return denied
        incident = self.pd_incidents.get(incident_id)
        if incident is None:
            return self._pd_error(404, 'Not Found', 2100)
        return 200, {'incident': dict(incident)}

    def pd_put(self, req, incident_id):
        denied = self._pd_auth(req)
        if denied:
            return denied
        if '@' not in (req.header('from') or ''):
            return self._pd_error(400, 'Invalid Input Provided', 2001,
                                  'A valid email address is required in the From header.')
        incident = self.pd_incidents.get(incident_id)
        if incident is None:
            return self._pd_error(404, 'Not Found', 2100)
        change = (req.json or {}).get('incident') if isinstance(req.json, dict) else None
        if not isinstance(change, dict) or change.get('type') not in ('incident', 'incident_reference'):
            return self._pd_error(400, 'Invalid Input Provided', 2001,
                                  "incident.type must be 'incident' or 'incident_reference'")
        if incident['status'] == 'resolved':
            return self._pd_error(400, 'Incident Already Resolved', 2001)
        level = change.get('escalation_level')
        if level is not None:
            if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= self.max_level:
                return self._pd_error(400, 'Invalid Input Provided', 2001,
                                      'Escalation level must be between 1 and %d' % self.max_level)
            incident['escalation_level'] = level
            incident['assignments'] = [{'at': utc_iso(), 'assignee': ladder_user(level)}]
        if change.get('status') in ('acknowledged', 'resolved'):
            incident['status'] = change['status']
            incident['last_status_change_at'] = utc_iso()
        return 200, {'incident': dict(incident)}

    def pd_oncalls(self, req):
        denied = self._pd_auth(req)
        if denied:
            return denied
        return 200, {'oncalls': [{'escalation_policy': dict(POLICY), 'escalation_level': level,
                                  'user': ladder_user(level), 'schedule': None, 'start': None, 'end': None}
                                 for level in sorted(LADDER)],
                     'limit': 25, 'offset': 0, 'more': False, 'total': None}

    # ----------------------------------------------------------------- Slack
    def slack_post(self, req):
        auth = req.header('authorization') or ''
        if not auth.startswith('Bearer ') or len(auth) <= len('Bearer '):
            return 200, {'ok': False, 'error': 'not_authed'}
        msg = req.json if isinstance(req.json, dict) else {}
        channel = msg.get('channel')
        if not channel:
            return 200, {'ok': False, 'error': 'channel_not_found'}
        if not msg.get('text') and not msg.get('blocks'):
            return 200, {'ok': False, 'error': 'no_text'}
        if channel not in self.slack_channels:
            self.slack_channels[channel] = channel if re.match(r'^[CGD][A-Z0-9]{2,}$', channel) \
                else 'C%d' % (123 + len(self.slack_channels))
        ts = '%d.%06d' % (self.ts_base, 100 * (len(self.slack_messages) + 1))
        message = {'type': 'message', 'text': msg.get('text', ''), 'ts': ts, 'bot_id': 'BSANDBOX'}
        if msg.get('thread_ts'):
            message['thread_ts'] = msg['thread_ts']
        if msg.get('blocks'):
            message['blocks'] = msg['blocks']
        self.slack_messages.append(dict(message, channel=self.slack_channels[channel]))
        return 200, {'ok': True, 'channel': self.slack_channels[channel], 'ts': ts, 'message': message}

    # ------------------------------------------------------------ Statuspage
    @staticmethod
    def _sp_auth(req):
        auth = req.header('authorization') or ''
        if not auth.startswith('OAuth ') or len(auth) <= len('OAuth '):
            return 401, {'error': 'Could not authenticate'}
        return None

    def _sp_apply(self, incident, change):
        status = change.get('status') or incident['status']
        if status not in SP_STATUSES:
            return 422, {'error': 'status must be one of %s' % ', '.join(SP_STATUSES)}
        components = change.get('components') or {}
        if any(s not in SP_COMPONENT_STATUSES for s in components.values()):
            return 422, {'error': 'component status must be one of %s' % ', '.join(SP_COMPONENT_STATUSES)}
        now = utc_iso()
        incident['status'] = status
        incident['updated_at'] = now
        if status in ('monitoring', 'resolved'):
            incident['%s_at' % status] = now
        if change.get('impact_override'):
            incident['impact'] = incident['impact_override'] = change['impact_override']
        for cid in change.get('component_ids') or []:
            incident['components'].setdefault(cid, 'operational')
        incident['components'].update(components)
        incident['incident_updates'].insert(0, {
            'id': uuid.uuid4().hex[:12], 'incident_id': incident['id'], 'status': status,
            'body': change.get('body') or '', 'created_at': now, 'display_at': now,
            'deliver_notifications': bool(change.get('deliver_notifications', True)),
            'affected_components': [{'code': c, 'new_status': s} for c, s in sorted(components.items())]})
        return None

    def _sp_view(self, incident):
        view = dict(incident)
        view['components'] = [{'id': c, 'status': s} for c, s in sorted(incident['components'].items())]
        view['incident_updates'] = [dict(u) for u in incident['incident_updates']]
        return view

    def sp_create(self, req, page_id):
        denied = self._sp_auth(req)
        if denied:
            return denied
        change = (req.json or {}).get('incident') if isinstance(req.json, dict) else None
        if not isinstance(change, dict) or not change.get('name'):
            return 422, {'error': "name can't be blank"}
        incident_id = uuid.uuid4().hex[:12]
        incident = {'id': incident_id, 'page_id': page_id, 'name': change['name'], 'status': 'investigating',
                    'impact': change.get('impact_override') or 'none', 'impact_override': None,
                    'shortlink': 'https://stspg.io/%s' % incident_id[:5], 'created_at': utc_iso(),
                    'updated_at': utc_iso(), 'monitoring_at': None, 'resolved_at': None,
                    'postmortem_body': None, 'components': {}, 'incident_updates': []}
        error = self._sp_apply(incident, dict(change, status=change.get('status') or 'investigating'))
        if error:
            return error
        self.statuspage[incident_id] = incident
        return 201, self._sp_view(incident)

    def _sp_find(self, page_id, incident_id):
        incident = self.statuspage.get(incident_id)
        return incident if incident is not None and incident['page_id'] == page_id else None

    def sp_get(self, req, page_id, incident_id):
        denied = self._sp_auth(req)
        if denied:
            return denied
        incident = self._sp_find(page_id, incident_id)
        if incident is None:
            return 404, {'error': 'Not found'}
        return 200, self._sp_view(incident)

    def sp_update(self, req, page_id, incident_id):
        denied = self._sp_auth(req)
        if denied:
            return denied
        incident = self._sp_find(page_id, incident_id)
        if incident is None:
            return 404, {'error': 'Not found'}
        change = (req.json or {}).get('incident') if isinstance(req.json, dict) else None
        if not isinstance(change, dict):
            return 400, {'error': 'incident is missing'}
        error = self._sp_apply(incident, change)
        if error:
            return error
        return 200, self._sp_view(incident)

    def sp_list(self, req, page_id):
        denied = self._sp_auth(req)
        if denied:
            return denied
        found = [i for i in self.statuspage.values() if i['page_id'] == page_id]
        return 200, [self._sp_view(i) for i in reversed(found)]

    def sp_unresolved(self, req, page_id):
        denied = self._sp_auth(req)
        if denied:
            return denied
        found = [i for i in self.statuspage.values()
                 if i['page_id'] == page_id and i['status'] not in ('resolved', 'postmortem')]
        return 200, [self._sp_view(i) for i in reversed(found)]

    # ---------------------------------------------------------------- ticket
    def ticket(self, req):
        if not isinstance(req.json, dict) or not req.json.get('title'):
            return 422, {'error': 'title is required'}
        ticket_id = 'SVPMS-%d' % (len(self.tickets) + 1)
        self.tickets.append(dict(req.json, id=ticket_id))
        return 201, {'id': ticket_id, 'status': 'open'}


def redact_headers(headers):
    out = {}
    for name, value in headers.items():
        if name.lower() == 'authorization':
            # keep the scheme, so the record shows which one was used
            if value.startswith('Token token='):
                out[name] = 'Token token=' + REDACTED
            elif ' ' in value.strip():
                out[name] = '%s %s' % (value.split(' ', 1)[0], REDACTED)
            else:
                out[name] = REDACTED
        elif SECRET_KEYS.search(name):
            out[name] = REDACTED
        else:
            out[name] = value
    return out


def redact_body(value):
    if isinstance(value, dict):
        return dict((k, REDACTED if SECRET_KEYS.search(str(k)) and v else redact_body(v)) for k, v in value.items())
    if isinstance(value, list):
        return [redact_body(v) for v in value]
    return value


class Receiver:
    """ThreadingHTTPServer on host:port (0 = a free port) answering with ``respond``."""

    def __init__(self, host=C.HOST, port=0, apis=None, ts_base=None):
        self.host = host
        self.port = port
        self.apis = apis or NotificationAPIs(ts_base=ts_base)
        self.server = None
        self._thread = None
        self.count = 0
        self._count_lock = threading.Lock()

    @property
    def url(self):
        return 'http://%s:%d' % (self.host, self.port)

    # ---------------------------------------------------------------- hooks
    def respond(self, req):
        """-> (service, status, body object, extra headers, delay seconds)."""
        service, status, body, headers = self.apis.handle(req)
        return service, status, body, headers, 0

    def record(self, entry):
        """Called once per request with {ts, service, method, path, query, headers, json, body, status}."""

    # --------------------------------------------------------------- server
    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            server_version = 'svpms-notification-receiver/1.0'

            def log_message(self, *args):  # no per-request noise on stderr
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(min(length, MAX_BODY)) if length else b''
                req = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                              dict((k.lower(), v) for k, v in self.headers.items()), raw)
                if parts.path.rstrip('/') == '/receiver/state':
                    return self._send(200, dict(receiver.apis.snapshot(), requests=receiver.count), {})
                service, status, body, headers, delay = receiver.respond(req)
                with receiver._count_lock:
                    receiver.count += 1
                entry = dict(req.as_dict(), ts=utc_iso(), service=service, status=status)
                try:
                    receiver.record(entry)
                except Exception as exc:  # recording must never break an answer
                    log.warning('could not record a request: %s', exc)
                if delay:
                    time.sleep(delay)
                self._send(status, body, headers)

            def _send(self, status, body, headers):
                data = b'' if body is None else json.dumps(body).encode('utf-8')
                try:
                    self.send_response(status)
                    self.send_header('Content-Type', 'application/json; charset=utf-8')
                    self.send_header('Content-Length', str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, str(value))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815 - http.server API

        return Handler

    def bind(self):
        self.server = ThreadingHTTPServer((self.host, self.port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        return self

    def start(self):
        """Serve in a background thread (tests)."""
        if self.server is None:
            self.bind()
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1},
                                        name='notification-receiver', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SandboxReceiver(Receiver):
    """The sandbox process: appends every request (auth values redacted) to a JSONL file."""

    def __init__(self, port, journal_path):
        super().__init__(C.HOST, port)
        self.journal_path = journal_path
        self._journal_lock = threading.Lock()

    def record(self, entry):
        entry = dict(entry, headers=redact_headers(entry['headers']), json=redact_body(entry['json']),
                     query=redact_body(entry['query']))
        line = json.dumps(entry, sort_keys=True) + '\n'
        with self._journal_lock:
            with open(self.journal_path, 'a') as fh:
                fh.write(line)


def run(port, journal_path):
    """Foreground entry point for `python -m svpms_sandbox receiver`."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(threadName)s %(message)s')
    receiver = SandboxReceiver(port, journal_path)
    try:
        receiver.bind()
    except OSError as exc:
        log.error('cannot listen on %s:%d: %s', C.HOST, port, exc)
        return 1

    def on_signal(signum, _frame):
        log.info('signal %d: stopping', signum)
        threading.Thread(target=receiver.server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info('notification receiver listening on %s, recording to %s', receiver.url, journal_path)
    try:
        receiver.server.serve_forever(poll_interval=0.2)
    finally:
        receiver.server.server_close()
        log.info('notification receiver stopped after %d requests', receiver.count)
    return 0
