"""Pure rollback logic: module_utils/rollback.py (no boto, no network, no clock)."""

import datetime

import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils.rollback import (
    TaskDefinitionRef,
    choose_rollback_candidate,
    deployment_age_seconds,
    parse_task_definition,
    recent_deployment,
    rollout_in_progress,
    same_task_definition,
)

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ARN = 'arn:aws:ecs:eu-west-1:123456789012:task-definition/%s:%d'


def arn(revision, family='svpms-api'):
    return ARN % (family, revision)


def short(revision, family='svpms-api'):
    return '%s:%d' % (family, revision)


def tds(active=(), inactive=(), ident=arn):
    return ([dict(taskDefinitionArn=ident(r), status='ACTIVE') for r in active]
            + [dict(taskDefinitionArn=ident(r), status='INACTIVE') for r in inactive])


def deployment(status, td, rollout='COMPLETED', created=NOW, id_='ecs-svc/1'):
    return dict(id=id_, status=status, taskDefinition=td, rolloutState=rollout, createdAt=created,
                desiredCount=2, runningCount=2, pendingCount=0)


def service(td, deployments=None):
    return dict(serviceName='svpms-api', taskDefinition=td,
                deployments=deployments if deployments is not None else [deployment('PRIMARY', td)])


# ----------------------------------------------------------- identifiers

@pytest.mark.parametrize('identifier,expected', [
    (arn(4), TaskDefinitionRef('svpms-api', 4)),
    ('svpms-api:4', TaskDefinitionRef('svpms-api', 4)),
    ('svpms-api', TaskDefinitionRef('svpms-api', None)),
    ('arn:aws-us-gov:ecs:us-gov-west-1:123456789012:task-definition/svpms_api-2:17',
     TaskDefinitionRef('svpms_api-2', 17)),
])
def test_parse_task_definition(identifier, expected):
    assert parse_task_definition(identifier) == expected


@pytest.mark.parametrize('identifier', ['', 'svpms api:3', 'svpms-api:three', 'arn:aws:ecs:x:1:service/a/b', None])
def test_parse_task_definition_rejects_garbage(identifier):
    with pytest.raises(ValueError):
        parse_task_definition(identifier)


def test_same_task_definition_compares_family_and_revision():
    assert same_task_definition(arn(3), 'svpms-api:3')
    assert not same_task_definition(arn(3), 'svpms-api:4')
    assert not same_task_definition(arn(3), arn(3, family='svpms-worker'))
    assert not same_task_definition(None, 'svpms-api:3')
    assert str(parse_task_definition(arn(3))) == 'svpms-api:3'


# ------------------------------------------------------------- candidate

def test_candidate_is_newest_older_active_revision():
    got = choose_rollback_candidate(service(arn(4)), tds(active=[1, 2, 3, 4]))
    assert got == dict(task_definition=arn(3), family='svpms-api', revision=3,
                       reason='newest ACTIVE revision of family svpms-api older than the current svpms-api:4')


def test_candidate_skips_inactive_revisions():
    got = choose_rollback_candidate(service(arn(4)), tds(active=[1, 2, 4], inactive=[3]))
    assert got['revision'] == 2


def test_candidate_skips_newer_revisions_and_the_current_one():
    got = choose_rollback_candidate(service(arn(3)), tds(active=[1, 2, 3, 4, 5]))
    assert got['revision'] == 2


def test_candidate_ignores_other_families_sharing_the_prefix():
    listed = tds(active=[2, 4]) + [dict(taskDefinitionArn=arn(3, family='svpms-api-worker'), status='ACTIVE')]
    assert choose_rollback_candidate(service(arn(4)), listed)['task_definition'] == arn(2)


@pytest.mark.parametrize('current,listed', [
    (arn(2), tds(active=[2], inactive=[1])),   # the only older one is deregistered
    (arn(1), tds(active=[1, 2, 3])),           # nothing older
    (arn(4), []),                               # nothing listed
    ('svpms-api', tds(active=[1, 2])),          # no revision to compare with
])
def test_no_candidate(current, listed):
    assert choose_rollback_candidate(service(current), listed) is None


