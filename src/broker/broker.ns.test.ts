// Brokered secrets end to end on the ns engine (runc), debian image.
import { ensureDebianTestImage } from "../engine/ns/test-image.js";
import { brokerSuite } from "./broker-suite.js";

brokerSuite("ns", { image: "debian", prepare: ensureDebianTestImage });
