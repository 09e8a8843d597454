# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""RDS read-replica promotion: the decision, the call and the bounded wait.

``promote(client, params, check_mode, sleep=..., clock=...)`` holds all the
logic of the rds_promote_replica module and takes either an ``AWSClient``
(module_utils/aws.py) or a bare boto3 RDS client (wrapped here), so tests can
drive it through botocore's Stubber on real API response shapes: moto's
``promote_read_replica`` answers success but changes nothing.

Promotion is irreversible: once promoted, an instance never replicates from
its source again. Nothing here retries the promote call itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (
    AWSClient,
    AWSError,
    AWSNotFoundError,
)

WAIT_TIMEOUT_MAX = 7200
WAIT_INTERVAL_MAX = 300
BACKUP_RETENTION_MAX = 35

# Statuses from which a promotion will not reach `available` by itself: stop waiting.
HOPELESS_STATUSES = frozenset([
    'failed', 'deleting', 'deleted', 'restore-error', 'incompatible-parameters', 'incompatible-network',
    'incompatible-restore', 'incompatible-option-group', 'inaccessible-encryption-credentials',
])

_WINDOW = re.compile(r'^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$')


class PromoteError(Exception):
    """The promotion was refused, failed or did not finish in time.

    ``result`` is the module result so far (changed/promoted tell whether the
    promote call was made); ``fields`` are error_kind/reachable (and, for an
    AWS error, error_code/aws_action).
    """

    def __init__(self, msg, result, **fields):
        self.msg = msg
        self.result = result
        self.fields = fields
        super(PromoteError, self).__init__(msg)


def check_params(params):
    """Messages for invalid options (empty list when all are fine)."""
    errors = []
    ident = params.get('db_instance_identifier')
    if not ident or not ident.strip() or any(ch.isspace() for ch in ident.strip()):
        errors.append('db_instance_identifier must be a non-empty DB instance identifier without spaces, got %r'
                      % (ident,))
    brp = params.get('backup_retention_period')
    if brp is not None and not 0 <= brp <= BACKUP_RETENTION_MAX:
        errors.append('backup_retention_period must be between 0 and %d days, got %s' % (BACKUP_RETENTION_MAX, brp))
    window = params.get('preferred_backup_window')
    if window is not None:
        match = _WINDOW.match(window)
        if not match:
            errors.append('preferred_backup_window must be hh24:mi-hh24:mi in UTC, for example 03:00-03:30, got %r'
                          % (window,))
        else:
            start = int(match.group(1)) * 60 + int(match.group(2))
            end = int(match.group(3)) * 60 + int(match.group(4))
            if (end - start) % 1440 < 30:
                errors.append('preferred_backup_window must last at least 30 minutes, got %r' % (window,))
    timeout = params.get('wait_timeout')
    if timeout is None or not 1 <= timeout <= WAIT_TIMEOUT_MAX:
        errors.append('wait_timeout must be between 1 and %d seconds, got %s' % (WAIT_TIMEOUT_MAX, timeout))
    interval = params.get('wait_interval')
    if interval is None or not 1 <= interval <= WAIT_INTERVAL_MAX:
        errors.append('wait_interval must be between 1 and %d seconds, got %s' % (WAIT_INTERVAL_MAX, interval))
    return errors


def summary(raw):
    """The operator-facing view of a describe_db_instances entry."""
    endpoint = raw.get('Endpoint') or {}
    address = endpoint.get('Address')
    return dict(
        identifier=raw.get('DBInstanceIdentifier'),
        status=raw.get('DBInstanceStatus'),
        engine=raw.get('Engine'),
        source=raw.get('ReadReplicaSourceDBInstanceIdentifier') or None,
        endpoint=('%s:%s' % (address, endpoint.get('Port')) if address and endpoint.get('Port') else address) or None,
        backup_retention_period=raw.get('BackupRetentionPeriod'),
    )


def describe_observed(view):
    text = 'status %s' % view.get('status')
    if view.get('source'):
        text += ', still a replica of %s' % view['source']
    else:
        text += ', no replication source'
    return text


def _region(client):
    try:
        return client.client.meta.region_name
    except AttributeError:
        return None


def describe_instance(client, identifier):
    """The raw describe_db_instances entry; AWSNotFoundError naming the identifier and region."""
    try:
        resp = client.call('describe_db_instances', DBInstanceIdentifier=identifier)
    except AWSNotFoundError as err:
        region = _region(client)
        raise AWSNotFoundError(
            'rds', 'describe_db_instances',
            "DB instance '%s' was not found%s" % (identifier, ' in region %s' % region if region else ''),
            code=err.code, hint='Check db_instance_identifier, the region and the account')
    instances = resp.get('DBInstances') or []
    if not instances:
        raise AWSNotFoundError('rds', 'describe_db_instances', "DB instance '%s' was not found" % identifier,
                               code='DBInstanceNotFound', hint='Check db_instance_identifier, the region and the account')
    return instances[0]


def predicted(before, params):
    after = dict(before, source=None, status='available')
    if params.get('backup_retention_period') is not None:
        after['backup_retention_period'] = params['backup_retention_period']
    return after


def waited_for_text(identifier, source):
    return ("DB instance %s to be 'available' with no ReadReplicaSourceDBInstanceIdentifier "
            '(promoted: no longer replicating from %s)' % (identifier, source))


