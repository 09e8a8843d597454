"""Run the collection's modules the way Ansible does, against real backends.

``run_module`` executes the module file in a fresh interpreter with an
``ANSIBLE_MODULE_ARGS`` file (exactly what the controller ships to a host),
so argument validation, check mode, no_log and exit/fail paths are the real
ones. ``run_adhoc`` goes through ``ansible`` itself for plumbing tests.
"""

import json
import os
import subprocess
import sys
import tempfile

from .servers import REPO, VENV_BIN

COLLECTIONS = os.path.join(REPO, '.collections')
MODULES = os.path.join(REPO, 'plugins', 'modules')

AWS_TEST_CREDS = dict(access_key='sandbox-access-key', secret_key='sandbox-secret-key',
                      region='us-east-1', max_attempts=1, connect_timeout=2, read_timeout=10)


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = COLLECTIONS + os.pathsep + env.get('PYTHONPATH', '')
    for var in ('AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
                'AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_DEFAULT_REGION'):
        env.pop(var, None)
    env['AWS_CONFIG_FILE'] = os.devnull
    env['AWS_SHARED_CREDENTIALS_FILE'] = os.devnull
    return env


class ModuleResult(dict):
    def __init__(self, rc, data, stdout, stderr):
        super().__init__(data)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def failed(self):
        return bool(self.get('failed'))


def run_module(name, args, check=False, timeout=120):
    """Run plugins/modules/<name>.py with args; return its JSON result."""
    module_args = dict(args)
    module_args['_ansible_check_mode'] = check
    module_args.setdefault('_ansible_diff', True)
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as fh:
        json.dump({'ANSIBLE_MODULE_ARGS': module_args}, fh)
        path = fh.name
    try:
        proc = subprocess.run([sys.executable, os.path.join(MODULES, name + '.py'), path],
                              capture_output=True, text=True, timeout=timeout, env=_env(), check=False)
    finally:
        os.unlink(path)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('module %s printed no JSON (rc=%s)\nstdout:\n%s\nstderr:\n%s'
                             % (name, proc.returncode, proc.stdout, proc.stderr))
    return ModuleResult(proc.returncode, data, proc.stdout, proc.stderr)


def assert_no_traceback(result):
    text = result.stdout + result.stderr
    assert 'Traceback' not in text, text
    assert 'exception' not in result or not result.get('exception'), result.get('exception')


def run_adhoc(fqcn, args, check=False, timeout=180, extra_env=None):
    """Run one module through `ansible localhost -m` and parse its JSON result.

    Uses ansible-core's default callback with result_format=json (the `json`
    stdout callback lives in ansible.posix, which is not a dependency).
    """
    env = _env()
    env.update({'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.default',
                'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json', 'ANSIBLE_LOAD_CALLBACK_PLUGINS': '0',
                'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_CONFIG': os.path.join(REPO, 'ansible.cfg')})
    env.update(extra_env or {})
    cmd = [os.path.join(VENV_BIN, 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
           '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-m', fqcn, '-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO,
                          check=False)
    marker = proc.stdout.find(' => ')
    if marker < 0:
        raise AssertionError('ansible printed no result (rc=%s)\nstdout:\n%s\nstderr:\n%s'
                             % (proc.returncode, proc.stdout, proc.stderr))
    result = json.JSONDecoder().raw_decode(proc.stdout[marker + 4:].lstrip())[0]
    return ModuleResult(proc.returncode, result, proc.stdout, proc.stderr)
