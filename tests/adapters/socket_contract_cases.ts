/**
 * The RelaySocket contract (src/core/socket.ts) as a list of cases, run by socket_contract.test.ts against
 * every adapter of the current runtime, in plaintext and over TLS. Each case gets a fresh link: `subject`,
 * the adapter's socket under test, and `peer`, a node:net / node:tls socket the case drives directly
 * (created with allowHalfOpen, and ending its side when the subject ends).
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import type { RelaySocket, TlsUpgrade } from "../../src/core/socket.ts";
import { sleep } from "../support/wait.ts";

export interface Link {
  subject: RelaySocket;
  peer: Socket;
  /** The peer's TCP socket when `peer` is a TLS socket over it. */
  peerTcp?: Socket;
}

export interface OpenOptions {
  /** Bytes the peer writes the moment the connection is up (before the subject exists, when it connects). */
  greeting?: Uint8Array;
}

/** How a case reaches the adapter under test. */
export interface Setup {
  readonly name: string;
  /** Which side the subject is: accepted by the adapter's listener, or opened by its connect. */
  readonly side: "accepted" | "connected";
  readonly tls: boolean;
  open(options?: OpenOptions): Promise<Link>;
  /**
   * A plaintext link whose peer then starts TLS: as a client sending its ClientHello right away
   * (subject accepted), or as a server waiting for one (subject connected). Only for adapters with
   * upgradeTls.
   */
  openForUpgrade?(): Promise<
    { subject: RelaySocket; peerSecure: Promise<Socket>; upgrade: (replay?: Uint8Array) => TlsUpgrade }
  >;
}

export interface ContractCase {
  readonly name: string;
  /** Only where the setup offers `openForUpgrade` (plaintext, an adapter with upgradeTls). */
  readonly needsUpgrade?: boolean;
  /** Needs the subject's kernel buffers to fill while the peer does not read. */
  readonly needsBackpressure?: boolean;
  run(setup: Setup): Promise<void>;
}

/** Deterministic bytes whose value depends on the absolute offset (order and offset mistakes show). */
export function pattern(offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const n = offset + i;
    bytes[i] = (n ^ (n >>> 8) ^ (n >>> 16) ^ 0x5a) & 0xff;
  }
  return bytes;
}

function assertPattern(bytes: Uint8Array, what: string): void {
  for (let i = 0; i < bytes.length; i++) {
    const n = i;
    if (bytes[i] !== ((n ^ (n >>> 8) ^ (n >>> 16) ^ 0x5a) & 0xff)) {
      assert.fail(`${what}: byte ${i} of ${bytes.length} differs`);
    }
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Polls `condition` every 2 ms (many short waits in a row: the 50 ms of tests/support would add up). */
async function waitFor(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytesOf = (s: string) => new TextEncoder().encode(s);

/** What the subject reported: data (copied: a view is only valid during the call), drains and closes. */
class Recorder {
  readonly chunks: Uint8Array[] = [];
  dataCalls = 0;
  drains = 0;
  readonly closes: (Error | undefined)[] = [];
  eventsAfterClose = 0;
  /** Called with each chunk after it was recorded (a case may pause the subject from here). */
  onData: ((chunk: Uint8Array) => void) | undefined;

  constructor(readonly socket: RelaySocket) {}

  listen(): this {
    this.socket.listen({
      data: (chunk) => {
        if (this.closes.length > 0) this.eventsAfterClose++;
        this.dataCalls++;
        this.chunks.push(chunk.slice());
        this.onData?.(chunk);
      },
      drain: () => {
        if (this.closes.length > 0) this.eventsAfterClose++;
        this.drains++;
      },
      close: (error) => {
        if (this.closes.length > 0) this.eventsAfterClose++;
        this.closes.push(error);
      },
    });
    return this;
  }

  get received(): number {
    return this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  get bytes(): Uint8Array {
    return concat(this.chunks);
  }

  /** Waits for the close, then checks it stays the only one and nothing followed it. */
  async closedOnce(what: string): Promise<Error | undefined> {
    await waitFor(() => this.closes.length > 0, `${what}: the close event`);
    await sleep(100);
    assert.equal(this.closes.length, 1, `${what}: close reported ${this.closes.length} times`);
    assert.equal(this.eventsAfterClose, 0, `${what}: events after close`);
    return this.closes[0];
  }
}

/** Everything the peer receives, and whether it saw the subject's end. */
class PeerReader {
  readonly chunks: Uint8Array[] = [];
  received = 0;
  ended = false;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Uint8Array) => {
      this.chunks.push(chunk);
      this.received += chunk.length;
    });
    socket.on("end", () => this.ended = true);
    socket.on("close", () => this.closed = true);
    socket.on("error", () => {});
  }

  get bytes(): Uint8Array {
    return concat(this.chunks);
  }
}

/**
 * Stops the peer reading. A node:tls peer keeps decrypting into its own buffer while paused (Deno), so
 * its TCP socket is paused too: only then do the subject's kernel buffers fill.
 */
function pausePeer(link: Link): void {
  link.peer.pause();
  link.peerTcp?.pause();
}

function resumePeer(link: Link): void {
  link.peerTcp?.resume();
  link.peer.resume();
}

/** Writes one chunk from the peer and waits until it is handed to the kernel. */
function peerWrite(peer: Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => peer.write(bytes, (error) => error ? reject(error) : resolve()));
}

