"""How long does scheduled health verification take for 1, 10 and 50 services?

Starts a sandbox of its own on free loopback ports (stopped by PID at the
end), writes an inventory of N service hosts that all point at it (each host
runs every check: /health, ECS, CloudWatch metrics, PostgreSQL, Redis, the
Stripe key), runs playbooks/health_verification.yml with the given forks, and
prints the wall time and the time per service for each N.

    .venv/bin/python benchmarks/health_verification.py                 # 1, 10, 50 services, forks 5 and 20
    .venv/bin/python benchmarks/health_verification.py --services 1 10 --forks 10

A benchmark prints figures; it asserts nothing (the tests do that).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox import Sandbox  # noqa: E402
from tests.e2e.conftest import wait_for_metrics  # noqa: E402
from tests.helpers.servers import free_port  # noqa: E402


def connection(box):
    with open(box.connection_file) as fh:
        return json.loads(''.join(line for line in fh if not line.startswith('#')))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--services', type=int, nargs='+', default=[1, 10, 50])
    ap.add_argument('--forks', type=int, nargs='+', default=[5, 20])
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix='svpms-bench-health-')
    box = Sandbox(os.path.join(work, 'sandbox'), moto_port=free_port(), twin_port=free_port(),
                  receiver_port=free_port(), redis_port=free_port(), stripe_port=free_port())
    print('starting a sandbox in %s ...' % work, flush=True)
    box.start()
    try:
        wait_for_metrics(box)  # moto answers 500 before the twin's first metrics: the verdicts would be 'unknown'
        conn = connection(box)
        local = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}
        print('%8s %6s %10s %14s %s' % ('services', 'forks', 'wall s', 'per service s', 'verdicts'))
        for n in args.services:
            hosts = {'svpms-api-%03d' % i: dict(local, **conn) for i in range(n)}
            inv = os.path.join(work, 'inventory-%d.yml' % n)
            with open(inv, 'w') as fh:
                yaml.safe_dump({'all': {'children': {'svpms_services': {'hosts': hosts}}}}, fh)
            for forks in args.forks:
                out = os.path.join(work, 'health-%d-%d' % (n, forks))
                env = dict(os.environ, SVPMS_HEALTH_DIR=out, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'))
                t0 = time.perf_counter()
                proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                                       os.path.join(REPO, 'playbooks', 'health_verification.yml'), '-i', inv,
                                       '-f', str(forks), '-e', 'health_check_window_seconds=120',
                                       '-e', 'svpms_latency_source=probe'],  # moto has no percentiles
                                      capture_output=True, text=True, env=env, cwd=REPO, timeout=3600, check=False)
                wall = time.perf_counter() - t0
                try:
                    with open(os.path.join(out, 'health.json')) as fh:
                        verdicts = json.load(fh)['counts']
                except (OSError, ValueError):
                    verdicts = 'no health.json (rc %d): %s' % (proc.returncode, proc.stderr[-300:])
                print('%8d %6d %10.1f %14.2f %s' % (n, forks, wall, wall / n, verdicts), flush=True)
    finally:
        box.stop()
        print('sandbox stopped')


if __name__ == '__main__':
    main()
