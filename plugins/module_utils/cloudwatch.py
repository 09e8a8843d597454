# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""CloudWatch metrics: one GetMetricData request for many metrics.

Build every ``MetricDataQuery`` first (``metric_query``), send them together
in ONE ``GetMetricData`` request (``get_metric_data``: up to 500 queries,
``NextToken`` pages merged per query id), then reduce each series
(``series_sum``/``series_avg``/``series_max``/``weighted_avg``). All calls go
through ``AWSClient.call`` from ``module_utils/aws.py``, so retries and typed
``AWSError`` apply per page.

Also: time-window parsing (ISO 8601 or epoch seconds, UTC), period
validation (1, 5, 10, 30 or a multiple of 60 - what CloudWatch accepts) and
window alignment to period boundaries.

Metric math is deliberately not used: derived values (error rate) are
computed client-side, which works the same against CloudWatch and moto.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import math
import re
import time

MAX_QUERIES_PER_CALL = 500
DEFAULT_MAX_PAGES = 100
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 30)
_QUERY_ID_RE = re.compile(r'^[a-z][a-zA-Z0-9_]*$')
_ISO_RE = re.compile(
    r'^(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d+))?)?)?'
    r'\s*(?P<tz>Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$')

EPOCH = datetime.datetime(1970, 1, 1)


# --------------------------------------------------------------------------- time


def _time_now():
    return time.time()


def to_epoch(dt):
    """Epoch seconds (float) for a naive-UTC or aware datetime."""
    if dt.tzinfo is not None:
        return calendar.timegm(dt.utctimetuple()) + dt.microsecond / 1e6
    return (dt - EPOCH).total_seconds()


def from_epoch(seconds):
    """Naive UTC datetime for epoch seconds."""
    return EPOCH + datetime.timedelta(seconds=seconds)


