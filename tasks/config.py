"""Step 7: config.yaml from its template, and the master key's environment file.

The key is never in config.yaml: it sits in an EnvironmentFile readable only by root and the
service group. It comes from MASTER_KEY on the control machine, or is generated on the host at
the first deploy and kept there.
"""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server

from hxops import ops, paths, plan

host_plan = plan.for_host(host)
settings, catalogue = host_plan.settings, host_plan.catalogue
group = settings.service_user

host_plan.restart_triggers.append(
    ops.template(
        name="Render config.yaml",
        src=paths.template("config.yaml.j2"),
        dest=settings.config_file,
        user="root",
        group=group,
        mode="640",
        deployments=catalogue.deployments(),
        router_settings=host_plan.router_settings,
    )
)

if host_plan.master_key:
    host_plan.restart_triggers.append(
        files.put(
            name="Install the master key from MASTER_KEY (value not shown)",
            src=StringIO(f"LITELLM_MASTER_KEY={host_plan.master_key}\n"),
            dest=settings.env_file,
            user="root",
            group=group,
            mode="640",
        )
    )
elif not host_plan.facts["env_file"]:
    env = settings.env_file
    host_plan.restart_triggers.append(
        server.shell(
            name="Generate a master key on the host (first deploy; value not shown)",
            commands=[
                f'umask 077; python3 -c \'import secrets; print("LITELLM_MASTER_KEY=sk-" + '
                f"secrets.token_urlsafe(32))' > {env}.new && chown root:{group} {env}.new && "
                f"chmod 640 {env}.new && mv {env}.new {env}"
            ],
        )
    )
else:
    ops.file(
        name="Keep the host's master key file, root:group 640",
        path=settings.env_file,
        user="root",
        group=group,
        mode="640",
    )
