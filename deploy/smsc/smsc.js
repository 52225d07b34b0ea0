#!/usr/bin/env node
// Zhida's SMSC simulator: a real SMPP 3.4 peer for the integration tests (npm package `smpp`).
// Started by deploy/servers.sh; run by hand with `node deploy/smsc/smsc.js`.
//
// Listens on 127.0.0.1, one SMPP port per "provider" ($ZHIDA_SMPP_PORTS, default 2775,2776)
// and an HTTP control port ($ZHIDA_SMSC_CONTROL_PORT, default 2780). Every behaviour below is
// per (port, system_id), so parallel tests using different system_ids do not interfere.
//
// Binds: bind_transceiver / bind_transmitter / bind_receiver with any system_id and the password
//   $ZHIDA_SMSC_PASSWORD (default "secret"); wrong password -> ESME_RINVPASWD (0x0E); a second
//   bind on one connection -> ESME_RALYBND (0x05); while mode "drop" without count is set for
//   (port, system_id) -> ESME_RBINDFAIL (0x0D). enquire_link is answered in any state; unbind
//   is answered and the connection closed. Other operations -> ESME_RINVCMDID (0x03) or
//   generic_nack. submit_sm before a bind, or on a receiver session -> ESME_RINVBNDSTS (0x04).
//
// submit_sm, in this order:
//   1. mode (POST /mode): "throttle" -> ESME_RTHROTTLED (0x58), "refuse" -> ESME_RSYSERR (0x08),
//      "drop" -> the connection is closed without an answer (PDUs already pipelined behind it
//      are not answered either); each for the next `count` submits, or until changed;
//   2. destination_addr empty or ending in "0000" -> ESME_RINVDSTADR (0x0B), not recorded;
//   3. malformed content -> ESME_RINVMSGLEN (0x01), not recorded: short_message and the
//      message_payload TLV both set, a UDH longer than the message, a concatenation header with
//      total 0 or seq outside 1..total, UCS-2 with an odd byte count, or a short_message that
//      does not fit one SMS (140 octets including the UDH; 160 septets for data_coding 0 and 1);
//   4. accepted: a fresh message_id (16 hex digits, unique per process and practically across
//      restarts) is answered after the submit was appended as one JSON line to
//      $ZHIDA_RUN_DIR/sms/<port>.jsonl (RUN_DIR default /tmp/zhida-servers):
//        port, system_id, session, sequence_number, message_id, service_type,
//        source_addr(_ton/_npi), destination_addr, dest_addr_ton/npi, data_coding, esm_class,
//        registered_delivery, udh ({ref,total,seq} from IEI 0x00 (8-bit ref) or 0x08 (16-bit),
//        or the sar_* TLVs; null otherwise), udh_hex (raw UDH incl. its length octet, when
//        UDHI 0x40 is set), payload_tlv (text came from message_payload), text, received_at.
//      text: UCS-2 big-endian for data_coding 8, GSM 03.38 default alphabet (one septet per
//      octet, as SMPP carries it) for 0, ASCII for 1, Latin-1 for anything else.
//
// Receipts: when registered_delivery & 3 is 1 (or 2 and the message failed), after
//   $ZHIDA_SMSC_RECEIPT_DELAY_MS (default 200) a deliver_sm with esm_class 0x04, data_coding 0,
//   source/destination swapped, TLVs receipted_message_id and message_state (2 DELIVERED,
//   5 UNDELIVERABLE) and the text
//     id:<message_id> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000 text:<first 20 chars>
//   (dates in UTC; non-ASCII characters of text: shown as '?') goes to a receiver-capable
//   session of the same (port, system_id): the submitting one if it is a transceiver, else any
//   bound receiver/transceiver. A destination ending in "4444" is accepted but gets
//   dlvrd:000 stat:UNDELIV err:001, message_state 5 (plus network_error_code 03 0001).
//   With no such session bound the receipt waits, and is sent when one binds. A receipt whose
//   connection closes before its deliver_sm_resp is sent again (like a real SMSC's retries);
//   one answered with an error status is retried after the delay, at most 5 attempts.
//   Each deliver_sm sent is one JSON line in $ZHIDA_RUN_DIR/sms/<port>.receipts.jsonl:
//     port, system_id, session, message_id, source_addr, destination_addr, stat, err,
//     message_state, text, attempt, sent_at.
//
// HTTP control API on 127.0.0.1:$ZHIDA_SMSC_CONTROL_PORT (JSON in and out):
//   POST /mode  {"port":2775,"system_id":"t-abc","mode":"normal"|"throttle"|"refuse"|"drop","count":N,"after":K}
//               port omitted: every SMPP port; count omitted: until changed (for "drop" this
//               also refuses binds: the provider looks down); after: let K more submits through
//               normally first (default 0), e.g. to drop the connection in the middle of a
//               window. -> {"ok":true,...}
//   GET  /stats?port=2775&system_id=t-abc   either filter optional (counters are summed) ->
//               binds, binds_refused, unbinds, submits_accepted, submits_refused (mode
//               refuse), submits_rejected (bad destination or content), submits_throttled,
//               submits_dropped, receipts_sent, receipts_acked, receipts_queued, sessions
//               (bound now), and mode when both filters are given
//   POST /reset clears all modes (counters and queued receipts are kept)
//   GET  /health -> 200 {"ok":true,"ports":[...],"sessions":N}
//
// Log: one line per listen, bind, unbind, close, mode change and error on stdout
// ($ZHIDA_SMSC_VERBOSE=1 adds one per submit and receipt). A malformed PDU is logged and
// closes that connection only; the process never exits on bad input.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const crypto = require('crypto');
const smpp = require('smpp');

