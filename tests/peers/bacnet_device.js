// BACnet/IP devices for the integration tests, on the @bacnet-js/client stack (not ours).
// usage: node bacnet_device.js '<json spec>'
// spec: [{"port": 47900, "host": "127.0.0.1", "instance": 1234, "name": "dev", "rpm": true,
//         "objects": [{"type": 0, "instance": 1, "name": "temp", "value": 21.5}, ...]}]
// Each device answers Who-Is, ReadProperty, ReadPropertyMultiple (unless "rpm": false: then the stack
// answers it with an Error "unrecognized service") and WriteProperty (priority array, Null
// relinquishes). stdout: one JSON line per event ({"ready": ...}, {"write": ...}, {"whois": ...}).
// stdin: "stop <instance>" closes that device's socket, "start <instance>" opens it again,
// "set <instance> <type> <objInstance> <json value>" changes a present value, "probe <instance>
// <port> <deviceInstance>" sends a Who-Is and a ReadProperty(objectName) to another device,
// "announce <instance> <port>" an I-Am to 127.0.0.1:port.
// A Register-Foreign-Device is answered with a successful BVLC-Result ({"register": ttl}); a
// Delete-Foreign-Device-Table-Entry is reported ({"deleteFdt": "ip:port"}).
// "maxApdu" / "segmentation" / "vendor" change what the I-Am says (a device that takes segmented
// requests: "maxApdu": 128, "segmentation": 2); segments of requests received are counted and
// reported with the write they carried ({"write": {..., "segments": n}}). A description is
// writable too (a CharacterString). An object with "descriptionList" answers the Siemens
// proprietary property 3121 with it. "silent": true leaves Who-Is unanswered. "flakyIndex": k answers
// the first ReadProperty of objectList[k] with an Error (device/other), later ones as usual.
// "reportRpm": true reports the number of objects of each ReadPropertyMultiple ({"rpm": n}).
// "delay": ms answers each ReadProperty that much later ("delay <instance> <ms>" changes it).
// "covConfirmed": true sends confirmed COV notifications ({"covAcked": ...} when acknowledged).
// "busy <instance>" / "available <instance>" make a router send Router-Busy-To-Network /
// Router-Available-To-Network for its network to the gateway.
// A router ("router": {"net": 2001, "stations": {"10": <port of a device on 127.0.0.1>}}, with
// "host" another loopback address such as 127.0.0.2 and "port" the gateway's port): its own device
// object answers at host:port; a second socket on 0.0.0.0:port takes the broadcasts. It answers
// Who-Is-Router-To-Network with I-Am-Router-To-Network ({"whoIsRouter": ...}), forwards frames for
// its network (DNET, or a global broadcast) to the station's device with SNET/SADR of the sender,
// and the answers back with SNET = net and SADR = the station ({"routed": ...}). The stack itself
// cannot route (it drops network-layer messages), so this part works on the raw frames.
'use strict';
const dgram = require('dgram');
const Bacnet = require('@bacnet-js/client');
const C = Bacnet.default || Bacnet;
const E = require('@bacnet-js/client/dist/lib/enum.js');
const T = E.ApplicationTag;
const P = E.PropertyIdentifier;
const Services = require('@bacnet-js/client/dist/lib/services/index.js');
const NPDU = require('@bacnet-js/client/dist/lib/npdu.js');
const APDU = require('@bacnet-js/client/dist/lib/apdu.js');

const spec = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function pvTag(type) {
  if (type <= 2) return T.REAL;
  if (type <= 5) return T.ENUMERATED;
  if (type === 40) return T.CHARACTER_STRING;
  return T.UNSIGNED_INTEGER;
}

