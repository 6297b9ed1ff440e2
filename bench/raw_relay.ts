/**
 * A benchmark reference: the cheapest relay we know how to write straight on the runtime's own socket
 * API, with none of pgrelay's code (no adapter, no pump, no scanning), keeping backpressure so that it is
 * a fair relay. Its CPU per transaction is the floor of what any relay on that runtime costs here; it uses
 * `Deno.*` and `Bun.*` directly on purpose, which pgrelay itself does only in src/adapters.
 *   deno run -A bench/raw_relay.ts LISTEN_PORT UPSTREAM_PORT   |   bun bench/raw_relay.ts ...
 */
import process from "node:process";

const runtime = globalThis as any;
const [listenPort, upstreamPort] = ("Deno" in globalThis ? runtime.Deno.args : process.argv.slice(2)).map(Number);
const HOST = "127.0.0.1";

if ("Bun" in globalThis) relayOnBun();
else await relayOnDeno();

/** Bun.listen / Bun.connect: write what the kernel takes; keep the rest and pause the source until drain. */
function relayOnBun(): void {
  interface Leg {
    peer: any;
    pending: Uint8Array | undefined;
  }
  const write = (from: any, to: any, bytes: Uint8Array) => {
    const leg: Leg = to.data;
    if (leg.pending) {
      leg.pending = concat(leg.pending, bytes);
      return;
    }
    const n = to.write(bytes);
    if (n < bytes.length) {
      leg.pending = bytes.subarray(Math.max(n, 0));
      from.pause();
    }
  };
  const drain = (socket: any) => {
    const leg: Leg = socket.data;
    if (!leg.pending) return;
    const n = socket.write(leg.pending);
    leg.pending = n < leg.pending.length ? leg.pending.subarray(Math.max(n, 0)) : undefined;
    if (!leg.pending) leg.peer?.resume();
  };
  const handlers = {
    data: (socket: any, chunk: Uint8Array) => write(socket, socket.data.peer, chunk),
    drain,
    close: (socket: any) => socket.data?.peer?.end(),
    error: (socket: any) => socket.data?.peer?.end(),
  };
  runtime.Bun.listen({
    hostname: HOST,
    port: listenPort,
    socket: {
      ...handlers,
      open(client: any) {
        client.data = { peer: undefined, pending: undefined } satisfies Leg;
        client.pause();
        client.setNoDelay(true);
        runtime.Bun.connect({ hostname: HOST, port: upstreamPort, socket: handlers }).then((server: any) => {
          server.setNoDelay(true);
          server.data = { peer: client, pending: undefined } satisfies Leg;
          client.data.peer = server;
          client.resume();
        }, () => client.end());
      },
    },
  });
}

/** Deno.listen / Deno.connect: one read loop per direction into its own 64 KiB buffer, each write awaited. */
async function relayOnDeno(): Promise<void> {
  const pipe = async (from: any, to: any) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        for (let at = 0; at < n;) at += await to.write(buffer.subarray(at, n));
      }
    } catch {
      // the peer went away
    }
    try {
      to.close();
    } catch {
      // already closed
    }
  };
  for await (const client of runtime.Deno.listen({ hostname: HOST, port: listenPort })) {
    runtime.Deno.connect({ hostname: HOST, port: upstreamPort }).then((server: any) => {
      client.setNoDelay(true);
      server.setNoDelay(true);
      void pipe(client, server);
      void pipe(server, client);
    }, () => client.close());
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}
