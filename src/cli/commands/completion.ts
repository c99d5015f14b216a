// `bhatti completion bash|zsh`: a completion script built from the commands'
// own definitions (names, subcommands, flags), so it never goes stale.
import type { Command } from "commander";
import { run, UsageError } from "../args.js";

function flagsOf(c: Command): string[] {
  return c.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f)).concat("--help");
}

/** "word list" per position: "" for the top level, "cmd" and "cmd sub" below it. */
function table(root: Command): Map<string, string[]> {
  const t = new Map<string, string[]>();
  t.set("", root.commands.map((c) => c.name()).concat("help"));
  for (const c of root.commands) {
    t.set(c.name(), c.commands.map((s) => s.name()).concat(flagsOf(c)));
    for (const s of c.commands) t.set(`${c.name()} ${s.name()}`, flagsOf(s));
  }
  return t;
}

export function bashScript(root: Command): string {
  const cases = [...table(root)].filter(([k]) => k).map(([k, v]) => `    "${k}") words="${v.join(" ")}" ;;`).join("\n");
  return `# bhatti completion for bash. Load with: source <(bhatti completion bash)
_bhatti() {
  local cur=\${COMP_WORDS[COMP_CWORD]} words key
  if [ "$COMP_CWORD" -eq 1 ]; then
    words="${table(root).get("")!.join(" ")}"
  else
    key="\${COMP_WORDS[1]}"
    if [ "$COMP_CWORD" -gt 2 ] && [[ "\${COMP_WORDS[2]}" != -* ]]; then key="$key \${COMP_WORDS[2]}"; fi
    case "$key" in
${cases}
    *) case "\${COMP_WORDS[1]}" in
${[...table(root)].filter(([k]) => k && !k.includes(" ")).map(([k, v]) => `      "${k}") words="${v.join(" ")}" ;;`).join("\n")}
      esac ;;
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _bhatti bhatti
`;
}

export function register(cmd: Command): void {
  cmd.argument("<shell>", "bash or zsh")
    .addHelpText("after", "\nbash: source <(bhatti completion bash)\nzsh:  source <(bhatti completion zsh)")
    .action(run(async (shell: string) => {
      const root = cmd.parent!;
      if (shell === "bash") process.stdout.write(bashScript(root));
      else if (shell === "zsh") process.stdout.write(`# bhatti completion for zsh (through bash completion)\nautoload -U +X bashcompinit && bashcompinit\n${bashScript(root)}`);
      else throw new UsageError(`completion is for bash or zsh (got ${JSON.stringify(shell)})`);
      return 0;
    }));
}
