# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Error-log signatures, pure and dependency free.

A *signature* is what stays the same between two occurrences of the same
bug, so that 4,000 log lines become "3 distinct errors, this one 3,812 times".

* Python tracebacks: ``<ExceptionType> at <file>:<function>`` where the frame
  is the innermost *application* frame (the last ``File "...", line N, in f``
  entry that is not in site-packages/dist-packages, the standard library or
  ``<frozen ...>``; the innermost frame of all if every frame is library
  code). Line numbers and the exception message are left out, so a deploy
  that shifts lines, or an id in the message, does not split a signature. For
  chained exceptions ("During handling of the above exception...") the last
  traceback - the one that was finally raised - is used.
* Anything else: the message *shape* - the first non-empty line with UUIDs,
  emails, IPv4 addresses (and ports), hex ids, quoted values, ISO timestamps
  and numbers replaced by ``<uuid>``, ``<email>``, ``<ip>``, ``<hex>``,
  ``<str>``, ``<ts>`` and ``<num>``.

JSON log lines (``{"level": "error", "message": ..., "exc_info": ...}``) are
unpacked first: the traceback field, if any, is used, otherwise the message.

``is_error`` is the client-side check that an event really is an error
(never trust a server-side filter pattern to have excluded the rest).
``group_events`` counts events per signature, keeps first/last seen and one
sample per signature (the most recent occurrence), truncated to N
characters (head and tail kept, so the exception line at the bottom of a long
traceback survives), with obvious credentials (Authorization/Bearer values,
``password=...``, ``token=...``, ``api_key=...``) redacted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re

TRACEBACK_HEADER = 'Traceback (most recent call last):'
SIGNATURE_MAX_CHARS = 300
DEFAULT_SAMPLE_CHARS = 2000
TRUNCATION_MARKER = '\n...[truncated]...\n'

_FRAME_RE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)', re.M)
# "pkg.mod.SomeError: message" or "SomeError" alone on the line ending a traceback.
_EXC_LINE_RE = re.compile(
    r'^(?P<type>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)(?::\s?(?P<msg>.*))?$')
_EXC_MARKER_RE = re.compile(
    r'^\s*(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure|Fault)'
    r'(?::|\s*$)', re.M)
_LEVEL_RE = re.compile(r'\b(?:ERROR|CRITICAL|FATAL|SEVERE)\b')
_LIBRARY_PATH_RE = re.compile(
    r'(?:site-packages/|dist-packages/|/lib/python\d(?:\.\d+)?/|^<frozen |^<string>$)')
_JSON_TRACE_FIELDS = ('exc_info', 'exception', 'stack_trace', 'stacktrace', 'traceback', 'stack',
                      'error.stack', 'exc_text')
_JSON_MESSAGE_FIELDS = ('message', 'msg', 'event', 'error', 'log')
_JSON_LEVEL_FIELDS = ('level', 'levelname', 'severity', 'log.level', 'loglevel')
_ERROR_LEVELS = frozenset(['error', 'err', 'critical', 'crit', 'fatal', 'alert', 'emergency',
                           'emerg', 'severe'])

