import pytest

from statuses.campaigns import materialise
from tests.api.conftest import api_key, client, open_window, other_client, sms_inbox  # noqa: F401
from tests.e2e.conftest import make_stack  # noqa: F401


@pytest.fixture
def materialise_all():
    """Run the worker's materialising of a campaign to the end, in the test's thread."""

    def run(campaign_id):
        while materialise.batch_materialise(campaign_id) == "batch":
            pass

    return run
