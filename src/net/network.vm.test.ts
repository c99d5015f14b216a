// Sandbox networking on the vm engine (QEMU microvm, a tap per sandbox, virtio-net
// configured by lohar from the config drive): network-suite.ts. Each boot costs
// seconds under TCG; the engine-independent cases run on ns only.
import { networkSuite } from "./network-suite.js";

networkSuite("vm");
