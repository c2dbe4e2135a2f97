def test_list_conversations_most_recent_first(client, inbox, make_message):
    older = make_message(inbox, to="+16505070001").conversation
    newer = make_message(inbox, to="+16505070002").conversation
    type(newer).objects.filter(id=newer.id).update(
        last_message_at=older.last_message_at.replace(year=2100)
    )
    response = client.get("/api/v1/conversations")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [c["id"] for c in results] == [newer.id, older.id]
    assert results[0]["contact"]["address"] == "+16505070002"
    assert results[0]["channel"] == "WHATSAPP" and results[0]["service_window_open"] is False


def test_conversation_messages_oldest_first(client, inbox, make_message):
    first = make_message(inbox, content="one")
    second = make_message(inbox, content="two")
    response = client.get(f"/api/v1/conversations/{first.conversation_id}/messages")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["results"]] == [str(first.id), str(second.id)]


def test_conversation_of_another_account_is_404(other_client, anon, inbox, make_message):
    message = make_message(inbox)
    url = f"/api/v1/conversations/{message.conversation_id}/messages"
    assert other_client.get(url).status_code == 404
    assert other_client.get("/api/v1/conversations/abc/messages").status_code == 404
    assert anon.get(url).status_code == 401
