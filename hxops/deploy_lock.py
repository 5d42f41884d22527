"""One change per gateway at a time: the deploy lock on the host, held by a dedicated SSH session.

The control process opens an `ssh` session to the gateway that runs `holder_script`: it takes an
exclusive flock on /run/hx-gateway/deploy.lock (waiting up to the deploy's `deploy_lock_timeout`),
waits for the remote work of a dead holder to end (work.lock, below), writes the holder file
under the lock (control machine, user, pid, start time, step), prints LOCKED and then reads its
standard input, one `step ...` line per operation the deploy starts. The lock lives exactly as
long as that session: when the control process ends, however it ends (SIGKILL included), the pipe
into ssh closes, the remote `read` sees end-of-file, the shell exits and the kernel drops the
flock. A lock whose holder died is therefore free again by itself; nothing reads a timestamp to
guess whether a holder is alive. (ssh also gets SIGKILL when its parent dies: setpriv
--pdeathsig, as rollout/pyinfra_run.py does for pyinfra.)

work.lock: a killed deploy's remote commands (an install, a restart, a rollback) do not die with
the SSH connection: sshd leaves a command that reads nothing running. Each of those long commands
runs under a SHARED flock on work.lock (`under_work_lock`); a new holder takes work.lock
EXCLUSIVELY once, right after the deploy lock, so it starts only when the dead run's remote work
has finished, and then lets it go for its own commands.

Nesting: `python -m rollout` takes the lock of a batch's gateways before it drains them and keeps
it until they are back on the load balancer; the pyinfra run it starts for the batch gets the
rollout's token (HX_DEPLOY_LOCK_TOKEN) and joins the held lock instead of waiting for it.

No pyinfra import here: the rollout (plain threads and subprocesses) uses this module as it is.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

LOCK_DIR = "/run/hx-gateway"  # root-only (700): /run/lock is world-writable, anyone could hold it
LOCK_FILE = f"{LOCK_DIR}/deploy.lock"
HOLDER_FILE = f"{LOCK_DIR}/deploy.holder"
WORK_LOCK = f"{LOCK_DIR}/work.lock"
TOKEN_ENV = "HX_DEPLOY_LOCK_TOKEN"  # a rollout's token: its pyinfra runs join the rollout's lock
HOLDER_FIELDS = ("control", "user", "pid", "started", "what", "step")

# The remote side. $1 timeout (s), $2 holder lines, $3 token, $4 a token to join (nested), or "".
# Answers one line: LOCKED, JOINED, or BUSY <holder...>; WAIT <holder...> first when it must wait.
_SCRIPT = rf"""
set -u
timeout=$1 holder=$2 token=$3 join=$4
umask 077
mkdir -p {LOCK_DIR} && chmod 700 {LOCK_DIR} || {{ echo "ERROR cannot create {LOCK_DIR}"; exit 3; }}
command -v flock >/dev/null || {{ echo "ERROR flock not found: apt-get install -y util-linux"; exit 3; }}
shown() {{ tr '\n' '\t' < {HOLDER_FILE} 2>/dev/null; }}
exec 9>>{LOCK_FILE}
nested=no
if ! flock -n 9; then
    if [ -n "$join" ] && grep -qx "token=$join" {HOLDER_FILE} 2>/dev/null; then
        nested=yes
    else
        echo "WAIT $(shown)"
        flock -w "$timeout" 9 || {{ echo "BUSY $(shown)"; exit 4; }}
    fi
fi
if [ $nested = no ]; then
    # The remote work of a holder that died (it does not die with its SSH session).
    exec 8>>{WORK_LOCK}
    if ! flock -n -x 8; then
        work=$(pgrep -a -f 'hx-deploy-[w]ork' | head -n 3 | tr '\n' ' ')
        echo "WAIT remote work of an earlier deploy is still running: $work"
        flock -w "$timeout" -x 8 || {{
            echo "BUSY remote work of an earlier deploy still runs after ${{timeout}}s: $work"; exit 4; }}
    fi
    exec 8>&-
