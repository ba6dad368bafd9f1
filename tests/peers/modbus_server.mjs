#!/usr/bin/env node
// A Modbus TCP server not written here (jsmodbus 5), for peer tests of our Modbus client code:
// tests/node_modbus.py starts it with register contents encoded by the Python side, and the tests
// read them with our clients. The registers are plain uint16 here: this program knows nothing of
// floats, word orders or scaling.
//
// node modbus_server.mjs [--host 127.0.0.1] [--port 0] [--unit N] [--exit-with-stdin]
//     (--registers JSON | --registers-file PATH)
//
// Registers: {"input": {"<wire address>": <uint16>, ...}, "holding": {...},
//             "coils": {"<address>": 0|1}, "discrete": {...}}; every table is optional and spans
// the whole address space (0-65535), zero where not given. Holding registers and coils are
// writable (functions 5, 6, 15, 16) and keep what is written.
//
// Once listening it prints one JSON line on stdout, {"port": N}. It answers every unit id, or with
// --unit only that one: any other gets exception 0x0B (gateway target device failed to respond),
// as from a serial-to-TCP gateway with nothing at that address. SIGTERM or SIGINT close it with
// exit code 0; with --exit-with-stdin it also exits when its stdin reaches end of file (the parent
// died). Bad arguments: a message on stderr, exit code 2; a listen error: exit code 1. Problems
// inside a running server are reported on stderr as "modbus_server: internal error: ..." and the
// server keeps serving.
//
// jsmodbus 5.0 serves function 4 from the `input` Buffer option (and 1, 2, 3 from `coils`,
// `discrete`, `holding`), every unit id alike. It trusts what it parses, though: a read of more
// than 127 registers throws (RangeError writing the byte count) inside the socket's data handler
// and takes the process down, a read past the end of a buffer answers short instead of exception
// 0x02, write-single-coil beyond the coils throws, a frame it cannot parse stalls the connection
// forever, and a client's reset (ECONNRESET, no error listener) is an uncaught error. So each
// connection's bytes go through a framer here first: it cuts MBAP frames, drops the connection on
// a header that is not Modbus TCP, answers what jsmodbus would get wrong with the standard
// exceptions, and hands jsmodbus only well-formed requests it serves correctly, one whole frame at
// a time.

import fs from "node:fs";
import net from "node:net";
import process from "node:process";
import { parseArgs } from "node:util";

import Modbus from "jsmodbus";

const USAGE =
    "usage: modbus_server.mjs [--host H] [--port N] [--unit N] [--exit-with-stdin] " +
    "(--registers JSON | --registers-file PATH)";
const REGISTERS = 65536; // the whole address space of every table
const MAX_PDU = 253;
// Function code -> [table, maximum quantity] for the reads; writes are checked one by one.
const READS = {
    0x01: ["coils", 2000],
    0x02: ["discrete", 2000],
    0x03: ["holding", 125],
    0x04: ["input", 125],
};
const WRITE_SINGLE_COIL = 0x05;
const WRITE_SINGLE_REGISTER = 0x06;
const WRITE_MULTIPLE_COILS = 0x0f;
const WRITE_MULTIPLE_REGISTERS = 0x10;
const ILLEGAL_FUNCTION = 0x01;
const ILLEGAL_DATA_ADDRESS = 0x02;
const ILLEGAL_DATA_VALUE = 0x03;
const SERVER_DEVICE_FAILURE = 0x04;
const GATEWAY_TARGET_FAILED = 0x0b;

function usage(message) {
    process.stderr.write(`modbus_server: ${message}\n${USAGE}\n`);
    process.exit(2);
}

function internalError(what, error) {
    const detail = error instanceof Error ? error.stack ?? error.message : String(error);
    process.stderr.write(`modbus_server: internal error: ${what}: ${detail}\n`);
}

function integer(text, name, low, high) {
    const value = Number(text);
    if (!Number.isInteger(value) || value < low || value > high) {
        usage(`${name} must be an integer ${low}..${high}, not ${JSON.stringify(text)}`);
    }
    return value;
}

