// Brokered secrets on the ns engine (runc), in full.
import { brokeredSuite } from "./brokered-suite.js";

brokeredSuite("ns", { full: true });
