"""Command line: python -m svpms_sandbox [--state-dir D] [--moto-port P] [--twin-port P] COMMAND.

Exit codes: 0 success; 1 expected failure (one-line message, no traceback;
`status` also exits 1 when a process is down); 2 usage error.
"""

import argparse
import json
import os
import sys

from botocore.exceptions import BotoCoreError, ClientError

from . import constants as C
from .core import PACKAGE_PARENT, REDIS_START_TIMEOUT, Sandbox, UsageError
from .procs import SandboxError

PROG = 'python -m svpms_sandbox'


def _common(parser, suppress):
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    parser.add_argument('--state-dir', default=d(C.DEFAULT_STATE_DIR), metavar='DIR',
                        help='pid files, logs, connection.yml (default: %s, relative to cwd)'
                        % C.DEFAULT_STATE_DIR)
    parser.add_argument('--moto-port', type=int, default=d(None), metavar='PORT',
                        help='moto_server port (default: the running sandbox\'s, else %d)' % C.DEFAULT_MOTO_PORT)
    parser.add_argument('--twin-port', type=int, default=d(None), metavar='PORT',
                        help='service twin port (default: the running sandbox\'s, else %d)' % C.DEFAULT_TWIN_PORT)
    parser.add_argument('--receiver-port', type=int, default=d(None), metavar='PORT',
                        help='notification receiver port (default: the running sandbox\'s, else %d, '
                        'else a free port)' % C.DEFAULT_RECEIVER_PORT)
    parser.add_argument('--redis-port', type=int, default=d(None), metavar='PORT',
                        help='the sandbox\'s own redis-server port (default: the running sandbox\'s, else %d, '
                        'else a free port)' % C.DEFAULT_REDIS_PORT)
    parser.add_argument('--stripe-port', type=int, default=d(None), metavar='PORT',
                        help='Stripe stand-in port (default: the running sandbox\'s, else %d, else a free port)'
                        % C.DEFAULT_STRIPE_PORT)
    parser.add_argument('--json', action='store_true', default=d(False),
                        help='print machine-readable JSON instead of text')


def build_parser():
    faults = '; '.join('%s [%s] (%s)' % (k, v['kind'], v['description']) for k, v in sorted(C.FAULTS.items()))
    p = argparse.ArgumentParser(
        prog=PROG,
        description='Local stand-in for SVPMS production: moto_server (ECS, CloudWatch, Logs, SSM) '
                    'plus a service twin on 127.0.0.1, for the incident runbooks.',
        epilog='exit codes: 0 ok, 1 failure (status: something is down), 2 usage error')
    _common(p, suppress=False)
    sub = p.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    parent = argparse.ArgumentParser(add_help=False)
    _common(parent, suppress=True)  # the global options also work after the command
    start = sub.add_parser('start', parents=[parent], help='start moto_server, seed it, start redis-server, '
                           'create the sandbox database, start the Stripe stand-in (register the webhook endpoint, '
                           'put the Stripe secrets into Secrets Manager), the twin and the notification receiver, '
                           'write connection.yml (idempotent)')
    start.add_argument('--without-payments', action='store_true',
                       help='no Stripe stand-in, webhook route or payment traffic (lighter; the payments faults '
                       'and scenario 4 then need a restart with payments)')
    sub.add_parser('stop', parents=[parent], help='stop the lock holder, the receiver, the twin, the Stripe '
                   'stand-in, redis-server and moto_server by PID, drop the sandbox database and roles (idempotent)')
    st = sub.add_parser('status', parents=[parent], help='processes, ECS service revision, twin numbers')
    st.add_argument('--window', type=float, default=C.STATUS_WINDOW, metavar='SECONDS',
                    help='twin statistics window (default %(default)gs)')
    inj = sub.add_parser('inject', parents=[parent], help='inject a fault (a bad deploy, a database lock, a bad '
                         'config push)',
                         description='deploy faults register a new revision of %s identical to the current good '
                                     'one plus %s=FAULT and deploy it; lock_contention starts a batch session that '
                                     'sits idle in transaction holding row locks; cache_miss_storm sets the cache '
                                     'TTL parameter to 1 s and flushes the cache; the authentication faults stop '
                                     'redis-server, change the JWT signing-key secret out of band, expire the IdP '
                                     'certificate or revoke SELECT on the users table; the payments faults change '
                                     'the Stripe webhook secret out of band and redeploy, or revoke the Stripe API '
                                     'key at the stand-in (the webhook route faults are deploys). Faults: %s'
                                     % (C.FAMILY, C.FAULT_ENV, faults))
    inj.add_argument('fault', metavar='FAULT', help='one of: %s' % ', '.join(sorted(C.FAULTS)))
    inj.add_argument('--no-wait', action='store_true',
                     help='do not wait for the twin to pick up the new revision')
    heal = sub.add_parser('heal', parents=[parent],
                          help='undo every fault: stop the lock holder, restart redis-server on its port, restore '
                          'the cache TTL and desiredCount, point the service back at the newest ACTIVE revision '
                          'without a fault marker, grant SELECT on the users table, renew an invalid IdP '
                          'certificate, put a new JWT signing key plus a forced redeploy when the API does '
                          'not sign with the AWSCURRENT key, un-revoke Stripe API keys, and restore the Stripe '
                          'webhook secret plus a redeploy when the API verifies with a wrong one (no replay)')
    heal.add_argument('--no-wait', action='store_true',
                      help='do not wait for the twin to pick up the revision')
    sub.add_parser('redis-start', parents=[parent],
                   help='start the sandbox\'s redis-server on its recorded port unless it runs (idempotent); exits 0 '
                   'once it answers PING (at most %.0f s), 1 with the reason otherwise (e.g. the port is taken)'
                   % REDIS_START_TIMEOUT)
    sub.add_parser('twin', parents=[parent], help='(internal) run the service twin in the foreground')
    sub.add_parser('lock-holder', parents=[parent],
                   help='(internal) hold row locks on tenant_quotas idle in transaction (lock_contention)')
    sub.add_parser('stripe', parents=[parent],
                   help='(internal) run the Stripe stand-in (localstripe in-process on 127.0.0.1, plus the sandbox '
                   'extensions: webhook endpoints, signed delivery with retries, revoked keys) in the foreground')
    sub.add_parser('receiver', parents=[parent],
                   help='(internal) run the notification receiver (PagerDuty, Slack, Statuspage) in the foreground')
    return p


