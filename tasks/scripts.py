"""Step 9: the operators' service scripts start.sh, stop.sh and status.sh (the seed's HX standard),
and rollback.sh (root only), which restores the last known good release (hxops.release)."""

import posixpath

from pyinfra import host

from hxops import ops, paths, plan, release

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
ops.template(
    name="Service script rollback.sh (root only)",
    src=paths.template("rollback.sh.j2"),
    dest=release.rollback_script(settings),
    user="root",
    group="root",
    mode="700",
    settings=settings,
    last_good=release.last_good_dir(settings),
    unit_file=release.unit_file(settings),
    start=posixpath.join(settings.scripts_dir, "start.sh"),
)
