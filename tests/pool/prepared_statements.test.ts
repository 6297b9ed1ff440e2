import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ACTION, PreparedStatements } from "../../src/pool/prepared_statements.ts";
import { RequestQueue } from "../../src/pool/request_queue.ts";
import { ServerStatements } from "../../src/pool/server_statements.ts";
import { StatementRegistry } from "../../src/pool/statement_registry.ts";
import { encodeFrame } from "../../src/protocol/encode_frame.ts";
import { encodeErrorResponse } from "../../src/protocol/error_response.ts";
import { ProtocolError } from "../../src/protocol/protocol_error.ts";
import { concatBytes } from "../support/bytes.ts";
import { errorFields, parseBackendFrames } from "../support/backend_frames.ts";
import * as fe from "../support/frontend_frames.ts";
import { PreparedRelay } from "./prepared_relay.ts";

const text = new TextEncoder();
const c = (letter: string) => letter.charCodeAt(0);
/** Backend frames, built independently of the code under test. */
const be = {
  parseComplete: Uint8Array.of(c("1"), 0, 0, 0, 4),
  bindComplete: Uint8Array.of(c("2"), 0, 0, 0, 4),
  closeComplete: Uint8Array.of(c("3"), 0, 0, 0, 4),
  noData: Uint8Array.of(c("n"), 0, 0, 0, 4),
  ready: (status = "I") => Uint8Array.of(c("Z"), 0, 0, 0, 5, c(status)),
  complete: (tag: string) => encodeFrame(c("C"), text.encode(`${tag}\0`)),
  error: (code: string, message: string) => encodeErrorResponse({ severity: "ERROR", code: code as "08P01", message }),
};
const join = (...parts: Uint8Array[]) => concatBytes(parts);
/** Type letters of the frames in `bytes`. */
const types = (bytes: Uint8Array) => parseBackendFrames(bytes).map((m) => m.type).join("");

function setup(options: { capacity?: number; maxStatements?: number } = {}) {
  const registry = new StatementRegistry();
  const a = new ServerStatements(options.capacity);
  const b = new ServerStatements(options.capacity);
  const relay = new PreparedRelay(registry, options.maxStatements === undefined ? {} : { maxStatements: options.maxStatements });
  return { registry, a, b, relay };
}

const SQL = "SELECT $1::int + 1";

