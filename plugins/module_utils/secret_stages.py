# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets Manager staging labels: read which version holds each, move one.

Shared by the modules that stage a new secret version and promote it
(jwt_key_rotate, stripe_key_update): put_secret_value with AWSPENDING, then
update_secret_version_stage, never rotate_secret (which needs a Lambda).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import AWSError

STAGE_CURRENT = 'AWSCURRENT'
STAGE_PREVIOUS = 'AWSPREVIOUS'
STAGE_PENDING = 'AWSPENDING'
STAGES = (STAGE_CURRENT, STAGE_PREVIOUS, STAGE_PENDING)


def stage_versions(version_ids_to_stages):
    """``{stage: version_id}`` for AWSCURRENT/AWSPREVIOUS/AWSPENDING (describe_secret's map)."""
    out = {}
    for version_id, stages in (version_ids_to_stages or {}).items():
        for stage in stages or []:
            if stage in STAGES:
                out[stage] = version_id
    return out


def move_stage(sm, secret_id, stage, to_version=None, from_version=None):
    """Move ``stage`` to ``to_version`` and/or off ``from_version``.

    ``sm`` is an aws.AWSClient for secretsmanager; its errors (aws.AWSError) propagate.
    """
    kwargs = dict(SecretId=secret_id, VersionStage=stage)
    if to_version:
        kwargs['MoveToVersionId'] = to_version
    if from_version:
        kwargs['RemoveFromVersionId'] = from_version
    return sm.call('update_secret_version_stage', **kwargs)


def iso_utc(value):
    """A Secrets Manager date (datetime, or epoch seconds) as ISO 8601 UTC (``2026-11-04T09:12:44Z``), or None."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    return None


class StageSteps(object):
    """Mixin for the modules that move staging labels step by step (jwt_key_rotate, stripe_key_update,
    secret_restore). The class sets ``self.sm`` (an AWSModule client), ``self.secret_id`` and its own
    ``fail(msg, **extra)`` (which may redact)."""

    def fail_aws(self, err, what, **extra):
        extra.update(err.to_result())
        self.fail('%s: %s' % (what, err.describe()), **extra)

    def move(self, stage, to_version, from_version, done, step):
        """One step of a plan: move ``stage``; on an AWS error fail naming the step and the steps done before."""
        try:
            move_stage(self.sm, self.secret_id, stage, to_version, from_version)
        except AWSError as err:
            self.fail_aws(err, 'Step failed: %s. Steps done before it: %s' % (step, '; '.join(done) or 'none'),
                          done=done)
        done.append(step)
