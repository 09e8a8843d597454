"""Start and stop the real backends the tests talk to, on loopback, by PID."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


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