describe("PreparedStatements", () => {
  it("renames a named Parse and forwards its ParseComplete", () => {
    const { relay, a, registry } = setup();
    relay.attach(a);
    assert.deepEqual(relay.client(fe.parse("s1", SQL, [23]), fe.sync()), join(fe.parse("pgrelay_1", SQL, [23]), fe.sync()));
    assert.deepEqual(relay.server(join(be.parseComplete, be.ready())), join(be.parseComplete, be.ready()));
    assert.equal(relay.statements.statementId("s1"), 1);
    assert.deepEqual(a.ids(), [1]);
    assert.deepEqual([registry.hits, registry.misses], [0, 1]);
  });

  it("renames Bind and Describe; Execute and Sync pass as they are", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    assert.deepEqual(
      relay.client(fe.bind("p", "s1", ["41"]), fe.describe("S", "s1"), fe.describe("P", "p"), fe.execute("p"), fe.sync()),
      join(fe.bind("p", "pgrelay_1", ["41"]), fe.describe("S", "pgrelay_1"), fe.describe("P", "p"), fe.execute("p"), fe.sync()),
    );
  });

  it("prepares the statement first on a server that lacks it, and swallows that ParseComplete", () => {
    const { relay, a, b, registry } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    relay.detach();
    relay.attach(b); // the next transaction lands on another server
    assert.deepEqual(
      relay.client(fe.bind("", "s1", ["41"]), fe.execute(""), fe.sync()),
      join(fe.parse("pgrelay_1", SQL), fe.bind("", "pgrelay_1", ["41"]), fe.execute(""), fe.sync()),
    );
    const reply = relay.server(join(be.parseComplete, be.bindComplete, be.complete("SELECT 1"), be.ready()));
    assert.deepEqual(reply, join(be.bindComplete, be.complete("SELECT 1"), be.ready()));
    assert.deepEqual(b.ids(), [1]);
    assert.deepEqual([registry.hits, registry.misses], [0, 2]);
    assert.equal(relay.queue.releasable, true);
  });

  it("replays the Parse before a Describe of a statement the server lacks (Supavisor #1174)", () => {
    const { relay, a, b } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    relay.detach();
    relay.attach(b);
    assert.deepEqual(relay.client(fe.describe("S", "s1"), fe.sync()), join(fe.parse("pgrelay_1", SQL), fe.describe("S", "pgrelay_1"), fe.sync()));
    assert.deepEqual(relay.server(join(be.parseComplete, be.noData, be.ready())), join(be.noData, be.ready()));
  });

  it("answers ParseComplete itself, in order, when the server already has the statement", () => {
    const { relay, a, registry } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    // Another client on the same server prepares the same text under another name.
    const other = new PreparedRelay(registry);
    relay.detach();
    other.attach(a);
    assert.deepEqual(other.client(fe.bind("", "nope", []), fe.parse("mine", SQL), fe.bind("", "mine", ["1"]), fe.execute(""), fe.sync()),
      join(fe.bind("", "nope", []), fe.bind("", "pgrelay_1", ["1"]), fe.execute(""), fe.sync()));
    assert.deepEqual(other.takeClient(), new Uint8Array(0), "nothing yet: the first Bind is not answered");
    const reply = other.server(join(be.bindComplete, be.bindComplete, be.complete("SELECT 1"), be.ready()));
    assert.equal(types(reply), "212CZ", "ParseComplete comes between the two BindCompletes");
    assert.equal(other.statements.statementId("mine"), 1);
    assert.deepEqual([registry.hits, registry.misses], [2, 1]);
  });

  it("a duplicate name gets ERROR 42P05 and the rest up to Sync is dropped; the client stays usable (PgBouncer #1118)", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    const sent = relay.client(fe.parse("s1", "SELECT 2"), fe.bind("", "s1", ["1"]), fe.execute(""), fe.flush(), fe.sync());
    assert.deepEqual(sent, join(fe.flush(), fe.sync()), "only Flush and Sync reach the server");
    const error = relay.takeClient();
    assert.equal(types(error), "E");
    const fields = errorFields(parseBackendFrames(error)[0]!.body);
    assert.deepEqual([fields["S"], fields["V"], fields["C"], fields["M"]], ["ERROR", "ERROR", "42P05", 'prepared statement "s1" already exists']);
    assert.deepEqual(relay.server(be.ready()), be.ready());
    // The mapping is unchanged and the next request works.
    assert.deepEqual(relay.client(fe.bind("", "s1", ["1"]), fe.execute(""), fe.sync()), join(fe.bind("", "pgrelay_1", ["1"]), fe.execute(""), fe.sync()));
  });

  it("a duplicate name in a failed transaction gets 25P02, as PostgreSQL checks that first", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready("E")));
    relay.client(fe.parse("s1", SQL), fe.sync());
    assert.equal(errorFields(parseBackendFrames(relay.takeClient())[0]!.body)["C"], "25P02");
  });

  it("a Parse the server already has, answered once the transaction has failed, gets 25P02 and what follows to Sync is swallowed", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    // Pipelined: the failure is not known when the Parse is read.
    const sent = relay.client(fe.query("SELECT 1/0"), fe.parse("s2", SQL), fe.bind("", "s2", ["1"]), fe.execute(""), fe.sync(), fe.query("ROLLBACK"));
    assert.deepEqual(sent, join(fe.query("SELECT 1/0"), fe.bind("", "pgrelay_1", ["1"]), fe.execute(""), fe.sync(), fe.query("ROLLBACK")));
    const reply = relay.server(join(
      be.error("22012", "division by zero"),
      be.ready("E"),
      be.error("25P02", "current transaction is aborted"), // the server's answer to the Bind: swallowed
      be.ready("E"),
      be.complete("ROLLBACK"),
      be.ready("I"),
    ));
    const frames = parseBackendFrames(reply);
    assert.equal(frames.map((m) => m.type).join(""), "EZEZCZ");
    assert.deepEqual(frames.filter((m) => m.type === "E").map((m) => errorFields(m.body)["C"]), ["22012", "25P02"]);
    assert.equal(relay.statements.statementId("s2"), undefined, "the refused Parse maps nothing");
    assert.deepEqual(a.ids(), [1], "the server keeps the shared statement");
    assert.equal(relay.queue.releasable, true);
  });

  it("a Parse the server fails maps nothing: the name can be parsed again", () => {
    const { relay, a, registry } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", "SELEC 1"), fe.bind("", "s1", []), fe.sync());
    const reply = relay.server(join(be.error("42601", 'syntax error at or near "SELEC"'), be.ready()));
    assert.equal(types(reply), "EZ");
    assert.equal(relay.statements.statementId("s1"), undefined);
    assert.deepEqual(a.ids(), []);
    assert.equal(registry.size, 0, "the registry forgets a statement no client maps");
    assert.deepEqual(relay.client(fe.parse("s1", "SELECT 1"), fe.sync()), join(fe.parse("pgrelay_2", "SELECT 1"), fe.sync()));
  });

  it("a named Parse skipped after an earlier error maps nothing", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.bind("", "missing", []), fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.error("26000", 'prepared statement "missing" does not exist'), be.ready()));
    assert.equal(relay.statements.statementId("s1"), undefined);
    assert.deepEqual(a.ids(), []);
  });

  it("a local ParseComplete skipped after an earlier error is not sent and maps nothing", () => {
    const { relay, a, registry } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    relay.client(fe.bind("", "missing", []), fe.parse("s2", SQL), fe.sync());
    const reply = relay.server(join(be.error("26000", "does not exist"), be.ready()));
    assert.equal(types(reply), "EZ");
    assert.equal(relay.statements.statementId("s2"), undefined);
    assert.equal(registry.size, 1);
  });

  it("answers Close of a named statement itself; the name is free again and the server keeps the statement", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    assert.deepEqual(relay.client(fe.close("S", "s1"), fe.close("S", "never"), fe.parse("s1", "SELECT 2"), fe.sync()), join(fe.parse("pgrelay_2", "SELECT 2"), fe.sync()));
    assert.equal(types(relay.takeClient()), "33");
    assert.equal(types(relay.server(join(be.parseComplete, be.ready()))), "1Z");
    assert.equal(relay.statements.statementId("s1"), 2);
    assert.deepEqual(a.ids(), [1, 2]);
  });

  it("Close and Describe of portals pass unchanged", () => {
    const { relay, a } = setup();
    relay.attach(a);
    const input = join(fe.describe("P", "c1"), fe.close("P", "c1"), fe.sync());
    assert.deepEqual(relay.client(input), input);
  });

  it("keeps the unnamed statement unnamed and replays it on another server after a Sync (PgBouncer #1288)", () => {
    const { relay, a, b } = setup();
    relay.attach(a);
    const parse = fe.parse("", "SELECT $1::text", [25]);
    assert.deepEqual(relay.client(parse, fe.sync()), join(parse, fe.sync()), "unnamed frames pass untouched");
    relay.server(join(be.parseComplete, be.ready()));
    assert.deepEqual(relay.client(fe.bind("", "", ["x"]), fe.execute(""), fe.sync()), join(fe.bind("", "", ["x"]), fe.execute(""), fe.sync()), "same server: nothing added");
    relay.server(join(be.bindComplete, be.complete("SELECT 1"), be.ready()));
    relay.detach();
    relay.attach(b);
    assert.deepEqual(relay.client(fe.bind("", "", ["y"]), fe.execute(""), fe.sync()), join(parse, fe.bind("", "", ["y"]), fe.execute(""), fe.sync()));
    assert.equal(types(relay.server(join(be.parseComplete, be.bindComplete, be.complete("SELECT 1"), be.ready()))), "2CZ");
    // Back on server a, which another client's unnamed Parse has since overwritten:
    const other = new PreparedRelay(new StatementRegistry());
    relay.detach();
    other.attach(a);
    other.client(fe.parse("", "SELECT 'other'"), fe.sync());
    other.server(join(be.parseComplete, be.ready()));
    other.detach();
    relay.attach(a);
    assert.deepEqual(relay.client(fe.describe("S", ""), fe.sync()), join(parse, fe.describe("S", ""), fe.sync()));
  });

  it("a client without an unnamed statement gets the server's closed first, so the server answers 26000", () => {
    const { relay, a, b } = setup();
    const other = new PreparedRelay(new StatementRegistry());
    other.attach(b);
    other.client(fe.parse("", "SELECT 'other'"), fe.sync());
    other.server(join(be.parseComplete, be.ready()));
    other.detach();
    relay.attach(a);
    relay.client(fe.parse("", "SELECT 1"), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    relay.client(fe.query("SELECT 2")); // a simple Query drops the unnamed statement
    relay.server(join(be.complete("SELECT 1"), be.ready()));
    relay.detach();
    relay.attach(b);
    assert.deepEqual(relay.client(fe.bind("", "", []), fe.sync()), join(fe.close("S", ""), fe.bind("", "", []), fe.sync()));
    const reply = relay.server(join(be.closeComplete, be.error("26000", "unnamed prepared statement does not exist"), be.ready()));
    assert.equal(types(reply), "EZ");
  });

  it("evicts the least recently used statement with a Close whose CloseComplete is swallowed", () => {
    const { relay, a, registry } = setup({ capacity: 2 });
    relay.attach(a);
    relay.client(fe.parse("s1", "SELECT 1"), fe.parse("s2", "SELECT 2"), fe.sync());
    relay.server(join(be.parseComplete, be.parseComplete, be.ready()));
    relay.detach();
    relay.attach(a);
    relay.client(fe.bind("", "s1", []), fe.sync()); // s1 is now the most recently used
    relay.server(join(be.bindComplete, be.ready()));
    relay.detach();
    relay.attach(a);
    assert.deepEqual(relay.client(fe.parse("s3", "SELECT 3"), fe.sync()), join(fe.close("S", "pgrelay_2"), fe.parse("pgrelay_3", "SELECT 3"), fe.sync()));
    assert.equal(types(relay.server(join(be.closeComplete, be.parseComplete, be.ready()))), "1Z");
    assert.deepEqual(a.ids(), [1, 3]);
    assert.equal(registry.evictions, 1);
    // s2 is still the client's: using it prepares it again.
    assert.deepEqual(relay.client(fe.bind("", "s2", []), fe.sync()), join(fe.close("S", "pgrelay_1"), fe.parse("pgrelay_2", "SELECT 2"), fe.bind("", "pgrelay_2", []), fe.sync()));
    assert.equal(types(relay.server(join(be.closeComplete, be.parseComplete, be.bindComplete, be.ready()))), "2Z");
    assert.equal(registry.evictions, 2);
  });

  it("never evicts a statement used in the current transaction (its portals would close)", () => {
    const { relay, a } = setup({ capacity: 1 });
    relay.attach(a);
    assert.deepEqual(relay.client(fe.parse("s1", "SELECT 1"), fe.parse("s2", "SELECT 2"), fe.sync()), join(fe.parse("pgrelay_1", "SELECT 1"), fe.parse("pgrelay_2", "SELECT 2"), fe.sync()));
    relay.server(join(be.parseComplete, be.parseComplete, be.ready()));
    assert.equal(a.size, 2, "over the cap until a later transaction");
  });

  it("an eviction skipped after an error leaves the statement known to the server", () => {
    const { relay, a } = setup({ capacity: 1 });
    relay.attach(a);
    relay.client(fe.parse("s1", "SELECT 1"), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    relay.detach();
    relay.attach(a);
    relay.client(fe.bind("", "missing", []), fe.parse("s2", "SELECT 2"), fe.sync());
    relay.server(join(be.error("26000", "missing"), be.ready()));
    assert.deepEqual(a.ids(), [1]);
  });

  it("DEALLOCATE name of a protocol statement is answered by pgrelay; the name is gone", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    assert.deepEqual(relay.client(fe.query("deallocate   S1 ;")), new Uint8Array(0));
    assert.deepEqual(relay.takeClient(), join(be.complete("DEALLOCATE"), be.ready()));
    assert.equal(relay.statements.statementId("s1"), undefined);
    assert.deepEqual(relay.client(fe.bind("", "s1", [])), fe.bind("", "s1", []), "unknown names pass: the server answers 26000");
    // An SQL-level statement's DEALLOCATE goes to the server.
    assert.deepEqual(relay.client(fe.sync(), fe.query("DEALLOCATE sql_level")), join(fe.sync(), fe.query("DEALLOCATE sql_level")));
  });

  it("a pipelined DEALLOCATE ALL keeps the mappings made after it (PgBouncer #1535)", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("old", "SELECT 0"), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    const sent = relay.client(fe.query("DEALLOCATE ALL"), fe.parse("old", "SELECT 0"), fe.parse("new", "SELECT 1"), fe.sync());
    // The server drops its statements too, so both Parses go to it.
    assert.deepEqual(sent, join(fe.query("DEALLOCATE ALL"), fe.parse("pgrelay_1", "SELECT 0"), fe.parse("pgrelay_2", "SELECT 1"), fe.sync()));
    relay.server(join(be.complete("DEALLOCATE ALL"), be.ready(), be.parseComplete, be.parseComplete, be.ready()));
    assert.equal(relay.statements.statementId("old"), 1);
    assert.equal(relay.statements.statementId("new"), 2);
    assert.deepEqual(a.ids(), [1, 2]);
  });

  it("DISCARD ALL that fails (in a transaction block) restores the mappings and the server's list", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready("T")));
    relay.client(fe.query("/* reset */ DISCARD ALL"));
    assert.equal(relay.statements.statementId("s1"), undefined);
    relay.server(join(be.error("25001", "DISCARD ALL cannot run inside a transaction block"), be.ready("E")));
    assert.equal(relay.statements.statementId("s1"), 1);
    assert.deepEqual(a.ids(), [1]);
  });

  it("a session may hold at most maxStatements names (53400)", () => {
    const { relay, a } = setup({ maxStatements: 1 });
    relay.attach(a);
    relay.client(fe.parse("s1", "SELECT 1"), fe.parse("s2", "SELECT 2"), fe.sync());
    const reply = relay.server(join(be.parseComplete, be.ready()));
    assert.equal(types(reply), "1EZ");
    assert.equal(errorFields(parseBackendFrames(reply)[1]!.body)["C"], "53400");
  });

  it("renames a Bind given only its head, for the relay to stream the rest", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    const frame = fe.bind("", "s1", ["x".repeat(100_000)]);
    const body = frame.subarray(5);
    assert.equal(relay.statements.frontend(c("B"), body.subarray(0, 16), body.length), 2 /* REPLACE_HEAD */);
    assert.equal(relay.statements.replacedBodyBytes, 4);
    const head = relay.client();
    assert.deepEqual(join(head, body.subarray(4)), fe.bind("", "pgrelay_1", ["x".repeat(100_000)]));
  });

  it("refuses malformed frames with ProtocolError", () => {
    const { relay, a } = setup();
    relay.attach(a);
    assert.throws(() => relay.statements.frontend(c("P"), Uint8Array.of(0x61)), ProtocolError);
    assert.throws(() => relay.statements.frontend(c("D"), Uint8Array.of(0x51, 0)), ProtocolError);
  });

  it("frames without a statement name are forwarded as they are, with nothing sent in their stead", () => {
    const registry = new StatementRegistry();
    const queue = new RequestQueue();
    let sends = 0;
    const ps = new PreparedStatements({ registry, queue, send: () => sends++ });
    ps.attach(new ServerStatements());
    const frames = [fe.parse("", "SELECT 1"), fe.bind("", "", []), fe.describe("P", ""), fe.execute(""), fe.close("P", "c"), fe.flush(), fe.sync(), fe.query("SELECT 1")];
    for (const frame of frames) assert.equal(ps.frontend(frame[0]!, frame.subarray(5)), ACTION.FORWARD, String.fromCharCode(frame[0]!));
    assert.equal(sends, 0);
    assert.equal(queue.outstanding, 7, "each request is tracked (Flush expects nothing)");
  });

  it("WAITs on a re-Parse of a name whose Parse before a Sync is unanswered, then decides by its answer", () => {
    const { relay, a } = setup();
    relay.attach(a);
    // The first Parse fails; PostgreSQL would then accept the second one.
    assert.deepEqual(relay.client(fe.parse("s5", "SELEC 5"), fe.sync(), fe.parse("s5", "SELECT 5"), fe.sync()), join(fe.parse("pgrelay_1", "SELEC 5"), fe.sync()));
    assert.equal(relay.waiting, true);
    relay.server(join(be.error("42601", "syntax error"), be.ready()));
    assert.deepEqual(relay.client(), join(fe.parse("pgrelay_2", "SELECT 5"), fe.sync()));
    assert.equal(types(relay.server(join(be.parseComplete, be.ready()))), "1Z");
    // The first succeeds: the second is a duplicate.
    relay.client(fe.parse("s6", "SELECT 6"), fe.sync(), fe.parse("s6", "SELECT 66"), fe.sync());
    assert.equal(relay.waiting, true);
    relay.server(join(be.parseComplete, be.ready()));
    assert.deepEqual(relay.client(), fe.sync());
    assert.equal(types(relay.takeClient()), "E");
    // Without a Sync between, no wait: a failed first Parse makes the server skip the second anyway.
    relay.server(be.ready());
    relay.client(fe.parse("s7", "SELEC 7"), fe.parse("s7", "SELECT 7"), fe.sync());
    assert.equal(relay.waiting, false);
    assert.equal(types(relay.server(join(be.error("42601", "syntax error"), be.ready()))), "EZ", "the local 42P05 is skipped");
  });

  it("a DEALLOCATE pgrelay answers leaves the server's unnamed statement known", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.parse("", "SELECT 1"), fe.sync());
    relay.server(join(be.parseComplete, be.parseComplete, be.ready()));
    relay.client(fe.query("DEALLOCATE s1"));
    relay.takeClient();
    assert.equal(a.unnamedOwner === null, false, "the server never got the Query");
    // The client's unnamed statement is gone (PostgreSQL drops it at any simple Query): Close it on the server.
    assert.deepEqual(relay.client(fe.bind("", "", []), fe.sync()), join(fe.close("S", ""), fe.bind("", "", []), fe.sync()));
  });

  it("a Query longer than what was captured is never taken for DEALLOCATE", () => {
    const { relay, a } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", SQL), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    const frame = fe.query(`DEALLOCATE s1${" ".repeat(100)}; SELECT 1`);
    assert.equal(relay.statements.frontend(c("Q"), frame.subarray(5, 5 + 20), frame.length - 5), 0 /* FORWARD */);
    assert.equal(relay.statements.statementId("s1"), 1);
  });

  it("dispose() releases the client's statements from the registry", () => {
    const { relay, a, registry } = setup();
    relay.attach(a);
    relay.client(fe.parse("s1", "SELECT 1"), fe.sync());
    relay.server(join(be.parseComplete, be.ready()));
    assert.equal(registry.size, 1);
    relay.statements.dispose();
    assert.equal(registry.size, 0);
  });
});
