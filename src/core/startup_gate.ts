/**
 * The gate a connection passes when it is accepted, before pgrelay reads a byte of it: a cap on connections
 * still in their startup phase (accepted and not yet ready, passthrough or closed), overall and per source.
 * The proxy asks it and keeps the ticket until the connection leaves its startup phase. The core never
 * imports src/limits; the limits module implements this interface.
 */
import { ClientError } from "../protocol/client_error.ts";

export type StartupTicket =
  | {
    readonly allowed: true;
    /** Called exactly once, when the connection leaves its startup phase. */
    release(): void;
  }
  | {
    readonly allowed: false;
    /** The limit that refused it, e.g. `startup.per_source`. */
    readonly rule: string;
    /** FATAL 53300, sent before anything is negotiated. */
    readonly error: ClientError;
  };

export interface StartupGate {
  /** A connection from `hostname` was accepted. */
  enter(hostname: string): StartupTicket;
}
