"""The production inventory: the HX gateway at 192.168.10.39.

Never deploy to it, probe it or --dry it from a development or CI machine; test it only at plan
level with pyinfra's @fake connector (tests/unit/test_production_plan.py). The local fleet has
its own inventory: testbed/inventory.py.
"""

gateways = [
    ("hx-api-gateway-server", {"ssh_hostname": "192.168.10.39", "gateway_ip": "192.168.10.39"}),
]
