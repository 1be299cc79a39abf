"""Test SMTP tarpit: a raw server on 127.0.0.1 that never lets a client finish, yet sends a
line every second, so no per-read socket timeout ever fires. Stdlib only.

Modes:
  banner      greets with "220-please wait" lines, one a second, forever
  data_reply  speaks SMTP, takes the whole message (written to <dir>/<n>.eml), then answers
              the end of DATA with "250-still working" lines, one a second, forever

Each connection adds a line to <dir>/connections.log. Prints "READY <port>" once listening.

    python smtp_tarpit.py --dir D --mode banner|data_reply
"""

import argparse
import os
import socket
import threading
import time


def trickle(conn, line):
    while True:
        conn.sendall(line)
        time.sleep(1)


def serve(conn, mode, out_dir, count):
    try:
        if mode == "banner":
            trickle(conn, b"220-please wait\r\n")
        reader = conn.makefile("rb")
        conn.sendall(b"220 tarpit ESMTP\r\n")
        while True:
            line = reader.readline()
            if not line:
                return
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO"):
                conn.sendall(b"250-tarpit\r\n250 8BITMIME\r\n")
            elif cmd.startswith((b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP")):
                conn.sendall(b"250 ok\r\n")
            elif cmd == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                data = b""
                while True:
                    chunk = reader.readline()
                    if not chunk or chunk == b".\r\n":
                        break
                    data += chunk
                with count["lock"]:
                    count["n"] += 1
                    n = count["n"]
                path = os.path.join(out_dir, "%d.eml" % n)
                with open(path + ".tmp", "wb") as f:
                    f.write(data)
                os.replace(path + ".tmp", path)
                trickle(conn, b"250-still working\r\n")
            elif cmd == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"502 unknown\r\n")
    except OSError:
        pass
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", choices=["banner", "data_reply"], required=True)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    print("READY %d" % s.getsockname()[1], flush=True)
    count = {"n": 0, "lock": threading.Lock()}
    while True:
        conn, _ = s.accept()
        with open(os.path.join(args.dir, "connections.log"), "a") as f:
            f.write("connect\n")
        threading.Thread(
            target=serve, args=(conn, args.mode, args.dir, count), daemon=True
        ).start()


if __name__ == "__main__":
    main()
