#!/usr/bin/env python3
"""Runs a command with a private PostgreSQL: starts a PgServer (tests/lib/servers.py: initdb in a
temp dir, loopback only, a free port), creates a database, runs the command with
HOOKD_TEST_PG_URL set to that database's URL (the command may create and drop databases of its
own there: the user is a superuser), then stops the server and removes its files. Exits with the
command's status.

    tests/lib/with_pg.py build/test_store_conformance

ctest's `store` label runs the store conformance test this way (CMakeLists.txt), with
HOOKD_REQUIRE_PG=1 so that the test fails instead of skipping its PostgreSQL group.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import PgServer  # noqa: E402


def main(argv):
    if len(argv) < 2:
        print("usage: with_pg.py command [args...]", file=sys.stderr)
        return 2
    pg = PgServer()
    try:
        pg.start()
        env = dict(os.environ, HOOKD_TEST_PG_URL=pg.new_database("conform"))
        return subprocess.run(argv[1:], env=env).returncode
    finally:
        pg.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
