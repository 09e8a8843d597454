"""Start and stop the real backends the tests talk to, on loopback, by PID."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


# Ports for the servers tests start. Not from the kernel's ephemeral range (32768-60999 here): a port
# picked there and released is soon taken by some outgoing connection before the server binds it. Each
# pytest-xdist worker gets its own slice, so two workers never pick the same port.
PORT_BASE = 20000
PORT_SLICE = 1500
_handed_out = set()


def _worker_index():
    worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')  # gw0, gw1, ...
    try:
        return int(worker[2:]) % 8
    except ValueError:
        return 0


def free_port():
    """A loopback TCP port nothing listens on, not handed out before by this process."""
    low = PORT_BASE + _worker_index() * PORT_SLICE
    candidates = [p for p in range(low, low + PORT_SLICE) if p not in _handed_out]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError('no free loopback port in %d-%d' % (low, low + PORT_SLICE - 1))


def wait_http(url, timeout=20.0, what='server'):
    """Poll url until it answers with any HTTP status; bounded."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception as exc:  # still starting
            last = exc
            time.sleep(0.1)
    raise RuntimeError('waited %.0fs for %s at %s: %s' % (timeout, what, url, last))


def stop_pid(proc, timeout=10):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class MotoServer:
    """moto_server on 127.0.0.1:<free port>, stopped by its PID."""

    def __init__(self, log_dir, env=None):
        self.port = free_port()
        self.endpoint = 'http://127.0.0.1:%d' % self.port
        self.log_path = os.path.join(log_dir, 'moto-%d.log' % self.port)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None

    def start(self):
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [os.path.join(VENV_BIN, 'moto_server'), '-H', '127.0.0.1', '-p', str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_http(self.endpoint + '/moto-api/', what='moto_server')
        return self

    def reset(self):
        req = urllib.request.Request(self.endpoint + '/moto-api/reset', method='POST')
        urllib.request.urlopen(req, timeout=5)

    def stop(self):
        if self.proc:
            stop_pid(self.proc)
