/** Where audit lines go: implemented with runtime APIs outside the core (src/host/audit_file_writer.ts). */
export interface AuditWriter {
  /**
   * Appends UTF-8 bytes (whole JSON lines), chunk after chunk; resolves once the sink took them all. The
   * chunks are reused for later lines once it resolves, so a writer must not keep them.
   */
  write(chunks: readonly Uint8Array[]): Promise<void>;
  /** Reopens the file by name (after logrotate moved it); a no-op for stdout. */
  reopen(): Promise<void>;
  close(): Promise<void>;
}
