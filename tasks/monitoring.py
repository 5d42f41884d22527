"""The monitoring host (the optional `monitoring` group): Prometheus and Alertmanager watching the fleet.

deploy.py runs this step instead of the gateway steps for a host of the `monitoring` group. Both are
Debian's packages (installed with apt when missing), run by Debian's units under the deploy's
hardening drop-ins (templates/prometheus-hardening.conf.j2) with the deploy's arguments:

- Prometheus listens on monitoring_ip:prometheus_port, scrapes every target of the inventory
  (hxops.monitoring_link.scrape_targets: the gateways' LiteLLM metrics with the metrics token, node
  exporter everywhere, HAProxy's and Redis's exporters), keeps prometheus_retention_days, and
  evaluates the alert rules (hxops.alert_rules);
- Alertmanager listens on 127.0.0.1 only (Prometheus is its one client), without clustering, and
  sends every notification to alert_webhook_url.

A changed config or rule file is checked with promtool / amtool before the service reloads onto it
(SIGHUP; a changed drop-in restarts instead). A re-run changes nothing and restarts nothing.
"""

from __future__ import annotations

import json
from io import StringIO

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import files, server

from hxops import outcome, paths
from hxops.alert_rules import alert_rules
from hxops.monitoring_link import metrics_token, monitoring_target, scrape_targets
from tasks.exporters import hardened_service, node_exporter, prometheus_secret

CONFIG_DIR = "/etc/prometheus/hx"
PROMETHEUS_CONFIG = f"{CONFIG_DIR}/prometheus.yml"
RULES = f"{CONFIG_DIR}/hx-alerts.yml"
ALERTMANAGER_CONFIG = f"{CONFIG_DIR}/alertmanager.yml"
TOKEN_FILE = f"{CONFIG_DIR}/metrics-token"
STORAGE = "/var/lib/prometheus"
# The operator's page (a console template, read per request: no reload): /consoles/hx-fleet.html.
CONSOLES = f"{CONFIG_DIR}/consoles"


@deploy("tasks/monitoring.py")
def monitoring() -> None:
    target = monitoring_target(inventory)
    if target is None or target.host_name != host.name:
        raise DeployError(f"{host.name}: a monitoring host must be the one host of the `monitoring` group")
    s, token = target.settings, metrics_token()
    outcome.record(host, planned=True)

    node_exporter(target)
    for data in ("metrics2", "alertmanager"):
        files.directory(
            name=f"{STORAGE}/{data}",
            path=f"{STORAGE}/{data}",
            user="prometheus",
            group="prometheus",
            mode="750",
        )
    files.directory(name=CONFIG_DIR, path=CONFIG_DIR, user="root", group="prometheus", mode="750")
    token_op = prometheus_secret(TOKEN_FILE, lambda: token + "\n", "the metrics token")
    prometheus_files = [
        files.template(
            name=f"Render {PROMETHEUS_CONFIG}",
            src=paths.template("monitoring/prometheus.yml.j2"),
            dest=PROMETHEUS_CONFIG,
            user="root",
            group="prometheus",
            mode="640",
            s=s,
            targets=scrape_targets(inventory, s),
            rules_file=RULES,
            token_file=TOKEN_FILE,
            self_address=f"{s.monitoring_ip}:{s.prometheus_port}",
            self_host=host.name,
        ),
        files.put(
            name=f"Write the alert rules {RULES}",
            src=StringIO(json.dumps(alert_rules(s), indent=2) + "\n"),
            dest=RULES,
            user="root",
            group="prometheus",
            mode="640",
        ),
        token_op,
    ]
    files.directory(name=CONSOLES, path=CONSOLES, user="root", group="prometheus", mode="750")
    files.put(
        name=f"Install the operator's page {CONSOLES}/hx-fleet.html",
        src=paths.template("monitoring/consoles/hx-fleet.html"),
        dest=f"{CONSOLES}/hx-fleet.html",
        user="root",
        group="prometheus",
        mode="640",
    )
    alertmanager_files = [
        files.template(
            name=f"Render {ALERTMANAGER_CONFIG}",
            src=paths.template("monitoring/alertmanager.yml.j2"),
            dest=ALERTMANAGER_CONFIG,
            user="root",
            group="prometheus",
            mode="640",
            s=s,
        )
    ]
    if any(op.will_change for op in prometheus_files):
        server.shell(
            name="Check the Prometheus config and rules (promtool)",
            commands=[
                f"promtool check config {PROMETHEUS_CONFIG} >&2 || "
                f"{{ echo 'FAILED: promtool refused {PROMETHEUS_CONFIG}' >&2; exit 1; }}"
            ],
        )
    if any(op.will_change for op in alertmanager_files):
        server.shell(
            name="Check the Alertmanager config (amtool)",
            commands=[
                f"amtool check-config {ALERTMANAGER_CONFIG} >&2 || "
                f"{{ echo 'FAILED: amtool refused {ALERTMANAGER_CONFIG}' >&2; exit 1; }}"
            ],
        )
    hardened_service(
        "prometheus",
        "prometheus",
        "prometheus",
        target,
        allowed="",  # it must reach every target; its own peers are limited by the targets' drop-ins
        writable=f"{STORAGE}/metrics2",
        reload_for=prometheus_files,
        exec_start=f"/usr/bin/prometheus --config.file={PROMETHEUS_CONFIG} "
        f"--storage.tsdb.path={STORAGE}/metrics2/ "
        f"--storage.tsdb.retention.time={s.prometheus_retention_days}d "
        f"--web.listen-address={s.monitoring_ip}:{s.prometheus_port} "
        f"--web.console.templates={CONSOLES} "
        "--web.console.libraries=/etc/prometheus/console_libraries",
    )
    hardened_service(
        "prometheus-alertmanager",
        "prometheus-alertmanager",
        "prometheus-alertmanager",
        target,
        allowed="",  # it must reach the webhook, wherever that is
        writable=f"{STORAGE}/alertmanager",
        reload_for=alertmanager_files,
        exec_start=f"/usr/bin/prometheus-alertmanager --config.file={ALERTMANAGER_CONFIG} "
        f"--storage.path={STORAGE}/alertmanager --web.listen-address=127.0.0.1:{s.alertmanager_port} "
        "--cluster.listen-address=",
    )