const HOST = '127.0.0.1';
const PORTS = (process.env.ZHIDA_SMPP_PORTS || '2775,2776')
    .split(',').map((p) => p.trim()).filter(Boolean).map(Number);
const CONTROL_PORT = Number(process.env.ZHIDA_SMSC_CONTROL_PORT || 2780);
const RUN_DIR = process.env.ZHIDA_RUN_DIR || '/tmp/zhida-servers';
const SMS_DIR = path.join(RUN_DIR, 'sms');
const PASSWORD = process.env.ZHIDA_SMSC_PASSWORD || 'secret';
const RECEIPT_DELAY_MS = Number(process.env.ZHIDA_SMSC_RECEIPT_DELAY_MS || 200);
const VERBOSE = process.env.ZHIDA_SMSC_VERBOSE === '1';
const MAX_RECEIPT_ATTEMPTS = 5;

for (const p of [...PORTS, CONTROL_PORT]) {
    if (!Number.isInteger(p) || p <= 0 || p > 65535) {
        console.error(`smsc: invalid port ${p} (ZHIDA_SMPP_PORTS=${process.env.ZHIDA_SMPP_PORTS}, ZHIDA_SMSC_CONTROL_PORT=${process.env.ZHIDA_SMSC_CONTROL_PORT})`);
        process.exit(2);
    }
}
if (!Number.isFinite(RECEIPT_DELAY_MS) || RECEIPT_DELAY_MS < 0) {
    console.error(`smsc: invalid ZHIDA_SMSC_RECEIPT_DELAY_MS=${process.env.ZHIDA_SMSC_RECEIPT_DELAY_MS}`);
    process.exit(2);
}

const E = smpp.errors;
const UDHI = 0x40;

// Keep short_message / message_payload as raw bytes: this file decodes them itself (UDH,
// UCS-2, GSM), and the deliver_sm it sends carries bytes already.
smpp.filters.message.decode = (value) => value;
// A command_length below the 16-octet header would stall the library's reader: reject it.
const commandLength = smpp.PDU.commandLength;
smpp.PDU.commandLength = function (stream) {
    const n = commandLength.call(this, stream);
    if (n !== false && n < 16) throw new Error(`command_length ${n} is shorter than the PDU header`);
    return n;
};

