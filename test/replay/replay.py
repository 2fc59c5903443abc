#!/usr/bin/python3
"""Replays the incident against a prepared database, twice.

Phase "without": the configuration service has lost every cache. Each of its
clients rebuilds configurations by reading every source with OFFSET pagination,
and retries a request that failed or timed out at once, without backoff.

Phase "with config_guard": the same clients, just as naive about retries, ask
config_guard.get() (export_page for the largest tenants), while the rebuild
role runs under an admission limit.

Throughout both, a "login" workload of another role runs a small indexed lookup;
its latency is what the incident's customers felt.
"""
import argparse
import multiprocessing as mp
import queue
import random
import sys
import time

import psycopg2
import psycopg2.errors

SOURCES = [("app.experiments", "experiment_id"), ("app.feature_flags", "flag_key"), ("app.segments", "segment_id")]
PAGE = 100                # the service's OFFSET page size
EXPORT_ABOVE = 5000       # tenants larger than this are fetched with export_page
STATEMENT_TIMEOUT_MS = 2000


class Phase:
    """One phase's results, gathered from the client processes' events."""

    def __init__(self, name, tenants):
        self.name, self.tenants = name, tenants
        self.done = set()
        self.all_done_at = None
        self.queries = self.requests = self.attempts = 0
        self.errors = {}
        self.login = []       # (seconds since start, latency ms)
        self.login_errors = 0
        self.rows = self.builder_runs = 0

    def absorb(self, event):
        kind = event[0]
        if kind == "done":
            self.done.add(event[1])
            if self.all_done_at is None and len(self.done) == len(self.tenants):
                self.all_done_at = event[2]
        elif kind == "counts":
            self.queries += event[1]
            self.requests += event[2]
            self.attempts += event[3]
        elif kind == "error":
            self.errors[event[1]] = self.errors.get(event[1], 0) + 1
        elif kind == "login":
            self.login.extend(event[1])
            self.login_errors += event[2]


def connect(args, user):
    conn = psycopg2.connect(host=args.host, port=args.port, dbname=args.dbname, user=user)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = %s", (STATEMENT_TIMEOUT_MS,))
    return conn


def error_kind(exc):
    code = getattr(exc, "pgcode", None)
    return {"57014": "statement timeout", "55P03": "55P03 wait timeout", "53400": "53400 queue full",
            "40001": "40001 changed", "53300": "too many connections"}.get(code, "other %s" % code)


class Client:
    """A rebuild client: its own process, so that clients never share a GIL."""

    def __init__(self, args, guarded, sizes, work, events, start, stop, seed):
        self.args, self.guarded, self.sizes = args, guarded, sizes
        self.work, self.events, self.start, self.stop = work, events, start, stop
        self.rng = random.Random(seed)
        self.tenants = sorted(sizes)
        # After every configuration was asked for once, traffic goes on, each
        # tenant asked for in proportion to its size (its users).
        self.weights = [sizes[t] for t in self.tenants]
        self.queries = self.requests = self.attempts = 0

    def next_tenant(self):
        try:
            return self.work.get_nowait()
        except queue.Empty:
            return self.rng.choices(self.tenants, self.weights)[0]

    def naive(self, cur, tenant):
        """Every source, page by page with OFFSET: each page re-reads all earlier rows."""
        for table, key in SOURCES:
            offset = 0
            while not self.stop.is_set():
                cur.execute("SELECT to_jsonb(s)::text FROM %s s WHERE tenant_id = %%s ORDER BY %s OFFSET %%s LIMIT %%s"
                            % (table, key), (tenant, offset, PAGE))
                self.queries += 1
                got = len(cur.fetchall())
                offset += got
                if got < PAGE:
                    break

    def guarded_request(self, cur, tenant):
        if self.sizes[tenant] <= EXPORT_ABOVE:
            cur.execute("SELECT config_guard.get('customer_config', %s::bigint)::text", (tenant,))
            self.queries += 1
            cur.fetchall()
            return
        after = None  # the largest configurations come page by page, keyset-paginated
        while not self.stop.is_set():
            cur.execute("SELECT item::text, cursor FROM config_guard.export_page('customer_config', %s::bigint, %s, 1000)",
                        (tenant, after))
            self.queries += 1
            page = cur.fetchall()
            if not page:
                break
            after = page[-1][1]

    def run(self):
        conn = None
        while not self.stop.is_set():
            tenant = self.next_tenant()
            self.requests += 1
            while not self.stop.is_set():  # retried at once, without backoff
                try:
                    if conn is None:
                        conn = connect(self.args, "rebuild_svc")
                    with conn.cursor() as cur:
                        self.attempts += 1
                        (self.guarded_request if self.guarded else self.naive)(cur, tenant)
                    self.events.put(("done", tenant, time.time() - self.start))
                    break
                except psycopg2.Error as exc:
                    self.events.put(("error", error_kind(exc)))
                    if conn is not None and conn.closed:
                        conn = None
            if self.requests % 20 == 0:
                self.events.put(("counts", self.queries, self.requests, self.attempts))
                self.queries = self.requests = self.attempts = 0
        self.events.put(("counts", self.queries, self.requests, self.attempts))
        if conn is not None:
            conn.close()


