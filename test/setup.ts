// Test-wide defaults: quiet framework logs unless asked for (PROTOMESH_LOG_LEVEL=debug npm test).
process.env.PROTOMESH_LOG_LEVEL ??= "warn";

import { leftoverHooks } from "./helpers/leftovers";

/** Root hooks for every spec: nothing a test started keeps running after it. */
export const mochaHooks = leftoverHooks;
