"""config_guard called the way a Python service does, with psycopg 3.

Usage: psycopg_check.py CONNINFO MODE, MODE being "direct" (every statement
prepared on the server) or "pooled" (behind PgBouncer in transaction mode: no
prepared statements). Prints one line per check and exits non-zero if any
fails. The schema is made by the TAP test that runs it (150_drivers.pl).
"""
import sys
import uuid

import psycopg

conninfo, mode = sys.argv[1], sys.argv[2]
failures = 0


def check(name, got, want):
    global failures
    ok = got == want
    failures += not ok
    print(("ok" if ok else "not ok") + " - " + name + ("" if ok else f": got {got!r}, want {want!r}"))


prepare = 0 if mode == "direct" else None
with psycopg.connect(conninfo, autocommit=True, prepare_threshold=prepare) as conn:
    tenant_uuid = uuid.UUID("00000000-0000-0000-0000-000000000001")
    cases = [
        ("int", "int_cfg", 1, "build_int", "int"),
        ("int given as str", "int_cfg", "1", "build_int", "int"),
        ("bigint", "big_cfg", 2**40, "build_big", "bigint"),
        ("text", "text_cfg", "acme", "build_text", "text"),
        ("uuid", "uuid_cfg", tenant_uuid, "build_uuid", "uuid"),
        ("uuid given as str", "uuid_cfg", str(tenant_uuid), "build_uuid", "uuid"),
    ]
    for label, config, tenant, builder, tenant_type in cases:
        for _ in range(3):  # the third call runs the prepared statement
            got = conn.execute("SELECT config_guard.get(%s, %s)", (config, tenant)).fetchone()[0]
        want = conn.execute(f"SELECT {builder}(%s::text::{tenant_type})", (str(tenant),)).fetchone()[0]
        check(f"get() with a {label} tenant as a parameter", got, want)

        rows = conn.execute("SELECT item FROM config_guard.export_page(%s, %s, %s, %s)",
                            (config, tenant, None, 100)).fetchall()
        check(f"export_page() with a {label} tenant", len(rows), 2)

        # a write and an invalidation, both with the tenant as a parameter
        conn.execute("SELECT config_guard.invalidate(%s, %s)", (config, tenant))
        got = conn.execute("SELECT config_guard.get(%s, %s)", (config, tenant)).fetchone()[0]
        check(f"get() after invalidate() with a {label} tenant", got, want)

    # binary parameters (%b): typed on the wire
    got = conn.execute("SELECT config_guard.get(%b, %b)", ("int_cfg", 1)).fetchone()[0]
    check("get() with binary parameters", got, conn.execute("SELECT build_int(1)").fetchone()[0])
    got = conn.execute("SELECT config_guard.get(%b, %b)", ("uuid_cfg", tenant_uuid)).fetchone()[0]
    check("get() with a binary uuid", got, conn.execute("SELECT build_uuid(%s)", (tenant_uuid,)).fetchone()[0])

    # a write through the driver invalidates
    conn.execute("UPDATE items_int SET v = v || '!' WHERE tenant_id = %s", (1,))
    got = conn.execute("SELECT config_guard.get(%s, %s)", ("int_cfg", 1)).fetchone()[0]
    check("get() after a write", got, conn.execute("SELECT build_int(1)").fetchone()[0])

    # a short transaction, as a service runs it (rolled back: the script runs
    # again through PgBouncer)
    with conn.transaction(force_rollback=True):
        conn.execute("INSERT INTO items_int VALUES (%s, %s, %s)", (1, 3, "c"))
        got = conn.execute("SELECT config_guard.get(%s, %s)", ("int_cfg", 1)).fetchone()[0]
        check("get() inside the writing transaction", got, conn.execute("SELECT build_int(1)").fetchone()[0])

    # errors arrive with their SQLSTATE
    try:
        conn.execute("SELECT config_guard.get(%s, %s)", ("no_such_config", 1))
        check("an unknown config is an error", "no error", "42704")
    except psycopg.Error as e:
        check("an unknown config is an error", e.sqlstate, "42704")

print(f"{failures} failed")
sys.exit(1 if failures else 0)
