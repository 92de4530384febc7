import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangefeedDefinition } from './changefeed-definition.ts';

/** What the server wants a changefeed to be doing; survives restarts. */
export type DesiredState = 'running' | 'paused' | 'failed';

export interface StoredError {
  code: string;
  message: string;
  hint: string;
  /** When it happened (ISO time); absent in errors stored by older versions. */
  at?: string;
}

export interface StoredChangefeed {
  id: string;
  /** As the user gave it (`${VAR}` references unsubstituted), validated. */
  definition: ChangefeedDefinition;
  state: DesiredState;
  lastError: StoredError | null;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: string;
  definition: string;
  state: DesiredState;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * The server's embedded metadata store: one SQLite file (`<data-dir>/tidemark-meta.db`, WAL mode)
 * holding each changefeed's definition, desired state and last error. Every write is its own
 * transaction, so a crash leaves either the old or the new record. Positions are not kept here:
 * the checkpoint lives in the sink, with the data.
 */
export class MetadataStore {
  private readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /** Opens (creating if needed) the store in `dataDir`. Throws SERVER_METADATA. */
  static open(dataDir: string): MetadataStore {
    try {
      // Definitions hold connection credentials: the directory is the owner's only.
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const db = new Database(join(dataDir, 'tidemark-meta.db'));
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 2000');
      db.exec(`CREATE TABLE IF NOT EXISTS changefeeds (
        id TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'failed')),
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`);
      return new MetadataStore(db);
    } catch (err) {
      throw new TidemarkError('SERVER_METADATA', {
        detail: `${dataDir}: ${(err as Error).message}`,
        cause: err,
      });
    }
  }

  /** All changefeeds, ordered by id. */
  list(): StoredChangefeed[] {
    return (this.db.prepare('SELECT * FROM changefeeds ORDER BY id').all() as Row[]).map(fromRow);
  }

  get(id: string): StoredChangefeed | undefined {
    const row = this.db.prepare('SELECT * FROM changefeeds WHERE id = ?').get(id) as Row | undefined;
    return row && fromRow(row);
  }

  /** Inserts a new changefeed; false when the id is taken. */
  insert(id: string, definition: ChangefeedDefinition, state: DesiredState): boolean {
    const now = new Date().toISOString();
    const r = this.db
      .prepare(
        `INSERT INTO changefeeds (id, definition, state, last_error, created_at, updated_at)
         VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .run(id, JSON.stringify(definition), state, now, now);
    return r.changes === 1;
  }

  setDefinition(id: string, definition: ChangefeedDefinition): void {
    this.db
      .prepare('UPDATE changefeeds SET definition = ?, updated_at = ? WHERE id = ?')
      .run(JSON.stringify(definition), new Date().toISOString(), id);
  }

  setState(id: string, state: DesiredState, lastError?: StoredError | null): void {
    const now = new Date().toISOString();
    if (lastError === undefined) {
      this.db.prepare('UPDATE changefeeds SET state = ?, updated_at = ? WHERE id = ?').run(state, now, id);
    } else {
      this.db
        .prepare('UPDATE changefeeds SET state = ?, last_error = ?, updated_at = ? WHERE id = ?')
        .run(state, lastError === null ? null : JSON.stringify(lastError), now, id);
    }
  }

  setLastError(id: string, lastError: StoredError | null): void {
    this.db
      .prepare('UPDATE changefeeds SET last_error = ?, updated_at = ? WHERE id = ?')
      .run(lastError === null ? null : JSON.stringify(lastError), new Date().toISOString(), id);
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM changefeeds WHERE id = ?').run(id).changes === 1;
  }

  close(): void {
    this.db.close();
  }
}

function fromRow(r: Row): StoredChangefeed {
  return {
    id: r.id,
    definition: JSON.parse(r.definition) as ChangefeedDefinition,
    state: r.state,
    lastError: r.last_error === null ? null : (JSON.parse(r.last_error) as StoredError),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
