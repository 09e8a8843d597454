# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Stripe API key kept in an AWS Secrets Manager secret: how the value holds it, and reading it.

Shared by stripe_key_update (which writes the key back in the same format) and stripe_account_info (which checks
the key the service uses without it ever being a task variable).

- ``SecretValue(text, json_field)``: the value is either just the key (``plain``) or a JSON object with the key in
  one field (``json``): the field named by ``json_field``, else the first of ``api_key``, ``secret_key``, ``key``
  present (when several are, the one that holds an ``sk_``/``rk_`` key). Raises ``SecretFormatError`` whose message
  never holds a value (only field names and types).
- ``read_key(sm, secret_id, keep, ...)``: ``GetSecretValue`` with ``VersionStage`` given explicitly (``AWSCURRENT``
  by default - moto returns the newest version without it once the label moved), then the value parsed.
  ``keep(value, key=False)`` is called with the raw value (as read and stripped) and ``keep(key, key=True)`` with
  the key before anything else is done with them, so the caller can register them ``no_log``.
- ``mask_data(data, value)``: a result with a secret value that is not a key (a whole JSON value) masked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.svpms.incident_response.plugins.module_utils import stripe_api
from ansible_collections.svpms.incident_response.plugins.module_utils.secret_stages import STAGE_CURRENT

DEFAULT_FIELDS = ('api_key', 'secret_key', 'key')
MASK = '********'


class SecretFormatError(Exception):
    """The secret's value does not hold a Stripe key the way SecretValue reads it (message holds no value).

    ``version_id`` is the version read, when there was one (``read_key``).
    """

    def __init__(self, message, version_id=None):
        super(SecretFormatError, self).__init__(message)
        self.version_id = version_id


class SecretValue(object):
    """A secret value that holds a Stripe key: ``format`` plain|json, ``field``, ``key`` and the parsed doc.

    ``option`` is the name of the module option that names the field (used in messages).
    """

    def __init__(self, text, json_field=None, option='json_field'):
        self.text = text
        self.doc = None
        self.field = None
        self.compact = False
        self.option = option
        stripped = text.strip()
        if stripped[:1] == '{':
            try:
                doc = json.loads(stripped)
            except ValueError:
                raise SecretFormatError('the value starts like a JSON object but is not valid JSON; fix the secret '
                                        'by hand first')
            if not isinstance(doc, dict):
                raise SecretFormatError('the value is JSON but not an object')
            self.doc = doc
            self.compact = json.dumps(doc, separators=(',', ':')) == stripped
            self.field = self._pick_field(doc, json_field, option)
            value = doc[self.field]
            if not isinstance(value, str):
                raise SecretFormatError('field %s of the JSON object is a %s, not a key string'
                                        % (self.field, type(value).__name__))
            self.key = value
        else:
            if json_field:
                raise SecretFormatError('the value is a plain string, not a JSON object, so %s=%s does not '
                                        'apply; leave %s unset to keep it a plain string'
                                        % (option, json_field, option))
            self.key = stripped

    @staticmethod
    def _pick_field(doc, json_field, option='json_field'):
        names = ', '.join(sorted(str(k) for k in doc)) or 'none'
        if json_field:
            if json_field not in doc:
                raise SecretFormatError('the JSON object has no field %s (%s); its fields are %s'
                                        % (json_field, option, names))
            return json_field
        present = [f for f in DEFAULT_FIELDS if f in doc]
        if not present:
            raise SecretFormatError('the JSON object has none of the fields %s; its fields are %s - name the one '
                                    'that holds the key with %s' % (', '.join(DEFAULT_FIELDS), names, option))
        if len(present) > 1:
            keys = [f for f in present if isinstance(doc[f], str)
                    and stripe_api.key_kind(doc[f])[0] in ('secret', 'restricted')]
            if len(keys) != 1:
                raise SecretFormatError('the JSON object has several key fields (%s); name the one the service '
                                        'reads with %s' % (', '.join(present), option))
            return keys[0]
        return present[0]

    @property
    def format(self):
        return 'plain' if self.doc is None else 'json'

    def with_key(self, key):
        """The value to store: the same format, with ``key`` in place of the current key."""
        if self.doc is None:
            return key
        doc = dict(self.doc)
        doc[self.field] = key
        if self.compact:
            return json.dumps(doc, separators=(',', ':'))
        return json.dumps(doc)

    def sensitive(self):
        """Strings of this value that must never be printed (the other fields of a JSON object are never
        put in any output, and are not registered: a short one would mask ordinary words)."""
        return [v for v in (self.text, self.text.strip(), self.key) if v]


def read_key(sm, secret_id, keep, json_field=None, option='json_field', stage=STAGE_CURRENT):
    """``(SecretValue, version_id)`` of the version of ``secret_id`` staged ``stage`` (AWSCURRENT by default).

    ``sm`` is an aws.AWSClient for secretsmanager; its errors (aws.AWSError: not found, access denied, unreachable,
    ...) propagate. ``keep(value, key=False)`` is called with the value as read and stripped, and ``keep(key,
    key=True)`` with the key, as soon as each is known - the value before parsing, so no error path can show it
    unregistered. A binary value or one that does not hold a key string raises SecretFormatError (with
    ``version_id``).
    """
    resp = sm.call('get_secret_value', SecretId=secret_id, VersionStage=stage)
    version_id = resp.get('VersionId')
    text = resp.get('SecretString')
    if text is None:
        raise SecretFormatError('the %s version holds a binary value (SecretBinary), not text - a plain key or a JSON '
                                'object' % stage, version_id=version_id)
    keep(text)
    keep(text.strip())
    try:
        value = SecretValue(text, json_field, option=option)
    except SecretFormatError as exc:
        exc.version_id = version_id
        raise
    keep(value.key, key=True)
    return value, version_id


def mask_data(data, value):
    """A copy of a JSON-like structure with ``value`` replaced by a mask in every string."""
    if isinstance(data, dict):
        return dict((k, mask_data(v, value)) for k, v in data.items())
    if isinstance(data, (list, tuple)):
        return [mask_data(v, value) for v in data]
    if isinstance(data, str) and value:
        return data.replace(value, MASK)
    return data
