/** Live admitted sessions, in total and by user, database and client address. */

export class ConnectionCounts {
  total = 0;
  readonly byUser = new Map<string, number>();
  readonly byDatabase = new Map<string, number>();
  readonly bySource = new Map<string, number>();

  add(user: string, database: string, source: string): void {
    this.total++;
    bump(this.byUser, user, 1);
    bump(this.byDatabase, database, 1);
    bump(this.bySource, source, 1);
  }

  remove(user: string, database: string, source: string): void {
    this.total--;
    bump(this.byUser, user, -1);
    bump(this.byDatabase, database, -1);
    bump(this.bySource, source, -1);
  }
}

function bump(map: Map<string, number>, key: string, delta: number): void {
  const next = (map.get(key) ?? 0) + delta;
  if (next <= 0) map.delete(key);
  else map.set(key, next);
}
