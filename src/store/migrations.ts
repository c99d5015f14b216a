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
    // sec (issue 13): the audit trail's actor/result/owner id and append-only
    // guard, secret versions, secret files, redaction. Version 6 is sec's.
    version: 6,
    name: "sec: audit trail, secret versions, secret files, redact",
    sql: `
      ALTER TABLE events ADD COLUMN actor TEXT;
      ALTER TABLE events ADD COLUMN result TEXT NOT NULL DEFAULT 'ok';
      ALTER TABLE events ADD COLUMN user_id INTEGER;
      UPDATE events SET user_id = (SELECT id FROM users WHERE users.name = events.user_name), actor = COALESCE(user_name, 'daemon');
      CREATE INDEX events_user ON events(user_id, id);
      -- Append-only: no event is ever changed, and none younger than a day is ever removed (retention prunes older ones).
      CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
      CREATE TRIGGER events_no_early_delete BEFORE DELETE ON events
        WHEN old.at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
        BEGIN SELECT RAISE(ABORT, 'events are append-only (only events older than a day are pruned)'); END;
      ALTER TABLE secrets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE sandboxes ADD COLUMN secret_versions TEXT NOT NULL DEFAULT '{}'; -- JSON {name: version received}
      ALTER TABLE sandboxes ADD COLUMN secret_files TEXT NOT NULL DEFAULT '[]';    -- JSON [{name, path, mode}]
      ALTER TABLE sandboxes ADD COLUMN redact INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE sandboxes ADD COLUMN redact_encrypted BLOB; -- redact sandboxes: the values they received, age-encrypted (a restart rebuilds the redactor)
      ALTER TABLE templates ADD COLUMN secret_files TEXT NOT NULL DEFAULT '[]';    -- JSON [{name, path, mode}]
    `,
  },
  {
    version: 8,
    name: "disk sizes: a per-user disk quota and each sandbox's disk",
    sql: `
      -- Total MiB of writable disk a user's live sandboxes may hold (their --disk sizes).
      ALTER TABLE users ADD COLUMN max_disk_mb INTEGER NOT NULL DEFAULT 20480;
      -- The sandbox's writable-layer limit in MiB; NULL for sandboxes made before limits existed.
      ALTER TABLE sandboxes ADD COLUMN disk_mb INTEGER;
    `,
  },
  {
    // life (issue 14): stop/start, pause/resume, idle policy.
    version: 7,
    name: "sandbox lifecycle: boot config, keep_hot, idle, volumes, snapshots",
    sql: `
      -- age-encrypted JSON {env, init}: the plain env and init a start needs to build the
      -- config drive again. Secret values are never here: start resolves the names again.
      ALTER TABLE sandboxes ADD COLUMN boot_encrypted BLOB;
      ALTER TABLE sandboxes ADD COLUMN keep_hot INTEGER NOT NULL DEFAULT 0;
      -- NULL, or 'warm' / 'cold' when the idle policy (not a user) paused or stopped it: a request then wakes it.
      ALTER TABLE sandboxes ADD COLUMN idle TEXT;
      -- JSON [{id, name, path, ro}]: the volumes the sandbox holds (mounted again at each start).
      ALTER TABLE sandboxes ADD COLUMN volumes TEXT;
      CREATE TABLE volumes (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        size_mb INTEGER NOT NULL,
        attached_to TEXT,   -- the one sandbox id holding it (any state), or NULL
        vm_written INTEGER NOT NULL DEFAULT 0, -- a guest kernel wrote it: the host never mounts it (ns)
        created_at TEXT NOT NULL,
        UNIQUE (user_id, name)
      );
      CREATE TABLE snapshots (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sandbox TEXT NOT NULL,      -- the source sandbox's name when taken
        engine TEXT NOT NULL,
        image TEXT NOT NULL,
        cpus INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL,
        disk_mb INTEGER,
        base INTEGER NOT NULL,      -- uid range base its files' ids are in
        boot_encrypted BLOB,        -- the source's plain env/init, age-encrypted
        secret_names TEXT NOT NULL, -- JSON array of NAMES; a fork resolves them again
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
  {
    // brokerstore (issue 11): a secret bound to hosts is brokered, never put into a sandbox.
    version: 9,
    name: "brokered secrets: host bindings on secrets",
    sql: `
      ALTER TABLE secrets ADD COLUMN hosts TEXT;            -- JSON array of host patterns; NULL: not bound (injected as before)
      ALTER TABLE secrets ADD COLUMN header TEXT;           -- lower-case header the value may go in; NULL: any header or the URL
      ALTER TABLE secrets ADD COLUMN in_body INTEGER NOT NULL DEFAULT 0; -- 1: request bodies are substituted too
      -- A bound value's shape (JSON {p: known prefix, b: a class letter per position, punctuation as is}): what a
      -- placeholder copies, so a create never decrypts the value. Every sandbox's placeholder shows it anyway.
      ALTER TABLE secrets ADD COLUMN shape TEXT;
    `,
  },
  {
    // brokerstore (issue 11): what each sandbox (and each snapshot a fork may boot from) holds instead of brokered values.
    version: 10,
    name: "brokered secrets: per-sandbox placeholders and CA",
    sql: `
      CREATE TABLE sandbox_brokers (
        sandbox_id TEXT PRIMARY KEY REFERENCES sandboxes(id) ON DELETE CASCADE,
        ca_cert TEXT NOT NULL,      -- PEM, public (it is in the sandbox's trust store)
        ca_key_enc BLOB NOT NULL,   -- PKCS#8 PEM, age-encrypted like a secret value
        placeholders TEXT NOT NULL  -- JSON {secret name: placeholder}
      ) WITHOUT ROWID;
      CREATE TABLE snapshot_brokers (
        snapshot_id TEXT PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
        ca_cert TEXT NOT NULL,
        ca_key_enc BLOB NOT NULL,
        placeholders TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    // netfix (issue 10): the per-user egress cap, and the policy a snapshot's forks get.
    version: 11,
    name: "netfix: per-user egress cap, snapshot network policy",
    sql: `
      -- The most a user's sandboxes may have: public > deny > none (user create|update --max-egress).
      ALTER TABLE users ADD COLUMN max_egress TEXT NOT NULL DEFAULT 'public';
      -- JSON policy of the snapshotted sandbox; a fork gets its own network under it. NULL: none.
      ALTER TABLE snapshots ADD COLUMN network TEXT;
    `,
  },
];
