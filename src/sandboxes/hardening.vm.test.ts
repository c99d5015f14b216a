// The hardening suite on the vm engine: the tmpfs caps and the OOM order in
// the guest (the rest is about the ns engine's host-side limits).
import { hardeningSuite } from "./hardening-suite.js";

hardeningSuite("vm");