fi
base=$(grep -v '^step=' {HOLDER_FILE} 2>/dev/null)
[ $nested = yes ] || base=$(printf '%s\ntoken=%s' "$holder" "$token")
write() {{
    printf '%s\nstep=%s\n' "$base" "$1" > {HOLDER_FILE}.new && mv -f {HOLDER_FILE}.new {HOLDER_FILE}
}}
write "taking the lock"
[ $nested = yes ] && echo JOINED || echo LOCKED
while IFS= read -r line; do
    case $line in "step "*) write "${{line#step }}" ;; esac
done
# The control process is gone (or done): the lock goes with this shell.
[ $nested = yes ] || rm -f {HOLDER_FILE}
"""

# --dry: who holds the lock, changing nothing (flock -n on a new descriptor: never waits).
SHOW_COMMAND = (
    f"if [ -e {LOCK_FILE} ] && ! flock -n {LOCK_FILE} true 2>/dev/null; then "
    f"echo held; cat {HOLDER_FILE} 2>/dev/null; else echo free; fi"
)


def under_work_lock(command: str) -> str:
    """`command` (a shell script) run under a shared flock on work.lock, so a deploy that takes
    the lock after this one died waits for it to finish (see the module's docstring). The
    `hx-deploy-work` argument names such processes in `pgrep` for the waiting deploy's message."""
    # Its output goes to files and reaches the SSH channel only once it is done: a script
    # writing to a channel whose deploy was killed gets SIGPIPE and dies half-way (seen: a
    # release saved as last good but never recorded).
    inner = (
        "trap '' PIPE; out=$(mktemp) && err=$(mktemp) || exit 1; "
        f'( {command}\n) >"$out" 2>"$err"; rc=$?; cat "$out"; cat "$err" >&2; rm -f "$out" "$err"; exit $rc'
    )
    return (
        f"mkdir -p {LOCK_DIR} && chmod 700 {LOCK_DIR} && "
        f"flock -s {WORK_LOCK} sh -c {shlex.quote(inner)} hx-deploy-work"
    )


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a gateway's deploy lock, from the holder file's `key=value` lines."""

    control: str = "?"
    user: str = "?"
    pid: str = "?"
    started: str = "?"
    what: str = "?"
    step: str = "?"

    @classmethod
    def parse(cls, text: str) -> Holder:
        values = {}
        for part in text.replace("\t", "\n").splitlines():
            key, sep, value = part.partition("=")
            if sep and key in HOLDER_FIELDS:
                values[key] = value
        return cls(**values)

    def describe(self) -> str:
        return (
            f"{self.what} by {self.user}@{self.control} (pid {self.pid}, started {self.started}), "
            f"at step: {self.step}"
        )


def holder_lines(what: str) -> str:
    """This control process as the holder file names it (the step is added on the host)."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = {
        "control": socket.gethostname(),
        "user": getpass.getuser(),
        "pid": str(os.getpid()),
        "started": started,
        "what": what,
    }
    return "\n".join(f"{k}={v.replace(chr(10), ' ')}" for k, v in fields.items())


# The host data ssh_command reads: pyinfra's SSH connector settings (tasks/lock.py, the rollout).
SSH_KEYS = (
    "ssh_hostname",
    "ssh_port",
    "ssh_user",
    "ssh_key",
    "ssh_known_hosts_file",
    "ssh_strict_host_key_checking",
)


def ssh_command(data: dict, remote: str) -> list[str]:
    """OpenSSH's argv for a host from its pyinfra SSH data (the keys pyinfra's connector reads)."""
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
    if data.get("ssh_port"):
        argv += ["-p", str(data["ssh_port"])]
    if data.get("ssh_user"):
        argv += ["-l", str(data["ssh_user"])]
    if data.get("ssh_key"):
        argv += ["-i", str(data["ssh_key"]), "-o", "IdentitiesOnly=yes"]
    if data.get("ssh_known_hosts_file"):
        argv += ["-o", f"UserKnownHostsFile={data['ssh_known_hosts_file']}"]
    if data.get("ssh_strict_host_key_checking"):
        argv += ["-o", f"StrictHostKeyChecking={data['ssh_strict_host_key_checking']}"]
    return [*argv, str(data.get("ssh_hostname") or data["name"]), remote]


