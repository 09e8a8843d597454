"""How long does the high-latency runbook's database + cache evidence pass take?

Runs pg_activity, pg_query_stats and redis_health the way Ansible runs a
module (a fresh interpreter per call, arguments in a file) against a real
PostgreSQL and Redis, N times, and prints min / median / p95 / max wall time
per module and for the whole pass. Read-only: no canary, no cancellation.

    .venv/bin/python benchmarks/evidence_pass.py                # 127.0.0.1:5432 and :6379
    .venv/bin/python benchmarks/evidence_pass.py --runs 20 --pg-db test --redis-port 6389

A benchmark prints figures; it asserts nothing (the tests do that).
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests.helpers.modules import run_module  # noqa: E402  (the tests' module runner)


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--pg-host', default='127.0.0.1')
    ap.add_argument('--pg-port', type=int, default=5432)
    ap.add_argument('--pg-db', default='postgres')
    ap.add_argument('--pg-user', default='postgres')
    ap.add_argument('--redis-host', default='127.0.0.1')
    ap.add_argument('--redis-port', type=int, default=6379)
    ap.add_argument('--sample-seconds', type=float, default=0.0,
                    help='redis_health hit-rate sample (the runbook uses a few seconds; 0 times the calls alone)')
    args = ap.parse_args()
    pg = dict(host=args.pg_host, port=args.pg_port, database=args.pg_db, user=args.pg_user)
    calls = [
        ('pg_activity', dict(pg, long_running_seconds=30)),
        ('pg_query_stats', dict(pg)),
        ('redis_health', dict(host=args.redis_host, port=args.redis_port, sample_seconds=args.sample_seconds,
                              ping_count=5)),
    ]
    times = {name: [] for name, _a in calls}
    passes = []
    notes = {}
    for _i in range(args.runs):
        t_pass = time.perf_counter()
        for name, margs in calls:
            t0 = time.perf_counter()
            result = run_module(name, margs)
            times[name].append((time.perf_counter() - t0) * 1000.0)
            if result.get('failed') or result.get('reachable') is False:
                notes[name] = result.get('msg')
        passes.append((time.perf_counter() - t_pass) * 1000.0)
    print('evidence pass: %d runs, PostgreSQL %s:%d/%s, Redis %s:%d, redis sample %.1f s'
          % (args.runs, args.pg_host, args.pg_port, args.pg_db, args.redis_host, args.redis_port,
             args.sample_seconds))
    print('%-16s %9s %9s %9s %9s' % ('ms (wall)', 'min', 'median', 'p95', 'max'))
    for name, values in list(times.items()) + [('whole pass', passes)]:
        print('%-16s %9.1f %9.1f %9.1f %9.1f' % (name, min(values), statistics.median(values), pct(values, 0.95),
                                                 max(values)))
    for name, msg in notes.items():
        print('note: %s did not reach its backend: %s' % (name, msg))
    print('(each call includes starting a Python interpreter, as Ansible does per task)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
