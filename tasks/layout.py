"""Step 4: the service's system user and group, and the directory layout with production modes."""

from pyinfra import host

from hxgw.layout import directories
from hxops import ops, plan

settings = plan.for_host(host).settings
user = settings.service_user

ops.group(name=f"System group {user}", group=user, system=True)
ops.user(
    name=f"System user {user} (no shell, no home)",
    user=user,
    group=user,
    system=True,
    shell="/bin/false",
    home="/nonexistent",
    create_home=False,
    ensure_home=False,
)
for entry in directories(settings):
    ops.directory(
        name=f"Directory {entry.path} ({entry.user}:{entry.group} {entry.mode})",
        path=entry.path,
        user=entry.user,
        group=entry.group,
        mode=entry.mode,
    )
