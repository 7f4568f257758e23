// ImapFlow, the Node IMAP client, against `herald serve`: one session that does what a mail
// app does (list with special-use, open with CONDSTORE/QRESYNC, append, fetch, flag, move,
// delete, search), a second connection whose APPEND the first one hears of in IDLE, and a
// QRESYNC reopen that reports what vanished while the mailbox was closed.
//
// Usage: node imapflow_session.mjs PORT USER PASSWORD
//
// Account expected: empty INBOX plus "Kept" (created with USE (\Archive)) and "Outgoing"
// (USE (\Sent)); tests/imapflow.rs makes them. Every result is checked here; a mismatch
// throws, prints the IMAP exchange so far to stderr and exits 1. Prints "done" at the end.
// IMAPFLOW_DEBUG=1 also prints the exchange as it happens.

import { ImapFlow } from 'imapflow';

const [port, user, pass] = process.argv.slice(2);
if (!pass) {
    console.error('usage: node imapflow_session.mjs PORT USER PASSWORD');
    process.exit(2);
}
const DEBUG = process.env.IMAPFLOW_DEBUG === '1';

// The raw IMAP exchange of every connection, so a failure shows what was said.
const transcript = [];
function record(conn, entry) {
    if (!entry || typeof entry !== 'object') {
        return;
    }
    let line;
    if (entry.src && entry.data) {
        const arrow = entry.src === 'c' ? 'C:' : 'S:';
        const text = Buffer.from(entry.data, 'base64').toString('utf8').replace(/\r\n$/, '');
        line = `${conn} ${arrow} ${text}`;
    } else if (entry.err) {
        line = `${conn} !! ${entry.msg || ''} ${entry.err.message || entry.err}`;
    } else {
        return;
    }
    transcript.push(line);
    if (transcript.length > 5000) {
        transcript.shift();
    }
    if (DEBUG) {
        console.error(line);
    }
}
function logger(conn) {
    const log = entry => record(conn, entry);
    return { trace: log, debug: log, info: log, warn: log, error: log, fatal: log };
}

// Nothing here may hang: the whole session is bounded.
const watchdog = setTimeout(() => fail(new Error('timed out after 60 s')), 60_000);

function fail(err) {
    console.error(transcript.join('\n'));
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
}
process.on('unhandledRejection', fail);

function check(cond, what, got) {
    if (!cond) {
        throw new Error(`${what}: got ${inspect(got)}`);
    }
}
function eq(got, want, what) {
    check(inspect(got) === inspect(want), `${what}: want ${inspect(want)}`, got);
}
function inspect(v) {
    return JSON.stringify(v, (_, x) => {
        if (typeof x === 'bigint') {
            return `${x}n`;
        }
        if (x instanceof Set) {
            return [...x].sort();
        }
        if (x instanceof Map) {
            return [...x.entries()];
        }
        return x;
    });
}

// Resolves with the first `event` on `client` that `pred` accepts, or rejects after `ms`.
function nextEvent(client, event, pred = () => true, ms = 10_000) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            client.off(event, on);
            reject(new Error(`no '${event}' event within ${ms} ms`));
        }, ms);
        function on(data) {
            if (pred(data)) {
                clearTimeout(timer);
                client.off(event, on);
                resolve(data);
            }
        }
        client.on(event, on);
    });
}

function connect(name, extra = {}) {
    return new ImapFlow({
        host: '127.0.0.1',
        port: Number(port),
        secure: false,
        doSTARTTLS: false,
        auth: { user, pass },
        qresync: true,
        logger: logger(name),
        logRaw: true,
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 30_000,
        ...extra
    });
}