def wait_promoted(client, identifier, source, timeout, interval, sleep=time.sleep, clock=time.monotonic):
    """Poll until the instance is available and has no replication source, it reaches a
    hopeless status, or ``timeout`` seconds pass. Returns a dict: completed, timed_out,
    elapsed_seconds, polls, last_seen (text), msg (why it stopped; None when completed), raw."""
    waited_for = waited_for_text(identifier, source)
    start = clock()
    polls = 0
    while True:
        raw = describe_instance(client, identifier)
        polls += 1
        view = summary(raw)
        elapsed = clock() - start
        out = dict(completed=False, timed_out=False, elapsed_seconds=round(elapsed, 1), polls=polls,
                   last_seen=describe_observed(view), msg=None, raw=raw)
        if view['status'] == 'available' and not view['source']:
            out['completed'] = True
            return out
        if view['status'] in HOPELESS_STATUSES:
            out['msg'] = ('stopped waiting for %s: the instance is %s, from which it will not become available by '
                          'itself (last seen: %s)' % (waited_for, view['status'], out['last_seen']))
            return out
        if elapsed >= timeout:
            out['timed_out'] = True
            out['msg'] = ('timed out after %s s waiting for %s (last seen: %s). The promotion was requested and goes '
                          'on in AWS; it cannot be undone. Check the instance events (aws rds describe-events) and '
                          'run again to keep waiting.' % (timeout, waited_for, out['last_seen']))
            return out
        sleep(max(0.0, min(interval, timeout - elapsed)))


def _fail_aws(err, result):
    fields = err.to_result()
    return PromoteError(err.describe(), result, **fields)


def promote(client, params, check_mode, sleep=time.sleep, clock=time.monotonic):
    """Promote the read replica named in params; return the module result.

    Raises PromoteError (carrying the result so far) when it refuses, when an
    AWS call fails, or when the wait does not complete.
    """
    if not isinstance(client, AWSClient):
        client = AWSClient(client, 'rds', max_attempts=1)
    identifier = params['db_instance_identifier'].strip()
    result = dict(changed=False, promoted=False, db_instance=dict(before=None, after=None), waited_for=None,
                  wait_result=None)
    try:
        raw = describe_instance(client, identifier)
    except AWSError as err:
        raise _fail_aws(err, result)
    before = summary(raw)
    result['db_instance'] = dict(before=before, after=before)
    source = before['source']

    if not source:
        result['msg'] = ('DB instance %s is not a read replica (no ReadReplicaSourceDBInstanceIdentifier): it is '
                         'already standalone; nothing to do' % identifier)
        return result
    if raw.get('DBClusterIdentifier'):
        raise PromoteError(
            'DB instance %s belongs to the Aurora cluster %s; promote the cluster (promote-read-replica-db-cluster) '
            'or fail over instead; nothing was changed' % (identifier, raw['DBClusterIdentifier']), result,
            error_kind='unsupported', reachable=True)
    if before['status'] != 'available':
        raise PromoteError(
            "DB instance %s is '%s', not 'available': RDS only promotes an available replica; nothing was changed. "
            'Wait until it is available (a promotion already in progress also shows here) and run again'
            % (identifier, before['status']), result, error_kind='not_available', reachable=True)

    after = predicted(before, params)
    result.update(changed=True, db_instance=dict(before=before, after=after), diff=dict(before=before, after=after))
    if check_mode:
        result['msg'] = ('would promote read replica %s (replicating from %s) to a standalone instance; '
                         'irreversible' % (identifier, source))
        return result

    call = dict(DBInstanceIdentifier=identifier)
    if params.get('backup_retention_period') is not None:
        call['BackupRetentionPeriod'] = params['backup_retention_period']
    if params.get('preferred_backup_window'):
        call['PreferredBackupWindow'] = params['preferred_backup_window']
    try:
        resp = client.call('promote_read_replica', **call)
    except AWSError as err:
        result.update(changed=False, db_instance=dict(before=before, after=before))
        result.pop('diff', None)
        raise _fail_aws(err, result)
    result['promoted'] = True
    now = summary(resp.get('DBInstance') or {}) if resp.get('DBInstance') else dict(before, status='modifying')
    result['db_instance'] = dict(before=before, after=now)
    result['diff'] = dict(before=before, after=now)
    result['msg'] = ('promotion of %s requested (it was replicating from %s); not waiting'
                     % (identifier, source))
    if not params.get('wait'):
        return result

    result['waited_for'] = waited_for_text(identifier, source)
    try:
        waited = wait_promoted(client, identifier, source, params['wait_timeout'], params['wait_interval'],
                               sleep=sleep, clock=clock)
    except AWSError as err:
        raise PromoteError('promotion of %s was requested, but reading it while waiting failed: %s'
                           % (identifier, err.describe()), result, **err.to_result())
    now = summary(waited.pop('raw'))
    result['db_instance'] = dict(before=before, after=now)
    result['diff'] = dict(before=before, after=now)
    result['wait_result'] = waited
    if not waited['completed']:
        raise PromoteError(waited['msg'], result, error_kind='timeout' if waited['timed_out'] else 'wait_failed',
                           reachable=True)
    result['msg'] = ('promoted %s: it is available and no longer replicates from %s (waited %s s)'
                     % (identifier, source, waited['elapsed_seconds']))
    return result
