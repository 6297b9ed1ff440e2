/**
 * Reading the `attr=value,attr=value` lists SCRAM messages are made of (RFC 5802 §5.1, §7).
 * https://www.rfc-editor.org/rfc/rfc5802#section-5.1
 */

/** One attribute: a single ASCII letter and its (possibly empty) value. */
export interface ScramAttribute {
  name: string;
  value: string;
}

/**
 * Splits a message into attributes in order; undefined when a part is not `letter=value`. SCRAM values
 * never contain ',' (user names escape it as `=2C`), so splitting on ',' is exact.
 */
export function splitAttributes(message: string): ScramAttribute[] | undefined {
  const attributes: ScramAttribute[] = [];
  for (const part of message.split(",")) {
    if (part.length < 2 || part[1] !== "=" || !/^[A-Za-z]$/.test(part[0]!)) return undefined;
    attributes.push({ name: part[0]!, value: part.slice(2) });
  }
  return attributes;
}

/** RFC 5802 `printable`: %x21-2B / %x2D-7E (visible ASCII except ','), at least one character. */
export function isPrintableNonce(value: string): boolean {
  return /^[\x21-\x2B\x2D-\x7E]+$/.test(value);
}
