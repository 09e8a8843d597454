# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Post-incident report of one incident directory: pure rendering, no network.

Inputs (all optional except ``summary.json``):

* ``summary.json`` - written by the ``incident`` role's record step (symptom,
  findings, decision, mitigation, verification, signatures, outcome, ...).
* ``timeline.jsonl`` - one event per task, written by the ``incident_timeline``
  callback (ts, host, phase, task, action, status, duration_s, check_mode,
  result). Several runs of the same incident append to it.
* ``state.json`` - the incident's state (``severity`` P0-P3, ``detected_at``,
  ``resolved_at``, optionally ``impact_started_at``). Missing keys are fine.
* ``series`` - the ``series`` return of ``service_metrics_info`` over the
  incident window (per metric key a list of ``{timestamp, value}``).

Outputs: ``report.md``, a self-contained ``report.html`` (inline CSS, charts as
``data:`` URIs, no script, no external URL) and two PNG charts (matplotlib,
imported lazily: without it the Markdown and HTML are still rendered and say
"install matplotlib for charts").

Times (UTC), as documented in ``TIME_DEFINITIONS``:

* impact began - ``state.json`` ``impact_started_at``; else the earliest
  ``first_seen`` of the error signatures (first error logged in the window the
  runbook searched, so a lower bound on the time undetected); else unknown.
* detected - ``state.json`` ``detected_at``; else the first timeline event in
  which a runbook decided that the symptom was present; else ``started_at`` of
  the summary when the symptom was present.
* mitigation started - ``mitigation.started_at`` of the summary.
* verified - ``verification.verified_at`` (the end of the verification,
  whether it passed or not).
* resolved - ``state.json`` ``resolved_at``; else ``verified_at`` when the
  verification passed; else unresolved.
* time to detect = detected - impact began; time to mitigate = mitigation
  started - detected; time to verify = verified - mitigation started;
  duration = resolved - impact began (detected when impact began is unknown).
  With every time known the three add up to the duration.

Secrets: every input is redacted again (keys that look like secrets, and
secret-looking ``key=value``, ``Authorization:``, bearer tokens, URL
passwords and AWS access key ids inside free text) before anything is
rendered, and everything is escaped for Markdown and HTML.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import calendar
import datetime
import html
import io
import json
import os
import re
import tempfile

REPORT_MD = 'report.md'
REPORT_HTML = 'report.html'
CHART_ERROR_RATE = 'chart_error_rate.png'
CHART_LATENCY = 'chart_latency_p95.png'
FORMATS = ('md', 'html', 'png')
FILE_MODE = 0o640

# symptom_p95_ms: set for a latency scenario (scenario 2: p95 > 1000 ms); then the
# symptom drawn and named is the latency one, not scenario 1's error rate.
# symptom_text: a symptom that is neither (scenario 3: failing logins), named
# in words and drawn on no chart.
DEFAULT_THRESHOLDS = dict(max_error_rate_pct=1.0, max_p95_ms=500.0, symptom_error_rate_pct=2.0, symptom_p95_ms=None,
                          symptom_text=None)
MATPLOTLIB_HINT = 'install matplotlib for charts (pip install matplotlib)'

REDACTED = '********'
SEVERITIES = ('P0', 'P1', 'P2', 'P3')
POST_MORTEM_SEVERITIES = ('P0', 'P1')

DAY = 86400
# The seed's POST-INCIDENT section. "1 month" is taken as 30 days.
CHECKLIST = (
    ('24h', 'Within 24 hours', DAY, (
        'Update incident ticket with full timeline',
        'Share incident summary in #incidents',
        'Identify action items',
    )),
    ('1w', 'Within 1 week', 7 * DAY, (
        'Conduct post-mortem',
        'Document lessons learned',
        'Create preventive tasks',
        'Update runbooks',
    )),
    ('1m', 'Within 1 month', 30 * DAY, (
        'Implement preventive measures',
        'Update monitoring/alerts',
        'Update documentation',
        'Train team on findings',
    )),
)
POST_MORTEM_ITEM = 'Conduct post-mortem'

TIME_DEFINITIONS = (
    ('Impact began', 'state.json impact_started_at; else the first error logged (earliest first_seen of the '
                     'error signatures, within the log window the runbook searched: a lower bound)'),
    ('Detected', 'state.json detected_at; else the first time a runbook decided the symptom was present '
                 '(timeline); else the start of the run that recorded the symptom'),
    ('Mitigation started', 'when the mitigation was called (summary mitigation.started_at)'),
    ('Verified', 'when the verification of the recovery ended (summary verification.verified_at)'),
    ('Resolved', 'state.json resolved_at; else the verification time when it passed'),
    ('Time to detect', 'detected - impact began'),
    ('Time to mitigate', 'mitigation started - detected'),
    ('Time to verify', 'verified - mitigation started'),
    ('Duration', 'resolved - impact began (- detected when the impact start is unknown)'),
)

# Timeline events that are Ansible plumbing, not steps of the response.
BOOKKEEPING_ACTIONS = frozenset([
    'ansible.builtin.include_role', 'ansible.builtin.include_tasks', 'ansible.builtin.import_role',
    'ansible.builtin.import_tasks', 'ansible.builtin.validate_argument_spec', 'include_role',
    'include_tasks', 'import_role', 'import_tasks', 'validate_argument_spec',
])
MAX_CELL = 300
MAX_SAMPLE = 4000
MAX_SIGNATURES = 5

# --------------------------------------------------------------------------- redaction
SECRET_KEY_RE = re.compile(
    r'(passw(or)?d|passphrase|^pass$|[_-]pass$|secret|token|(^|[_-])keys?$|api[_-]?key|access[_-]?key'
    r'|private[_-]?key|authori[sz]ation|credential|cookie|session[_-]?id|signing)', re.IGNORECASE)

_SECRET_WORD = (r'[\w.-]*?(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key'
                r'|credential|cookie|session[_-]?id|key)s?')
_KV_RE = re.compile(r'\b(' + _SECRET_WORD + r')\b(["\']?\s*[:=]\s*)("[^"]*"|\'[^\']*\'|[^\s,;&}\]\)]+)',
                    re.IGNORECASE)
_AUTH_RE = re.compile(r'\b(authori[sz]ation["\']?\s*[:=]\s*["\']?)(?:(bearer|basic|token|digest)\s+)?'
                      r'([^\s"\',;]+)', re.IGNORECASE)
_BEARER_RE = re.compile(r'\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}', re.IGNORECASE)
_URL_PASSWORD_RE = re.compile(r'\b([a-z][a-z0-9+.-]*://[^\s/:@]+:)([^\s@/]+)(@)', re.IGNORECASE)
_AWS_KEY_ID_RE = re.compile(r'\b(?:AKIA|ASIA)[0-9A-Z]{16}\b')


def _mask_kv(match):
    value = match.group(3)
    if value.strip('"\'') == REDACTED:
        return match.group(0)
    quote = value[0] if value[:1] in ('"', "'") else ''
    return match.group(1) + match.group(2) + quote + REDACTED + quote


def _mask_auth(match):
    scheme = match.group(2)
    return match.group(1) + (scheme + ' ' if scheme else '') + REDACTED


