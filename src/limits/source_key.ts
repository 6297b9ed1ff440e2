/**
 * The key a client address is counted under: an IPv4 address as it is (also when the runtime reports it
 * IPv4-mapped, `::ffff:10.1.2.3`), an IPv6 address by its first `ipv6Prefix` bits, since one IPv6 host
 * usually holds a whole /64 and could otherwise pick a fresh address for every connection.
 */
import { parseIp } from "../policy/cidr.ts";

export function sourceKey(hostname: string, ipv6Prefix: number): string {
  const bytes = parseIp(hostname);
  if (!bytes) return hostname;
  if (bytes.length === 4) return bytes.join(".");
  const masked = new Uint8Array(16);
  const full = ipv6Prefix >> 3;
  masked.set(bytes.subarray(0, full));
  const bits = ipv6Prefix & 7;
  if (bits > 0) masked[full] = bytes[full]! & (0xff << (8 - bits));
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((masked[i]! << 8) | masked[i + 1]!).toString(16));
  return `${groups.join(":")}/${ipv6Prefix}`;
}
