"""The Sandbox's Stripe part (scenario 4): the stand-in process, its seed, the payments faults and their heal.

A mixin of core.Sandbox (it uses the Sandbox's paths, ports, _spawn, _stop_one,
boto and _say). The stand-in is stripe_server.py, run as
``python -m svpms_sandbox --state-dir D --stripe-port P stripe``.
"""

import datetime
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from . import constants as C
from . import seed as seed_mod
from .procs import SandboxError, http, http_json, pid_alive, port_free, read_pid, tail
from .payments import mask_key, new_webhook_secret

STRIPE_MARKER = 'svpms_sandbox'
STRIPE_START_TIMEOUT = 15.0
PAYMENTS_WAIT_TIMEOUT = 15.0   # the twin picking up secrets after a redeploy (1 s polls), a payment attempt (2 s)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
STRIPE_FILES = (C.STRIPE_STORE_FILE, C.STRIPE_ENDPOINTS_FILE, C.STRIPE_REVOKED_FILE)


class StripeMixin:
    """start/stop/status/inject/heal pieces for the Stripe stand-in and the twin's payments side."""

    # ------------------------------------------------------------ paths and process
    @property
    def stripe_url(self):
        return 'http://%s:%d' % (C.HOST, self.stripe_port)

    @property
    def stripe_webhook_url(self):
        return self.twin_url + C.STRIPE_WEBHOOK_PATH

    def stripe_pid(self):
        return read_pid(self.path('stripe.pid'))

    def stripe_running(self):
        return pid_alive(self.stripe_pid(), STRIPE_MARKER)

    def _start_stripe(self):
        argv = [sys.executable, '-m', 'svpms_sandbox', '--state-dir', self.state_dir,
                '--stripe-port', str(self.stripe_port), 'stripe']
        proc = self._spawn('stripe', argv, self._python_env(), 'stripe.log')
        url = self.stripe_url + '/_sandbox/health'
        self._say('waiting up to %.0fs for the Stripe stand-in (pid %d) to answer GET %s'
                  % (STRIPE_START_TIMEOUT, proc.pid, url))
        # Another sandbox's stand-in may answer on this port (a race for the default port): only an
        # answer naming our process counts.
        deadline = time.monotonic() + STRIPE_START_TIMEOUT
        error = 'no answer within %.0fs' % STRIPE_START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                error = 'it exited with code %s' % proc.returncode
                break
            try:
                status, body = http_json(url, timeout=1.0)
                if status == 200 and isinstance(body, dict) and body.get('pid') == proc.pid:
                    return
            except Exception as exc:  # still starting
                error = 'last error: %s' % exc
            time.sleep(0.1)
        self._stop_one('stripe', STRIPE_MARKER)
        log_path = self.path('stripe.log')
        raise SandboxError('the Stripe stand-in (pid %d) did not answer GET %s (%s)\n--- tail of %s ---\n%s'
                           % (proc.pid, url, error, log_path, tail(log_path)))

    def _ensure_stripe(self, keep_port=False):
        """Start the Stripe stand-in unless it runs. keep_port: the twin already talks to the recorded port,
        so it must be that one (no free-port fallback)."""
        if self.stripe_running():
            return False
        if os.path.exists(self.path('stripe.pid')):  # a stand-in that is gone
            os.remove(self.path('stripe.pid'))
        for attempt in (1, 2):
            if not port_free(self.stripe_port):
                if self._stripe_port_explicit or keep_port:
                    raise SandboxError('port %d (Stripe stand-in) is already in use on %s; stop whatever listens '
                                       'there or pass --stripe-port' % (self.stripe_port, C.HOST))
                port = _free_port()
                self._say('port %d (Stripe stand-in) is busy: using free port %d instead' % (self.stripe_port, port))
                self.stripe_port = port
            try:
                self._start_stripe()
                return True
            except SandboxError:
                # lost a race for the port with another process: once more on a free port
                if self._stripe_port_explicit or keep_port or attempt == 2 or port_free(self.stripe_port):
                    raise
        return True

    def _clear_stripe_files(self):
        for name in STRIPE_FILES:
            if os.path.exists(self.path(name)):
                os.remove(self.path(name))

    # ------------------------------------------------------------ the stand-in's API
    def _stripe_json(self, method, path, body=None, timeout=5.0):
        data = json.dumps(body).encode('utf-8') if body is not None else None
        try:
            status, raw = http(method, self.stripe_url + path, timeout=timeout, data=data)
        except Exception as exc:
            raise SandboxError('the Stripe stand-in (%s) did not answer %s %s: %s'
                               % (self.stripe_url, method, path, exc))
        try:
            doc = json.loads(raw.decode('utf-8')) if raw else None
        except ValueError:
            doc = None
        if status != 200:
            detail = doc.get('error') if isinstance(doc, dict) else raw[:200]
            raise SandboxError('the Stripe stand-in answered %s %s with HTTP %d: %s' % (method, path, status, detail))
        return doc

    def _stripe_api(self, method, path, form=None, timeout=5.0):
        """A /v1/ call with the placeholder key (form-encoded). -> JSON. Raises SandboxError."""
        data = urllib.parse.urlencode(form, doseq=True).encode('ascii') if form is not None else None
        req = urllib.request.Request(self.stripe_url + path, data=data, method=method,
                                     headers={'Authorization': 'Bearer %s' % C.STRIPE_API_KEY})
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                return json.loads(resp.read().decode('utf-8'))
        except urllib.error.HTTPError as exc:
            raise SandboxError('the Stripe stand-in answered %s %s with HTTP %d' % (method, path, exc.code))
        except Exception as exc:
            raise SandboxError('the Stripe stand-in (%s) did not answer %s %s: %s'
                               % (self.stripe_url, method, path, exc))

    def stripe_endpoint(self):
        """Our webhook endpoint as the stand-in keeps it (with '_secret'), from its endpoints file, or None."""
        try:
            with open(self.path(C.STRIPE_ENDPOINTS_FILE)) as fh:
                endpoints = json.load(fh).get('endpoints', [])
        except (OSError, ValueError):
            return None
        ours = [e for e in endpoints if e.get('url') == self.stripe_webhook_url]
        return ours[-1] if ours else None

    # ------------------------------------------------------------ seed
    def _seed_stripe(self, fresh):
        """Register our webhook endpoint at the stand-in and put the Stripe secrets into Secrets Manager.
        fresh: moto was just seeded (no secrets yet). Otherwise only what is missing is added."""
        sm = self.boto('secretsmanager')
        existing = {}
        if not fresh:
            for secret_id in (C.STRIPE_KEY_SECRET_ID, C.STRIPE_WEBHOOK_SECRET_ID):
                try:
                    existing[secret_id] = sm.get_secret_value(SecretId=secret_id)['SecretString']
                except sm.exceptions.ResourceNotFoundException:
                    pass
        endpoint = self.stripe_endpoint()
        secret = existing.get(C.STRIPE_WEBHOOK_SECRET_ID) or (endpoint or {}).get('_secret') or new_webhook_secret()
        if endpoint is None or endpoint.get('_secret') != secret:
            self._say('registering the webhook endpoint %s at the Stripe stand-in' % self.stripe_webhook_url)
            form = [('url', self.stripe_webhook_url), ('secret', secret)]
            form += [('enabled_events[]', e) for e in C.STRIPE_WEBHOOK_EVENTS]
            if endpoint is not None:
                self._stripe_api('DELETE', '/v1/webhook_endpoints/%s' % endpoint['id'])
            self._stripe_api('POST', '/v1/webhook_endpoints', form)
        if not existing:
            self._say('putting the Stripe API key (placeholder) and the webhook signing secret into Secrets Manager '
                      '(%s, %s)' % (C.STRIPE_KEY_SECRET_ID, C.STRIPE_WEBHOOK_SECRET_ID))
            seed_mod.seed_stripe(self.moto_port, secret)
        elif len(existing) < 2:
            raise SandboxError('Secrets Manager has only %s of the Stripe secrets; stop and start the sandbox'
                               % ', '.join(existing))

    # ------------------------------------------------------------ status
    def stripe_status(self):
        """The stand-in's /_sandbox/state, or {'error': ...}."""
        if not self.stripe_running():
            return None
        try:
            status, state = http_json(self.stripe_url + '/_sandbox/state', timeout=3)
        except Exception as exc:
            return {'error': '%s: %s' % (type(exc).__name__, exc)}
        return state if status == 200 else {'error': 'HTTP %d' % status}

    # ------------------------------------------------------------ the twin's payments state
    def _twin_payments(self):
        if not self.twin_running():
            raise SandboxError('the service twin is not running; run `start`')
        try:
            status, state = http_json(self.twin_url + '/twin/state?window=1', timeout=3)
        except Exception as exc:
            raise SandboxError('the service twin did not answer GET /twin/state: %s' % exc)
        if status != 200 or not isinstance(state, dict) or 'payments' not in state:
            raise SandboxError('the service twin answered GET /twin/state with HTTP %s and no payments state' % status)
        return state['payments']

    def _wait_twin_payments(self, pred, what, timeout=PAYMENTS_WAIT_TIMEOUT):
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            try:
                last = self._twin_payments()
                if pred(last):
                    return round(time.monotonic() - t0, 2)
            except SandboxError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise SandboxError('waited %.0fs for %s; the twin\'s payments state was %s (see %s)'
                           % (timeout, what, last, self.path('twin.log')))

    def _stripe_secret_stages(self, sm, secret_id):
        stages = {}
        for version_id, labels in (sm.describe_secret(SecretId=secret_id).get('VersionIdsToStages') or {}).items():
            for label in labels or []:
                stages[label] = version_id
        return stages

    def _redeploy(self):
        self.boto('ecs').update_service(cluster=C.CLUSTER, service=C.SERVICE, forceNewDeployment=True)

    # ------------------------------------------------------------ faults
    def _inject_webhook_secret_mismatch(self, name, wait=True):
        """A wrong whsec_ value becomes AWSCURRENT (AWSPREVIOUS keeps the right one), then a forced redeploy."""
        self._require_stripe(name)
        sm = self.boto('secretsmanager')
        before = self._stripe_secret_stages(sm, C.STRIPE_WEBHOOK_SECRET_ID)
        new_version = sm.put_secret_value(SecretId=C.STRIPE_WEBHOOK_SECRET_ID,
                                          SecretString=new_webhook_secret())['VersionId']
        self._redeploy()
        injected_at = _utc_iso()
        waited = None
        if wait and self.twin_running():
            waited = self._wait_twin_payments(
                lambda p: p['secrets']['webhook_secret_version'] == new_version,
                'the twin to load the new webhook secret version %s' % new_version)
        return {'injected_at': injected_at, 'secret_id': C.STRIPE_WEBHOOK_SECRET_ID, 'new_version_id': new_version,
                'right_version_id': before.get('AWSCURRENT'), 'twin_wait_seconds': waited,
                'summary': 'secret %s: a wrong whsec_ value is AWSCURRENT (version %s; AWSPREVIOUS %s keeps the '
                           'right one) and the service was redeployed (forceNewDeployment): the API verifies '
                           'webhooks with the wrong secret'
                           % (C.STRIPE_WEBHOOK_SECRET_ID, new_version, before.get('AWSCURRENT'))}

    def _inject_stripe_key_revoked(self, name, wait=True):
        """Revoke, at the stand-in, the API key the API loaded (AWSCURRENT of the key secret)."""
        self._require_stripe(name)
        sm = self.boto('secretsmanager')
        version = None
        if self.twin_running():
            version = self._twin_payments()['secrets'].get('api_key_version')
        kwargs = {'VersionId': version} if version else {}
        key = sm.get_secret_value(SecretId=C.STRIPE_KEY_SECRET_ID,
                                  **(kwargs or {'VersionStage': 'AWSCURRENT'}))['SecretString']
        self._stripe_json('POST', '/_sandbox/revoked_keys', {'key': key})
        injected_at = _utc_iso()
        waited = None
        if wait and self.twin_running():
            t_inject = time.time()
            waited = self._wait_twin_payments(
                lambda p: p['api']['last_status'] == 401 and p['api']['last_failure_at'] is not None
                and _ts(p['api']['last_failure_at']) >= t_inject - 0.5,
                'a payment call of the twin to answer 401')
        return {'injected_at': injected_at, 'key': mask_key(key), 'key_secret_id': C.STRIPE_KEY_SECRET_ID,
                'key_version_id': version, 'twin_wait_seconds': waited,
                'summary': 'the Stripe API key %s (%s, version %s, the one the API loaded; also the connection.yml '
                           'placeholder) is revoked at the stand-in: calls with it answer 401 api_key_expired'
                           % (mask_key(key), C.STRIPE_KEY_SECRET_ID, version)}

    def _require_stripe(self, fault):
        if not self.stripe_running():
            raise SandboxError('fault %s needs the Stripe stand-in, which is not running; run `start`' % fault)

    # ------------------------------------------------------------ heal
    def _heal_stripe(self, actions, wait):
        """Restart the stand-in if it died, un-revoke every key, and when the API does not verify webhooks
        with the endpoint's secret restore that secret as AWSCURRENT and redeploy. Missed events are NOT
        replayed: heal restores behaviour only."""
        if not self.stripe_running() and self.twin_running():
            self._ensure_stripe(keep_port=True)
            actions.append('Stripe stand-in restarted on port %d (pid %d)' % (self.stripe_port, self.stripe_pid()))
        if self.stripe_running():
            revoked = (self.stripe_status() or {}).get('revoked_keys') or []
            if revoked:
                self._stripe_json('DELETE', '/_sandbox/revoked_keys', {})
                actions.append('Stripe API keys no longer revoked at the stand-in: %s'
                               % ', '.join(r.get('masked') or '?' for r in revoked))
        endpoint = self.stripe_endpoint()
        if endpoint is None or not self.twin_running():
            return
        right = endpoint['_secret']
        sm = self.boto('secretsmanager')
        loaded = self._twin_payments()['secrets'].get('webhook_secret_version')
        try:
            loaded_value = sm.get_secret_value(SecretId=C.STRIPE_WEBHOOK_SECRET_ID,
                                               VersionId=loaded)['SecretString'] if loaded else None
        except sm.exceptions.ResourceNotFoundException:
            loaded_value = None
        if loaded_value == right:
            return
        current = sm.get_secret_value(SecretId=C.STRIPE_WEBHOOK_SECRET_ID, VersionStage='AWSCURRENT')
        if current['SecretString'] == right:
            target, how = current['VersionId'], 'AWSCURRENT already holds the endpoint\'s secret'
        else:
            # a new version rather than a stage move: moto's put_secret_value mishandles moved stages
            target = sm.put_secret_value(SecretId=C.STRIPE_WEBHOOK_SECRET_ID, SecretString=right)['VersionId']
            how = 'the endpoint\'s secret put back as a new AWSCURRENT version %s' % target
        self._redeploy()
        actions.append('Stripe webhook secret: %s, and a forced new deployment (the API verified with version %s); '
                       'undelivered events are not replayed' % (how, loaded))
        if wait:
            self._wait_twin_payments(lambda p: p['secrets']['webhook_secret_version'] == target,
                                     'the twin to load webhook secret version %s' % target)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((C.HOST, 0))
        return sock.getsockname()[1]


def _utc_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def _ts(iso_text):
    return datetime.datetime.fromisoformat(iso_text).timestamp()
