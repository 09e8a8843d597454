"""Scenario 2 (high latency) end to end, cache and CPU causes, on the local sandbox.

One sandbox, the tests run in file order, each from a healthy sandbox:
cache_miss_storm (a config push set the cache TTL to 1 s) -> triage routes to
the runbook, which raises the TTL again; the same with a TTL setting too low
to help -> verification fails and the thread escalates; slow_deploy (a
CPU-heavy revision) -> the runbook scales out within the cap. State is read
back from SSM and ECS in moto and from the twin.
"""
import pytest

from tests.e2e.conftest import run_playbook
from tests.e2e.latency import FAST_VERIFY, assert_clean_output, connection, heal, playbook, wait_for_latency
from tests.helpers.servers import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def healed_afterwards(sandbox):
    """Each test starts from a healthy sandbox, also after a failed one."""
    yield
    heal(sandbox)


def test_cache_miss_storm_routed_by_triage_raises_the_ttl(sandbox, tmp_path):
    conn = connection(sandbox)
    ssm = sandbox.boto('ssm')
    parameter = conn['svpms_cache_ttl_parameter']
    sandbox.inject('cache_miss_storm')
    assert ssm.get_parameter(Name=parameter)['Parameter']['Value'] == '1'
    wait_for_latency(sandbox)
    # a cache refills as requests come in: give it the settle time a real one needs
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-triage', '-e', 'triage_route=true', *FAST_VERIFY,
                       '-e', 'verify_recovery_settle_seconds=15', playbook='%s/playbooks/triage.yml' % REPO)
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['scenario'] == 'high_latency', summary
    assert summary['outcome'] == 'recovered', summary
    assert summary['decision']['action'] == 'ssm_flag'
    findings = {f['check']: f for f in summary['findings']}
    assert findings['cache hit rate']['status'] == 'problem'
    assert ssm.get_parameter(Name=parameter)['Parameter']['Value'] == str(conn['svpms_cache_ttl_seconds'])
    # the routed run released the service's mitigation lock (the next incident can act)
    lock = sandbox.boto('dynamodb').get_item(TableName=conn['svpms_lock_table'], Key={'lock_key': {'S': 'svpms-api'}})
    assert 'Item' not in lock, lock
    # P2 (performance under the SLO): a Slack post in #incidents, no page
    paths = [n['path'] for n in sandbox.notifications()]
    assert any(p.endswith('/chat.postMessage') for p in paths), paths
    assert not any(p.endswith('/v2/enqueue') for p in paths), paths
    assert_clean_output(run)


def test_a_mitigation_that_does_not_help_is_escalated(sandbox, tmp_path):
    """A team's TTL setting too low to help: the runbook applies it, the
    verification fails, the thread says so and escalates, the run fails."""
    conn = connection(sandbox)
    ssm = sandbox.boto('ssm')
    sandbox.inject('cache_miss_storm')
    wait_for_latency(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-escalate', '-e', 'triage_route=true', *FAST_VERIFY,
                       '-e', 'high_latency_cache_ttl_seconds=2', playbook='%s/playbooks/triage.yml' % REPO)
    assert run.rc != 0
    assert 'Not recovered:' in run.output
    summary = run.summary()
    assert summary['outcome'] == 'not_recovered', summary
    assert summary['mitigation']['status'] == 'applied'
    assert summary['verification']['status'] == 'failed'
    assert ssm.get_parameter(Name=conn['svpms_cache_ttl_parameter'])['Parameter']['Value'] == '2'
    posts = [n for n in sandbox.notifications() if n['path'].endswith('/chat.postMessage')
             and 'e2e-lat-escalate' in (n.get('json') or {}).get('text', '')]
    assert posts and 'Escalating.' in posts[-1]['json']['text'], posts
    assert_clean_output(run)


def test_slow_deploy_scales_out_within_the_cap(sandbox, tmp_path):
    ecs = sandbox.boto('ecs')

    def desired():
        return ecs.describe_services(cluster=conn['svpms_ecs_cluster'],
                                     services=[conn['svpms_ecs_service']])['services'][0]['desiredCount']
    conn = connection(sandbox)
    before = desired()
    sandbox.inject('slow_deploy')
    wait_for_latency(sandbox)
    run = run_playbook(sandbox, tmp_path, 'e2e-lat-scale', *FAST_VERIFY, '-e', 'high_latency_scale_max_count=6',
                       playbook=playbook())
    assert run.rc == 0, run.output
    summary = run.summary()
    assert summary['decision']['action'] == 'ecs_scale', summary['decision']
    assert summary['outcome'] == 'recovered', summary
    assert desired() == min(before + 3, 6)
    findings = {f['check']: f for f in summary['findings']}
    assert findings['CPU and memory']['status'] == 'problem'
    assert findings['recent deployments']['status'] == 'problem'  # reported, rolling back is a human's call
    assert_clean_output(run)
