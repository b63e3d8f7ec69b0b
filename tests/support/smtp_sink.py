"""A real SMTP server for the notification tests (aiosmtpd): every message it accepts is
written to DIR as <n>.eml. With --stall-first, the first message is stored and then its
answer is withheld long enough for the client to time out (a provider that took a message
whose acceptance never reached the sender). Prints the port it listens on, then serves until
killed.

    python3 tests/support/smtp_sink.py DIR [--stall-first SECONDS]
"""

import asyncio
import os
import socket
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, stall):
        self.directory = directory
        self.stall = stall
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, f"{self.count:04d}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.replace(path + ".tmp", path)
        if self.stall and self.count == 1:
            await asyncio.sleep(self.stall)
        return "250 OK"


def main():
    directory = sys.argv[1]
    stall = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--stall-first" else 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Sink(directory, stall), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
