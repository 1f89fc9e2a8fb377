// Test-wide defaults: quiet framework logs unless asked for (PROTOMESH_LOG_LEVEL=debug npm test).
process.env.PROTOMESH_LOG_LEVEL ??= "warn";
