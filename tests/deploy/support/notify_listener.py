# Stands in for systemd's notify socket in tests/deploy: binds an AF_UNIX SOCK_DGRAM socket (a path, or
# "@name" in the abstract namespace), then prints one JSON line per datagram with the sender's pid (from
# SCM_CREDENTIALS) and the receiver's CLOCK_MONOTONIC in microseconds. File descriptors that come with a
# message (systemd-notify's BARRIER=1) are closed by the kernel, which is what releases the barrier.
import json, os, socket, struct, sys, time

name = sys.argv[1]
address = "\0" + name[1:] if name.startswith("@") else name
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(address)
print(json.dumps({"bound": name}), flush=True)
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = -1
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    print(json.dumps({"pid": pid, "now_usec": now, "text": data.decode()}), flush=True)
