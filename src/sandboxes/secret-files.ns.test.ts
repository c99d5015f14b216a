// Secret files, versions and their events on the ns engine (runc), in full.
import { secretFilesSuite } from "./secret-files-suite.js";

secretFilesSuite("ns", { full: true });
