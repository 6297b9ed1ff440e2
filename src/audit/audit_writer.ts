/** Where audit lines go: implemented with runtime APIs outside the core (src/cli/audit_file_writer.ts). */
export interface AuditWriter {
  /** Appends text (whole JSON lines); resolves once the sink took it. */
  write(text: string): Promise<void>;
  /** Reopens the file by name (after logrotate moved it); a no-op for stdout. */
  reopen(): Promise<void>;
  close(): Promise<void>;
}
