// Every command: its name, a one-line summary for `bhatti --help`, and how to
// load the module that defines its flags and action. Loading is lazy: only the
// command being run (or whose help is shown) is imported.
import type { Command } from "commander";

export interface Entry { name: string; summary: string; load: () => Promise<(cmd: Command) => void> }

export const COMMANDS: Entry[] = [
  // operator commands: run on the daemon host, against its data dir
  { name: "serve", summary: "run the daemon", load: async () => (await import("./commands/serve.js")).register },
  { name: "user", summary: "manage users, quotas and API keys (operator)", load: async () => (await import("./commands/user.js")).register },
  { name: "key", summary: "re-encrypt all secrets under a new age key (operator)", load: async () => (await import("./commands/key.js")).register },
  { name: "image", summary: "build, import, list and delete guest images (operator)", load: async () => (await import("./commands/image.js")).register },
  { name: "admin", summary: "backup of age.key + state.db; every user's audit events (operator)", load: async () => (await import("./commands/admin.js")).register },
  // client commands: talk to the daemon's API
  { name: "setup", summary: "check and save the daemon URL and API key", load: async () => (await import("./commands/setup.js")).register },
  { name: "info", summary: "daemon version, engines, accelerator", load: async () => (await import("./commands/info.js")).register },
  { name: "whoami", summary: "your user name, quotas and usage", load: async () => (await import("./commands/whoami.js")).register },
  { name: "events", summary: "your audit trail (secret, sandbox, template events; never values)", load: async () => (await import("./commands/events.js")).register },
  { name: "secret", summary: "set, list and delete your secrets", load: async () => (await import("./commands/secret.js")).register },
  { name: "create", summary: "create a sandbox", load: async () => (await import("./commands/sandbox.js")).registerCreate },
  { name: "list", summary: "list your sandboxes", load: async () => (await import("./commands/sandbox.js")).registerList },
  { name: "inspect", summary: "show one sandbox", load: async () => (await import("./commands/sandbox.js")).registerInspect },
  { name: "destroy", summary: "destroy a sandbox", load: async () => (await import("./commands/sandbox.js")).registerDestroy },
  { name: "stop", summary: "stop a sandbox (processes end; its disk is kept)", load: async () => (await import("./commands/lifecycle.js")).registerStop },
  { name: "start", summary: "start a stopped sandbox (secrets injected again)", load: async () => (await import("./commands/lifecycle.js")).registerStart },
  { name: "pause", summary: "freeze a sandbox's processes in memory", load: async () => (await import("./commands/lifecycle.js")).registerPause },
  { name: "resume", summary: "thaw a paused sandbox", load: async () => (await import("./commands/lifecycle.js")).registerResume },
  { name: "keep-hot", summary: "exempt a sandbox from the idle policy (on|off)", load: async () => (await import("./commands/lifecycle.js")).registerKeepHot },
  { name: "volume", summary: "persistent volumes: create, list, delete", load: async () => (await import("./commands/volume.js")).register },
  { name: "snapshot", summary: "filesystem snapshots: create, list, delete", load: async () => (await import("./commands/snapshot.js")).register },
  { name: "net", summary: "show or change a sandbox's egress policy", load: async () => (await import("./commands/net.js")).register },
  { name: "ports", summary: "TCP ports listening in a sandbox", load: async () => (await import("./commands/ports.js")).registerPorts },
  { name: "forward", summary: "a local port that reaches a sandbox's port (over the API)", load: async () => (await import("./commands/ports.js")).registerForward },
  { name: "exec", summary: "run a command in a sandbox (exit code forwarded)", load: async () => (await import("./commands/exec.js")).register },
  { name: "file", summary: "read, write and list files in a sandbox", load: async () => (await import("./commands/file.js")).register },
  { name: "cp", summary: "copy files and directories to or from a sandbox", load: async () => (await import("./commands/cp.js")).register },
  { name: "shell", summary: "an interactive shell session (detach with Ctrl-\\, reattach with --session)", load: async () => (await import("./commands/sessions.js")).registerShell },
  { name: "ps", summary: "list a sandbox's sessions", load: async () => (await import("./commands/sessions.js")).registerPs },
  { name: "logs", summary: "a session's output (-f: follow)", load: async () => (await import("./commands/sessions.js")).registerLogs },
  { name: "kill", summary: "send a signal to a session", load: async () => (await import("./commands/sessions.js")).registerKill },
  { name: "share", summary: "a one-use web terminal link to a sandbox (--revoke)", load: async () => (await import("./commands/sessions.js")).registerShare },
  { name: "template", summary: "presets of image, size, env and secret names", load: async () => (await import("./commands/template.js")).register },
  { name: "completion", summary: "print a shell completion script (bash or zsh)", load: async () => (await import("./commands/completion.js")).register },
];
