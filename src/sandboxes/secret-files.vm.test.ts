// Secret files on the vm engine (QEMU microvm): delivery, tmpfs, nothing on the
// host's disk, gone after destroy. The rest is engine-independent (ns suite).
import { secretFilesSuite } from "./secret-files-suite.js";

secretFilesSuite("vm", { full: false });
