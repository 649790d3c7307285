// Where feedings are written down (PostgreSQL, or SQLite where PostgreSQL cannot be reached) and
// where the puppies' favourite food is cached (Redis; without Redis the food is looked up nowhere).
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { segment } from 'loopscope';

export interface Kennel {
  /** where feedings go: `postgres` or `sqlite` */
  readonly database: 'postgres' | 'sqlite';
  /** false when Redis could not be reached */
  readonly cached: boolean;
  recordFeeding(puppy: number, grams: number): Promise<void>;
  /** the cached favourite food (set on a miss), or null without Redis */
  favouriteFood(): Promise<string | null>;
  close(): Promise<void>;
}

export const DEFAULT_POSTGRES = 'postgres://postgres@127.0.0.1:5432/test';
export const DEFAULT_REDIS = 'redis://127.0.0.1:6379';
const TABLE = 'CREATE TABLE IF NOT EXISTS puppy_feedings (puppy INTEGER NOT NULL, grams INTEGER NOT NULL, fed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)';

async function openPostgres(url: string): Promise<pg.Pool | undefined> {
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 1000 });
  pool.on('error', () => {}); // an idle client losing its connection: the next query reconnects
  try {
    await pool.query(TABLE);
    return pool;
  } catch {
    await pool.end().catch(() => {});
    return undefined;
  }
}

async function openRedis(url: string): Promise<Redis | undefined> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 1, retryStrategy: (times) => (times > 3 ? null : 200) });
  redis.on('error', () => {}); // reported through the failed commands instead
  try {
    await redis.connect();
    return redis;
  } catch {
    redis.disconnect();
    return undefined;
  }
}

/** Opens the kennel's stores; never fails: what cannot be reached is replaced (SQLite) or skipped (Redis). */
export async function openKennel(opts: { postgres?: string; redis?: string } = {}): Promise<Kennel> {
  const [pool, redis] = await Promise.all([openPostgres(opts.postgres ?? DEFAULT_POSTGRES), openRedis(opts.redis ?? DEFAULT_REDIS)]);
  let sqlite: Database.Database | undefined;
  let insert: Database.Statement | undefined;
  if (pool === undefined) {
    sqlite = new Database(':memory:');
    sqlite.exec(TABLE);
    insert = sqlite.prepare('INSERT INTO puppy_feedings (puppy, grams) VALUES (?, ?)');
  }
  return {
    database: pool === undefined ? 'sqlite' : 'postgres',
    cached: redis !== undefined,
    async recordFeeding(puppy, grams) {
      if (pool !== undefined) await pool.query('INSERT INTO puppy_feedings (puppy, grams) VALUES ($1, $2)', [puppy, grams]);
      // SQLite answers synchronously: the agent cannot see it by itself (docs/instrumentation.md)
      else segment('sqlite INSERT', 'db', () => insert!.run(puppy, grams));
    },
    async favouriteFood() {
      if (redis === undefined) return null;
      const food = await redis.get('puppies:favourite-food');
      if (food !== null) return food;
      await redis.set('puppies:favourite-food', 'kibble', 'EX', 60);
      return 'kibble';
    },
    async close() {
      await Promise.all([pool?.end(), redis?.quit().catch(() => {})]);
      sqlite?.close();
    },
  };
}
