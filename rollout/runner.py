"""Drive a rollout: a pyinfra run per batch (rollout.pyinfra_run), HAProxy drains (rollout.lb),
readiness watches (rollout.readiness); each host's result from structured data (rollout.logic)."""

from __future__ import annotations

import fnmatch
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hxgw.settings import Settings
from hxops import deploy_lock
from rollout import logic
from rollout.lb import LoadBalancer
from rollout.pyinfra_run import REPO, RolloutError, Run, load_inventory, pyinfra
from rollout.readiness import ReadinessWatch

# Plan-time info lines that say nothing about what would change (left out of the --dry preview).
NOISE = ("identity confirmed", " holds all ", "found in known_hosts")

# The settings model's default, for hosts whose data does not set it.
DEFAULT_LOCK_TIMEOUT = Settings.model_fields["deploy_lock_timeout"].default

# --- the rollout -----------------------------------------------------------------------------


@dataclass
class Options:
    inventory: str
    batch_size: int = 1
    limit: list[str] = field(default_factory=list)
    dry: bool = False
    passthrough: list[str] = field(default_factory=list)
    drain_timeout: float = 120.0
    ready_timeout: float = 60.0
    log_dir: Path | None = None


def say(text: str) -> None:
    print(text, flush=True)


class Rollout:
    def __init__(self, options: Options):
        self.o = options
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log_dir = options.log_dir or REPO / "reports" / f"rollout-{stamp}"
        self.inventory = load_inventory(options.inventory)
        if options.limit:
            chosen = [h for h in self.inventory.gateways if any(fnmatch.fnmatch(h, p) for p in options.limit)]
            if not chosen:
                raise RolloutError(
                    f"--limit {' '.join(options.limit)} matches no host of the `gateways` group"
                )
            self.inventory.gateways = chosen
        self.lbs = [LoadBalancer(n, options.inventory) for n in self.inventory.loadbalancers]
        self.results: dict[str, logic.HostResult] = {}
        self.lock_token = secrets.token_hex(12)  # this rollout's pyinfra runs join its locks

    # -- planning --

    def plan(self) -> tuple[Run, dict[str, dict], set[str]]:
        hosts = self.inventory.gateways + self.inventory.loadbalancers
        say(f"--> planning: pyinfra --dry over {len(hosts)} host(s)")
        run = pyinfra(self.o.inventory, hosts, self.o.passthrough, True, self.log_dir / "plan.log")
        if not run.plan and run.returncode != 0:
            raise RolloutError(
                "planning failed, nothing was changed:\n"
                + "\n".join(run.output.strip().splitlines()[-15:])
                + f"\n(full log: {self.log_dir / 'plan.log'})"
            )
        # The deploy writes an outcome for every host it planned: one without was not reached.
        unreachable = {h for h in hosts if run.outcomes.get(h) is None}
        plans = {h: logic.planned(run.plan, h, run.outcomes[h]) for h in hosts if h not in unreachable}
        return run, plans, unreachable

    def show_dry(self, run: Run, plans: dict, unreachable: set[str]) -> int:
        order = [h for h in self.inventory.gateways if h not in unreachable]
        batches = logic.plan_batches(order, self.o.batch_size)
        roles = {h: logic.role_of(i) for i, batch in enumerate(batches) for h in batch}
        roles.update({h: "load balancer" for h in self.inventory.loadbalancers})
        for host in self.inventory.loadbalancers + self.inventory.gateways:
            if host in unreachable:
                say(f"\n=== {host}: UNREACHABLE, it would be skipped and reported as failed")
                continue
            p = plans[host]
            restart = ", restarts the gateway (drained from the load balancer first)" if p["restart"] else ""
            say(f"\n=== {host} ({roles[host]}): {len(p['changes'])} change(s){restart}")
            for name in p["changes"]:
                say(f"    would: {name}")
            for line in logic.host_lines(run.output, host):
                if not line.startswith(("Connected", "Ready:", "Could not")) and not any(
                    n in line for n in NOISE
                ):
                    say(f"    {line}")
        say("\nbatches: " + " | ".join(", ".join(b) for b in batches) + "   (--dry: nothing was changed)")
        return 1 if unreachable else 0

    # -- doing --

    def run(self) -> int:
        run, plans, unreachable = self.plan()
        if self.o.dry:
            return self.show_dry(run, plans, unreachable)
        started = time.monotonic()
        order = self.inventory.gateways
        for host in order:
            if host in unreachable:
                self.results[host] = logic.HostResult(
                    host, logic.UNREACHABLE, "-", "unreachable at planning: not deployed"
                )
        stop_reason = self.deploy_loadbalancers(plans, unreachable)
        remaining = [h for h in order if h not in unreachable]
        canary_passed, index = False, 0
        drained_before = self.drained_servers() if not stop_reason else set()
        while remaining and not stop_reason:
            batch = logic.next_batch(remaining, canary_passed, self.o.batch_size)
            remaining = remaining[len(batch) :]
            role = logic.role_of(index)
            index += 1
            outcomes = self.deploy_batch(batch, role, plans, drained_before)
            for result in outcomes:
                self.results[result.name] = result
                if result.status in (logic.UPDATED, logic.UNCHANGED):
                    canary_passed = True
            failed = [r for r in outcomes if r.status in (logic.FAILED, logic.ROLLED_BACK)]
            if failed:
                stop_reason = f"the rollout stopped at {', '.join(r.name for r in failed)}"
        for host in remaining:
            self.results[host] = logic.HostResult(host, logic.SKIPPED, "-", f"not touched: {stop_reason}")
        ordered = [self.results[h] for h in self.inventory.loadbalancers + order if h in self.results]
        say("")
        for line in logic.summary(ordered):
            say(line)
        say(f"rollout finished in {time.monotonic() - started:.1f} s; logs in {self.log_dir}")
        return logic.exit_code(ordered)

    def deploy_loadbalancers(self, plans: dict, unreachable: set[str]) -> str | None:
        """The LB first: so the drains below use its current config and control script."""
        lbs = self.inventory.loadbalancers
        if not lbs:
            return None
        dead = [h for h in lbs if h in unreachable]
        if dead:
            for host in dead:
                self.results[host] = logic.HostResult(
                    host, logic.UNREACHABLE, "load balancer", "unreachable: gateways cannot be drained"
                )
            return f"load balancer {', '.join(dead)} unreachable: no gateway can be drained"
        changing = [h for h in lbs if plans[h]["changes"]]
        for host in lbs:
            if host not in changing:
                self.results[host] = logic.HostResult(host, logic.UNCHANGED, "load balancer")
        if not changing:
            return None
        say(f"--> load balancer {', '.join(changing)}: deploying")
        run = pyinfra(
            self.o.inventory, changing, self.o.passthrough, False, self.log_dir / "loadbalancer.log"
        )
        for host in changing:
            result = logic.classify(host, run.returncode, run.results, run.outcomes.get(host))
            if result.detail == logic.UNKNOWN_CAUSE:
                result.detail = logic.said_in_log(host, run.output) or result.detail
            result.role = "load balancer"
            self.results[host] = result
            say(f"    {host}: {result.status} {result.detail}".rstrip())
            if result.status in logic.BAD:
                return f"load balancer {host} {result.status}"
        return None

    def drained_servers(self) -> set[str]:
        """Gateways an interrupted rollout left drained: put back once they are deployed."""
        found = set()
        for lb in self.lbs:
            try:
                for name, server in lb.servers().items():
                    # The admin flags, not the status: drained and restarting shows "DOWN".
                    out = server.get("drained") or server.get("maint")
                    if out or server.get("status", "").startswith(("DRAIN", "MAINT")):
                        found.add(name)
            except RolloutError as error:
                say(f"    warning: {error}")
        ours = sorted(found & set(self.inventory.gateways))
        if ours:
            say(f"    {', '.join(ours)}: found drained on the load balancer; put back after deploy")
        others = sorted(found - set(ours))
        if others:
            say(f"    {', '.join(others)}: drained on the load balancer, not part of this rollout")
        return set(ours)

    def lock_batch(self, batch: list[str]) -> tuple[dict, list]:
        """The deploy lock of each gateway of the batch (hxops.deploy_lock), taken before its drain
        and held until it is back on the load balancer; a gateway another deploy holds for the
        whole wait fails with the holder's name and is not touched."""

        sessions = {}
        for host in batch:  # started here, in the main thread (LockSession.start says why)
            data = self.inventory.data.get(host, {})
            sessions[host] = deploy_lock.LockSession(host, data, "python -m rollout", token=self.lock_token)
            sessions[host].start(float(data.get("deploy_lock_timeout") or DEFAULT_LOCK_TIMEOUT))

        def take(host: str):
            session = sessions[host]
            try:
                waited = session.wait()
            except (deploy_lock.LockBusy, RuntimeError) as error:
                return host, None, str(error)
            if session.waited_for is not None:
                say(
                    f"    {host}: waited {waited:.0f} s for the deploy lock ({session.waited_for.describe()})"
                )
            return host, session, None

        with ThreadPoolExecutor(max_workers=max(len(batch), 1)) as pool:
            taken = list(pool.map(take, batch))
        sessions = {host: session for host, session, _ in taken if session}
        refused = [
            logic.HostResult(host, logic.FAILED, "-", f"{why}; nothing deployed")
            for host, _, why in taken
            if why
        ]
        return sessions, refused

    def deploy_batch(self, batch: list[str], role: str, plans: dict, drained_before: set[str]) -> list:
        sessions, refused = self.lock_batch(batch)
        for result in refused:
            result.role = role
            say(f"    {result.name}: {result.status} {result.detail}")
        try:
            locked = [h for h in batch if h in sessions]
            return refused + (self._deploy_locked(locked, role, plans, drained_before) if locked else [])
        finally:
            for session in sessions.values():
                session.release()

    def _deploy_locked(self, batch: list[str], role: str, plans: dict, drained_before: set[str]) -> list:
        restarting = [h for h in batch if plans.get(h, {}).get("restart")]
        to_drain = restarting if self.lbs else []
        say(
            f"--> {role}: {', '.join(batch)}"
            + (f" (restart: {', '.join(restarting)})" if restarting else " (no restart planned)")
        )
        for lb in self.lbs if to_drain else []:
            try:
                others_up = [
                    n for n, v in lb.servers().items() if n not in to_drain and v.get("status") == "UP"
                ]
            except RolloutError:
                others_up = ["?"]  # the drain below reports the problem
            if not others_up:
                say(
                    f"    warning: no other gateway is UP on {lb.name}: "
                    "its clients get errors during this restart"
                )
            answer = lb.control("drain", to_drain, self.o.drain_timeout)
            if not answer.get("ok"):
                lb.control("ready", to_drain, 5)
                why = answer.get("error") or f"sessions still open after {self.o.drain_timeout:.0f} s"
                return [
                    logic.HostResult(
                        h, logic.FAILED, role, f"not drained from {lb.name}: {why}; nothing deployed"
                    )
                    for h in batch
                ]
            say(f"    drained {', '.join(to_drain)} from {lb.name} in {answer.get('waited_s', 0):.1f} s")
        watches = {}
        for host in batch:
            url = self.inventory.url(host)
            if url:
                watches[host] = ReadinessWatch(url)
                watches[host].start()
        log = self.log_dir / f"{role.replace(' ', '-')}.log"
        lock = {deploy_lock.TOKEN_ENV: self.lock_token}  # the pyinfra run joins the locks held here
        run = pyinfra(self.o.inventory, batch, self.o.passthrough, False, log, env=lock)
        outcomes = []
        for host in batch:
            result = logic.classify(host, run.returncode, run.results, run.outcomes.get(host))
            if result.detail == logic.UNKNOWN_CAUSE:
                result.detail = logic.said_in_log(host, run.output) or result.detail
            result.role = role
            watch = watches.get(host)
            seconds = watch.stop() if watch else None
            if result.restarted or result.status == logic.ROLLED_BACK:
                result.ready_seconds = seconds
            if result.restarted and host not in to_drain and self.lbs:
                result.detail = (result.detail + "; restarted without a drain (not planned)").lstrip("; ")
            outcomes.append(result)
        back = [h for h in batch if h in to_drain or h in drained_before]
        serving = [
            r.name for r in outcomes if r.name in back and r.status not in (logic.FAILED, logic.UNREACHABLE)
        ]
        for lb in self.lbs if back else []:
            answer = lb.control("ready", back, self.o.ready_timeout if serving else 5)
            if not answer.get("ok") and serving:
                # Deployed but out of rotation: a failure, so the rollout stops before it drains
                # more gateways and leaves the load balancer short of them.
                for r in outcomes:
                    if r.name in serving:
                        r.status = logic.FAILED
                        r.detail = (
                            r.detail + f"; not UP on {lb.name} after {self.o.ready_timeout:.0f} s"
                        ).lstrip("; ")
        for r in outcomes:
            ready = f", ready {r.ready_seconds:.1f} s after going down" if r.ready_seconds is not None else ""
            say(f"    {r.name}: {r.status}{ready} {r.detail}".rstrip())
        if any(r.status in logic.BAD for r in outcomes):
            say(f"    log: {log}")
        return outcomes