// ------------------------------------------------------------------ logging and ids
function log(msg) {
    process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
}
function slog(s, msg) {
    log(`:${s.port} #${s.id}${s.systemId !== null ? ` ${s.systemId}` : ''} ${msg}`);
}
function hex(n) {
    return '0x' + n.toString(16).padStart(8, '0');
}

const ID_PREFIX = crypto.randomBytes(4).toString('hex');
let idCounter = 0;
function nextMessageId() {
    idCounter = (idCounter + 1) % 0x100000000;
    return ID_PREFIX + idCounter.toString(16).padStart(8, '0');
}

// ------------------------------------------------------------------ per (port, system_id) state
const keyOf = (port, systemId) => `${port}\u0000${systemId}`;
const modes = new Map(); // key -> {mode, remaining: number|null, after: number}
const stats = new Map(); // key -> counters
const queued = new Map(); // key -> [receipt] waiting for a receiver-capable session
const sessions = new Set(); // live connections

const COUNTERS = ['binds', 'binds_refused', 'unbinds', 'submits_accepted', 'submits_refused',
    'submits_rejected', 'submits_throttled', 'submits_dropped', 'receipts_sent', 'receipts_acked'];
function counters(port, systemId) {
    const k = keyOf(port, systemId);
    let c = stats.get(k);
    if (!c) {
        c = { port, system_id: systemId };
        for (const n of COUNTERS) c[n] = 0;
        stats.set(k, c);
    }
    return c;
}

// Consume one use of the mode for this key; returns the mode that applies to this submit.
function takeMode(port, systemId) {
    const k = keyOf(port, systemId);
    const m = modes.get(k);
    if (!m || m.mode === 'normal') return 'normal';
    if (m.after > 0) {
        m.after -= 1;
        return 'normal';
    }
    if (m.remaining !== null) {
        m.remaining -= 1;
        if (m.remaining <= 0) modes.delete(k);
    }
    return m.mode;
}
function bindsRefused(port, systemId) {
    const m = modes.get(keyOf(port, systemId));
    return !!m && m.mode === 'drop' && m.remaining === null;
}

// ------------------------------------------------------------------ dump files
function appendLine(file, obj) {
    const line = JSON.stringify(obj) + '\n';
    try {
        fs.appendFileSync(file, line);
    } catch (e) {
        if (e.code !== 'ENOENT') throw e;
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.appendFileSync(file, line);
    }
}

// ------------------------------------------------------------------ message decoding
class BadMessage extends Error {}

function decodeText(bytes, dataCoding) {
    if (dataCoding === 8) {
        if (bytes.length % 2) throw new BadMessage(`UCS-2 text has an odd length (${bytes.length} octets)`);
        return Buffer.from(bytes).swap16().toString('utf16le');
    }
    if (dataCoding === 0) return smpp.gsmCoder.decode(bytes, 0);
    if (dataCoding === 1) return bytes.toString('ascii');
    return bytes.toString('latin1');
}

