import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OUTCOME, type Outcome, REQUEST, RequestQueue, VERDICT } from "../../src/pool/request_queue.ts";
import { ProtocolError } from "../../src/protocol/protocol_error.ts";

const code = (letter: string) => letter.charCodeAt(0);
const ready = (status: string) => Uint8Array.of(code(status));

/** Feeds client letters, then server letters (`Z` takes its status from `statuses`, default I). */
function run(queue: RequestQueue, frontend: string, backend = "", statuses = ""): void {
  for (const letter of frontend) queue.frontend(code(letter));
  let z = 0;
  for (const letter of backend) queue.backend(code(letter), letter === "Z" ? ready(statuses[z++] ?? "I") : undefined);
}

function settledLog(queue: RequestQueue): Array<[number, number, Outcome]> {
  const log: Array<[number, number, Outcome]> = [];
  queue.listener = { settled: (kind, tag, outcome) => log.push([kind, tag, outcome]) };
  return log;
}

describe("RequestQueue", () => {
  it("is releasable at the start and after a simple query's ReadyForQuery I, not before", () => {
    const q = new RequestQueue();
    assert.equal(q.releasable, true);
    run(q, "Q", "TDC");
    assert.equal(q.releasable, false);
    assert.equal(q.outstanding, 1);
    run(q, "", "Z");
    assert.equal(q.releasable, true);
    assert.equal(q.outstanding, 0);
  });

  it("is not releasable at ReadyForQuery T or E", () => {
    const q = new RequestQueue();
    run(q, "Q", "CZ", "T");
    assert.equal(q.releasable, false);
    assert.equal(q.transactionStatus, code("T"));
    run(q, "Q", "EZ", "E");
    assert.equal(q.releasable, false);
    run(q, "Q", "CZ", "I");
    assert.equal(q.releasable, true);
  });

  it("pairs pipelined extended requests with their replies, many Syncs outstanding", () => {
    const q = new RequestQueue();
    // Parse Bind Describe Execute Sync, twice, then Bind Execute Sync
    run(q, "PBDESPBDESBES");
    assert.equal(q.outstanding, 13);
    run(q, "", "12TDDCZ"); // first batch; the Z answers the first Sync only
    assert.equal(q.outstanding, 8);
    assert.equal(q.releasable, false);
    run(q, "", "12nCZ2sZ"); // Describe answered by NoData; Execute by PortalSuspended
    assert.equal(q.outstanding, 0);
    assert.equal(q.releasable, true);
  });

  it("Describe of a statement ends at RowDescription or NoData, not at ParameterDescription", () => {
    const q = new RequestQueue();
    run(q, "DS", "t");
    assert.equal(q.outstanding, 2);
    run(q, "", "T");
    assert.equal(q.outstanding, 1);
    run(q, "", "Z");
    assert.equal(q.releasable, true);
  });

  it("Flush, CopyData and Terminate expect nothing", () => {
    const q = new RequestQueue();
    run(q, "HdX");
    assert.equal(q.outstanding, 0);
    assert.equal(q.releasable, true);
  });

  it("an extended error drops the rest up to the Sync, settling them SKIPPED", () => {
    const q = new RequestQueue();
    const log = settledLog(q);
    q.enqueue(REQUEST.PARSE, 1);
    q.enqueue(REQUEST.BIND, 2);
    q.enqueue(REQUEST.EXECUTE, 3);
    q.enqueue(REQUEST.SYNC, 4);
    q.enqueue(REQUEST.PARSE, 5);
    q.enqueue(REQUEST.SYNC, 6);
    run(q, "", "1E");
    assert.deepEqual(log, [[REQUEST.PARSE, 1, OUTCOME.OK], [REQUEST.BIND, 2, OUTCOME.FAILED], [REQUEST.EXECUTE, 3, OUTCOME.SKIPPED]]);
    assert.equal(q.outstanding, 3);
    run(q, "", "Z1Z");
    assert.deepEqual(log.slice(3), [[REQUEST.SYNC, 4, OUTCOME.OK], [REQUEST.PARSE, 5, OUTCOME.OK], [REQUEST.SYNC, 6, OUTCOME.OK]]);
    assert.equal(q.releasable, true);
  });

  it("after an extended error with no Sync sent yet, ignores the client's messages until its Sync", () => {
    const q = new RequestQueue();
    run(q, "PB", "E");
    assert.equal(q.skipping, true);
    assert.equal(q.releasable, false, "the server waits for a Sync");
    assert.equal(q.frontend(code("E")), false, "the server ignores it");
    assert.equal(q.frontend(code("Q")), false, "even a simple Query is ignored until Sync");
    assert.equal(q.outstanding, 0);
    assert.equal(q.frontend(code("S")), true);
    assert.equal(q.skipping, false);
    run(q, "", "Z");
    assert.equal(q.releasable, true);
  });

  it("a simple Query pipelined behind a failing extended request is skipped", () => {
    const q = new RequestQueue();
    run(q, "PQS", "EZ");
    assert.equal(q.outstanding, 0);
    assert.equal(q.releasable, true);
  });

  it("an error in a simple Query or at Sync does not skip: ReadyForQuery follows", () => {
    const q = new RequestQueue();
    const log = settledLog(q);
    q.enqueue(REQUEST.QUERY, 7);
    q.enqueue(REQUEST.SYNC, 8);
    run(q, "", "EZEZ");
    assert.deepEqual(log, [[REQUEST.QUERY, 7, OUTCOME.FAILED], [REQUEST.SYNC, 8, OUTCOME.FAILED]]);
    assert.equal(q.skipping, false);
  });

  it("FunctionCall ends at its ReadyForQuery", () => {
    const q = new RequestQueue();
    run(q, "F", "V");
    assert.equal(q.outstanding, 1);
    run(q, "", "Z");
    assert.equal(q.releasable, true);
  });

  it("COPY FROM STDIN in a simple Query: not releasable until CopyDone and ReadyForQuery", () => {
    const q = new RequestQueue();
    run(q, "Q", "G");
    assert.equal(q.inCopy, true);
    run(q, "ddc", "C");
    assert.equal(q.releasable, false);
    run(q, "", "Z");
    assert.equal(q.releasable, true);
  });

  it("COPY FROM STDIN failed by the client (CopyFail)", () => {
    const q = new RequestQueue();
    run(q, "Q", "G");
    run(q, "df", "EZ");
    assert.equal(q.releasable, true);
  });

  it("COPY FROM STDIN by Execute: the Sync pipelined behind it and Syncs sent while copying get no ReadyForQuery", () => {
    // libpq: Parse Bind Describe Execute Sync, then (after CopyInResponse) CopyData CopyDone Sync
    const q = new RequestQueue();
    run(q, "PBDES", "12nG");
    assert.equal(q.frontend(code("S")), false, "a Sync while copying in is ignored by the server");
    run(q, "dcS", "C");
    assert.equal(q.outstanding, 1, "only the Sync after CopyDone is outstanding");
    run(q, "", "Z");
    assert.equal(q.releasable, true);
  });

  it("COPY FROM STDIN by Execute failing mid-copy: the server skips to the Sync after CopyFail", () => {
    const q = new RequestQueue();
    run(q, "PBES", "12G");
    run(q, "d", "E");
    assert.equal(q.outstanding, 0);
    assert.equal(q.skipping, true);
    run(q, "dfS", "Z");
    assert.equal(q.releasable, true);
  });

  it("COPY TO STDOUT by Execute ends at CommandComplete", () => {
    const q = new RequestQueue();
    run(q, "PBES", "12HddcC");
    assert.equal(q.outstanding, 1);
    run(q, "", "Z");
    assert.equal(q.releasable, true);
  });

  it("CopyBoth (replication) is never releasable", () => {
    const q = new RequestQueue();
    run(q, "Q", "Wdd");
    assert.equal(q.releasable, false);
    assert.equal(q.inCopy, true);
  });

  it("swallows the replies to pgrelay's own Parse and Close, forwards the client's", () => {
    const q = new RequestQueue();
    q.enqueue(REQUEST.OWN_CLOSE);
    q.enqueue(REQUEST.OWN_PARSE);
    q.enqueue(REQUEST.PARSE);
    q.enqueue(REQUEST.CLOSE);
    assert.equal(q.backend(code("3")), VERDICT.SWALLOW);
    assert.equal(q.backend(code("1")), VERDICT.SWALLOW);
    assert.equal(q.backend(code("1")), VERDICT.FORWARD);
    assert.equal(q.backend(code("3")), VERDICT.FORWARD);
  });

  it("an error answering pgrelay's own Parse reaches the client and skips to the Sync", () => {
    const q = new RequestQueue();
    q.enqueue(REQUEST.OWN_PARSE);
    q.enqueue(REQUEST.BIND);
    q.enqueue(REQUEST.SYNC);
    assert.equal(q.backend(code("E")), VERDICT.FORWARD);
    assert.equal(q.outstanding, 1);
    q.backend(code("Z"), ready("I"));
    assert.equal(q.releasable, true);
  });

  it("hands out local replies only once every request before them is answered", () => {
    const q = new RequestQueue();
    q.enqueue(REQUEST.BIND);
    q.enqueue(REQUEST.LOCAL_PARSE_COMPLETE);
    q.enqueue(REQUEST.LOCAL_CLOSE_COMPLETE);
    q.enqueueLocalFrames(Uint8Array.of(1, 2, 3));
    q.enqueue(REQUEST.SYNC);
    assert.equal(q.nextLocal(), undefined, "the Bind is not answered yet");
    q.backend(code("2"));
    assert.deepEqual(q.nextLocal(), Uint8Array.of(code("1"), 0, 0, 0, 4));
    assert.deepEqual(q.nextLocal(), Uint8Array.of(code("3"), 0, 0, 0, 4));
    assert.deepEqual(q.nextLocal(), Uint8Array.of(1, 2, 3));
    assert.equal(q.nextLocal(), undefined);
    q.backend(code("Z"), ready("I"));
    assert.equal(q.releasable, true);
  });

  it("local replies behind a failed request are dropped, as the server would skip them", () => {
    const q = new RequestQueue();
    const log = settledLog(q);
    q.enqueue(REQUEST.BIND);
    q.enqueue(REQUEST.LOCAL_PARSE_COMPLETE, 9);
    q.enqueueLocalFrames(Uint8Array.of(7), 10);
    q.enqueue(REQUEST.SYNC);
    q.backend(code("E"));
    assert.equal(q.nextLocal(), undefined);
    assert.deepEqual(log, [[REQUEST.LOCAL_PARSE_COMPLETE, 9, OUTCOME.SKIPPED], [REQUEST.LOCAL_FRAMES, 10, OUTCOME.SKIPPED]]);
    q.enqueueLocalFrames(Uint8Array.of(8)); // the side list stays in step
    q.backend(code("Z"), ready("I"));
    assert.deepEqual(q.nextLocal(), Uint8Array.of(8));
  });

  it("answers DEALLOCATE by the transaction status, byte for byte", () => {
    const q = new RequestQueue();
    q.enqueue(REQUEST.LOCAL_DEALLOCATE);
    const idle = q.nextLocal()!;
    const complete = [code("C"), 0, 0, 0, 15, ...new TextEncoder().encode("DEALLOCATE"), 0];
    assert.deepEqual([...idle], [...complete, code("Z"), 0, 0, 0, 5, code("I")]);
    q.enqueue(REQUEST.QUERY);
    q.backend(code("Z"), ready("T"));
    q.enqueue(REQUEST.LOCAL_DEALLOCATE);
    assert.deepEqual([...q.nextLocal()!], [...complete, code("Z"), 0, 0, 0, 5, code("T")]);
    q.enqueue(REQUEST.QUERY);
    q.backend(code("Z"), ready("E"));
    const log = settledLog(q);
    q.enqueue(REQUEST.LOCAL_DEALLOCATE, 3);
    const failed = q.nextLocal()!;
    assert.equal(failed[0], code("E"));
    assert.ok(new TextDecoder().decode(failed).includes("25P02"));
    assert.deepEqual([...failed.subarray(failed.length - 6)], [code("Z"), 0, 0, 0, 5, code("E")]);
    assert.deepEqual(log, [[REQUEST.LOCAL_DEALLOCATE, 3, OUTCOME.FAILED]]);
  });

  it("caps the entries: room says what fits, and one more throws 54000", () => {
    const q = new RequestQueue({ capacity: 100 });
    for (let i = 0; i < 100; i++) q.frontend(code("E"));
    assert.equal(q.room, 0);
    assert.throws(() => q.frontend(code("E")), (e: unknown) => e instanceof ProtocolError && e.sqlstate === "54000" && /more than 100/.test(e.message));
    for (let i = 0; i < 100; i++) q.backend(code("C"));
    assert.equal(q.room, 100);
    assert.equal(q.releasable, true);
  });

  it("O(1) per frame: 100k pipelined Executes in a ring that wraps many times", () => {
    const q = new RequestQueue({ capacity: 1024 });
    let sent = 0;
    let answered = 0;
    while (answered < 100_000) {
      while (q.room > 0 && sent < 100_000) {
        q.frontend(code("E"));
        sent++;
      }
      for (let i = 0; i < 700 && answered < sent; i++, answered++) q.backend(code("C"));
    }
    assert.equal(q.outstanding, 0);
    assert.ok(q.bytes <= 1024 * 5, `ring stays within its cap: ${q.bytes} bytes`);
  });

  it("clear() settles everything SKIPPED and resets", () => {
    const q = new RequestQueue();
    const log = settledLog(q);
    q.enqueue(REQUEST.OWN_PARSE, 1);
    q.enqueue(REQUEST.QUERY, 2);
    q.backend(code("G"));
    q.clear();
    assert.deepEqual(log, [[REQUEST.OWN_PARSE, 1, OUTCOME.SKIPPED], [REQUEST.QUERY, 2, OUTCOME.SKIPPED]]);
    assert.equal(q.releasable, true);
  });

  it("asynchronous messages (notices, notifications, ParameterStatus) change nothing", () => {
    const q = new RequestQueue();
    run(q, "", "NAS");
    assert.equal(q.releasable, true);
    run(q, "Q", "NAS");
    assert.equal(q.outstanding, 1);
  });
});
