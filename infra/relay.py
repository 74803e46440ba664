#!/usr/bin/env python3
"""Relays TCP connections from LISTEN_HOST (a free port) to TARGET_HOST:TARGET_PORT, both ways.

    python3 infra/relay.py LISTEN_HOST TARGET_HOST TARGET_PORT   # prints the port, then serves

infra/sam-local.sh runs it on Docker's bridge so SAM's containers reach the emulator, which
listens on loopback only (SAM 1.170 leaves containers on the bridge whatever --docker-network
says). Only the bridge's host address listens: nothing outside this machine reaches it.
"""
import contextlib
import socket
import sys
import threading


def pipe(a: socket.socket, b: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := a.recv(65536):
            b.sendall(data)
    with contextlib.suppress(OSError):
        b.shutdown(socket.SHUT_WR)


def main() -> None:
    listen_host, target = sys.argv[1], (sys.argv[2], int(sys.argv[3]))
    server = socket.create_server((listen_host, 0))
    print(server.getsockname()[1], flush=True)
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection(target)
        except OSError:
            client.close()
            continue
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    main()
