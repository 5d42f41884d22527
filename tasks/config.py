"""Step 7: config.yaml from its template, uvicorn's logging, and the master key's environment file.

The key is never in config.yaml: it sits in an EnvironmentFile readable only by root and the
service group. It is the fleet's one key (hxops.fleet_key: MASTER_KEY, else the one the
gateways or the control machine hold, else one generated once on the control machine). It
never appears in a command, a fact's output, an operation argument or a diff
(hxops.security.master_key_file), so -v, --debug and --diff cannot print it.

Content and permissions are separate operations: only a content change restarts the service (the
operations this step returns); a repaired owner or mode does not, since the running process has
already read both files and systemd re-reads them at the next start anyway.
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from hxgw.layout import auth_module_file, clients_file
from hxgw.serving import serving_for, uvicorn_log_config
from hxops import ops, paths
from hxops.facts import HostFacts
from hxops.plan import GatewayPlan
from hxops.security import master_key_file
from tasks.monitoring_agent import metrics_env
from tasks.redis_client import check_redis_password, redis_client


@deploy("tasks/config.py")
def config(plan: GatewayPlan, facts: HostFacts) -> list[OperationMeta]:
    """Render config.yaml and install or generate the key; return the content operations (a
    change of any of them means the service must restart)."""
    settings, catalogue, snapshot = plan.settings, plan.catalogue, facts.snapshot
    group = settings.service_user
    restart_triggers = []

    # config.yaml; uvicorn's logging (the access line only when asked; read at start, so a change
    # restarts); the key check config.yaml names (general_settings.custom_auth: 401 for any other key).
    restart_triggers += [
        _render_root_group_640(
            "config.yaml",
            "config.yaml.j2",
            settings.config_file,
            group,
            snapshot,
            deployments=catalogue.deployments(),
            router_settings=plan.router_settings,
            coordination_redis=coordination_redis(plan),
            metrics=plan.monitoring is not None,
        ),
        _render_root_group_640(
            "uvicorn-logging.json",
            "uvicorn-logging.json.j2",
            settings.log_config_file,
            group,
            snapshot,
            log_config=uvicorn_log_config(serving_for(settings, facts.cpus, facts.memory_mb)),
        ),
        _render_root_group_640(
            "hx_auth.py", "hx_auth.py", auth_module_file(settings), group, snapshot, verb="Install"
        ),
    ]

    # The clients' limits and key hashes: hx_auth.py re-reads the file when it changes, so adding,
    # rotating or revoking a client restarts nothing (not a restart trigger).
    _render_root_group_640(
        "clients.json",
        "clients.json.j2",
        clients_file(settings),
        group,
        snapshot,
        clients=plan.clients,
        master_key_models=settings.master_key_models,
    )

    # The fleet's one key (hxops.fleet_key), compared by sha256: a host that holds it is left alone.
    source = "from MASTER_KEY" if plan.master_key_given else "of the fleet"
    restart_triggers.append(
        master_key_file(
            name=f"Install the master key {source} (value not shown)",
            path=settings.env_file,
            group=group,
            key_source=lambda: plan.master_key,
            what=f"the master key {source}",
        )
    )

    ops.file(
        name="The master key file is root:group 640",
        path=settings.env_file,
        user="root",
        group=group,
        mode="640",
        snapshot=snapshot,
    )
    restart_triggers += redis_client(plan, snapshot)  # the `caches` group's Redis password
    restart_triggers += metrics_env(plan, snapshot)  # the `monitoring` group's metrics token
    if any(op.will_change for op in restart_triggers):
        check_redis_password(plan)  # before the service restarts onto it
    return restart_triggers


def coordination_redis(plan: GatewayPlan) -> dict:
    """general_settings.coordination_redis: the `caches` group's Redis, as the router has it."""
    if plan.cache is None:
        return {}
    router = plan.router_settings
    return {"host": router["redis_host"], "port": router["redis_port"], "password": router["redis_password"]}


def _render_root_group_640(label, template, dest, group, snapshot, verb="Render", **context) -> OperationMeta:
    """The file's content from its template, then root:group 640 as a separate operation; returns
    the content one. No user/group/mode on the first (a change of those must not restart the
    service): a new file is created by root inside the 750 config directory, which only root and
    the service group can enter, and gets its group and mode from the second."""
    content = ops.template(
        name=f"{verb} {label}", src=paths.template(template), dest=dest, snapshot=snapshot, **context
    )
    ops.file(
        name=f"{label} is root:group 640", path=dest, user="root", group=group, mode="640", snapshot=snapshot
    )
    return content
