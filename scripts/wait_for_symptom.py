"""Wait, bounded, until the sandbox's CloudWatch ALB metrics show the 5xx
symptom (what a CloudWatch alarm would page on), then return.

Used by `make demo` and the end-to-end tests between injecting a fault and
running the runbook.
"""
import argparse
import datetime
import os
import sys
import time

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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--state-dir', default='.sandbox')
    ap.add_argument('--threshold', type=float, default=2.0)
    ap.add_argument('--timeout', type=float, default=90)
    args = ap.parse_args()
    with open(os.path.join(args.state_dir, 'connection.yml')) as fh:
        conn = yaml.safe_load(fh)
    deadline = time.monotonic() + args.timeout
    rate = 0.0
    while time.monotonic() < deadline:
        try:
            rate = error_rate(conn)
        except Exception as exc:  # the sandbox may still be warming up
            print('  metrics not readable yet: %s' % exc)
        if rate > args.threshold:
            print('  symptom visible: 5xx rate %.1f%% over the last 60 s (threshold %.1f%%)' % (rate, args.threshold))
            return 0
        time.sleep(3)
    print('gave up after %.0f s waiting for the 5xx rate to exceed %.1f%% (last seen %.1f%%)'
          % (args.timeout, args.threshold, rate))
    return 1


if __name__ == '__main__':
    sys.exit(main())
