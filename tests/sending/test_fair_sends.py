"""One account's burst never starves another account's message in the send lane (issue #10
item 4): the lane claims tasks as the worker does (``LaneWorker.claim_next``)."""

import pytest
from django.utils.crypto import get_random_string

from inbox.models import Account
from statuses import outbound
from statuses.lanes import SEND_QUEUES, LaneWorker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_single_message_is_not_queued_behind_another_accounts_burst(account, make_inbox):
    burst_account = Account.objects.create(name="Bulk Corp")
    burst_inbox = make_inbox(burst_account, "api", webhook_url="http://127.0.0.1:9/x")
    inbox = make_inbox(account, "api", webhook_url="http://127.0.0.1:9/y")
    burst = [
        outbound.message_create_outgoing(
            account=burst_account, inbox=burst_inbox, to=f"c{i}", content="promo"
        )[0]
        for i in range(30)
    ]
    single, _ = outbound.message_create_outgoing(
        account=account, inbox=inbox, to="customer", content="your code is 1234"
    )
    lane = LaneWorker(
        lane="send", queue_names=SEND_QUEUES, interval=0, worker_id=get_random_string(8)
    )
    order = []
    while (task := lane.claim_next()) is not None:
        order.append(task.args_kwargs["args"][0])
    assert len(order) == 31
    # The single message goes right after the burst's first, not 30th in line.
    assert order.index(str(single.id)) <= 1
    # The burst itself keeps its order.
    assert [m for m in order if m != str(single.id)] == [str(m.id) for m in burst]
