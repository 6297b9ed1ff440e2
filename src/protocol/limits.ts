/** PostgreSQL refuses startup packets longer than this (MAX_STARTUP_PACKET_LENGTH), and so do we. */
export const MAX_STARTUP_PACKET_BYTES = 10_000;

/** The server's own ceiling for one message (MaxAllocSize, 1 GiB - 1): the default message limit. */
export const DEFAULT_MAX_MESSAGE_BYTES = 0x3fff_ffff;

/** Bytes of a message body the frame scanner copies for the proxy to read; larger bodies are cut. */
export const MAX_CAPTURED_BODY_BYTES = 64 * 1024;
