"""A psycopg2 session across `borealis cluster reboot`, as a user's application holds one.

It connects as the master user (psycopg2's default sslmode=prefer: TLS from the endpoint),
names itself with application_name, sets search_path, prepares a statement with SQL PREPARE
(psycopg2 has no protocol-level prepare), commits (psycopg2 opens a transaction on the first
statement; an idle session is one that committed), prints "ready <backend pid>", and waits
for a line on stdin. Then, on the same connection, it runs the prepared statement and reads
its settings back, and prints one JSON line. Any error is printed as {"error": ...} (exit 1).

Run by cmd/borealis/seed_test.go against a real `borealis up`."""
import json
import os
import sys

import psycopg2


def main():
    conn = psycopg2.connect(
        host=os.environ["SEED_HOST"], port=os.environ["SEED_PORT"],
        dbname=os.environ["SEED_DATABASE"], user=os.environ["SEED_USER"],
        password=os.environ["SEED_PASSWORD"], application_name="pymover",
    )
    cur = conn.cursor()
    cur.execute("SET search_path = py_schema, public")
    cur.execute("PREPARE plus_one (int) AS SELECT $1 + 1")
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    conn.commit()
    print("ready %d" % pid, flush=True)
    sys.stdin.readline()
    try:
        cur.execute("EXECUTE plus_one (41)")
        answer = cur.fetchone()[0]
        cur.execute("SELECT current_setting('search_path'), current_setting('application_name'), pg_backend_pid()")
        path, app, new_pid = cur.fetchone()
        conn.commit()
        print(json.dumps({"answer": answer, "search_path": path, "application_name": app,
                          "pid_before": pid, "pid_after": new_pid,
                          "ssl": conn.info.ssl_in_use}), flush=True)
    except Exception as e:  # the test shows what the client saw
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
        sys.exit(1)
    conn.close()


main()
