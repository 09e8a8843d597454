import os
import sys

import pytest

from tests.helpers.servers import REPO, free_port

sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox import Sandbox  # noqa: E402


@pytest.fixture(scope='module')
def box(tmp_path_factory):
    """A sandbox of this test file's own, on free loopback ports; stopped by PID afterwards."""
    sb = Sandbox(str(tmp_path_factory.mktemp('sandbox')), moto_port=free_port(), twin_port=free_port(),
                 receiver_port=free_port(), redis_port=free_port())
    try:
        sb.start()
        yield sb
    finally:
        sb.stop()  # idempotent; the files' stop tests check it properly
