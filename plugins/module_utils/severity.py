# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Incident severity (P0-P3) from observed signals and a rules table.

Pure and dependency free: no network, no clock (the caller passes ``now``).

Signals
    A flat dict ``{name: value}`` of what triage observed, for example
    ``{'availability_reachable': True, 'error_rate_pct': 7.2, 'p95_ms': 180.0,
    'running_tasks': 3, 'desired_tasks': 3}``.

    * A signal that is absent or ``None`` was **not observed** (not configured,
      no data): every condition on it is false. It is listed in
      ``not_observed`` when a rule refers to it, never in the reasons.
    * The value ``'unreachable'`` (``UNREACHABLE``) means the backend that
      would have answered did not. For a **reachability signal** - a name
      ending in ``_reachable`` (``availability_reachable``, ``db_reachable``,
      ``redis_reachable``, ...) - that *is* the evidence: it counts as
      ``False``, so ``db_reachable: unreachable`` matches ``is_false``
      (database unreachable -> P1). For any other signal it cannot be judged:
      conditions on it are false, and the reasons say it could not be read
      and why (from ``sources``), so "AWS unreachable" is never mistaken for
      "all clear".

Rules
    A list of ``{id, severity, description, when}`` (no other keys):

    * ``id`` - unique name, used for routing and in reasons;
    * ``severity`` - ``P0`` | ``P1`` | ``P2`` | ``P3``;
    * ``description`` - what it means for a person (the seed's wording);
    * ``when`` - a condition: ``{signal: NAME, op: OP, value: X}`` with OP
      one of ``> >= < <= == !=`` (``value`` required; a number for the
      ordering operators) or ``is_true`` / ``is_false`` (no ``value``);
      or ``{all: [conditions]}`` / ``{any: [conditions]}``, nested freely.

    Every rule is evaluated; the **highest** severity among the matched rules
    wins (P0 beats P1), and among equals the first in table order comes
    first. No rule matched: ``P3`` (next business day) with ``incident``
    false.

``classify`` returns ``{severity, response, response_minutes, respond_by,
page, incident, matched, reasons, affected_features, unreadable,
not_observed, evidence}``; see its docstring.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import math

UNREACHABLE = 'unreachable'
REACHABILITY_SUFFIX = '_reachable'

SEVERITIES = ('P0', 'P1', 'P2', 'P3')
DEFAULT_SEVERITY = 'P3'

# The seed's response times and paging (Phase 1, step 4: "P0/P1: Page
# immediately; P2: Slack notification; P3: Create ticket").
RESPONSE = {
    'P0': dict(response='immediate', response_minutes=0, page='pagerduty'),
    'P1': dict(response='30 min', response_minutes=30, page='pagerduty'),
    'P2': dict(response='2 hours', response_minutes=120, page='slack'),
    'P3': dict(response='next business day', response_minutes=None, page='ticket'),
}

ORDERING_OPS = ('>', '>=', '<', '<=')
EQUALITY_OPS = ('==', '!=')
TRUTH_OPS = ('is_true', 'is_false')
OPS = ORDERING_OPS + EQUALITY_OPS + TRUTH_OPS

RULE_KEYS = ('id', 'severity', 'description', 'when')
LEAF_KEYS = ('signal', 'op', 'value')
GROUP_KEYS = ('all', 'any')

_TRUE_STRINGS = ('true', 'yes', 'on', '1')
_FALSE_STRINGS = ('false', 'no', 'off', '0')


def _signal(name, op, value=None):
    cond = dict(signal=name, op=op)
    if op not in TRUTH_OPS:
        cond['value'] = value
    return cond


# The seed's "INCIDENT CLASSIFICATION", one rule per line that maps to a
# signal triage can observe. P3's lines (minor bugs, feature requests,
# documentation issues) come from people, not signals: they are the default.
DEFAULT_RULES = [
    dict(id='complete_outage', severity='P0',
         description='Complete service outage',
         when={'any': [
             _signal('availability_reachable', 'is_false'),
             # "Complete": (nearly) every /health request fails. A bad deploy
             # failing half of them is partial degradation (P1), not an outage.
             _signal('health_error_rate_pct', '>=', 90),
             {'all': [_signal('running_tasks', '==', 0), _signal('desired_tasks', '>', 0)]},
         ]}),
    dict(id='security_compromise', severity='P0',
         description='Data breach or security compromise',
         when=_signal('security_compromise', 'is_true')),
    dict(id='payment_processing_failure', severity='P0',
         description='Payment processing failure',
         when={'any': [_signal('payments_ok', 'is_false'),
                       _signal('payments_reachable', 'is_false')]}),
    dict(id='partial_degradation', severity='P1',
         description='Partial service degradation (>5% error rate)',
         when=_signal('error_rate_pct', '>', 5)),
    dict(id='database_connection_failures', severity='P1',
         description='Database connection failures',
         when={'any': [_signal('db_reachable', 'is_false'),
                       _signal('db_connection_errors', '>', 0)]}),
    dict(id='authentication_down', severity='P1',
         description='Authentication system down',
         when={'any': [_signal('auth_ok', 'is_false'),
                       _signal('auth_reachable', 'is_false')]}),
    dict(id='background_job_failures', severity='P2',
         description='Background job failures',
         when=_signal('background_job_failures', '>', 0)),
    dict(id='integration_errors', severity='P2',
         description='Integration errors (ERP, email)',
         when=_signal('integration_errors', '>', 0)),
    # "Performance degradation (<SLO)": the SLO is the seed's resolution gate,
    # p95 < 500 ms and error rate < 1%. Two rules, so routing can tell them apart.
    dict(id='latency_above_slo', severity='P2',
         description='Performance degradation (<SLO): p95 latency above 500 ms',
         when=_signal('p95_ms', '>', 500)),
    dict(id='error_rate_above_slo', severity='P2',
         description='Performance degradation (<SLO): error rate above 1%',
         when=_signal('error_rate_pct', '>', 1)),
]

# Signal -> the user-facing features it stands for ("Determine affected
# users/features"). Tunable per inventory; unknown signals affect nothing.
DEFAULT_FEATURES = {
    'availability_reachable': ['Entire service (API and web app)'],
    'health_error_rate_pct': ['Entire service (API and web app)'],
    'running_tasks': ['Entire service (API and web app)'],
    'error_rate_pct': ['API'],
    'p95_ms': ['API'],
    'security_compromise': ['Customer data'],
    'payments_ok': ['Payments (Stripe)'],
    'payments_reachable': ['Payments (Stripe)'],
    'db_reachable': ['Everything that reads or writes data'],
    'db_connection_errors': ['Everything that reads or writes data'],
    'auth_ok': ['Login (password and SSO)'],
    'auth_reachable': ['Login (password and SSO)'],
    'background_job_failures': ['Background jobs (reports, exports, notifications)'],
    'integration_errors': ['Integrations (ERP, email)'],
}


class RulesError(ValueError):
    """A rules table that cannot be evaluated; the message names the rule and field."""


def default_rules():
    """A copy of the built-in table (safe to modify)."""
    return copy.deepcopy(DEFAULT_RULES)


def default_features():
    return copy.deepcopy(DEFAULT_FEATURES)


def is_reachability_signal(name):
    return name.endswith(REACHABILITY_SUFFIX)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value))


