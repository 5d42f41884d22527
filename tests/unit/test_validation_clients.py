"""The validation of each client's path (hxgw/validation_client_checks.py) against a fake
gateway: it speaks as the client with the master key (never with the client's key, whose limits
it must not spend) and fails when a model outside the client's list is served."""

from __future__ import annotations

import json

import httpx

from tests.unit.test_validation_logic import KEY, FakeGateway, catalogue, checks_by, run  # noqa: F401

CLIENT = {
    "name": "app",
    "models": ["hx-chat", "emb-perf"],
    "rpm": 5,
    "tpm": None,
    "max_parallel": None,
    "keys": [],
}


class ClientGateway(FakeGateway):
    """As hx_auth.py answers the master key with x-hx-as-client: the client's models only."""

    def __init__(self, entries, leaky=False):
        super().__init__(entries)
        self.leaky, self.as_client = leaky, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        name = request.headers.get("x-hx-as-client")
        if name is None:
            return super().__call__(request)
        self.as_client.append((request.headers.get("authorization"), request.url.path))
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": m} for m in CLIENT["models"]]})
        model = json.loads(request.content)["model"]
        if model not in CLIENT["models"] and not self.leaky:
            error = {"message": f"The model `{model}` does not exist or you do not have access to it.",
                     "type": "invalid_request_error", "param": None, "code": "model_not_found"}  # fmt: skip
            return httpx.Response(404, json={"error": error})
        return super().__call__(request)


def test_each_client_is_checked_as_itself_with_the_master_key(catalogue):  # noqa: F811
    gateway = ClientGateway(catalogue)
    report = run(catalogue, gateway, clients=[CLIENT])
    found = checks_by(report)
    assert found[(None, "client app: /v1/models")].status == "pass"
    assert found[("hx-chat", "client app: allowed")].status == "pass"
    refused = [c for c in report.checks if c.check.startswith("client app: refused")]
    assert [c.status for c in refused] == ["pass"] and refused[0].detail == "404 model_not_found"
    # Every request as the client carried the master key, never a client key: no limit is spent.
    assert gateway.as_client and {auth for auth, _ in gateway.as_client} == {f"Bearer {KEY}"}


def test_a_model_outside_the_clients_list_that_answers_fails_the_validation(catalogue):  # noqa: F811
    report = run(catalogue, ClientGateway(catalogue, leaky=True), clients=[CLIENT])
    (refused,) = [c for c in report.checks if c.check.startswith("client app: refused")]
    assert refused.status == "fail" and "expected 404 model_not_found, got 200" in refused.detail
