/**
 * A stand-in PostgreSQL server on 127.0.0.1, port 0, for tests that need an upstream but no real one:
 * it counts the connections pgrelay opens and does with each what `serve` says (by default: read the
 * first packet, then close, as a server does with a CancelRequest).
 */
import { createServer, type Socket } from "node:net";

export interface FakeUpstream {
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** The bytes of each connection's first packet. */
  readonly firstPackets: Uint8Array[];
  close(): Promise<void>;
}

/** What the fake does with each connection, given its first packet (complete, by its length prefix). */
export type Serve = (socket: Socket, firstPacket: Uint8Array) => void;

export const closeAfterFirstPacket: Serve = (socket) => socket.end();

/** Answers the startup packet with a FATAL 28P01 ErrorResponse, as for a wrong password, then closes. */
export const refuseLogin: Serve = (socket) => socket.end(errorResponse("28P01", "password authentication failed"));

/** Never answers; closes when pgrelay closes. */
export const stayQuiet: Serve = () => {};

export function startFakeUpstream(serve: Serve = closeAfterFirstPacket): Promise<FakeUpstream> {
  let connections = 0;
  const firstPackets: Uint8Array[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let held = new Uint8Array(0);
    let served = false;
    socket.on("data", (chunk: Uint8Array) => {
      if (served) return;
      const joined = new Uint8Array(held.length + chunk.length);
      joined.set(held);
      joined.set(chunk, held.length);
      held = joined;
      if (held.length < 4) return;
      const length = new DataView(held.buffer, held.byteOffset).getInt32(0);
      if (held.length < length) return;
      served = true;
      const packet = held.slice(0, length);
      firstPackets.push(packet);
      serve(socket, packet);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as { port: number };
      resolve({
        host: "127.0.0.1",
        port: address.port,
        get connections() {
          return connections;
        },
        firstPackets,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

function errorResponse(code: string, message: string): Uint8Array {
  const fields = `SFATAL\0VFATAL\0C${code}\0M${message}\0\0`;
  const body = new TextEncoder().encode(fields);
  const frame = new Uint8Array(5 + body.length);
  frame[0] = "E".charCodeAt(0);
  new DataView(frame.buffer).setInt32(1, 4 + body.length);
  frame.set(body, 5);
  return frame;
}
