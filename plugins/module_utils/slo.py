# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""SLO arithmetic, pure and dependency free.

* ``error_rate`` - error-rate percentage from a request count and an error
  count. Zero requests is *no traffic*: the rate is ``0.0`` and
  ``no_traffic`` is ``True``; it is never a division error.
* ``percentile`` / ``percentiles`` - **nearest-rank** percentiles (no
  interpolation): the p-th percentile of N ascending samples is the sample at
  rank ``ceil(p / 100 * N)`` (1-based). The answer is always a value that was
  actually observed, which is what an operator expects when reading "p99 was
  812 ms". An empty sample list gives ``None``.
* ``compare`` / ``evaluate`` - threshold checks that return a structured
  verdict (``ok``/``breach``/``unknown``) instead of a bare boolean, so a
  report can say which objective failed, by how much, and which could not be
  judged because the value was missing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

PERCENTILE_METHOD = 'nearest_rank'
DEFAULT_PERCENTILES = (50, 95, 99)
RATE_DECIMALS = 4

# comparison name -> (symbol, predicate(value, threshold) meaning "objective met")
COMPARISONS = {
    'max': ('<=', lambda value, threshold: value <= threshold),
    'lt': ('<', lambda value, threshold: value < threshold),
    'min': ('>=', lambda value, threshold: value >= threshold),
    'gt': ('>', lambda value, threshold: value > threshold),
}

STATUS_OK = 'ok'
STATUS_BREACH = 'breach'
STATUS_UNKNOWN = 'unknown'


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value))


def _count(name, value):
    if value is None:
        return 0
    if not _is_number(value) or value < 0:
        raise ValueError('%s must be a non-negative number, got %r' % (name, value))
    return value


def error_rate(requests, errors, decimals=RATE_DECIMALS):
    """Error rate in percent, rounded to ``decimals`` places.

    ``None`` counts are treated as 0 (a metric with no datapoints). Returns a
    dict ``{requests, errors, error_rate_pct, no_traffic}``. With zero
    requests the rate is ``0.0`` and ``no_traffic`` is ``True``. More errors
    than requests (metrics that disagree at the window edges) gives a rate
    above 100, reported as such rather than hidden.
    """
    requests = _count('requests', requests)
    errors = _count('errors', errors)
    if requests == 0:
        return dict(requests=requests, errors=errors, error_rate_pct=0.0, no_traffic=True)
    rate = round(100.0 * errors / requests, decimals)
    return dict(requests=requests, errors=errors, error_rate_pct=rate, no_traffic=False)


def error_rate_pct(requests, errors, decimals=RATE_DECIMALS):
    """Just the percentage of ``error_rate`` (0.0 when there is no traffic)."""
    return error_rate(requests, errors, decimals)['error_rate_pct']


def _clean_samples(samples):
    values = []
    for sample in samples or ():
        if sample is None:
            continue
        if not _is_number(sample):
            raise ValueError('samples must be numbers, got %r' % (sample,))
        values.append(sample)
    return values


def percentile(samples, pct):
    """Nearest-rank percentile of ``samples`` (``None`` values are skipped).

    ``pct`` is in (0, 100]. Returns ``None`` for no samples.
    """
    if not _is_number(pct) or pct <= 0 or pct > 100:
        raise ValueError('percentile must be in (0, 100], got %r' % (pct,))
    values = sorted(_clean_samples(samples))
    if not values:
        return None
    rank = int(math.ceil(pct / 100.0 * len(values)))
    return values[max(rank, 1) - 1]


def percentiles(samples, pcts=DEFAULT_PERCENTILES):
    """``{'p50': v, 'p95': v, 'p99': v}`` (nearest rank) for the given ``pcts``."""
    values = sorted(_clean_samples(samples))
    out = {}
    for pct in pcts:
        key = 'p%s' % (('%g' % pct).replace('.', '_'))
        out[key] = percentile(values, pct)
    return out


def compare(name, value, threshold, comparison='max'):
    """Check one observed value against one objective.

    ``comparison`` says what the threshold is: ``max`` (value must be <=
    threshold), ``lt`` (<), ``min`` (>=) or ``gt`` (>). Returns::

        {name, value, threshold, comparison, operator, status, ok, breached, margin}

    ``status`` is ``ok``, ``breach`` or ``unknown`` (value is ``None``: no
    data, so the objective could not be judged - neither ``ok`` nor
    ``breached`` is true). ``margin`` is ``value - threshold`` (positive
    means above the threshold), ``None`` when unknown.
    """
    if comparison not in COMPARISONS:
        raise ValueError('comparison must be one of %s, got %r'
                         % (', '.join(sorted(COMPARISONS)), comparison))
    if not _is_number(threshold):
        raise ValueError('threshold for %s must be a number, got %r' % (name, threshold))
    symbol, predicate = COMPARISONS[comparison]
    verdict = dict(name=name, value=value, threshold=threshold, comparison=comparison,
                   operator=symbol, status=STATUS_UNKNOWN, ok=False, breached=False, margin=None)
    if value is None:
        return verdict
    if not _is_number(value):
        raise ValueError('value for %s must be a number or None, got %r' % (name, value))
    met = predicate(value, threshold)
    verdict.update(status=STATUS_OK if met else STATUS_BREACH, ok=met, breached=not met,
                   margin=round(value - threshold, 6))
    return verdict


def evaluate(observed, objectives):
    """Evaluate several objectives at once.

    ``observed`` maps a name (e.g. ``error_rate_pct``) to a value or
    ``None``. ``objectives`` maps the same names to either a number (treated
    as ``max``) or a dict with one comparison key, e.g. ``{'max': 1.0}`` or
    ``{'min': 99.9}``. A name missing from ``observed`` is ``unknown``.

    Returns ``{status, ok, checks, breaches, unknown}``: ``status`` is
    ``breach`` if any objective is breached, else ``unknown`` if any could
    not be judged, else ``ok``; ``ok`` is true only when every objective was
    judged and met; ``breaches``/``unknown`` list the names, in order.
    """
    checks = []
    for name in sorted(objectives):
        spec = objectives[name]
        if isinstance(spec, dict):
            if len(spec) != 1:
                raise ValueError('objective %s must have exactly one of %s, got %r'
                                 % (name, ', '.join(sorted(COMPARISONS)), spec))
            comparison, threshold = list(spec.items())[0]
        else:
            comparison, threshold = 'max', spec
        checks.append(compare(name, (observed or {}).get(name), threshold, comparison))
    breaches = [c['name'] for c in checks if c['status'] == STATUS_BREACH]
    unknown = [c['name'] for c in checks if c['status'] == STATUS_UNKNOWN]
    if breaches:
        status = STATUS_BREACH
    elif unknown:
        status = STATUS_UNKNOWN
    else:
        status = STATUS_OK
    return dict(status=status, ok=status == STATUS_OK, checks=checks, breaches=breaches,
                unknown=unknown)
