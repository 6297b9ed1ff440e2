/** Placeholder until the sd_notify implementation lands: reports nothing. */
export function notifySystemd(_state: string): Promise<boolean> {
  return Promise.resolve(false);
}
