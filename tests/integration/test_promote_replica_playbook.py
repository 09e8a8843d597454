"""playbooks/promote_replica.yml against moto_server: the promotion is always
behind an approval, whatever incident_mode says.

moto's promote_read_replica answers success but changes nothing
(notes/moto.md), so an approved run here shows the other honest outcome: the
module promoted, waited (bounded) for the instance to become standalone, and
the run reports that it did not - it never claims a promotion it did not see.
The promote-and-wait success path is unit-tested with Stubber
(tests/unit/plugins/modules/test_rds_promote_replica_stubber.py).
"""
import json
import os
import subprocess
import pytest

from tests.helpers.rds import source_and_replica
from tests.helpers.servers import REPO, VENV_BIN

SECRETS = ('sandbox-secret-key',)


@pytest.fixture(scope='module')
def replica(moto):
    with source_and_replica(moto.endpoint, 'svpms-pb-db') as dbs:
        yield dict(endpoint=moto.endpoint, rds=dbs['rds'], source=dbs['source'], name=dbs['replica'])


def run(replica, tmp_path, incident_id, *extra):
    root = tmp_path / 'incidents'
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), os.path.join(REPO, 'playbooks', 'promote_replica.yml'),
           '-i', os.path.join(REPO, 'inventories', 'sandbox'),
           '-e', 'svpms_aws_endpoint_url=%s' % replica['endpoint'], '-e', 'svpms_lock_table=',
           '-e', 'promote_replica_identifier=%s' % replica['name'], '-e', 'incident_id=%s' % incident_id,
           '-e', 'promote_replica_wait_timeout=4'] + list(extra)
    env = dict(os.environ, SVPMS_INCIDENT_ROOT=str(root), ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_NOCOLOR='1')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO, check=False,
                          stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert 'Traceback' not in out
    for secret in SECRETS:
        assert secret not in out
    with open(os.path.join(str(root), incident_id, 'summary.json')) as fh:
        return proc.returncode, out, json.load(fh)


def still_a_replica(replica):
    inst = replica['rds'].describe_db_instances(DBInstanceIdentifier=replica['name'])['DBInstances'][0]
    return inst.get('ReadReplicaSourceDBInstanceIdentifier') is not None


def test_auto_mode_still_requires_approval(replica, tmp_path):
    """The sandbox inventory says incident_mode=auto; promotion asks anyway."""
    rc, out, summary = run(replica, tmp_path, 'pb-promote-approve')
    token = 'rds_promote_replica:svpms-api:%s' % replica['name']
    assert rc != 0
    assert 'incident_approve=%s' % token in out
    assert summary['outcome'] == 'approval_required'
    assert summary['findings'][0]['status'] == 'ok'
    assert replica['source'] in summary['findings'][0]['summary']
    assert still_a_replica(replica)


def test_check_mode_shows_the_plan(replica, tmp_path):
    rc, _out, summary = run(replica, tmp_path, 'pb-promote-check', '--check')
    assert rc == 0
    assert summary['outcome'] == 'would_mitigate'
    assert summary['mitigation']['status'] == 'would_apply'
    assert still_a_replica(replica)


def test_approved_promotion_reports_what_it_saw(replica, tmp_path):
    token = 'rds_promote_replica:svpms-api:%s' % replica['name']
    rc, out, summary = run(replica, tmp_path, 'pb-promote-approved', '-e', 'incident_approve=%s' % token)
    # moto accepted the call but the instance is still a replica: a bounded wait, then a clear failure
    assert rc != 0
    assert summary['outcome'] in ('mitigation_failed', 'failed'), summary
    assert 'Promote %s' % replica['name'] in summary['failure']
    assert 'recovered' not in summary['outcome']


def test_missing_identifier_is_a_clear_error(tmp_path):
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), os.path.join(REPO, 'playbooks', 'promote_replica.yml'),
           '-i', os.path.join(REPO, 'inventories', 'sandbox')]
    env = dict(os.environ, SVPMS_INCIDENT_ROOT=str(tmp_path), ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_NOCOLOR='1')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=REPO, check=False,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert 'promote_replica_identifier is required' in proc.stdout + proc.stderr
    assert not os.listdir(str(tmp_path)), 'nothing is opened before the input is checked'