// -> {udh, udhHex, text, payloadTlv}; throws BadMessage.
function parseMessage(pdu) {
    const sm = Buffer.isBuffer(pdu.short_message) ? pdu.short_message : Buffer.alloc(0);
    const payload = Buffer.isBuffer(pdu.message_payload) ? pdu.message_payload : null;
    if (payload && sm.length) throw new BadMessage('short_message and message_payload both set');
    const bytes = payload || sm;
    const dc = pdu.data_coding || 0;
    let udh = null;
    let udhHex = null;
    let body = bytes;
    if (pdu.esm_class & UDHI) {
        if (!bytes.length) throw new BadMessage('UDHI set but the message is empty');
        const udhl = bytes[0];
        if (1 + udhl > bytes.length) throw new BadMessage(`UDH length ${udhl} exceeds the message (${bytes.length} octets)`);
        udhHex = bytes.subarray(0, 1 + udhl).toString('hex');
        body = bytes.subarray(1 + udhl);
        for (let i = 1; i < 1 + udhl;) {
            const iei = bytes[i];
            const len = bytes[i + 1];
            if (len === undefined || i + 2 + len > 1 + udhl) throw new BadMessage(`UDH element 0x${iei.toString(16)} overruns the UDH`);
            const d = bytes.subarray(i + 2, i + 2 + len);
            if (iei === 0x00 && len === 3) udh = { ref: d[0], total: d[1], seq: d[2] };
            else if (iei === 0x08 && len === 4) udh = { ref: d.readUInt16BE(0), total: d[2], seq: d[3] };
            else if (iei === 0x00 || iei === 0x08) throw new BadMessage(`concatenation element 0x0${iei} with length ${len}`);
            i += 2 + len;
        }
    } else if (pdu.sar_msg_ref_num !== undefined || pdu.sar_total_segments !== undefined || pdu.sar_segment_seqnum !== undefined) {
        udh = { ref: pdu.sar_msg_ref_num, total: pdu.sar_total_segments, seq: pdu.sar_segment_seqnum };
        if ([udh.ref, udh.total, udh.seq].some((v) => typeof v !== 'number')) throw new BadMessage('incomplete sar_* TLVs');
    }
    if (udh && (udh.total < 1 || udh.seq < 1 || udh.seq > udh.total)) {
        throw new BadMessage(`concatenation seq ${udh.seq} of total ${udh.total}`);
    }
    if (!payload) {
        const udhOctets = udhHex ? udhHex.length / 2 : 0;
        if (dc === 0 || dc === 1) {
            const septets = Math.ceil((udhOctets * 8) / 7) + body.length;
            if (septets > 160) throw new BadMessage(`short_message is ${septets} septets, more than one SMS (160)`);
        } else if (bytes.length > 140) {
            throw new BadMessage(`short_message is ${bytes.length} octets, more than one SMS (140)`);
        }
    }
    return { udh, udhHex, text: decodeText(body, dc), payloadTlv: !!payload };
}

