import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FrameScanner } from "../../src/protocol/frame_scanner.ts";
import { ProtocolError } from "../../src/protocol/protocol_error.ts";
import { concatBytes } from "../support/bytes.ts";

const frame = (type: string, body: number[] | Uint8Array): Uint8Array => {
  const bytes = new Uint8Array(5 + body.length);
  bytes[0] = type.charCodeAt(0);
  new DataView(bytes.buffer).setInt32(1, body.length + 4);
  bytes.set(body, 5);
  return bytes;
};
const concat = (...parts: Uint8Array[]) => concatBytes(parts);

function recorder(capture: string[], maxCapturedBytes?: number) {
  const frames: string[] = [];
  const messages: string[] = [];
  const scanner = new FrameScanner({
    frame: (type, length) => frames.push(`${String.fromCharCode(type)}${length}`),
    message: (type, body, truncated) =>
      messages.push(`${String.fromCharCode(type)}:${[...body].join(",")}${truncated ? ":cut" : ""}`),
  }, {
    capture: capture.map((c) => c.charCodeAt(0)),
    maxBodyBytes: 1000,
    peer: "server",
    ...(maxCapturedBytes === undefined ? {} : { maxCapturedBytes }),
  });
  return { scanner, frames, messages };
}

const stream = concat(
  frame("R", [0, 0, 0, 0]),
  frame("S", [97, 0, 98, 0]),
  frame("D", new Uint8Array(300).fill(7)),
  frame("Z", [73]),
  frame("I", []),
);

describe("FrameScanner", () => {
  it("reports every frame and captured body when the whole stream comes in one chunk", () => {
    const { scanner, frames, messages } = recorder(["Z", "S"]);
    scanner.scan(stream);
    assert.deepEqual(frames, ["R4", "S4", "D300", "Z1", "I0"]);
    assert.deepEqual(messages, ["S:97,0,98,0", "Z:73"]);
    assert.equal(scanner.atBoundary, true);
  });

  it("gives the same result for every split point, including inside the 5-byte header", () => {
    const whole = recorder(["Z", "S", "R"]);
    whole.scanner.scan(stream);
    for (let cut = 1; cut < stream.length; cut++) {
      const split = recorder(["Z", "S", "R"]);
      split.scanner.scan(stream.subarray(0, cut));
      split.scanner.scan(stream.subarray(cut));
      assert.deepEqual(split.frames, whole.frames, `cut at ${cut}`);
      assert.deepEqual(split.messages, whole.messages, `cut at ${cut}`);
    }
  });

  it("assembles captured bodies delivered one byte per chunk", () => {
    const { scanner, frames, messages } = recorder(["S"]);
    for (let i = 0; i < stream.length; i++) {
      scanner.scan(stream.subarray(i, i + 1));
      assert.equal(scanner.atBoundary, [9, 18, 323, 329, 334].includes(i + 1), `boundary after byte ${i + 1}`);
    }
    assert.deepEqual(frames, ["R4", "S4", "D300", "Z1", "I0"]);
    assert.deepEqual(messages, ["S:97,0,98,0"]);
  });

  it("scan(chunk, from, maxFrames) stops at the frame boundary before the next header and goes on from there", () => {
    const whole = recorder(["Z", "S"]);
    whole.scanner.scan(stream);
    const sliced = recorder(["Z", "S"]);
    const stops: number[] = [];
    let at = 0;
    while (at < stream.length) {
      at = sliced.scanner.scan(stream, at, 2);
      stops.push(at);
      assert.equal(sliced.scanner.atBoundary, true, `a boundary at ${at}`);
    }
    assert.deepEqual(stops, [18, 329, 334]);
    assert.deepEqual(sliced.frames, whole.frames);
    assert.deepEqual(sliced.messages, whole.messages);
    // A frame whose body runs past the chunk counts once: the rest of its body is no new frame.
    const split = recorder([]);
    assert.equal(split.scanner.scan(stream.subarray(0, 100), 0, 3), 100, "R, S and the head of D");
    assert.equal(split.scanner.scan(stream.subarray(100), 0, 1), 329 - 100, "the rest of D, then Z");
  });

  it("holds no capture buffer until a captured body straddles chunks, and lets a large one go after it", () => {
    const messages: number[] = [];
    const scanner = new FrameScanner({ frame() {}, message: (_type, body) => void messages.push(body.length) }, {
      capture: ["E".charCodeAt(0), "Z".charCodeAt(0)],
      maxBodyBytes: 1 << 20,
      peer: "server",
    });
    const ready = frame("Z", [0x49]);
    scanner.scan(concat(ready, ready));
    assert.equal(scanner.captureBufferBytes, 0, "bodies inside one chunk are handed over as views");
    const big = frame("E", new Uint8Array(40_000).fill(0x41));
    scanner.scan(big.subarray(0, 20_000));
    assert.ok(scanner.captureBufferBytes >= 39_000, "a straddling body is collected");
    scanner.scan(big.subarray(20_000));
    assert.equal(scanner.captureBufferBytes, 0, "and its buffer is not kept for the rest of the session");
    scanner.scan(ready.subarray(0, 5));
    scanner.scan(ready.subarray(5));
    assert.ok(scanner.captureBufferBytes <= 256, "a small straddling body uses a small buffer");
    assert.deepEqual(messages, [1, 1, 40_000, 1]);
  });

  it("reads a frame that does not start at offset 0 of its buffer", () => {
    const padded = new Uint8Array(stream.length + 13);
    padded.set(stream, 13);
    const { scanner, frames } = recorder([]);
    scanner.scan(padded.subarray(13));
    assert.deepEqual(frames, ["R4", "S4", "D300", "Z1", "I0"]);
  });

  it("hands over only the head of a captured body longer than the capture limit", () => {
    const { scanner, messages } = recorder(["E"], 3);
    const error = frame("E", [1, 2, 3, 4, 5, 6]);
    scanner.scan(error.subarray(0, 7));
    scanner.scan(error.subarray(7));
    scanner.scan(frame("E", [9, 8, 7, 6]));
    assert.deepEqual(messages, ["E:1,2,3:cut", "E:9,8,7:cut"]);
    assert.equal(scanner.atBoundary, true);
  });

  it("rejects a length below 4 with the offset of the bad frame", () => {
    const { scanner, frames } = recorder([]);
    const bad = concat(frame("Z", [73]), new Uint8Array([0x51, 0, 0, 0, 3]));
    assert.throws(() => scanner.scan(bad), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.sqlstate, "08P01");
      assert.equal(error.offset, 6);
      assert.match(error.message, /type 'Q' with length 3/);
      return true;
    });
    assert.deepEqual(frames, ["Z1"]);
  });

  it("rejects a length of 2^31-1 before allocating anything", () => {
    const { scanner } = recorder(["Q"]);
    assert.throws(
      () => scanner.scan(new Uint8Array([0x51, 0x7f, 0xff, 0xff, 0xff, 1, 2])),
      /length 2147483647 \(must be 4 to 1004\)/,
    );
  });

  it("rejects a negative length", () => {
    const { scanner } = recorder([]);
    assert.throws(() => scanner.scan(new Uint8Array([0x44, 0xff, 0xff, 0xff, 0xfe])), ProtocolError);
  });
});
