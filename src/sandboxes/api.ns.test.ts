// The sandbox API suite on the ns engine (runc), in full.
import { sandboxApiSuite } from "./api-suite.js";

sandboxApiSuite("ns", { full: true });