// ------------------------------------------------------------------ receipts
function smppDate(d) {
    const p = (n) => String(n).padStart(2, '0');
    return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function makeReceipt(s, rec) {
    const undeliv = rec.destination_addr.endsWith('4444');
    const shortText = Array.from(rec.text).slice(0, 20).map((c) => (/[ -~]/.test(c) ? c : '?')).join('');
    const submitted = new Date(rec.received_at);
    return {
        port: s.port,
        systemId: s.systemId,
        submitter: s,
        messageId: rec.message_id,
        undeliv,
        pdu: {
            // The receipt travels back: from the handset (original destination) to the sender.
            source_addr_ton: rec.dest_addr_ton,
            source_addr_npi: rec.dest_addr_npi,
            source_addr: rec.destination_addr,
            dest_addr_ton: rec.source_addr_ton,
            dest_addr_npi: rec.source_addr_npi,
            destination_addr: rec.source_addr,
            esm_class: 0x04,
            data_coding: 0,
            receipted_message_id: rec.message_id,
            message_state: undeliv ? 5 : 2,
            ...(undeliv ? { network_error_code: Buffer.from([0x03, 0x00, 0x01]) } : {}),
        },
        text: `id:${rec.message_id} sub:001 dlvrd:${undeliv ? '000' : '001'} submit date:${smppDate(submitted)} `
            + `done date:${smppDate(new Date())} stat:${undeliv ? 'UNDELIV' : 'DELIVRD'} err:${undeliv ? '001' : '000'} text:${shortText}`,
        attempts: 0,
    };
}

const canReceive = (s) => s.bound && !s.dead && (s.bindType === 'transceiver' || s.bindType === 'receiver');

function receiverFor(r) {
    if (r.submitter && canReceive(r.submitter)) return r.submitter;
    for (const s of sessions) {
        if (s.port === r.port && s.systemId === r.systemId && canReceive(s)) return s;
    }
    return null;
}

function deliverReceipt(r) {
    const s = receiverFor(r);
    if (!s) {
        const k = keyOf(r.port, r.systemId);
        if (!queued.has(k)) queued.set(k, []);
        queued.get(k).push(r);
        if (VERBOSE) log(`:${r.port} ${r.systemId} receipt for ${r.messageId} waits for a receiver`);
        return;
    }
    r.attempts += 1;
    const pdu = new smpp.PDU('deliver_sm', { ...r.pdu, short_message: Buffer.from(r.text, 'latin1') });
    const sent = s.session.send(pdu, (resp) => {
        s.outstanding.delete(pdu.sequence_number);
        if (resp.command_status === 0) {
            counters(r.port, r.systemId).receipts_acked += 1;
        } else if (r.attempts < MAX_RECEIPT_ATTEMPTS) {
            slog(s, `deliver_sm for ${r.messageId} answered ${hex(resp.command_status)}, retrying`);
            setTimeout(() => deliverReceipt(r), RECEIPT_DELAY_MS);
        } else {
            slog(s, `deliver_sm for ${r.messageId} answered ${hex(resp.command_status)} ${r.attempts} times, giving up`);
        }
    });
    if (!sent) {
        // The connection is closing: wait for the next receiver-capable bind.
        r.attempts -= 1;
        const k = keyOf(r.port, r.systemId);
        if (!queued.has(k)) queued.set(k, []);
        queued.get(k).push(r);
        return;
    }
    s.outstanding.set(pdu.sequence_number, r);
    counters(r.port, r.systemId).receipts_sent += 1;
    appendLine(path.join(SMS_DIR, `${r.port}.receipts.jsonl`), {
        port: r.port,
        system_id: r.systemId,
        session: s.id,
        message_id: r.messageId,
        source_addr: r.pdu.source_addr,
        destination_addr: r.pdu.destination_addr,
        stat: r.undeliv ? 'UNDELIV' : 'DELIVRD',
        err: r.undeliv ? '001' : '000',
        message_state: r.pdu.message_state,
        text: r.text,
        attempt: r.attempts,
        sent_at: new Date().toISOString(),
    });
    if (VERBOSE) slog(s, `deliver_sm receipt for ${r.messageId} (attempt ${r.attempts})`);
}

function flushQueued(s) {
    const k = keyOf(s.port, s.systemId);
    const list = queued.get(k);
    if (!list) return;
    queued.delete(k);
    slog(s, `sending ${list.length} waiting receipt(s)`);
    for (const r of list) deliverReceipt(r);
}

// ------------------------------------------------------------------ SMPP sessions
let sessionCounter = 0;
const BIND_TYPES = { bind_transceiver: 'transceiver', bind_transmitter: 'transmitter', bind_receiver: 'receiver' };

function reply(s, pdu, status, params) {
    if (s.dead) return;
    s.session.send(pdu.response({ ...(params || {}), ...(status ? { command_status: status } : {}) }));
}

function closeSession(s, why, abrupt) {
    if (s.dead) return;
    s.dead = true;
    slog(s, why);
    if (abrupt) {
        s.session.destroy();
    } else {
        // Flush answers already written, then make sure the connection goes away.
        s.session.close();
        setTimeout(() => s.session.destroy(), 1000).unref();
    }
}

function onBind(s, pdu) {
    const systemId = pdu.system_id || '';
    const c = counters(s.port, systemId);
    const what = `${pdu.command} system_id=${JSON.stringify(systemId)}`;
    if (s.bound) {
        slog(s, `${what} refused: already bound`);
        return reply(s, pdu, E.ESME_RALYBND);
    }
    if (pdu.password !== PASSWORD) {
        c.binds_refused += 1;
        log(`:${s.port} #${s.id} ${what} refused: wrong password`);
        return reply(s, pdu, E.ESME_RINVPASWD);
    }
    if (bindsRefused(s.port, systemId)) {
        c.binds_refused += 1;
        log(`:${s.port} #${s.id} ${what} refused: mode drop (provider down)`);
        return reply(s, pdu, E.ESME_RBINDFAIL);
    }
    s.bound = true;
    s.bindType = BIND_TYPES[pdu.command];
    s.systemId = systemId;
    c.binds += 1;
    reply(s, pdu, 0, { system_id: 'zhida-smsc' });
    slog(s, `bound as ${s.bindType} from ${s.remote}`);
    if (canReceive(s)) setImmediate(() => flushQueued(s));
}

function onSubmit(s, pdu) {
    if (!s.bound || s.bindType === 'receiver') {
        slog(s, `submit_sm refused: ${s.bound ? 'receiver session' : 'not bound'}`);
        return reply(s, pdu, E.ESME_RINVBNDSTS);
    }
    const c = counters(s.port, s.systemId);
    const mode = takeMode(s.port, s.systemId);
    if (mode === 'drop') {
        c.submits_dropped += 1;
        return closeSession(s, `mode drop: connection closed on submit_sm seq ${pdu.sequence_number}, unanswered`, false);
    }
    if (mode === 'throttle') {
        c.submits_throttled += 1;
        if (VERBOSE) slog(s, `submit_sm seq ${pdu.sequence_number} throttled`);
        return reply(s, pdu, E.ESME_RTHROTTLED);
    }
    if (mode === 'refuse') {
        c.submits_refused += 1;
        if (VERBOSE) slog(s, `submit_sm seq ${pdu.sequence_number} refused (mode refuse)`);
        return reply(s, pdu, E.ESME_RSYSERR);
    }
    const dest = pdu.destination_addr || '';
    if (!dest || dest.endsWith('0000')) {
        c.submits_rejected += 1;
        if (VERBOSE) slog(s, `submit_sm seq ${pdu.sequence_number} to ${JSON.stringify(dest)} rejected: ESME_RINVDSTADR`);
        return reply(s, pdu, E.ESME_RINVDSTADR);
    }
    let msg;
    try {
        msg = parseMessage(pdu);
    } catch (e) {
        if (!(e instanceof BadMessage)) throw e;
        c.submits_rejected += 1;
        slog(s, `submit_sm seq ${pdu.sequence_number} rejected: ESME_RINVMSGLEN: ${e.message}`);
        return reply(s, pdu, E.ESME_RINVMSGLEN);
    }
    const rec = {
        port: s.port,
        system_id: s.systemId,
        session: s.id,
        sequence_number: pdu.sequence_number,
        message_id: nextMessageId(),
        service_type: pdu.service_type || '',
        source_addr_ton: pdu.source_addr_ton,
        source_addr_npi: pdu.source_addr_npi,
        source_addr: pdu.source_addr || '',
        dest_addr_ton: pdu.dest_addr_ton,
        dest_addr_npi: pdu.dest_addr_npi,
        destination_addr: dest,
        data_coding: pdu.data_coding || 0,
        esm_class: pdu.esm_class || 0,
        registered_delivery: pdu.registered_delivery || 0,
        udh: msg.udh,
        udh_hex: msg.udhHex,
        payload_tlv: msg.payloadTlv,
        text: msg.text,
        received_at: new Date().toISOString(),
    };
    try {
        appendLine(path.join(SMS_DIR, `${s.port}.jsonl`), rec);
    } catch (e) {
        slog(s, `cannot record submit_sm: ${e.message}; answering ESME_RSYSERR`);
        return reply(s, pdu, E.ESME_RSYSERR);
    }
    c.submits_accepted += 1;
    reply(s, pdu, 0, { message_id: rec.message_id });
    if (VERBOSE) slog(s, `submit_sm seq ${pdu.sequence_number} to ${dest} accepted as ${rec.message_id}`);
    const rd = rec.registered_delivery & 0x03;
    const undeliv = dest.endsWith('4444');
    if (rd === 1 || (rd === 2 && undeliv)) {
        const r = makeReceipt(s, rec);
        setTimeout(() => deliverReceipt(r), RECEIPT_DELAY_MS);
    }
}

function onPdu(s, pdu) {
    if (s.dead) return; // pipelined behind a drop or unbind: never answered
    if (pdu.isResponse()) {
        return; // deliver_sm_resp / generic_nack: handled by the send callback
    }
    switch (pdu.command) {
    case 'bind_transceiver':
    case 'bind_transmitter':
    case 'bind_receiver':
        return onBind(s, pdu);
    case 'enquire_link':
        return reply(s, pdu, 0);
    case 'unbind':
        reply(s, pdu, 0);
        if (s.bound) counters(s.port, s.systemId).unbinds += 1;
        return closeSession(s, 'unbind', false);
    case 'submit_sm':
        return onSubmit(s, pdu);
    case 'unknown':
        slog(s, `unknown command_id ${hex(pdu.command_id)}: generic_nack`);
        return reply(s, pdu, E.ESME_RINVCMDID);
    default:
        slog(s, `${pdu.command} not supported: ESME_RINVCMDID`);
        if (smpp.commands[pdu.command + '_resp']) return reply(s, pdu, E.ESME_RINVCMDID);
        return s.session.send(new smpp.PDU('generic_nack', { sequence_number: pdu.sequence_number, command_status: E.ESME_RINVCMDID }));
    }
}

function onConnection(port, session) {
    const sock = session.socket;
    const s = {
        id: ++sessionCounter,
        port,
        session,
        remote: `${sock.remoteAddress}:${sock.remotePort}`,
        systemId: null,
        bound: false,
        bindType: null,
        dead: false,
        pdus: 0,
        outstanding: new Map(), // deliver_sm sequence_number -> receipt awaiting its resp
    };
    sessions.add(s);
    session.on('pdu', (pdu) => {
        s.pdus += 1;
        try {
            onPdu(s, pdu);
        } catch (e) {
            slog(s, `error handling ${pdu.command}: ${e.stack || e}`);
            closeSession(s, 'closed after an internal error', true);
        }
    });
    session.on('error', (e) => {
        if (e.syscall) slog(s, `socket error: ${e.code || e.message}`);
        else slog(s, `malformed PDU: ${e.message}`);
        closeSession(s, 'closed after an error', true);
    });
    session.on('close', () => {
        sessions.delete(s);
        if (!s.dead) {
            s.dead = true;
            // Port probes (connect, close) are not worth a line.
            if (s.pdus) slog(s, 'connection closed by peer');
        }
        if (s.outstanding.size) {
            slog(s, `${s.outstanding.size} receipt(s) unacknowledged, will send again`);
            const again = [...s.outstanding.values()];
            s.outstanding.clear();
            for (const r of again) setTimeout(() => deliverReceipt(r), RECEIPT_DELAY_MS);
        }
    });
}

// ------------------------------------------------------------------ HTTP control API
function send(res, code, body) {
    const text = JSON.stringify(body) + '\n';
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
}

function readJson(req) {
    return new Promise((resolve, reject) => {
        let data = '';
        req.setEncoding('utf8');
        req.on('data', (chunk) => {
            data += chunk;
            if (data.length > 65536) reject(new Error('body too large'));
        });
        req.on('end', () => {
            if (!data.trim()) return resolve({});
            try {
                resolve(JSON.parse(data));
            } catch (e) {
                reject(new Error(`invalid JSON: ${e.message}`));
            }
        });
        req.on('error', reject);
    });
}

const MODES = ['normal', 'throttle', 'refuse', 'drop'];

function setMode(body) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('body must be a JSON object');
    const { system_id: systemId, mode, count, after } = body;
    if (typeof systemId !== 'string') throw new Error('system_id (string) is required');
    if (!MODES.includes(mode)) throw new Error(`mode must be one of ${MODES.join(', ')}`);
    if (count !== undefined && count !== null && !(Number.isInteger(count) && count > 0)) {
        throw new Error('count must be a positive integer (omit it for "until changed")');
    }
    if (after !== undefined && after !== null && !(Number.isInteger(after) && after >= 0)) {
        throw new Error('after must be a non-negative integer');
    }
    let ports = PORTS;
    if (body.port !== undefined && body.port !== null) {
        const port = Number(body.port);
        if (!PORTS.includes(port)) throw new Error(`port ${body.port} is not one of ${PORTS.join(', ')}`);
        ports = [port];
    }
    const remaining = count === undefined || count === null ? null : count;
    for (const port of ports) {
        const k = keyOf(port, systemId);
        if (mode === 'normal') modes.delete(k);
        else modes.set(k, { mode, remaining, after: after || 0 });
        log(`:${port} ${systemId} mode ${mode}${mode === 'normal' ? '' : (after ? ` after ${after} normal submit(s),` : '')
            + (remaining === null ? ' until changed' : ` for ${remaining} submit(s)`)}`);
    }
    return { ok: true, ports, system_id: systemId, mode, count: remaining, after: after || 0 };
}