def _number(value):
    """value as a float, or None if it is not a number (numeric strings count)."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None


def _boolean(value):
    """value as a bool, or None if it is not a boolean."""
    if isinstance(value, bool):
        return value
    if _is_number(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_STRINGS:
            return True
        if text in _FALSE_STRINGS:
            return False
    return None


def _is_unreachable(value):
    return isinstance(value, str) and value.strip().lower() == UNREACHABLE


# -- validation ---------------------------------------------------------------

def _validate_condition(cond, where):
    if not isinstance(cond, dict):
        raise RulesError('%s must be a condition (a dict with signal/op/value, all or any), got %r'
                         % (where, cond))
    groups = [k for k in GROUP_KEYS if k in cond]
    if groups:
        if len(cond) != 1:
            raise RulesError('%s must have exactly one key (%s) when it is a group, got keys %s'
                             % (where, ' or '.join(GROUP_KEYS), ', '.join(sorted(str(k) for k in cond))))
        key = groups[0]
        items = cond[key]
        if not isinstance(items, list) or not items:
            raise RulesError('%s.%s must be a non-empty list of conditions, got %r' % (where, key, items))
        for index, item in enumerate(items):
            _validate_condition(item, '%s.%s[%d]' % (where, key, index))
        return
    unknown = sorted(str(k) for k in cond if k not in LEAF_KEYS)
    if unknown:
        raise RulesError('%s has unknown key(s) %s; a condition is {signal, op, value}, {all: [...]} '
                         'or {any: [...]}' % (where, ', '.join(unknown)))
    signal = cond.get('signal')
    if not isinstance(signal, str) or not signal.strip():
        raise RulesError('%s.signal must be a non-empty signal name, got %r' % (where, signal))
    op = cond.get('op')
    if op not in OPS:
        raise RulesError('%s.op must be one of %s, got %r' % (where, ' '.join(OPS), op))
    if op in TRUTH_OPS:
        if 'value' in cond:
            raise RulesError('%s.value must not be set with op %s' % (where, op))
        return
    if 'value' not in cond:
        raise RulesError('%s.value is required with op %s' % (where, op))
    value = cond['value']
    if op in ORDERING_OPS and not _is_number(value):
        raise RulesError('%s.value must be a number with op %s, got %r' % (where, op, value))
    if op in EQUALITY_OPS and not (value is None or isinstance(value, (str, bool, int, float))):
        raise RulesError('%s.value must be a number, string or boolean with op %s, got %r'
                         % (where, op, value))


def validate_rules(rules):
    """Check a rules table; return it (unchanged) or raise RulesError naming the rule and field."""
    if not isinstance(rules, list) or not rules:
        raise RulesError('rules must be a non-empty list of {id, severity, description, when}, got %r'
                         % (rules,))
    seen = {}
    for index, rule in enumerate(rules):
        label = 'rules[%d]' % index
        if not isinstance(rule, dict):
            raise RulesError('%s must be a dict with %s, got %r' % (label, ', '.join(RULE_KEYS), rule))
        rule_id = rule.get('id')
        if not isinstance(rule_id, str) or not rule_id.strip():
            raise RulesError('%s.id must be a non-empty string, got %r' % (label, rule_id))
        label = "rules[%d] (id '%s')" % (index, rule_id)
        if rule_id in seen:
            raise RulesError('%s: id is already used by rules[%d]; ids must be unique' % (label, seen[rule_id]))
        seen[rule_id] = index
        unknown = sorted(str(k) for k in rule if k not in RULE_KEYS)
        if unknown:
            raise RulesError('%s has unknown key(s) %s; a rule has only %s'
                             % (label, ', '.join(unknown), ', '.join(RULE_KEYS)))
        if rule.get('severity') not in SEVERITIES:
            raise RulesError('%s.severity must be one of %s, got %r'
                             % (label, ', '.join(SEVERITIES), rule.get('severity')))
        description = rule.get('description')
        if not isinstance(description, str) or not description.strip():
            raise RulesError('%s.description must be a non-empty string, got %r' % (label, description))
        if 'when' not in rule:
            raise RulesError('%s.when is required (the condition that matches the rule)' % label)
        _validate_condition(rule['when'], '%s.when' % label)
    return rules


def validate_features(features):
    if not isinstance(features, dict):
        raise RulesError('features must map a signal name to a list of feature names, got %r' % (features,))
    out = {}
    for signal, names in features.items():
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RulesError("features['%s'] must be a list of feature names, got %r" % (signal, names))
        out[str(signal)] = names
    return out


# -- evaluation ---------------------------------------------------------------

def _fmt(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return ('%.4f' % value).rstrip('0').rstrip('.')
    return str(value)


def _observe(name, signals):
    """(state, value) of a signal: state is observed, missing, unreadable or reachability_lost."""
    if name not in signals or signals[name] is None:
        return 'missing', None
    value = signals[name]
    if _is_unreachable(value):
        if is_reachability_signal(name):
            return 'reachability_lost', False
        return 'unreadable', None
    return 'observed', value


class _Leaf:
    """The outcome of one {signal, op, value} condition."""

    def __init__(self, cond, state, value, result, text):
        self.signal = cond['signal']
        self.cond = cond
        self.state = state
        self.value = value
        self.result = result
        self.text = text


def _leaf(cond, signals):
    name, op = cond['signal'], cond['op']
    state, observed = _observe(name, signals)
    if state in ('missing', 'unreadable'):
        return _Leaf(cond, state, None, False, '')
    if op in TRUTH_OPS:
        flag = _boolean(observed)
        if flag is None:
            return _Leaf(cond, 'not_boolean', observed, False, '')
        result = flag if op == 'is_true' else not flag
        if state == 'reachability_lost':
            text = '%s is false (did not answer)' % name
        else:
            text = '%s is %s' % (name, _fmt(flag))
        return _Leaf(cond, state, flag, result, text)
    target = cond['value']
    if op in ORDERING_OPS:
        number = _number(observed)
        if number is None:
            return _Leaf(cond, 'not_number', observed, False, '')
        result = {'>': number > target, '>=': number >= target,
                  '<': number < target, '<=': number <= target}[op]
        return _Leaf(cond, state, number, result, '%s = %s %s %s' % (name, _fmt(number), op, _fmt(target)))
    # == / !=: numbers compare as numbers, booleans as booleans, else as strings.
    left, right = observed, target
    if _number(observed) is not None and _is_number(target):
        left, right = _number(observed), float(target)
    elif isinstance(target, bool) and _boolean(observed) is not None:
        left = _boolean(observed)
    elif isinstance(target, str):
        left = str(observed)
    equal = left == right
    result = equal if op == '==' else not equal
    return _Leaf(cond, state, left, result, '%s = %s %s %s' % (name, _fmt(left), op, _fmt(target)))


def _evaluate(cond, signals, leaves):
    """Evaluate a condition; append every leaf outcome to leaves; return (result, true leaves)."""
    if 'all' in cond:
        results = [_evaluate(c, signals, leaves) for c in cond['all']]
        if all(result for result, _hits in results):
            return True, [leaf for _result, hits in results for leaf in hits]
        return False, []
    if 'any' in cond:
        results = [_evaluate(c, signals, leaves) for c in cond['any']]
        matched = any(result for result, _hits in results)
        return matched, [leaf for result, hits in results if result for leaf in hits]
    leaf = _leaf(cond, signals)
    leaves.append(leaf)
    return leaf.result, ([leaf] if leaf.result else [])


def _with_source(text, signal, sources):
    source = sources.get(signal)
    return '%s (%s)' % (text, source) if source else text


def _iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def response_for(severity, now=None):
    """{response, response_minutes, page, respond_by} for a severity; respond_by needs now (epoch)."""
    out = dict(RESPONSE[severity])
    minutes = out['response_minutes']
    out['respond_by'] = _iso(now + minutes * 60) if (now is not None and minutes is not None) else None
    return out


def classify(signals, rules=None, features=None, sources=None, now=None):
    """Classify ``signals`` with ``rules`` (default: the built-in table).

    ``features`` maps a signal to user-facing feature names (default: the
    built-in map); ``sources`` maps a signal to where it came from (text added
    to the reasons, e.g. "CloudWatch ALB metrics over 300 s" or the error of a
    backend that did not answer); ``now`` (epoch seconds) gives ``respond_by``.

    Returns a dict:

    * ``severity`` - P0..P3: the highest among matched rules, P3 if none;
    * ``response`` / ``response_minutes`` / ``page`` / ``respond_by`` - from
      the seed (immediate/0, 30 min/30, 2 hours/120, next business day/None;
      pagerduty, pagerduty, slack, ticket);
    * ``incident`` - whether any rule matched;
    * ``matched`` - ``[{id, severity, description}]``, highest severity first,
      table order among equals;
    * ``reasons`` - one line per matched rule with the observed values (and
      their sources), then one line per signal that could not be read;
    * ``affected_features`` - features of the signals behind the matched rules;
    * ``unreadable`` - signals whose backend did not answer (not judged);
    * ``not_observed`` - signals the rules use that were not provided;
    * ``evidence`` - ``[{signal, value, status, source}]`` for every signal
      given, status ``problem`` (behind a matched rule), ``unreachable``
      (value ``unreachable``, or a reachability signal that is false) or
      ``observed`` (no rule fired on it; not a verdict that it is fine).
    """
    if not isinstance(signals, dict):
        raise RulesError('signals must be a dict of signal name to value, got %r' % (signals,))
    rules = validate_rules(default_rules() if rules is None else rules)
    features = validate_features(default_features() if features is None else features)
    sources = dict((str(k), '' if v is None else str(v)) for k, v in (sources or {}).items())

    matched = []
    referenced = []
    for order, rule in enumerate(rules):
        leaves = []
        result, hits = _evaluate(rule['when'], signals, leaves)
        for leaf in leaves:
            if leaf.signal not in referenced:
                referenced.append(leaf.signal)
        if result:
            matched.append((SEVERITIES.index(rule['severity']), order, rule, hits))
    matched.sort(key=lambda item: (item[0], item[1]))

    severity = matched[0][2]['severity'] if matched else DEFAULT_SEVERITY
    reasons = []
    affected = []
    problem_signals = []
    for _rank, _order, rule, hits in matched:
        detail = '; '.join(_with_source(leaf.text, leaf.signal, sources) for leaf in hits)
        reasons.append('%s %s - %s: %s' % (rule['severity'], rule['id'], rule['description'], detail))
        for leaf in hits:
            if leaf.signal not in problem_signals:
                problem_signals.append(leaf.signal)
            for feature in features.get(leaf.signal, []):
                if feature not in affected:
                    affected.append(feature)
    if not matched:
        observed = [name for name in signals if signals[name] is not None]
        reasons.append('no rule matched: nothing observed needs a response (%d signals observed: %s)'
                       % (len(observed), ', '.join(observed) or 'none'))

    unreadable = [name for name in signals
                  if _is_unreachable(signals[name]) and not is_reachability_signal(name)]
    for name in unreadable:
        reasons.append(_with_source('%s could not be read, not judged: its backend is unreachable' % name,
                                    name, sources))
    not_observed = [name for name in referenced if name not in signals or signals[name] is None]

    evidence = []
    for name, value in signals.items():
        if value is None:
            continue
        if _is_unreachable(value) or (is_reachability_signal(name) and _boolean(value) is False):
            status = 'unreachable'
        elif name in problem_signals:
            status = 'problem'
        else:
            status = 'observed'
        evidence.append(dict(signal=name, value=value, status=status, source=sources.get(name, '')))

    out = dict(
        severity=severity,
        incident=bool(matched),
        matched=[dict(id=rule['id'], severity=rule['severity'], description=rule['description'])
                 for _rank, _order, rule, _hits in matched],
        reasons=reasons,
        affected_features=affected,
        unreadable=unreadable,
        not_observed=not_observed,
        evidence=evidence,
    )
    out.update(response_for(severity, now))
    return out
