#!/usr/bin/env python3
# tcp-relay.py HOST PORT [LOG]: relays stdin/stdout (one socket, as QEMU's user networking hands
# it to a `guestfwd=...-cmd:` command, once per guest connection) to HOST:PORT, half-closes
# included. Errors go to LOG (stderr would go to the guest).
import os
import select
import socket
import sys

os.dup2(os.open(sys.argv[3] if len(sys.argv) > 3 else os.devnull,
                os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)
guest = socket.socket(fileno=os.dup(0))
server = socket.create_connection((sys.argv[1], int(sys.argv[2])))
pairs = {guest: server, server: guest}
open_ = {guest, server}
while open_:
    for src in select.select(list(open_), [], [])[0]:
        if src not in open_:
            continue
        data = src.recv(65536)
        if data:
            pairs[src].sendall(data)
        else:
            # The guest is done sending: pass that on and wait for the answer. The server is
            # done: nothing the guest still sends could reach it, so the relay ends.
            open_.discard(src)
            if src is server:
                open_.clear()
            try:
                pairs[src].shutdown(socket.SHUT_WR)
            except OSError:
                pass
