// Node-RED settings for bench/e2e.py: loopback only, plain-text credentials in a temporary user dir,
// warnings only (logging every message would measure the logger).
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: @UI_PORT@,
    flowFile: "flows.json",
    credentialSecret: false,
    logging: { console: { level: "warn", metrics: false, audit: false } },
    editorTheme: { tours: false },
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    telemetry: { enabled: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
};
