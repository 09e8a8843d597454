"""Wait, bounded, until the sandbox shows the symptom an alarm would page on,
then return: the 5xx rate in CloudWatch ALB metrics (--symptom error_rate), or
the p95 latency (--symptom latency) as the service twin measures it over its
last 10 s (moto cannot compute CloudWatch percentiles).

Used by `make demo` and the end-to-end tests between injecting a fault and
running the runbook.
"""
import argparse
import datetime
import os
import sys
import json
import time
import urllib.request

import boto3
import yaml
from botocore.config import Config


def error_rate(conn, window=60):
    cw = boto3.client('cloudwatch', region_name=conn['svpms_aws_region'],
                      endpoint_url=conn['svpms_aws_endpoint_url'],
                      aws_access_key_id=conn['svpms_aws_access_key'],
                      aws_secret_access_key=conn['svpms_aws_secret_key'],
                      config=Config(retries={'max_attempts': 1}, connect_timeout=2, read_timeout=5))
    end = datetime.datetime.now(datetime.timezone.utc)
    dims = [{'Name': 'LoadBalancer', 'Value': conn['svpms_alb_load_balancer']},
            {'Name': 'TargetGroup', 'Value': conn['svpms_alb_target_group']}]
    queries = [{'Id': qid, 'MetricStat': {'Metric': {'Namespace': 'AWS/ApplicationELB', 'MetricName': name,
                                                     'Dimensions': dims},
                                          'Period': 10, 'Stat': 'Sum'}}
               for qid, name in (('req', 'RequestCount'), ('err', 'HTTPCode_Target_5XX_Count'))]
    resp = cw.get_metric_data(MetricDataQueries=queries, StartTime=end - datetime.timedelta(seconds=window),
                              EndTime=end)
    sums = {r['Id']: sum(r['Values']) for r in resp['MetricDataResults']}
    return (100.0 * sums.get('err', 0) / sums['req']) if sums.get('req') else 0.0


def twin_p95(conn, window=10):
    base = conn['svpms_health_url'].rsplit('/health', 1)[0]
    with urllib.request.urlopen('%s/twin/state?window=%d' % (base, window), timeout=5) as resp:
        return json.load(resp)['window']['p95_ms'] or 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--state-dir', default='.sandbox')
    ap.add_argument('--symptom', choices=('error_rate', 'latency'), default='error_rate')
    ap.add_argument('--threshold', type=float, default=2.0, help='5xx %% (error_rate)')
    ap.add_argument('--threshold-ms', type=float, default=1000.0, help='p95 ms (latency)')
    ap.add_argument('--timeout', type=float, default=90)
    args = ap.parse_args()
    with open(os.path.join(args.state_dir, 'connection.yml')) as fh:
        conn = yaml.safe_load(fh)
    if args.symptom == 'latency':
        return wait(lambda: twin_p95(conn), args.threshold_ms, args.timeout, 2,
                    'p95 %.0f ms over the last 10 s', 'p95 to exceed %.0f ms' % args.threshold_ms)
    return wait(lambda: error_rate(conn), args.threshold, args.timeout, 3,
                '5xx rate %.1f%% over the last 60 s', 'the 5xx rate to exceed %.1f%%' % args.threshold)


def wait(measure, threshold, timeout, interval, seen, what):
    """Poll measure() until it exceeds threshold, at most timeout seconds. -> exit code."""
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline:
        try:
            value = measure()
        except Exception as exc:  # the sandbox may still be warming up
            print('  not readable yet: %s' % exc)
        if value > threshold:
            print('  symptom visible: ' + seen % value + ' (threshold %g)' % threshold)
            return 0
        time.sleep(interval)
    print('gave up after %.0f s waiting for %s (last seen %s)' % (timeout, what, seen % value))
    return 1


if __name__ == '__main__':
    sys.exit(main())
