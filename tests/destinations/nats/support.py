"""JetStream streams for the nats destination's tests: made, read back and removed."""

from __future__ import annotations

from typing import Any


async def stream_messages(url: str, stream: str) -> list[Any]:
    """Every message stored in ``stream``, in order."""
    import nats

    client = await nats.connect(url)
    try:
        jetstream = client.jetstream()
        info = await jetstream.stream_info(stream)
        return [await jetstream.get_msg(stream, seq)
                for seq in range(info.state.first_seq, info.state.last_seq + 1)] if info.state.messages else []
    finally:
        await client.close()


async def make_stream(url: str, name: str, subjects: list[str], **limits: Any) -> None:
    import nats
    from nats.js.api import StreamConfig

    client = await nats.connect(url)
    try:
        jetstream = client.jetstream()
        try:
            await jetstream.delete_stream(name)
        except Exception:  # noqa: BLE001 -- not there yet
            pass
        await jetstream.add_stream(StreamConfig(name=name, subjects=subjects, **limits))
    finally:
        await client.close()


async def delete_stream(url: str, name: str) -> None:
    import nats

    client = await nats.connect(url)
    try:
        await client.jetstream().delete_stream(name)
    except Exception:  # noqa: BLE001 -- already gone
        pass
    finally:
        await client.close()
