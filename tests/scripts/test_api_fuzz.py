"""Every route of ``loa api`` fuzzed from its own OpenAPI description (schemathesis, on
Hypothesis): whatever the generated path, query and body, with an operator's token, no
500, and every answer as the description says (its status, its content type, its
shape). The operations are read from the running app's ``/openapi.json``."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import positive_data_acceptance

from campaigns.recipients import ListRow
from ledger.api import accounts
from scripts.api.app import make_app
from tests.helpers import record
from tests.worker.test_dispatch import SPEC
from worker.runtime import Runtime
from worker.settings import Settings

PASSWORD = "ruộng lúa xanh mướt chiều thu"


def test_no_route_answers_500_or_outside_its_description(engine, tmp_path):
    record(engine, SPEC, [ListRow(i + 2, f"09123{i:05d}", ()) for i in range(3)])
    accounts.add_user(engine, "fuzz", "operator", PASSWORD)
    token = accounts.issue_token(engine, "fuzz")[1]
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    config = Settings(
        database_url=url, var_dir=tmp_path, providers={"sandbox": {"type": "sandbox"}}
    )
    runtime = Runtime(config, engine=engine)
    try:
        app = make_app(runtime, sends=False)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        headers = {"Authorization": f"Bearer {token}"}

        @given(case=st.one_of(*(operation.as_strategy() for operation in operations)))
        @settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzzed(case):
            # A request the schema allows may still be refused (a path's "number" that
            # is no textable number, a campaign's state): 4xx as described, not a fault.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        fuzzed()
        app.state.jobs.close()  # the jobs fuzzing started end before the ledger closes
    finally:
        runtime.close()
