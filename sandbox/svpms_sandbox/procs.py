"""Process bookkeeping: pid files, liveness, stop by PID, port checks, HTTP waits."""

import errno
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

# Loopback only: never send our own HTTP calls through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SandboxError(Exception):
    """An expected failure: reported as one line, exit code 1."""


def http(method, url, timeout=2.0, data=None):
    """-> (status, body bytes). HTTP error statuses are returned, not raised."""
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url, timeout=2.0):
    status, body = http('GET', url, timeout=timeout)
    return status, json.loads(body.decode('utf-8')) if body else None


def read_pid(path):
    try:
        with open(path) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def write_pid(path, pid):
    tmp = path + '.tmp'
    with open(tmp, 'w') as fh:
        fh.write('%d\n' % pid)
    os.replace(tmp, path)


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as fh:
            return fh.read().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return None


def _is_zombie(pid):
    try:
        with open('/proc/%d/stat' % pid) as fh:
            # pid (comm) state ...; comm may contain spaces/parens
            return fh.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except (OSError, IndexError):
        return False


def pid_alive(pid, marker=None):
    """True if pid runs and (when /proc tells) its command line contains marker.

    Reaps it first if it is an exited child of ours; zombies count as dead.
    The marker guards against a recycled PID being taken for ours.
    """
    if not pid or pid <= 0:
        return False
    try:
        done = os.waitpid(pid, os.WNOHANG)[0]
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (normal after a detached `start`)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        if exc.errno != errno.EPERM:  # EPERM: exists, belongs to someone else
            return False
    if _is_zombie(pid):
        return False
    if marker:
        cmd = _cmdline(pid)
        if cmd is not None and marker not in cmd:
            return False
    return True


def stop_pid(pid, marker=None, timeout=10.0):
    """SIGTERM, wait up to timeout, then SIGKILL. -> 'not running'|'stopped'|'killed'."""
    if not pid_alive(pid, marker):
        return 'not running'
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return 'stopped'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return 'stopped'
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return 'stopped'
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    return 'killed'


def port_free(port, host='127.0.0.1'):
    """True if nothing listens on host:port (bind test; TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_http(url, timeout, proc_alive=None, what='server'):
    """Poll url until it answers with any HTTP status; bounded by timeout seconds.

    proc_alive: callable; if it turns False the wait fails at once.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc_alive is not None and not proc_alive():
            raise SandboxError('%s exited before answering on %s' % (what, url))
        try:
            return http('GET', url, timeout=1.0)
        except Exception as exc:  # still starting
            last = exc
            time.sleep(0.1)
    raise SandboxError('%s did not answer on %s within %.0fs (last error: %s)' % (what, url, timeout, last))


def tail(path, lines=15):
    try:
        with open(path, 'rb') as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            data = fh.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(data.splitlines()[-lines:])
