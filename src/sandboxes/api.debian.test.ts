// The sandbox API suite on the ns engine with `debian` as the daemon's
// default image (`serve --image debian`), in full.
import { ensureDebianTestImage } from "../engine/ns/test-image.js";
import { sandboxApiSuite } from "./api-suite.js";

sandboxApiSuite("ns", { full: true, image: "debian", prepare: ensureDebianTestImage });