const CHUNK = 64 * 1024;
/** Far more than any loopback socket buffers: a subject still taking writes past it ignores backpressure. */
const WRITE_LIMIT = 256 * 1024 * 1024;

/**
 * With the peer not reading, writes pattern chunks until one returns false and the bytes stay pending
 * (the kernel buffers are full, not just one write in flight). Returns the bytes written.
 */
async function fillUntilBackpressure(subject: RelaySocket, offset = 0): Promise<number> {
  let written = offset;
  for (;;) {
    const accepted = subject.write(pattern(written, CHUNK));
    written += CHUNK;
    if (written - offset > WRITE_LIMIT) {
      assert.fail(`write never reported backpressure (${written - offset} bytes)`);
    }
    if (accepted) continue;
    // One write in flight (Deno) drains at once; full kernel buffers keep bytes pending.
    const settled = Date.now() + 100;
    while (subject.pendingBytes > 0 && Date.now() < settled) await sleep(2);
    if (subject.pendingBytes > 0) return written;
  }
}

async function link(setup: Setup, options?: OpenOptions): Promise<Link & { cleanUp: () => void }> {
  const opened = await setup.open(options);
  return {
    ...opened,
    cleanUp: () => {
      opened.subject.destroy();
      opened.peer.destroy();
    },
  };
}

