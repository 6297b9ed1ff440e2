/**
 * The frame scanner in both directions, with the readers of the captured bodies behind it (the session's
 * BackendObserver and the audit's QueryTracker). Properties: only ProtocolError escapes; a captured body is
 * never longer than maxCapturedBytes; every split of the same bytes into chunks gives the same frames,
 * bodies and error (at the same place: the error's offset points at the bad frame's header, or at the
 * start of the chunk when the header began in an earlier one).
 */
import { FrameScanner } from "../../../src/protocol/frame_scanner.ts";
import { ProtocolError } from "../../../src/protocol/protocol_error.ts";
import { BACKEND_CAPTURES, type BackendEvents, BackendObserver } from "../../../src/backend/backend_observer.ts";
import { ServerFacts } from "../../../src/backend/server_facts.ts";
import { QUERY_CAPTURES, QueryTracker } from "../../../src/audit/query_tracker.ts";
import { FRONTEND } from "../../../src/protocol/codes.ts";
import { fnv1a } from "../prng.ts";
import { check, type FuzzTarget, onlyDocumented } from "../target.ts";
import { chunksOf } from "./chunks.ts";

const MAX_BODY = 16_384;

interface Outcome {
  events: string[];
  /** Absolute offset of the error, as the pump would compute it (chunk start + offset). */
  errorAt: number;
  /** Where the chunk that failed starts. */
  errorChunk: number;
}

function scan(
  input: Uint8Array,
  chunks: Uint8Array[],
  direction: "frontend" | "backend",
  maxCaptured: number,
): Outcome {
  const events: string[] = [];
  const tracker = new QueryTracker(() => {}, 1000, () => 0);
  const context = new ServerFacts({ hostname: "127.0.0.1", port: 1 });
  const known: Partial<BackendEvents> = {
    frame: () => {},
    ready: () => events.push("ready"),
    transactionEnded: (kind) => events.push(`ended ${kind}`),
    saslMechanisms: (mechanisms) => events.push(`sasl ${mechanisms.join(",")}`),
    error: (fields, fatal) => events.push(`error ${fields.get("C")} ${fatal}`),
  };
  // Events added to BackendEvents later are recorded by name, so the target keeps up with the session.
  const backendEvents = new Proxy(known, {
    get: (target, name) =>
      name === "body" // the audit's optional hook: off, as in a session without audit
        ? undefined
        : target[name as keyof BackendEvents] ??
          ((...args: unknown[]) => events.push(`${String(name)} ${JSON.stringify(args)}`)),
  }) as BackendEvents;
  const backendObserver = new BackendObserver(context, backendEvents);
  const scanner = new FrameScanner({
    frame(type, length) {
      events.push(`frame ${type} ${length}`);
      if (direction === "backend") {
        backendObserver.frame(type);
        tracker.backendFrame(type);
      }
    },
    message(type, body, truncated) {
      check(body.length <= maxCaptured, `captured ${body.length} bytes, limit ${maxCaptured}`);
      events.push(`message ${type} ${truncated} ${fnv1a(body)} ${body.length}`);
      if (direction === "backend") {
        backendObserver.message(type, body);
        tracker.backend(type, body);
      } else tracker.frontend(type, type === FRONTEND.FUNCTION_CALL ? body.subarray(0, 4) : body, truncated);
    },
  }, {
    capture: direction === "backend" ? BACKEND_CAPTURES : QUERY_CAPTURES,
    maxBodyBytes: MAX_BODY,
    maxCapturedBytes: maxCaptured,
    peer: direction === "backend" ? "server" : "client",
  });
  let start = 0;
  let errorAt = -1;
  try {
    for (const chunk of chunks) {
      scanner.scan(chunk);
      start += chunk.length;
    }
  } catch (error) {
    onlyDocumented(error, (e) => e instanceof ProtocolError, "frame scanner");
    events.push(`error ${(error as Error).message}`);
    errorAt = start + (error as ProtocolError).offset;
  }
  const errorChunk = start;
  events.push(
    `parameters ${JSON.stringify([...context.parameters])} ${context.transactionStatus} ${tracker.count}`,
  );
  void input;
  return { events, errorAt, errorChunk };
}

function scannerTarget(direction: "frontend" | "backend", dictionary: string[]): FuzzTarget {
  return {
    name: `frame_scanner_${direction}`,
    maxLength: 8192,
    dictionary,
    run(input) {
      // The capture limit varies with the input (small limits exercise truncation).
      const maxCaptured = [8, 64, 65_536][fnv1a(input) % 3]!;
      const whole = scan(input, [input], direction, maxCaptured);
      for (const chunks of chunksOf(input)) {
        const split = scan(input, chunks, direction, maxCaptured);
        check(
          split.events.join("\n") === whole.events.join("\n"),
          `chunking changed the events:\n${split.events.join("\n").slice(0, 400)}\nvs\n${
            whole.events.join("\n").slice(0, 400)
          }`,
        );
        if (whole.errorAt >= 0) {
          // Where the pump would cut: the bad header's start, or the chunk's start if it began before.
          const chunkStart = split.errorChunk;
          check(
            split.errorAt === Math.max(whole.errorAt, chunkStart),
            `error offset ${split.errorAt} with chunks, ${whole.errorAt} whole (chunk at ${chunkStart})`,
          );
        }
      }
    },
  };
}

export const frontendScannerTarget = scannerTarget("frontend", [
  "Q",
  "P",
  "B",
  "E",
  "S",
  "C",
  "F",
  "X",
  "d",
  "c",
  "\0\0\0\x04",
  "\0\0\0\x05",
  "\x7f\xff\xff\xff",
  "\0",
]);
export const backendScannerTarget = scannerTarget("backend", [
  "R",
  "S",
  "K",
  "Z",
  "E",
  "C",
  "D",
  "T",
  "N",
  "I",
  "s",
  "\0\0\0\x04",
  "\0\0\0\x0a",
  "\0\0\0\x00",
  "SCRAM-SHA-256-PLUS\0",
  "standard_conforming_strings\0off\0",
  "SFATAL\0",
  "C57P01\0",
  "ROLLBACK\0",
  "\0",
]);
