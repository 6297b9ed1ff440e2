/**
 * Races a connection attempt against a timer. A connection that opens after the timer fired is closed,
 * so nothing leaks.
 */
export function withTimeout<T>(
  attempt: Promise<T>,
  timeoutMs: number,
  discard: (late: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    attempt.then((value) => {
      clearTimeout(timer);
      if (timedOut) discard(value);
      else resolve(value);
    }, (error: unknown) => {
      clearTimeout(timer);
      if (!timedOut) reject(error instanceof Error ? error : new Error(String(error)));
    });
  });
}
