/** Byte builders for PostgreSQL frontend (client → server) protocol-3.0 messages. */

const encoder = new TextEncoder();

/** Protocol 3.0 version code sent in StartupMessage. */
export const PROTOCOL_3_0 = 196608;
/** Request code of SSLRequest. */
export const SSL_REQUEST_CODE = 80877103;
/** Request code of GSSENCRequest. */
export const GSSENC_REQUEST_CODE = 80877104;
/** Request code of CancelRequest. */
export const CANCEL_REQUEST_CODE = 80877102;

/** Little append-only writer producing big-endian protocol fields. */
class FrameWriter {
  #parts: Uint8Array[] = [];
  #length = 0;

  bytes(b: Uint8Array): this {
    this.#parts.push(b);
    this.#length += b.length;
    return this;
  }

  int16(n: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setInt16(0, n);
    return this.bytes(b);
  }

  int32(n: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n);
    return this.bytes(b);
  }

  cstring(s: string): this {
    return this.bytes(encoder.encode(s)).bytes(new Uint8Array([0]));
  }

  /** Type byte (if any) + int32 length (including itself) + payload. */
  frame(type?: string): Uint8Array {
    const header = type === undefined ? 4 : 5;
    const out = new Uint8Array(header + this.#length);
    if (type !== undefined) out[0] = type.charCodeAt(0);
    new DataView(out.buffer).setInt32(header - 4, this.#length + 4);
    let offset = header;
    for (const part of this.#parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

/** StartupMessage (protocol 3.0) with the given parameters (user, database, ...). */
export function startupMessage(params: Record<string, string>, version = PROTOCOL_3_0): Uint8Array {
  const w = new FrameWriter().int32(version);
  for (const [key, value] of Object.entries(params)) w.cstring(key).cstring(value);
  return w.bytes(new Uint8Array([0])).frame();
}

/** SSLRequest (the server answers with the single byte 'S' or 'N'). */
export function sslRequest(): Uint8Array {
  return new FrameWriter().int32(SSL_REQUEST_CODE).frame();
}

/** GSSENCRequest (the server answers with the single byte 'G' or 'N'). */
export function gssEncRequest(): Uint8Array {
  return new FrameWriter().int32(GSSENC_REQUEST_CODE).frame();
}

/** CancelRequest for a backend's process id and secret key. */
export function cancelRequest(processId: number, secretKey: number): Uint8Array {
  return new FrameWriter().int32(CANCEL_REQUEST_CODE).int32(processId).int32(secretKey).frame();
}

/** PasswordMessage ('p') carrying a cleartext or md5 password. */
export function passwordMessage(password: string): Uint8Array {
  return new FrameWriter().cstring(password).frame("p");
}

/** SASLInitialResponse ('p'): mechanism name + initial client response. */
export function saslInitialResponse(mechanism: string, data: Uint8Array): Uint8Array {
  return new FrameWriter().cstring(mechanism).int32(data.length).bytes(data).frame("p");
}

/** SASLResponse ('p'): raw SASL data. */
export function saslResponse(data: Uint8Array): Uint8Array {
  return new FrameWriter().bytes(data).frame("p");
}

/** Simple Query ('Q'). */
export function query(sql: string): Uint8Array {
  return new FrameWriter().cstring(sql).frame("Q");
}

/** Parse ('P'): statement name, SQL text, parameter type OIDs (0 = unspecified). */
export function parse(name: string, sql: string, paramTypes: readonly number[] = []): Uint8Array {
  const w = new FrameWriter().cstring(name).cstring(sql).int16(paramTypes.length);
  for (const oid of paramTypes) w.int32(oid);
  return w.frame("P");
}

/** Bind ('B') with text-format parameters (null → SQL NULL) and text-format results. */
export function bind(portal: string, statement: string, params: readonly (string | null)[]): Uint8Array {
  const w = new FrameWriter().cstring(portal).cstring(statement).int16(0).int16(params.length);
  for (const param of params) {
    if (param === null) {
      w.int32(-1);
    } else {
      const bytes = encoder.encode(param);
      w.int32(bytes.length).bytes(bytes);
    }
  }
  return w.int16(0).frame("B");
}

/** Describe ('D') of a prepared statement ('S') or portal ('P'). */
export function describe(kind: "S" | "P", name: string): Uint8Array {
  return new FrameWriter().bytes(new Uint8Array([kind.charCodeAt(0)])).cstring(name).frame("D");
}

/** Execute ('E') a portal; maxRows 0 = no limit. */
export function execute(portal: string, maxRows = 0): Uint8Array {
  return new FrameWriter().cstring(portal).int32(maxRows).frame("E");
}

/** Close ('C') of a prepared statement ('S') or portal ('P'). */
export function close(kind: "S" | "P", name: string): Uint8Array {
  return new FrameWriter().bytes(new Uint8Array([kind.charCodeAt(0)])).cstring(name).frame("C");
}

/** Sync ('S'). */
export function sync(): Uint8Array {
  return new FrameWriter().frame("S");
}

/** Flush ('H'). */
export function flush(): Uint8Array {
  return new FrameWriter().frame("H");
}

/** Terminate ('X'). */
export function terminate(): Uint8Array {
  return new FrameWriter().frame("X");
}
