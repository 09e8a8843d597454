import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.helpers.servers import REPO, VENV_BIN, free_port

sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox import Sandbox  # noqa: E402


@pytest.fixture(scope='module')
def sandbox(tmp_path_factory, request):
    """A sandbox of our own (moto_server + twin) on free loopback ports; without payments (no Stripe stand-in,
    no payment traffic) unless the test file sets SANDBOX_PAYMENTS = True."""
    state = tmp_path_factory.mktemp('sandbox')
    box = Sandbox(str(state), moto_port=free_port(), twin_port=free_port(), receiver_port=free_port(),
                  redis_port=free_port(), stripe_port=free_port(),
                  payments=getattr(request.module, 'SANDBOX_PAYMENTS', False))
    box.start()
    try:
        yield box
    finally:
        box.stop()


def wait_for_symptom(box, timeout=90):
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'wait_for_symptom.py'),
                           '--state-dir', box.state_dir, '--timeout', str(timeout)],
                          capture_output=True, text=True, timeout=timeout + 30, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


class PlaybookRun:
    def __init__(self, proc, incident_dir):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.incident_dir = incident_dir

    @property
    def output(self):
        return self.stdout + self.stderr

    def summary(self):
        with open(os.path.join(self.incident_dir, 'summary.json')) as fh:
            return json.load(fh)

    def report(self):
        with open(os.path.join(self.incident_dir, 'report.md')) as fh:
            return fh.read()

    def timeline(self):
        with open(os.path.join(self.incident_dir, 'timeline.jsonl')) as fh:
            return [json.loads(line) for line in fh]


def run_playbook(box, tmp_path, incident_id, *extra, playbook=None, env=None, cwd=REPO, timeout=600):
    """ansible-playbook against the sandbox inventory, pointed at this sandbox."""
    root = str(tmp_path / 'incidents')
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'),
           playbook or os.path.join(REPO, 'playbooks', 'scenario_high_error_rate.yml'),
           '-i', os.path.join(REPO, 'inventories', 'sandbox'),
           '-e', '@' + os.path.join(box.state_dir, 'connection.yml'),
           '-e', 'incident_id=%s' % incident_id] + list(extra)
    run_env = dict(os.environ, SVPMS_INCIDENT_ROOT=root, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
                   ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')
    run_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=run_env, cwd=cwd, check=False,
                          stdin=subprocess.DEVNULL)  # non-interactive, as AWX, EDA and cron run it
    return PlaybookRun(proc, os.path.join(root, incident_id))


def sandbox_inventory(box, dest):
    """A copy of inventories/sandbox in `dest` with this sandbox's connection settings as group vars, as AWX
    and ansible-rulebook get an environment's inventory (no -e @connection.yml there). -> dest (str)."""
    shutil.copytree(os.path.join(REPO, 'inventories', 'sandbox'), dest)
    with open(os.path.join(box.connection_file)) as fh:
        conn = json.loads(''.join(line for line in fh if not line.startswith('#')))
    # host vars of svpms-api, read after its service.yml: they win over the inventory's placeholders
    with open(os.path.join(dest, 'host_vars', 'svpms-api', 'zz_connection.yml'), 'w') as fh:
        json.dump(conn, fh, indent=2)  # JSON is YAML
    return str(dest)


def wait_for_metrics(box, timeout=60):
    """Until the twin has published ALB request counts to CloudWatch (moto answers 500 before any)."""
    cw = box.boto('cloudwatch')

    def published():
        return bool(cw.list_metrics(Namespace='AWS/ApplicationELB', MetricName='RequestCount')['Metrics'])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if published():
            time.sleep(6)  # one more publish interval: a full datapoint
            return
        time.sleep(1)
    raise AssertionError('no RequestCount metric in CloudWatch after %d s' % timeout)