function getStats(query) {
    const port = query.get('port') !== null ? Number(query.get('port')) : null;
    const systemId = query.get('system_id');
    const out = { port, system_id: systemId };
    for (const n of COUNTERS) out[n] = 0;
    for (const c of stats.values()) {
        if ((port === null || c.port === port) && (systemId === null || c.system_id === systemId)) {
            for (const n of COUNTERS) out[n] += c[n];
        }
    }
    out.receipts_queued = 0;
    for (const list of queued.values()) {
        for (const r of list) {
            if ((port === null || r.port === port) && (systemId === null || r.systemId === systemId)) out.receipts_queued += 1;
        }
    }
    out.sessions = [...sessions].filter((s) => s.bound && !s.dead
        && (port === null || s.port === port) && (systemId === null || s.systemId === systemId)).length;
    if (port !== null && systemId !== null) {
        const m = modes.get(keyOf(port, systemId));
        out.mode = m ? { mode: m.mode, remaining: m.remaining, after: m.after } : { mode: 'normal', remaining: null, after: 0 };
    }
    return out;
}

async function control(req, res) {
    const url = new URL(req.url, `http://${HOST}`);
    const route = `${req.method} ${url.pathname}`;
    try {
        switch (route) {
        case 'GET /health':
            return send(res, 200, { ok: true, ports: PORTS, sessions: [...sessions].filter((s) => s.bound).length });
        case 'GET /stats':
            return send(res, 200, getStats(url.searchParams));
        case 'POST /mode':
            return send(res, 200, setMode(await readJson(req)));
        case 'POST /reset':
            await readJson(req);
            modes.clear();
            log('control: all modes reset to normal');
            return send(res, 200, { ok: true });
        default:
            return send(res, 404, { error: `no route ${route}; try GET /health, GET /stats, POST /mode, POST /reset` });
        }
    } catch (e) {
        return send(res, 400, { error: e.message });
    }
}

