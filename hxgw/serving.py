"""How the proxy serves on one host: worker processes, their recycling, and what it logs.

LiteLLM's production guidance for a VM (docs.litellm.ai/docs/proxy/prod): one worker per CPU
(`--num_workers`), workers recycled after N requests against memory growth
(`--max_requests_before_restart`, with `--max_requests_before_restart_jitter` so they do not
recycle together), and `LITELLM_LOG` above DEBUG. The settings (hxgw/settings.py) say what the
operator asked for; `serving_for` turns them and the host's facts (CPUs, memory) into what the
unit runs, and `serving_problem` refuses what the host cannot carry, before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass

# Resident memory of one LiteLLM 1.108.7 worker serving chat (RSS measured on the testbed: ~380
# MB; the bench reports it per gateway), rounded up so the check leaves the host some room.
WORKER_MB = 450
# Seconds uvicorn's supervisor waits for a worker's answer before it kills it (default 5): a
# starting LiteLLM worker answers only once its imports are done (Kludex/uvicorn#2506).
WORKER_HEALTHCHECK_S = 120
# More workers than this per CPU only add memory and context switches: refused when asked for.
MAX_WORKERS_PER_CPU = 4
# A recycle is a full LiteLLM start in that worker (seconds of CPU): fewer requests between two
# recycles than this spends more time starting than serving.
MIN_REQUESTS_BEFORE_RESTART = 1000
# Why recycling is refused with the uvicorn the gateway lock pins (0.54): its supervisor pings each
# worker and waits up to the health-check timeout (WORKER_HEALTHCHECK_S) for the answer; a worker
# that exits while a ping is out (a recycle, a start-up failure) is noticed only when that wait
# ends, and the supervisor tends no other worker meanwhile. Seen here: after a start-up failure the
# parent acted exactly 120 s later; in the bench (bench/after-i14.md) both workers recycled and no
# new one started for 8 minutes. Set to None once a uvicorn release replaces exited workers at once
# (Kludex/uvicorn#2987 starts on that).
RECYCLING_REFUSED_BECAUSE = (
    "with the uvicorn in the gateway lock (0.54) a recycled worker is replaced only after the "
    f"supervisor's {WORKER_HEALTHCHECK_S} s health-check wait, and workers that recycle together "
    "leave the gateway with none (measured: bench/after-i14.md)"
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Serving:
    """What the unit runs: `--num_workers`, recycling (None: never), `LITELLM_LOG`, access log."""

    workers: int
    max_requests: int | None
    jitter: int
    log_level: str
    access_log: bool
    healthcheck_s: int = WORKER_HEALTHCHECK_S


def auto_workers(cpus: int, memory_mb: int) -> int:
    """One worker per CPU, as many as the memory holds, and at least 2 when the memory holds 2:
    with one worker a crash leaves no process serving while it starts again. A host whose memory
    holds one worker gets one (a second would push it into swap or the OOM killer)."""
    fits = memory_mb // WORKER_MB if memory_mb > 0 else max(cpus, 2)
    return max(1, min(max(cpus, 2), fits))


def serving_for(settings, cpus: int, memory_mb: int) -> Serving:
    workers = settings.num_workers or auto_workers(max(cpus, 1), memory_mb)
    recycle = settings.max_requests_before_restart or None
    return Serving(
        workers=workers,
        max_requests=recycle,
        jitter=(recycle // 10) if recycle else 0,
        log_level=settings.log_level,
        access_log=settings.access_log,
    )


def serving_problem(settings, cpus: int, memory_mb: int) -> str | None:
    """Why this host cannot run the workers asked for (None: it can). Only an explicit
    num_workers can be refused: the automatic count fits the host by construction."""
    asked = settings.num_workers
    if not asked:
        return None
    if cpus > 0 and asked > cpus * MAX_WORKERS_PER_CPU:
        return (
            f"num_workers {asked} is more than {MAX_WORKERS_PER_CPU} per CPU on a host with {cpus} CPUs: "
            f"the extra workers add memory, not throughput; set num_workers to at most "
            f"{cpus * MAX_WORKERS_PER_CPU}, or leave it unset (one per CPU)"
        )
    if memory_mb > 0 and asked * WORKER_MB > memory_mb:
        return (
            f"num_workers {asked} needs about {asked * WORKER_MB} MB ({WORKER_MB} MB per LiteLLM worker) "
            f"and the host has {memory_mb} MB; set num_workers to at most {max(1, memory_mb // WORKER_MB)}, "
            "or leave it unset (as many as fit)"
        )
    return None


def uvicorn_log_config(serving: Serving) -> dict:
    """uvicorn's logging (`--log_config`): its own lifecycle lines (started, stopped, a worker
    recycled or died: a handful per start) at INFO; the per-request access line only when asked.
    LiteLLM's own loggers follow LITELLM_LOG (the unit's environment). Existing loggers are kept:
    LiteLLM attaches its secret-redacting filters to them before uvicorn configures logging."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            },
        },
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            },
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {
                "handlers": ["access"] if serving.access_log else [],
                "level": "INFO" if serving.access_log else "WARNING",
                "propagate": False,
            },
        },
    }
