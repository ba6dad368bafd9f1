#!/usr/bin/env node
// An OPC-UA client not written here (node-opcua), run by tests/integration/test_opcua_server.py
// against the simulated compute manager: it connects, resolves the namespace URI to its index,
// reads one variable by browse path under the Objects folder, subscribes to it and collects a
// number of data changes (the first is the value at subscription time), then prints one JSON
// line on stdout and exits 0. On any failure it prints a message on stderr and exits 1; after
// --timeout seconds it gives up with exit code 2, so it never hangs a test run.
//
// node opcua_client.mjs --endpoint opc.tcp://127.0.0.1:4840 \
//     --namespace urn:digital-boiler:compute-manager --browse-path ComputeManager/ChipTempMax \
//     --mode none|Sign|SignAndEncrypt [--cert client.der --key client.key.pem
//     --application-uri urn:...] --pki /tmp/pki --changes 3 [--timeout 20]
//
// --pki is the client's certificate-manager folder (required: without it node-opcua writes its
// PKI into the home directory). The server's certificate is accepted automatically into that
// folder's trusted store on first sight; the server must trust --cert for a secure session.

import process from "node:process";
import { parseArgs } from "node:util";

import certificateManagerModule from "node-opcua-certificate-manager";
import opcua from "node-opcua-client";

const { OPCUACertificateManager } = certificateManagerModule;
const {
    AttributeIds,
    ClientMonitoredItem,
    ClientSubscription,
    DataType,
    MessageSecurityMode,
    OPCUAClient,
    SecurityPolicy,
    TimestampsToReturn,
    makeBrowsePath,
} = opcua;

const USAGE =
    "usage: opcua_client.mjs --endpoint URL --namespace URI --browse-path A/B " +
    "--mode none|Sign|SignAndEncrypt [--cert FILE --key FILE --application-uri URI] " +
    "--pki FOLDER --changes N [--timeout SECONDS]";

function fail(message, code = 1) {
    process.stderr.write(`opcua_client: ${message}\n`);
    process.exit(code);
}

function options() {
    let values;
    try {
        ({ values } = parseArgs({
            options: {
                endpoint: { type: "string" },
                namespace: { type: "string" },
                "browse-path": { type: "string" },
                mode: { type: "string", default: "none" },
                cert: { type: "string" },
                key: { type: "string" },
                "application-uri": { type: "string" },
                pki: { type: "string" },
                changes: { type: "string", default: "1" },
                timeout: { type: "string", default: "20" },
            },
            strict: true,
        }));
    } catch (error) {
        fail(`${error.message}\n${USAGE}`);
    }
    for (const required of ["endpoint", "namespace", "browse-path", "pki"]) {
        if (!values[required]) fail(`--${required} is required\n${USAGE}`);
    }
    const modes = {
        none: MessageSecurityMode.None,
        Sign: MessageSecurityMode.Sign,
        SignAndEncrypt: MessageSecurityMode.SignAndEncrypt,
    };
    if (!(values.mode in modes)) fail(`--mode must be none, Sign or SignAndEncrypt\n${USAGE}`);
    const secure = values.mode !== "none";
    if (secure && !(values.cert && values.key)) fail(`--mode ${values.mode} needs --cert and --key`);
    const changes = Number.parseInt(values.changes, 10);
    const timeout = Number.parseFloat(values.timeout);
    if (!(changes >= 1)) fail("--changes must be a whole number >= 1");
    if (!(timeout > 0)) fail("--timeout must be a positive number of seconds");
    return {
        endpoint: values.endpoint,
        namespace: values.namespace,
        browsePath: values["browse-path"].split("/").filter((name) => name.length > 0),
        securityMode: modes[values.mode],
        securityPolicy: secure ? SecurityPolicy.Basic256Sha256 : SecurityPolicy.None,
        cert: values.cert,
        key: values.key,
        applicationUri: values["application-uri"],
        pki: values.pki,
        changes,
        timeout,
    };
}

function plain(dataValue) {
    const variant = dataValue.value;
    let value = variant ? variant.value : null;
    if (typeof value === "bigint") value = value.toString();
    return {
        value,
        data_type: variant ? DataType[variant.dataType] : null,
        status: dataValue.statusCode.name,
        source_timestamp: dataValue.sourceTimestamp ? dataValue.sourceTimestamp.toISOString() : null,
    };
}

async function run(opts) {
    const certificateManager = new OPCUACertificateManager({
        rootFolder: opts.pki,
        automaticallyAcceptUnknownCertificate: true,
        disableFileWatchers: true,
    });
    await certificateManager.initialize();
    const client = OPCUAClient.create({
        applicationName: "digital-boiler-test-peer",
        ...(opts.applicationUri ? { applicationUri: opts.applicationUri } : {}),
        securityMode: opts.securityMode,
        securityPolicy: opts.securityPolicy,
        ...(opts.cert ? { certificateFile: opts.cert, privateKeyFile: opts.key } : {}),
        clientCertificateManager: certificateManager,
        endpointMustExist: false,
        connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
        keepSessionAlive: false,
    });
    let session = null;
    try {
        await client.connect(opts.endpoint);
        session = await client.createSession();
        const namespaces = await session.readNamespaceArray();
        const index = namespaces.indexOf(opts.namespace);
        if (index < 0) throw new Error(`namespace ${opts.namespace} not in ${JSON.stringify(namespaces)}`);
        const relative = opts.browsePath.map((name) => `/${index}:${name}`).join("");
        const found = await session.translateBrowsePath(makeBrowsePath("ObjectsFolder", relative));
        if (!found.statusCode.isGood() || found.targets.length === 0) {
            throw new Error(`browse path ${relative} under Objects: ${found.statusCode.name}`);
        }
        const nodeId = found.targets[0].targetId;
        const read = await session.read({ nodeId, attributeId: AttributeIds.Value });

        const subscription = ClientSubscription.create(session, {
            requestedPublishingInterval: 50,
            requestedLifetimeCount: 600,
            requestedMaxKeepAliveCount: 20,
            maxNotificationsPerPublish: 100,
            publishingEnabled: true,
            priority: 1,
        });
        const notifications = [];
        await new Promise((resolve, reject) => {
            const item = ClientMonitoredItem.create(
                subscription,
                { nodeId, attributeId: AttributeIds.Value },
                { samplingInterval: 0, discardOldest: true, queueSize: 100 },
                TimestampsToReturn.Both,
            );
            item.on("changed", (dataValue) => {
                notifications.push(plain(dataValue));
                if (notifications.length >= opts.changes) resolve();
            });
            item.on("err", (message) => reject(new Error(`monitored item: ${message}`)));
        });
        return {
            endpoint: opts.endpoint,
            namespace_index: index,
            node_id: nodeId.toString(),
            read: plain(read),
            notifications,
        };
    } finally {
        if (session) await session.close().catch(() => {});
        await client.disconnect().catch(() => {});
        await certificateManager.dispose().catch(() => {});
    }
}

const opts = options();
const timer = setTimeout(
    () => fail(`no result within ${opts.timeout} s (endpoint ${opts.endpoint})`, 2),
    opts.timeout * 1000,
);
try {
    const result = await run(opts);
    clearTimeout(timer);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
} catch (error) {
    fail(error && error.message ? error.message : String(error));
}
