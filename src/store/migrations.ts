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
  {
    version: 2,
    name: "sandboxes, templates",
    sql: `
      CREATE TABLE templates (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        image TEXT NOT NULL,
        cpus INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL,
        env TEXT NOT NULL,      -- JSON object of plain (non-secret) env
        secrets TEXT NOT NULL,  -- JSON array of secret NAMES, resolved at sandbox create
        created_at TEXT NOT NULL,
        UNIQUE (user_id, name)
      );
      CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        engine TEXT NOT NULL,
        image TEXT NOT NULL,
        cpus INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL,
        env_keys TEXT NOT NULL,      -- JSON array: names only, values live in the sandbox
        secret_names TEXT NOT NULL,  -- JSON array
        template_id TEXT,
        status TEXT NOT NULL,        -- creating | running | dead
        token_encrypted BLOB,        -- the lohar AUTH token, age-encrypted like a secret
        engine_state TEXT,           -- JSON, never a value
        created_at TEXT NOT NULL,
        UNIQUE (user_id, name)
      );
    `,
  },
  {
    version: 4,
    name: "net: sandbox network policy, address leases (issue 10)",
    sql: `
      ALTER TABLE sandboxes ADD COLUMN network TEXT; -- JSON {egress, allow_hosts, allow_cidrs}; NULL: made before networking (none)
      ALTER TABLE templates ADD COLUMN network TEXT; -- JSON policy of sandboxes made from it; NULL: the daemon's default
      CREATE TABLE net_leases (
        sandbox_id TEXT PRIMARY KEY,
        gateway TEXT NOT NULL,   -- the host end of the sandbox's veth
        address TEXT NOT NULL,   -- the sandbox's address
        prefix INTEGER NOT NULL,
        ifname TEXT NOT NULL,
        netns TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];
