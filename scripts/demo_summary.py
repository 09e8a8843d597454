"""Print a demo run's outcome, timings and report path from summary.json."""
import argparse
import datetime
import json
import os
import sys


def parse(ts):
    return datetime.datetime.fromisoformat(ts.replace('Z', '+00:00')) if ts else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--incident-dir', required=True)
    ap.add_argument('--injected-at-file', required=True)
    ap.add_argument('--notifications', help="the sandbox receiver's record of what was sent")
    args = ap.parse_args()
    path = os.path.join(args.incident_dir, 'summary.json')
    if not os.path.exists(path):
        print('No summary at %s: the runbook stopped before recording (see its output above).' % path)
        return 1
    with open(path) as fh:
        summary = json.load(fh)
    injected = None
    if os.path.exists(args.injected_at_file):
        with open(args.injected_at_file) as fh:
            injected = parse(fh.read().strip())
    state = {}
    if os.path.exists(os.path.join(args.incident_dir, 'state.json')):
        with open(os.path.join(args.incident_dir, 'state.json')) as fh:
            state = json.load(fh)
    mitigation = summary.get('mitigation') or {}
    verification = summary.get('verification') or {}
    print()
    print('Severity:  %s   phase: %s' % (state.get('severity') or 'not classified', state.get('phase', '?')))
    print('Outcome:   %s' % summary.get('outcome'))
    if mitigation.get('action'):
        print('Mitigation: %s %s (%s)' % (mitigation.get('action'), mitigation.get('target', ''),
                                          mitigation.get('status')))
    for label, ts in (('mitigation call', mitigation.get('started_at')),
                      ('verified recovery', verification.get('verified_at'))):
        when = parse(ts)
        if injected and when:
            print('Injection -> %-18s %5.0f s' % (label + ':', (when - injected).total_seconds()))
    if args.notifications and os.path.exists(args.notifications):
        with open(args.notifications) as fh:
            sent = [json.loads(line) for line in fh]
        kinds = {}
        for item in sent:
            path = item.get('path', '')
            kind = ('PagerDuty ' + item['json'].get('event_action', '') if path.endswith('/v2/enqueue')
                    else 'Slack post' if path.endswith('chat.postMessage')
                    else 'Status page ' + item.get('method', '') if '/statuspage/' in path else None)
            if kind:
                kinds[kind] = kinds.get(kind, 0) + 1
        print('Sent (sandbox receiver): %s' % ', '.join('%s x%d' % kv for kv in sorted(kinds.items())))
    html = os.path.join(args.incident_dir, 'report.html')
    if os.path.exists(html):
        print('HTML report: %s' % os.path.abspath(html))
    print('Report:    %s' % os.path.abspath(os.path.join(args.incident_dir, 'report.md')))
    print('Timeline:  %s' % os.path.abspath(os.path.join(args.incident_dir, 'timeline.jsonl')))
    return 0


if __name__ == '__main__':
    sys.exit(main())