const crlf = s => Buffer.from(s.replace(/\r?\n/g, '\r\n'));
const PLAIN = crlf(`From: Alice Sender <alice@example.net>
To: ${user}@example.org
Subject: first plain message
Message-ID: <imapflow-1@example.net>
Date: Tue, 02 Jan 2024 03:04:05 +0000

Hello from ImapFlow.
`);
const ENCODED = crlf(`From: "Bob Example" <bob@example.net>
To: ${user}@example.org, Carol <carol@example.org>
Cc: dave@example.org
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=
Message-ID: <imapflow-2@example.net>
In-Reply-To: <imapflow-1@example.net>
Date: Wed, 03 Jan 2024 10:00:00 +0100

Second message, with an encoded subject.
`);
const ATTACHMENT = Buffer.from([0, 1, 2, 3, 254, 255, 13, 10, 72, 101, 114, 97, 108, 100]);
const MULTIPART = crlf(`From: carol@example.org
To: ${user}@example.org
Subject: with an attachment
Message-ID: <imapflow-3@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

See attached.
--b1
Content-Type: application/octet-stream; name="data.bin"
Content-Disposition: attachment; filename="data.bin"
Content-Transfer-Encoding: base64

${ATTACHMENT.toString('base64')}
--b1--
`);
const LATE = crlf(`From: eve@example.org
To: ${user}@example.org
Subject: arrived during IDLE
Message-ID: <imapflow-4@example.net>

Appended by the second connection.
`);
const AFTER = crlf(`From: eve@example.org
To: ${user}@example.org
Subject: arrived while closed
Message-ID: <imapflow-5@example.net>

Appended while the first connection had INBOX closed.
`);

async function streamToBuffer(stream) {
    const chunks = [];
    for await (const chunk of stream) {
        chunks.push(chunk);
    }
    return Buffer.concat(chunks);
}

