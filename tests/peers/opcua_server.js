// OPC-UA test server for tbgw integration tests (node-opcua).
// Usage: node opcua_server.js PORT [--user NAME:PASSWORD] [--many N] [--many-period MS] [--pki DIR]
//        [--late SECONDS] [--blink SECONDS] [--x509-user CERT]
// Serves opc.tcp://127.0.0.1:PORT/ with Objects/MyObject shaped like the reference's opcua.json:
// Temperature, Humidity, Frequency, Power, Relay (writable), Counter (changes every 200 ms), Setpoint
// (ns=1;i=9), GuidVar (ns=1;g=72962b91-...), OpaqueVar (ns=1;b=dGJndw==) and the
// method multiply(a, b) -> a * b (Int64; --multiply TYPE declares it with TYPE arguments and result,
// e.g. Int32), and typed methods: scale(UInt16 raw, Double factor) -> Double raw * factor,
// greet(String name) -> String "hello <name>", sum(Int32[] values) -> Int32, and echo(Boolean, SByte,
// Byte, Int16, UInt16, Int32, UInt32, Int64, UInt64, Float, Double, String, DateTime, ByteString)
// returning its inputs as outputs, configure(Mode mode, Duration after) -> String (Mode: a custom
// enumeration Off/On/Auto). --many N adds Objects/Many with N Double variables V0..V{N-1}
// changing every 100 ms (--many-period MS: every MS ms). --pki DIR uses DIR/server.pem and
// DIR/server.key (application URI urn:tbgw:test-server), offers every security policy with Sign and
// SignAndEncrypt, and accepts any client certificate. --late S adds MyObject/Late (Double 7.5) S
// seconds after start. --blink S adds Objects/Blink with Value (Double 1.25) S seconds after start and
// deletes it S seconds later.
// --x509-user CERT (with --pki) turns anonymous logins off and accepts X509 user identity tokens
// whose certificate is CERT (PEM or DER, trusted in DIR/user-pki at start); other user
// certificates are refused (BadIdentityTokenRejected).
// Prints "READY <port>" once listening.
"use strict";
const opcua = require("node-opcua");

const args = process.argv.slice(2);
const port = parseInt(args[0], 10);
let user = null;
let many = 0;
let pki = null;
let late = -1;
let x509User = null;
let manyPeriod = 100;
let blink = -1;
let multiplyType = "Int64";
for (let i = 1; i < args.length; i++) {
    if (args[i] === "--user") user = args[++i].split(":");
    else if (args[i] === "--many") many = parseInt(args[++i], 10);
    else if (args[i] === "--pki") pki = args[++i];
    else if (args[i] === "--late") late = parseFloat(args[++i]);
    else if (args[i] === "--x509-user") x509User = args[++i];
    else if (args[i] === "--many-period") manyPeriod = parseInt(args[++i], 10);
    else if (args[i] === "--blink") blink = parseFloat(args[++i]);
    else if (args[i] === "--multiply") multiplyType = args[++i];
}

// Int64 values travel as [high, low] pairs in node-opcua.
function fromInt64(v) {
    return Array.isArray(v) ? v[0] * 4294967296 + v[1] : Number(v);
}
function toInt64(n) {
    return [Math.floor(n / 4294967296), n >>> 0];
}

