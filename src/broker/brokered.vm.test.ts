// Brokered secrets on the vm engine (QEMU): placeholders, the CA written by
// lohar into the guest's trust store (minimal and debian), nothing on the host.
import { brokeredSuite } from "./brokered-suite.js";

brokeredSuite("vm", { full: true });
