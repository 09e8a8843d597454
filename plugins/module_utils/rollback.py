# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure decision logic for ECS rollbacks: no boto, no network, no clock.

Inputs are the shapes the ECS API returns (``describe_services`` service
entries with camelCase keys; task definitions as ``{'taskDefinitionArn': ...,
'status': 'ACTIVE'|'INACTIVE'}``), so the same code runs on real AWS
responses, on moto's and on recorded shapes in unit tests.

Task-definition identifiers come in two spellings: AWS returns ARNs
(``arn:aws:ecs:us-east-1:123456789012:task-definition/svpms-api:4``) while
moto stores whatever string ``update_service`` was given (``svpms-api:3``).
Everything here compares them by (family, revision), never as strings.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re
from collections import namedtuple

_TASK_DEFINITION_RE = re.compile(
    r'^(?:arn:[a-z0-9-]+:ecs:[a-z0-9-]*:[0-9]*:task-definition/)?'
    r'(?P<family>[A-Za-z0-9_-]{1,255})(?::(?P<revision>[0-9]+))?$')

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class TaskDefinitionRef(namedtuple('TaskDefinitionRef', ['family', 'revision'])):
    """A task definition as (family, revision); revision is None for a bare family."""

    __slots__ = ()

    def __str__(self):
        if self.revision is None:
            return self.family
        return '%s:%d' % (self.family, self.revision)


def parse_task_definition(identifier):
    """Parse ``family:revision``, a task-definition ARN or a bare family.

    Raises ValueError for anything else.
    """
    if not isinstance(identifier, str):
        raise ValueError('task definition identifier must be a string, got %r' % (identifier,))
    match = _TASK_DEFINITION_RE.match(identifier.strip())
    if not match:
        raise ValueError('%r is not a task definition family:revision or ARN' % (identifier,))
    revision = match.group('revision')
    return TaskDefinitionRef(match.group('family'), int(revision) if revision is not None else None)


def try_parse_task_definition(identifier):
    """parse_task_definition, or None when the identifier is missing or malformed."""
    try:
        return parse_task_definition(identifier)
    except ValueError:
        return None


def same_task_definition(left, right):
    """True when two identifiers name the same family and revision."""
    a = try_parse_task_definition(left)
    b = try_parse_task_definition(right)
    return a is not None and a == b


def as_utc(value):
    """A datetime (aware, naive-as-UTC) or ISO-8601 string -> aware UTC datetime, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith('Z'):
            text = text[:-1] + '+00:00'
        value = datetime.datetime.fromisoformat(text)
    if isinstance(value, (int, float)):
        return _EPOCH + datetime.timedelta(seconds=value)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def _created_sort_key(deployment):
    created = as_utc(deployment.get('createdAt'))
    return created or _EPOCH


def primary_deployment(deployments):
    """The PRIMARY deployment (the newest if, oddly, several), or None."""
    primaries = [d for d in deployments or [] if d.get('status') == 'PRIMARY']
    if not primaries:
        return None
    return max(primaries, key=_created_sort_key)


def rollout_in_progress(service):
    """More than one deployment, or a PRIMARY whose rolloutState is IN_PROGRESS."""
    deployments = service.get('deployments') or []
    if len(deployments) > 1:
        return True
    return any(d.get('status') == 'PRIMARY' and d.get('rolloutState') == 'IN_PROGRESS'
               for d in deployments)


def deployment_age_seconds(deployment, now):
    """Seconds since the deployment's createdAt (0 if in the future), or None."""
    if not deployment:
        return None
    created = as_utc(deployment.get('createdAt'))
    if created is None:
        return None
    return max(0, int((as_utc(now) - created).total_seconds()))


def recent_deployment(deployments, now, lookback_seconds):
    """The PRIMARY deployment if it was created within ``lookback_seconds`` of ``now``.

    Returns the deployment (as given) or None. A createdAt slightly in the
    future (clock skew) counts as age 0, i.e. recent.
    """
    primary = primary_deployment(deployments)
    age = deployment_age_seconds(primary, now)
    if age is None or age > lookback_seconds:
        return None
    return primary


def _candidate(identifier, ref, reason):
    return dict(task_definition=identifier, family=ref.family, revision=ref.revision, reason=reason)


def choose_rollback_candidate(service, task_definitions):
    """Pick the task definition to roll back to, or None.

    ``service``: a describe_services entry (``taskDefinition``, ``deployments``).
    ``task_definitions``: ``[{'taskDefinitionArn': ..., 'status': ...}]`` for the
    service's family (and for the families of its ACTIVE deployments). Only
    revisions listed here with status ACTIVE can be chosen, so a deregistered
    (INACTIVE) or unknown revision is never picked, nor is the current one.

    Rules, in order:

    1. While a rollout is in progress (see rollout_in_progress), the task
       definition of the newest ACTIVE (previous) deployment: what was
       serving before the deployment that is rolling out now.
    2. Otherwise (or if rule 1 finds nothing usable), the newest ACTIVE
       revision of the current family whose revision is lower than the
       current one.

    Returns ``dict(task_definition, family, revision, reason)`` where
    task_definition is the identifier as listed (an ARN on AWS).
    """
    current = try_parse_task_definition(service.get('taskDefinition'))
    if current is None or current.revision is None:
        return None

    active = {}
    for td in task_definitions or []:
        if td.get('status') != 'ACTIVE':
            continue
        ref = try_parse_task_definition(td.get('taskDefinitionArn'))
        if ref is None or ref.revision is None:
            continue
        active.setdefault(ref, td['taskDefinitionArn'])

    if rollout_in_progress(service):
        previous = [d for d in service.get('deployments') or [] if d.get('status') == 'ACTIVE']
        for deployment in sorted(previous, key=_created_sort_key, reverse=True):
            ref = try_parse_task_definition(deployment.get('taskDefinition'))
            if ref is None or ref == current or ref not in active:
                continue
            return _candidate(
                active[ref], ref,
                'rollout in progress: deployment %s (ACTIVE, previous) runs %s; current is %s'
                % (deployment.get('id'), ref, current))

    older = [ref for ref in active if ref.family == current.family and ref.revision < current.revision]
    if not older:
        return None
    best = max(older, key=lambda ref: ref.revision)
    return _candidate(active[best], best,
                      'newest ACTIVE revision of family %s older than the current %s'
                      % (current.family, current))