def _print_json(obj):
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _fmt_status(st):
    lines = []
    procs = st['processes']
    for key, label, where in (('moto', 'moto_server', 'endpoint'), ('twin', 'service twin', 'url'),
                              ('receiver', 'notifications', 'url'), ('redis', 'redis-server', 'url'),
                              ('stripe', 'Stripe', 'url')):
        p = procs.get(key)
        if p is None or (key == 'stripe' and not st.get('payments_enabled', True)):
            continue
        lines.append('%-13s %-4s pid %-7s %s' % (label, 'up' if p['up'] else 'DOWN', p['pid'] or '-', p[where]))
    rec = procs.get('receiver')
    if rec:
        lines.append('%-13s %d recorded in %s (PagerDuty, Slack, Statuspage on the receiver)'
                     % ('', rec['notifications'], rec['notifications_file']))
    stripe = st.get('stripe') or {}
    if stripe.get('error'):
        lines.append('%-13s stand-in state unreadable: %s' % ('', stripe['error']))
    elif stripe:
        ev = stripe['events']
        lines.append('%-13s %s; events %d (%d delivered, %d undelivered, %d in flight); revoked keys %s' % (
            '', ', '.join('%s %s %s' % (e['id'], e['status'], e['url']) for e in stripe['endpoints']) or 'no endpoint',
            ev['total'], ev['delivered'], ev['undelivered'], ev['in_flight'],
            ', '.join(k['masked'] for k in stripe['revoked_keys']) or 'none'))
    svc = st.get('service')
    if svc:
        health = ('BAD revision: fault %s' % svc['fault']) if svc['bad_revision'] else 'good revision'
        lines.append('%-13s %s/%s on %s (%s, version %s)' % (
            'ECS service', svc['cluster'], svc['name'], svc['task_definition'], health, svc['version']))
        lines.append('%-13s desired %s / running %s / pending %s' % (
            '', svc['desired'], svc['running'], svc['pending']))
        for d in svc['deployments']:
            note = '' if d['taskDefinition'] == svc['task_definition'] else \
                '  (moto never updates the deployment\'s taskDefinition)'
            lines.append('%-13s %s %s %s created %s%s' % (
                'deployment', d['status'], d['taskDefinition'], d['rolloutState'], d['createdAt'], note))
        lines.append('%-13s %s' % ('revisions', ', '.join(
            '%s%s%s' % (r['name'], '' if r['status'] == 'ACTIVE' else ' INACTIVE',
                        ' [%s]' % r['fault'] if r['fault'] else '') for r in svc['revisions'])))
    dbi = st.get('database') or {}
    if dbi.get('enabled'):
        lines.append('%-13s %s on %s:%s (roles %s, %s)' % ('database', dbi['database'], dbi['host'], dbi['port'],
                                                           dbi['app_user'], dbi['batch_user']))
    else:
        lines.append('%-13s NONE: the sandbox runs without PostgreSQL%s' % (
            'database', ' (%s)' % dbi['error'] if dbi.get('error') else ''))
    holder = st.get('lock_holder') or {}
    if holder.get('running'):
        lines.append('%-13s RUNNING pid %s (idle in transaction, holding tenant_quotas row locks)'
                     % ('lock holder', holder['pid']))
    if st.get('injected_at'):
        lines.append('%-13s %s' % ('injected at', st['injected_at']))
    tw = st.get('twin')
    if tw:
        w = tw['window']
        lines.append('%-13s on %s, behaviour %s since %s%s' % (
            'twin', tw['task_definition'], tw['behaviour'], tw['behaviour_since'],
            '' if tw['moto_reachable'] else ' (moto unreachable: %s)' % tw['last_poll_error']))
        lines.append('%-13s last %gs: %d requests, %d 5xx (%.1f%%), p95 %s ms' % (
            '', w['seconds'], w['requests'], w['errors_5xx'], 100.0 * w['error_rate'],
            w['p95_ms'] if w['p95_ms'] is not None else '-'))
        cache, dbs = tw.get('cache') or {}, tw.get('db') or {}
        if cache:
            lines.append('%-13s TTL %s s, last %gs: %d hits, %d misses, hit rate %s%%, redis %s' % (
                'cache', cache['ttl_seconds'], cache['window_seconds'], cache['hits'], cache['misses'],
                cache['hit_rate_pct'] if cache['hit_rate_pct'] is not None else '-',
                'reachable' if cache['redis_reachable'] else 'UNREACHABLE'))
        if dbs.get('enabled'):
            lines.append('%-13s %s, lock timeouts %d in the last %gs (%d total), %s connections' % (
                'twin db', 'reachable' if dbs['reachable'] else 'UNREACHABLE (%s)' % dbs.get('error'),
                dbs['lock_timeouts']['window'], w['seconds'], dbs['lock_timeouts']['total'],
                dbs['connections'] if dbs.get('connections') is not None else '-'))
        lines.append('%-13s desiredCount %s (twin)' % ('', tw.get('desired_count')))
        au = tw.get('auth') or {}
        if au:
            cert = au.get('idp_cert') or {}
            lines.append('%-13s signing kid %s, verification kids %s; IdP certificate %s' % (
                'auth', au.get('signing_kid') or 'NONE (%s)' % au.get('signing_error'),
                ', '.join(au.get('verification_kids') or []) or '-',
                ('valid until %s' if cert.get('valid_now') else 'NOT VALID (not after %s)') % cert.get('not_after')
                if cert.get('not_after') else 'unreadable (%s)' % cert.get('error')))
    pay = st.get('payments') or {}
    if not st.get('payments_enabled', True):
        lines.append('%-13s off: this sandbox was started without payments (no Stripe stand-in)' % 'payments')
    elif pay:
        api = pay['api']
        lines.append('%-13s webhooks: %d processed, %d duplicates, rejected %s%s; payments: %d ok, %d failed%s' % (
            'payments', pay['processed'], pay['duplicates'],
            ', '.join('%s %d' % kv for kv in sorted(pay['rejected'].items())) or 'none',
            '' if pay['signature_check'] else ' (SIGNATURE CHECK OFF)', api['succeeded'], api['failed'],
            ' (last: %s %s)' % (api['last_status'], api['last_error']) if api['last_error'] else ''))
    if st.get('connection_file'):
        lines.append('%-13s %s' % ('connection', st['connection_file']))
    for err in st.get('errors', []):
        lines.append('error: %s' % err)
    if not st['running']:
        lines.append('the sandbox is not (fully) running; start it with: %s start' % PROG)
    return '\n'.join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == 'receiver':
        from . import receiver
        sb = Sandbox(args.state_dir, receiver_port=args.receiver_port)
        return receiver.run(sb.receiver_port, sb.notifications_file)
    if args.command == 'stripe':
        from . import stripe_server
        sb = Sandbox(args.state_dir, stripe_port=args.stripe_port)
        return stripe_server.run(sb.state_dir, sb.stripe_port)
    if args.command == 'twin':
        from . import twin
        sb = Sandbox(args.state_dir, args.moto_port, args.twin_port, redis_port=args.redis_port,
                     stripe_port=args.stripe_port)
        return twin.run(sb.moto_port, sb.twin_port, state_dir=sb.state_dir, redis_port=sb.redis_port,
                        db_cfg=sb.db_info(), stripe_port=sb.stripe_port if sb.payments else None)
    if args.command == 'lock-holder':
        from . import db
        info = db.read_db_file(os.path.abspath(args.state_dir))
        if not info or not info.get('enabled'):
            print('%s lock-holder: error: no sandbox database in %s' % (PROG, args.state_dir), file=sys.stderr)
            return 1
        return db.hold_locks(info)

    out = None if args.json else (lambda m: print(m, flush=True))
    sb = Sandbox(args.state_dir, args.moto_port, args.twin_port, out=out, receiver_port=args.receiver_port,
                 redis_port=args.redis_port,
                 payments=False if getattr(args, 'without_payments', False) else None)
    try:
        if args.command == 'start':
            res = sb.start()
            if args.json:
                _print_json(dict(res, connection=sb.connection()))
                return 0
            if res['already_running']:
                print('sandbox already running (moto pid %d, twin pid %d); connection file %s'
                      % (res['moto_pid'], res['twin_pid'], res['connection_file']))
                return 0
            st = sb.status()
            print('sandbox started')
            print(_fmt_status(st))
            print('use it with: ansible-playbook ... -e @%s' % res['connection_file'])
            print('stop it with: PYTHONPATH=%s %s -m svpms_sandbox --state-dir %s stop'
                  % (PACKAGE_PARENT, sys.executable, sb.state_dir))
            return 0
        if args.command == 'stop':
            res = sb.stop()
            if args.json:
                _print_json({k: {'pid': v[0], 'result': v[1]} for k, v in res.items()})
                return 0
            for name, (pid, result) in res.items():
                print('%-11s %s' % (name, result if not pid else '%s (pid %d)' % (result, pid)))
            return 0
        if args.command == 'status':
            st = sb.status(window=args.window)
            if args.json:
                _print_json(st)
            else:
                print(_fmt_status(st))
            return 0 if st['running'] else 1
        if args.command == 'inject':
            res = sb.inject(args.fault, wait=not args.no_wait)
            if args.json:
                _print_json(res)
                return 0
            if res.get('summary'):
                print('injected %s at %s: %s' % (res['fault'], res['injected_at'], res['summary']))
            elif res['kind'] == 'database':
                print('injected %s at %s: lock holder pid %d (%s, user %s, application_name %s) sits idle in '
                      'transaction as backend pid %d holding row locks on tenant_quotas; %d API sessions blocked'
                      % (res['fault'], res['injected_at'], res['lock_holder_pid'], res['database'],
                         res['holder_user'], res['application_name'], res['backend_pid'], res['blocked_sessions']))
            elif res['kind'] == 'config':
                print('injected %s at %s: SSM %s %s -> %s, flushed %d cache keys on redis port %d'
                      % (res['fault'], res['injected_at'], res['ttl_parameter'], res['ttl_before'],
                         res['ttl_seconds'], res['flushed_keys'], res['redis_port']))
            else:
                print('injected %s at %s: registered %s (based on %s) and deployed it with forceNewDeployment '
                      '(was %s)' % (res['fault'], res['injected_at'], res['task_definition'], res['based_on'],
                                    res['from']))
                if res['twin_switch_seconds'] is not None:
                    print('the service twin switched to %s after %.1fs' % (res['task_definition'],
                                                                           res['twin_switch_seconds']))
                elif not args.no_wait:
                    print('warning: the service twin is not running; nothing serves the bad revision')
            print('injection time written to %s' % sb.path('injected_at'))
            return 0
        if args.command == 'redis-start':
            res = sb.redis_start()
            if args.json:
                _print_json(res)
            elif res['already_running']:
                print('redis-server already running (pid %d) on %s:%d and answering PING'
                      % (res['pid'], C.HOST, res['port']))
            else:
                print('redis-server started (pid %d) on %s:%d and answering PING' % (res['pid'], C.HOST, res['port']))
            return 0
        if args.command == 'heal':
            res = sb.heal(wait=not args.no_wait)
            if args.json:
                _print_json(res)
            elif not res['changed']:
                print('nothing to heal: on %s (newest ACTIVE revision without a fault marker), no lock holder, '
                      'cache TTL %d s, desiredCount %d, redis-server up, SELECT on %s granted, IdP certificate '
                      'valid, the API signs with the AWSCURRENT key, no revoked Stripe key, the API verifies '
                      'webhooks with the endpoint\'s secret'
                      % (res['task_definition'], C.GOOD_CACHE_TTL, C.DESIRED_COUNT, C.USERS_TABLE))
            else:
                for action in res['actions']:
                    print('healed: %s' % action)
                if res['twin_switch_seconds'] is not None:
                    print('the service twin switched to %s after %.1fs' % (res['task_definition'],
                                                                           res['twin_switch_seconds']))
            return 0
    except UsageError as exc:
        print('%s: error: %s' % (PROG, exc), file=sys.stderr)
        return 2
    except SandboxError as exc:
        print('%s %s: error: %s' % (PROG, args.command, exc), file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print('%s %s: error: AWS call to the sandbox\'s moto_server (%s) failed: %s'
              % (PROG, args.command, sb.moto_endpoint, exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
    return 2