function makeDevice(d) {
  const objects = new Map();
  const key = (t, i) => t + ':' + i;
  objects.set(key(8, d.instance), { type: 8, instance: d.instance, name: d.name });
  for (const o of d.objects) {
    o.priority = new Array(16).fill(null);
    o.relinquish = o.value;
    objects.set(key(o.type, o.instance), o);
  }
  const read = (oid, prop, index) => {
    const o = objects.get(key(oid.type, oid.instance === 4194303 ? d.instance : oid.instance));
    if (!o) return { err: [E.ErrorClass.OBJECT, E.ErrorCode.UNKNOWN_OBJECT] };
    switch (prop) {
      case P.OBJECT_NAME: return [{ type: T.CHARACTER_STRING, value: o.name }];
      case P.OBJECT_IDENTIFIER: return [{ type: T.OBJECTIDENTIFIER, value: { type: o.type, instance: o.instance } }];
      case P.OBJECT_TYPE: return [{ type: T.ENUMERATED, value: o.type }];
    }
    if (o.type === 8) {
      switch (prop) {
        case P.OBJECT_LIST: {
          const all = [...objects.values()].map((x) => ({ type: T.OBJECTIDENTIFIER, value: { type: x.type, instance: x.instance } }));
          if (index === 0) return [{ type: T.UNSIGNED_INTEGER, value: all.length }];
          if (index !== undefined && index !== 0xFFFFFFFF) {
            if (index === d.flakyIndex) { // fails once, then answers
              d.flakyIndex = undefined;
              out({ flaky: index, instance: d.instance });
              return { err: [E.ErrorClass.DEVICE, E.ErrorCode.OTHER] };
            }
            if (index > all.length) return { err: [E.ErrorClass.PROPERTY, E.ErrorCode.INVALID_ARRAY_INDEX] };
            return [all[index - 1]];
          }
          return all;
        }
        case P.VENDOR_IDENTIFIER: return [{ type: T.UNSIGNED_INTEGER, value: d.vendor || 260 }];
        case P.SEGMENTATION_SUPPORTED: return [{ type: T.ENUMERATED, value: 3 }];
        case P.MAX_APDU_LENGTH_ACCEPTED: return [{ type: T.UNSIGNED_INTEGER, value: 1476 }];
      }
      return { err: [E.ErrorClass.PROPERTY, E.ErrorCode.UNKNOWN_PROPERTY] };
    }
    switch (prop) {
      case P.PRESENT_VALUE: {
        const active = o.priority.find((v) => v !== null);
        const v = active === undefined ? o.relinquish : active;
        return [{ type: pvTag(o.type), value: v }];
      }
      case P.STATUS_FLAGS: return [{ type: T.BIT_STRING, value: { bitsUsed: 4, value: [0] } }];
      case P.DESCRIPTION: return [{ type: T.CHARACTER_STRING, value: o.description || ('object ' + o.name) }];
      case P.PRIORITY_ARRAY:
        return o.priority.map((v) => (v === null ? { type: T.NULL, value: null } : { type: pvTag(o.type), value: v }));
      case P.RELINQUISH_DEFAULT: return [{ type: pvTag(o.type), value: o.relinquish }];
      case P.OUT_OF_SERVICE: return [{ type: T.BOOLEAN, value: false }];
      case 3121: // Siemens (vendor 7) descriptionList, an array of CharacterStrings
        if (o.descriptionList) return o.descriptionList.map((t) => ({ type: T.CHARACTER_STRING, value: t }));
    }
    return { err: [E.ErrorClass.PROPERTY, E.ErrorCode.UNKNOWN_PROPERTY] };
  };

  let client = null;
  let reqSegments = 0;
  // The stack sends no segmented answers: a "segmented" device splits its encoded objectList answer
  // into 128-octet segments itself, one per SegmentACK (window size 1), and says so on stdout.
  let seg = null;
  const sendSeg = () => {
    const i = seg.next;
    const last = i === seg.chunks.length - 1;
    const apdu = Buffer.concat([Buffer.from([last ? 0x38 : 0x3C, seg.invokeId, i, 1, 12]), seg.chunks[i]]);
    const frame = Buffer.concat([Buffer.from([0x81, 0x0A, 0, 0, 0x01, 0x00]), apdu]);
    frame.writeUInt16BE(frame.length, 2);
    client._transport.send(frame, frame.length, seg.receiver);
  };
  const sendSegmented = (m, oid, property, v) => {
    const buf = { buffer: Buffer.alloc(65536), offset: 0 };
    Services.ReadProperty.encodeAcknowledge(buf, oid, property.id, 0xFFFFFFFF, v);
    const body = buf.buffer.subarray(0, buf.offset);
    const chunks = [];
    for (let o = 0; o < body.length; o += 128) chunks.push(body.subarray(o, o + 128));
    seg = { receiver: m.header.sender.address, invokeId: m.invokeId, chunks, next: 0, acks: 0 };
    sendSeg();
  };
  const onRaw = (msg) => {
    // SegmentACK (PDU type 4) of the segmented answer in flight
    if (!seg || msg.length < 10 || msg[0] !== 0x81 || msg[4] !== 0x01 || (msg[6] >> 4) !== 4 || msg[7] !== seg.invokeId) return;
    seg.acks++;
    if (msg[8] !== seg.next) return;
    if (seg.next === seg.chunks.length - 1) {
      out({ segmented: { segments: seg.chunks.length, acks: seg.acks }, instance: d.instance });
      seg = null;
      return;
    }
    seg.next++;
    sendSeg();
  };
  // a handler that throws answers with an Error instead of taking the process down
  const guard = (fn) => (m) => {
    try {
      fn(m);
    } catch (e) {
      out({ error: String(e), instance: d.instance });
      client.errorResponse(m.header.sender, m.service, m.invokeId, E.ErrorClass.DEVICE, E.ErrorCode.OTHER);
    }
  };
  const open = () => {
    client = new C({ port: d.port, interface: d.host || '127.0.0.1', broadcastAddress: '127.255.255.255' });
    client.on('error', (e) => out({ error: String(e), instance: d.instance }));
    // segments of confirmed requests (PDU type 0 with the segmented bit)
    client._transport.prependListener('message', (msg) => { // before the stack hands on the write
      const n = msg.length > 6 && msg[0] === 0x81 ? parseNpdu(msg, 4) : null;
      if (n && !(n.ctl & 0x80) && n.body.length && (n.body[0] >> 4) === 0 && (n.body[0] & 0x08)) reqSegments++;
    });
    if (d.router) routerOn(client);
    if (d.segmented) {
      client._transport.on('message', onRaw);
      // the stack mistakes a SegmentACK for a segment and throws: it never sees them here
      client._processSegment = () => {};
    }
    client.on('whoIs', (m) => {
      const p = m.payload || {};
      if (p.lowLimit !== undefined && (d.instance < p.lowLimit || d.instance > p.highLimit)) return;
      if (d.silent) return out({ whoisIgnored: d.instance });
      out({ whois: d.instance, from: m.header.sender.address, net: m.header.sender.net });
      const segmentation = d.segmentation !== undefined ? d.segmentation : d.segmented ? 0 : 3;
      if (!d.maxApdu) return client.iAmResponse(m.header.sender, d.instance, segmentation, d.vendor || 260);
      const buffer = client._getApduBuffer(m.header.sender);
      NPDU.encode(buffer, E.NpduControlPriority.NORMAL_MESSAGE, m.header.sender);
      APDU.encodeUnconfirmedServiceRequest(buffer, E.PduType.UNCONFIRMED_REQUEST, E.UnconfirmedServiceChoice.I_AM);
      Services.IAm.encode(buffer, d.instance, d.maxApdu, segmentation, d.vendor || 260);
      client.sendBvlc(m.header.sender, buffer);
    });
    client.on('readProperty', guard((m) => {
      if (d.delay && !m.delayed) { // a slow device: the answer after d.delay ms
        m.delayed = true;
        return setTimeout(() => client && client.emit('readProperty', m), d.delay);
      }
      const { objectId, property } = m.payload;
      const v = read(objectId, property.id, property.index);
      if (v.err) return client.errorResponse(m.header.sender, m.service, m.invokeId, v.err[0], v.err[1]);
      const oid = { type: objectId.type, instance: objectId.instance === 4194303 ? d.instance : objectId.instance };
      if (d.segmented && property.id === P.OBJECT_LIST && (property.index === undefined || property.index === 0xFFFFFFFF)) {
        return sendSegmented(m, oid, property, v);
      }
      client.readPropertyResponse(m.header.sender, m.invokeId, oid, property, v);
    }));
    if (d.rpm !== false) {
      client.on('readPropertyMultiple', guard((m) => {
        if (d.reportRpm) out({ rpm: m.payload.properties.length, instance: d.instance });
        const values = m.payload.properties.map((spec) => {
          let props = spec.properties;
          if (props.length === 1 && props[0].id === P.ALL) {
            props = [P.OBJECT_NAME, P.PRESENT_VALUE, P.STATUS_FLAGS, P.DESCRIPTION].map((id) => ({ id, index: 0xFFFFFFFF }));
          }
          return {
            objectId: spec.objectId,
            values: props.map((pr) => {
              const v = read(spec.objectId, pr.id, pr.index);
              if (v.err) {
                return { property: pr, value: [{ value: { type: 'BacnetError', errorClass: v.err[0], errorCode: v.err[1] } }] };
              }
              return { property: pr, value: v };
            }),
          };
        });
        client.readPropertyMultipleResponse(m.header.sender, m.invokeId, values);
      }));
    }
    if (d.cov) {
      client.on('subscribeCov', guard((m) => {
        const p = m.payload;
        const oid = p.monitoredObjectId;
        const i = subs.findIndex((x) => x.pid === p.subscriberProcessId && x.type === oid.type && x.instance === oid.instance);
        if (i >= 0) subs.splice(i, 1);
        if (!p.cancellationRequest) {
          subs.push({ receiver: { address: m.header.sender.address }, pid: p.subscriberProcessId, type: oid.type, instance: oid.instance });
        }
        out({ subscribe: { type: oid.type, instance: oid.instance, lifetime: p.lifetime, confirmed: p.issueConfirmedNotifications }, instance: d.instance });
        client.simpleAckResponse(m.header.sender, m.service, m.invokeId);
      }));
    }
    client.on('writeProperty', guard((m) => {
      const { objectId, value } = m.payload;
      const o = objects.get(key(objectId.type, objectId.instance));
      if (!o || o.type === 8) {
        return client.errorResponse(m.header.sender, m.service, m.invokeId, E.ErrorClass.OBJECT, E.ErrorCode.UNKNOWN_OBJECT);
      }
      if (value.property.id === P.DESCRIPTION && value.value[0] && value.value[0].type === T.CHARACTER_STRING) {
        o.description = value.value[0].value;
        out({ write: { instance: d.instance, type: o.type, object: o.instance, property: 'description', value: o.description, segments: reqSegments } });
        reqSegments = 0;
        return client.simpleAckResponse(m.header.sender, m.service, m.invokeId);
      }
      if (value.property.id !== P.PRESENT_VALUE) {
        return client.errorResponse(m.header.sender, m.service, m.invokeId, E.ErrorClass.PROPERTY, E.ErrorCode.WRITE_ACCESS_DENIED);
      }
      const item = value.value[0];
      const isNull = item.type === T.NULL;
      if (!isNull && item.type !== pvTag(o.type)) {
        return client.errorResponse(m.header.sender, m.service, m.invokeId, E.ErrorClass.PROPERTY, E.ErrorCode.INVALID_DATA_TYPE);
      }
      o.priority[value.priority - 1] = isNull ? null : item.value;
      notify(o);
      out({ write: { instance: d.instance, type: o.type, object: o.instance, priority: value.priority, value: isNull ? null : item.value, tag: item.type, segments: reqSegments } });
      reqSegments = 0;
      client.simpleAckResponse(m.header.sender, m.service, m.invokeId);
    }));
    client.on('iAm', (m) => out({ iam: m.payload, from: m.header.sender.address, instance: d.instance }));
    client._transport.on('message', (msg, addr) => { // Delete-Foreign-Device-Table-Entry (BVLC 0x08)
      if (msg.length === 10 && msg[0] === 0x81 && msg[1] === 0x08) {
        out({ deleteFdt: [...msg.subarray(4, 8)].join('.') + ':' + msg.readUInt16BE(8), from: addr, instance: d.instance });
      }
    });
    client.on('registerForeignDevice', (m) => {
      out({ register: m.payload.ttl, from: m.header.sender.address, instance: d.instance });
      client.resultResponse(m.header.sender, 0x0000);
    });
    client.on('listening', () => out({ ready: d.instance, port: d.port }));
  };
  const close = () => { // a router goes away whole: its broadcast and remote-network sockets too
    if (client) client.close();
    client = null;
    for (const sk of routerSockets.splice(0)) sk.close();
  };
  // ---- the router: raw NPDU handling around the stack's socket ----
  const OUTER_NET = 1; // the gateway's network as this router numbers it
  const parseNpdu = (f, o) => {
    if (f[o] !== 0x01) return null;
    const ctl = f[o + 1];
    const r = { ctl, o: o + 2 };
    if (ctl & 0x20) {
      r.dnet = f.readUInt16BE(r.o); const dlen = f[r.o + 2];
      r.dadr = f.subarray(r.o + 3, r.o + 3 + dlen); r.o += 3 + dlen;
    }
    if (ctl & 0x08) {
      r.snet = f.readUInt16BE(r.o); const slen = f[r.o + 2];
      r.sadr = f.subarray(r.o + 3, r.o + 3 + slen); r.o += 3 + slen;
    }
    if (ctl & 0x20) r.hop = f[r.o++];
    r.body = f.subarray(r.o); // network message (type + data) or APDU
    return r;
  };
  const frame = (ctl, snet, sadr, body, dnet, dadr) => {
    const parts = [Buffer.from([0x81, 0x0A, 0, 0, 0x01, ctl | (snet ? 0x08 : 0) | (dnet ? 0x20 : 0)])];
    if (dnet) parts.push(Buffer.from([dnet >> 8, dnet & 255, dadr.length]), Buffer.from(dadr));
    if (snet) parts.push(Buffer.from([snet >> 8, snet & 255, sadr.length]), Buffer.from(sadr));
    if (dnet) parts.push(Buffer.from([255]));
    parts.push(body);
    const f = Buffer.concat(parts);
    f.writeUInt16BE(f.length, 2);
    return f;
  };
  const ipPortBytes = (addr) => {
    const [ip, port] = addr.split(':');
    const b = Buffer.alloc(6);
    ip.split('.').forEach((x, i) => { b[i] = Number(x); });
    b.writeUInt16BE(Number(port || 47808), 4);
    return b;
  };
  let inner = null;
  let lastOuter = null;
  const routerSockets = [];
  // Router-Busy-To-Network (0x04) / Router-Available-To-Network (0x05) for its network, to the
  // last station that sent it a unicast frame
  const routerSays = (type) => {
    if (!d.router || !lastOuter || !client) return;
    const [ip, port] = lastOuter.split(':');
    const f = Buffer.from([0x81, 0x0A, 0, 9, 0x01, 0x80, type, d.router.net >> 8, d.router.net & 255]);
    client._transport._server.send(f, Number(port || 47808), ip);
    out({ said: type, to: lastOuter, instance: d.instance });
  };
  const routerOn = (cl) => {
    const R = d.router;
    const stations = new Map(Object.entries(R.stations).map(([mac, port]) => [Number(mac), Number(port)]));
    const byPort = new Map([...stations].map(([mac, port]) => [port, mac]));
    const sendOuter = (f, addr) => { const [ip, port] = addr.split(':'); cl._transport._server.send(f, Number(port || 47808), ip); };
    // from the gateway's network: network messages and frames for the remote network
    const fromOuter = (msg, addr) => {
      if (msg.length >= 6 && msg[0] === 0x81 && msg[1] === 0x0A) lastOuter = addr; // the gateway
      if (msg.length < 6 || msg[0] !== 0x81 || (msg[1] !== 0x0A && msg[1] !== 0x0B)) return false;
      const n = parseNpdu(msg, 4);
      if (!n) return false;
      if (n.ctl & 0x80) {
        if (n.body[0] === 0x00) { // Who-Is-Router-To-Network
          out({ whoIsRouter: n.body.length >= 3 ? n.body.readUInt16BE(1) : 0, from: addr, instance: d.instance });
          const body = Buffer.from([0x01, R.net >> 8, R.net & 255]);
          sendOuter(frame(0x80, 0, null, body), addr);
        }
        return true;
      }
      if (!n.dnet || (n.dnet !== R.net && n.dnet !== 0xFFFF)) return false;
      const targets = n.dadr.length ? [n.dadr[n.dadr.length - 1]] : [...stations.keys()];
      for (const mac of targets) {
        const port = stations.get(mac);
        if (!port) continue;
        out({ routed: { to: mac, from: addr }, instance: d.instance });
        inner.send(frame(n.ctl & 0x04, OUTER_NET, ipPortBytes(addr), n.body), port, '127.0.0.1');
      }
      return n.dnet === R.net; // a global broadcast is for the router's own device too
    };
    cl._transport.removeAllListeners('message');
    cl._transport.on('message', (msg, addr) => { if (!fromOuter(msg, addr)) cl._receiveData(msg, addr); });
    const bcast = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    bcast.on('error', (e) => out({ error: 'broadcast socket: ' + String(e), instance: d.instance }));
    bcast.on('message', (msg, rinfo) => fromOuter(msg, rinfo.address + ':' + rinfo.port));
    bcast.bind(d.port, '0.0.0.0');
    routerSockets.push(bcast);
    // from the remote network: answers for the gateway's network get SNET/SADR of the station
    inner = dgram.createSocket({ type: 'udp4' });
    inner.on('message', (msg, rinfo) => {
      const n = parseNpdu(msg, 4);
      const mac = byPort.get(rinfo.port);
      if (!n || mac === undefined || n.dnet !== OUTER_NET || !n.dadr || n.dadr.length !== 6) return;
      const ip = [...n.dadr.subarray(0, 4)].join('.');
      const port = n.dadr.readUInt16BE(4);
      sendOuter(frame(n.ctl & 0x04, R.net, [mac], n.body), ip + ':' + port);
    });
    inner.bind(0, '127.0.0.1');
    routerSockets.push(inner);
  };
  // COV subscribers: notified (unconfirmed) when a present value changes
  const subs = [];
  const notify = (o) => {
    for (const sub of subs) {
      if (sub.type !== o.type || sub.instance !== o.instance) continue;
      const values = [
        { property: { id: P.PRESENT_VALUE, index: 0xFFFFFFFF }, value: read(o, P.PRESENT_VALUE) },
        { property: { id: P.STATUS_FLAGS, index: 0xFFFFFFFF }, value: read(o, P.STATUS_FLAGS) },
      ];
      const oid = { type: o.type, instance: o.instance };
      if (d.covConfirmed) { // the gateway's SimpleACK settles the promise
        client.confirmedCOVNotification(sub.receiver, oid, sub.pid, d.instance, 300, values).then(
          () => out({ covAcked: o.instance, instance: d.instance }),
          (e) => out({ covError: String(e), instance: d.instance }));
      } else {
        client.unconfirmedCOVNotification(sub.receiver, sub.pid, d.instance, oid, 300, values);
      }
    }
  };
  const set = (type, inst, v) => {
    const o = objects.get(key(type, inst));
    if (o) {
      o.relinquish = v;
      notify(o);
    }
  };
  open();
  // asks another device (the gateway) who it is and for its objectName
  const probe = (port, inst) => {
    const addr = { address: '127.0.0.1:' + port };
    client.whoIs(addr);
    client.readProperty(addr, { type: 8, instance: inst }, P.OBJECT_NAME).then(
      (v) => out({ read: v.values.map((x) => x.value), instance: d.instance }),
      (e) => out({ read_error: String(e), instance: d.instance }));
  };
  // an I-Am of its own accord (as a device does when it starts) to 127.0.0.1:port
  const announce = (port) => {
    const segmentation = d.segmentation !== undefined ? d.segmentation : d.segmented ? 0 : 3;
    client.iAmResponse({ address: '127.0.0.1:' + port }, d.instance, segmentation, d.vendor || 260);
  };
  return { open, close, set, probe, announce, busy: () => routerSays(0x04), available: () => routerSays(0x05) };
}

const devices = new Map();
for (const d of spec) devices.set(d.instance, makeDevice(d));

let buf = '';
process.stdin.on('data', (chunk) => {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    const [cmd, inst, ...rest] = line.split(' ');
    const dev = devices.get(Number(inst));
    if (!dev) continue;
    if (cmd === 'stop') { dev.close(); out({ stopped: Number(inst) }); }
    if (cmd === 'start') dev.open();
    if (cmd === 'probe') dev.probe(Number(rest[0]), Number(rest[1]));
    if (cmd === 'announce') dev.announce(Number(rest[0]));
    if (cmd === 'busy') dev.busy();
    if (cmd === 'available') dev.available();
    if (cmd === 'delay') { const d = spec.find((x) => x.instance === Number(inst)); d.delay = Number(rest[0]); }
    if (cmd === 'set') dev.set(Number(rest[0]), Number(rest[1]), JSON.parse(rest.slice(2).join(' ')));
  }
});
process.stdin.on('end', () => process.exit(0));