function options() {
    let values;
    try {
        ({ values } = parseArgs({
            options: {
                host: { type: "string", default: "127.0.0.1" },
                port: { type: "string", default: "0" },
                unit: { type: "string" },
                registers: { type: "string" },
                "registers-file": { type: "string" },
                "exit-with-stdin": { type: "boolean", default: false },
            },
            strict: true,
        }));
    } catch (error) {
        usage(error.message);
    }
    if ((values.registers === undefined) === (values["registers-file"] === undefined)) {
        usage("give exactly one of --registers or --registers-file");
    }
    let text = values.registers;
    if (text === undefined) {
        try {
            text = fs.readFileSync(values["registers-file"], "utf8");
        } catch (error) {
            usage(`cannot read --registers-file: ${error.message}`);
        }
    }
    return {
        host: values.host,
        port: integer(values.port, "--port", 0, 65535),
        unit: values.unit === undefined ? null : integer(values.unit, "--unit", 0, 255),
        exitWithStdin: values["exit-with-stdin"],
        tables: tables(text),
    };
}

// The four tables as jsmodbus's Buffers: registers big-endian, coils bit (address % 8) of byte
// (address / 8), as jsmodbus reads and writes them.
function tables(text) {
    let spec;
    try {
        spec = JSON.parse(text);
    } catch (error) {
        usage(`registers are not JSON: ${error.message}`);
    }
    if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
        usage('registers must be a JSON object like {"input": {"0": 17}}');
    }
    const result = {
        holding: Buffer.alloc(2 * REGISTERS),
        input: Buffer.alloc(2 * REGISTERS),
        coils: Buffer.alloc(REGISTERS / 8),
        discrete: Buffer.alloc(REGISTERS / 8),
    };
    for (const [name, entries] of Object.entries(spec)) {
        if (!(name in result)) {
            usage(`unknown table ${JSON.stringify(name)}: holding, input, coils or discrete`);
        }
        if (entries === null || typeof entries !== "object" || Array.isArray(entries)) {
            usage(`table ${name} must be an object of "<address>": value`);
        }
        const bits = name === "coils" || name === "discrete";
        for (const [key, value] of Object.entries(entries)) {
            const address = /^\d+$/.test(key) ? Number(key) : NaN;
            if (!(address < REGISTERS)) {
                usage(`${name}: address ${JSON.stringify(key)} is not an integer 0..65535`);
            }
            if (bits) {
                if (![0, 1, false, true].includes(value)) {
                    usage(`${name}[${key}]: ${JSON.stringify(value)} is not 0, 1, false or true`);
                }
                const mask = 1 << address % 8;
                const index = Math.floor(address / 8);
                result[name][index] = value ? result[name][index] | mask : result[name][index] & ~mask;
            } else {
                if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
                    usage(`${name}[${key}]: ${JSON.stringify(value)} is not a uint16 (0..65535)`);
                }
                result[name].writeUInt16BE(value, 2 * address);
            }
        }
    }
    return result;
}

