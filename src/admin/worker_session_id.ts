/**
 * Session ids under `--workers`: `PREFIX-N` where the 6-hex-digit prefix is 4 random digits and the worker's
 * number in 2, so ids never collide between live workers and the supervisor knows which worker to ask.
 */

/** The session id prefix of worker `worker` (1 to 255). */
export function workerSessionIdPrefix(worker: number): string {
  const random = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0");
  return random + worker.toString(16).padStart(2, "0");
}

/** The worker that issued session id `id`, or undefined when it is not a worker's id. */
export function workerOfSessionId(id: string): number | undefined {
  const match = /^[0-9a-f]{4}([0-9a-f]{2})-\d+$/.exec(id);
  return match ? parseInt(match[1]!, 16) : undefined;
}
