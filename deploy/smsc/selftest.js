#!/usr/bin/env node
// Self-test of the SMSC simulator (deploy/smsc/smsc.js) through a real SMPP client (the same
// npm package `smpp`), against a running simulator:
//   node deploy/smsc/selftest.js          # after deploy/servers.sh up
// Reads ZHIDA_TEST_SMPP (default 127.0.0.1:2775,127.0.0.1:2776), ZHIDA_TEST_SMSC_CONTROL
// (default http://127.0.0.1:2780) and ZHIDA_TEST_SMS_DUMP (default /tmp/zhida-servers/sms).
// Uses its own system_ids (selftest-<pid>-*), so it can run beside other tests; it only sets
// modes for those. Prints one line per check and exits non-zero on the first failure.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const smpp = require('smpp');

const ADDRS = (process.env.ZHIDA_TEST_SMPP || '127.0.0.1:2775,127.0.0.1:2776').split(',').map((a) => {
    const [host, port] = a.trim().split(':');
    return { host, port: Number(port) };
});
const CONTROL = process.env.ZHIDA_TEST_SMSC_CONTROL || 'http://127.0.0.1:2780';
const DUMP = process.env.ZHIDA_TEST_SMS_DUMP || path.join(process.env.ZHIDA_RUN_DIR || '/tmp/zhida-servers', 'sms');
const SYS_A = `selftest-${process.pid}-a`;
const SYS_B = `selftest-${process.pid}-b`;
const [P0, P1] = ADDRS;
if (!P1) throw new Error('ZHIDA_TEST_SMPP must list at least two SMPP addresses');

let checks = 0;
function ok(cond, what, detail) {
    checks += 1;
    if (!cond) {
        console.log(`not ok ${checks} - ${what}${detail !== undefined ? `: ${JSON.stringify(detail)}` : ''}`);
        throw new Error(`check failed: ${what}`);
    }
    console.log(`ok ${checks} - ${what}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ucs2 = (s) => Buffer.from(s, 'utf16le').swap16();

async function http(method, route, body) {
    const res = await fetch(CONTROL + route, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json() };
}
const mode = (port, systemId, m, count, after) => http('POST', '/mode', { port, system_id: systemId, mode: m, count, after });
const stats = async (port, systemId) => (await http('GET', `/stats?port=${port}&system_id=${encodeURIComponent(systemId)}`)).body;

// A client session with promise helpers; receipts (deliver_sm) are acknowledged and collected.
function connect(addr, { ack = true } = {}) {
    return new Promise((resolve, reject) => {
        const session = smpp.connect({ host: addr.host, port: addr.port });
        session.receipts = [];
        session.closed = new Promise((r) => session.on('close', r));
        session.on('deliver_sm', (pdu) => {
            session.receipts.push(pdu);
            if (ack) session.send(pdu.response());
        });
        session.on('error', (e) => reject(e));
        session.on('connect', () => resolve(session));
    });
}
function call(session, command, options, timeoutMs = 3000) {
    return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${command}: no answer in ${timeoutMs} ms`)), timeoutMs);
        session[command](options || {}, (pdu) => {
            clearTimeout(t);
            resolve(pdu);
        });
    });
}
async function bound(addr, systemId, type = 'bind_transceiver', opts) {
    const s = await connect(addr, opts);
    const r = await call(s, type, { system_id: systemId, password: 'secret' });
    if (r.command_status !== 0) throw new Error(`${type} ${systemId}: status ${r.command_status}`);
    return s;
}
async function waitFor(what, fn, timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(20);
    }
}
function dump(port, systemId, suffix = '') {
    const file = path.join(DUMP, `${port}${suffix}.jsonl`);
    if (!fs.existsSync(file)) return [];
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
        .filter((r) => r.system_id === systemId);
}
function submit(session, fields) {
    return call(session, 'submit_sm', {
        source_addr: '106900001234',
        destination_addr: '13800138000',
        data_coding: 8,
        ...fields,
    });
}
function receiptText(pdu) {
    const m = pdu.short_message;
    return typeof m === 'string' ? m : (m.message !== undefined ? String(m.message) : m.toString('latin1'));
}

