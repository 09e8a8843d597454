# -*- coding: utf-8 -*-
# Copyright: (c) 2026, SVPMS Platform Team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options shared by every pg_* module (module_utils/postgres.py).
    DOCUMENTATION = r'''
options:
  host:
    description:
      - Host name or IP address of the PostgreSQL server. Falls back to E(PGHOST).
    type: str
    default: 127.0.0.1
    aliases: [login_host]
  port:
    description:
      - TCP port of the PostgreSQL server. Falls back to E(PGPORT).
    type: int
    default: 5432
    aliases: [login_port]
  database:
    description:
      - Database to connect to. Falls back to E(PGDATABASE).
    type: str
    default: postgres
    aliases: [db, login_db]
  user:
    description:
      - Role to connect as. Falls back to E(PGUSER).
      - It does not need to be a superuser; see each module's notes for the grants it needs
        (C(pg_monitor), C(pg_signal_backend)).
    type: str
    default: postgres
    aliases: [login_user]
  password:
    description:
      - Password of O(user). Falls back to E(PGPASSWORD); libpq also reads C(~/.pgpass).
        Never logged.
    type: str
    aliases: [login_password]
  sslmode:
    description:
      - libpq C(sslmode). Use V(verify-full) with O(ssl_rootcert) across untrusted networks.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ssl_rootcert:
    description:
      - File with the certificate authority (or authorities) that signed the server certificate.
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established (1 to 60).
    type: int
    default: 5
  statement_timeout_ms:
    description:
      - C(statement_timeout) of this module's own session, in milliseconds (100 to 600000), so that
        none of our queries can hang on an overloaded server. Our C(lock_timeout) is the smaller of
        this and 2000 ms.
    type: int
    default: 5000
  application_name:
    description:
      - C(application_name) of this module's session, so that it is recognisable in
        C(pg_stat_activity). The modules never list or touch their own session.
    type: str
    default: svpms-incident-response
notes:
  - The session is autocommit and read-only (C(default_transaction_read_only=on)); these modules never
    write data. TCP keepalives detect a dead server on an established connection.
  - An unreachable server, failed authentication, a TLS problem or a timeout is reported with
    C(reachable=false), C(error_kind) (V(unreachable), V(timeout), V(auth_failed), V(tls),
    V(not_found)) and a message saying what to check, never with a traceback.
  - Query texts in results have their literals (strings, dollar-quoted bodies, numbers) replaced
    with C(?) and comments removed, so secrets written into SQL never reach the output.
requirements:
  - psycopg2 >= 2.8 (or psycopg2-binary)
'''
