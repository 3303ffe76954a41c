"""A minimal SMTP server on loopback for tests and benchmarks (aiosmtpd is not installed):
asyncio streams on a thread of its own, keeping every message it accepts. It can wait
`delay` seconds before each reply (a slow mail server), or answer nothing at all until
`release()` (a hung one)."""

import asyncio
import email
import email.policy
import threading
import time
from dataclasses import dataclass, field


@dataclass
class SmtpSink:
    delay: float = 0.0
    held: bool = False
    port: int = 0
    messages: list = field(default_factory=list)  # email.message.EmailMessage, as received

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._released = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smtp-sink", daemon=True)

    @classmethod
    def start(cls, *, delay: float = 0.0, held: bool = False) -> "SmtpSink":
        sink = cls(delay=delay, held=held)
        sink._thread.start()
        if not sink._ready.wait(10):
            raise RuntimeError("the SMTP sink did not start")
        return sink

    def release(self) -> None:
        """Start answering (a sink started `held` answers nothing until then)."""
        self._loop.call_soon_threadsafe(self._released.set)

    def wait_for_messages(self, count: int, seconds: float = 30) -> list:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} messages arrived")
            time.sleep(0.01)
        return self.messages

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        if not self.held:
            self._released.set()
        server = self._loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.close()

    async def _reply(self, writer: asyncio.StreamWriter, line: str) -> None:
        await self._released.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        writer.write(line.encode() + b"\r\n")
        await writer.drain()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._reply(writer, "220 sink ESMTP")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"DATA":
                    await self._reply(writer, "354 end with <CRLF>.<CRLF>")
                    self.messages.append(await self._data(reader))
                    await self._reply(writer, "250 queued")
                elif verb == b"QUIT":
                    await self._reply(writer, "221 bye")
                    break
                elif verb in (b"EHLO", b"HELO"):
                    await self._reply(writer, "250 sink")
                else:  # MAIL, RCPT, RSET, NOOP
                    await self._reply(writer, "250 ok")
        except ConnectionError:
            pass
        finally:
            writer.close()

    @staticmethod
    async def _data(reader: asyncio.StreamReader):
        lines = []
        while (line := await reader.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return email.message_from_bytes(b"".join(lines), policy=email.policy.default)