class LockBusy(RuntimeError):
    """Another deploy held the lock for the whole wait; the message names it."""


class LockSession:
    """The lock of one gateway, held by an ssh child of this process (module docstring)."""

    def __init__(self, host_name: str, ssh_data: dict, what: str, token: str | None = None):
        self.host_name = host_name
        self.ssh_data = {**ssh_data, "name": host_name}
        self.what = what
        self.token = token or secrets.token_hex(12)
        self.proc: subprocess.Popen | None = None
        self.joined = False
        self.waited_for: Holder | None = None
        self._started = time.monotonic()
        self._write = threading.Lock()

    def acquire(self, timeout: float, join: str | None = None) -> float:
        """Take (or, with `join`, join) the lock; return the seconds waited. Raises LockBusy with
        the holder when it stays taken for `timeout` s, RuntimeError when the host cannot lock."""
        self.start(timeout, join)
        return self.wait()

    def start(self, timeout: float, join: str | None = None) -> None:
        """Open the session. Call it from the thread that lives as long as the lock must: ssh
        gets SIGKILL when the THREAD that started it ends (PR_SET_PDEATHSIG is per thread), so
        the rollout starts every session from its main thread and only waits in others."""
        args = [str(int(max(timeout, 1))), holder_lines(self.what), self.token, join or ""]
        remote = "sh -c " + shlex.quote(_SCRIPT) + " hx-deploy-lock " + " ".join(map(shlex.quote, args))
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "KILL"] if setpriv else []
        self._started = time.monotonic()
        self.proc = subprocess.Popen(
            prefix + ssh_command(self.ssh_data, remote),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def wait(self) -> float:
        """Until the session answers (start() first); the seconds waited for the lock."""
        started = self._started
        while True:
            line = self.proc.stdout.readline()
            if not line:  # ssh ended without an answer: unreachable, refused, no sh...
                self.proc.wait()
                error = (self.proc.stderr.read() or "").strip().splitlines()[-3:]
                raise RuntimeError(f"could not take the deploy lock on {self.host_name}: {' '.join(error)}")
            word, _, rest = line.rstrip("\n").partition(" ")
            if word == "WAIT":
                self.waited_for = Holder.parse(rest) if "=" in rest else self.waited_for
            elif word in ("LOCKED", "JOINED"):
                self.joined = word == "JOINED"
                return time.monotonic() - started
            elif word == "BUSY":
                self.release()
                holder = Holder.parse(rest) if "=" in rest else None
                who = holder.describe() if holder else rest
                raise LockBusy(
                    f"another deploy holds the deploy lock of {self.host_name} "
                    f"({who}); waited {time.monotonic() - started:.0f} s (deploy_lock_timeout). "
                    "Let it finish and run again, or raise deploy_lock_timeout"
                )
            elif word == "ERROR":
                self.release()
                raise RuntimeError(f"could not take the deploy lock on {self.host_name}: {rest}")

    def step(self, text: str) -> None:
        """Tell the holder file which step this deploy is at (best effort: never fails a deploy)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with self._write:
            try:
                proc.stdin.write("step " + " ".join(text.split())[:200] + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass

    def release(self) -> None:
        """Close the session: the remote shell sees end-of-file and the lock is dropped."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_holder(output_lines: list[str]) -> Holder | None:
    """SHOW_COMMAND's answer: the holder when the lock is held, None when it is free."""
    if not output_lines or output_lines[0].strip() != "held":
        return None
    return Holder.parse("\n".join(output_lines[1:]))
