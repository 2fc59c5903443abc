#!/usr/bin/python3
"""Replays the incident against a prepared database, once without config_guard
and once with it, on the same schema, data, services and load.

Each phase has the same timeline:
  - a baseline: logins and back-office writes, the configuration service up
    with warm caches;
  - the incident: every cache layer is lost at once and the service restarts:
    several instances start cold, each asking for every tenant's configuration
    with no coordination between them;
  - the storm, until the phase ends.

The service (every instance a process with its own connection pool and
several request workers) makes each database call a request with a time
limit. A request over its limit is abandoned: the service stops waiting, the
query goes on in the database and its connection returns to the pool when it
ends, and the request is retried at once on another connection (opened if none
is free, up to the pool's size). A failed request is retried at once too.

  without: configurations are read source by source with OFFSET pagination;
  with:    the service calls config_guard.get() (export_page walks, served from
           pinned export versions, for the largest tenants); the rebuild role is
           under a role limit, every document is stale at the incident (the
           durable store's equivalent of the lost caches) and warm() runs after
           the restart.

Login is a login endpoint: it opens a connection and looks a user up by email,
with a budget of 1 s; a login over budget, or one the database refuses, fails.
Logins arrive at a fixed rate whatever the database does (open loop).

Back-office writes change configurations during both phases and tell every
service instance to fetch the written tenant again.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import signal
import subprocess
import sys
import time

import psycopg

SOURCES = [("app.experiments", "experiment_id"), ("app.feature_flags", "flag_key"), ("app.segments", "segment_id")]
CONFIG = "customer_config"


def conninfo(args, user):
    return "host=%s port=%d dbname=%s user=%s application_name=replay_%s" % (
        args.host, args.port, args.dbname, user, user)


def error_kind(exc):
    if isinstance(exc, RequestTimeout):
        return "request timeout, %s" % exc.args[0]
    code = getattr(exc, "sqlstate", None)
    if code:
        return {"57014": "57014 canceled", "55P03": "55P03 wait timeout", "53400": "53400 queue full",
                "40001": "40001 version gone", "53300": "53300 too many connections"}.get(code, code)
    text = str(exc)
    if "too many clients" in text or "remaining connection slots" in text:
        return "53300 too many connections"
    if isinstance(exc, psycopg.OperationalError):
        return "connection failed"
    return "%s: %s" % (type(exc).__name__, text)


class RequestTimeout(Exception):
    pass


# -- the configuration service --------------------------------------------------------------

class Pool:
    """A connection pool that opens connections on demand, up to max_size, and
    (with a lifetime) replaces a connection once it is that old, as pools do."""

    def __init__(self, dsn, max_size, lifetime=None):
        self.dsn, self.max_size, self.lifetime = dsn, max_size, lifetime
        self.idle, self.size = [], 0
        self.born = {}

    async def get(self):
        while True:
            while self.idle:
                conn = self.idle.pop()
                if self.lifetime and time.time() - self.born.get(id(conn), 0) > self.lifetime:
                    await conn.close()
                if not conn.closed:
                    return conn
                self.born.pop(id(conn), None)
                self.size -= 1
            if self.size < self.max_size:
                self.size += 1
                try:
                    conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                except BaseException:
                    self.size -= 1
                    raise
                self.born[id(conn)] = time.time()
                return conn
            await asyncio.sleep(0.005)  # (polled: a waiter cancelled by its timeout loses nothing)

    async def discard(self, conn):
        self.born.pop(id(conn), None)
        self.size -= 1
        try:
            await conn.close()
        except Exception:
            pass

    async def put(self, conn):
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await self.discard(conn)
            return
        self.idle.append(conn)


class Instance:
    """One instance of the configuration service."""

    def __init__(self, args, index, guarded, sizes, changes, events, start, stop):
        self.args, self.index, self.guarded, self.sizes = args, index, guarded, sizes
        self.changes, self.events, self.start, self.stop = changes, events, start, stop
        self.counts = {"requests": 0, "retries": 0, "assemblies": 0, "reads": 0, "abandoned": 0}
        self.errors = {}
        self.delivered = []

    def now(self):
        return time.time() - self.start

    async def request(self, tenant):
        """One request for a tenant's configuration: a connection from the pool and
        every page of the configuration on it, within the time limit. Past the limit
        the request is abandoned, not cancelled (the backend behind the service does
        not know the caller gave up): its pages go on to the end, and its connection
        comes back to the pool then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.args.request_timeout
        try:
            conn = await asyncio.wait_for(self.pool.get(), self.args.request_timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout("waiting for a connection") from None
        fetch = self.fetch_guarded if self.guarded else self.fetch_offset
        self.counts["reads"] += 1  # a read of the configuration reaches the database
        task = asyncio.ensure_future(self.on(conn, fetch, tenant))
        done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        if not done:
            self.counts["abandoned"] += 1
            task.add_done_callback(self.after_abandoned)
            raise RequestTimeout("reading")
        task.result()

    def after_abandoned(self, task):
        """An abandoned read ends on its own; its failure is counted all the same."""
        if not task.cancelled() and task.exception() is not None:
            kind = "abandoned read: " + error_kind(task.exception())
            self.errors[kind] = self.errors.get(kind, 0) + 1

    async def on(self, conn, fetch, tenant):
        try:
            return await fetch(conn, tenant)
        finally:
            await self.pool.put(conn)

    async def fetch_offset(self, conn, tenant):
        """Every source, page by page with OFFSET: each page reads every row before it."""
        for table, key in SOURCES:
            offset = 0
            while True:
                cur = await conn.execute("SELECT to_jsonb(s)::text FROM %s s WHERE tenant_id = %%s ORDER BY %s "
                                         "OFFSET %%s LIMIT %%s" % (table, key), (tenant, offset, self.args.page))
                got = len(await cur.fetchall())
                offset += got
                if got < self.args.page:
                    break

    async def fetch_guarded(self, conn, tenant):
        """get(), or for the largest tenants keyset pages of one pinned export version."""
        if self.sizes[tenant] <= self.args.export_above:
            cur = await conn.execute("SELECT config_guard.get(%s, %s)::text", (CONFIG, tenant))
            await cur.fetchall()
            return
        after = None
        while True:
            cur = await conn.execute("SELECT item::text, cursor FROM config_guard.export_page(%s, %s, %s, %s)",
                                     (CONFIG, tenant, after, self.args.export_page))
            page = await cur.fetchall()
            if not page:
                return
            after = page[-1][1]

    async def fetch(self, tenant):
        """A request retried at once, however it failed: the amplification loop."""
        retry = False
        while not self.stop.is_set():
            self.counts["requests"] += 1
            if retry:
                self.counts["retries"] += 1
            try:
                return await self.request(tenant)
            except (RequestTimeout, psycopg.Error) as exc:
                kind = error_kind(exc)
                self.errors[kind] = self.errors.get(kind, 0) + 1
                retry = True
        raise asyncio.CancelledError()

    async def worker(self):
        while True:
            tenant = await self.queue.get()
            self.counts["assemblies"] += 1
            await self.fetch(tenant)
            self.delivered.append((tenant, self.now()))

    async def follow_changes(self):
        """Back-office writes tell every instance which tenant to fetch again."""
        while True:
            try:
                while True:
                    self.queue.put_nowait(self.changes.get_nowait())
            except queue.Empty:
                pass
            await asyncio.sleep(0.05)

    def report(self):
        self.events.put(("service", self.index, self.now(), dict(self.counts), dict(self.errors),
                         self.delivered, self.pool.size))
        self.counts = {k: 0 for k in self.counts}
        self.errors, self.delivered = {}, []

    async def main(self):
        self.pool = Pool(conninfo(self.args, "rebuild_svc"), self.args.pool_size)
        self.queue = asyncio.Queue()
        order = sorted(self.sizes)
        random.Random(1000 + self.index).shuffle(order)  # every instance in its own order
        for t in order:
            self.queue.put_nowait(t)
        tasks = [asyncio.ensure_future(self.worker()) for _ in range(self.args.workers)]
        tasks.append(asyncio.ensure_future(self.follow_changes()))
        while not self.stop.is_set() and not orphaned():
            await asyncio.sleep(0.5)
            self.report()
            for t in tasks:
                if t.done() and not t.cancelled() and t.exception():
                    self.events.put(("crashed", self.index, repr(t.exception())))
                    raise t.exception()
        for t in tasks:
            t.cancel()
        self.report()


def orphaned():
    return os.getppid() != PARENT


def as_child():
    """An interrupt is the parent's to handle: it stops every child it started."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def instance_process(*a):
    as_child()
    asyncio.run(Instance(*a).main())


# -- logins ------------------------------------------------------------------------------------

async def logins(args, events, start, stop):
    """The login endpoint: a pool of a few connections, each replaced after
    login_lifetime seconds (so the endpoint needs the database to accept a
    connection now and then, as every pool does), more opened when all are
    busy. A login waits for a connection and runs its lookup within the budget."""
    pool = Pool(conninfo(args, "login_app"), args.login_pool, lifetime=args.login_lifetime)
    rng = random.Random(7)
    samples = []
    pending = set()

    async def one(at):
        # timed from when the user asked (the schedule), not from when the
        # endpoint got round to it
        t0 = start + at
        ok, kind, stage = True, None, "getting a connection"
        conn = None
        try:
            async with asyncio.timeout(max(0.0, t0 + args.login_budget - time.time())):
                conn = await pool.get()
                stage = "looking the user up"
                cur = await conn.execute("SELECT user_id, password_hash FROM app.users WHERE email = %s",
                                         ("user%d@example.com" % rng.randint(1, 200000),))
                await cur.fetchall()
                done, conn = conn, None
                await pool.put(done)
        except TimeoutError:
            ok, kind = False, "over budget " + stage
        except psycopg.Error as exc:
            ok, kind = False, error_kind(exc)
        except Exception as exc:  # counted, never lost
            ok, kind = False, "client error: %r" % exc
        if conn is not None:  # cut off mid-lookup: the connection's state is unknown
            await pool.discard(conn)
        ms = (time.time() - t0) * 1000
        samples.append((at, min(ms, args.login_budget * 1000) if ok else args.login_budget * 1000, ok, kind))

    n = 0
    interval = 1.0 / args.login_rate
    while not stop.is_set() and not orphaned():
        at = start + n * interval
        n += 1
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(at - start))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if len(samples) >= 20:
            events.put(("login", samples))
            samples = []
    if pending:
        await asyncio.wait(pending, timeout=args.login_budget + 1)
    events.put(("login", samples))


def login_process(args, events, start, stop):
    as_child()
    # The login endpoint stands for another machine too: its clock must not
    # wait for the database's cores (a root run raises its priority).
    try:
        os.nice(-10)
    except PermissionError:
        pass
    asyncio.run(logins(args, events, start, stop))


# -- back-office writes ------------------------------------------------------------------------

def writer_process(args, tenants, changes, events, start, stop):
    """Edits a random customer's feature flag, then tells the service instances."""
    as_child()
    rng = random.Random(11)
    conn = None
    n = 0
    while not stop.is_set() and not orphaned():
        at = start + n / args.write_rate
        n += 1
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        tenant = rng.choice(tenants)
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(conninfo(args, "backoffice"), autocommit=True)
            conn.execute("UPDATE app.feature_flags SET enabled = NOT enabled, rollout = (rollout + 1) %% 100 "
                         "WHERE tenant_id = %s AND flag_key = (SELECT min(flag_key) FROM app.feature_flags "
                         "WHERE tenant_id = %s)", (tenant, tenant))
        except psycopg.Error as exc:
            events.put(("write failed", time.time() - start, error_kind(exc)))
            if conn is not None:
                conn.close()
            conn = None
            continue
        events.put(("write", time.time() - start, tenant))
        for q in changes:
            q.put(tenant)
    if conn is not None:
        conn.close()


# -- the phases --------------------------------------------------------------------------------

class Phase:
    def __init__(self, name, guarded, tenants):
        self.name, self.guarded, self.tenants = name, guarded, tenants
        self.logins = []           # (t, ms, ok, kind)
        self.requests = self.retries = self.assemblies = self.reads = self.abandoned = 0
        self.first_delivery = {}   # (tenant, instance) -> seconds into the phase
        self.crashed = []
        self.errors = {}
        self.writes = []           # (t, tenant)
        self.write_errors = {}
        self.holders = {}          # tenant -> instances that hold its configuration again
        self.deliveries = 0
        self.all_rebuilt_at = None
        self.traffic = []          # (t, requests, retries) per report
        self.connections = []      # (t, rebuild role's server connections, all client connections)
        self.events = []           # (t, label)
        self.rows = self.builder_runs = self.invalidations = 0
        self.pool_peak = {}

    def absorb(self, ev, instances, restart_at):
        kind = ev[0]
        if kind == "service":
            _, index, t, counts, errors, delivered, pool_size = ev
            self.requests += counts["requests"]
            self.retries += counts["retries"]
            self.assemblies += counts["assemblies"]
            self.reads += counts["reads"]
            self.abandoned += counts["abandoned"]
            self.traffic.append((t, counts["requests"], counts["retries"]))
            for k, v in errors.items():
                self.errors[k] = self.errors.get(k, 0) + v
            for tenant, at in delivered:
                self.deliveries += 1
                self.holders.setdefault(tenant, set()).add(index)
                self.first_delivery.setdefault((tenant, index), at)
            self.pool_peak[index] = max(self.pool_peak.get(index, 0), pool_size)
        elif kind == "login":
            self.logins.extend(ev[1])
        elif kind == "write":
            self.writes.append((ev[1], ev[2]))
        elif kind == "crashed":
            self.crashed.append("instance %d: %s" % (ev[1], ev[2]))
        elif kind == "write failed":
            self.write_errors[ev[2]] = self.write_errors.get(ev[2], 0) + 1

    def rebuilt(self):
        return sum(1 for h in self.holders.values() if len(h) == self.instances)

    def finish(self):
        """What is worked out once the phase is over."""
        # every configuration on every instance: the last of the first deliveries
        if self.rebuilt() == len(self.tenants):
            self.all_rebuilt_at = max(self.first_delivery.values()) - self.restart_at
        first_any = {}
        for (tenant, _), at in self.first_delivery.items():
            first_any[tenant] = min(at, first_any.get(tenant, at))
        self.rebuilt_any = len(first_any)
        # A write invalidates a configuration only once it has been rebuilt
        # (one still stale from the incident needs no second build).
        effective = [t for at, t in self.writes if at >= self.restart_at and first_any.get(t, at + 1) < at]
        self.invalidations = len(self.tenants) + len(effective)
        # (an export version is made when a walk starts, before the tenant is
        # delivered: every write to an exported tenant counts)
        big = {t for t in self.tenants if self.sizes[t] > self.export_above}
        self.export_invalidations = len(big) + sum(1 for at, t in self.writes if at >= self.restart_at and t in big)

    def failed_logins(self):
        return sum(1 for s in self.logins if not s[2])


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def admin(args, sql, params=None):
    with psycopg.connect(conninfo(args, "postgres"), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else None


def rows_read(mon):
    return int(mon.execute("""SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0)
                            FROM pg_stat_user_tables
                           WHERE relid IN ('app.experiments'::regclass, 'app.feature_flags'::regclass,
                                           'app.segments'::regclass)""").fetchone()[0])


def drain(events, phase, args, restart_at):
    while True:
        try:
            phase.absorb(events.get_nowait(), args.instances, restart_at)
        except queue.Empty:
            return


def stop_clients(mon):
    """Ends every session the phase's clients left in the server (abandoned statements
    included), so that the next phase starts on an idle server and every statistic is in."""
    for _ in range(100):
        left = mon.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE usename IN ('rebuild_svc', 'login_app', 'backoffice')").fetchone()[0]
        if left == 0:
            return
        time.sleep(0.2)


def run_phase(args, name, guarded, tenants, sizes):
    if args.restart_cmd:  # both phases start on a freshly started server (cold shared buffers)
        subprocess.run(args.restart_cmd, shell=True, check=True)
    phase = Phase(name, guarded, tenants)
    phase.instances = args.instances
    phase.sizes, phase.export_above = sizes, args.export_above
    mon = psycopg.connect(conninfo(args, "postgres"), autocommit=True)
    if guarded:
        # The DBA's part: the rebuild role runs at most role_limit statements at
        # once, and config_guard answers it within the service's request timeout
        # (a slot or a rebuild waited for longer gives 55P03 on the same
        # connection instead of a request the service abandons).
        mon.execute("SELECT config_guard.set_role_limit('rebuild_svc', %s, %s, %s)",
                    (args.role_limit, args.role_queue, "%d ms" % args.wait_ms))
        mon.execute("ALTER ROLE rebuild_svc SET config_guard.rebuild_wait_timeout = %d" % args.wait_ms)
    else:
        mon.execute("SELECT config_guard.drop_role_limit(role) FROM config_guard.role_stats")
        mon.execute("ALTER ROLE rebuild_svc RESET config_guard.rebuild_wait_timeout")
    mon.execute("CHECKPOINT")

    events, stop = mp.Queue(), mp.Event()
    changes = [mp.Queue() for _ in range(args.instances)]
    start = time.time() + 0.5
    restart_at = args.baseline
    helpers = [mp.Process(target=login_process, args=(args, events, start, stop), daemon=True),
               mp.Process(target=writer_process, args=(args, tenants, changes, events, start, stop), daemon=True)]
    instances = []
    for p in helpers:
        p.start()
    print("  [%s] baseline: logins at %d/s, back-office writes at %g/s, the service up with warm caches"
          % (name, args.login_rate, args.write_rate), flush=True)
    try:
        restarted = False
        next_report = restart_at + args.progress
        while time.time() - start < args.duration:
            time.sleep(0.25)
            t = time.time() - start
            drain(events, phase, args, restart_at)
            if not restarted and t >= restart_at:
                restarted = True
                phase.restart_at = t
                before = rows_read(mon)
                restart_ts = mon.execute("SELECT now()").fetchone()[0]
                if guarded:
                    mon.execute("SELECT config_guard.reset_stats()")
                    mon.execute("SELECT config_guard.invalidate_all(%s)", (CONFIG,))
                    phase.events.append((t, "cache loss: every document stale (invalidate_all)"))
                else:
                    phase.events.append((t, "cache loss: every cache layer of the service"))
                writes_before = len(phase.writes)
                stop_instances = mp.Event()
                for i in range(args.instances):
                    p = mp.Process(target=instance_process,
                                   args=(args, i, guarded, sizes, changes[i], events, start, stop_instances),
                                   daemon=True)
                    p.start()
                    instances.append(p)
                phase.events.append((t, "restart: %d service instances start cold" % args.instances))
                print("  [%s] %5.1f s: %s; %s" % (name, t, phase.events[-2][1], phase.events[-1][1]), flush=True)
                if guarded and not args.no_warm:
                    queued = mon.execute("SELECT config_guard.warm(%s)", (CONFIG,)).fetchone()[0]
                    phase.events.append((time.time() - start, "warm-up: %d tenants queued" % queued))
                    print("  [%s] %5.1f s: %s" % (name, phase.events[-1][0], phase.events[-1][1]), flush=True)
            if restarted:
                conns = mon.execute("SELECT count(*) FILTER (WHERE usename = 'rebuild_svc'), count(*) "
                                    "FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchone()
                phase.connections.append((t, conns[0], conns[1]))
            if restarted and t >= next_report:
                next_report += args.progress
                recent = [s for s in phase.logins if s[0] >= t - args.progress - 1.5 and s[0] < t - 1.5]
                failed = sum(1 for s in recent if not s[2])
                print("  [%s] %5.1f s: %4d/%d configs rebuilt, %6d requests (%6d retries), %3d connections, "
                      "logins %3d/%3d failed, login p99 %s"
                      % (name, t, phase.rebuilt(), len(tenants), phase.requests, phase.retries,
                         phase.connections[-1][1], failed, len(recent),
                         "%.0f ms" % pct([s[1] for s in recent], 0.99) if recent else "-"), flush=True)
    finally:
        if instances:
            stop_instances.set()
        stop.set()
        deadline = time.time() + 10
        while any(p.is_alive() for p in helpers + instances) and time.time() < deadline:
            drain(events, phase, args, restart_at)
            time.sleep(0.1)
        for p in helpers + instances:
            if p.is_alive():
                p.terminate()
        drain(events, phase, args, restart_at)
        stop_clients(mon)
    time.sleep(1.5)  # the background worker reports its statistics
    phase.rows = rows_read(mon) - before
    phase.writes_after = len(phase.writes) - writes_before
    phase.finish()
    if guarded:
        phase.builder_runs = mon.execute("SELECT builder_runs FROM config_guard.config_stats WHERE config = %s",
                                         (CONFIG,)).fetchone()[0]
        # the largest tenants are read whole into export versions, not built
        phase.export_versions = mon.execute(
            "SELECT count(*) FROM config_guard.export_versions v JOIN config_guard.configs c USING (config_id) "
            "WHERE c.name = %s AND v.built_at >= %s", (CONFIG, restart_ts)).fetchone()[0]
    else:
        # the service is the builder: every read of a whole configuration that
        # reached the database (an abandoned one reads on, until the phase ends)
        phase.builder_runs = phase.reads
        phase.export_versions = None
    mon.close()
    return phase


# -- output ----------------------------------------------------------------------------------

def summary_of(p, args):
    after = [s for s in p.logins if s[0] >= p.restart_at]
    lat = [s[1] for s in after]
    rebuilt = p.rebuilt()
    def per(x, y):
        return round(x / y, 3) if y else None
    return {
        "login_attempts": len(after),
        "login_errors": sum(1 for s in after if not s[2]),
        "login_p50_ms": round(pct(lat, 0.5), 2) if lat else None,
        "login_p99_ms": round(pct(lat, 0.99), 2) if lat else None,
        "rebuild_requests": p.requests,
        "retries": p.retries,
        "builder_runs": p.builder_runs,
        "source_rows_read": p.rows,
        "configs_total": len(p.tenants),
        "configs_rebuilt": rebuilt,
        "seconds_to_all_rebuilt": round(p.all_rebuilt_at, 1) if p.all_rebuilt_at is not None else None,
        # beyond the required fields
        "invalidations": p.invalidations,
        "builder_runs_per_invalidation": per(p.builder_runs, p.invalidations),
        "export_versions_made": p.export_versions,
        "export_invalidations": p.export_invalidations,
        "export_versions_per_invalidation": per(p.export_versions, p.export_invalidations)
                                            if p.export_versions is not None else None,
        "reads_started": p.reads,
        "reads_abandoned": p.abandoned,
        "configs_rebuilt_anywhere": p.rebuilt_any,
        "source_rows_per_rebuilt_config": round(p.rows / p.rebuilt_any, 1) if p.rebuilt_any else None,
        "configs_delivered": p.deliveries,
        "instance_crashes": p.crashed,
        "login_errors_by_kind": count_kinds(after),
        "request_errors_by_kind": p.errors,
        "peak_rebuild_connections": max([c[1] for c in p.connections], default=0),
        "peak_client_connections": max([c[2] for c in p.connections], default=0),
        "back_office_writes": p.writes_after,
        "back_office_write_errors": p.write_errors,
        "events": [{"t": round(t, 1), "event": e} for t, e in p.events],
    }


def count_kinds(samples):
    kinds = {}
    for s in samples:
        if not s[2]:
            kinds[s[3]] = kinds.get(s[3], 0) + 1
    return kinds


def table(summary):
    a, b = summary["phases"]["without"], summary["phases"]["with"]
    def show(v, unit=""):
        if v is None:
            return "-"
        if isinstance(v, float):
            return ("%.3f%s" if unit == "/" else "%.1f%s") % (v, "" if unit == "/" else unit)
        return "{:,}{}".format(v, unit)
    rows = [
        ("login attempts (after the incident)", "login_attempts", ""),
        ("failed logins (over 1 s or refused)", "login_errors", ""),
        ("login p50 (a failure counts as 1 s)", "login_p50_ms", " ms"),
        ("login p99 (a failure counts as 1 s)", "login_p99_ms", " ms"),
        ("rebuild requests", "rebuild_requests", ""),
        ("  of which immediate retries", "retries", ""),
        ("  abandoned reads (over the timeout)", "reads_abandoned", ""),
        ("builder runs (without: whole reads)", "builder_runs", ""),
        ("invalidations (incident + writes)", "invalidations", ""),
        ("builder runs per invalidation", "builder_runs_per_invalidation", "/"),
        ("export versions made (largest tenants)", "export_versions_made", ""),
        ("  per invalidation of those tenants", "export_versions_per_invalidation", "/"),
        ("source rows read", "source_rows_read", ""),
        ("configs rebuilt on every instance", "configs_rebuilt", ""),
        ("seconds until all were rebuilt", "seconds_to_all_rebuilt", " s"),
        ("configs rebuilt on any instance", "configs_rebuilt_anywhere", ""),
        ("source rows per rebuilt config", "source_rows_per_rebuilt_config", ""),
        ("configs delivered to instances", "configs_delivered", ""),
        ("peak connections of the service", "peak_rebuild_connections", ""),
    ]
    width = 40
    lines = ["%-*s %22s %22s" % (width, "", "without", "with config_guard"), "-" * (width + 46)]
    for label, key, unit in rows:
        lines.append("%-*s %22s %22s" % (width, label, show(a[key], unit), show(b[key], unit)))
    lines.append("")
    lines.append("failed logins: without %s, with %s" % (json.dumps(a["login_errors_by_kind"]),
                                                          json.dumps(b["login_errors_by_kind"])))
    lines.append("ratios, without / with config_guard:")
    for label, key in summary["ratios"].items():
        lines.append("  %-34s %s" % (label, "-" if key is None else ("%.1f" % key)))
    lines.append("  (a login that fails counts as its 1 s budget, so the login p99 ratio is capped;")
    lines.append("   '-': nothing to divide by, e.g. no failed login or no configuration rebuilt)")
    return "\n".join(lines)


def ratios(a, b):
    def r(x, y):
        return round(x / y, 1) if x is not None and y else None
    return {
        "failed logins": r(a["login_errors"], b["login_errors"]),
        "login p99": r(a["login_p99_ms"], b["login_p99_ms"]),
        "rebuild requests": r(a["rebuild_requests"], b["rebuild_requests"]),
        "source rows read": r(a["source_rows_read"], b["source_rows_read"]),
        "source rows per rebuilt config": r(a["source_rows_per_rebuilt_config"],
                                            b["source_rows_per_rebuilt_config"]),
    }


def write_data(phases, out, tag_of):
    for p in phases:
        tag = tag_of[p.name]
        with open("%s/login_%s.dat" % (out, tag), "w") as f:
            for t, ms, ok, _ in sorted(p.logins):
                f.write("%.3f %.2f %d\n" % (t, ms, 1 if ok else 0))
        # per second: failed logins, requests, retries, connections of the service
        seconds = int(max([s[0] for s in p.logins] + [0])) + 1
        failed = [0] * seconds
        for t, _, ok, _ in p.logins:
            if not ok:
                failed[int(t)] += 1
        req, ret = [0] * seconds, [0] * seconds
        for t, n, r in p.traffic:
            if int(t) < seconds:
                req[int(t)] += n
                ret[int(t)] += r
        conns = {}
        for t, c, _ in p.connections:
            conns[int(t)] = max(conns.get(int(t), 0), c)
        with open("%s/series_%s.dat" % (out, tag), "w") as f:
            for s in range(seconds):
                f.write("%d %d %d %d %d\n" % (s, failed[s], req[s], ret[s], conns.get(s, 0)))


# The replay's knobs: (option, type, default, what it is).
OPTIONS = [
    ("instances", int, 4, "service instances"),
    ("workers", int, 16, "concurrent requests per instance"),
    ("pool-size", int, 32, "connections per instance at most"),
    ("page", int, 100, "the service's OFFSET page size"),
    ("request-timeout", float, 5.0, "seconds for a configuration request, every page included"),
    ("export-above", int, 5000, "with: tenants larger than this are exported"),
    ("export-page", int, 10000, "with: rows per export page"),
    ("login-rate", int, 20, "logins per second"),
    ("login-budget", float, 1.0, "seconds"),
    ("login-pool", int, 8, "the login endpoint's connections at most"),
    ("login-lifetime", float, 30.0, "seconds before the login pool replaces a connection"),
    ("write-rate", float, 2.0, "back-office writes per second"),
    ("baseline", float, 10.0, "seconds before the incident"),
    ("duration", float, 130.0, "seconds per phase, the baseline included"),
    ("role-limit", int, 4, "with: statements of the rebuild role at once"),
    ("role-queue", int, 128, "with: statements of the rebuild role queued"),
    ("wait-ms", int, 1000, "with: the rebuild role's queue timeout and rebuild_wait_timeout"),
    ("progress", float, 10.0, "seconds between progress lines"),
]

PARENT = os.getpid()


def main():
    mp.set_start_method("fork")
    # the finally blocks stop every client (an interrupt too, even when the
    # shell that started the replay in the background ignores it)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dbname", default="postgres")
    for name, kind, default, text in OPTIONS:
        ap.add_argument("--" + name, type=kind, default=default, help=text)
    ap.add_argument("--out", required=True)
    ap.add_argument("--restart-cmd", help="a shell command that restarts the server, run before each phase")
    ap.add_argument("--only", choices=("with",), help=argparse.SUPPRESS)
    ap.add_argument("--no-warm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless config_guard protected login (the short run in make test)")
    args = ap.parse_args()
    if args.duration <= args.baseline + 5:
        ap.error("--duration must exceed --baseline by more than 5 s")

    rows = admin(args, "SELECT tenant_id, size FROM app.tenants ORDER BY tenant_id")
    tenants = [r[0] for r in rows]
    sizes = {r[0]: r[1] for r in rows}
    max_conn = admin(args, "SHOW max_connections")[0][0]
    print("%d tenants, %s configuration rows, the largest tenant %s rows; %d service instances x %d requests "
          "(pools of %d), request timeout %g s, OFFSET pages of %d; max_connections %s; %g s per phase"
          % (len(tenants), "{:,}".format(sum(sizes.values())), "{:,}".format(max(sizes.values())),
             args.instances, args.workers, args.pool_size, args.request_timeout, args.page, max_conn,
             args.duration), flush=True)
    phases = []
    if args.only == "with":  # (for debugging one phase)
        p = run_phase(args, "with", True, tenants, sizes)
        print(json.dumps(summary_of(p, args), indent=1))
        return
    print("phase 1: without config_guard (OFFSET pages, requests retried at once)", flush=True)
    phases.append(run_phase(args, "without", False, tenants, sizes))
    print("phase 2: with config_guard (get() and pinned export versions, rebuild role limited to %d, warm())"
          % args.role_limit, flush=True)
    phases.append(run_phase(args, "with", True, tenants, sizes))

    summary = {
        "machine": {"system": platform.platform(), "cpus": os.cpu_count(),
                    "server": admin(args, "SHOW server_version")[0][0]},
        "parameters": {k: v for k, v in vars(args).items() if k not in ("host", "port", "out", "check", "dbname")},
        "phases": {"without": summary_of(phases[0], args), "with": summary_of(phases[1], args)},
    }
    summary["ratios"] = ratios(summary["phases"]["without"], summary["phases"]["with"])
    os.makedirs(args.out, exist_ok=True)
    with open(args.out + "/summary.json", "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    text = table(summary)
    print()
    print(text)
    with open(args.out + "/replay_table.txt", "w") as f:
        f.write(text + "\n")
    write_data(phases, args.out, {"without": "without", "with": "with"})
    with open(args.out + "/events.dat", "w") as f:
        for t, e in phases[1].events:
            f.write('%.1f "%s"\n' % (t, e))

    if args.check:
        w, b = summary["phases"]["without"], summary["phases"]["with"]
        problems = []
        if b["login_errors"] != 0:
            problems.append("%d logins failed with config_guard" % b["login_errors"])
        if b["builder_runs_per_invalidation"] is None or b["builder_runs_per_invalidation"] > 1.0:
            problems.append("builder runs per invalidation %s > 1" % b["builder_runs_per_invalidation"])
        if b["export_versions_per_invalidation"] is not None and b["export_versions_per_invalidation"] > 1.0:
            problems.append("export versions per invalidation %s > 1" % b["export_versions_per_invalidation"])
        if b["configs_rebuilt"] != b["configs_total"]:
            problems.append("with config_guard %d of %d configs rebuilt" % (b["configs_rebuilt"], b["configs_total"]))
        expected = args.login_rate * (args.duration - args.baseline)
        for name, p in (("without", w), ("with", b)):
            if p["login_attempts"] < 0.9 * expected:
                problems.append("%s: %d login attempts, %d expected" % (name, p["login_attempts"], expected))
            if p["instance_crashes"]:
                problems.append("%s: %s" % (name, p["instance_crashes"]))
        # (without rebuilding anything, "without" read its rows for nothing: as many times fewer as can be)
        per_without = w["source_rows_per_rebuilt_config"] or float("inf")
        ratio = per_without / b["source_rows_per_rebuilt_config"] if b["source_rows_per_rebuilt_config"] else 0
        if ratio < 10:
            problems.append("source rows per rebuilt config only %.1f times fewer" % ratio)
        for p in problems:
            print("CHECK FAILED: " + p)
        if problems:
            sys.exit(1)
        print("CHECK PASSED: no failed login with config_guard, %.3f builder runs per invalidation, "
              "%.1fx fewer source rows per configuration" % (b["builder_runs_per_invalidation"], ratio))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
