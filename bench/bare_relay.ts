/**
 * A reference for the benchmark: pgrelay's own adapters and relay pumps with no frame scanning, no
 * session state and no metrics, i.e. what this runtime costs to move the bytes at all. The gap between
 * this and pgrelay is pgrelay's own work.
 *   deno run -A bench/bare_relay.ts LISTEN_PORT UPSTREAM_PORT   |   bun bench/bare_relay.ts ...
 */
import process from "node:process";
import { adapterFor } from "../src/adapters/runtime.ts";
import { RelayPump } from "../src/core/relay_pump.ts";

const [listenPort, upstreamPort] = ("Deno" in globalThis ? Deno.args : process.argv.slice(2)).map(Number);
const adapter = adapterFor();
await adapter.listen({ hostname: "127.0.0.1", port: listenPort ?? 0 }, (client) => {
  client.pause();
  adapter.connect({ hostname: "127.0.0.1", port: upstreamPort ?? 5432 }, { timeoutMs: 5000 }).then((server) => {
    const counters = () => ({ bytes: 0, stalls: 0, stallSeconds: 0 });
    const up = new RelayPump(client, server, null, () => {}, counters());
    const down = new RelayPump(server, client, null, () => {}, counters());
    client.listen({ data: (c) => up.forward(c), drain: () => down.drained(), close: () => server.end() });
    server.listen({ data: (c) => down.forward(c), drain: () => up.drained(), close: () => client.end() });
    client.resume();
  }, () => client.destroy());
});
// Silent on purpose: the benchmark reports anything a proxy prints; it finds the port in /proc.
