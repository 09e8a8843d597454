"""Helpers of the scenario 3 (authentication failures) end-to-end tests:
sign in through the twin as the monitoring account, read the JWT secret's
versions and stages from moto, heal.
"""
import json
import urllib.error
import urllib.request

from tests.e2e import latency
from tests.e2e.latency import connection, wait_until
from tests.helpers.servers import REPO

FAST_VERIFY = ('-e', 'verify_recovery_watch_seconds=10', '-e', 'verify_recovery_interval_seconds=5',
               '-e', 'incident_mode=auto')
# Placeholders of the sandbox (not secrets) that must never be printed all the same.
SECRETS = ('sandbox-secret-key', 'sandbox-probe-password')


def playbook(name='scenario_auth_failures.yml'):
    return '%s/playbooks/%s' % (REPO, name)


def _call(method, url, body=None, token=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    if token:
        req.add_header('Authorization', 'Bearer ' + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, {}
    except (urllib.error.URLError, OSError) as err:
        return None, {'error': str(err)}


def login(box):
    """One login + /me as the monitoring account -> (ok, what failed)."""
    conn = connection(box)
    status, body = _call('POST', conn['svpms_login_url'],
                         {'email': conn['svpms_login_probe_user'], 'password': conn['svpms_login_probe_password']})
    if status != 200:
        return False, 'login %s %s' % (status, body.get('error'))
    token = body.get('access_token')
    status, body = _call('GET', conn['svpms_login_check_url'], token=token)
    if status != 200:
        return False, 'me %s %s' % (status, body.get('error'))
    _call('POST', conn['svpms_logout_url'], {}, token=token)
    return True, 'ok'


def wait_for_login(box, ok=True, timeout=30):
    def check():
        result, what = login(box)
        return result == ok, what
    return wait_until('logins to %s' % ('work' if ok else 'fail'), check, timeout=timeout, interval=0.5)


def sso_start_status(box):
    return _call('GET', connection(box)['svpms_sso_start_url'])[0]


def secret_versions(box):
    """{version_id: sorted stages} of the JWT signing key secret (no values)."""
    sm = box.boto('secretsmanager')
    secret_id = connection(box)['svpms_jwt_secret_id']
    versions = sm.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)['Versions']
    return {v['VersionId']: sorted(v.get('VersionStages', [])) for v in versions}


def secret_values(box):
    """Every stored value of the JWT secret (to prove none is ever printed)."""
    sm = box.boto('secretsmanager')
    secret_id = connection(box)['svpms_jwt_secret_id']
    values = []
    for version_id in secret_versions(box):
        values.append(sm.get_secret_value(SecretId=secret_id, VersionId=version_id)['SecretString'])
    return values


def key_lines(values):
    """The base64 body lines of PEM values: what a leak would show."""
    lines = set()
    for value in values:
        for line in value.splitlines():
            if len(line) >= 40 and not line.startswith('-----'):
                lines.add(line)
    return lines


def primary_deployment(box):
    return [d['id'] for d in box.service()['deployments'] if d['status'] == 'PRIMARY']


def heal(box):
    box.heal()
    wait_for_login(box, ok=True)


def assert_clean_output(run, extra_secrets=()):
    latency.assert_clean_output(run, secrets=tuple(SECRETS) + tuple(extra_secrets))