async function main() {
    const options = {
        port,
        hostname: "127.0.0.1",
        resourcePath: "/",
        buildInfo: { productName: "tbgw-test-server" },
        securityModes: [
            opcua.MessageSecurityMode.None,
            opcua.MessageSecurityMode.Sign,
            opcua.MessageSecurityMode.SignAndEncrypt,
        ],
        securityPolicies: [opcua.SecurityPolicy.None, opcua.SecurityPolicy.Basic256Sha256],
        allowAnonymous: !user,
    };
    if (pki) {
        const path = require("path");
        options.certificateFile = path.join(pki, "server.pem");
        options.privateKeyFile = path.join(pki, "server.key");
        options.serverInfo = { applicationUri: "urn:tbgw:test-server" };
        options.serverCertificateManager = new opcua.OPCUACertificateManager({
            automaticallyAcceptUnknownCertificate: true,
            rootFolder: path.join(pki, "node-pki"),
        });
        options.securityPolicies = [
            opcua.SecurityPolicy.None,
            opcua.SecurityPolicy.Basic128Rsa15,
            opcua.SecurityPolicy.Basic256,
            opcua.SecurityPolicy.Basic256Sha256,
            opcua.SecurityPolicy.Aes128_Sha256_RsaOaep,
            opcua.SecurityPolicy.Aes256_Sha256_RsaPss,
        ];
    }
    if (x509User && pki) {
        const path = require("path");
        options.allowAnonymous = false;
        options.userCertificateManager = new opcua.OPCUACertificateManager({
            automaticallyAcceptUnknownCertificate: false,
            rootFolder: path.join(pki, "user-pki"),
        });
    }
    if (user) {
        options.userManager = {
            isValidUser: (name, password) => name === user[0] && password === user[1],
        };
    }
    const server = new opcua.OPCUAServer(options);
    await server.initialize();
    if (x509User && pki) {
        const fs = require("fs");
        const raw = fs.readFileSync(x509User);
        const text = raw.toString("latin1");
        const m = text.match(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/);
        const der = m ? Buffer.from(m[1].replace(/\s+/g, ""), "base64") : raw;
        await options.userCertificateManager.initialize();
        await options.userCertificateManager.trustCertificate(der);
    }
    const ns = server.engine.addressSpace.getOwnNamespace();
    const objects = server.engine.addressSpace.rootFolder.objects;
    const dev = ns.addObject({ organizedBy: objects, browseName: "MyObject", nodeId: "s=MyObject" });

    const values = {
        Temperature: { dataType: "Double", value: 21.5 },
        Humidity: { dataType: "Double", value: 55.25 },
        Frequency: { dataType: "Int32", value: 50 },
        Power: { dataType: "Double", value: 230.5 },
        Relay: { dataType: "Boolean", value: false },
        Counter: { dataType: "Int32", value: 0 },
        Name: { dataType: "String", value: "Demo Device" },
    };
    for (const [name, v] of Object.entries(values)) {
        ns.addVariable({
            componentOf: dev,
            browseName: name,
            nodeId: "s=" + name,
            dataType: v.dataType,
            accessLevel: "CurrentRead | CurrentWrite",
            userAccessLevel: "CurrentRead | CurrentWrite",
            minimumSamplingInterval: 50,
            value: { dataType: opcua.DataType[v.dataType], value: v.value },
        });
    }
    // the other node id forms: numeric, GUID and opaque identifiers (written by set RPCs)
    for (const [name, nodeId, dataType, value] of [
        ["Setpoint", "i=9", "Double", 1.5],
        ["GuidVar", "g=72962b91-fa75-4ae6-8d28-b404dc7daf63", "Int32", 7],
        ["OpaqueVar", "b=dGJndw==", "String", "opaque"],
    ]) {
        ns.addVariable({
            componentOf: dev,
            browseName: name,
            nodeId,
            dataType,
            accessLevel: "CurrentRead | CurrentWrite",
            userAccessLevel: "CurrentRead | CurrentWrite",
            value: { dataType: opcua.DataType[dataType], value },
        });
    }
    const counterNode = server.engine.addressSpace.findNode("ns=1;s=Counter");
    setInterval(() => {
        values.Counter.value += 1;
        counterNode.setValueFromSource({ dataType: opcua.DataType.Int32, value: values.Counter.value });
    }, 200);

    const mt = opcua.DataType[multiplyType];
    const wide = multiplyType === "Int64" || multiplyType === "UInt64";
    const method = ns.addMethod(dev, {
        browseName: "multiply",
        nodeId: "s=multiply",
        inputArguments: [
            { name: "a", dataType: mt },
            { name: "b", dataType: mt },
        ],
        outputArguments: [{ name: "result", dataType: mt }],
    });
    method.bindMethod((inputArguments, context, callback) => {
        const a = fromInt64(inputArguments[0].value);
        const b = fromInt64(inputArguments[1].value);
        callback(null, {
            statusCode: opcua.StatusCodes.Good,
            outputArguments: [
                { dataType: mt, arrayType: opcua.VariantArrayType.Scalar, value: wide ? toInt64(a * b) : a * b },
            ],
        });
    });

    const typed = (name, inputs, outputs, fn) => {
        const m = ns.addMethod(dev, { browseName: name, nodeId: "s=" + name, inputArguments: inputs,
                                      outputArguments: outputs });
        m.bindMethod((inputArguments, context, callback) => {
            callback(null, { statusCode: opcua.StatusCodes.Good, outputArguments: fn(inputArguments) });
        });
    };
    const D = opcua.DataType;
    const scalar = opcua.VariantArrayType.Scalar;
    typed("scale", [{ name: "raw", dataType: D.UInt16 }, { name: "factor", dataType: D.Double }],
          [{ name: "value", dataType: D.Double }],
          (a) => [{ dataType: D.Double, arrayType: scalar, value: a[0].value * a[1].value }]);
    typed("greet", [{ name: "name", dataType: D.String }], [{ name: "text", dataType: D.String }],
          (a) => [{ dataType: D.String, arrayType: scalar, value: "hello " + a[0].value }]);
    typed("sum", [{ name: "values", dataType: D.Int32, valueRank: 1, arrayDimensions: [0] }],
          [{ name: "total", dataType: D.Int32 }],
          (a) => [{ dataType: D.Int32, arrayType: scalar, value: Array.from(a[0].value).reduce((x, y) => x + y, 0) }]);
    // a custom enumeration (Int32 on the wire) and Duration (a Double) as declared types
    const modeType = ns.addEnumerationType({ browseName: "Mode", enumeration: ["Off", "On", "Auto"] });
    typed("configure", [{ name: "mode", dataType: modeType.nodeId },
                        { name: "after", dataType: opcua.resolveNodeId("Duration") }],
          [{ name: "text", dataType: D.String }],
          (a) => [{ dataType: D.String, arrayType: scalar,
                    value: "mode " + a[0].value + " (" + opcua.DataType[a[0].dataType] + ") after " + a[1].value +
                           " ms (" + opcua.DataType[a[1].dataType] + ")" }]);
    const echoTypes = ["Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
                       "Float", "Double", "String", "DateTime", "ByteString"];
    typed("echo", echoTypes.map((t) => ({ name: t.toLowerCase(), dataType: D[t] })),
          echoTypes.map((t) => ({ name: t.toLowerCase(), dataType: D[t] })),
          (a) => a.map((v) => ({ dataType: v.dataType, arrayType: scalar, value: v.value })));

    if (many > 0) {
        const folder = ns.addObject({ organizedBy: objects, browseName: "Many", nodeId: "s=Many" });
        const vars = [];
        for (let i = 0; i < many; i++) {
            vars.push(
                ns.addVariable({
                    componentOf: folder,
                    browseName: "V" + i,
                    nodeId: "s=V" + i,
                    dataType: "Double",
                    minimumSamplingInterval: 50,
                    value: { dataType: opcua.DataType.Double, value: i },
                })
            );
        }
        let tick = 0;
        setInterval(() => {
            tick++;
            for (let i = 0; i < vars.length; i++)
                vars[i].setValueFromSource({ dataType: opcua.DataType.Double, value: i + tick });
        }, manyPeriod);
    }

    if (late >= 0) {
        setTimeout(() => {
            ns.addVariable({
                componentOf: dev,
                browseName: "Late",
                nodeId: "s=Late",
                dataType: "Double",
                value: { dataType: opcua.DataType.Double, value: 7.5 },
            });
        }, late * 1000);
    }

    if (blink >= 0) {
        setTimeout(() => {
            const obj = ns.addObject({ organizedBy: objects, browseName: "Blink", nodeId: "s=Blink" });
            ns.addVariable({
                componentOf: obj,
                browseName: "Value",
                nodeId: "s=BlinkValue",
                dataType: "Double",
                value: { dataType: opcua.DataType.Double, value: 1.25 },
            });
            setTimeout(() => {
                server.engine.addressSpace.deleteNode(obj);
            }, blink * 1000);
        }, blink * 1000);
    }

    await server.start();
    process.stdout.write("READY " + port + "\n");
    const stop = async () => {
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