def iso(dt):
    """ISO-8601 UTC with a ``Z`` suffix (seconds precision)."""
    if dt is None:
        return None
    if isinstance(dt, (int, float)):
        dt = from_epoch(dt)
    if dt.tzinfo is not None:
        dt = from_epoch(to_epoch(dt))
    return dt.replace(microsecond=0).strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_time(value, name='time'):
    """Epoch seconds (float) from ISO 8601 or epoch seconds (int/float/str).

    ISO strings without an offset are taken as UTC. Raises ``ValueError``
    naming ``name`` on anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError('%s must be an ISO 8601 timestamp or epoch seconds, got %r' % (name, value))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = None
        if seconds is None:
            match = _ISO_RE.match(text)
            if not match:
                raise ValueError('%s must be an ISO 8601 timestamp (e.g. 2026-02-13T10:04:00Z) or '
                                 'epoch seconds, got %r' % (name, value))
            try:
                dt = datetime.datetime.strptime(match.group('date'), '%Y-%m-%d')
            except ValueError:
                raise ValueError('%s has an invalid date: %r' % (name, value))
            hour, minute, sec = (int(match.group(k) or 0) for k in ('h', 'm', 's'))
            if hour > 23 or minute > 59 or sec > 59:
                raise ValueError('%s has an invalid time of day: %r' % (name, value))
            frac = match.group('frac')
            micro = int((frac + '000000')[:6]) if frac else 0
            dt = dt.replace(hour=hour, minute=minute, second=sec, microsecond=micro)
            seconds = to_epoch(dt)
            tz = match.group('tz')
            if tz and tz.upper() not in ('Z', 'UTC'):
                sign = -1 if tz[0] == '-' else 1
                digits = tz[1:].replace(':', '')
                offset = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
                seconds -= sign * offset
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError('%s must be a time after 1970-01-01, got %r' % (name, value))
    if seconds > 1e11:
        raise ValueError('%s looks like epoch milliseconds (%r); give epoch seconds' % (name, value))
    return seconds


def resolve_window(window_seconds=None, start_time=None, end_time=None, now=None,
                   start_name='start_time', end_name='end_time'):
    """``(start, end)`` epoch seconds: explicit start, else end - window_seconds.

    ``end`` defaults to now. Raises ``ValueError`` naming the parameter.
    """
    now = _time_now() if now is None else now
    end = parse_time(end_time, end_name) if end_time is not None else now
    if start_time is not None:
        start = parse_time(start_time, start_name)
    else:
        if window_seconds is None or window_seconds <= 0:
            raise ValueError('window_seconds must be a positive number of seconds, got %r'
                             % (window_seconds,))
        start = end - window_seconds
    if start >= end:
        raise ValueError('%s (%s) must be before %s (%s)' % (start_name, iso(start), end_name, iso(end)))
    return start, end


def validate_period(period):
    """None if ``period`` is a valid CloudWatch period, else an error message."""
    if isinstance(period, bool) or not isinstance(period, int) or period <= 0 or (
            period not in HIGH_RESOLUTION_PERIODS and period % 60 != 0):
        return ('period_seconds must be 1, 5, 10, 30 or a multiple of 60 (CloudWatch periods), '
                'got %r' % (period,))
    return None


def align_window(start, end, period):
    """Start rounded down, end rounded up to ``period`` boundaries (epoch seconds, ints).

    CloudWatch buckets datapoints on period boundaries anyway; aligning
    ourselves makes the reported window the one the numbers cover.
    """
    start = int(math.floor(start / period) * period)
    end = int(math.ceil(end / period) * period)
    if end <= start:
        end = start + period
    return start, end


def window_period(start, end):
    """A single CloudWatch period covering [start, end): the window length, valid for CloudWatch."""
    length = int(math.ceil(end - start))
    if length in HIGH_RESOLUTION_PERIODS or length % 60 == 0:
        return length
    for candidate in HIGH_RESOLUTION_PERIODS:
        if length <= candidate:
            return candidate
    return int(math.ceil(length / 60.0) * 60)


# --------------------------------------------------------------------------- queries


def dimensions_list(dimensions):
    """CloudWatch ``[{'Name','Value'}]`` from a dict (sorted by name for stable output)."""
    return [dict(Name=name, Value=str(dimensions[name])) for name in sorted(dimensions or {})]


def metric_query(query_id, namespace, metric_name, dimensions, stat, period, label=None,
                 unit=None, return_data=True):
    """One ``MetricDataQuery`` of type ``MetricStat``."""
    if not _QUERY_ID_RE.match(query_id or ''):
        raise ValueError('query id %r must start with a lower-case letter and contain only '
                         'letters, digits and underscores' % (query_id,))
    error = validate_period(period)
    if error:
        raise ValueError(error)
    metric_stat = dict(Metric=dict(Namespace=namespace, MetricName=metric_name,
                                   Dimensions=dimensions_list(dimensions)),
                       Period=period, Stat=stat)
    if unit:
        metric_stat['Unit'] = unit
    query = dict(Id=query_id, MetricStat=metric_stat, ReturnData=return_data)
    if label:
        query['Label'] = label
    return query


def describe_query(query):
    """A snake_case record of a MetricDataQuery, for module output."""
    stat = query['MetricStat']
    metric = stat['Metric']
    return dict(id=query['Id'], label=query.get('Label'), namespace=metric['Namespace'],
                metric_name=metric['MetricName'],
                dimensions=dict((d['Name'], d['Value']) for d in metric.get('Dimensions', [])),
                stat=stat['Stat'], period_seconds=stat['Period'], unit=stat.get('Unit'))


def _epoch_of(ts):
    if isinstance(ts, datetime.datetime):
        return to_epoch(ts)
    if isinstance(ts, (int, float)):
        return float(ts)
    return parse_time(ts, 'timestamp')


def get_metric_data(client, queries, start, end, max_pages=DEFAULT_MAX_PAGES):
    """Send ``queries`` in one GetMetricData request and page through ``NextToken``.

    ``client`` is an ``AWSClient`` for ``cloudwatch``; ``start``/``end`` are
    epoch seconds. Returns ``(results, calls)`` where ``results`` maps each
    query id to ``{label, status_code, messages, points}`` and ``points`` is a
    list of ``(epoch_seconds, value)`` sorted ascending; ``calls`` is the
    number of API requests made (pages). Raises ``AWSError`` from the client;
    ``ValueError`` for more than 500 queries or duplicate ids.
    """
    if not queries:
        return {}, 0
    if len(queries) > MAX_QUERIES_PER_CALL:
        raise ValueError('GetMetricData takes at most %d queries, got %d'
                         % (MAX_QUERIES_PER_CALL, len(queries)))
    ids = [q['Id'] for q in queries]
    if len(set(ids)) != len(ids):
        raise ValueError('metric query ids must be unique: %s' % ', '.join(ids))
    results = dict((q['Id'], dict(label=q.get('Label'), status_code=None, messages=[], points={}))
                   for q in queries)
    params = dict(MetricDataQueries=queries, StartTime=from_epoch(start), EndTime=from_epoch(end),
                  ScanBy='TimestampAscending')
    calls = 0
    while True:
        page = client.call('get_metric_data', **params)
        calls += 1
        for item in page.get('MetricDataResults', []):
            entry = results.setdefault(item.get('Id'), dict(label=None, status_code=None,
                                                            messages=[], points={}))
            if item.get('Label') and not entry['label']:
                entry['label'] = item['Label']
            entry['status_code'] = item.get('StatusCode') or entry['status_code']
            entry['messages'].extend(m.get('Value') or m.get('Code') for m in item.get('Messages', []))
            for ts, value in zip(item.get('Timestamps', []), item.get('Values', [])):
                entry['points'][_epoch_of(ts)] = float(value)
        token = page.get('NextToken')
        if not token or calls >= max_pages:
            break
        params['NextToken'] = token
    for entry in results.values():
        entry['points'] = sorted(entry['points'].items())
        if token and calls >= max_pages:
            entry['status_code'] = 'PartialData'
    return results, calls


# --------------------------------------------------------------------------- reductions


def values_of(points):
    return [value for _ts, value in points or []]


def series_sum(points):
    """Sum of the values; 0.0 for no datapoints (a count with no datapoints is zero)."""
    return float(sum(values_of(points)))


def series_avg(points):
    """Mean of the values, or ``None`` for no datapoints."""
    values = values_of(points)
    return float(sum(values)) / len(values) if values else None


def series_max(points):
    """Largest value, or ``None`` for no datapoints."""
    values = values_of(points)
    return max(values) if values else None


def weighted_avg(points, weight_points):
    """Mean of ``points`` weighted by ``weight_points`` at the same timestamps.

    Used to combine per-period averages (latency) by per-period counts
    (requests). Falls back to the plain mean when no weights line up.
    """
    weights = dict(weight_points or [])
    total = 0.0
    weight_sum = 0.0
    for ts, value in points or []:
        weight = weights.get(ts)
        if weight:
            total += value * weight
            weight_sum += weight
    if weight_sum > 0:
        return total / weight_sum
    return series_avg(points)


def scaled(value, factor, digits=3):
    return None if value is None else round(value * factor, digits)


def series_records(points, factor=1.0, digits=6):
    """``[{timestamp: ISO, value}]`` ascending, values multiplied by ``factor``."""
    return [dict(timestamp=iso(ts), value=round(value * factor, digits))
            for ts, value in sorted(points or [])]


# --------------------------------------------------------------------------- publishing

# What PutMetricData accepts (CloudWatch API reference, MetricDatum / StandardUnit).
STANDARD_UNITS = (
    'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes',
    'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second',
    'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second',
    'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None')
MAX_METRICS_PER_PUT = 1000
MAX_DIMENSIONS = 30
MAX_NAME_LENGTH = 255
MAX_DIMENSION_VALUE_LENGTH = 1024
# CloudWatch rejects values outside 8.515920e-109 .. 1.174271e+108 in magnitude (and NaN/Infinity).
MAX_ABS_VALUE = 1.174271e108
MIN_ABS_VALUE = 8.515920e-109
# Accepted timestamps: up to two weeks old, up to two hours ahead.
MAX_AGE_SECONDS = 14 * 24 * 3600
MAX_AHEAD_SECONDS = 2 * 3600


def validate_namespace(namespace):
    """None if ``namespace`` is one PutMetricData accepts for custom metrics, else an error message."""
    if not isinstance(namespace, str) or not namespace.strip():
        return 'namespace must be a non-empty string, for example SVPMS/HealthVerification'
    if len(namespace) > MAX_NAME_LENGTH:
        return 'namespace must be at most %d characters, got %d' % (MAX_NAME_LENGTH, len(namespace))
    if namespace.startswith(':') or namespace != namespace.strip():
        return 'namespace must not start with ":" or have leading/trailing spaces, got %r' % namespace
    if namespace.upper().startswith('AWS/'):
        return ('namespace %r is reserved: namespaces starting with "AWS/" belong to AWS services; '
                'use your own, for example SVPMS/HealthVerification' % namespace)
    return None


def metric_datum(metric, index=0, now=None):
    """One PutMetricData ``MetricDatum`` from a ``metrics`` entry (name, value, unit, dimensions,
    timestamp, storage_resolution). Raises ValueError naming ``metrics[index].<field>`` and what is allowed."""
    where = 'metrics[%d]' % index
    if not isinstance(metric, dict):
        raise ValueError('%s must be a dictionary with name and value, got %r' % (where, metric))
    unknown = sorted(set(metric) - {'name', 'value', 'unit', 'dimensions', 'timestamp', 'storage_resolution'})
    if unknown:
        raise ValueError('%s has unknown keys %s; allowed: name, value, unit, dimensions, timestamp, '
                         'storage_resolution' % (where, ', '.join(unknown)))
    name = metric.get('name')
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ValueError('%s.name must be a metric name of 1 to %d characters, got %r' % (where, MAX_NAME_LENGTH, name))
    value = metric.get('value')
    if isinstance(value, bool):
        value = 1.0 if value else 0.0  # a verdict as 1/0
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError('%s.value must be a number, got %r' % (where, metric.get('value')))
    if math.isnan(value) or math.isinf(value) or abs(value) > MAX_ABS_VALUE or (0 < abs(value) < MIN_ABS_VALUE):
        raise ValueError('%s.value must be a finite number CloudWatch can store (0, or a magnitude between '
                         '%g and %g), got %r' % (where, MIN_ABS_VALUE, MAX_ABS_VALUE, metric.get('value')))
    unit = metric.get('unit') or 'None'
    if unit not in STANDARD_UNITS:
        raise ValueError('%s.unit must be one of %s; got %r' % (where, ', '.join(STANDARD_UNITS), unit))
    dimensions = metric.get('dimensions') or {}
    if not isinstance(dimensions, dict):
        raise ValueError('%s.dimensions must be a dictionary of name: value, got %r' % (where, dimensions))
    if len(dimensions) > MAX_DIMENSIONS:
        raise ValueError('%s.dimensions has %d entries; CloudWatch allows at most %d'
                         % (where, len(dimensions), MAX_DIMENSIONS))
    for dim_name, dim_value in dimensions.items():
        if not isinstance(dim_name, str) or not dim_name.strip() or len(dim_name) > MAX_NAME_LENGTH \
                or dim_name.startswith(':'):
            raise ValueError('%s.dimensions: %r is not a dimension name (1 to %d characters, not starting with ":")'
                             % (where, dim_name, MAX_NAME_LENGTH))
        text = '' if dim_value is None else str(dim_value)
        if not text.strip() or len(text) > MAX_DIMENSION_VALUE_LENGTH:
            raise ValueError('%s.dimensions.%s must have a value of 1 to %d characters, got %r'
                             % (where, dim_name, MAX_DIMENSION_VALUE_LENGTH, dim_value))
    now = _time_now() if now is None else now
    timestamp = metric.get('timestamp')
    seconds = now if timestamp in (None, '') else parse_time(timestamp, '%s.timestamp' % where)
    if seconds < now - MAX_AGE_SECONDS or seconds > now + MAX_AHEAD_SECONDS:
        raise ValueError('%s.timestamp %s is outside what CloudWatch accepts (at most two weeks old, at most '
                         'two hours ahead of now, %s)' % (where, iso(seconds), iso(now)))
    resolution = metric.get('storage_resolution', 60)
    if resolution in (None, ''):
        resolution = 60
    if isinstance(resolution, bool) or str(resolution) not in ('1', '60'):
        raise ValueError('%s.storage_resolution must be 1 (high resolution) or 60 (standard), got %r'
                         % (where, resolution))
    return dict(MetricName=name, Value=value, Unit=unit, Dimensions=dimensions_list(dimensions),
                Timestamp=from_epoch(seconds), StorageResolution=int(resolution))


def describe_datum(namespace, datum):
    """``namespace/name{dim=value,...} value unit @ time`` - one line of a diff or a timeline."""
    dims = ','.join('%s=%s' % (d['Name'], d['Value']) for d in datum['Dimensions'])
    value = '%g' % datum['Value']
    return '%s/%s{%s} %s %s @ %s' % (namespace, datum['MetricName'], dims, value, datum['Unit'], iso(datum['Timestamp']))
