#!/usr/bin/env python3
# serial-times.py LOG OFFSET PID: while process PID lives, appends each new line of LOG (from
# byte OFFSET; carriage returns dropped) to LOG.times as "<host epoch seconds> <line>", 0.1 s
# resolution. QEMU writes the serial log itself; this is the host's clock on it, for timings
# across guest reboots and kexec (the guest's clock restarts with each kernel).
import os
import sys
import time

log, offset, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


with open(log, "rb") as src, open(log + ".times", "ab") as out:
    src.seek(offset)
    partial = b""
    while True:
        running = alive()  # before the read: the last lines are read after QEMU ended
        data = src.read()
        if data:
            now = b"%.1f " % time.time()
            lines = (partial + data).split(b"\n")
            partial = lines.pop()
            for line in lines:
                out.write(now + line.replace(b"\r", b"") + b"\n")
            out.flush()
        if not running:
            if partial:
                out.write(b"%.1f " % time.time() + partial.replace(b"\r", b"") + b"\n")
            break
        time.sleep(0.1)
