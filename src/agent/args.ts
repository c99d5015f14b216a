// lohar's command-line flags. lohar starts with an empty environment, so all of
// its configuration comes from here and from the config drive.
import { GUEST } from "../protocol/agent.js";

export interface Args {
  transport: "unix" | "virtio";
  socket: string; // unix transport: where to listen
  device?: string; // virtio transport: explicit device path instead of the sysfs lookup
  configDir: string;
  unmount: boolean; // false: leave the config dir alone (tests on the host)
  hostname: boolean; // false: do not set the hostname (tests on the host)
  vm: boolean; // mount /dev/vdb at configDir first; remove the device node after
}

export function parseArgs(argv: string[]): Args {
  const a: Args = {
    transport: "unix",
    socket: GUEST.agentSocket,
    configDir: GUEST.configDir,
    unmount: true,
    hostname: true,
    vm: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--transport": {
        const t = value();
        if (t !== "unix" && t !== "virtio") throw new Error(`unknown transport ${t}`);
        a.transport = t;
        break;
      }
      case "--socket": a.socket = value(); break;
      case "--device": a.device = value(); break;
      case "--config-dir": a.configDir = value(); break;
      case "--no-unmount": a.unmount = false; break;
      case "--no-hostname": a.hostname = false; break;
      case "--vm": a.vm = true; break;
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  return a;
}
