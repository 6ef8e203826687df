"""The fake external provider, driven by the official openai and anthropic clients."""

from __future__ import annotations

import json
import time
import urllib.request

import anthropic
import openai
import pytest

from tests.support.fake_provider import FakeProvider

REPLY = "Paris is the capital of France [1]."
CANARY = "CANARY-7f3a9c-never-leave"


@pytest.fixture
def fake():
    with FakeProvider(reply=REPLY) as provider:
        yield provider


def _openai(fake: FakeProvider, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="sk-test-openai", max_retries=0, **kw)


def _anthropic(fake: FakeProvider, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0, **kw
    )


def test_server_binds_loopback_on_a_free_port_and_stops():
    provider = FakeProvider().start()
    try:
        assert provider.base_url.startswith("http://127.0.0.1:")
        assert provider.base_url.endswith("/v1")
        assert provider.anthropic_base_url == provider.base_url.removesuffix("/v1")
        port = provider.port
    finally:
        provider.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)


def test_openai_non_streaming_answer_and_exact_recorded_body(fake):
    client = _openai(fake)
    completion = client.chat.completions.create(
        model="gpt-fake",
        messages=[
            {"role": "system", "content": "Answer from the sources."},
            {"role": "user", "content": f"What is the capital? {CANARY}"},
        ],
        temperature=0.2,
    )
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-fake"
    usage = completion.usage
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    assert len(fake.requests) == 1
    rec = fake.requests[0]
    assert rec.method == "POST"
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer sk-test-openai"
    assert json.loads(rec.body) == rec.json
    assert rec.json["model"] == "gpt-fake"
    assert rec.json["messages"][1]["content"].endswith(CANARY)
    assert CANARY in fake.bodies_text()


def test_openai_streaming_joins_to_reply_with_usage_chunk(fake):
    client = _openai(fake)
    stream = client.chat.completions.create(
        model="gpt-fake",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usages, finishes = [], [], []
    for chunk in stream:
        if chunk.usage is not None:
            usages.append(chunk.usage)
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert "".join(pieces) == REPLY
    assert len(pieces) > 1  # really streamed, not one lump
    assert finishes == ["stop"]
    assert len(usages) == 1 and usages[0].completion_tokens > 0
    assert fake.requests[0].json["stream"] is True


def test_openai_streaming_without_include_usage_sends_no_usage(fake):
    stream = _openai(fake).chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY


def test_raw_sse_ends_with_done(fake):
    body = json.dumps({"model": "m", "messages": [], "stream": True}).encode()
    req = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{fake.base_url}/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (loopback)
        text = resp.read().decode()
        assert resp.headers["Content-Type"] == "text/event-stream"
    frames = [f for f in text.split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    assert fake.requests[0].body == body  # byte for byte


def test_anthropic_non_streaming_answer_and_recorded_request(fake):
    client = _anthropic(fake)
    message = client.messages.create(
        model="claude-fake",
        max_tokens=256,
        system="Answer from the sources.",
        messages=[{"role": "user", "content": f"Capital? {CANARY}"}],
    )
    assert message.content[0].text == REPLY
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    rec = fake.requests[0]
    assert (rec.method, rec.path.split("?")[0]) == ("POST", "/v1/messages")
    # anthropic 2.x sends the key as a Bearer token; older clients used x-api-key.
    key_headers = rec.headers.get("x-api-key", "") + rec.headers.get("authorization", "")
    assert "sk-ant-test" in key_headers
    assert "anthropic-version" in rec.headers
    assert rec.json["system"] == "Answer from the sources."
    assert rec.json["max_tokens"] == 256
    assert CANARY in fake.bodies_text()


def test_anthropic_streaming_event_sequence(fake):
    client = _anthropic(fake)
    types, text = [], []
    with client.messages.stream(
        model="claude-fake", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "content_block_delta":
                text.append(event.delta.text)
        final = stream.get_final_message()
    assert "".join(text) == REPLY
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    for name in ("content_block_start", "content_block_stop", "message_delta"):
        assert name in types
    assert final.content[0].text == REPLY
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    assert fake.requests[0].json["stream"] is True


def test_delay_makes_the_openai_client_time_out_but_the_request_is_recorded():
    with FakeProvider(delay=2.0) as fake:
        client = _openai(fake, timeout=openai.Timeout(0.3, connect=1.0))
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(
                model="gpt-fake", messages=[{"role": "user", "content": CANARY}]
            )
        assert time.monotonic() - started < 1.9
        assert len(fake.requests) == 1
        assert CANARY in fake.bodies_text()


def test_delay_makes_the_anthropic_client_time_out():
    with FakeProvider(delay=2.0) as fake:
        client = _anthropic(fake, timeout=0.3)
        with pytest.raises(anthropic.APITimeoutError):
            client.messages.create(
                model="claude-fake", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [429, 500])
def test_error_status_in_openai_shape(status):
    with FakeProvider(status=status) as fake:
        with pytest.raises(openai.APIStatusError) as info:
            _openai(fake).chat.completions.create(
                model="gpt-fake", messages=[{"role": "user", "content": CANARY}]
            )
        assert info.value.status_code == status
        assert "error" in info.value.body or "message" in info.value.body
        assert len(fake.requests) == 1  # recorded, and not retried
        assert CANARY in fake.bodies_text()


def test_error_status_in_anthropic_shape():
    with FakeProvider(status=529) as fake:
        with pytest.raises(anthropic.APIStatusError) as info:
            _anthropic(fake).messages.create(
                model="claude-fake", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        assert info.value.status_code == 529
        assert info.value.body["error"]["type"] == "overloaded_error"
        assert len(fake.requests) == 1


def test_no_request_means_nothing_recorded(fake):
    assert fake.requests == []
    assert fake.bodies_text() == ""


def test_concurrent_requests_are_all_recorded(fake):
    import threading

    client = _openai(fake)
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            client.chat.completions.create(
                model="gpt-fake", messages=[{"role": "user", "content": f"q{i}"}]
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.json["messages"][0]["content"] for r in fake.requests) == sorted(
        f"q{i}" for i in range(8)
    )
