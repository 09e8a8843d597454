# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the database and cache checks share: a typed error that says what an
operator should check, and its shape as a finding.

A check that cannot reach its backend is evidence, not a crash: info modules
return ``finding(err)`` ({reachable, error_kind, msg}) and succeed; mutating
modules fail with the same keys and nothing done. Each backend helper
(``postgres.py``, ``redis_client.py``) subclasses CheckError once per kind.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class CheckError(Exception):
    """A failed connect or command, with what an operator should check."""

    kind = 'command'
    reachable = True

    def __init__(self, message, hint=None, where=None, reachable=None):
        self.message = message
        self.hint = hint
        self.where = where
        if reachable is not None:
            self.reachable = reachable
        super(CheckError, self).__init__(self.describe())

    def describe(self):
        text = self.message
        if self.where:
            text = '%s: %s' % (self.where, text)
        if self.hint:
            text = text.rstrip()
            text += (' ' if text.endswith(('.', '?', '!')) else '. ') + self.hint
        return text

    def to_result(self):
        return dict(reachable=self.reachable, error_kind=self.kind)


def finding(exc):
    """An error as a check result: {reachable, error_kind, msg}."""
    return dict(reachable=exc.reachable, error_kind=exc.kind, msg=exc.describe())
