# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: incident_timeline
type: notification
short_description: Record every task of a runbook in the incident's timeline.jsonl
version_added: 1.0.0
author: SVPMS Platform Team (@svpms)
description:
  - Appends one JSON line per task result to C(<incident_dir>/timeline.jsonl), with the
    time, host, phase, task, module, status (ok, changed, failed, skipped, unreachable),
    duration, check mode and the redacted result (before/after of each change included).
  - The incident directory is learned from the C(incident_dir) fact that the
    P(svpms.incident_response.incident#role) role sets; events of a host seen before that
    are buffered and written once it is known. Hosts that never open an incident write nothing.
  - Results of C(no_log) tasks are already censored by Ansible; in addition, any key that
    looks like a secret (password, secret, token, key, authorization, credential, cookie)
    is replaced by C(********) at any depth, and long values are truncated.
requirements:
  - Enable it with C(callbacks_enabled = svpms.incident_response.incident_timeline) in ansible.cfg.
'''

import datetime
import json
import os
import re
import time

from ansible import context
from ansible.plugins.callback import CallbackBase

SECRET_KEY_RE = re.compile(
    r'(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|authorization'
    r'|credential|cookie|session[_-]?id|signing)', re.IGNORECASE)
REDACTED = '********'
MAX_STRING = 4000
MAX_LIST = 50
MAX_DEPTH = 8
PHASES = ('detect', 'investigate', 'decide', 'mitigate', 'verify', 'record')
ROLE_PHASE = {'incident': 'detect', 'verify_recovery': 'verify', 'triage': 'detect'}
FILE_PHASE = {'conclude': 'record', 'gate': 'mitigate', 'watch_round': 'verify'}
DROP_KEYS = frozenset(['_ansible_no_log', '_ansible_verbose_always', '_ansible_verbose_override',
                       '_ansible_delegated_vars', 'stdout_lines', 'stderr_lines'])


def redact(value, depth=0):
    """A copy of value with secret-looking keys masked and sizes bounded."""
    if depth > MAX_DEPTH:
        return '<truncated: nested too deep>'
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            key = str(key)
            if key in DROP_KEYS:
                continue
            if SECRET_KEY_RE.search(key) and not isinstance(item, (bool, int, float, type(None))):
                out[key] = REDACTED
            else:
                out[key] = redact(item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        items = [redact(v, depth + 1) for v in list(value)[:MAX_LIST]]
        if len(value) > MAX_LIST:
            items.append('<%d more items truncated>' % (len(value) - MAX_LIST))
        return items
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            return value[:MAX_STRING] + '<%d chars truncated>' % (len(value) - MAX_STRING)
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return redact(str(value), depth + 1)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def task_phase(task):
    """detect/investigate/decide/mitigate/verify/record from the tasks file or role."""
    path = task.get_path() or ''
    stem = os.path.splitext(os.path.basename(path.split(':')[0]))[0]
    for phase in PHASES:
        if stem == phase or stem.startswith(phase + '_'):
            return phase
    if stem in FILE_PHASE:
        return FILE_PHASE[stem]
    role = task._role.get_name() if task._role else ''
    role = role.split('.')[-1]
    return ROLE_PHASE.get(role, 'other')


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'svpms.incident_response.incident_timeline'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._dirs = {}      # host -> incident dir
        self._pending = {}   # host -> [events] before the dir is known
        self._starts = {}    # (host, task uuid) -> monotonic start
        self._task_start = {}
        self._play = ''
        self._check_mode = False

    # -- plumbing -----------------------------------------------------------
    def _write(self, host, event):
        path = self._dirs.get(host)
        if not path:
            self._pending.setdefault(host, []).append(event)
            return
        try:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, 'timeline.jsonl'), 'a') as fh:
                for item in self._pending.pop(host, []) + [event]:
                    fh.write(json.dumps(item, sort_keys=True, default=str) + '\n')
        except (IOError, OSError) as exc:
            self._display.warning('incident_timeline: cannot write to %s: %s' % (path, exc))

    def _learn_dir(self, host, result):
        facts = result.get('ansible_facts') or {}
        new_dir = facts.get('incident_dir')
        if new_dir and isinstance(new_dir, str):
            self._dirs[host] = new_dir

    def _record(self, result, status):
        host = result._host.get_name()
        task = result._task
        raw = result._result
        self._learn_dir(host, raw)
        started = self._task_start.get(task._uuid)
        duration = round(time.monotonic() - started, 3) if started else None
        if status == 'ok' and raw.get('changed'):
            status = 'changed'
        if status == 'failed' and getattr(task, 'ignore_errors', False):
            status = 'failed_ignored'
        event = {
            'ts': utc_now(),
            'host': host,
            'play': self._play,
            'phase': task_phase(task),
            'role': task._role.get_name() if task._role else None,
            'task': task.get_name(),
            'action': task.action,
            'status': status,
            'duration_s': duration,
            'check_mode': bool(task.check_mode) if task.check_mode is not None else self._check_mode,
            'result': redact(self._clean(raw)),
        }
        if raw.get('_ansible_no_log'):
            event['result'] = {'censored': 'the output has been hidden due to the fact that '
                                           "'no_log: true' was specified for this result"}
        self._write(host, event)

    @staticmethod
    def _clean(raw):
        return {k: v for k, v in raw.items() if not k.startswith('_ansible') or k == '_ansible_item_label'}

    # -- events -------------------------------------------------------------
    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()
        self._check_mode = bool(context.CLIARGS.get('check', False))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start[task._uuid] = time.monotonic()

    def v2_playbook_on_handler_task_start(self, task):
        self._task_start[task._uuid] = time.monotonic()

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed_ignored' if ignore_errors else 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed.keys()):
            if host not in self._dirs:
                continue
            summary = stats.summarize(host)
            self._write(host, {'ts': utc_now(), 'host': host, 'play': self._play, 'phase': 'record',
                               'task': 'run finished', 'action': None,
                               'status': 'failed' if summary.get('failures') or summary.get('unreachable') else 'ok',
                               'result': {'stats': summary}})
