/** Builds one typed message: type byte, int32 length (counting itself and the body), body parts. */
export function encodeFrame(type: number, ...parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, part) => n + part.length, 0);
  const frame = new Uint8Array(5 + length);
  frame[0] = type;
  new DataView(frame.buffer).setInt32(1, 4 + length);
  let at = 5;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  return frame;
}