// ------------------------------------------------------------------ start and stop
fs.mkdirSync(SMS_DIR, { recursive: true });
let toListen = PORTS.length + 1;
function listenError(what) {
    return (e) => {
        log(`${what}: ${e.message}`);
        if (toListen > 0) process.exit(1); // cannot start: let servers.sh report it
    };
}
function listening(msg) {
    return () => {
        toListen -= 1;
        log(msg);
    };
}

const servers = PORTS.map((port) => {
    const server = smpp.createServer((session) => onConnection(port, session));
    server.on('error', listenError(`smpp :${port}`));
    server.listen(port, HOST, listening(`:${port} listening for SMPP on ${HOST}:${port}`));
    return server;
});
const controlServer = http.createServer((req, res) => {
    control(req, res).catch((e) => send(res, 500, { error: e.message }));
});
controlServer.on('error', listenError(`control :${CONTROL_PORT}`));
controlServer.listen(CONTROL_PORT, HOST,
    listening(`control API on http://${HOST}:${CONTROL_PORT}; dump dir ${SMS_DIR}; receipt delay ${RECEIPT_DELAY_MS} ms`));

process.on('uncaughtException', (e) => log(`internal error (kept running): ${e.stack || e}`));
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
        log(`${sig}: stopping`);
        for (const s of sessions) s.session.destroy();
        for (const server of servers) server.close();
        controlServer.close();
        process.exit(0);
    });
}