def redact_text(text):
    """Free text with secret-looking values masked."""
    if not isinstance(text, str) or not text:
        return text
    text = _AUTH_RE.sub(_mask_auth, text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _URL_PASSWORD_RE.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = _AWS_KEY_ID_RE.sub(REDACTED, text)
    text = _KV_RE.sub(_mask_kv, text)
    return text


def redact(value, depth=0):
    """A copy of value: secret-looking keys masked at any depth, every string through redact_text."""
    if depth > 12:
        return '<truncated: nested too deep>'
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            key = str(key)
            if SECRET_KEY_RE.search(key) and not isinstance(item, (bool, int, float, type(None))):
                out[key] = REDACTED
            else:
                out[key] = redact(item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(item, depth + 1) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


# --------------------------------------------------------------------------- time
_TS_RE = re.compile(r'^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?'
                    r'\s*(Z|[+-]\d{2}:?\d{2})?$', re.IGNORECASE)


def parse_ts(value):
    """Epoch seconds (float) from ISO 8601 (no offset means UTC) or epoch seconds; None if unusable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    match = _TS_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, frac, offset = match.groups()
    try:
        epoch = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute),
                                 int(second or 0), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if frac:
        epoch += float('0.' + frac)
    if offset and offset.upper() != 'Z':
        sign = -1 if offset[0] == '-' else 1
        digits = offset[1:].replace(':', '')
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return float(epoch)


def iso(epoch, millis=False):
    """ISO 8601 UTC with a Z, or None."""
    if epoch is None:
        return None
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=epoch)
    if millis and moment.microsecond:
        return moment.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (moment.microsecond // 1000)
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def human_time(epoch):
    """'2026-11-27 04:07:53 UTC' for tables, '-' when unknown."""
    if epoch is None:
        return '-'
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=epoch)
    return moment.strftime('%Y-%m-%d %H:%M:%S') + ' UTC'


def clock(epoch):
    if epoch is None:
        return '-'
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=epoch)
    return moment.strftime('%H:%M:%S')


def human_duration(seconds):
    """'42 s', '3 min 05 s', '2 h 07 min', '1 d 4 h'; 'unknown' for None."""
    if seconds is None:
        return 'unknown'
    sign = '-' if seconds < 0 else ''
    total = int(round(abs(seconds)))
    if total < 60:
        return '%s%d s' % (sign, total)
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return '%s%d min %02d s' % (sign, minutes, secs)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return '%s%d h %02d min' % (sign, hours, minutes)
    days, hours = divmod(hours, 24)
    return '%s%d d %d h' % (sign, days, hours)


def _span(later, earlier):
    if later is None or earlier is None:
        return None
    return round(later - earlier, 3)


def _number(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ('true', 'yes', '1', 'on')
    return bool(value)


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


# --------------------------------------------------------------------------- loading
class IncidentError(Exception):
    """The incident directory cannot be reported on (what to do is in the message)."""


def _read_json(path, what):
    try:
        with open(path, 'r') as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        raise IncidentError('cannot read %s %s: %s' % (what, path, exc))
    except ValueError as exc:
        raise IncidentError('%s %s is not valid JSON: %s' % (what, path, exc))
    if not isinstance(data, dict):
        raise IncidentError('%s %s must hold a JSON object' % (what, path))
    return data


def load_incident(incident_dir):
    """Redacted summary, timeline events, state and notes of an incident directory."""
    if not os.path.isdir(incident_dir):
        raise IncidentError('incident directory %s does not exist: check incident_id and the '
                            'incident root (SVPMS_INCIDENT_ROOT)' % incident_dir)
    summary_path = os.path.join(incident_dir, 'summary.json')
    if not os.path.isfile(summary_path):
        raise IncidentError('%s has no summary.json: the incident role writes it at the end of a '
                            'runbook (record step); run the scenario playbook for this incident first'
                            % incident_dir)
    notes = []
    summary = _read_json(summary_path, 'summary')
    state = {}
    state_path = os.path.join(incident_dir, 'state.json')
    if os.path.isfile(state_path):
        try:
            state = _read_json(state_path, 'state')
        except IncidentError as exc:
            notes.append('state.json ignored: %s' % exc)
    timeline = []
    timeline_path = os.path.join(incident_dir, 'timeline.jsonl')
    bad_lines = 0
    if os.path.isfile(timeline_path):
        with open(timeline_path, 'r') as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    bad_lines += 1
                    continue
                if isinstance(event, dict):
                    timeline.append(event)
                else:
                    bad_lines += 1
    else:
        notes.append('no timeline.jsonl in the incident directory: the timeline section is empty')
    if bad_lines:
        notes.append('%d unreadable line(s) of timeline.jsonl skipped' % bad_lines)
    return dict(summary=redact(summary), state=redact(state), timeline=redact(timeline), notes=notes)


# --------------------------------------------------------------------------- times and action items
def _detected_from_timeline(timeline):
    for event in timeline:
        facts = _dict(_dict(event.get('result')).get('ansible_facts'))
        for key, value in facts.items():
            if key.endswith('_symptom') and isinstance(value, dict) and _truthy(value.get('present')):
                moment = parse_ts(event.get('ts'))
                if moment is not None:
                    return moment
    return None


def normalize_severity(value):
    """'P0'..'P3', or None when missing or not one of them."""
    if isinstance(value, dict):
        value = value.get('severity') or value.get('level')
    if value is None:
        return None
    text = str(value).strip().upper()
    return text if text in SEVERITIES else None


def compute_times(summary, timeline=None, state=None):
    """The moments and spans of the incident (epoch seconds), see TIME_DEFINITIONS."""
    summary = _dict(summary)
    state = _dict(state)
    timeline = _list(timeline)
    mitigation = _dict(summary.get('mitigation'))
    verification = _dict(summary.get('verification'))
    symptom = _dict(summary.get('symptom'))
    sources = {}

    impact = parse_ts(state.get('impact_started_at'))
    sources['impact_started_at'] = 'state.json'
    if impact is None:
        firsts = [parse_ts(sig.get('first_seen')) for sig in _list(summary.get('signatures')) if isinstance(sig, dict)]
        firsts = [moment for moment in firsts if moment is not None]
        impact = min(firsts) if firsts else None
        sources['impact_started_at'] = 'first error logged' if impact is not None else 'unknown'

    detected = parse_ts(state.get('detected_at'))
    sources['detected_at'] = 'state.json'
    if detected is None:
        detected = _detected_from_timeline(timeline)
        sources['detected_at'] = 'timeline'
    if detected is None and _truthy(symptom.get('present')):
        detected = parse_ts(summary.get('started_at'))
        sources['detected_at'] = 'summary started_at'
    if detected is None:
        sources['detected_at'] = 'unknown'

    mitigation_started = parse_ts(mitigation.get('started_at'))
    mitigation_finished = parse_ts(mitigation.get('finished_at'))
    verified = parse_ts(verification.get('verified_at'))
    verification_passed = verification.get('status') == 'passed'

    resolved = parse_ts(state.get('resolved_at'))
    sources['resolved_at'] = 'state.json'
    if resolved is None and verification_passed:
        resolved = verified
        sources['resolved_at'] = 'verification passed'
    if resolved is None:
        sources['resolved_at'] = 'unresolved'

    began = impact if impact is not None else detected
    recorded = parse_ts(summary.get('recorded_at'))
    return dict(
        impact_started_at=impact,
        detected_at=detected,
        mitigation_started_at=mitigation_started,
        mitigation_finished_at=mitigation_finished,
        verified_at=verified,
        verification_passed=verification_passed,
        resolved_at=resolved,
        recorded_at=recorded,
        started_at=parse_ts(summary.get('started_at')),
        time_to_detect_seconds=_span(detected, impact),
        time_to_mitigate_seconds=_span(mitigation_started, detected),
        time_to_verify_seconds=_span(verified, mitigation_started),
        duration_seconds=_span(resolved, began),
        sources=sources,
    )


def action_items(resolved_at, severity, recorded_at=None):
    """The seed's post-incident checklist with due dates.

    Due dates count from the resolution (24 h, 7 days, 30 days). Unresolved,
    they count from the last record (recorded_at). The post-mortem is listed
    for P0/P1 only; with no severity recorded it is listed with a note to
    classify first (a missing severity must not silently skip it).
    Returns (items, basis) where basis says what the dates count from.
    """
    base = resolved_at
    basis = 'resolution'
    if base is None:
        base = recorded_at
        basis = 'last record (not resolved)'
    severity = normalize_severity(severity)
    items = []
    for phase, _label, offset, texts in CHECKLIST:
        for text in texts:
            if text == POST_MORTEM_ITEM:
                if severity is not None and severity not in POST_MORTEM_SEVERITIES:
                    continue
                if severity is None:
                    text += ' (P0/P1 only; severity not recorded: classify first)'
                else:
                    text += ' (%s)' % severity
            items.append(dict(phase=phase, item=text, due=iso(base + offset) if base is not None else None))
    return items, basis


# --------------------------------------------------------------------------- observations and charts
def _is_service_metrics(event):
    return str(event.get('action') or '').endswith('service_metrics_info')


def _is_api_probe(event):
    if not str(event.get('action') or '').endswith('http_probe'):
        return False
    result = _dict(event.get('result'))
    url = str(result.get('url') or _dict(_dict(result.get('invocation')).get('module_args')).get('url') or '')
    return not url.rstrip('/').endswith('/health')


def observations(timeline):
    """What the runbook measured, from the timeline: error rates and latencies with their time.

    Each is {at, phase, source, error_rate_pct, requests, latency_ms, latency_kind, task}.
    """
    out = []
    for event in timeline:
        if event.get('status') not in ('ok', 'changed'):
            continue
        result = _dict(event.get('result'))
        at = parse_ts(event.get('ts'))
        if at is None:
            continue
        if _is_service_metrics(event):
            source = 'CloudWatch'
        elif _is_api_probe(event):
            source = 'synthetic probe'
        else:
            continue
        rate = _number(result.get('error_rate_pct'))
        if result.get('no_traffic') or _number(result.get('requests')) == 0:
            rate = None
        latency = _number(result.get('latency_p95_ms'))
        kind = 'p95'
        if latency is None and _number(result.get('latency_avg_ms')) is not None:
            latency = _number(result.get('latency_avg_ms'))
            kind = 'average'
        if rate is None and latency is None:
            continue
        out.append(dict(at=at, phase=event.get('phase') or '', source=source, error_rate_pct=rate,
                        requests=_number(result.get('requests')), latency_ms=latency,
                        latency_kind=kind if latency is not None else None,
                        task=_short_task(event.get('task'))))
    return out


def _summary_observations(summary, times):
    """Fallback when the timeline holds nothing: the symptom and the verification rounds."""
    out = []
    symptom = _dict(summary.get('symptom'))
    rate = _number(symptom.get('observed_pct'))
    at = times.get('detected_at') or times.get('started_at')
    if rate is not None and at is not None:
        out.append(dict(at=at, phase='detect', source='summary.json', error_rate_pct=rate, requests=None,
                        latency_ms=None, latency_kind=None, task='symptom'))
    for item in _list(_dict(summary.get('verification')).get('rounds')):
        item = _dict(item)
        at = parse_ts(item.get('at'))
        if at is None:
            continue
        out.append(dict(at=at, phase='verify', source='summary.json', error_rate_pct=_number(item.get('error_rate_pct')),
                        requests=_number(item.get('requests')), latency_ms=_number(item.get('p95_ms')),
                        latency_kind='p95', task='verification round %s' % item.get('round')))
    return out


def _series_points(series, key):
    points = []
    for item in _list(_dict(series).get(key)):
        item = _dict(item)
        at = parse_ts(item.get('timestamp'))
        value = _number(item.get('value'))
        if at is not None and value is not None:
            points.append((at, value))
    points.sort()
    return points


def series_error_rate(series):
    """Per-period 5xx % = 100 * errors / requests (ELB 5xx added to both when present); no-traffic periods skipped."""
    requests = dict(_series_points(series, 'requests'))
    errors = dict(_series_points(series, 'errors_5xx'))
    elb = dict(_series_points(series, 'errors_elb_5xx'))
    points = []
    for at in sorted(requests):
        total = requests[at] + elb.get(at, 0.0)
        if total <= 0:
            continue
        failed = errors.get(at, 0.0) + elb.get(at, 0.0)
        points.append((at, round(100.0 * failed / total, 4)))
    return points


def build_chart_data(summary, times, timeline=None, series=None, thresholds=None, metrics_error=None,
                     incident_id=''):
    """Everything the two charts draw, as plain data (no matplotlib).

    Returns {error_rate: chart, latency: chart, markers: [...], source, source_note}
    where a chart is {file, title, ylabel, source, lines: [{label, style, points: [[epoch, value]]}],
    thresholds: [{label, value}]} and a marker is {key, label, at}.
    """
    summary = _dict(summary)
    limits = dict(DEFAULT_THRESHOLDS)
    limits.update(dict((k, v) for k, v in _dict(thresholds).items() if _number(v) is not None))
    text = _dict(thresholds).get('symptom_text')
    limits['symptom_text'] = text if isinstance(text, str) and text.strip() else None
    seen = observations(_list(timeline))
    observed_from = 'timeline'
    if not seen:
        seen = _summary_observations(summary, times)
        observed_from = 'summary.json'

    markers = []
    for key, label, at in (('detected', 'detected', times.get('detected_at')),
                           ('mitigation', 'mitigation started', times.get('mitigation_started_at')),
                           ('verified', 'verified' if times.get('verification_passed') else 'verification ended',
                            times.get('verified_at'))):
        if at is not None:
            markers.append(dict(key=key, label='%s %s' % (label, clock(at)), at=at))

    rate_line = series_error_rate(series) if series else []
    latency_key = None
    for key in ('latency_p95_ms', 'latency_avg_ms'):
        if _series_points(series, key):
            latency_key = key
            break
    latency_line = _series_points(series, latency_key) if latency_key else []

    def observed(metric, source, kind=None):
        field = 'error_rate_pct' if metric == 'rate' else 'latency_ms'
        return [[o['at'], o[field]] for o in seen
                if o['source'] == source and o[field] is not None and (kind is None or o['latency_kind'] == kind)]

    def timeline_lines(metric):
        lines = []
        for source, label in (('CloudWatch', 'CloudWatch read by the runbook'),
                              ('synthetic probe', 'synthetic probe'),
                              ('summary.json', 'recorded in summary.json')):
            if metric == 'rate':
                points = observed('rate', source)
                if points:
                    lines.append(dict(label='%s (5xx %%)' % label, style='points', points=points))
            else:
                for kind in ('p95', 'average'):
                    points = observed('latency', source, kind)
                    if points:
                        lines.append(dict(label='%s (%s)' % (label, kind), style='points', points=points))
        return lines

    def chart(name, title, ylabel, line, line_label, metric, limit_lines):
        lines = []
        if line:
            lines.append(dict(label=line_label, style='line', points=[[at, value] for at, value in line]))
        lines.extend(timeline_lines(metric))
        source = 'metrics' if line else ('timeline' if lines else 'none')
        return dict(file=name, title=title, ylabel=ylabel, source=source, lines=lines, thresholds=limit_lines)

    label = ('Incident %s' % incident_id) if incident_id else 'Incident'
    error_rate = chart(
        CHART_ERROR_RATE, '%s: 5xx error rate' % label, '5xx error rate (%)', rate_line,
        'CloudWatch ALB 5xx / requests per period', 'rate',
        [dict(label='SLO: error rate < %s %%' % _fmt_num(limits['max_error_rate_pct']), value=limits['max_error_rate_pct'])]
        + ([] if (limits.get('symptom_p95_ms') is not None or limits.get('symptom_text')) else
           [dict(label='symptom: error rate > %s %%' % _fmt_num(limits['symptom_error_rate_pct']),
                 value=limits['symptom_error_rate_pct'])]))
    latency_label = ('CloudWatch TargetResponseTime p95' if latency_key == 'latency_p95_ms'
                     else 'CloudWatch TargetResponseTime average\n(no p95 at this source)')
    latency = chart(
        CHART_LATENCY, '%s: p95 latency' % label, 'latency (ms)', latency_line, latency_label, 'latency',
        [dict(label='SLO: p95 < %s ms' % _fmt_num(limits['max_p95_ms']), value=limits['max_p95_ms'])]
        + ([dict(label='symptom: p95 > %s ms' % _fmt_num(limits['symptom_p95_ms']), value=limits['symptom_p95_ms'])]
           if limits.get('symptom_p95_ms') is not None else []))

    if rate_line:
        first, last = rate_line[0][0], rate_line[-1][0]
        note = ('CloudWatch metrics over the incident window (service_metrics_info series, %s to %s, %d '
                'datapoints); dots are the values the runbook observed (%s).'
                % (human_time(first), human_time(last), len(rate_line), observed_from))
        if not latency_line:
            note += ' No latency series was given: the latency chart uses the values the runbook observed.'
        elif latency_key == 'latency_avg_ms':
            note += (' CloudWatch gave the average response time only (no p95 at this source); the SLO line '
                     'is for p95, which the synthetic probe dots show.')
        source = 'metrics'
    else:
        if metrics_error:
            why = 'the metrics could not be read (%s)' % redact_text(str(metrics_error))
        elif series:
            why = 'CloudWatch returned no request datapoints for the window'
        else:
            why = 'no metrics series was given'
        if seen:
            note = ('From the timeline: the error rates and latencies the runbook observed during detection and '
                    'verification (%s), because %s.' % (observed_from, why))
            source = 'timeline'
        else:
            note = 'No data to chart: %s and the timeline holds no measurement.' % why
            source = 'none'
    return dict(error_rate=error_rate, latency=latency, markers=markers, source=source, source_note=note,
                thresholds=limits)


def verification_table(rounds):
    """(header, rows) of the verification rounds; a 'logins failed %' column when a round signed in."""
    header = ['round', 'at', 'health', 'error rate %', 'requests', 'p95 ms']
    rows = [[r.get('round'), r.get('at'), 'ok' if _truthy(r.get('health_ok')) else 'FAILING',
             r.get('error_rate_pct'), r.get('requests'), r.get('p95_ms')] for r in rounds]
    if any(r.get('login_failure_rate_pct') is not None for r in rounds):
        header.append('logins failed %')
        for row, r in zip(rows, rounds):
            row.append(r.get('login_failure_rate_pct'))
    return header, rows


def thresholds_text(chart_data):
    """'SLO: error rate < 1 %, p95 < 500 ms; symptom: error rate > 2 %' (or 'p95 > 1000 ms')."""
    limits = dict(DEFAULT_THRESHOLDS)
    limits.update(chart_data.get('thresholds') or {})
    symptom = (limits['symptom_text'] if limits.get('symptom_text')
               else 'p95 > %s ms' % _fmt_num(limits['symptom_p95_ms']) if limits.get('symptom_p95_ms') is not None
               else 'error rate > %s %%' % _fmt_num(limits['symptom_error_rate_pct']))
    return 'SLO: error rate < %s %%, p95 < %s ms; symptom: %s' % (
        _fmt_num(limits['max_error_rate_pct']), _fmt_num(limits['max_p95_ms']), symptom)


def _fmt_num(value):
    value = float(value)
    return ('%d' % value) if value.is_integer() else ('%g' % value)


MARKER_STYLE = {
    'detected': ('#d62728', '--'),
    'mitigation': ('#ff7f0e', '-.'),
    'verified': ('#2ca02c', ':'),
}
# Data colours kept apart from the marker and threshold colours.
LINE_COLOURS = ('#1f77b4', '#17becf', '#8c564b', '#7f7f7f', '#bcbd22')
THRESHOLD_STYLE = (('#444444', '--'), ('#9467bd', (0, (6, 2, 1, 2))))


def render_charts(chart_data):
    """PNG bytes per chart file name, or ({}, reason) when matplotlib is missing.

    matplotlib is imported here, lazily, with the Agg backend and without
    pyplot (no global state, no display needed).
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        import matplotlib.dates as mdates
    except ImportError:
        return {}, MATPLOTLIB_HINT
    pngs = {}
    utc = datetime.timezone.utc
    for name in ('error_rate', 'latency'):
        chart = chart_data[name]
        figure = Figure(figsize=(11, 4.6), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        everything = []
        values = []
        for number, line in enumerate(chart['lines']):
            points = line['points']
            colour = LINE_COLOURS[number % len(LINE_COLOURS)]
            if not points:
                continue
            dates = [datetime.datetime.fromtimestamp(at, utc) for at, _value in points]
            ys = [value for _at, value in points]
            everything.extend(at for at, _value in points)
            values.extend(ys)
            if line['style'] == 'line':
                axes.plot(dates, ys, marker='o', markersize=3, linewidth=1.8, color=colour, label=line['label'],
                          zorder=3)
            else:
                axes.scatter(dates, ys, s=36, marker='D', color=colour, label=line['label'], zorder=4)
        for limit, (colour, style) in zip(chart['thresholds'], THRESHOLD_STYLE):
            axes.axhline(limit['value'], color=colour, linestyle=style, linewidth=1.2, label=limit['label'], zorder=2)
            values.append(limit['value'])
        for index, marker in enumerate(chart_data['markers']):
            colour, style = MARKER_STYLE.get(marker['key'], ('#7f7f7f', ':'))
            moment = datetime.datetime.fromtimestamp(marker['at'], utc)
            everything.append(marker['at'])
            axes.axvline(moment, color=colour, linestyle=style, linewidth=1.6, label=marker['label'], zorder=2)
            axes.annotate(marker['label'], xy=(mdates.date2num(moment), 0.97 - 0.09 * index),
                          xycoords=('data', 'axes fraction'), xytext=(4, 0), textcoords='offset points',
                          fontsize=8, color=colour, va='top', ha='left',
                          bbox=dict(boxstyle='round,pad=0.2', facecolor='white', edgecolor='none', alpha=0.8))
        if everything:
            low, high = min(everything), max(everything)
            pad = max(15.0, (high - low) * 0.05)
            axes.set_xlim(datetime.datetime.fromtimestamp(low - pad, utc),
                          datetime.datetime.fromtimestamp(high + pad, utc))
            day = datetime.datetime.fromtimestamp(low, utc).strftime('%Y-%m-%d')
        else:
            day = ''
        top = max(values) if values else 1.0
        axes.set_ylim(0, top * 1.25 if top > 0 else 1.0)
        axes.xaxis.set_major_formatter(mdates.DateFormatter('%H:%M:%S', tz=utc))
        axes.set_title(chart['title'], fontsize=12, loc='left')
        axes.set_xlabel('time (UTC%s)' % ((', ' + day) if day else ''))
        axes.set_ylabel(chart['ylabel'])
        axes.grid(True, alpha=0.3)
        if not chart['lines']:
            axes.text(0.5, 0.5, 'no data', transform=axes.transAxes, ha='center', va='center', color='#7f7f7f')
        axes.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        figure.subplots_adjust(left=0.07, right=0.68, top=0.9, bottom=0.13)
        buffer = io.BytesIO()
        figure.savefig(buffer, format='png', metadata={'Software': None})
        pngs[chart['file']] = buffer.getvalue()
    return pngs, None


# --------------------------------------------------------------------------- timeline rows
def _short_task(name):
    text = str(name or '')
    if ' : ' in text:
        role, _sep, task = text.partition(' : ')
        text = '%s: %s' % (role.split('.')[-1], task)
    return text


def _short(value, limit=MAX_CELL):
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
    elif value is None:
        text = 'null'
    else:
        text = str(value)
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def change_of(result):
    """[(field, before, after)] of a changed task's result (before/after, or its diff)."""
    result = _dict(result)
    before, after = result.get('before'), result.get('after')
    if before is None and after is None:
        diff = result.get('diff')
        if isinstance(diff, list) and diff:
            diff = diff[0]
        diff = _dict(diff)
        before, after = diff.get('before'), diff.get('after')
    if before is None and after is None:
        return []
    if isinstance(before, dict) or isinstance(after, dict):
        old, new = _dict(before), _dict(after)
        keys = list(old) + [key for key in new if key not in old]
        rows = [(key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)]
        return [(key, _short(a, 160), _short(b, 160)) for key, a, b in rows]
    return [('value', _short(before, 160), _short(after, 160))]


def _seconds(value):
    if value is None:
        return '-'
    return ('%.2f s' % value) if value < 10 else ('%.1f s' % value)


def timeline_rows(timeline):
    """(rows, omitted): the response's steps; include/validate plumbing is omitted and counted."""
    rows = []
    omitted = 0
    for event in timeline:
        action = event.get('action')
        if action in BOOKKEEPING_ACTIONS:
            omitted += 1
            continue
        result = _dict(event.get('result'))
        status = str(event.get('status') or '')
        check = _truthy(event.get('check_mode'))
        details = []
        if event.get('task') == 'run finished' and action is None:
            stats = _dict(result.get('stats'))
            details.append('run finished: ' + ', '.join(
                '%s=%s' % (key, stats[key]) for key in ('ok', 'changed', 'failures', 'unreachable', 'skipped')
                if key in stats))
        if status == 'changed':
            for field, before, after in change_of(result):
                details.append('%s: %s \u2192 %s' % (field, before, after))
            if not details and result.get('msg'):
                details.append(_short(result.get('msg')))
        elif status.startswith('failed') or status == 'unreachable':
            details.append('error: %s' % _short(result.get('msg') or 'failed'))
        shown = status
        if check and status == 'changed':
            shown = 'changed (check mode: would change)'
        duration = _number(event.get('duration_s'))
        rows.append(dict(
            at=parse_ts(event.get('ts')),
            phase=str(event.get('phase') or ''),
            task=_short_task(event.get('task')),
            status=shown,
            status_class=status.split('_', 1)[0] or 'ok',
            duration=_seconds(duration),
            change=details,
            changes=change_of(result) if status == 'changed' else [],
        ))
    return rows, omitted


# --------------------------------------------------------------------------- the report model
def build_context(incident, series=None, thresholds=None, title=None, metrics_error=None):
    """Everything the renderers need, computed once from the loaded (redacted) incident."""
    summary = incident['summary']
    state = incident['state']
    timeline = incident['timeline']
    times = compute_times(summary, timeline, state)
    severity = normalize_severity(state.get('severity'))
    items, basis = action_items(times['resolved_at'], severity, times['recorded_at'])
    incident_id = str(summary.get('incident_id') or '')
    charts = build_chart_data(summary, times, timeline, redact(series) if series else None, thresholds,
                              metrics_error, incident_id)
    rows, omitted = timeline_rows(timeline)
    title = redact_text(title) if title else 'Incident %s: %s on %s' % (
        incident_id or '(no id)', summary.get('scenario') or 'incident', summary.get('service') or 'unknown service')
    return dict(
        title=title,
        summary=summary,
        state=state,
        times=times,
        severity=severity,
        severity_raw=state.get('severity'),
        action_items=items,
        due_basis=basis,
        charts=charts,
        observations=observations(timeline) or _summary_observations(summary, times),
        rows=rows,
        omitted=omitted,
        notes=list(incident.get('notes') or []),
    )


def report_summary(ctx):
    """The module's `summary` return."""
    times = ctx['times']
    return dict(
        severity=ctx['severity'],
        outcome=ctx['summary'].get('outcome'),
        duration_seconds=times['duration_seconds'],
        time_to_detect_seconds=times['time_to_detect_seconds'],
        time_to_mitigate_seconds=times['time_to_mitigate_seconds'],
        time_to_verify_seconds=times['time_to_verify_seconds'],
        impact_started_at=iso(times['impact_started_at'], millis=True),
        detected_at=iso(times['detected_at'], millis=True),
        mitigation_started_at=iso(times['mitigation_started_at']),
        verified_at=iso(times['verified_at']),
        resolved_at=iso(times['resolved_at']),
    )


def _severity_text(ctx):
    if ctx['severity']:
        return ctx['severity']
    if ctx['severity_raw']:
        return 'not classified (state.json severity "%s" is not P0-P3)' % ctx['severity_raw']
    return 'not recorded (no severity in state.json)'


def _summary_rows(ctx):
    summary, times = ctx['summary'], ctx['times']
    sources = times['sources']
    rows = [
        ('Incident', summary.get('incident_id') or '-'),
        ('Service', summary.get('service') or '-'),
        ('Scenario', summary.get('scenario') or '-'),
        ('Severity', _severity_text(ctx)),
        ('Outcome', summary.get('outcome') or '-'),
        ('Mode', '%s%s' % (summary.get('mode') or '-',
                           ' (--check: nothing was changed)' if _truthy(summary.get('check_mode')) else '')),
        ('Impact began', '%s (%s)' % (human_time(times['impact_started_at']), sources['impact_started_at'])),
        ('Detected', '%s (%s)' % (human_time(times['detected_at']), sources['detected_at'])),
        ('Mitigation started', human_time(times['mitigation_started_at'])),
        ('Mitigation finished', human_time(times['mitigation_finished_at'])),
        ('Verified', '%s%s' % (human_time(times['verified_at']),
                               '' if times['verified_at'] is None else
                               (' (passed)' if times['verification_passed'] else ' (did not pass)'))),
        ('Resolved', '%s (%s)' % (human_time(times['resolved_at']), sources['resolved_at'])),
        ('Duration', human_duration(times['duration_seconds'])),
        ('Time to detect', human_duration(times['time_to_detect_seconds'])),
        ('Time to mitigate', human_duration(times['time_to_mitigate_seconds'])),
        ('Time to verify', human_duration(times['time_to_verify_seconds'])),
    ]
    return rows


# --------------------------------------------------------------------------- Markdown
_MD_ESCAPES = [('\\', '\\\\'), ('&', '&amp;'), ('<', '&lt;'), ('>', '&gt;'), ('`', '\\`'),
               ('[', '\\['), (']', '\\]'), ('|', '\\|')]


def md(value):
    """Inline Markdown text: HTML-escaped, no links/code spans/table breaks, one line."""
    text = ' '.join(str('' if value is None else value).split())
    for old, new in _MD_ESCAPES:
        text = text.replace(old, new)
    return text


def md_code(text):
    """A fenced code block that its content cannot close (fence longer than any backtick run)."""
    text = str(text or '')
    if len(text) > MAX_SAMPLE:
        text = text[:MAX_SAMPLE] + '\n... (%d characters truncated)' % (len(text) - MAX_SAMPLE)
    runs = [len(run) for run in re.findall(r'`+', text)]
    fence = '`' * max(3, (max(runs) + 1) if runs else 3)
    return '%s\n%s\n%s' % (fence, text.rstrip('\n'), fence)


def _md_table(headers, rows):
    lines = ['| ' + ' | '.join(md(h) for h in headers) + ' |', '|' + '---|' * len(headers)]
    for row in rows:
        lines.append('| ' + ' | '.join(cell if isinstance(cell, _Raw) else md(cell) for cell in row) + ' |')
    return lines


class _Raw(str):
    """Markdown already escaped (for cells that join escaped parts)."""


def render_markdown(ctx, chart_files=None, html_written=False, chart_problem=None):
    summary = ctx['summary']
    out = ['# Post-incident report: %s' % md(ctx['title']), '']
    out.append('Generated from `summary.json`, `timeline.jsonl`%s in this directory. Times are UTC. '
               'Secrets are redacted.' % (', `state.json`' if ctx['state'] else ''))
    out.append('')
    for note in ctx['notes']:
        out.append('> %s' % md(note))
        out.append('')
    if summary.get('failure'):
        out.append('> **The run stopped on an error:** %s' % md(summary.get('failure')))
        out.append('')

    out.append('## Summary')
    out.append('')
    out.extend(_md_table(['', ''], _summary_rows(ctx)))
    out.append('')
    out.append('How the times are defined:')
    out.append('')
    for name, definition in TIME_DEFINITIONS:
        out.append('- **%s**: %s' % (md(name), md(definition)))
    out.append('')

    out.append('## Error rate and latency')
    out.append('')
    out.append('Source: %s' % md(ctx['charts']['source_note']))
    out.append('')
    out.append('Thresholds drawn: %s.' % md(thresholds_text(ctx['charts'])))
    out.append('')
    if chart_files:
        for name, alt in ((CHART_ERROR_RATE, '5xx error rate over the incident window'),
                          (CHART_LATENCY, 'p95 latency over the incident window')):
            if name in chart_files:
                out.append('![%s](%s)' % (md(alt), name))
                out.append('')
    elif chart_problem:
        out.append('Charts not rendered: %s.' % md(chart_problem))
        out.append('')
    elif html_written:
        out.append('The charts are embedded in `report.html`.')
        out.append('')
    markers = ctx['charts']['markers']
    if markers:
        out.append('Marked on the charts: %s.' % md(', '.join(m['label'] for m in markers)))
        out.append('')

    out.extend(_md_response(ctx))
    out.extend(_md_timeline(ctx))
    out.extend(_md_evidence(ctx))
    out.extend(_md_actions(ctx))

    out.append('## Record')
    out.append('')
    out.append('- `summary.json`: the machine-readable summary the runbook wrote.')
    out.append('- `timeline.jsonl`: every task with its redacted result.')
    if html_written:
        out.append('- `report.html`: this report, self-contained (charts embedded).')
    for name in chart_files or []:
        out.append('- `%s`' % name)
    out.append('')
    return '\n'.join(out)


def _md_response(ctx):
    summary = ctx['summary']
    out = ['## Response', '']
    symptom = _dict(summary.get('symptom'))
    if symptom:
        out.append('**Symptom** - %s: %s' % ('present' if _truthy(symptom.get('present')) else 'absent',
                                             md(symptom.get('summary') or '')))
        out.append('')
    decision = _dict(summary.get('decision'))
    if decision.get('action'):
        out.append('**Decision** - %s%s: %s' % (md(decision.get('action')),
                                                (' \u2192 ' + md(decision.get('target'))) if decision.get('target') else '',
                                                md(decision.get('reason') or '')))
        out.append('')
    mitigation = _dict(summary.get('mitigation'))
    if mitigation.get('status'):
        out.append('**Mitigation** - %s: %s' % (md(mitigation.get('status')), md(mitigation.get('summary') or '')))
        out.append('')
        before, after = _dict(mitigation.get('before')), _dict(mitigation.get('after'))
        if before or after:
            keys = list(before) + [key for key in after if key not in before]
            out.extend(_md_table(['field', 'before', 'after'],
                                 [(key, _short(before.get(key)), _short(after.get(key))) for key in keys]))
            out.append('')
    verification = _dict(summary.get('verification'))
    if verification.get('status'):
        out.append('**Verification** - %s: %s' % (md(verification.get('status')), md(verification.get('summary') or '')))
        out.append('')
        rounds = [_dict(r) for r in _list(verification.get('rounds'))]
        if rounds:
            out.extend(_md_table(*verification_table(rounds)))
            out.append('')
    if len(out) == 2:
        out.append('No symptom, decision or mitigation was recorded.')
        out.append('')
    return out


def _md_timeline(ctx):
    out = ['## Timeline', '']
    if not ctx['rows']:
        out.append('No timeline events.')
        out.append('')
        return out
    out.append('%d steps%s. Changed steps show their before \u2192 after.' % (
        len(ctx['rows']), (', %d include/argument-check events omitted' % ctx['omitted']) if ctx['omitted'] else ''))
    out.append('')
    rows = []
    for row in ctx['rows']:
        change = _Raw('<br>'.join(md(item) for item in row['change']))
        rows.append((human_time(row['at']), row['phase'], row['task'],
                     _Raw('**%s**' % md(row['status'])) if row['status_class'] in ('changed', 'failed', 'unreachable')
                     else row['status'], row['duration'], change))
    out.extend(_md_table(['time', 'phase', 'task', 'status', 'duration', 'change (before \u2192 after) / error'], rows))
    out.append('')
    return out


def _md_evidence(ctx):
    summary = ctx['summary']
    out = ['## Evidence gathered', '', '### Findings', '']
    findings = [_dict(f) for f in _list(summary.get('findings'))]
    if findings:
        out.extend(_md_table(['check', 'status', 'summary'],
                             [(f.get('check'), f.get('status'), f.get('summary')) for f in findings]))
    else:
        out.append('No investigation ran.')
    out.append('')
    out.append('### Measurements taken by the runbook')
    out.append('')
    if ctx['observations']:
        out.extend(_md_table(['time', 'phase', 'source', 'error rate %', 'requests', 'latency ms', 'step'],
                             [(human_time(o['at']), o['phase'], o['source'], _opt(o['error_rate_pct']),
                               _opt(o['requests']), ('%s (%s)' % (_opt(o['latency_ms']), o['latency_kind']))
                               if o['latency_ms'] is not None else '-', o['task']) for o in ctx['observations']]))
    else:
        out.append('None recorded.')
    out.append('')
    out.append('### Error signatures')
    out.append('')
    signatures = [_dict(s) for s in _list(summary.get('signatures'))]
    if not signatures:
        out.append('None found in the log window.')
        out.append('')
    for index, sig in enumerate(signatures[:MAX_SIGNATURES], 1):
        out.append('%d. **%s** x %s - first seen %s, last seen %s' % (
            index, md(sig.get('signature')), md(sig.get('count')), md(sig.get('first_seen') or '-'),
            md(sig.get('last_seen') or '-')))
        out.append('')
        if sig.get('sample'):
            out.append(md_code(sig.get('sample')))
            out.append('')
    if len(signatures) > MAX_SIGNATURES:
        out.append('%d more signatures in summary.json.' % (len(signatures) - MAX_SIGNATURES))
        out.append('')
    return out


def _opt(value):
    if value is None:
        return '-'
    return _fmt_num(value) if isinstance(value, float) else str(value)


def _md_actions(ctx):
    times = ctx['times']
    base = times['resolved_at'] if times['resolved_at'] is not None else times['recorded_at']
    out = ['## Action items', '']
    out.append('The post-incident checklist of the incident response playbook. Due dates count from the %s '
               '(%s).' % (md(ctx['due_basis']), human_time(base)))
    out.append('')
    for phase, label, _offset, _texts in CHECKLIST:
        items = [item for item in ctx['action_items'] if item['phase'] == phase]
        if not items:
            continue
        out.append('### %s (due %s)' % (label, human_time(parse_ts(items[0]['due']))))
        out.append('')
        for item in items:
            out.append('- [ ] %s' % md(item['item']))
        out.append('')
    return out


# --------------------------------------------------------------------------- HTML
CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d2330;background:#f6f7f9;margin:0}
main{max-width:1180px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{border-bottom:2px solid #e3e6ea;padding-bottom:4px;margin-top:32px}
h3{margin-top:20px}.meta{color:#5b6472;font-size:.9em}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:.88em}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}table.kv{width:auto;min-width:50%}table.kv th{width:13em}
tr.changed td{background:#fff7e0}tr.failed td,tr.unreachable td{background:#fdecea}
tr.skipped td{color:#8a93a0}tr.run td{background:#eef3fb;font-style:italic}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:.85em;font-weight:600}
.ok,.passed,.recovered{background:#e3f4e7;color:#1d6b32}.problem,.failed,.not_recovered{background:#fdecea;color:#a12622}
.changed,.applied{background:#fff1c2;color:#7a5600}.skipped{background:#eceff3;color:#5b6472}
pre{background:#f4f5f7;border:1px solid #e1e4e8;padding:8px;overflow-x:auto;font-size:.82em;white-space:pre-wrap}
figure{margin:12px 0}figure img{max-width:100%;border:1px solid #e1e4e8}figcaption{color:#5b6472;font-size:.85em}
.note{background:#fffbea;border-left:4px solid #f0c000;padding:6px 10px;margin:8px 0}
.error{background:#fdecea;border-left:4px solid #d62728;padding:6px 10px;margin:8px 0}
ul.checklist{list-style:none;padding-left:0}ul.checklist li{margin:3px 0}
ul.checklist li:before{content:"\\2610";margin-right:8px;font-size:1.1em}
dl.defs{font-size:.85em;color:#3d4450}dl.defs dt{font-weight:600;float:left;clear:left;width:11em}
dl.defs dd{margin-left:11.5em;margin-bottom:2px}
"""


def h(value):
    return html.escape(str('' if value is None else value), quote=True)


def _html_table(headers, rows, cls=None, row_classes=None):
    out = ['<table%s>' % (' class="%s"' % h(cls) if cls else ''), '<tr>' + ''.join('<th>%s</th>' % h(x) for x in headers) + '</tr>']
    for index, row in enumerate(rows):
        klass = row_classes[index] if row_classes else ''
        out.append('<tr%s>' % (' class="%s"' % h(klass) if klass else '')
                   + ''.join('<td>%s</td>' % (cell if isinstance(cell, _Raw) else h(cell)) for cell in row) + '</tr>')
    out.append('</table>')
    return '\n'.join(out)


def _badge(value, klass=None):
    text = str(value or '-')
    klass = klass or re.sub(r'[^a-z_]', '', text.lower())
    return _Raw('<span class="badge %s">%s</span>' % (h(klass), h(text)))


def render_html(ctx, pngs=None, chart_problem=None):
    pngs = pngs or {}
    summary = ctx['summary']
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
           'style-src \'unsafe-inline\'">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<title>%s</title>' % h('Post-incident report: ' + ctx['title']),
           '<style>%s</style>' % CSS.strip(), '</head>', '<body>', '<main>']
    out.append('<h1>Post-incident report: %s</h1>' % h(ctx['title']))
    out.append('<p class="meta">Generated from summary.json, timeline.jsonl%s. Times are UTC. '
               'Secrets are redacted. Self-contained: no external resource, no script.</p>'
               % (', state.json' if ctx['state'] else ''))
    for note in ctx['notes']:
        out.append('<p class="note">%s</p>' % h(note))
    if summary.get('failure'):
        out.append('<p class="error"><strong>The run stopped on an error:</strong> %s</p>' % h(summary.get('failure')))

    out.append('<section id="summary"><h2>Summary</h2>')
    rows = []
    for name, value in _summary_rows(ctx):
        rows.append((name, _badge(value) if name == 'Outcome' else value))
    out.append(_html_table_kv(rows))
    out.append('<dl class="defs">' + ''.join('<dt>%s</dt><dd>%s</dd>' % (h(n), h(d)) for n, d in TIME_DEFINITIONS)
               + '</dl></section>')

    out.append('<section id="charts"><h2>Error rate and latency</h2>')
    out.append('<p>Source: %s</p>' % h(ctx['charts']['source_note']))
    out.append('<p>Thresholds drawn: %s.</p>' % h(thresholds_text(ctx['charts'])))
    if pngs:
        for name, caption in ((CHART_ERROR_RATE, '5xx error rate over the incident window'),
                              (CHART_LATENCY, 'p95 latency over the incident window')):
            if name in pngs:
                data = base64.b64encode(pngs[name]).decode('ascii')
                out.append('<figure><img alt="%s" src="data:image/png;base64,%s"><figcaption>%s</figcaption></figure>'
                           % (h(caption), data, h(caption)))
    elif chart_problem:
        out.append('<p class="note">Charts not rendered: %s.</p>' % h(chart_problem))
    markers = ctx['charts']['markers']
    if markers:
        out.append('<p>Marked on the charts: %s.</p>' % h(', '.join(m['label'] for m in markers)))
    out.append('</section>')

    out.append(_html_response(ctx))
    out.append(_html_timeline(ctx))
    out.append(_html_evidence(ctx))
    out.append(_html_actions(ctx))
    out.append('<section id="record"><h2>Record</h2><ul><li>summary.json: the machine-readable summary the runbook '
               'wrote</li><li>timeline.jsonl: every task with its redacted result</li></ul></section>')
    out.extend(['</main>', '</body>', '</html>', ''])
    return '\n'.join(out)


def _html_table_kv(rows):
    out = ['<table class="kv">']
    for name, value in rows:
        out.append('<tr><th>%s</th><td>%s</td></tr>' % (h(name), value if isinstance(value, _Raw) else h(value)))
    out.append('</table>')
    return '\n'.join(out)


def _html_response(ctx):
    summary = ctx['summary']
    out = ['<section id="response"><h2>Response</h2>']
    symptom = _dict(summary.get('symptom'))
    if symptom:
        out.append('<p><strong>Symptom</strong> %s %s</p>' % (
            _badge('present' if _truthy(symptom.get('present')) else 'absent'), h(symptom.get('summary') or '')))
    decision = _dict(summary.get('decision'))
    if decision.get('action'):
        out.append('<p><strong>Decision</strong> %s%s: %s</p>' % (
            h(decision.get('action')), (' &rarr; ' + h(decision.get('target'))) if decision.get('target') else '',
            h(decision.get('reason') or '')))
    mitigation = _dict(summary.get('mitigation'))
    if mitigation.get('status'):
        out.append('<p><strong>Mitigation</strong> %s %s</p>' % (
            _badge(mitigation.get('status')), h(mitigation.get('summary') or '')))
        before, after = _dict(mitigation.get('before')), _dict(mitigation.get('after'))
        if before or after:
            keys = list(before) + [key for key in after if key not in before]
            out.append(_html_table(['field', 'before', 'after'],
                                   [(key, _short(before.get(key)), _short(after.get(key))) for key in keys]))
    verification = _dict(summary.get('verification'))
    if verification.get('status'):
        out.append('<p><strong>Verification</strong> %s %s</p>' % (
            _badge(verification.get('status')), h(verification.get('summary') or '')))
        rounds = [_dict(r) for r in _list(verification.get('rounds'))]
        if rounds:
            out.append(_html_table(*verification_table(rounds)))
    if len(out) == 1:
        out.append('<p>No symptom, decision or mitigation was recorded.</p>')
    out.append('</section>')
    return '\n'.join(out)


def _html_timeline(ctx):
    out = ['<section id="timeline"><h2>Timeline</h2>']
    if not ctx['rows']:
        out.append('<p>No timeline events.</p></section>')
        return '\n'.join(out)
    out.append('<p>%d steps%s. Changed steps show their before &rarr; after.</p>' % (
        len(ctx['rows']), (', %d include/argument-check events omitted' % ctx['omitted']) if ctx['omitted'] else ''))
    rows, classes = [], []
    for row in ctx['rows']:
        if row['changes']:
            change = _Raw('<br>'.join('<code>%s</code>: %s &rarr; %s' % (h(f), h(b), h(a)) for f, b, a in row['changes']))
        else:
            change = _Raw('<br>'.join(h(item) for item in row['change']))
        rows.append((human_time(row['at']), row['phase'], row['task'], _badge(row['status'], row['status_class']),
                     row['duration'], change))
        classes.append('run' if row['task'] == 'run finished' else row['status_class'])
    out.append(_html_table(['time', 'phase', 'task', 'status', 'duration', 'change (before → after) / error'],
                           rows, row_classes=classes))
    out.append('</section>')
    return '\n'.join(out)


def _html_evidence(ctx):
    summary = ctx['summary']
    out = ['<section id="evidence"><h2>Evidence gathered</h2>', '<h3>Findings</h3>']
    findings = [_dict(f) for f in _list(summary.get('findings'))]
    if findings:
        out.append(_html_table(['check', 'status', 'summary'],
                               [(f.get('check'), _badge(f.get('status')), f.get('summary')) for f in findings]))
    else:
        out.append('<p>No investigation ran.</p>')
    out.append('<h3>Measurements taken by the runbook</h3>')
    if ctx['observations']:
        out.append(_html_table(['time', 'phase', 'source', 'error rate %', 'requests', 'latency ms', 'step'],
                               [(human_time(o['at']), o['phase'], o['source'], _opt(o['error_rate_pct']),
                                 _opt(o['requests']), ('%s (%s)' % (_opt(o['latency_ms']), o['latency_kind']))
                                 if o['latency_ms'] is not None else '-', o['task']) for o in ctx['observations']]))
    else:
        out.append('<p>None recorded.</p>')
    out.append('<h3>Error signatures</h3>')
    signatures = [_dict(s) for s in _list(summary.get('signatures'))]
    if not signatures:
        out.append('<p>None found in the log window.</p>')
    for index, sig in enumerate(signatures[:MAX_SIGNATURES], 1):
        out.append('<p>%d. <strong>%s</strong> &times; %s &ndash; first seen %s, last seen %s</p>' % (
            index, h(sig.get('signature')), h(sig.get('count')), h(sig.get('first_seen') or '-'),
            h(sig.get('last_seen') or '-')))
        sample = str(sig.get('sample') or '')
        if sample:
            if len(sample) > MAX_SAMPLE:
                sample = sample[:MAX_SAMPLE] + '\n... (%d characters truncated)' % (len(sample) - MAX_SAMPLE)
            out.append('<pre>%s</pre>' % h(sample))
    if len(signatures) > MAX_SIGNATURES:
        out.append('<p>%d more signatures in summary.json.</p>' % (len(signatures) - MAX_SIGNATURES))
    out.append('</section>')
    return '\n'.join(out)


def _html_actions(ctx):
    times = ctx['times']
    base = times['resolved_at'] if times['resolved_at'] is not None else times['recorded_at']
    out = ['<section id="actions"><h2>Action items</h2>',
           '<p>The post-incident checklist of the incident response playbook. Due dates count from the %s (%s).</p>'
           % (h(ctx['due_basis']), h(human_time(base)))]
    for phase, label, _offset, _texts in CHECKLIST:
        items = [item for item in ctx['action_items'] if item['phase'] == phase]
        if not items:
            continue
        out.append('<h3>%s (due %s)</h3>' % (h(label), h(human_time(parse_ts(items[0]['due'])))))
        out.append('<ul class="checklist">' + ''.join('<li>%s</li>' % h(item['item']) for item in items) + '</ul>')
    out.append('</section>')
    return '\n'.join(out)


# --------------------------------------------------------------------------- build and write
def build_report(incident_dir, series=None, thresholds=None, formats=FORMATS, title=None, metrics_error=None):
    """Render everything in memory.

    Returns {files: {name: bytes}, summary, action_items, charts: [png names], chart_source,
    chart_note, warnings, context}.
    """
    formats = list(formats or FORMATS)
    incident = load_incident(incident_dir)
    ctx = build_context(incident, series=series, thresholds=thresholds, title=title, metrics_error=metrics_error)
    warnings = []
    pngs, problem = {}, None
    if 'png' in formats or 'html' in formats:
        pngs, problem = render_charts(ctx['charts'])
        if problem:
            warnings.append('charts not rendered: %s; report.md and report.html are written without them' % problem)
    files = {}
    chart_files = sorted(pngs) if 'png' in formats else []
    if 'png' in formats:
        for name in chart_files:
            files[name] = pngs[name]
    if 'md' in formats:
        files[REPORT_MD] = render_markdown(ctx, chart_files=chart_files, html_written='html' in formats,
                                           chart_problem=problem).encode('utf-8')
    if 'html' in formats:
        files[REPORT_HTML] = render_html(ctx, pngs=pngs, chart_problem=problem).encode('utf-8')
    return dict(files=files, summary=report_summary(ctx), action_items=ctx['action_items'], charts=chart_files,
                chart_source=ctx['charts']['source'], chart_note=ctx['charts']['source_note'],
                warnings=warnings + ctx['notes'], context=ctx)


def write_files(directory, files, check_mode=False):
    """Write each file whose content differs (atomically); return the names that changed or would change.

    Unchanged files are not touched (their mtime stays). New files get mode 0640.
    """
    changed = []
    for name in sorted(files):
        path = os.path.join(directory, name)
        content = files[name]
        try:
            with open(path, 'rb') as handle:
                if handle.read() == content:
                    continue
        except (IOError, OSError):
            pass
        changed.append(name)
        if check_mode:
            continue
        mode = FILE_MODE
        if os.path.exists(path):
            mode = os.stat(path).st_mode & 0o7777
        handle, tmp = tempfile.mkstemp(prefix='.%s.' % name, dir=directory)
        try:
            with os.fdopen(handle, 'wb') as out:
                out.write(content)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return changed
