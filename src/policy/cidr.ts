/**
 * IP addresses and CIDR blocks, IPv4 and IPv6, as bytes. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`,
 * which some runtimes report for IPv4 clients on a dual-stack socket) is treated as the IPv4 address.
 */

export interface Cidr {
  readonly text: string;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Parses an IPv4 or IPv6 address into 4 or 16 bytes; undefined when it is neither. */
export function parseIp(text: string): Uint8Array | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const address = bare.includes("%") ? bare.slice(0, bare.indexOf("%")) : bare; // zone id
  if (!address.includes(":")) return parseIpv4(address);
  const v6 = parseIpv6(address);
  if (v6 && isV4Mapped(v6)) return v6.slice(12);
  return v6;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  let head = text;
  let tailV4: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tailV4 = parseIpv4(text.slice(lastColon + 1));
    if (!tailV4) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0"; // placeholder groups, replaced below
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string) => part === "" ? [] : part.split(":");
  const left = groupsOf(halves[0]!);
  const right = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...right];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const group = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 255;
  }
  if (tailV4) bytes.set(tailV4, 12);
  return bytes;
}

function isV4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 255 && bytes[11] === 255;
}

/** "10.0.0.0/8", "2001:db8::/32", or a single address (a /32 or /128). Throws RangeError when malformed. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addressText.trim());
  if (!bytes) {
    throw new RangeError(
      `expected an IP address or CIDR block such as "10.0.0.0/8" or "2001:db8::/32", got "${text}"`,
    );
  }
  const max = bytes.length * 8;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1).trim();
  let prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  // A mapped IPv6 block such as ::ffff:10.0.0.0/104 becomes the IPv4 block 10.0.0.0/8.
  if (slash >= 0 && bytes.length === 4 && addressText.includes(":")) prefix -= 96;
  if (!(prefix >= 0 && prefix <= max)) throw new RangeError(`prefix length must be 0 to ${max} in "${text}"`);
  return { text, bytes, prefix };
}

/** True when `address` (4 or 16 bytes) lies in the block. IPv4 never matches an IPv6 block, nor the reverse. */
export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  if (address.length !== cidr.bytes.length) return false;
  const full = cidr.prefix >> 3;
  for (let i = 0; i < full; i++) if (address[i] !== cidr.bytes[i]) return false;
  const bits = cidr.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((address[full]! ^ cidr.bytes[full]!) & mask) === 0;
}
