import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProtocolError } from "../../src/protocol/protocol_error.ts";
import {
  optionSettings,
  parseBool,
  replicationMode,
  splitOptions,
  startupFacts,
} from "../../src/protocol/startup_facts.ts";

const facts = (parameters: Record<string, string> | Array<[string, string]>) =>
  startupFacts(Array.isArray(parameters) ? parameters : Object.entries(parameters));

const refuses = (fn: () => unknown, sqlstate: string, message: RegExp) =>
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, String(error));
    assert.equal(error.sqlstate, sqlstate);
    assert.match(error.message, message);
    return true;
  });

describe("startupFacts()", () => {
  it("an absent or empty database is the user's name, as the server reads it", () => {
    assert.equal(facts({ user: "app" }).database, "app");
    assert.equal(facts({ user: "app", database: "" }).database, "app");
    assert.equal(facts({ user: "app", database: "other" }).database, "other");
  });

  it("cuts user and database to 63 bytes, never inside a character", () => {
    const name63 = "d".repeat(63);
    assert.equal(facts({ user: "u", database: name63 + "zzz" }).database, name63);
    assert.equal(facts({ user: name63 + "x" }).user, name63);
    assert.equal(facts({ user: "u", database: "é".repeat(40) }).database, "é".repeat(31), "62 bytes");
    assert.equal(facts({ user: "u", database: "e".repeat(62) + "é" }).database, "e".repeat(62));
    assert.equal(facts({ user: "u", database: "😀".repeat(20) }).database, "😀".repeat(15), "60 bytes");
  });

  it("refuses a startup without a user, as the server does (28000)", () => {
    refuses(() => facts({ database: "app" }), "28000", /no PostgreSQL user name specified in startup packet/);
    refuses(() => facts({ user: "" }), "28000", /no PostgreSQL user name/);
  });

  it("application_name: 63 bytes on a character boundary, then ? for each byte outside printable ASCII", () => {
    assert.equal(facts({ user: "u", application_name: "a".repeat(70) }).applicationName, "a".repeat(63));
    assert.equal(
      facts({ user: "u", application_name: "a".repeat(62) + "é" }).applicationName,
      "a".repeat(62),
    );
    assert.equal(
      facts({ user: "u", application_name: "a".repeat(62) + "\tb" }).applicationName,
      "a".repeat(62) + "?",
    );
    assert.equal(facts({ user: "u", application_name: "x\u00e9\ty" }).applicationName, "x???y");
    assert.equal(facts({ user: "u" }).applicationName, "");
  });

  it("options set application_name unless a startup parameter sets it, which wins (process_startup_options)", () => {
    assert.equal(facts({ user: "u", options: "-c application_name=evil1" }).applicationName, "evil1");
    assert.equal(facts({ user: "u", options: "--application_name=evil2" }).applicationName, "evil2");
    assert.equal(facts({ user: "u", options: "--application-name=dash" }).applicationName, "dash");
    assert.equal(facts({ user: "u", options: "-capplication_name=attached" }).applicationName, "attached");
    assert.equal(facts({ user: "u", options: "-c Application_Name=upper" }).applicationName, "upper");
    assert.equal(facts({ user: "u", options: "-c application_name=a\\ b" }).applicationName, "a b");
    assert.equal(
      facts({ user: "u", options: "-c application_name=one -c application_name=two" }).applicationName,
      "two",
    );
    assert.equal(facts({ user: "u", options: "-F -e -c application_name=x" }).applicationName, "x");
    assert.equal(
      facts({ user: "u", options: "-Fc application_name=clustered" }).applicationName,
      "clustered",
    );
    assert.equal(
      facts({ user: "u", options: "-c application_name=fromopt", application_name: "frompkt" })
        .applicationName,
      "frompkt",
    );
    assert.equal(
      facts([["user", "u"], ["application_name", "web"], ["options", "-c application_name=evil"]])
        .applicationName,
      "web",
      "the packet's own parameter wins wherever options stands",
    );
  });

  it("setting names in the packet are case-insensitive and the last one wins", () => {
    assert.equal(
      facts([["user", "u"], ["application_name", "web"], ["APPLICATION_NAME", "evil"]]).applicationName,
      "evil",
    );
    assert.equal(
      facts([["user", "u"], ["APPLICATION_NAME", "evil"], ["application_name", "web"]]).applicationName,
      "web",
    );
    assert.equal(
      facts([["user", "u"], ["options", "-c application_name=x"], ["Application_Name", "y"]]).applicationName,
      "y",
    );
    assert.deepEqual(
      [...facts({ user: "u", options: "-c work_mem=4MB --statement-timeout=5s", DateStyle: "ISO" }).settings],
      [["work_mem", "4MB"], ["statement_timeout", "5s"], ["datestyle", "ISO"]],
    );
  });

  it("refuses options the server cannot read, with the server's message", () => {
    refuses(
      () => facts({ user: "u", options: "application_name=x" }),
      "42601",
      /invalid command-line argument for server process: application_name=x/,
    );
    refuses(() => facts({ user: "u", options: "-c" }), "42601", /invalid command-line argument/);
    refuses(
      () => facts({ user: "u", options: "-c application_name" }),
      "42601",
      /-c application_name requires a value/,
    );
    refuses(
      () => facts({ user: "u", options: "--application_name" }),
      "42601",
      /--application_name requires a value/,
    );
    refuses(() => facts({ user: "u", options: "-X" }), "42601", /invalid command-line argument/);
    refuses(
      () => facts({ user: "u", options: "-- -c application_name=x" }),
      "42601",
      /invalid command-line argument/,
    );
    assert.equal(facts({ user: "u", options: "  " }).applicationName, "");
  });

  it("replication: true/on/yes/1 and prefixes are physical, database is logical, false values are not", () => {
    for (const value of ["true", "TRU", "t", "on", "ON", "yes", "y", "1"]) {
      assert.equal(facts({ user: "u", database: "x", replication: value }).replication, "true", value);
    }
    for (const value of ["false", "f", "off", "of", "no", "n", "0"]) {
      assert.equal(facts({ user: "u", replication: value }).replication, "false", value);
    }
    assert.equal(facts({ user: "u" }).replication, "false");
    assert.equal(facts({ user: "u", database: "x", replication: "database" }).replication, "database");
    assert.equal(facts({ user: "u", database: "x", replication: "database" }).database, "x");
    assert.equal(
      facts({ user: "u", database: "x", replication: "true" }).database,
      "",
      "physical: no database",
    );
    for (const value of ["", "o", "Database", "2", "truex"]) {
      refuses(() => replicationMode(value), "22023", /invalid value for parameter "replication"/);
    }
    assert.equal(parseBool("of"), false);
    assert.equal(parseBool("o"), undefined);
  });

  it("splitOptions() splits on white space and honours backslash escapes (pg_split_opts)", () => {
    assert.deepEqual(splitOptions(" -c  a=b\t-c c=d\\ e \\\\x "), ["-c", "a=b", "-c", "c=d e", "\\x"]);
    assert.deepEqual(optionSettings("-c a=b=c"), [["a", "b=c"]]);
    assert.deepEqual(optionSettings("-S 4MB -c x.y=1"), [["x.y", "1"]]);
  });
});
