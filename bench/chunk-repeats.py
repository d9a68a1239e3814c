#!/usr/bin/env python3
# bench/chunk-repeats.py BUNDLE: the chunks of a partial-fetch bundle whose digest repeats an
# earlier chunk's, and their frames' bytes (what a reference to the earlier chunk would save).
import struct, sys
data = open(sys.argv[1], 'rb').read()
at = data.find(b'OSUCHIDX')
ver = struct.unpack_from('<I', data, at + 8)[0]
head = 44 if ver >= 3 else 40
image, count = struct.unpack_from('<QQ', data, at + head - 16)
seen, reps, rep_bytes, total, near = {}, 0, 0, 0, 0
pos = 0
for i in range(count):
    size, csize = struct.unpack_from('<II', data, at + head + 24 * i)
    dig = data[at + head + 24 * i + 8: at + head + 24 * i + 24]
    total += csize
    if dig in seen:
        reps += 1; rep_bytes += csize
    else:
        seen[dig] = pos
    pos += size
print(f"version {ver}: {count} chunks, member {total} bytes; {reps} repeat an earlier digest, "
      f"their frames {rep_bytes} bytes ({100 * rep_bytes / total:.1f}% of the member)")
