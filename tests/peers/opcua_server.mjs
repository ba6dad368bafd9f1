#!/usr/bin/env node
// An OPC-UA server not written here (node-opcua), for peer tests of our OPC-UA client code: a
// compute manager as another vendor would build it. tests/node_opcua.py starts it.
//
// node opcua_server.mjs --pki FOLDER --cert server.der --key server.key.pem --application-uri URI
//     --namespace URI --variables JSON [--mode SignAndEncrypt] [--allow-unsecured]
//     [--no-discovery] [--trust client.der]... [--port 0] [--exit-with-stdin]
//
// --variables: [{"path": ["ComputeManager", "ItPower"], "type": "Double", "value": 12.5}, ...]:
// one variable per entry under Objects, each name in the namespace --namespace, its parents made
// as objects; types are OPC-UA built-in type names (Double, Boolean, UInt32...). Every variable is
// readable and writable and keeps what is written.
//
// Security: policy Basic256Sha256 with --mode (Sign or SignAndEncrypt; default SignAndEncrypt),
// plus the None endpoint with --allow-unsecured. Without it, node-opcua still accepts unsecured
// channels for discovery (GetEndpoints) and refuses sessions on them (BadSecurityModeRejected);
// --no-discovery refuses unsecured channels altogether (BadSecurityPolicyRejected). The server's certificate manager lives in --pki
// (never the home directory); a client certificate is trusted only if given with --trust: any
// other is refused, as node-opcua refuses one (it answers the OpenSecureChannel request with a
// ServiceFault, BadSecurityChecksFailed).
//
// Once listening it prints one JSON line on stdout, {"port": N, "endpoint": "opc.tcp://..."}.
// SIGTERM or SIGINT stop it with exit code 0; with --exit-with-stdin it also exits when its stdin
// reaches end of file (the parent died). Bad arguments: a message on stderr, exit code 2; a start
// failure: exit code 1.

import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";

import certificateManagerModule from "node-opcua-certificate-manager";
import clientModule from "node-opcua-client";
import nodesetsModule from "node-opcua-nodesets";
import serverModule from "node-opcua-server";

const { OPCUACertificateManager } = certificateManagerModule;
const { DataType, MessageSecurityMode, SecurityPolicy, StatusCodes, Variant } = clientModule;
const { nodesets } = nodesetsModule;
const { OPCUAServer } = serverModule;

const USAGE =
    "usage: opcua_server.mjs --pki FOLDER --cert FILE --key FILE --application-uri URI " +
    "--namespace URI " +
    "--variables JSON [--mode Sign|SignAndEncrypt] [--allow-unsecured] [--no-discovery] " +
    "[--trust FILE]... " +
    "[--port N] [--exit-with-stdin]";

function usage(message) {
    process.stderr.write(`opcua_server: ${message}\n${USAGE}\n`);
    process.exit(2);
}

function options() {
    let values;
    try {
        ({ values } = parseArgs({
            options: {
                pki: { type: "string" },
                cert: { type: "string" },
                key: { type: "string" },
                "application-uri": { type: "string" },
                namespace: { type: "string" },
                variables: { type: "string" },
                mode: { type: "string", default: "SignAndEncrypt" },
                "allow-unsecured": { type: "boolean", default: false },
                "no-discovery": { type: "boolean", default: false },
                trust: { type: "string", multiple: true, default: [] },
                port: { type: "string", default: "0" },
                "exit-with-stdin": { type: "boolean", default: false },
            },
            strict: true,
        }));
    } catch (error) {
        usage(error.message);
    }
    for (const required of ["pki", "cert", "key", "application-uri", "namespace", "variables"]) {
        if (!values[required]) usage(`--${required} is required`);
    }
    const modes = { Sign: MessageSecurityMode.Sign, SignAndEncrypt: MessageSecurityMode.SignAndEncrypt };
    if (!(values.mode in modes)) usage("--mode must be Sign or SignAndEncrypt");
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) usage("--port must be 0..65535");
    let variables;
    try {
        variables = JSON.parse(values.variables);
    } catch (error) {
        usage(`--variables is not JSON: ${error.message}`);
    }
    if (!Array.isArray(variables)) usage("--variables must be a JSON list");
    for (const v of variables) {
        if (!Array.isArray(v.path) || v.path.length === 0 || !(v.type in DataType)) {
            usage(`--variables: ${JSON.stringify(v)} needs a path and a built-in type`);
        }
    }
    return { ...values, port, mode: modes[values.mode], variables };
}

function populate(addressSpace, uri, variables) {
    const namespace = addressSpace.registerNamespace(uri);
    const objects = addressSpace.rootFolder.objects;
    const folders = new Map();
    const parentOf = (names) => {
        let parent = objects;
        for (let i = 0; i < names.length; i++) {
            const key = names.slice(0, i + 1).join("/");
            if (!folders.has(key)) {
                folders.set(key, namespace.addObject({ organizedBy: parent, browseName: names[i] }));
            }
            parent = folders.get(key);
        }
        return parent;
    };
    for (const spec of variables) {
        const dataType = DataType[spec.type];
        let value = new Variant({ dataType, value: spec.value });
        namespace.addVariable({
            componentOf: parentOf(spec.path.slice(0, -1)),
            browseName: spec.path[spec.path.length - 1],
            dataType: spec.type,
            minimumSamplingInterval: 100,
            value: {
                get: () => value,
                set: (variant) => {
                    value = new Variant({ dataType, value: variant.value });
                    return StatusCodes.Good;
                },
            },
        });
    }
}

async function main() {
    const opts = options();
    const certificateManager = new OPCUACertificateManager({
        rootFolder: opts.pki,
        automaticallyAcceptUnknownCertificate: false,
        disableFileWatchers: true,
    });
    await certificateManager.initialize();
    for (const file of opts.trust) {
        const der = fs.readFileSync(file);
        await certificateManager.trustCertificate(der);
    }
    const securityModes = [opts.mode];
    const securityPolicies = [SecurityPolicy.Basic256Sha256];
    if (opts["allow-unsecured"]) {
        securityModes.push(MessageSecurityMode.None);
        securityPolicies.push(SecurityPolicy.None);
    }
    const server = new OPCUAServer({
        port: opts.port,
        hostname: "127.0.0.1",
        alternateHostname: ["127.0.0.1"],
        securityModes,
        securityPolicies,
        serverCertificateManager: certificateManager,
        certificateFile: path.resolve(opts.cert),
        privateKeyFile: path.resolve(opts.key),
        nodeset_filename: [nodesets.standard],
        allowAnonymous: true,
        disableDiscovery: opts["no-discovery"],
        serverInfo: { applicationUri: opts["application-uri"], productUri: "digital-boiler-test-peer" },
        buildInfo: { productName: "digital-boiler test peer (node-opcua)" },
    });
    await server.initialize();
    populate(server.engine.addressSpace, opts.namespace, opts.variables);
    await server.start();
    const endpoint = server.getEndpointUrl();
    const port = Number(new URL(endpoint.replace(/^opc\.tcp:/, "http:")).port);
    process.stdout.write(`${JSON.stringify({ port, endpoint })}\n`);

    let stopping = false;
    const stop = async () => {
        if (stopping) return;
        stopping = true;
        await server.shutdown(0).catch(() => {});
        await certificateManager.dispose().catch(() => {});
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    if (opts["exit-with-stdin"]) {
        process.stdin.on("end", stop);
        process.stdin.on("error", stop);
        process.stdin.resume();
    }
}

main().catch((error) => {
    process.stderr.write(`opcua_server: ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
});