// The exception code for a request jsmodbus must not see, or 0 when it may serve it.
// `pdu` is the function code and its data, whole (the MBAP length said so).
function refusal(pdu) {
    const fc = pdu[0];
    const field = (offset) => pdu.readUInt16BE(offset);
    if (fc in READS) {
        if (pdu.length !== 5) return ILLEGAL_DATA_VALUE;
        const [, maximum] = READS[fc];
        const [start, quantity] = [field(1), field(3)];
        if (quantity < 1 || quantity > maximum) return ILLEGAL_DATA_VALUE;
        return start + quantity > REGISTERS ? ILLEGAL_DATA_ADDRESS : 0;
    }
    if (fc === WRITE_SINGLE_COIL || fc === WRITE_SINGLE_REGISTER) {
        if (pdu.length !== 5) return ILLEGAL_DATA_VALUE;
        if (fc === WRITE_SINGLE_COIL && field(3) !== 0xff00 && field(3) !== 0x0000) {
            return ILLEGAL_DATA_VALUE;
        }
        return 0; // every address 0..65535 exists
    }
    if (fc === WRITE_MULTIPLE_COILS || fc === WRITE_MULTIPLE_REGISTERS) {
        if (pdu.length < 6) return ILLEGAL_DATA_VALUE;
        const [start, quantity, bytes] = [field(1), field(3), pdu[5]];
        const registers = fc === WRITE_MULTIPLE_REGISTERS;
        const [maximum, expected] = registers
            ? [123, 2 * quantity]
            : [1968, Math.ceil(quantity / 8)];
        if (quantity < 1 || quantity > maximum || bytes !== expected || pdu.length !== 6 + bytes) {
            return ILLEGAL_DATA_VALUE;
        }
        return start + quantity > REGISTERS ? ILLEGAL_DATA_ADDRESS : 0;
    }
    return ILLEGAL_FUNCTION;
}

function exceptionFrame(header, fc, code) {
    const frame = Buffer.alloc(9);
    header.copy(frame, 0, 0, 7); // transaction id, protocol id, (length), unit id
    frame.writeUInt16BE(3, 4);
    frame[7] = (fc | 0x80) & 0xff;
    frame[8] = code;
    return frame;
}

// Takes over `socket`'s data from jsmodbus's handlers (already attached): whole, checked frames
// go to them one at a time; the rest is answered or ends the connection here.
function guard(socket, unit) {
    const jsmodbus = socket.listeners("data");
    socket.removeAllListeners("data");
    let pending = Buffer.alloc(0);
    socket.on("data", (data) => {
        pending = Buffer.concat([pending, data]);
        while (pending.length >= 7) {
            const protocol = pending.readUInt16BE(2);
            const length = pending.readUInt16BE(4); // unit id + PDU
            if (protocol !== 0 || length < 2 || length > 1 + MAX_PDU) {
                // Not Modbus TCP: there is no telling where the next frame starts.
                pending = Buffer.alloc(0);
                socket.destroy();
                return;
            }
            if (pending.length < 6 + length) return;
            const frame = pending.subarray(0, 6 + length);
            pending = pending.subarray(6 + length);
            const fc = frame[7];
            if (unit !== null && frame[6] !== unit) {
                socket.write(exceptionFrame(frame, fc, GATEWAY_TARGET_FAILED));
                continue;
            }
            const code = refusal(frame.subarray(7));
            if (code !== 0) {
                socket.write(exceptionFrame(frame, fc, code));
                continue;
            }
            try {
                for (const handler of jsmodbus) handler.call(socket, Buffer.from(frame));
            } catch (error) {
                internalError(`jsmodbus failed on ${frame.toString("hex")}`, error);
                socket.write(exceptionFrame(frame, fc, SERVER_DEVICE_FAILURE));
            }
        }
    });
}

function main() {
    const { host, port, unit, exitWithStdin, tables: buffers } = options();
    const sockets = new Set();
    const server = new net.Server();
    // jsmodbus attaches its data handler on "connection"; the guard, registered after it, takes
    // that handler over.
    new Modbus.server.TCP(server, buffers);
    server.on("connection", (socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => socket.destroy()); // a client's reset is not our failure
        socket.setNoDelay(true);
        guard(socket, unit);
    });
    server.on("error", (error) => {
        process.stderr.write(`modbus_server: cannot listen on ${host}:${port}: ${error.message}\n`);
        process.exit(1);
    });

    let stopping = false;
    const stop = () => {
        if (stopping) return;
        stopping = true;
        server.close();
        for (const socket of sockets) socket.destroy();
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    if (exitWithStdin) {
        process.stdin.on("end", stop);
        process.stdin.on("error", stop);
        process.stdin.resume();
    }
    // Last resort: a fault in one request must not take the server down for the rest.
    process.on("uncaughtException", (error) => internalError("uncaught exception", error));

    server.listen({ host, port }, () => {
        process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
    });
}

main();
