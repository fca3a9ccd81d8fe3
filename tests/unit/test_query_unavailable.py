"""A read Cassandra cannot serve in time is a 503 problem with Retry-After, never a 500."""

import pytest
from cassandra import OperationTimedOut, ReadTimeout, Unavailable
from cassandra.cluster import NoHostAvailable
from fastapi.testclient import TestClient

from query_api.app import create_app


@pytest.mark.parametrize("error", [
    OperationTimedOut("client request timeout"),
    ReadTimeout("read timeout", consistency=1, required_responses=1, received_responses=0),
    Unavailable("unavailable", consistency=1, required_replicas=1, alive_replicas=0),
    NoHostAvailable("no host", {}),
])
def test_cassandra_unavailable_is_a_503_problem(error):
    app = create_app()

    @app.get("/boom")
    async def boom():
        raise error

    # No `with`: the lifespan (a real Cassandra connection) is not started.
    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "1"
    assert response.json()["status"] == 503