async function main() {
    // Connect and log in: CONDSTORE and QRESYNC are advertised, so ImapFlow enables them.
    const a = connect('a');
    await a.connect();
    check(a.authenticated, 'logged in', a.authenticated);
    for (const cap of ['IDLE', 'CONDSTORE', 'QRESYNC', 'UIDPLUS', 'MOVE', 'SPECIAL-USE']) {
        check(a.capabilities.has(cap), `capability ${cap}`, [...a.capabilities.keys()]);
    }
    check(a.enabled.has('CONDSTORE') && a.enabled.has('QRESYNC'), 'ENABLE', [...a.enabled]);
    eq(a.serverInfo && a.serverInfo.name, 'Herald', 'ID name');

    // A mailbox of our own (CREATE then SUBSCRIBE).
    const created = await a.mailboxCreate('Work');
    eq([created.path, created.created], ['Work', true], 'mailboxCreate');
    check(typeof created.mailboxId === 'string' && created.mailboxId.length > 0, 'MAILBOXID', created);

    // LIST: special-use from the server (not guessed from the name), subscriptions, STATUS.
    const list = await a.list({ statusQuery: { messages: true, uidNext: true } });
    const byPath = new Map(list.map(e => [e.path, e]));
    eq([...byPath.keys()].sort(), ['INBOX', 'Kept', 'Outgoing', 'Work'], 'LIST paths');
    eq(byPath.get('Kept').specialUse, '\\Archive', 'Kept special-use');
    eq(byPath.get('Kept').specialUseSource, 'extension', 'Kept special-use source');
    eq(byPath.get('Outgoing').specialUse, '\\Sent', 'Outgoing special-use');
    eq(byPath.get('Outgoing').specialUseSource, 'extension', 'Outgoing special-use source');
    eq(byPath.get('Work').specialUse, undefined, 'Work has no special-use');
    eq(byPath.get('INBOX').specialUse, '\\Inbox', 'INBOX special-use');
    for (const e of list) {
        eq(e.delimiter, '/', `${e.path} delimiter`);
        check(e.subscribed, `${e.path} subscribed`, e);
        eq([e.status.messages, e.status.uidNext], [0, 1], `${e.path} STATUS`);
    }

    // APPEND with flags and an internal date: APPENDUID gives the UIDs.
    const d1 = new Date('2024-01-02T03:04:05Z');
    const r1 = await a.append('INBOX', PLAIN, ['\\Seen'], d1);
    const r2 = await a.append('INBOX', ENCODED, ['$Work']);
    const r3 = await a.append('INBOX', MULTIPART, []);
    eq([r1.destination, r1.uid, r2.uid, r3.uid], ['INBOX', 1, 2, 3], 'APPENDUID');
    check(r1.uidValidity && r1.uidValidity === r3.uidValidity, 'APPENDUID validity', [r1, r3]);

    // SELECT under CONDSTORE/QRESYNC.
    let mb = await a.mailboxOpen('INBOX');
    eq([mb.path, mb.exists, mb.uidNext, mb.uidValidity], ['INBOX', 3, 4, r1.uidValidity], 'SELECT');
    check(typeof mb.highestModseq === 'bigint' && mb.highestModseq > 0n, 'HIGHESTMODSEQ', mb);
    check(!mb.noModseq, 'NOMODSEQ not sent', mb);
    check(mb.permanentFlags.has('\\*') && mb.permanentFlags.has('\\Seen'), 'PERMANENTFLAGS', mb.permanentFlags);
    check(mb.flags.has('$Work'), 'FLAGS lists the keyword in use', mb.flags);
    check(typeof mb.mailboxId === 'string' && mb.mailboxId.length > 0, 'SELECT MAILBOXID', mb);
    check(!mb.readOnly, 'read-write', mb);
    eq(mb.specialUse, '\\Inbox', 'opened mailbox special-use');

    // FETCH everything a client shows.
    const all = await a.fetchAll(
        '1:*',
        { uid: true, flags: true, envelope: true, bodyStructure: true, source: true, size: true, internalDate: true, modseq: true, emailId: true },
        { uid: true }
    );
    eq(all.map(m => [m.seq, m.uid]), [[1, 1], [2, 2], [3, 3]], 'FETCH seq/uid');
    // ImapFlow enables IMAP4rev2, which has no \Recent (RFC 9051): none is shown.
    eq(all.map(m => m.flags), [new Set(['\\Seen']), new Set(['$Work']), new Set()], 'FETCH FLAGS');
    const sources = [PLAIN, ENCODED, MULTIPART];
    all.forEach((m, i) => {
        check(m.source.equals(sources[i]), `BODY[] of ${m.uid} is the appended bytes`, m.source.toString());
        eq(m.size, sources[i].length, `RFC822.SIZE of ${m.uid}`);
        check(typeof m.modseq === 'bigint' && m.modseq > 0n && m.modseq <= mb.highestModseq, `MODSEQ of ${m.uid}`, m.modseq);
        check(typeof m.emailId === 'string' && m.emailId.length > 0, `EMAILID of ${m.uid}`, m.emailId);
    });
    eq(new Date(all[0].internalDate).toISOString(), d1.toISOString(), 'INTERNALDATE as appended');
    const [e1, e2, e3] = all.map(m => m.envelope);
    eq(e1.subject, 'first plain message', 'ENVELOPE subject');
    eq(e1.from, [{ name: 'Alice Sender', address: 'alice@example.net' }], 'ENVELOPE from');
    eq(e1.messageId, '<imapflow-1@example.net>', 'ENVELOPE message-id');
    eq(e1.date.toISOString(), '2024-01-02T03:04:05.000Z', 'ENVELOPE date');
    eq(e2.subject, 'Grüße aus Köln', 'ENVELOPE decoded subject');
    eq(e2.to, [{ name: '', address: `${user}@example.org` }, { name: 'Carol', address: 'carol@example.org' }], 'ENVELOPE to');
    eq(e2.cc, [{ name: '', address: 'dave@example.org' }], 'ENVELOPE cc');
    eq(e2.inReplyTo, '<imapflow-1@example.net>', 'ENVELOPE in-reply-to');
    eq(e3.from, [{ name: '', address: 'carol@example.org' }], 'ENVELOPE bare address');
    eq(all[0].bodyStructure.type, 'text/plain', 'BODYSTRUCTURE single part');
    const bs = all[2].bodyStructure;
    eq(bs.type, 'multipart/mixed', 'BODYSTRUCTURE multipart');
    eq(bs.childNodes.map(p => [p.part, p.type]), [['1', 'text/plain'], ['2', 'application/octet-stream']], 'BODYSTRUCTURE parts');
    eq(bs.childNodes[0].parameters, { charset: 'utf-8' }, 'BODYSTRUCTURE charset');
    eq(bs.childNodes[1].encoding, 'base64', 'BODYSTRUCTURE encoding');
    eq(bs.childNodes[1].disposition, 'attachment', 'BODYSTRUCTURE disposition');
    eq(bs.childNodes[1].dispositionParameters, { filename: 'data.bin' }, 'BODYSTRUCTURE filename');

    // UID ranges, '*', and one part decoded.
    eq((await a.fetchAll('2:3', { uid: true }, { uid: true })).map(m => m.uid), [2, 3], 'UID FETCH 2:3');
    eq((await a.fetchAll('3:*', { uid: true }, { uid: true })).map(m => m.uid), [3], 'UID FETCH 3:*');
    eq((await a.fetchAll('1,3', { uid: true }, { uid: true })).map(m => m.uid), [1, 3], 'UID FETCH 1,3');
    eq((await a.fetchOne('*', { uid: true })).uid, 3, "FETCH '*'");
    const part = await a.download('3', '2', { uid: true });
    eq(part.meta.contentType, 'application/octet-stream', 'download content type');
    check((await streamToBuffer(part.content)).equals(ATTACHMENT), 'the attachment decoded', part.meta);

    // Flags change; CHANGEDSINCE returns exactly the changed message with a higher MODSEQ.
    let since = (await a.status('INBOX', { highestModseq: true })).highestModseq;
    eq(since, mb.highestModseq, 'STATUS HIGHESTMODSEQ as SELECT said');
    check(await a.messageFlagsAdd('2', ['\\Flagged', '$Later'], { uid: true }), 'messageFlagsAdd', false);
    let changed = await a.fetchAll('1:*', { uid: true, flags: true, modseq: true }, { uid: true, changedSince: since });
    eq(changed.map(m => [m.uid, m.flags]), [[2, new Set(['$Work', '$Later', '\\Flagged'])]], 'CHANGEDSINCE after add');
    check(changed[0].modseq > since, 'MODSEQ grew', changed[0].modseq);
    since = changed[0].modseq;
    check(await a.messageFlagsRemove('1', ['\\Seen'], { uid: true }), 'messageFlagsRemove', false);
    changed = await a.fetchAll('1:*', { uid: true, flags: true, modseq: true }, { uid: true, changedSince: since });
    eq(changed.map(m => [m.uid, m.flags]), [[1, new Set()]], 'CHANGEDSINCE after remove');
    check(changed[0].modseq > since, 'MODSEQ grew again', changed[0].modseq);
    // Nothing changed since the last one: an empty answer.
    changed = await a.fetchAll('1:*', { uid: true, flags: true }, { uid: true, changedSince: changed[0].modseq });
    eq(changed, [], 'CHANGEDSINCE with nothing new');
    check(await a.messageFlagsAdd('1:*', ['\\Seen'], { uid: true }), 'flag all seen', false);
    check(await a.messageFlagsRemove('3', ['\\Seen'], { uid: true }), 'unflag 3', false);

    // SEARCH.
    eq(await a.search({ all: true }, { uid: true }), [1, 2, 3], 'SEARCH ALL');
    eq(await a.search({ seen: false }, { uid: true }), [3], 'SEARCH UNSEEN');
    eq(await a.search({ flagged: true }, { uid: true }), [2], 'SEARCH FLAGGED');
    eq(await a.search({ keyword: '$Work' }, { uid: true }), [2], 'SEARCH KEYWORD');
    eq(await a.search({ subject: 'attachment' }, { uid: true }), [3], 'SEARCH SUBJECT');
    eq(await a.search({ from: 'alice@example.net' }, { uid: true }), [1], 'SEARCH FROM');
    eq(await a.search({ body: 'encoded subject' }, { uid: true }), [2], 'SEARCH BODY');
    eq(await a.search({ header: { 'message-id': '<imapflow-3@example.net>' } }, { uid: true }), [3], 'SEARCH HEADER');
    eq(await a.search({ or: [{ flagged: true }, { seen: false }] }, { uid: true }), [2, 3], 'SEARCH OR');
    eq(await a.search({ not: { seen: true } }), [3], 'SEARCH NOT (sequence numbers)');
    eq(await a.search({ uid: '2:*', larger: 200 }, { uid: true }), [2, 3], 'SEARCH UID LARGER');
    eq(await a.search({ modseq: since + 1n }, { uid: true }), [1, 2, 3], 'SEARCH MODSEQ');

    // MOVE: COPYUID maps the UID; the source forgets it.
    const moved = await a.messageMove('1', 'Work', { uid: true });
    eq([moved.path, moved.destination, moved.uidMap], ['INBOX', 'Work', new Map([[1, 1]])], 'MOVE COPYUID');
    eq(a.mailbox.exists, 1 + 1, 'EXISTS after MOVE');
    eq(await a.search({ all: true }, { uid: true }), [2, 3], 'INBOX after MOVE');
    const work = await a.status('Work', { messages: true, unseen: true, uidNext: true });
    eq([work.messages, work.unseen, work.uidNext], [1, 0, 2], 'STATUS Work after MOVE');

    // Delete: \Deleted then UID EXPUNGE of just that message.
    check(await a.messageDelete('2', { uid: true }), 'messageDelete', false);
    eq(a.mailbox.exists, 1, 'EXISTS after delete');
    eq((await a.fetchAll('1:*', { uid: true }, { uid: true })).map(m => m.uid), [3], 'INBOX after delete');

    // IDLE: a second connection appends, flags and deletes; the first hears each in IDLE.
    const b = connect('b');
    await b.connect();
    const heardExists = nextEvent(a, 'exists', e => e.path === 'INBOX' && e.count === 2);
    const idling = a.idle();
    await waitUntil(() => a.idling, 'IDLE started');
    const r4 = await b.append('INBOX', LATE, []);
    eq(r4.uid, 4, 'second connection APPENDUID');
    const exists = await heardExists;
    eq([exists.count, exists.prevCount], [2, 1], "'exists' during IDLE");
    const heardFlags = nextEvent(a, 'flags', e => e.path === 'INBOX' && e.flags.has('\\Flagged'));
    await b.mailboxOpen('INBOX');
    check(await b.messageFlagsAdd('4', ['\\Flagged'], { uid: true }), 'second connection flags', false);
    const flagged = await heardFlags;
    eq([flagged.seq, flagged.uid, flagged.flags], [2, 4, new Set(['\\Flagged'])], "'flags' during IDLE");
    const heardExpunge = nextEvent(a, 'expunge', e => e.path === 'INBOX');
    check(await b.messageDelete('3', { uid: true }), 'second connection deletes', false);
    const expunged = await heardExpunge;
    // With QRESYNC enabled the server says VANISHED (a UID), not EXPUNGE (a sequence number).
    eq([expunged.uid, expunged.vanished, expunged.earlier], [3, true, false], "'expunge' during IDLE");
    // Any command ends IDLE.
    const fresh = await a.fetchOne('*', { uid: true, envelope: true, flags: true });
    await idling;
    eq([fresh.seq, fresh.uid, fresh.envelope.subject, fresh.flags], [1, 4, 'arrived during IDLE', new Set(['\\Flagged'])], 'FETCH after IDLE');
    eq(a.mailbox.exists, 1, 'EXISTS after IDLE');

    // QRESYNC: remember the state, close, let the other connection change things, reopen.
    await a.messageFlagsAdd('4', ['\\Seen'], { uid: true });
    const known = await a.fetchAll('1:*', { uid: true, modseq: true }, { uid: true });
    await a.mailboxClose();
    const state = await a.status('INBOX', { highestModseq: true, uidValidity: true, uidNext: true });
    check(state.highestModseq >= known[0].modseq, 'HIGHESTMODSEQ covers every message', [state, known]);
    const r5 = await b.append('INBOX', AFTER, ['\\Draft']);
    eq(r5.uid, 5, 'APPENDUID while closed');
    const r6 = await b.append('INBOX', AFTER, []);
    check(await b.messageFlagsAdd('5', ['\\Answered'], { uid: true }), 'flag while closed', false);
    check(await b.messageDelete('4,6', { uid: true }), 'delete while closed', false);
    eq(r6.uid, 6, 'APPENDUID of the one deleted at once');
    const vanished = [];
    const onExpunge = e => vanished.push(e);
    const flagUpdates = [];
    const onFlags = e => flagUpdates.push(e);
    a.on('expunge', onExpunge);
    a.on('flags', onFlags);
    mb = await a.mailboxOpen('INBOX', { uidValidity: state.uidValidity, changedSince: state.highestModseq });
    a.off('expunge', onExpunge);
    a.off('flags', onFlags);
    eq([mb.exists, mb.uidNext, mb.qresync], [1, 7, true], 'QRESYNC SELECT');
    check(mb.highestModseq > state.highestModseq, 'HIGHESTMODSEQ grew', mb.highestModseq);
    // 4 is gone and 6 came and went since that MODSEQ. A server that keeps no MODSEQ for
    // expunged messages (Herald keeps none) may also name UIDs gone before it: RFC 7162 calls
    // that compliant, though discouraged. Never one that is still there.
    checkVanished(vanished, [4, 6], [1, 2, 3, 4, 6], 'VANISHED (EARLIER) on reopen');
    eq(flagUpdates.map(e => [e.seq, e.uid, e.flags]), [[1, 5, new Set(['\\Draft', '\\Answered'])]], 'FETCH FLAGS on reopen');

    // The same through UID FETCH (CHANGEDSINCE … VANISHED) on an open mailbox.
    const before = mb.highestModseq;
    await b.append('INBOX', LATE, []);
    check(await b.messageDelete('5', { uid: true }), 'delete while open', false);
    vanished.length = 0;
    a.on('expunge', onExpunge);
    await a.noop();
    eq(vanished.map(e => [e.uid, e.vanished, e.earlier]), [[5, true, false]], 'VANISHED at NOOP');
    eq(a.mailbox.exists, 1, 'EXISTS at NOOP');
    vanished.length = 0;
    const sinceFetch = await a.fetchAll('1:*', { uid: true, flags: true }, { uid: true, changedSince: before });
    a.off('expunge', onExpunge);
    // Both connections had INBOX selected when 7 arrived; \Recent went to one of them.
    eq(sinceFetch.map(m => [m.uid, withoutRecent(m.flags)]), [[7, new Set()]], 'UID FETCH CHANGEDSINCE VANISHED');
    // RFC 7162 §3.2.6: the expunged UID is reported again, as history (and as above, maybe
    // with older ones).
    checkVanished(vanished, [5], [1, 2, 3, 4, 5, 6], 'VANISHED (EARLIER) in UID FETCH');

    await b.logout();
    await a.logout();
}

// `events` are 'expunge' events of VANISHED (EARLIER): they name every UID of `must` and
// none outside `may`.
function checkVanished(events, must, may, what) {
    check(events.every(e => e.vanished && e.earlier), `${what}: all VANISHED (EARLIER)`, events);
    const uids = events.map(e => e.uid);
    check(must.every(u => uids.includes(u)) && uids.every(u => may.includes(u)), `${what}: want ${must} and at most ${may}`, uids);
}

function withoutRecent(flags) {
    return new Set([...flags].filter(f => f !== '\\Recent'));
}

async function waitUntil(cond, what, ms = 5_000) {
    const end = Date.now() + ms;
    while (!cond()) {
        if (Date.now() > end) {
            throw new Error(`${what}: not within ${ms} ms`);
        }
        await new Promise(r => setTimeout(r, 20));
    }
}

main().then(
    () => {
        clearTimeout(watchdog);
        console.log('done');
    },
    fail
);
