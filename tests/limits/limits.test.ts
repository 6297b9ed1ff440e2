import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SettingError } from "../../src/config/config_error.ts";
import { DEFAULT_CANCEL_RATE, parseBandwidth, parseLimits } from "../../src/limits/limits_schema.ts";
import { sourceKey } from "../../src/limits/source_key.ts";
import { StartupLimiter } from "../../src/limits/startup_limiter.ts";
import { TokenBuckets } from "../../src/limits/token_buckets.ts";

describe("limits", () => {
  it("parseLimits() reads the documented example", () => {
    const limits = parseLimits({
      max_connections: 1000,
      per_user: 100,
      per_database: 200,
      per_source: 50,
      connect_rate: { per_source: 20, burst: 40 },
      bandwidth_per_session: "10MB/s",
      startup: { max_connections: 500, per_source: 20, ipv6_prefix: 56 },
    });
    assert.deepEqual(limits, {
      maxConnections: 1000,
      perUser: 100,
      perDatabase: 200,
      perSource: 50,
      connectRate: { perSource: 20, burst: 40 },
      cancelRate: undefined,
      bandwidthPerSession: 10_000_000,
      startup: { maxConnections: 500, perSource: 20, ipv6Prefix: 56 },
    });
    assert.equal(parseLimits({ startup: { per_source: 5 } }).startup?.ipv6Prefix, 64, "IPv6 sources are /64 by default");
    assert.equal(
      parseLimits({ connect_rate: { per_source: 5 } }).connectRate?.burst,
      5,
      "burst defaults to the rate",
    );
  });

  it("parseLimits() names a bad key", () => {
    const pathOf = (raw: unknown) => {
      try {
        parseLimits(raw);
      } catch (error) {
        assert.ok(error instanceof SettingError);
        return error.path.join(".");
      }
      return "";
    };
    assert.equal(pathOf({ per_user: -1 }), "per_user");
    assert.equal(pathOf({ per_user: 1.5 }), "per_user");
    assert.equal(pathOf({ connect_rate: { per_source: 0 } }), "connect_rate.per_source");
    assert.equal(pathOf({ connect_rate: { rate: 1 } }), "connect_rate.rate");
    assert.equal(pathOf({ bandwidth_per_session: "fast" }), "bandwidth_per_session");
    assert.equal(pathOf({ max_conn: 3 }), "max_conn");
    assert.equal(pathOf({ startup: { per_source: 0 } }), "startup.per_source");
    assert.equal(pathOf({ startup: { max_connections: "many" } }), "startup.max_connections");
    assert.equal(pathOf({ startup: { per_source: 5, ipv6_prefix: 129 } }), "startup.ipv6_prefix");
    assert.equal(pathOf({ startup: { per_source: 5, ipv6_prefix: 0 } }), "startup.ipv6_prefix");
    assert.equal(pathOf({ startup: { per_client: 5 } }), "startup.per_client");
    assert.equal(pathOf({ startup: 20 }), "startup");
    assert.equal(pathOf({ startup: { ipv6_prefix: 48 } }), "startup");
  });

  it("parseLimits() explains a bad startup limit", () => {
    assert.throws(() => parseLimits({ startup: { per_source: 5, ipv6_prefix: 200 } }), /expected a prefix length from 1 to 128, got 200/);
    assert.throws(() => parseLimits({ startup: { ipv6_prefix: 48 } }), /expected max_connections or per_source/);
    assert.throws(() => parseLimits({ startup: { per_client: 1 } }), /unknown key \(known keys: max_connections, per_source, ipv6_prefix\)/);
    assert.throws(() => parseLimits({ startup: { max_connections: 0 } }), /expected a whole number of at least 1, got 0/);
  });

  it("sourceKey() keys IPv6 clients by their /64 (or the configured prefix) and IPv4 by address", () => {
    assert.equal(sourceKey("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2:0:0:0:0/64");
    assert.equal(sourceKey("2001:db8:1:2:ffff:ffff:ffff:fffe", 64), "2001:db8:1:2:0:0:0:0/64", "the same /64");
    assert.notEqual(sourceKey("2001:db8:1:3::1", 64), sourceKey("2001:db8:1:2::1", 64), "the next /64 is another source");
    assert.equal(sourceKey("2001:db8:1:3::1", 48), sourceKey("2001:db8:1:2::1", 48), "one /48 with prefix 48");
    assert.equal(sourceKey("2001:db8:1:ff::1", 52), "2001:db8:1:0:0:0:0:0/52", "a prefix inside a byte");
    assert.equal(sourceKey("2001:db8:1:1000::1", 52), "2001:db8:1:1000:0:0:0:0/52");
    assert.equal(sourceKey("2001:db8::1", 128), "2001:db8:0:0:0:0:0:1/128");
    assert.equal(sourceKey("10.1.2.3", 64), "10.1.2.3");
    assert.equal(sourceKey("::ffff:10.1.2.3", 64), "10.1.2.3", "IPv4-mapped is the IPv4 client");
  });

  it("StartupLimiter caps connections in their startup phase overall and per source, released once each", () => {
    const limiter = new StartupLimiter(parseLimits({ startup: { max_connections: 4, per_source: 2 } }));
    const a1 = limiter.enter("2001:db8:1:2::1");
    const a2 = limiter.enter("2001:db8:1:2::99"); // the same /64
    const a3 = limiter.enter("2001:db8:1:2::7");
    assert.ok(a1.allowed && a2.allowed);
    assert.ok(!a3.allowed);
    assert.equal(a3.rule, "startup.per_source");
    assert.equal(a3.error.code, "53300");
    assert.match(a3.error.message, /from 2001:db8:1:2:0:0:0:0\/64: pgrelay allows 2 \(limits\.startup\.per_source\)/);
    const b1 = limiter.enter("10.0.0.1");
    const b2 = limiter.enter("10.0.0.2");
    const b3 = limiter.enter("10.0.0.3");
    assert.ok(b1.allowed && b2.allowed);
    assert.ok(!b3.allowed);
    assert.equal(b3.rule, "startup.max_connections");
    assert.equal(limiter.inStartup, 4);
    a1.release();
    a1.release(); // a second release changes nothing
    assert.equal(limiter.inStartup, 3);
    assert.ok(limiter.enter("2001:db8:1:2::8").allowed, "a slot of that /64 is free again");
    for (const ticket of [a2, b1, b2]) ticket.release();
    assert.equal(limiter.inStartup, 1);
    limiter.configure(parseLimits({}));
    assert.ok(limiter.enter("10.0.0.1").allowed, "no startup limit after a reload without one");
  });

  it("parseLimits() reads cancel_rate and says precisely what is wrong with it", () => {
    assert.deepEqual(parseLimits({ cancel_rate: { per_source: 5, burst: 8 } }).cancelRate, { perSource: 5, burst: 8 });
    assert.deepEqual(parseLimits({ cancel_rate: { per_source: 5 } }).cancelRate, { perSource: 5, burst: 5 });
    assert.equal(parseLimits({}).cancelRate, undefined, "unset: the gate applies DEFAULT_CANCEL_RATE");
    assert.deepEqual(DEFAULT_CANCEL_RATE, { perSource: 10, burst: 20 });
    const failure = (raw: unknown) => {
      try {
        parseLimits({ cancel_rate: raw });
      } catch (error) {
        assert.ok(error instanceof SettingError);
        return `${error.path.join(".")}: ${error.message}`;
      }
      return "accepted";
    };
    assert.match(failure(10), /^cancel_rate: expected a mapping such as \{ per_source: 10, burst: 20 \}, got 10/);
    assert.match(failure({ burst: 3 }), /^cancel_rate\.per_source: missing: expected a mapping such as/);
    assert.match(failure({ per_source: 0 }), /^cancel_rate\.per_source: expected a whole number of at least 1, got 0/);
    assert.match(failure({ per_source: 2, burst: 1.5 }), /^cancel_rate\.burst: expected a whole number of at least 1, got 1\.5/);
    assert.match(failure({ per_source: 2, rate: 1 }), /^cancel_rate\.rate: unknown key \(known keys: per_source, burst\)/);
  });

  it("parseBandwidth() takes sizes per second", () => {
    assert.equal(parseBandwidth("10MB/s"), 10_000_000);
    assert.equal(parseBandwidth("512KiB/s"), 524_288);
    assert.equal(parseBandwidth(65536), 65536);
    assert.throws(() => parseBandwidth("10 parsecs"), /expected a rate/);
    assert.throws(() => parseBandwidth(100), /at least 1KiB/);
  });

  it("TokenBuckets allows a burst, then the rate, per key", () => {
    let now = 0;
    const buckets = new TokenBuckets(() => now);
    const take = (key = "a") => buckets.take(key, 2, 3);
    assert.deepEqual([take(), take(), take(), take()], [true, true, true, false], "burst of 3");
    assert.equal(take("b"), true, "another source has its own bucket");
    now += 499;
    assert.equal(take(), false, "0.998 tokens after 499 ms at 2/s");
    now += 1;
    assert.equal(take(), true, "one token after 500 ms");
    assert.equal(take(), false);
    now += 10_000;
    assert.deepEqual(
      [take(), take(), take(), take()],
      [true, true, true, false],
      "refills to the burst, not beyond",
    );
  });
});
