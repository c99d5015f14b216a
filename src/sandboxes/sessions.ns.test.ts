// Sessions on the ns engine (runc), in full.
import { sessionsSuite } from "./sessions-suite.js";

sessionsSuite("ns", { full: true });
