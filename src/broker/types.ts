// The credential broker's contract (issue 11): what the daemon's egress proxy
// and DNS server ask about a sandbox whose brokered secrets they must
// substitute or guard. The store side (bindings, placeholders, the
// per-sandbox CA) implements Broker; the network side (src/net/) only calls it.
// A value is only ever handed out by `value()`, as a Buffer, to the code that
// writes it into an upstream TLS stream: never logged, never in an error.

/** One secret of one sandbox that the sandbox holds only as a placeholder. */
export interface BrokeredSecret {
  /** The secret's name: events name it, never its value. */
  name: string;
  /** What the sandbox was given instead of the value (env, secret files): unique per sandbox and secret, same length as the value. */
  placeholder: string;
  /** Where the value may go: exact host names or `*.suffix` patterns (subdomains only), as in network policy. */
  hosts: string[];
  /** If set, the only request header (lower case) the value may be placed in; otherwise any header or the URL. */
  header?: string;
  /** Whether a request body (up to a bound) is substituted too. */
  inBody: boolean;
}

/** The sandbox's own CA: its key never leaves the daemon. */
export interface SandboxCa {
  certPem: string;
  keyPem: string; // PKCS#8
}

/** What the proxy knows about one sandbox's brokering. */
export interface SandboxBroker {
  readonly sandboxId: string;
  ca(): Promise<SandboxCa>;
  /** The current bindings (a `secret set --host` or `secret delete` shows here on the next call). */
  secrets(): BrokeredSecret[];
  /** The current value (after rotation, the new one), or null once the secret is deleted: substitution then stops. */
  value(name: string): Promise<Buffer | null>;
}

export interface Broker {
  /** The sandbox's brokering, or undefined if it holds no brokered secret (its traffic is never intercepted). */
  forSandbox(sandboxId: string): SandboxBroker | undefined;
}
