import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeErrorFields, encodeErrorResponse } from "../../src/protocol/error_response.ts";

describe("encodeErrorResponse()", () => {
  it("writes a frame whose length word matches and whose fields read back", () => {
    const frame = encodeErrorResponse({
      severity: "FATAL",
      code: "08001",
      message: "could not connect to upstream 127.0.0.1:1: Connection refused ✓",
      hint: "Check it",
    });
    assert.equal(String.fromCharCode(frame[0]!), "E");
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    assert.equal(view.getInt32(1), frame.length - 1);
    assert.equal(frame[frame.length - 1], 0);
    const fields = decodeErrorFields(frame.subarray(5));
    assert.deepEqual(Object.fromEntries(fields), {
      S: "FATAL",
      V: "FATAL",
      C: "08001",
      M: "could not connect to upstream 127.0.0.1:1: Connection refused ✓",
      H: "Check it",
    });
  });
});
