// The sandbox API suite on the vm engine with `debian` as the daemon's default
// image: the lifecycle and isolation cases (each TCG boot costs seconds; the ns
// run on debian is full).
import { ensureDebianTestImage } from "../engine/ns/test-image.js";
import { sandboxApiSuite } from "./api-suite.js";

sandboxApiSuite("vm", { full: false, image: "debian", prepare: ensureDebianTestImage });