def test_rollout_in_progress_picks_the_active_deployment():
    svc = service(arn(5), [
        deployment('PRIMARY', arn(5), rollout='IN_PROGRESS', id_='ecs-svc/new'),
        deployment('ACTIVE', arn(3), rollout='COMPLETED', id_='ecs-svc/old',
                   created=NOW - datetime.timedelta(days=2)),
    ])
    # Revision 4 exists and is ACTIVE, but what served before this rollout was 3.
    got = choose_rollback_candidate(svc, tds(active=[1, 2, 3, 4, 5]))
    assert (got['task_definition'], got['revision']) == (arn(3), 3)
    assert 'rollout in progress' in got['reason'] and 'ecs-svc/old' in got['reason']


def test_rollout_in_progress_with_deregistered_previous_falls_back():
    svc = service(arn(5), [deployment('PRIMARY', arn(5), rollout='IN_PROGRESS'),
                           deployment('ACTIVE', arn(3), id_='ecs-svc/old')])
    got = choose_rollback_candidate(svc, tds(active=[2, 4, 5], inactive=[3]))
    assert got['revision'] == 4 and 'older than' in got['reason']


def test_rollout_in_progress_without_active_deployment_uses_older_revision():
    svc = service(arn(5), [deployment('PRIMARY', arn(5), rollout='IN_PROGRESS')])
    assert rollout_in_progress(svc)
    assert choose_rollback_candidate(svc, tds(active=[3, 4, 5]))['revision'] == 4


@pytest.mark.parametrize('service_ident,listed_ident', [
    (short, arn),    # moto: service stores family:rev, list returns ARNs
    (arn, arn),      # AWS
    (arn, short),
    (short, short),
])
def test_identifier_spellings_compare_by_family_and_revision(service_ident, listed_ident):
    got = choose_rollback_candidate(service(service_ident(4)), tds(active=[2, 3, 4], ident=listed_ident))
    assert got['revision'] == 3 and got['task_definition'] == listed_ident(3)
    rolling = service(service_ident(4), [deployment('PRIMARY', service_ident(4), rollout='IN_PROGRESS'),
                                         deployment('ACTIVE', service_ident(2))])
    got = choose_rollback_candidate(rolling, tds(active=[2, 3, 4], ident=listed_ident))
    assert got['revision'] == 2 and got['task_definition'] == listed_ident(2)


def test_rollout_in_progress_rules():
    assert not rollout_in_progress(service(arn(4)))
    assert not rollout_in_progress(service(arn(4), []))
    assert rollout_in_progress(service(arn(4), [deployment('PRIMARY', arn(4), rollout='IN_PROGRESS')]))
    assert rollout_in_progress(service(arn(4), [deployment('PRIMARY', arn(4)), deployment('ACTIVE', arn(3))]))
    # CODE_DEPLOY-controlled services report no rolloutState.
    assert not rollout_in_progress(service(arn(4), [deployment('PRIMARY', arn(4), rollout=None)]))


# ------------------------------------------------------ recent deployment

@pytest.mark.parametrize('age,lookback,recent', [
    (0, 3600, True),
    (600, 3600, True),
    (3600, 3600, True),
    (3601, 3600, False),
    (86400, 3600, False),
    (-30, 3600, True),   # createdAt slightly ahead of our clock
])
def test_recent_deployment_lookback(age, lookback, recent):
    primary = deployment('PRIMARY', arn(4), created=NOW - datetime.timedelta(seconds=age))
    got = recent_deployment([deployment('ACTIVE', arn(3)), primary], NOW, lookback)
    assert (got is primary) is recent
    assert deployment_age_seconds(primary, NOW) == max(0, age)


def test_recent_deployment_needs_a_primary_and_accepts_iso_strings():
    assert recent_deployment([], NOW, 3600) is None
    assert recent_deployment([deployment('ACTIVE', arn(3))], NOW, 3600) is None
    iso = deployment('PRIMARY', arn(4), created='2026-03-01T11:50:00Z')
    assert recent_deployment([iso], NOW, 3600) is iso
    assert deployment_age_seconds(iso, NOW) == 600
    naive = deployment('PRIMARY', arn(4), created=datetime.datetime(2026, 3, 1, 10, 0, 0))  # naive = UTC
    assert recent_deployment([naive], NOW, 3600) is None
    assert deployment_age_seconds(naive, NOW) == 7200
    assert deployment_age_seconds(None, NOW) is None
