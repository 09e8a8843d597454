import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
COLLECTIONS = os.path.join(REPO, '.collections')

if not os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'svpms', 'incident_response')):
    raise pytest.UsageError('run `make setup` first: .collections/ansible_collections/svpms/'
                            'incident_response must link to the repo root')
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, REPO)  # tests.helpers

from tests.helpers.servers import MotoServer  # noqa: E402


@pytest.fixture(scope='session')
def moto(tmp_path_factory):
    """A moto_server of our own on a free loopback port, for module tests."""
    server = MotoServer(str(tmp_path_factory.mktemp('moto')),
                        env={'MOTO_ECS_SERVICE_RUNNING': '2'}).start()
    yield server
    server.stop()
