// The sandbox API suite on the vm engine (QEMU). Each boot costs seconds under
// TCG, so this run keeps the lifecycle and isolation cases (see api-suite.ts).
import { sandboxApiSuite } from "./api-suite.js";

sandboxApiSuite("vm", { full: false });
