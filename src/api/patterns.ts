// The name rules as plain regular expressions, with no schema library behind
// them: the schemas (common.ts), the services' checks and the CLI share them.

/** Sandboxes, templates (and image names in templates). */
export const NAME_PATTERN = "^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$";
/** Secrets and environment variables. */
export const ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,255}$";
