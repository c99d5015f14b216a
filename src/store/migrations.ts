// Numbered schema migrations. Each runs once, in order, inside a transaction,
// and is recorded in schema_migrations. Never edit a migration that has shipped:
// add a new one.
export interface Migration { version: number; name: string; sql: string }

export const migrations: Migration[] = [
  {
    version: 1,
    name: "users, secrets, events, meta",
    sql: `
      CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        api_key_sha256 TEXT NOT NULL UNIQUE,
        max_sandboxes INTEGER NOT NULL,
        max_cpus INTEGER NOT NULL,
        max_memory_mb INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        key_rotated_at TEXT NOT NULL
      );
      CREATE TABLE secrets (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value_encrypted BLOB NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_id, name)
      ) WITHOUT ROWID;
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        type TEXT NOT NULL,
        user_name TEXT,
        subject TEXT,
        detail TEXT
      );
      CREATE INDEX events_at ON events(at);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
];
