# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options shared by every redis_* module (module_utils/redis_client.py).
    DOCUMENTATION = r'''
options:
  host:
    description:
      - Host name or IP address of the Redis server (for ElastiCache, the primary or reader endpoint).
        Falls back to E(REDIS_HOST).
    type: str
    default: 127.0.0.1
  port:
    description:
      - TCP port of the Redis server, 1 to 65535. Falls back to E(REDIS_PORT).
    type: int
    default: 6379
  db:
    description:
      - Logical database number to select, 0 or more. Cluster-mode servers only have V(0).
    type: int
    default: 0
  username:
    description:
      - ACL user to authenticate as (Redis 6 or later). Leave it out to authenticate as the
        C(default) user with O(password) alone (C(requirepass)).
    type: str
  password:
    description:
      - Password of O(username), or the C(requirepass) password. Falls back to E(REDISCLI_AUTH),
        the variable C(redis-cli) reads. Never logged and never part of any message.
    type: str
  tls:
    description:
      - Connect with TLS (ElastiCache in-transit encryption, C(tls-port)).
    type: bool
    default: false
  tls_ca_cert:
    description:
      - File with the certificate authority that signed the server certificate. Needs O(tls=true).
        Without it the system trust store is used.
    type: path
  tls_verify:
    description:
      - Verify the server certificate and its host name. Switch it off only for a test server.
    type: bool
    default: true
  connect_timeout:
    description:
      - Seconds to wait for the TCP (and TLS) connection, more than 0 and at most 60.
    type: float
    default: 3
  socket_timeout:
    description:
      - Seconds to wait for the answer to each command, more than 0 and at most 60.
    type: float
    default: 3
notes:
  - The client makes one attempt per command; redis-py's own retries are switched off, so a timeout is
    reported as one and latency figures are not hidden by retries.
  - An unreachable server, failed authentication (C(NOAUTH), C(WRONGPASS)), a TLS problem, a timeout or a
    port that does not speak Redis is reported with C(reachable=false), C(error_kind) (V(unreachable),
    V(auth_failed), V(tls), V(timeout), V(protocol)) and a message saying what to check, never with a
    traceback. A command refused by the ACL gives C(error_kind=permission) (C(NOPERM)).
requirements:
  - redis (redis-py) >= 5.0
'''
