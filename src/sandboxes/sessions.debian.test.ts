// Sessions in the `debian` image (bash, coreutils stty) on the ns engine: the pty shell and a background command.
import { sessionsSuite } from "./sessions-suite.js";

sessionsSuite("ns", { full: false, image: "debian" });
