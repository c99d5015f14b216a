// Sessions on the vm engine (QEMU): one boot, the pty shell and a background command (sessions-suite.ts).
import { sessionsSuite } from "./sessions-suite.js";

sessionsSuite("vm", { full: false });