# Order matters: the most specific shapes first.
_SHAPE_RULES = (
    ('<ts>', re.compile(
        r'\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\b')),
    ('<uuid>', re.compile(
        r'\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b')),
    ('<email>', re.compile(r'\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b')),
    ('<ip>', re.compile(r'\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b')),
    ('<str>', re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')),
    ('<hex>', re.compile(r'\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])'
                         r'[0-9a-fA-F]{8,}\b')),
    # A number glued to a unit stays a number: 2.5s -> <num>s; v2 and md5 stay as they are.
    ('<num>', re.compile(r'(?<![A-Za-z0-9.])[-+]?\d+(?:\.\d+)?')),
)

_REDACT_RULES = (
    (re.compile(r'(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}'), r'\1 <redacted>'),
    (re.compile(r'(?i)(authorization|password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key'
                r'|client[_-]?secret|session[_-]?id|cookie)(["\']?\s*[:=]\s*["\']?)'
                r'(?!<redacted>)[^\s"\',;&}]+'),
     r'\1\2<redacted>'),
)


def redact(text):
    """Mask obvious credentials in free text (best effort, never raises)."""
    if not text:
        return text
    for pattern, repl in _REDACT_RULES:
        text = pattern.sub(repl, text)
    return text


def _from_json(message):
    """(text_to_classify, level) for a JSON log line, or (message, None)."""
    stripped = message.strip()
    if not (stripped.startswith('{') and stripped.endswith('}')):
        return message, None
    try:
        doc = json.loads(stripped)
    except ValueError:
        return message, None
    if not isinstance(doc, dict):
        return message, None

    def field(names):
        for name in names:
            value = doc.get(name)
            if value not in (None, ''):
                return value
        return None

    level = field(_JSON_LEVEL_FIELDS)
    trace = field(_JSON_TRACE_FIELDS)
    text = field(_JSON_MESSAGE_FIELDS)
    if isinstance(trace, list):
        trace = ''.join(str(x) for x in trace)
    parts = [str(x) for x in (text, trace) if x is not None and not isinstance(x, (dict, list))]
    return ('\n'.join(parts) if parts else message), (str(level) if level is not None else None)


def is_error(message):
    """True when a log message is an error by our own reading of it.

    Markers: a Python traceback, an exception line (``FooError: ...``), an
    upper-case ERROR/CRITICAL/FATAL/SEVERE level word, or a JSON ``level``
    of error/critical/fatal. A JSON line with a non-error level (info, warn)
    is not an error even if its text mentions one.
    """
    if not message:
        return False
    text, level = _from_json(message)
    if level is not None:
        return level.strip().lower() in _ERROR_LEVELS
    return bool(TRACEBACK_HEADER in text or _LEVEL_RE.search(text) or _EXC_MARKER_RE.search(text))


def is_library_path(path):
    """True for third-party, standard-library and synthetic frames."""
    return bool(_LIBRARY_PATH_RE.search(path.replace('\\', '/')))


def parse_traceback(text):
    """``(exception_type, top_frame)`` from the last traceback in ``text``, or None."""
    idx = text.rfind(TRACEBACK_HEADER)
    if idx < 0:
        return None
    block = text[idx + len(TRACEBACK_HEADER):]
    frames = [(m.group('file'), m.group('func'), m.end()) for m in _FRAME_RE.finditer(block)]
    if not frames:
        return None
    app = [f for f in frames if not is_library_path(f[0])]
    chosen = (app or frames)[-1]
    top_frame = '%s:%s' % (chosen[0], chosen[1])
    exception_type = None
    rest = block[frames[-1][2]:]
    for line in rest.splitlines():
        if not line.strip() or line.startswith((' ', '\t')):
            continue  # source lines and carets are indented
        match = _EXC_LINE_RE.match(line.strip())
        if match:
            exception_type = match.group('type')
            break
    return exception_type or 'UnknownException', top_frame


def message_shape(text, max_chars=SIGNATURE_MAX_CHARS):
    """The message with its variable parts replaced by placeholders."""
    line = ''
    for candidate in (text or '').splitlines():
        if candidate.strip():
            line = candidate.strip()
            break
    for placeholder, pattern in _SHAPE_RULES:
        line = pattern.sub(placeholder, line)
    line = re.sub(r'\s+', ' ', line).strip()
    return line[:max_chars]


def _exception_line(text):
    """Exception type from a bare 'FooError: msg' line (no traceback)."""
    for line in (text or '').splitlines():
        if _EXC_MARKER_RE.match(line):
            match = _EXC_LINE_RE.match(line.strip())
            if match:
                return match.group('type')
    return None


def signature_of(message):
    """``{signature, exception_type, top_frame, kind}`` for one log message.

    ``kind`` is ``traceback`` or ``message``. For a message signature,
    ``top_frame`` is ``None`` and ``exception_type`` is set only when the
    message has an exception line of its own.
    """
    text, _level = _from_json(message or '')
    parsed = parse_traceback(text)
    if parsed:
        exception_type, top_frame = parsed
        return dict(signature='%s at %s' % (exception_type, top_frame),
                    exception_type=exception_type, top_frame=top_frame, kind='traceback')
    shape = message_shape(redact(text)) or '<empty>'
    return dict(signature=shape, exception_type=_exception_line(text), top_frame=None,
                kind='message')


def truncate(text, max_chars, marker=TRUNCATION_MARKER):
    """At most ``max_chars`` characters; keeps head and tail of long text."""
    if text is None or max_chars is None or len(text) <= max_chars:
        return text
    if max_chars <= len(marker) + 2:
        return text[:max_chars]
    keep = max_chars - len(marker)
    head = keep // 2
    tail = keep - head
    return text[:head] + marker + text[len(text) - tail:]


def iso_ms(epoch_ms):
    """ISO-8601 UTC (millisecond precision, ``Z``) for epoch milliseconds."""
    if epoch_ms is None:
        return None
    dt = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=int(epoch_ms))
    return dt.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (dt.microsecond // 1000)


class SignatureGroups(object):
    """Accumulates events into signatures."""

    def __init__(self, sample_chars=DEFAULT_SAMPLE_CHARS):
        self.sample_chars = sample_chars
        self._groups = {}

    def add(self, message, timestamp=None):
        """Add one event (``timestamp`` in epoch milliseconds); returns its signature."""
        sig = signature_of(message)
        group = self._groups.get(sig['signature'])
        if group is None:
            group = dict(sig, count=0, sample=None, first_seen=None, last_seen=None,
                         _sample_ts=None)
            self._groups[sig['signature']] = group
        group['count'] += 1
        if timestamp is not None:
            if group['first_seen'] is None or timestamp < group['first_seen']:
                group['first_seen'] = timestamp
            if group['last_seen'] is None or timestamp > group['last_seen']:
                group['last_seen'] = timestamp
        if group['sample'] is None or (timestamp is not None and (
                group['_sample_ts'] is None or timestamp >= group['_sample_ts'])):
            group['sample'] = message
            group['_sample_ts'] = timestamp
        return sig['signature']

    def __len__(self):
        return len(self._groups)

    def results(self):
        """Signatures sorted by count (desc), then first seen, then signature."""
        out = []
        for group in self._groups.values():
            out.append(dict(
                signature=group['signature'],
                exception_type=group['exception_type'],
                top_frame=group['top_frame'],
                count=group['count'],
                sample=truncate(redact(group['sample']), self.sample_chars),
                first_seen=iso_ms(group['first_seen']),
                last_seen=iso_ms(group['last_seen']),
            ))
        firsts = dict((g['signature'], g['first_seen']) for g in self._groups.values())
        out.sort(key=lambda g: (-g['count'],
                                firsts[g['signature']] if firsts[g['signature']] is not None
                                else float('inf'),
                                g['signature']))
        return out


def group_events(events, sample_chars=DEFAULT_SAMPLE_CHARS, errors_only=True):
    """Group CloudWatch-style events (dicts with ``message`` and ``timestamp`` ms).

    Returns ``(signatures, error_events)``: the sorted signature list of
    ``SignatureGroups.results`` and how many events were counted. With
    ``errors_only`` events that fail ``is_error`` are skipped.
    """
    groups = SignatureGroups(sample_chars=sample_chars)
    counted = 0
    for event in events:
        message = event.get('message') or ''
        if errors_only and not is_error(message):
            continue
        groups.add(message, event.get('timestamp'))
        counted += 1
    return groups.results(), counted
