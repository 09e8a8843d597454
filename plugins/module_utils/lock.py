# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The incident lock: one mitigation at a time per service, held in DynamoDB.

A lock is one item per key (one key per service, e.g. ``svpms-api``)::

    lock_key     S  hash key
    owner        S  who holds it, e.g. INC-2026-0042@ops-1:4242
    reason       S  free text, e.g. "ecs_rollback svpms-api:3" (absent when not given)
    acquired_at  S  ISO 8601 UTC, when this owner took it
    expires_at   N  epoch seconds; after it the lock is stale and may be taken over
                    (also usable as the table's DynamoDB TTL attribute)

Acquire is one conditional ``PutItem``: it succeeds when there is no item,
when the item is stale (``expires_at < :now``), or when we already hold it
(re-entrant: the expiry is refreshed). Release is one ``DeleteItem``
conditional on ``owner = :owner``, so a run never deletes someone else's lock.
DynamoDB evaluates the condition atomically with the write, so of two runs
racing for the same key exactly one wins; the loser gets
``ConditionalCheckFailedException`` and the current item (asked for with
``ReturnValuesOnConditionCheckFailure=ALL_OLD``).

"Now" is the controller's clock: the lock is only as good as the clocks of the
controllers that share it (NTP), which is why expiries are minutes, not seconds.

Everything except ``DynamoDBLock`` is pure (inputs in, dicts out, ``now`` passed
in). ``DynamoDBLock`` drives an ``AWSClient`` (module_utils/aws.py) and takes
its time, monotonic clock, sleep and jitter from an injectable ``Clock``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import random
import time

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSError

KEY_ATTR = 'lock_key'
OWNER_ATTR = 'owner'
REASON_ATTR = 'reason'
ACQUIRED_AT_ATTR = 'acquired_at'
EXPIRES_AT_ATTR = 'expires_at'

# ``owner`` is a DynamoDB reserved word, hence the #owner placeholder.
ACQUIRE_CONDITION = 'attribute_not_exists(lock_key) OR expires_at < :now OR #owner = :owner'
RELEASE_CONDITION = '#owner = :owner'
CONDITIONAL_CHECK_FAILED = 'ConditionalCheckFailedException'

DEFAULT_TTL_SECONDS = 1800
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 86400
MAX_WAIT_SECONDS = 3600
POLL_INTERVAL = 2.0       # seconds between two reads while waiting for a holder
POLL_JITTER = (0.75, 1.25)  # poll interval multiplied by uniform(*POLL_JITTER)
MAX_KEY_BYTES = 1024       # DynamoDB allows 2048 for a hash key; keep ours readable
MAX_OWNER_BYTES = 1024
MAX_REASON_BYTES = 4096
# A lost condition check followed by a read that shows a free, stale or own
# lock means the item changed between the two calls: try again at once, this
# many times in all, before reporting the lock as contended.
RACE_ATTEMPTS = 3

# Acquire outcomes.
NEW = 'acquired'
REFRESH = 'refreshed'
TAKEOVER = 'took_over_stale'
HELD = 'held'
# Release outcomes.
RELEASED = 'released'
NOT_OURS = 'held_by_other'
ABSENT = 'absent'

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Clock(object):
    """Wall clock (for expiries), monotonic clock (for waits), sleep and jitter."""

    def time(self):
        return time.time()

    def monotonic(self):
        return time.monotonic()

    def sleep(self, seconds):
        time.sleep(seconds)

    def uniform(self, low, high):
        return random.uniform(low, high)


SYSTEM_CLOCK = Clock()


# ---------------------------------------------------------------- time maths

def epoch_seconds(now):
    """Whole epoch seconds (what expires_at and :now hold)."""
    return int(now)


def compute_expires_at(now, ttl_seconds):
    """Epoch second at which a lock taken at ``now`` for ``ttl_seconds`` goes stale."""
    return epoch_seconds(now) + int(ttl_seconds)


def iso_utc(epoch):
    """Epoch seconds -> ``2026-03-01T12:00:00Z``."""
    moment = _EPOCH + datetime.timedelta(seconds=int(epoch))
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def is_stale(record, now):
    """True when the lock's expiry has passed (exactly the condition's ``expires_at < :now``)."""
    return record is not None and record['expires_at'] is not None \
        and record['expires_at'] < epoch_seconds(now)


# ---------------------------------------------------------- request building

def build_get_request(table, key):
    """GetItem for the lock item; strongly consistent so a just-written lock is seen."""
    return dict(TableName=table, Key={KEY_ATTR: {'S': key}}, ConsistentRead=True)


def build_item(key, owner, acquired_at_epoch, expires_at, reason=None):
    item = {
        KEY_ATTR: {'S': key},
        OWNER_ATTR: {'S': owner},
        ACQUIRED_AT_ATTR: {'S': iso_utc(acquired_at_epoch)},
        EXPIRES_AT_ATTR: {'N': str(int(expires_at))},
    }
    if reason:
        item[REASON_ATTR] = {'S': reason}
    return item


def build_acquire_request(table, key, owner, now, ttl_seconds, reason=None, acquired_at=None):
    """The conditional PutItem that takes (or refreshes, or takes over) the lock.

    ``acquired_at`` (epoch seconds) keeps the original time on a re-entrant
    refresh; by default it is ``now``.
    """
    now_s = epoch_seconds(now)
    item = build_item(key, owner, now_s if acquired_at is None else acquired_at,
                      compute_expires_at(now_s, ttl_seconds), reason)
    return dict(
        TableName=table,
        Item=item,
        ConditionExpression=ACQUIRE_CONDITION,
        ExpressionAttributeNames={'#owner': OWNER_ATTR},
        ExpressionAttributeValues={':now': {'N': str(now_s)}, ':owner': {'S': owner}},
        ReturnValues='ALL_OLD',
        ReturnValuesOnConditionCheckFailure='ALL_OLD',
    )


def build_release_request(table, key, owner):
    """The DeleteItem that removes the lock only when ``owner`` holds it."""
    return dict(
        TableName=table,
        Key={KEY_ATTR: {'S': key}},
        ConditionExpression=RELEASE_CONDITION,
        ExpressionAttributeNames={'#owner': OWNER_ATTR},
        ExpressionAttributeValues={':owner': {'S': owner}},
        ReturnValues='ALL_OLD',
        ReturnValuesOnConditionCheckFailure='ALL_OLD',
    )


# ------------------------------------------------------ reading items/errors

def parse_iso(text):
    """``2026-03-01T12:00:00Z`` -> epoch seconds, or None when unparsable."""
    try:
        moment = datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ')
    except (TypeError, ValueError):
        return None
    return int((moment.replace(tzinfo=datetime.timezone.utc) - _EPOCH).total_seconds())


def parse_item(item):
    """A DynamoDB item (attribute-value map) -> a lock record dict, or None.

    Tolerates items written by hand: a missing or non-numeric expires_at
    becomes None (and is then never considered stale).
    """
    if not item:
        return None

    def text(name):
        value = item.get(name) or {}
        return value.get('S')

    expires_at = None
    raw = (item.get(EXPIRES_AT_ATTR) or {}).get('N')
    if raw is not None:
        try:
            expires_at = int(float(raw))
        except ValueError:
            expires_at = None
    return dict(key=text(KEY_ATTR), owner=text(OWNER_ATTR), reason=text(REASON_ATTR),
                acquired_at=text(ACQUIRED_AT_ATTR), expires_at=expires_at)


def describe_holder(record, now):
    """The public view of a lock record (what the module returns), or None."""
    if record is None:
        return None
    expires_in = None
    if record['expires_at'] is not None:
        expires_in = record['expires_at'] - epoch_seconds(now)
    return dict(owner=record['owner'], reason=record['reason'], acquired_at=record['acquired_at'],
                expires_at=record['expires_at'], expires_in_seconds=expires_in,
                expired=is_stale(record, now))


def error_code(err):
    """The AWS error code of an AWSError or a botocore ClientError."""
    code = getattr(err, 'code', None)
    if code:
        return code
    response = getattr(err, 'response', None) or {}
    return (response.get('Error') or {}).get('Code')


def is_conditional_check_failed(err):
    return error_code(err) == CONDITIONAL_CHECK_FAILED


def conditional_failure_item(err):
    """The item DynamoDB returned with a ConditionalCheckFailedException, or None.

    With ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` the error response
    carries the current item (botocore parses it to ``response['Item']``).
    AWSClient.call raises its AWSError from inside the ``except`` block, so
    the ClientError is the AWSError's ``__context__``.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        response = getattr(err, 'response', None)
        if isinstance(response, dict) and response.get('Item'):
            return response['Item']
        err = getattr(err, '__cause__', None) or getattr(err, '__context__', None)
    return None


# --------------------------------------------------------------- decisions

def plan_acquire(current, owner, now):
    """What an acquire would do given the current record: NEW/REFRESH/TAKEOVER/HELD.

    Mirrors ACQUIRE_CONDITION exactly (used for check mode and to skip a
    write that cannot succeed).
    """
    if current is None:
        return NEW
    if current['owner'] == owner:
        return REFRESH
    if is_stale(current, now):
        return TAKEOVER
    return HELD


def acquire_outcome(old, owner):
    """What a *successful* conditional PutItem did, from its ALL_OLD attributes."""
    if old is None:
        return NEW
    if old['owner'] == owner:
        return REFRESH
    return TAKEOVER


def plan_release(current, owner):
    """What a release would do: RELEASED, NOT_OURS or ABSENT."""
    if current is None:
        return ABSENT
    if current['owner'] == owner:
        return RELEASED
    return NOT_OURS


def _utf8_len(text):
    return len(text.encode('utf-8'))


def validate_options(key, owner, ttl_seconds, wait_seconds, reason=None):
    """Problems with the options, as a list of messages (empty when fine)."""
    errors = []
    if not key or not key.strip():
        errors.append('key must be a non-empty lock name, for example the service name svpms-api')
    elif _utf8_len(key) > MAX_KEY_BYTES:
        errors.append('key must be at most %d bytes' % MAX_KEY_BYTES)
    if not owner or not owner.strip():
        errors.append('owner must be non-empty, for example <incident_id>@<controller host>:<pid>')
    elif _utf8_len(owner) > MAX_OWNER_BYTES:
        errors.append('owner must be at most %d bytes' % MAX_OWNER_BYTES)
    if reason is not None and _utf8_len(reason) > MAX_REASON_BYTES:
        errors.append('reason must be at most %d bytes' % MAX_REASON_BYTES)
    if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
        errors.append('ttl_seconds must be between %d and %d, got %s'
                      % (MIN_TTL_SECONDS, MAX_TTL_SECONDS, ttl_seconds))
    if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        errors.append('wait_seconds must be between 0 and %d, got %s' % (MAX_WAIT_SECONDS, wait_seconds))
    return errors


# ----------------------------------------------------------------- messages

def holder_text(holder):
    """``held by X since T (expires in N s)`` for a public holder dict."""
    text = 'held by %s since %s' % (holder['owner'], holder['acquired_at'] or 'an unknown time')
    if holder['expires_in_seconds'] is None:
        text += ' (no expiry recorded)'
    elif holder['expired']:
        text += ' (expired %d s ago)' % -holder['expires_in_seconds']
    else:
        text += ' (expires in %d s)' % holder['expires_in_seconds']
    return text


def missing_table_hint(table):
    return ("DynamoDB table '%s' does not exist in this account/region. Create it with: "
            "aws dynamodb create-table --table-name %s "
            "--attribute-definitions AttributeName=lock_key,AttributeType=S "
            "--key-schema AttributeName=lock_key,KeyType=HASH --billing-mode PAY_PER_REQUEST "
            "(then, optionally: aws dynamodb update-time-to-live --table-name %s "
            "--time-to-live-specification Enabled=true,AttributeName=expires_at)"
            % (table, table, table))


def waiting_text(key, holder, wait_seconds):
    """What a wait is for, in words (the module's waited_for)."""
    if holder is None:
        return 'lock %s to settle (it kept changing); up to %d s' % (key, wait_seconds)
    expiry = iso_utc(holder['expires_at']) if holder['expires_at'] is not None else 'no recorded time'
    return 'lock %s to be released or to expire (held by %s, expires at %s); up to %d s' % (
        key, holder['owner'], expiry, wait_seconds)


def acquire_message(key, owner, outcome, holder, previous, check_mode, waited_for, waited_seconds):
    """One line for the module's msg."""
    if outcome == HELD:
        if holder is None:
            text = ('lock %s kept changing while we tried to take it (%d attempts): '
                    'not mitigating concurrently' % (key, RACE_ATTEMPTS))
        else:
            text = 'lock %s %s: not mitigating concurrently' % (key, holder_text(holder))
            if holder.get('reason'):
                text += ' (holder reason: %s)' % holder['reason']
        if waited_for:
            text += '; waited %.0f s for %s' % (waited_seconds, waited_for)
        return text
    expiry = 'until %s (expires in %d s)' % (iso_utc(holder['expires_at']), holder['expires_in_seconds'])
    if outcome == NEW:
        text = '%s lock %s for %s %s' % ('would acquire' if check_mode else 'acquired', key, owner, expiry)
    elif outcome == REFRESH:
        text = 'lock %s already held by %s since %s; %s expiry %s' % (
            key, owner, holder['acquired_at'], 'would refresh' if check_mode else 'refreshed', expiry)
    else:
        text = '%s stale lock %s from %s (expired %d s ago); held by %s %s' % (
            'would take over' if check_mode else 'took over', key, previous['owner'],
            -previous['expires_in_seconds'], owner, expiry)
    if waited_for:
        text += ', after waiting %.0f s for %s' % (waited_seconds, waited_for)
    return text


def release_message(key, owner, outcome, before, check_mode):
    """One line for the module's msg."""
    if outcome == RELEASED:
        return '%s lock %s held by %s since %s' % (
            'would release' if check_mode else 'released', key, owner,
            before['acquired_at'] or 'an unknown time')
    if outcome == ABSENT:
        return 'no lock %s to release: nothing held' % key
    if before is None:
        return 'lock %s kept changing while we tried to release it (%d attempts): left in place' % (
            key, RACE_ATTEMPTS)
    return 'lock %s is %s, not by %s: left in place' % (key, holder_text(before), owner)


# --------------------------------------------------------------- the driver

class DynamoDBLock(object):
    """Take and release one lock key in one table through an AWSClient."""

    def __init__(self, client, table, key, clock=SYSTEM_CLOCK, poll_interval=POLL_INTERVAL):
        self.client = client
        self.table = table
        self.key = key
        self.clock = clock
        self.poll_interval = poll_interval

    def read(self):
        """The current lock record (consistent read), or None."""
        resp = self.client.call('get_item', **build_get_request(self.table, self.key))
        return parse_item(resp.get('Item'))

    def _put(self, owner, now, ttl_seconds, reason, acquired_at):
        """One conditional PutItem -> (outcome, before_record, after_record)."""
        request = build_acquire_request(self.table, self.key, owner, now, ttl_seconds, reason,
                                        acquired_at=acquired_at)
        try:
            resp = self.client.call('put_item', **request)
        except AWSError as err:
            if not is_conditional_check_failed(err):
                raise
            holder = parse_item(conditional_failure_item(err))
            if holder is None:
                holder = self.read()
            return HELD, holder, holder
        old = parse_item(resp.get('Attributes'))
        return acquire_outcome(old, owner), old, parse_item(request['Item'])

    def _attempt(self, owner, ttl_seconds, reason, check_mode):
        """Read, then write when a write can succeed -> (outcome, before, after, now).

        For HELD, before and after are the holder's record (None when the
        lock kept changing under us RACE_ATTEMPTS times).
        """
        holder = None
        for _dummy in range(RACE_ATTEMPTS):
            now = self.clock.time()
            current = self.read()
            outcome = plan_acquire(current, owner, now)
            if outcome == HELD:
                return HELD, current, current, now
            acquired_at = parse_iso(current['acquired_at']) if outcome == REFRESH else None
            if check_mode:
                request = build_acquire_request(self.table, self.key, owner, now, ttl_seconds, reason,
                                                acquired_at=acquired_at)
                return outcome, current, parse_item(request['Item']), now
            outcome, before, after = self._put(owner, now, ttl_seconds, reason, acquired_at)
            if outcome != HELD:
                return outcome, before, after, now
            holder = after
            if holder is not None and plan_acquire(holder, owner, now) == HELD:
                return HELD, holder, holder, now
        return HELD, holder, holder, now

    def acquire(self, owner, ttl_seconds=DEFAULT_TTL_SECONDS, reason=None, wait_seconds=0,
                check_mode=False):
        """Take the lock for ``owner``; poll up to ``wait_seconds`` while another owner holds it.

        Returns a result dict (the module's return values). Raises AWSError
        for anything but a lost condition check. Check mode never writes and
        never waits.
        """
        start = self.clock.monotonic()
        deadline = start + max(0, wait_seconds)
        attempts = 0
        waited_for = None
        while True:
            attempts += 1
            outcome, before, after, now = self._attempt(owner, ttl_seconds, reason, check_mode)
            if outcome != HELD or check_mode or wait_seconds <= 0:
                break
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                break
            waited_for = waiting_text(self.key, after, wait_seconds)
            self.clock.sleep(min(remaining, self.poll_interval * self.clock.uniform(*POLL_JITTER)))
        waited_seconds = round(self.clock.monotonic() - start, 3) if waited_for else 0.0
        acquired = outcome != HELD
        holder = describe_holder(after, now)
        previous = describe_holder(before, now) if outcome == TAKEOVER else None
        result = dict(
            acquired=acquired,
            refreshed=outcome == REFRESH,
            took_over_stale=outcome == TAKEOVER,
            previous_holder=previous,
            holder=holder,
            before=describe_holder(before, now),
            after=holder,
            expires_at=after['expires_at'] if acquired else None,
            attempts=attempts,
            waited_for=waited_for,
            waited_seconds=waited_seconds,
            changed=outcome in (NEW, TAKEOVER),
            msg=acquire_message(self.key, owner, outcome, holder, previous, check_mode, waited_for,
                                waited_seconds),
        )
        if check_mode:
            result['would_acquire'] = acquired
        return result

    def release(self, owner, check_mode=False):
        """Delete the lock if (and only if) ``owner`` holds it. Returns a result dict."""
        now = self.clock.time()
        if check_mode:
            before = self.read()
            outcome = plan_release(before, owner)
        else:
            for _dummy in range(RACE_ATTEMPTS):
                outcome, before = self._delete(owner)
                if outcome != RELEASED or before is not None:
                    break
                # The delete lost, yet the read shows our own lock (re-taken by
                # the same owner in between): try the delete again.
        released = outcome == RELEASED and (check_mode or before is not None)
        if not released and outcome == RELEASED:
            outcome = NOT_OURS
        before_view = describe_holder(before, now)
        after_view = None if outcome in (RELEASED, ABSENT) else before_view
        result = dict(
            released=released,
            holder=after_view,
            before=before_view,
            after=after_view,
            changed=released,
            msg=release_message(self.key, owner, outcome, before_view, check_mode),
        )
        if check_mode:
            result['would_release'] = released
        return result

    def _delete(self, owner):
        """One conditional DeleteItem -> (outcome, before_record).

        (RELEASED, None) means the condition failed although a read then
        showed our own lock: the caller retries.
        """
        try:
            resp = self.client.call('delete_item', **build_release_request(self.table, self.key, owner))
        except AWSError as err:
            if not is_conditional_check_failed(err):
                raise
            before = parse_item(conditional_failure_item(err))
            if before is None:
                before = self.read()
            outcome = plan_release(before, owner)
            if outcome == RELEASED:
                return RELEASED, None
            return outcome, before
        before = parse_item(resp.get('Attributes'))
        if before is None:  # deleted, but the old item was not returned
            before = dict(key=self.key, owner=owner, reason=None, acquired_at=None, expires_at=None)
        return RELEASED, before
