"""Step 7: config.yaml from its template, and the master key's environment file.

The key is never in config.yaml: it sits in an EnvironmentFile readable only by root and the
service group. It comes from MASTER_KEY on the control machine, or is generated on the host at
the first deploy and kept there. It never appears in a command, a fact's output, an operation
argument or a diff (hxops.security.master_key_file), so -v, --debug and --diff cannot print it.

Content and permissions are separate operations: only a content change restarts the service
(hxops.plan restart triggers); a repaired owner or mode does not, since the running process has
already read both files and systemd re-reads them at the next start anyway.
"""

import shlex

from pyinfra import host
from pyinfra.operations import server

from hxgw.layout import auth_module_file
from hxops import ops, paths, plan
from hxops.security import master_key_file

host_plan = plan.for_host(host)
settings, catalogue = host_plan.settings, host_plan.catalogue
group = settings.service_user

# No user/group/mode here (a change of those must not restart the service): a new file is created
# by root inside the 750 config directory, which only root and the service group can enter, and
# gets its group and mode from the operation below; an existing file keeps its owner and mode.
host_plan.restart_triggers.append(
    ops.template(
        name="Render config.yaml",
        src=paths.template("config.yaml.j2"),
        dest=settings.config_file,
        deployments=catalogue.deployments(),
        router_settings=host_plan.router_settings,
    )
)
ops.file(
    name="config.yaml is root:group 640",
    path=settings.config_file,
    user="root",
    group=group,
    mode="640",
)
# The key check config.yaml names (general_settings.custom_auth): 401 for any other key.
host_plan.restart_triggers.append(
    ops.template(
        name="Install hx_auth.py",
        src=paths.template("hx_auth.py"),
        dest=auth_module_file(settings),
    )
)
ops.file(
    name="hx_auth.py is root:group 640", path=auth_module_file(settings), user="root", group=group, mode="640"
)

if host_plan.master_key:
    host_plan.restart_triggers.append(
        master_key_file(
            name="Install the master key from MASTER_KEY (value not shown)",
            path=settings.env_file,
            group=group,
            key_source=lambda: host_plan.master_key,
        )
    )
elif not host_plan.facts["env_file"]:
    env, new, owner = (
        shlex.quote(p) for p in (settings.env_file, settings.env_file + ".new", f"root:{group}")
    )
    host_plan.restart_triggers.append(
        server.shell(
            name="Generate a master key on the host (first deploy; value not shown)",
            commands=[
                f'umask 077; python3 -c \'import secrets; print("LITELLM_MASTER_KEY=sk-" + '
                f"secrets.token_urlsafe(32))' > {new} && chown {owner} {new} && "
                f"chmod 640 {new} && mv {new} {env}"
            ],
        )
    )

ops.file(
    name="The master key file is root:group 640",
    path=settings.env_file,
    user="root",
    group=group,
    mode="640",
)