async function main() {
    const health = await http('GET', '/health');
    ok(health.status === 200 && health.body.ok, 'GET /health answers 200', health);

    // Binds.
    let s = await connect(P0);
    let r = await call(s, 'bind_transceiver', { system_id: SYS_A, password: 'wrong' });
    ok(r.command_status === smpp.ESME_RINVPASWD, 'wrong password -> ESME_RINVPASWD', r.command_status);
    s.destroy();

    const a = await bound(P0, SYS_A);
    ok(true, `bind_transceiver ${SYS_A} on :${P0.port}`);
    r = await call(a, 'enquire_link');
    ok(r.command === 'enquire_link_resp' && r.command_status === 0, 'enquire_link answered');

    // A UCS-2 message in two segments (8-bit concatenation reference), with receipts.
    const text = '【杨浦区政务】关于支持高校毕业生在杨浦创新创业的若干政策已发布，符合条件的毕业生可申请一次性创业补贴、场地租金补贴和贷款贴息，详情请点击链接查看并在线办理：https://zd.example/p/42';
    const chars = Array.from(text);
    const parts = [chars.slice(0, 67).join(''), chars.slice(67).join('')];
    ok(parts[1].length > 0 && parts[1].length <= 67, `test text needs exactly two segments (${chars.length} chars)`);
    const ids = [];
    for (let i = 0; i < 2; i++) {
        const udh = Buffer.from([0x05, 0x00, 0x03, 0x2a, 0x02, i + 1]);
        r = await submit(a, { esm_class: 0x40, registered_delivery: 1, short_message: Buffer.concat([udh, ucs2(parts[i])]) });
        ok(r.command_status === 0 && /^[0-9a-f]{16}$/.test(r.message_id), `segment ${i + 1}/2 accepted as ${r.message_id}`, r);
        ids.push(r.message_id);
    }
    ok(ids[0] !== ids[1], 'message_ids are unique');
    await waitFor('two receipts', () => a.receipts.length >= 2);
    for (const id of ids) {
        const rc = a.receipts.find((p) => p.receipted_message_id === id);
        ok(rc && rc.esm_class === 0x04 && rc.message_state === 2, `receipt for ${id}: esm_class 0x04, message_state 2`, rc && { esm: rc.esm_class, state: rc.message_state });
        const t = receiptText(rc);
        ok(new RegExp(`^id:${id} sub:001 dlvrd:001 submit date:\\d{10} done date:\\d{10} stat:DELIVRD err:000 text:`).test(t), 'receipt text in the standard format', t);
        ok(rc.source_addr === '13800138000' && rc.destination_addr === '106900001234', 'receipt goes from the handset to the sender');
    }
    const recs = dump(P0.port, SYS_A);
    const segs = ids.map((id) => recs.find((x) => x.message_id === id));
    ok(segs.every(Boolean), `both segments recorded in ${P0.port}.jsonl`);
    ok(segs.every((x, i) => x.udh && x.udh.ref === 0x2a && x.udh.total === 2 && x.udh.seq === i + 1), 'recorded udh {ref 42, total 2, seq 1..2}', segs.map((x) => x.udh));
    ok(segs.map((x) => x.text).join('') === text, 'recorded UCS-2 text joins to the original', segs.map((x) => x.text));
    ok(segs.every((x) => x.data_coding === 8 && x.esm_class === 0x40 && x.registered_delivery === 1 && x.destination_addr === '13800138000'), 'recorded data_coding, esm_class, registered_delivery, destination');
    ok(dump(P0.port, SYS_A, '.receipts').filter((x) => ids.includes(x.message_id)).length === 2, `receipts recorded in ${P0.port}.receipts.jsonl`);

    // 16-bit concatenation reference, no receipt requested.
    r = await submit(a, { esm_class: 0x40, short_message: Buffer.concat([Buffer.from([0x06, 0x08, 0x04, 0xbe, 0xef, 0x03, 0x03]), ucs2('第三段')]) });
    ok(r.command_status === 0, '16-bit reference segment accepted');
    const rec16 = dump(P0.port, SYS_A).find((x) => x.message_id === r.message_id);
    ok(rec16 && rec16.udh.ref === 0xbeef && rec16.udh.total === 3 && rec16.udh.seq === 3 && rec16.text === '第三段', 'recorded udh {ref 0xbeef, total 3, seq 3}', rec16);

    // message_payload TLV, GSM default alphabet.
    const long = 'Policy notice '.repeat(20).trim();
    r = await submit(a, { data_coding: 0, message_payload: Buffer.from(long, 'ascii') });
    const recPayload = dump(P0.port, SYS_A).find((x) => x.message_id === r.message_id);
    ok(r.command_status === 0 && recPayload && recPayload.text === long && recPayload.payload_tlv === true, 'message_payload TLV accepted and decoded', recPayload);

    // Too long for one SMS.
    r = await submit(a, { short_message: ucs2('长'.repeat(71)) });
    ok(r.command_status === smpp.ESME_RINVMSGLEN, 'UCS-2 short_message over 140 octets -> ESME_RINVMSGLEN', r.command_status);

    // Undeliverable and refused numbers.
    r = await submit(a, { destination_addr: '13900134444', registered_delivery: 1, short_message: ucs2('测试') });
    ok(r.command_status === 0, '...4444 accepted at submit');
    const undelivId = r.message_id;
    const ru = await waitFor('UNDELIV receipt', () => a.receipts.find((p) => p.receipted_message_id === undelivId));
    ok(ru.message_state === 5 && /stat:UNDELIV err:001/.test(receiptText(ru)), '...4444 gets stat:UNDELIV err:001, message_state 5', receiptText(ru));
    r = await submit(a, { destination_addr: '13900130000', short_message: ucs2('测试') });
    ok(r.command_status === smpp.ESME_RINVDSTADR, '...0000 -> ESME_RINVDSTADR', r.command_status);
    ok(!dump(P0.port, SYS_A).some((x) => x.destination_addr === '13900130000'), '...0000 not recorded');

    // Throttle and refuse, counted.
    ok((await mode(P0.port, SYS_A, 'throttle', 2)).status === 200, 'POST /mode throttle count 2');
    const throttled = [];
    for (let i = 0; i < 3; i++) throttled.push((await submit(a, { short_message: ucs2(`节流${i}`) })).command_status);
    ok(throttled[0] === 0x58 && throttled[1] === 0x58 && throttled[2] === 0, 'two ESME_RTHROTTLED, then accepted', throttled);
    await mode(P0.port, SYS_A, 'refuse', 1);
    const refused = [];
    for (let i = 0; i < 2; i++) refused.push((await submit(a, { short_message: ucs2(`拒绝${i}`) })).command_status);
    ok(refused[0] === smpp.ESME_RSYSERR && refused[1] === 0, 'one ESME_RSYSERR, then accepted', refused);

    // Modes are per (port, system_id).
    await mode(P0.port, SYS_A, 'throttle');
    const other = await bound(P1, SYS_A);
    r = await submit(other, { short_message: ucs2('另一家') });
    ok(r.command_status === 0, `throttle on :${P0.port} does not affect :${P1.port}`);
    r = await submit(a, { short_message: ucs2('仍节流') });
    ok(r.command_status === 0x58, `throttle without count holds on :${P0.port}`);
    await mode(P0.port, SYS_A, 'normal');
    r = await submit(a, { short_message: ucs2('恢复') });
    ok(r.command_status === 0, 'mode normal restores');
    r = await call(other, 'unbind');
    ok(r.command === 'unbind_resp' && r.command_status === 0, 'unbind answered');
    await other.closed;

    // Drop once: the connection closes, the submit is not answered; a new bind works.
    await mode(P0.port, SYS_A, 'drop', 1);
    const dropped = await Promise.race([
        submit(a, { short_message: ucs2('断开') }).then(() => 'answered', () => 'no answer'),
        a.closed.then(() => 'closed'),
    ]);
    ok(dropped === 'closed', 'drop closes the connection without answering', dropped);
    const a2 = await bound(P0, SYS_A);
    r = await submit(a2, { short_message: ucs2('重连') });
    ok(r.command_status === 0, 'after a drop, rebind and submit work');
    a2.close();

    // Drop in the middle of a pipelined window: the first two are answered, none after.
    await mode(P0.port, SYS_A, 'drop', 1, 2);
    const w = await bound(P0, SYS_A);
    const window = [];
    for (let i = 0; i < 5; i++) {
        window.push(submit(w, { short_message: ucs2(`窗口${i}`) }).then((p) => p.command_status, () => 'no answer'));
    }
    await w.closed;
    const answered = await Promise.all(window.map((p) => Promise.race([p, sleep(500).then(() => 'no answer')])));
    ok(JSON.stringify(answered) === JSON.stringify([0, 0, 'no answer', 'no answer', 'no answer']),
        'drop after 2: a window of 5 gets two answers, then the connection closes', answered);

    // Drop until changed: the provider looks down.
    await mode(P0.port, SYS_A, 'drop');
    s = await connect(P0);
    r = await call(s, 'bind_transmitter', { system_id: SYS_A, password: 'secret' });
    ok(r.command_status === smpp.ESME_RBINDFAIL, 'drop without count refuses binds with ESME_RBINDFAIL', r.command_status);
    s.destroy();
    await mode(P0.port, SYS_A, 'normal');
    const a3 = await bound(P0, SYS_A, 'bind_transmitter');
    ok(true, 'bind works again after mode normal');
    a3.close();

    // Receipt for a transmitter waits for a receiver bind.
    const tx = await bound(P1, SYS_B, 'bind_transmitter');
    r = await submit(tx, { registered_delivery: 1, short_message: ucs2('回执等待') });
    const waitingId = r.message_id;
    await sleep(400);
    ok((await stats(P1.port, SYS_B)).receipts_queued === 1, 'receipt waits while only a transmitter is bound');
    const rx = await bound(P1, SYS_B, 'bind_receiver');
    const rw = await waitFor('queued receipt', () => rx.receipts.find((p) => p.receipted_message_id === waitingId));
    ok(rw.message_state === 2, 'bind_receiver gets the waiting receipt');
    r = await submit(rx, { short_message: ucs2('x') }).catch((e) => e);
    ok(r.command_status === smpp.ESME_RINVBNDSTS, 'submit_sm on a receiver -> ESME_RINVBNDSTS', r.command_status);
    tx.close();
    rx.close();

    // A receipt whose deliver_sm was not answered before the connection closed is sent again.
    const na = await bound(P1, SYS_B, 'bind_transceiver', { ack: false });
    r = await submit(na, { registered_delivery: 1, short_message: ucs2('未确认') });
    const unackedId = r.message_id;
    await waitFor('unacknowledged receipt', () => na.receipts.find((p) => p.receipted_message_id === unackedId));
    na.destroy();
    await na.closed;
    const again = await bound(P1, SYS_B, 'bind_receiver');
    await waitFor('receipt sent again', () => again.receipts.find((p) => p.receipted_message_id === unackedId));
    ok(true, 'an unacknowledged receipt is sent again on the next bind');
    again.close();

    // Malformed PDUs close only that connection.
    for (const [what, bytes] of [
        ['command_length below the header', Buffer.from('0000000800000004', 'hex')],
        ['command_length over the maximum', Buffer.from('7fffffff000000040000000000000001', 'hex')],
        ['TLV overrunning the PDU', Buffer.from('00000025000000040000000000000001' + '00'.repeat(17) + '04270000', 'hex')],
    ]) {
        const outcome = await new Promise((resolve) => {
            const sock = net.connect(P0.port, P0.host, () => sock.write(bytes));
            sock.on('data', () => {});
            sock.on('error', () => {});
            sock.on('close', () => resolve('closed'));
            setTimeout(() => { sock.destroy(); resolve('still open'); }, 1500);
        });
        ok(outcome === 'closed', `${what}: connection closed`, outcome);
    }
    const nack = await new Promise((resolve) => {
        const sock = net.connect(P0.port, P0.host, () => sock.write(Buffer.from('00000010000000990000000000000007', 'hex')));
        sock.on('data', (d) => { sock.destroy(); resolve(d.toString('hex')); });
        sock.on('error', () => resolve('error'));
        setTimeout(() => { sock.destroy(); resolve('no answer'); }, 1500);
    });
    ok(nack === '00000010800000000000000300000007', 'unknown command_id -> generic_nack ESME_RINVCMDID', nack);
    ok((await http('GET', '/health')).status === 200, 'simulator still healthy after malformed PDUs');

    // Counters.
    const st = await stats(P0.port, SYS_A);
    ok(st.submits_throttled === 3 && st.submits_refused === 1 && st.submits_dropped === 2 && st.binds_refused === 2
        && st.submits_rejected === 2 && st.submits_accepted === 11 && st.receipts_sent === 3 && st.receipts_acked === 3,
    'GET /stats counts binds, submits accepted/refused/rejected/throttled/dropped, receipts', st);
    a.close();
}

const guard = setTimeout(() => {
    console.log('not ok - self-test timed out after 60 s');
    process.exit(1);
}, 60000);
main().then(async () => {
    console.log(`# all ${checks} checks passed`);
    clearTimeout(guard);
    process.exit(0);
}, async (e) => {
    console.log(`# FAILED: ${e.message}`);
    for (const sys of [SYS_A, SYS_B]) await mode(undefined, sys, 'normal').catch(() => {});
    process.exit(1);
});