export const CONTRACT_CASES: readonly ContractCase[] = [
  {
    name: "delivers bytes that arrived before listen, in order, then the peer's close once",
    async run(setup) {
      const greeting = bytesOf("hello|");
      const { subject, peer, cleanUp } = await link(setup, { greeting });
      try {
        for (const part of ["one|", "two|", "three"]) {
          await peerWrite(peer, bytesOf(part));
          await sleep(20); // separate chunks on runtimes that read as bytes arrive
        }
        peer.end();
        await sleep(200); // everything, the end included, arrives before anyone listens
        const recorder = new Recorder(subject).listen();
        const error = await recorder.closedOnce("peer ended before listen");
        assert.equal(error, undefined);
        assert.equal(text(recorder.bytes), "hello|one|two|three");
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "a receiver that pauses while early data is replayed gets nothing more until resume",
    async run(setup) {
      const { subject, peer, cleanUp } = await link(setup);
      try {
        const parts = ["alpha|", "beta|", "gamma|", "delta"];
        for (const part of parts) {
          await peerWrite(peer, bytesOf(part));
          await sleep(20);
        }
        await sleep(100);
        const recorder = new Recorder(subject);
        recorder.onData = () => subject.pause();
        recorder.listen();
        await waitFor(() => recorder.dataCalls > 0, "the first chunk");
        await sleep(200);
        assert.equal(recorder.dataCalls, 1, "data delivered while paused");
        recorder.onData = undefined;
        subject.resume();
        await waitFor(() => text(recorder.bytes) === parts.join(""), "the rest after resume");
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "pause stops data delivery and resume restarts it",
    async run(setup) {
      const { subject, peer, cleanUp } = await link(setup);
      try {
        const recorder = new Recorder(subject).listen();
        await peerWrite(peer, bytesOf("before"));
        await waitFor(() => recorder.received === 6, "bytes before the pause");
        subject.pause();
        await peerWrite(peer, bytesOf("during"));
        await sleep(300);
        assert.equal(text(recorder.bytes), "before", "data delivered while paused");
        subject.resume();
        await waitFor(() => recorder.received === 12, "bytes after resume");
        assert.equal(text(recorder.bytes), "beforeduring");
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "pausing inside a data event holds a stream until resume, then delivers all of it in order",
    async run(setup) {
      const { subject, peer, cleanUp } = await link(setup);
      try {
        const total = 1024 * 1024;
        const recorder = new Recorder(subject);
        let pauses = 0;
        recorder.onData = () => {
          subject.pause();
          pauses++;
        };
        recorder.listen();
        peer.write(pattern(0, total));
        await waitFor(() => recorder.dataCalls > 0, "the first chunk");
        await sleep(200);
        assert.equal(recorder.dataCalls, 1, "chunks delivered while paused");
        for (let round = 0; round < 10_000 && recorder.received < total; round++) {
          const calls: number = recorder.dataCalls;
          subject.resume();
          await waitFor(() => recorder.dataCalls > calls, "a chunk after resume");
          assert.equal(recorder.dataCalls, calls + 1, "more than one chunk per resume");
        }
        assert.equal(recorder.received, total);
        assertPattern(recorder.bytes, "relayed stream");
        assert.ok(pauses > 1);
      } finally {
        cleanUp();
      }
    },
  },
  {
    name:
      "write returns false under backpressure, drain fires once when the peer reads, pendingBytes returns to 0",
    needsBackpressure: true,
    async run(setup) {
      const opened = await link(setup);
      const { subject, peer, cleanUp } = opened;
      try {
        pausePeer(opened);
        const reader = new PeerReader(peer);
        const recorder = new Recorder(subject).listen();
        let written = await fillUntilBackpressure(subject);
        // Queued behind the full kernel buffers: each returns false, and all of them drain together.
        for (let i = 0; i < 3; i++) {
          assert.equal(
            subject.write(pattern(written, CHUNK)),
            false,
            "a write behind a full queue reported success",
          );
          written += CHUNK;
        }
        const drainsBefore = recorder.drains;
        await sleep(200);
        assert.equal(recorder.drains, drainsBefore, "drain while the peer does not read");
        assert.ok(subject.pendingBytes > 0, "nothing pending while the peer does not read");
        resumePeer(opened);
        await waitFor(
          () => reader.received === written,
          `the peer receiving ${written} bytes (has ${reader.received})`,
          30_000,
        );
        await waitFor(() => recorder.drains > drainsBefore, "the drain");
        await sleep(200);
        assert.equal(recorder.drains, drainsBefore + 1, "drain reported more than once");
        assert.equal(subject.pendingBytes, 0);
        assertPattern(reader.bytes, "bytes the peer received");
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "the peer's close is reported once; later writes are dropped and pendingBytes is 0",
    async run(setup) {
      const { subject, peer, cleanUp } = await link(setup);
      try {
        const recorder = new Recorder(subject).listen();
        peer.end();
        const error = await recorder.closedOnce("peer close");
        assert.equal(error, undefined);
        assert.equal(subject.write(bytesOf("late")), true, "a write after close must not wait for a drain");
        assert.equal(subject.pendingBytes, 0);
        subject.end();
        subject.destroy();
        await sleep(100);
        assert.equal(recorder.closes.length, 1, "end or destroy after the close reported it again");
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "end() sends everything queued, then closes once",
    needsBackpressure: true,
    async run(setup) {
      const opened = await link(setup);
      const { subject, peer, cleanUp } = opened;
      try {
        pausePeer(opened);
        const reader = new PeerReader(peer);
        const recorder = new Recorder(subject).listen();
        const written = await fillUntilBackpressure(subject);
        subject.end();
        assert.equal(subject.write(bytesOf("after end")), true, "a write after end must be dropped");
        resumePeer(opened);
        await waitFor(() => reader.ended, "the peer seeing the end", 30_000);
        assert.equal(reader.received, written);
        assertPattern(reader.bytes, "bytes sent before end");
        const error = await recorder.closedOnce("local end");
        assert.equal(error, undefined);
        assert.equal(subject.pendingBytes, 0);
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "destroy() closes once, drops what is queued and leaves pendingBytes at 0",
    needsBackpressure: true,
    async run(setup) {
      const opened = await link(setup);
      const { subject, peer, cleanUp } = opened;
      try {
        pausePeer(opened);
        const reader = new PeerReader(peer);
        const recorder = new Recorder(subject).listen();
        await fillUntilBackpressure(subject);
        subject.destroy();
        assert.equal(subject.pendingBytes, 0);
        await recorder.closedOnce("destroy");
        subject.destroy();
        await sleep(50);
        assert.equal(recorder.closes.length, 1, "a second destroy reported a second close");
        resumePeer(opened);
        await waitFor(() => reader.closed, "the peer seeing the connection go");
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "a connection reset by the peer is reported as one close",
    async run(setup) {
      const opened = await link(setup);
      const { subject, peer, cleanUp } = opened;
      try {
        const recorder = new Recorder(subject).listen();
        await peerWrite(peer, bytesOf("x"));
        await waitFor(() => recorder.received === 1, "a byte before the reset");
        (opened.peerTcp ?? peer).resetAndDestroy();
        // Writing into a reset connection fails on every runtime; the failure is the same single close.
        for (let i = 0; i < 50 && recorder.closes.length === 0; i++) {
          subject.write(pattern(0, CHUNK));
          await sleep(20);
        }
        const error = await recorder.closedOnce("reset");
        if (error !== undefined) assert.ok(error instanceof Error);
        assert.equal(subject.pendingBytes, 0);
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "half-close: after the peer ends its side, the subject still sends and the peer receives it all",
    async run(setup) {
      const { subject, peer, cleanUp } = await link(setup);
      try {
        const reader = new PeerReader(peer);
        const reply = 4 * 1024 * 1024;
        const recorder = new Recorder(subject);
        let answered = false;
        recorder.onData = () => {
          if (answered || text(recorder.bytes) !== "request") return;
          answered = true;
          // More than the socket buffers take at once: most of it is still queued when the peer's end arrives.
          for (let at = 0; at < reply; at += CHUNK) subject.write(pattern(at, CHUNK));
        };
        recorder.listen();
        peer.end(bytesOf("request"));
        await waitFor(() => reader.ended, "the peer seeing the subject's end", 30_000);
        assert.ok(answered, "the request arrived");
        assert.equal(reader.received, reply);
        assertPattern(reader.bytes, "reply after the peer's end");
        assert.equal(await recorder.closedOnce("half-close"), undefined);
      } finally {
        cleanUp();
      }
    },
  },
  {
    name: "upgradeTls with replay bytes: the TLS socket carries data both ways and reports its TLS facts",
    needsUpgrade: true,
    async run(setup) {
      const { subject, peerSecure, upgrade } = await setup.openForUpgrade!();
      let secure: RelaySocket | undefined;
      let peer: Socket | undefined;
      try {
        let first: Uint8Array | undefined;
        if (setup.side === "accepted") {
          // The peer's ClientHello was read already (direct TLS): it goes back in front of the stream.
          subject.listen({
            data(chunk) {
              first ??= chunk.slice();
              subject.pause();
            },
            drain() {},
            close() {},
          });
          await waitFor(() => first !== undefined, "the ClientHello");
          assert.equal(first![0], 0x16, "a TLS handshake record");
        } else subject.listen({ data() {}, drain() {}, close() {} });
        [secure, peer] = await Promise.all([subject.upgradeTls!(upgrade(first)), peerSecure]);
        assert.match(secure.tls?.protocol ?? "", /^TLSv1\.[23]$/);
        assert.ok(secure.tls?.cipher);
        const recorder = new Recorder(secure).listen();
        const reader = new PeerReader(peer);
        peer.write(bytesOf("ping"));
        await waitFor(() => text(recorder.bytes) === "ping", "ping over TLS");
        secure.write(bytesOf("pong"));
        await waitFor(() => text(reader.bytes) === "pong", "pong over TLS");
        secure.end();
        await recorder.closedOnce("TLS end");
      } finally {
        secure?.destroy();
        peer?.destroy();
        subject.destroy();
      }
    },
  },
];
