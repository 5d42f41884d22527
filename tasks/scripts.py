"""Step 9: the operators' service scripts start.sh, stop.sh and status.sh (the seed's HX standard)."""

import posixpath

from pyinfra import host

from hxops import ops, paths, plan

settings = plan.for_host(host).settings
for script in ("start.sh", "stop.sh", "status.sh"):
    ops.template(
        name=f"Service script {script}",
        src=paths.template(f"{script}.j2"),
        dest=posixpath.join(settings.scripts_dir, script),
        user="root",
        group="root",
        mode="755",
        settings=settings,
    )
