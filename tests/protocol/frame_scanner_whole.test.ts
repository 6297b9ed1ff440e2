import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FrameScanner, MAX_WHOLE_FRAME_BYTES } from "../../src/protocol/frame_scanner.ts";

const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const frame = (type: string, body: number[]) => [type.charCodeAt(0), ...u32(body.length + 4), ...body];
const K = "K".charCodeAt(0);

function scanner(seen: number[][]) {
  return new FrameScanner({
    frame() {},
    message: (_type, body) => void seen.push([...body]),
  }, { capture: [K], whole: [K], maxBodyBytes: 1 << 20, peer: "server" });
}

describe("FrameScanner whole frames", () => {
  it("stops before a `whole` frame the chunk holds only part of, header or body, and sets holding", () => {
    const bytes = new Uint8Array([...frame("Z", [73]), ...frame("K", [...u32(7), 1, 2, 3, 4]), ...frame("Z", [73])]);
    for (let cut = 7; cut < 6 + 13; cut++) {
      const seen: number[][] = [];
      const s = scanner(seen);
      assert.equal(s.scan(bytes.subarray(0, cut)), 6, `cut ${cut}: stops at the K header`);
      assert.equal(s.holding, true);
      assert.equal(s.atBoundary, true, "nothing of K consumed");
      assert.equal(s.scan(bytes.subarray(6)), bytes.length - 6, "the whole K later");
      assert.equal(s.holding, false);
      assert.deepEqual(seen, [[...u32(7), 1, 2, 3, 4]]);
    }
  });

  it("does not hold a `whole`-type frame larger than MAX_WHOLE_FRAME_BYTES: it is scanned as it streams", () => {
    const seen: number[][] = [];
    const s = scanner(seen);
    const big = new Uint8Array(frame("K", Array.from({ length: MAX_WHOLE_FRAME_BYTES }, () => 1)));
    assert.equal(s.scan(big.subarray(0, 100)), 100);
    assert.equal(s.holding, false);
    assert.equal(s.scan(big.subarray(100)), big.length - 100);
    assert.equal(seen.length, 1);
  });
});
