"""RabbitMQ for the rabbitmq destination's tests: an exchange and a queue declared, drained and
removed."""

from __future__ import annotations

from typing import Any


async def declare(url: str, exchange: str, queue: str, bind: bool = True) -> None:
    """A durable topic exchange and a durable queue, bound to it for every key when ``bind``."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, "topic", durable=True)
        q = await channel.declare_queue(queue, durable=True)
        if bind:
            await q.bind(ex, "#")


async def drain(url: str, queue: str) -> list[Any]:
    """Every message in ``queue``, taken off it in order."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=True)
        messages = []
        while (message := await q.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        return messages


async def remove(url: str, exchanges: list[str], queues: list[str]) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in exchanges:
            await channel.exchange_delete(exchange)
