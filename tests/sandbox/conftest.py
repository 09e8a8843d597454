import os
import sys

import pytest

from tests.helpers.servers import REPO, free_port

sys.path.insert(0, os.path.join(REPO, 'sandbox'))

from svpms_sandbox import Sandbox  # noqa: E402


@pytest.fixture(scope='module')
def box(tmp_path_factory, request):
    """A sandbox of this test file's own, on free loopback ports; stopped by PID afterwards.

    Without payments (no Stripe stand-in, no payment traffic: lighter) unless the test
    file sets SANDBOX_PAYMENTS = True."""
    sb = Sandbox(str(tmp_path_factory.mktemp('sandbox')), moto_port=free_port(), twin_port=free_port(),
                 receiver_port=free_port(), redis_port=free_port(), stripe_port=free_port(),
                 payments=getattr(request.module, 'SANDBOX_PAYMENTS', False))
    try:
        sb.start()
        yield sb
    finally:
        sb.stop()  # idempotent; the files' stop tests check it properly
