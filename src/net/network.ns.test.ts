// Sandbox networking on the ns engine (runc, a veth per sandbox): network-suite.ts.
import { networkSuite } from "./network-suite.js";

networkSuite("ns");