def rebuild_process(args, guarded, sizes, work, events, start, stop, seed):
    Client(args, guarded, sizes, work, events, start, stop, seed).run()


def login_process(args, events, start, stop, seed):
    rng = random.Random(seed)
    conn = connect(args, "login_app")
    samples, errors = [], 0
    while not stop.is_set():
        t0 = time.time()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT user_id, password_hash FROM app.users WHERE email = %s",
                            ("user%d@example.com" % rng.randint(1, 200000),))
                cur.fetchall()
            samples.append((t0 - start, (time.time() - t0) * 1000))
        except psycopg2.Error:
            errors += 1
            if conn.closed:
                conn = connect(args, "login_app")
        if len(samples) % 100 == 0 and samples:
            events.put(("login", samples, errors))
            samples, errors = [], 0
        time.sleep(max(0.0, 0.01 - (time.time() - t0)))
    events.put(("login", samples, errors))
    conn.close()


def admin(args, sql, params=None):
    conn = psycopg2.connect(host=args.host, port=args.port, dbname=args.dbname, user="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else None
    conn.close()
    return rows


def rows_read(args):
    return admin(args, """SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0)
                           FROM pg_stat_user_tables
                          WHERE relid IN ('app.experiments'::regclass, 'app.feature_flags'::regclass,
                                          'app.segments'::regclass)""")[0][0]


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def drain(events, phase):
    while True:
        try:
            phase.absorb(events.get_nowait())
        except queue.Empty:
            return


def run_phase(args, name, guarded, tenants, sizes):
    if guarded:
        admin(args, "SELECT config_guard.set_role_limit('rebuild_svc', %s, 64, '2s')", (args.limit,))
        admin(args, "SELECT config_guard.invalidate_all('customer_config')")  # every document stale: a cold start
        admin(args, "SELECT config_guard.reset_stats()")
    else:
        admin(args, "SELECT config_guard.drop_role_limit(role) FROM config_guard.role_stats")
    admin(args, "SELECT pg_stat_reset()")
    time.sleep(1)
    before_rows = rows_read(args)

    phase = Phase(name, tenants)
    work, events, stop = mp.Queue(), mp.Queue(), mp.Event()
    order = list(tenants)
    random.Random(42).shuffle(order)
    for t in order:
        work.put(t)
    time.sleep(0.5)  # let the queue's feeder thread fill the pipe
    start = time.time()
    # daemonic: an interrupted replay leaves no client behind
    procs = [mp.Process(target=login_process, args=(args, events, start, stop, 1000 + i), daemon=True)
             for i in range(2)]
    procs += [mp.Process(target=rebuild_process, args=(args, guarded, sizes, work, events, start, stop, i), daemon=True)
              for i in range(args.clients)]
    for p in procs:
        p.start()
    try:
        next_report = 5
        while time.time() - start < args.duration:
            time.sleep(0.2)
            drain(events, phase)
            if time.time() - start >= next_report:
                next_report += 5
                recent = [ms for (t, ms) in phase.login[-500:]]
                print("  [%s] %3.0f s: %4d/%d configurations rebuilt, %7d queries, %5d errors, login p99 %.1f ms"
                      % (name, time.time() - start, len(phase.done), len(tenants), phase.queries,
                         sum(phase.errors.values()), pct(recent, 0.99)), flush=True)
    finally:
        stop.set()
        deadline = time.time() + 30
        while any(p.is_alive() for p in procs) and time.time() < deadline:
            drain(events, phase)
            time.sleep(0.1)
        for p in procs:
            if p.is_alive():
                p.terminate()
        drain(events, phase)
    time.sleep(1.5)  # let the backends report their table statistics
    phase.rows = rows_read(args) - before_rows
    if guarded:
        phase.builder_runs = admin(args, "SELECT builder_runs FROM config_guard.config_stats "
                                         "WHERE config = 'customer_config'")[0][0]
    else:
        phase.builder_runs = phase.attempts
    return phase


def report(phases, out):
    def fmt_done(p):
        if p.all_done_at is None:
            return "not done (%d/%d)" % (len(p.done), len(p.tenants))
        return "%.1f s" % p.all_done_at
    lines = []
    header = "%-38s %22s %22s" % ("", phases[0].name, phases[1].name)
    lines.append(header)
    lines.append("-" * len(header))
    def row(label, f):
        lines.append("%-38s %22s %22s" % (label, f(phases[0]), f(phases[1])))
    row("rebuild requests", lambda p: "%d" % p.requests)
    row("rebuild queries", lambda p: "%d" % p.queries)
    row("builder runs (whole rebuilds)", lambda p: "%d" % p.builder_runs)
    row("rows read from the sources", lambda p: "%d" % p.rows)
    row("time until every config was rebuilt", fmt_done)
    for q, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        row("login latency %s" % label, lambda p, q=q: "%.2f ms" % pct([ms for _, ms in p.login], q))
    row("logins served", lambda p: "%d" % len(p.login))
    row("login errors", lambda p: "%d" % p.login_errors)
    kinds = sorted(set(phases[0].errors) | set(phases[1].errors))
    for k in kinds:
        row("rebuild errors: %s" % k, lambda p, k=k: "%d" % p.errors.get(k, 0))
    if not kinds:
        row("rebuild errors", lambda p: "0")
    a, b = phases
    lines.append("")
    lines.append("ratios, %s / %s:" % (a.name, b.name))
    def ratio(x, y):
        return "%.1f" % (x / y) if y else "n/a"
    lines.append("  rebuild queries      %s" % ratio(a.queries, b.queries))
    lines.append("  rows read            %s" % ratio(a.rows, b.rows))
    lines.append("  login p99 latency    %s" % ratio(pct([ms for _, ms in a.login], 0.99),
                                                   pct([ms for _, ms in b.login], 0.99)))
    lines.append("  logins served        %s" % ratio(len(a.login), len(b.login)))
    if a.all_done_at and b.all_done_at:
        lines.append("  time to rebuild all  %s" % ratio(a.all_done_at, b.all_done_at))
    text = "\n".join(lines)
    print(text)
    with open(out + "/replay_table.txt", "w") as f:
        f.write(text + "\n")
    for p, tag in zip(phases, ("without", "with")):
        with open("%s/login_%s.dat" % (out, tag), "w") as f:
            for t, ms in p.login:
                f.write("%.3f %.3f\n" % (t, ms))


def main():
    mp.set_start_method("fork")
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dbname", default="postgres")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    rows = admin(args, "SELECT tenant_id, size FROM app.tenants ORDER BY tenant_id")
    tenants = [r[0] for r in rows]
    sizes = {r[0]: r[1] for r in rows}
    print("%d tenants, %d configuration rows, the largest tenant %d rows; %d rebuild clients, %d s per phase"
          % (len(tenants), sum(sizes.values()), max(sizes.values()), args.clients, args.duration), flush=True)
    phases = []
    print("phase 1: without config_guard (OFFSET paging, retries at once)", flush=True)
    phases.append(run_phase(args, "without", False, tenants, sizes))
    print("phase 2: with config_guard (get/export_page, rebuild role limited to %d)" % args.limit, flush=True)
    phases.append(run_phase(args, "with config_guard", True, tenants, sizes))
    print()
    report(phases, args.out)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
