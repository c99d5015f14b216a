// Which engines this daemon has, and which one a sandbox gets.
import type { Availability, Engine, EngineEnv, EngineName } from "../engine/types.js";
import { NsEngine } from "../engine/ns/engine.js";
import { VmEngine } from "../engine/vm/engine.js";
import { badRequest } from "../util/errors.js";
import { ENGINE_LIST, isEngineName } from "../engine/names.js";

export type EngineChoice = EngineName | "auto";

export class Engines {
  private readonly engines: Record<EngineName, Engine>;
  private defaultName!: EngineName;
  private status: Partial<Record<EngineName, Availability>> = {};

  constructor(readonly env: EngineEnv, private readonly choice: EngineChoice) {
    this.engines = { ns: new NsEngine(env), vm: new VmEngine(env) } satisfies Record<EngineName, Engine>; // one per ENGINE_NAMES
  }

  /** Probes the engines and picks the default. auto = vm only where KVM works, else ns. Throws if the chosen engine cannot run. */
  async init(): Promise<EngineName> {
    if (this.choice === "ns") {
      // The vm probe boots a kernel (seconds under TCG): don't hold up an ns daemon for it.
      this.status.ns = await this.engines.ns.available();
      void this.engines.vm.available().then((vm) => { this.status.vm = vm; }, () => {});
    } else {
      const [ns, vm] = await Promise.all([this.engines.ns.available(), this.engines.vm.available()]);
      this.status = { ns, vm };
    }
    if (this.choice === "auto") {
      this.defaultName = this.status.vm?.ok && this.status.vm.accel === "kvm" ? "vm" : "ns";
    } else {
      this.defaultName = this.choice;
    }
    const chosen = this.status[this.defaultName]!;
    if (!chosen.ok) throw new Error(`engine ${this.defaultName} cannot run on this host: ${chosen.reason ?? "unknown reason"}`);
    return this.defaultName;
  }

  get default(): EngineName { return this.defaultName; }

  get(name: EngineName): Engine { return this.engines[name]; }

  /** The engine for a request: its `engine` field, or the default. An engine that cannot run here is a 400. */
  pick(requested: unknown): Engine {
    if (requested === undefined || requested === null) return this.engines[this.defaultName];
    if (!isEngineName(requested)) throw badRequest(`engine must be ${ENGINE_LIST}`);
    const st = this.status[requested];
    if (!st) throw badRequest(`engine ${requested} is still being probed on this host; try again in a few seconds`);
    if (!st.ok) throw badRequest(`engine ${requested} cannot run on this host: ${st.reason ?? "not available"}`);
    return this.engines[requested];
  }

  describe(): Record<string, unknown> {
    return {
      engine: this.defaultName,
      engines: Object.fromEntries(Object.entries(this.status).map(([k, v]) => [k, { available: v.ok, ...(v.accel ? { accel: v.accel } : {}), ...(v.reason ? { reason: v.reason } : {}) }])),
      ...(this.status.vm?.accel ? { accel: this.status.vm.accel } : {}),
    };
  }
}
