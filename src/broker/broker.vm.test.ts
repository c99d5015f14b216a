// Brokered secrets end to end on the vm engine (QEMU microvm, a tap per
// sandbox), debian image: the same cases as on ns (broker-suite.ts).
import { ensureDebianTestImage } from "../engine/ns/test-image.js";
import { brokerSuite } from "./broker-suite.js";

brokerSuite("vm", { image: "debian", prepare: ensureDebianTestImage });
