#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: ssm_flag
short_description: Flip a feature flag / circuit breaker held in SSM Parameter Store
version_added: 1.0.0
description:
  - Sets an AWS Systems Manager Parameter Store C(String) parameter to O(value), only when
    it differs from the current value. This is the circuit breaker of the runbook, for example
    setting C(/svpms/prod/flags/erp_integration) to V(disabled) while an integration fails.
  - By default the parameter must already exist (O(must_exist=true)), so that a typo in O(name)
    fails loudly instead of creating a flag that nothing reads.
  - Idempotent. Refuses to touch a C(SecureString) or C(StringList) parameter.
author: SVPMS Platform Team (@svpms)
options:
  name:
    description:
      - Name of the parameter, for example V(/svpms/prod/flags/erp_integration).
    type: str
    required: true
  value:
    description:
      - Value the flag must have, for example V(disabled) or V(enabled). Must not be empty.
    type: str
    required: true
  must_exist:
    description:
      - When V(true), fail if the parameter does not exist rather than create it. This protects
        against typos in O(name).
      - When V(false), a missing parameter is created as a C(String) parameter.
    type: bool
    default: true
extends_documentation_fragment:
  - svpms.incident_response.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode the parameter is read but C(PutParameter) is never called.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: full
notes:
  - IAM actions used - C(ssm:GetParameter) and, when a change is needed outside check mode,
    C(ssm:PutParameter).
seealso:
  - name: AWS Systems Manager Parameter Store
    description: Parameter Store user guide.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/systems-manager-parameter-store.html
'''

EXAMPLES = r'''
- name: Open the circuit breaker for the ERP integration
  svpms.incident_response.ssm_flag:
    name: /svpms/prod/flags/erp_integration
    value: disabled
    region: eu-west-1
  register: erp_flag

- name: Close it again once the ERP recovered
  svpms.incident_response.ssm_flag:
    name: /svpms/prod/flags/erp_integration
    value: enabled

- name: Create a flag on purpose (not the default)
  svpms.incident_response.ssm_flag:
    name: /svpms/staging/flags/new_checkout
    value: disabled
    must_exist: false
'''

RETURN = r'''
name:
  description: Name of the parameter.
  returned: always
  type: str
  sample: /svpms/prod/flags/erp_integration
before:
  description: Value before the task ran; V(null) when the parameter did not exist.
  returned: always
  type: str
  sample: enabled
after:
  description: Value after the task (in check mode, the value it would have).
  returned: always
  type: str
  sample: disabled
version:
  description:
    - Parameter version after the task. In check mode, or when nothing changed, the current
      version (V(null) if the parameter would be created in check mode).
  returned: always
  type: int
  sample: 7
'''

from ansible_collections.svpms.incident_response.plugins.module_utils.aws import (  # noqa: E402
    AWSError,
    AWSModule,
    AWSNotFoundError,
)


def read_parameter(ssm, name):
    """The parameter dict, or None when it does not exist."""
    try:
        return ssm.call('get_parameter', Name=name, WithDecryption=False)['Parameter']
    except AWSNotFoundError:
        return None


def main():
    module = AWSModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            value=dict(type='str', required=True),
            must_exist=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    name = module.params['name'].strip()
    value = module.params['value']
    if not name or any(ch.isspace() for ch in name):
        module.fail_json(msg='name must be a non-empty SSM parameter name without spaces, got %r'
                         % module.params['name'])
    if value == '':
        module.fail_json(msg='value must not be empty (SSM parameters cannot hold an empty string)')

    ssm = module.client('ssm')
    try:
        current = read_parameter(ssm, name)
    except AWSError as err:
        module.fail_aws(err, name=name)

    before = None
    version = None
    if current is None:
        if module.params['must_exist']:
            module.fail_json(
                msg='SSM parameter %s does not exist; must_exist=true refuses to create a new flag. '
                    'Check the name for a typo (and the region/account), or set must_exist=false '
                    'to create it on purpose.' % name,
                name=name, before=None, after=None, version=None, reachable=True,
                error_kind='not_found')
    else:
        if current.get('Type', 'String') != 'String':
            module.fail_json(
                msg='SSM parameter %s is a %s parameter; ssm_flag only manages String flags and will '
                    'not overwrite it' % (name, current.get('Type')),
                name=name, version=current.get('Version'))
        before = current.get('Value')
        version = current.get('Version')

    changed = before != value
    result = dict(changed=changed, name=name, before=before, after=value, version=version)
    if changed:
        result['diff'] = dict(before_header='ssm:%s' % name, after_header='ssm:%s' % name,
                              before='' if before is None else before + '\n', after=value + '\n')
        if not module.check_mode:
            params = dict(Name=name, Value=value, Type='String', Overwrite=current is not None)
            try:
                resp = ssm.call('put_parameter', **params)
            except AWSError as err:
                module.fail_aws(err, name=name, before=before, after=before, version=version)
            result['version'] = resp.get('Version', version)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
